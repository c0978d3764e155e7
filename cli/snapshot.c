/*
 * `skiffctl snapshot save|status|restore`.
 *
 * save streams a member's snapshot (storage/kv_snapshot.c's format: a
 * magic and the applied index, checksummed records, a trailer with the
 * record count and a CRC) into FILE.part, syncs it and renames it to FILE,
 * so a FILE that exists is always complete.  Like etcdctl it talks to
 * exactly one endpoint.
 *
 * status and restore are offline: they never contact a server.  Unlike
 * every other command (programs link only client/ and common/), they link
 * the storage library itself, because the only faithful reader of the
 * snapshot format is kv_restore: restore opens a new store in the new data
 * directory and restores into it (skiffd then starts from that directory
 * at the snapshot's revision); status restores into a scratch directory
 * and reports the store's hash, revision and key count.
 */
#include "cli_int.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "kv.h"

/* snapshot save FILE */
static int snapshot_save(ctl *x, int npos, char **pos)
{
    if (npos != 1)
        return ctl_errorf(CTL_EXIT_BAD_ARGS,
                          "snapshot save expects one argument");
    if (x->n_endpoints != 1)
        return ctl_errorf(CTL_EXIT_BAD_ARGS,
                          "snapshot must be requested to one selected node, "
                          "not multiple");
    char part[4096];
    snprintf(part, sizeof part, "%s.part", pos[0]);
    int fd = open(part, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0)
        return ctl_errorf(CTL_EXIT_ERROR, "could not open %s (%s)", part,
                          strerror(errno));
    skiff_client *c = ctl_client(x);
    skiff_op op = {.type = SKIFF_OP_SNAPSHOT, .snapshot_fd = fd};
    /* A snapshot is a long stream: give it far more than a command's
     * usual deadline. */
    op.timeout_ms = 3600 * 1000;
    skiff_result res = {0};
    int rc = skiff_do_sync(c, &op, &res);
    if (rc) {
        close(fd);
        unlink(part);
        rc = ctl_fail(x, c, rc, &res);
        skiff_result_free(&res);
        return rc;
    }
    skiff_result_free(&res);
    if (fsync(fd) || close(fd)) {
        unlink(part);
        return ctl_errorf(CTL_EXIT_IO, "could not write %s (%s)", part,
                          strerror(errno));
    }
    if (rename(part, pos[0])) {
        unlink(part);
        return ctl_errorf(CTL_EXIT_IO, "could not rename %s to %s (%s)", part,
                          pos[0], strerror(errno));
    }
    printf("Snapshot saved at %s\n", pos[0]);
    return 0;
}

/* Restores the snapshot in `file` into the existing, empty directory
 * `dir`; *st and *h receive the restored store's status and hash when
 * non-NULL.  0 or an exit code (message printed). */
static int restore_into(const char *file, const char *dir, kv_status *st,
                        kv_hash *h)
{
    int fd = open(file, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return ctl_errorf(CTL_EXIT_ERROR, "open %s: %s", file, strerror(errno));
    kv_store *s = NULL;
    int rc = kv_open(&s, dir, NULL);
    if (rc) {
        close(fd);
        return ctl_errorf(CTL_EXIT_ERROR, "open store in %s: %s", dir,
                          kv_strerror(rc));
    }
    rc = kv_restore(s, fd);
    close(fd);
    if (rc) {
        rc =
            ctl_errorf(CTL_EXIT_ERROR, "restore %s: %s", file, kv_strerror(rc));
        kv_close(s);
        return rc;
    }
    if (!rc && st && (rc = kv_status_get(s, st)))
        rc = ctl_errorf(CTL_EXIT_ERROR, "status: %s", kv_strerror(rc));
    if (!rc && h && (rc = kv_hash_get(s, 0, h)))
        rc = ctl_errorf(CTL_EXIT_ERROR, "hash: %s", kv_strerror(rc));
    if (!rc && (rc = kv_sync(s)))
        rc = ctl_errorf(CTL_EXIT_ERROR, "sync: %s", kv_strerror(rc));
    kv_close(s);
    return rc;
}

/* Removes a scratch directory and the files directly in it. */
static void remove_dir(const char *dir)
{
    DIR *d = opendir(dir);
    if (d) {
        struct dirent *e;
        while ((e = readdir(d))) {
            if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
                continue;
            char p[4096];
            snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
            unlink(p);
        }
        closedir(d);
    }
    rmdir(dir);
}

/* snapshot status FILE: restores into a scratch dir and reports. */
static int snapshot_status(ctl *x, int npos, char **pos)
{
    if (npos != 1)
        return ctl_errorf(CTL_EXIT_BAD_ARGS,
                          "snapshot status requires exactly one argument");
    struct stat sb;
    if (stat(pos[0], &sb))
        return ctl_errorf(CTL_EXIT_ERROR, "stat %s: %s", pos[0],
                          strerror(errno));
    const char *tmp = getenv("TMPDIR");
    char dir[4096];
    snprintf(dir, sizeof dir, "%s/skiffctl-snapshot-XXXXXX",
             tmp && *tmp ? tmp : "/tmp");
    if (!mkdtemp(dir))
        return ctl_errorf(CTL_EXIT_ERROR, "mkdtemp: %s", strerror(errno));
    kv_status st;
    kv_hash h;
    int rc = restore_into(pos[0], dir, &st, &h);
    remove_dir(dir);
    if (rc)
        return rc;
    char size[32];
    out_human_bytes(size, sizeof size, (uint64_t)sb.st_size);
    if (x->out == CTL_OUT_JSON) {
        printf("{\"hash\":%u,\"revision\":%" PRId64 ",\"totalKey\":%" PRId64
               ",\"totalSize\":%lld}\n",
               h.hash, st.revision, st.keys, (long long)sb.st_size);
    } else if (x->out == CTL_OUT_TABLE) {
        static const char *head[] = {"HASH", "REVISION", "TOTAL KEYS",
                                     "TOTAL SIZE"};
        char hs[32], rs[32], ks[32];
        snprintf(hs, sizeof hs, "%x", h.hash);
        snprintf(rs, sizeof rs, "%" PRId64, st.revision);
        snprintf(ks, sizeof ks, "%" PRId64, st.keys);
        const char *row[] = {hs, rs, ks, size};
        out_table t;
        out_table_init(&t, head, 4);
        out_table_row(&t, row);
        out_table_print(&t, stdout);
    } else {
        printf("%x, %" PRId64 ", %" PRId64 ", %s\n", h.hash, st.revision,
               st.keys, size);
    }
    return 0;
}

/* snapshot restore FILE --data-dir DIR */
static int snapshot_restore(ctl *x, int npos, char **pos, const char *dir,
                            const char *name)
{
    (void)x;
    if (npos != 1)
        return ctl_errorf(CTL_EXIT_BAD_ARGS,
                          "snapshot restore requires exactly one argument");
    char def[512];
    if (!dir || !*dir) {
        snprintf(def, sizeof def, "%s.skiff", name);
        dir = def;
    }
    struct stat sb;
    if (!stat(dir, &sb))
        return ctl_errorf(CTL_EXIT_ERROR, "data-dir \"%s\" exists", dir);
    if (mkdir(dir, 0700))
        return ctl_errorf(CTL_EXIT_ERROR, "mkdir %s: %s", dir, strerror(errno));
    kv_status st;
    int rc = restore_into(pos[0], dir, &st, NULL);
    if (rc) {
        remove_dir(dir);
        return rc;
    }
    printf("restored snapshot %s into %s: revision %" PRId64 ", %" PRId64
           " keys, applied index %" PRIu64 "\n",
           pos[0], dir, st.revision, st.keys, st.applied_index);
    return 0;
}

/* snapshot save|status|restore */
int cmd_snapshot(ctl *x, const char *sub, int argc, char **argv)
{
    const char *data_dir = NULL, *name = "default";
    ctl_flag flags[] = {
        {"data-dir", 0, CTL_STR, &data_dir},
        {"name", 0, CTL_STR, &name},
        {NULL, 0, 0, NULL},
    };
    char *pos[argc + 1];
    int npos, rc = ctl_flags_parse(x, argc, argv, flags, pos, &npos);
    if (rc)
        return rc;
    if (!strcmp(sub, "save"))
        return snapshot_save(x, npos, pos);
    if (!strcmp(sub, "status"))
        return snapshot_status(x, npos, pos);
    if (!strcmp(sub, "restore"))
        return snapshot_restore(x, npos, pos, data_dir, name);
    return ctl_errorf(CTL_EXIT_ERROR,
                      "unknown command \"%s\" for \"skiffctl snapshot\"", sub);
}
