/*
 * Structured logging: one line per event on stderr, with a UTC timestamp,
 * the level, the member name and caller-formatted key=value fields.  A
 * line is formatted into a stack buffer and written with one write(2) so
 * lines from different threads never interleave.
 */
#include "cm.h"

#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static enum cm_log_level level = CM_LOG_INFO;
static char member[64];

static const char *names[] = {"debug", "info", "warn", "error"};

void cm_log_set_level(enum cm_log_level lvl)
{
    level = lvl;
}

int cm_log_level_parse(const char *s, enum cm_log_level *out)
{
    for (int i = 0; i < 4; i++)
        if (strcmp(s, names[i]) == 0) {
            *out = (enum cm_log_level)i;
            return 0;
        }
    if (strcmp(s, "warning") == 0) {
        *out = CM_LOG_WARN;
        return 0;
    }
    return CM_EINVAL;
}

void cm_log_set_member(const char *name)
{
    snprintf(member, sizeof member, "%s", name ? name : "");
}

void cm_log(enum cm_log_level lvl, const char *msg, const char *fmt, ...)
{
    if (lvl < level || lvl >= CM_LOG_NONE)
        return;
    char line[2048];
    struct timespec ts;
    struct tm tm;
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    int n = snprintf(line, sizeof line,
                     "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ %s", tm.tm_year + 1900,
                     tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min,
                     tm.tm_sec, ts.tv_nsec / 1000000, names[lvl]);
    if (member[0])
        n += snprintf(line + n, sizeof line - n, " member=%s", member);
    n += snprintf(line + n, sizeof line - n, " msg=\"%s\"", msg);
    if (fmt && fmt[0] && n < (int)sizeof line - 2) {
        line[n++] = ' ';
        va_list ap;
        va_start(ap, fmt);
        int m = vsnprintf(line + n, sizeof line - n, fmt, ap);
        va_end(ap);
        n += m;
    }
    if (n > (int)sizeof line - 2)
        n = sizeof line - 2;
    line[n++] = '\n';
    ssize_t w = write(STDERR_FILENO, line, (size_t)n);
    (void)w;
}

int64_t cm_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t cm_mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}
