/*
 * A fake skiffd for libskiff's unit tests: the wire protocol of
 * docs/protocol.md over loopback TCP, an in-memory store just big enough
 * for put/range/delete/leases/watches, and knobs that make it misbehave on
 * purpose (NO_LEADER answers, connections dropped after a write, silence,
 * watch replays that overlap, compaction).  It runs its own libuv loop on
 * a thread and allocates with plain malloc, so the client's leak counting
 * and allocation-failure injection see only the client.
 */
#ifndef SKIFF_TEST_FS_H
#define SKIFF_TEST_FS_H

#include <stdatomic.h>
#include <stdint.h>

typedef struct fs_knobs {
    atomic_int no_leader;          /* answer the next N requests NO_LEADER */
    atomic_int unavailable;        /* answer the next N requests UNAVAILABLE */
    atomic_int drop_after_put;     /* apply the next put, then drop all conns */
    atomic_int drop_before;        /* drop all conns on the next N requests */
    atomic_int silent;             /* never answer unary requests */
    atomic_int sloppy_resume;      /* replay watches from start_revision - 1 */
    atomic_llong compact_rev;      /* watches starting at or below: canceled */
    atomic_int compact_next_watch; /* cancel the next N watch creates as
                                    * compacted at the current revision */
    atomic_ullong member_id;       /* this member's ID; 0: 1 */
    atomic_ullong leader;          /* the leader it names; 0: 1 (itself) */
    /* counters */
    atomic_int move_leaders; /* MoveLeader requests accepted */
    atomic_int requests;
    atomic_int puts;
    atomic_int keepalives;
    atomic_int watch_creates;
    atomic_llong last_watch_start;
    atomic_int accepts;
} fs_knobs;

typedef struct fs fs;

/* Starts the server thread on 127.0.0.1 with an ephemeral port. */
fs *fs_start(void);
int fs_port(const fs *s);
fs_knobs *fs_knobs_of(fs *s);
/* Stops the thread, closes every connection and frees everything. */
void fs_stop(fs *s);

#endif
