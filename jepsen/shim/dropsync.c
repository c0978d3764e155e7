/*
 * libjepsen-dropsync: an LD_PRELOAD shim that lets the runner simulate a
 * power loss of one member: everything written to files under its data
 * dir since the last fsync/fdatasync of that file is undone.
 *
 * Writes still go to the file at once (LMDB reads its data file through
 * mmap, so a shim that held writes back in memory would show LMDB stale
 * pages).  Instead, before each write to a tracked file, the shim copies
 * the bytes about to be overwritten into an undo log of that file, in
 * $JEPSEN_SHIM_UNDO; an fsync or fdatasync of the file makes its contents
 * durable, so the undo log is reset to just "path, size now".  After a
 * SIGKILL the runner applies each undo log backwards and truncates the
 * file to its last synced size (node.c, jr_undo_apply): the file is then
 * exactly what a disk that kept only synced data would hold.  Writes
 * through O_SYNC/O_DSYNC descriptors are durable when they return and are
 * not logged.
 *
 * Undo log records (native endianness; written with the real syscalls):
 *   'P' u32 len, path      the file's current name (again after rename)
 *   'S' u64 size           its size at the last sync
 *   'D' u64 off, u32 len, bytes   content before a write
 *
 * Tracked: regular files under $JEPSEN_SHIM_ROOT except lock files.  With
 * either variable unset the shim does nothing.  Thread-safe (one mutex:
 * skiffd writes from its thread pool).
 */
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#define MAXFD 4096
#define MAXFILES 512

typedef struct tracked {
    char path[PATH_MAX];
    int undo_fd;
    uint64_t synced_size;
    int used;
} tracked;

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static tracked files[MAXFILES];
static short fd_file[MAXFD]; /* 1 + index into files, 0: untracked */
static char fd_sync[MAXFD];  /* opened O_SYNC/O_DSYNC */
static char root[PATH_MAX], undo_dir[PATH_MAX];
static int enabled = -1;
static unsigned counter;

static int (*real_open)(const char *, int, ...);
static int (*real_openat)(int, const char *, int, ...);
static ssize_t (*real_write)(int, const void *, size_t);
static ssize_t (*real_pwrite)(int, const void *, size_t, off_t);
static ssize_t (*real_writev)(int, const struct iovec *, int);
static ssize_t (*real_pwritev)(int, const struct iovec *, int, off_t);
static int (*real_ftruncate)(int, off_t);
static int (*real_fsync)(int);
static int (*real_fdatasync)(int);
static int (*real_close)(int);
static int (*real_renameat)(int, const char *, int, const char *);
static int (*real_rename)(const char *, const char *);

static void init(void)
{
    if (enabled >= 0)
        return;
    real_open = dlsym(RTLD_NEXT, "open");
    real_openat = dlsym(RTLD_NEXT, "openat");
    real_write = dlsym(RTLD_NEXT, "write");
    real_pwrite = dlsym(RTLD_NEXT, "pwrite");
    real_writev = dlsym(RTLD_NEXT, "writev");
    real_pwritev = dlsym(RTLD_NEXT, "pwritev");
    real_ftruncate = dlsym(RTLD_NEXT, "ftruncate");
    real_fsync = dlsym(RTLD_NEXT, "fsync");
    real_fdatasync = dlsym(RTLD_NEXT, "fdatasync");
    real_close = dlsym(RTLD_NEXT, "close");
    real_renameat = dlsym(RTLD_NEXT, "renameat");
    real_rename = dlsym(RTLD_NEXT, "rename");
    const char *r = getenv("JEPSEN_SHIM_ROOT"), *u = getenv("JEPSEN_SHIM_UNDO");
    enabled = r && u && realpath(r, root) &&
              snprintf(undo_dir, sizeof undo_dir, "%s", u) > 0;
}

static void put_all(int fd, const void *p, size_t n)
{
    const char *b = p;
    while (n) {
        ssize_t k = real_write(fd, b, n);
        if (k <= 0) {
            if (k < 0 && errno == EINTR)
                continue;
            return; /* the harness's own log; nothing sane to do */
        }
        b += k;
        n -= (size_t)k;
    }
}

static void rec_path(tracked *t)
{
    uint32_t n = (uint32_t)strlen(t->path);
    put_all(t->undo_fd, "P", 1);
    put_all(t->undo_fd, &n, 4);
    put_all(t->undo_fd, t->path, n);
}

static void reset(tracked *t, uint64_t size)
{
    real_ftruncate(t->undo_fd, 0);
    lseek(t->undo_fd, 0, SEEK_SET);
    t->synced_size = size;
    rec_path(t);
    put_all(t->undo_fd, "S", 1);
    put_all(t->undo_fd, &size, 8);
}

static int under_root(const char *abs)
{
    size_t n = strlen(root);
    if (strncmp(abs, root, n) || abs[n] != '/')
        return 0;
    const char *base = strrchr(abs, '/') + 1;
    return strcmp(base, "lock.mdb") && strcmp(base, "LOCK");
}

/* Absolute name of (dirfd, path) without resolving the last component. */
static int absname(int dirfd, const char *path, char *out)
{
    char dir[PATH_MAX];
    if (path[0] == '/') {
        snprintf(out, PATH_MAX, "%s", path);
        return 0;
    }
    if (dirfd == AT_FDCWD) {
        if (!getcwd(dir, sizeof dir))
            return -1;
    } else {
        char l[64];
        snprintf(l, sizeof l, "/proc/self/fd/%d", dirfd);
        ssize_t k = readlink(l, dir, sizeof dir - 1);
        if (k < 0)
            return -1;
        dir[k] = 0;
    }
    if (snprintf(out, PATH_MAX, "%s/%s", dir, path) >= PATH_MAX)
        return -1;
    return 0;
}

static void track(int fd, int dirfd, const char *path, int flags)
{
    char abs[PATH_MAX];
    struct stat st;
    if (fd < 0 || fd >= MAXFD || absname(dirfd, path, abs) ||
        !under_root(abs) || fstat(fd, &st) || !S_ISREG(st.st_mode))
        return;
    pthread_mutex_lock(&mu);
    int idx = -1, free_idx = -1;
    for (int i = 0; i < MAXFILES; i++) {
        if (files[i].used && !strcmp(files[i].path, abs))
            idx = i;
        else if (!files[i].used && free_idx < 0)
            free_idx = i;
    }
    if (idx < 0 && free_idx >= 0) {
        tracked *t = &files[free_idx];
        char up[PATH_MAX + 64];
        snprintf(up, sizeof up, "%s/%u-%u.undo", undo_dir, (unsigned)getpid(),
                 counter++);
        t->undo_fd =
            real_open(up, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
        if (t->undo_fd >= 0) {
            snprintf(t->path, sizeof t->path, "%s", abs);
            t->used = 1;
            /* What is on disk when the process opens the file counts as
             * durable: the runner applied the previous crash already. */
            reset(t, (uint64_t)st.st_size);
            idx = free_idx;
        }
    }
    if (idx >= 0) {
        fd_file[fd] = (short)(idx + 1);
        fd_sync[fd] = (flags & (O_SYNC | O_DSYNC)) != 0;
    }
    pthread_mutex_unlock(&mu);
}

/* Saves the bytes [off, off+len) that a write is about to replace.  Only
 * bytes below the synced size matter: the rest is cut by the truncate. */
static void before_write(int fd, off_t off, size_t len)
{
    if (fd < 0 || fd >= MAXFD || !fd_file[fd] || fd_sync[fd])
        return;
    pthread_mutex_lock(&mu);
    tracked *t = &files[fd_file[fd] - 1];
    if (off < 0) {
        pthread_mutex_unlock(&mu);
        return;
    }
    uint64_t end = (uint64_t)off + len;
    if (end > t->synced_size)
        end = t->synced_size;
    struct stat st;
    if (!fstat(fd, &st) && end > (uint64_t)st.st_size)
        end = (uint64_t)st.st_size;
    uint64_t o = (uint64_t)off;
    while (o < end) {
        char buf[65536];
        uint32_t n = (uint32_t)(end - o > sizeof buf ? sizeof buf : end - o);
        ssize_t k = pread(fd, buf, n, (off_t)o);
        if (k <= 0)
            break;
        uint32_t kk = (uint32_t)k;
        put_all(t->undo_fd, "D", 1);
        put_all(t->undo_fd, &o, 8);
        put_all(t->undo_fd, &kk, 4);
        put_all(t->undo_fd, buf, kk);
        o += kk;
    }
    pthread_mutex_unlock(&mu);
}

static off_t cur_off(int fd)
{
    int fl = fcntl(fd, F_GETFL);
    if (fl >= 0 && (fl & O_APPEND)) {
        struct stat st;
        return fstat(fd, &st) ? -1 : st.st_size;
    }
    return lseek(fd, 0, SEEK_CUR);
}

static void synced(int fd)
{
    if (fd < 0 || fd >= MAXFD || !fd_file[fd])
        return;
    struct stat st;
    int ok = fstat(fd, &st) == 0;
    uint64_t size = ok ? (uint64_t)st.st_size : 0;
    pthread_mutex_lock(&mu);
    if (ok)
        reset(&files[fd_file[fd] - 1], size);
    pthread_mutex_unlock(&mu);
}

int open(const char *path, int flags, ...)
{
    init();
    mode_t mode = 0;
    if (flags & (O_CREAT | O_TMPFILE)) {
        va_list ap;
        va_start(ap, flags);
        mode = va_arg(ap, mode_t);
        va_end(ap);
    }
    int fd = real_open(path, flags, mode);
    if (enabled)
        track(fd, AT_FDCWD, path, flags);
    return fd;
}
int open64(const char *path, int flags, ...) __attribute__((alias("open")));

int openat(int dirfd, const char *path, int flags, ...)
{
    init();
    mode_t mode = 0;
    if (flags & (O_CREAT | O_TMPFILE)) {
        va_list ap;
        va_start(ap, flags);
        mode = va_arg(ap, mode_t);
        va_end(ap);
    }
    int fd = real_openat(dirfd, path, flags, mode);
    if (enabled)
        track(fd, dirfd, path, flags);
    return fd;
}
int openat64(int dirfd, const char *path, int flags, ...)
    __attribute__((alias("openat")));

ssize_t write(int fd, const void *b, size_t n)
{
    init();
    if (enabled && fd >= 0 && fd < MAXFD && fd_file[fd])
        before_write(fd, cur_off(fd), n);
    return real_write(fd, b, n);
}

ssize_t pwrite(int fd, const void *b, size_t n, off_t off)
{
    init();
    if (enabled)
        before_write(fd, off, n);
    return real_pwrite(fd, b, n, off);
}
ssize_t pwrite64(int fd, const void *b, size_t n, off_t off)
    __attribute__((alias("pwrite")));

static size_t iov_len(const struct iovec *iov, int n)
{
    size_t s = 0;
    for (int i = 0; i < n; i++)
        s += iov[i].iov_len;
    return s;
}

ssize_t writev(int fd, const struct iovec *iov, int n)
{
    init();
    if (enabled && fd >= 0 && fd < MAXFD && fd_file[fd])
        before_write(fd, cur_off(fd), iov_len(iov, n));
    return real_writev(fd, iov, n);
}

ssize_t pwritev(int fd, const struct iovec *iov, int n, off_t off)
{
    init();
    if (enabled)
        before_write(fd, off, iov_len(iov, n));
    return real_pwritev(fd, iov, n, off);
}

int ftruncate(int fd, off_t len)
{
    init();
    if (enabled && fd >= 0 && fd < MAXFD && fd_file[fd]) {
        struct stat st;
        if (!fstat(fd, &st) && len < st.st_size)
            before_write(fd, len, (size_t)(st.st_size - len));
    }
    return real_ftruncate(fd, len);
}

int fsync(int fd)
{
    init();
    int rc = real_fsync(fd);
    if (enabled && !rc)
        synced(fd);
    return rc;
}

int fdatasync(int fd)
{
    init();
    int rc = real_fdatasync(fd);
    if (enabled && !rc)
        synced(fd);
    return rc;
}

int close(int fd)
{
    init();
    if (enabled && fd >= 0 && fd < MAXFD) {
        pthread_mutex_lock(&mu);
        fd_file[fd] = 0;
        fd_sync[fd] = 0;
        pthread_mutex_unlock(&mu);
    }
    return real_close(fd);
}

static void renamed(int od, const char *op, int nd, const char *np)
{
    char a[PATH_MAX], b[PATH_MAX];
    if (absname(od, op, a) || absname(nd, np, b))
        return;
    pthread_mutex_lock(&mu);
    for (int i = 0; i < MAXFILES; i++) {
        tracked *t = &files[i];
        if (t->used && !strcmp(t->path, b)) {
            /* Replaced: its old contents no longer matter. */
            real_ftruncate(t->undo_fd, 0);
            real_close(t->undo_fd);
            t->used = 0;
            /* Descriptors of the replaced file must not log into a slot
             * that a new file may take. */
            for (int fd = 0; fd < MAXFD; fd++)
                if (fd_file[fd] == i + 1)
                    fd_file[fd] = 0;
        }
    }
    for (int i = 0; i < MAXFILES; i++) {
        tracked *t = &files[i];
        if (t->used && !strcmp(t->path, a)) {
            snprintf(t->path, sizeof t->path, "%s", b);
            rec_path(t);
        }
    }
    pthread_mutex_unlock(&mu);
}

int renameat(int od, const char *op, int nd, const char *np)
{
    init();
    int rc = real_renameat(od, op, nd, np);
    if (enabled && !rc)
        renamed(od, op, nd, np);
    return rc;
}

int rename(const char *op, const char *np)
{
    init();
    int rc = real_rename(op, np);
    if (enabled && !rc)
        renamed(AT_FDCWD, op, AT_FDCWD, np);
    return rc;
}
