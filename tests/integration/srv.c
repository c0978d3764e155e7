/* Integration helpers; see srv.h. */
#include "srv.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "tu.h"

ProtobufCBinaryData bin_of(const char *s)
{
    return (ProtobufCBinaryData){s ? strlen(s) : 0, (uint8_t *)s};
}

static int free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t l = sizeof a;
    if (bind(fd, (struct sockaddr *)&a, sizeof a) ||
        getsockname(fd, (struct sockaddr *)&a, &l)) {
        close(fd);
        return -1;
    }
    close(fd);
    return ntohs(a.sin_port);
}

int cli_connect(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, (struct sockaddr *)&a, sizeof a)) {
        close(fd);
        return -1;
    }
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    return fd;
}

int srv_spawn(srv *s, const char *bin, int keep_dir, const char *const *extra)
{
    snprintf(s->bin, sizeof s->bin, "%s", bin);
    if (!keep_dir && tu_tmpdir(s->dir, sizeof s->dir))
        return -1;
    s->port = free_port();
    s->mport = free_port();
    if (!keep_dir || !s->pport)
        s->pport = free_port();
    char listen[64], metrics[64], data[300], peer[64];
    snprintf(listen, sizeof listen, "127.0.0.1:%d", s->port);
    snprintf(metrics, sizeof metrics, "127.0.0.1:%d", s->mport);
    snprintf(peer, sizeof peer, "127.0.0.1:%d", s->pport);
    snprintf(data, sizeof data, "%s/data", s->dir);
    const char *argv[40] = {bin, "--name", "t1", "--data-dir", data,
                            "--listen-client-urls", listen,
                            "--listen-metrics-urls", metrics,
                            "--listen-peer-urls", peer,
                            "--initial-advertise-peer-urls", peer,
                            "--log-level", "warn"};
    int n = 15;
    for (int i = 0; extra && extra[i] && n < 39; i++)
        argv[n++] = extra[i];
    argv[n] = NULL;
    s->pid = fork();
    if (s->pid == 0) {
        /* Never outlive the test, whatever happens to it. */
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        execv(bin, (char *const *)argv);
        _exit(127);
    }
    /* Wait for the listener: poll connect, bounded. */
    for (int i = 0; i < 2000; i++) {
        int fd = cli_connect(s->port);
        if (fd >= 0) {
            close(fd);
            return 0;
        }
        int st;
        if (waitpid(s->pid, &st, WNOHANG) == s->pid) {
            fprintf(stderr, "skiffd exited early (status %d)\n", st);
            s->pid = 0;
            return -1;
        }
        struct timespec ts = {0, 5000000};
        nanosleep(&ts, NULL);
    }
    return -1;
}

void srv_kill(srv *s, int sig)
{
    if (s->pid <= 0)
        return;
    kill(s->pid, sig);
    int st;
    waitpid(s->pid, &st, 0);
    s->pid = 0;
}

void srv_cleanup(srv *s)
{
    srv_kill(s, SIGKILL);
    if (s->dir[0])
        tu_rmrf(s->dir);
}

static int write_all(int fd, const uint8_t *p, size_t n)
{
    while (n) {
        ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return -1;
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

int cli_send_raw(int fd, uint64_t stream, const void *p, uint32_t len)
{
    uint8_t *b = malloc(CM_FRAME_HDR + len);
    cm_frame_header(b, stream, len);
    if (len)
        memcpy(b + CM_FRAME_HDR, p, len);
    int rc = write_all(fd, b, CM_FRAME_HDR + len);
    free(b);
    return rc;
}

int cli_send(int fd, uint64_t stream, const Skiffpb__Request *r)
{
    size_t n = skiffpb__request__get_packed_size(r);
    uint8_t *b = malloc(n ? n : 1);
    skiffpb__request__pack(r, b);
    int rc = cli_send_raw(fd, stream, b, (uint32_t)n);
    free(b);
    return rc;
}

static int read_full(int fd, uint8_t *p, size_t n, int ms)
{
    while (n) {
        struct pollfd pfd = {fd, POLLIN, 0};
        int pr = poll(&pfd, 1, ms);
        if (pr == 0)
            return -2;
        if (pr < 0 && errno == EINTR)
            continue;
        ssize_t r = recv(fd, p, n, 0);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            return -1;
        p += r;
        n -= (size_t)r;
    }
    return 0;
}

int cli_recv(int fd, uint64_t *stream, Skiffpb__Response **out, int ms)
{
    uint8_t h[CM_FRAME_HDR];
    int rc = read_full(fd, h, CM_FRAME_HDR, ms);
    if (rc)
        return rc;
    uint32_t n = cm_be32_get(h);
    *stream = cm_be64_get(h + 4);
    uint8_t *b = malloc(n ? n : 1);
    if ((rc = read_full(fd, b, n, 10000))) {
        free(b);
        return rc;
    }
    *out = skiffpb__response__unpack(NULL, n, b);
    free(b);
    return *out ? 0 : -1;
}

Skiffpb__Response *cli_call(int fd, const Skiffpb__Request *r)
{
    static uint64_t next = 1000000;
    uint64_t id = ++next, got;
    if (cli_send(fd, id, r))
        return NULL;
    Skiffpb__Response *resp;
    if (cli_recv(fd, &got, &resp, 10000))
        return NULL;
    if (got != id) {
        skiffpb__response__free_unpacked(resp, NULL);
        return NULL;
    }
    return resp;
}
