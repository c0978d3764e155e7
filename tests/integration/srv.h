/*
 * Helpers for integration tests: run real skiffd processes on free
 * loopback ports, and speak the raw wire protocol to them over blocking
 * sockets (so these tests check the protocol itself, independent of the
 * client library).
 */
#ifndef SKIFF_SRV_H
#define SKIFF_SRV_H

#include <stdint.h>
#include <sys/types.h>

#include "api.h"

typedef struct srv {
    pid_t pid;
    int port, mport;
    int pport; /* peer port: kept across a keep_dir restart (it names
                  the member) */
    char dir[256];
    char bin[512];
} srv;

/* Starts skiffd (binary path `bin`) with a fresh data dir (or the one in
 * s->dir when keep_dir), extra flags appended; waits until it accepts
 * connections.  0 or -1. */
int srv_spawn(srv *s, const char *bin, int keep_dir, const char *const *extra);
void srv_kill(srv *s, int sig); /* signal + wait */
void srv_cleanup(srv *s);       /* SIGKILL if running, remove the dir */

int cli_connect(int port);
/* Sends one Request frame.  0 or -1. */
int cli_send(int fd, uint64_t stream, const Skiffpb__Request *r);
int cli_send_raw(int fd, uint64_t stream, const void *p, uint32_t len);
/* Reads one Response frame (timeout in ms); *out is freed with
 * skiffpb__response__free_unpacked(out, NULL).  0, -1 on EOF/error,
 * -2 on timeout. */
int cli_recv(int fd, uint64_t *stream, Skiffpb__Response **out, int ms);
/* Request + its single response on a fresh stream id. */
Skiffpb__Response *cli_call(int fd, const Skiffpb__Request *r);

ProtobufCBinaryData bin_of(const char *s);

#endif
