/*
 * Small helpers of the runner: clocks, a seeded PRNG, shell commands and
 * the nemesis log.  Network and namespace changes go through iproute2 and
 * iptables (the commands an operator would type, so nemesis.log can show
 * exactly what was done); their output lands in cmd.log of the run.
 */
#include "jepsen_int.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

uint64_t jr_rand(jr_rng *r)
{
    uint64_t z = (r->s += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

int jr_randn(jr_rng *r, int n)
{
    return (int)(jr_rand(r) % (uint64_t)n);
}

uint64_t jr_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

uint64_t jr_rel_ns(jr_run *r)
{
    return jr_now_ns() - r->t0;
}

void jr_sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) && errno == EINTR)
        ;
}

int jr_sh(jr_run *r, const char *fmt, ...)
{
    char cmd[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cmd, sizeof cmd, fmt, ap);
    va_end(ap);
    char full[4096];
    if (r && r->dir[0]) {
        /* Keep every command and its output: the first place to look when
         * a fault did not do what the log says. */
        FILE *f;
        char p[PATH_MAX + 16];
        snprintf(p, sizeof p, "%s/cmd.log", r->dir);
        if ((f = fopen(p, "a"))) {
            fprintf(f, "+ %s\n", cmd);
            fclose(f);
        }
        jr_fmt(full, sizeof full, "(%s) >>'%s' 2>&1", cmd, p);
    } else {
        snprintf(full, sizeof full, "(%s) >/dev/null 2>&1", cmd);
    }
    int st = system(full);
    if (st == -1)
        return -1;
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128;
}

int jr_sh_out(char *buf, size_t cap, const char *fmt, ...)
{
    char cmd[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cmd, sizeof cmd, fmt, ap);
    va_end(ap);
    FILE *p = popen(cmd, "r");
    if (!p)
        return -1;
    size_t n = fread(buf, 1, cap - 1, p);
    buf[n] = 0;
    int st = pclose(p);
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128;
}

void jr_log(jr_run *r, const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    struct tm tm;
    gmtime_r(&ts.tv_sec, &tm);
    char wall[32];
    strftime(wall, sizeof wall, "%H:%M:%S", &tm);
    double rel = (double)jr_rel_ns(r) / 1e9;
    if (r->nemlog) {
        fprintf(r->nemlog, "%s.%03ld %9.3f %s\n", wall, ts.tv_nsec / 1000000,
                rel, msg);
        fflush(r->nemlog);
    }
    if (getenv("JEPSEN_VERBOSE"))
        fprintf(stderr, "[%9.3f] %s\n", rel, msg);
}

int jr_fmt(char *buf, size_t cap, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(buf, cap, fmt, ap);
    va_end(ap);
    return n < 0 || (size_t)n >= cap ? -1 : 0;
}

int jr_mkdirs(const char *path)
{
    char p[PATH_MAX];
    snprintf(p, sizeof p, "%s", path);
    for (char *s = p + 1; *s; s++) {
        if (*s != '/')
            continue;
        *s = 0;
        if (mkdir(p, 0755) && errno != EEXIST)
            return -errno;
        *s = '/';
    }
    if (mkdir(p, 0755) && errno != EEXIST)
        return -errno;
    return 0;
}

const char *jr_json_str(char *buf, size_t cap, const void *s, size_t n)
{
    const unsigned char *p = s;
    size_t o = 0;
    if (cap < 3) {
        buf[0] = 0;
        return buf;
    }
    buf[o++] = '"';
    for (size_t i = 0; i < n && o + 8 < cap; i++) {
        unsigned char ch = p[i];
        if (ch == '"' || ch == '\\') {
            buf[o++] = '\\';
            buf[o++] = (char)ch;
        } else if (ch < 0x20 || ch >= 0x7f) {
            o += (size_t)snprintf(buf + o, cap - o, "\\u%04x", ch);
        } else {
            buf[o++] = (char)ch;
        }
    }
    buf[o++] = '"';
    buf[o] = 0;
    return buf;
}
