/*
 * Error codes.  Each module keeps its own X-macro table and registers a
 * lookup for its block of negative codes here, so cm_strerror can name any
 * code that reaches a log line or a wire error without common/ knowing the
 * modules above it.  Registration happens once per process, before threads.
 */
#include "cm.h"

#include <stdbool.h>
#include <string.h>

#define MAX_MODULES 16

struct module {
    int lo, hi;
    cm_err_lookup_fn msg, name;
};

static struct module modules[MAX_MODULES];
static int nmodules;

static const char *common_msg(int code)
{
    switch (code) {
#define XX(n, v, m)                                                         \
    case n:                                                                 \
        return m;
        CM_ERRNO_MAP(XX)
#undef XX
    }
    return NULL;
}

static const char *common_name(int code)
{
    switch (code) {
#define XX(n, v, m)                                                         \
    case n:                                                                 \
        return #n;
        CM_ERRNO_MAP(XX)
#undef XX
    }
    return NULL;
}

/* The first registered lookup whose range holds `code` and that knows it
 * (blocks may nest: the raft core's and its WAL's, for instance). */
static const char *lookup(int code, bool name)
{
    for (int i = 0; i < nmodules; i++) {
        if (code < modules[i].lo || code > modules[i].hi)
            continue;
        const char *s = name ? modules[i].name(code) : modules[i].msg(code);
        if (s)
            return s;
    }
    return NULL;
}

void cm_err_register(int lo, int hi, cm_err_lookup_fn msg,
                     cm_err_lookup_fn name)
{
    for (int i = 0; i < nmodules; i++)
        if (modules[i].msg == msg)
            return;
    if (nmodules == MAX_MODULES)
        return;
    modules[nmodules++] = (struct module){lo, hi, msg, name};
}

const char *cm_strerror(int code)
{
    const char *s = common_msg(code);
    if (s)
        return s;
    if ((s = lookup(code, false)))
        return s;
    if (code < 0 && code > -1000)
        return strerror(-code);
    return "unknown error";
}

const char *cm_err_name(int code)
{
    const char *s = common_name(code);
    if (s)
        return s;
    if ((s = lookup(code, true)))
        return s;
    if (code < 0 && code > -1000) {
        s = strerrorname_np(-code);
        if (s)
            return s;
    }
    return "EUNKNOWN";
}
