/*
 * Small pieces every checker uses: a growable string with sticky
 * out-of-memory (so explanation building needs no error checks until the
 * string is taken), a string interner giving dense ids (so checkers index
 * arrays by key or value instead of hashing strings in inner loops),
 * anomaly recording, result serialisation and wall-clock budgets.
 */
#include "checker_int.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

/* ---- errors -------------------------------------------------------------- */
static const char *err_msg(int code)
{
    switch (code) {
#define XX(n, v, m)                                                            \
    case n:                                                                    \
        return m;
        JC_ERRNO_MAP(XX)
#undef XX
    }
    return NULL;
}

static const char *err_name(int code)
{
    switch (code) {
#define XX(n, v, m)                                                            \
    case n:                                                                    \
        return #n;
        JC_ERRNO_MAP(XX)
#undef XX
    }
    return NULL;
}

const char *jc_strerror(int code)
{
    cm_err_register(-7999, -7000, err_msg, err_name);
    const char *s = err_msg(code);
    return s ? s : cm_strerror(code);
}

const char *jc_err_name(int code)
{
    cm_err_register(-7999, -7000, err_msg, err_name);
    const char *s = err_name(code);
    return s ? s : cm_err_name(code);
}

/* ---- strings ------------------------------------------------------------- */
void jc__sb_add(jc_sb *b, const char *p, size_t n)
{
    if (b->oom)
        return;
    if (b->len + n + 1 > b->cap) {
        size_t ncap = b->cap ? b->cap : 64;
        while (ncap < b->len + n + 1)
            ncap *= 2;
        char *s = cm_realloc(b->s, ncap);
        if (!s) {
            b->oom = 1;
            return;
        }
        b->s = s;
        b->cap = ncap;
    }
    memcpy(b->s + b->len, p, n);
    b->len += n;
    b->s[b->len] = '\0';
}

void jc__sb_printf(jc_sb *b, const char *fmt, ...)
{
    char tmp[512];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    if (n < 0)
        return;
    if ((size_t)n >= sizeof tmp)
        n = sizeof tmp - 1; /* explanations are for humans; truncate */
    jc__sb_add(b, tmp, (size_t)n);
}

void jc__sb_jstr(jc_sb *b, const char *s, size_t n)
{
    jc__sb_add(b, "\"", 1);
    size_t run = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c >= 0x20 && c != '"' && c != '\\')
            continue;
        jc__sb_add(b, s + run, i - run);
        run = i + 1;
        if (c == '"' || c == '\\') {
            char e[2] = {'\\', (char)c};
            jc__sb_add(b, e, 2);
        } else {
            jc__sb_printf(b, "\\u%04x", c);
        }
    }
    jc__sb_add(b, s + run, n - run);
    jc__sb_add(b, "\"", 1);
}

void jc__sb_json(jc_sb *b, const jc_json *v)
{
    if (!v) {
        jc__sb_add(b, "null", 4);
        return;
    }
    switch (v->type) {
    case JC_JSON_NULL:
        jc__sb_add(b, "null", 4);
        break;
    case JC_JSON_BOOL:
        jc__sb_printf(b, "%s", v->i ? "true" : "false");
        break;
    case JC_JSON_INT:
        jc__sb_printf(b, "%lld", (long long)v->i);
        break;
    case JC_JSON_REAL:
        jc__sb_printf(b, "%.17g", v->d);
        break;
    case JC_JSON_STR:
        jc__sb_jstr(b, v->s, v->len);
        break;
    case JC_JSON_ARR:
    case JC_JSON_OBJ:
        jc__sb_add(b, v->type == JC_JSON_ARR ? "[" : "{", 1);
        for (size_t i = 0; i < v->len; i++) {
            if (i)
                jc__sb_add(b, ",", 1);
            if (v->type == JC_JSON_OBJ) {
                jc__sb_jstr(b, v->keys[i], strlen(v->keys[i]));
                jc__sb_add(b, ":", 1);
            }
            jc__sb_json(b, &v->items[i]);
        }
        jc__sb_add(b, v->type == JC_JSON_ARR ? "]" : "}", 1);
        break;
    }
}

char *jc__sb_take(jc_sb *b)
{
    if (b->oom) {
        jc__sb_free(b);
        return NULL;
    }
    char *s = b->s;
    if (!s)
        s = cm_strdup("");
    b->s = NULL;
    b->len = b->cap = 0;
    return s;
}

void jc__sb_free(jc_sb *b)
{
    cm_free(b->s);
    memset(b, 0, sizeof *b);
}

/* ---- interner ------------------------------------------------------------ */
uint64_t jc__hash(const void *p, size_t n)
{
    /* FNV-1a then a final mix: short keys are the common case. */
    const unsigned char *c = p;
    uint64_t h = 1469598103934665603ULL;
    for (size_t i = 0; i < n; i++)
        h = (h ^ c[i]) * 1099511628211ULL;
    h ^= h >> 31;
    h *= 0x9e3779b97f4a7c15ULL;
    return h ^ (h >> 29);
}

static size_t find_slot(const jc_intern *t, const char *s, size_t n)
{
    size_t mask = t->nslots - 1, i = (size_t)jc__hash(s, n) & mask;
    for (;; i = (i + 1) & mask) {
        int32_t id = t->slots[i];
        if (!id)
            return i;
        const char *x = t->strs[id - 1];
        if (strlen(x) == n && memcmp(x, s, n) == 0)
            return i;
    }
}

int32_t jc__intern_find(const jc_intern *t, const char *s, size_t n)
{
    if (!t->nslots)
        return -1;
    return t->slots[find_slot(t, s, n)] - 1;
}

int32_t jc__intern(jc_intern *t, const char *s, size_t n)
{
    if (t->n * 2 >= t->nslots) {
        size_t ns = t->nslots ? t->nslots * 2 : 256;
        int32_t *slots = cm_calloc(ns, sizeof *slots);
        if (!slots)
            return -ENOMEM;
        jc_intern nt = *t;
        nt.slots = slots;
        nt.nslots = ns;
        for (size_t i = 0; i < t->n; i++)
            slots[find_slot(&nt, t->strs[i], strlen(t->strs[i]))] =
                (int32_t)i + 1;
        cm_free(t->slots);
        t->slots = slots;
        t->nslots = ns;
    }
    size_t at = find_slot(t, s, n);
    if (t->slots[at])
        return t->slots[at] - 1;
    if (t->n == t->cap) {
        size_t nc = t->cap ? t->cap * 2 : 64;
        char **ns = cm_realloc(t->strs, nc * sizeof *ns);
        if (!ns)
            return -ENOMEM;
        t->strs = ns;
        t->cap = nc;
    }
    char *copy = cm_malloc(n + 1);
    if (!copy)
        return -ENOMEM;
    memcpy(copy, s, n);
    copy[n] = '\0';
    t->strs[t->n] = copy;
    t->slots[at] = (int32_t)++t->n;
    return (int32_t)t->n - 1;
}

void jc__intern_free(jc_intern *t)
{
    for (size_t i = 0; i < t->n; i++)
        cm_free(t->strs[i]);
    cm_free(t->strs);
    cm_free(t->slots);
    memset(t, 0, sizeof *t);
}

/* ---- results ------------------------------------------------------------- */
int jc__anomaly(jc_result *res, const char *type, const int64_t *ops,
                size_t nops, const char *fmt, ...)
{
    res->valid = JC_INVALID;
    jc_anomaly *na =
        cm_realloc(res->anomalies, (res->nanomalies + 1) * sizeof *na);
    if (!na)
        return -ENOMEM;
    res->anomalies = na;
    jc_anomaly *a = &na[res->nanomalies];
    memset(a, 0, sizeof *a);
    char buf[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    a->type = cm_strdup(type);
    a->explanation = cm_strdup(buf);
    a->ops = nops ? cm_memdup(ops, nops * sizeof *ops) : NULL;
    a->nops = nops;
    res->nanomalies++;
    if (!a->type || !a->explanation || (nops && !a->ops))
        return -ENOMEM;
    return 0;
}

int jc__set_unknown(jc_result *res, const char *note)
{
    if (res->valid == JC_VALID)
        res->valid = JC_UNKNOWN;
    if (res->note)
        return 0;
    res->note = cm_strdup(note);
    return res->note ? 0 : -ENOMEM;
}

void jc_result_free(jc_result *res)
{
    for (size_t i = 0; i < res->nanomalies; i++) {
        cm_free(res->anomalies[i].type);
        cm_free(res->anomalies[i].ops);
        cm_free(res->anomalies[i].explanation);
    }
    cm_free(res->anomalies);
    cm_free(res->note);
    memset(res, 0, sizeof *res);
}

size_t jc_result_count(const jc_result *res, const char *type)
{
    size_t n = 0;
    for (size_t i = 0; i < res->nanomalies; i++)
        if (res->anomalies[i].type && !strcmp(res->anomalies[i].type, type))
            n++;
    return n;
}

int jc_result_json(const jc_result *res, char **out)
{
    jc_sb b = {0};
    static const char *const verdict[] = {"true", "false", "\"unknown\""};
    jc__sb_printf(&b, "{\"valid\":%s,\"checked\":%lld", verdict[res->valid],
                  (long long)res->checked);
    if (res->note) {
        jc__sb_add(&b, ",\"note\":", 8);
        jc__sb_jstr(&b, res->note, strlen(res->note));
    }
    jc__sb_add(&b, ",\"anomalies\":[", 14);
    for (size_t i = 0; i < res->nanomalies; i++) {
        const jc_anomaly *a = &res->anomalies[i];
        if (i)
            jc__sb_add(&b, ",", 1);
        jc__sb_add(&b, "{\"type\":", 8);
        jc__sb_jstr(&b, a->type ? a->type : "", a->type ? strlen(a->type) : 0);
        jc__sb_add(&b, ",\"ops\":[", 8);
        for (size_t k = 0; k < a->nops; k++)
            jc__sb_printf(&b, "%s%lld", k ? "," : "", (long long)a->ops[k]);
        jc__sb_add(&b, "],\"explanation\":", 16);
        const char *e = a->explanation ? a->explanation : "";
        jc__sb_jstr(&b, e, strlen(e));
        jc__sb_add(&b, "}", 1);
    }
    jc__sb_add(&b, "]}", 2);
    *out = jc__sb_take(&b);
    return *out ? 0 : -ENOMEM;
}

/* ---- budgets ------------------------------------------------------------- */
int64_t jc__now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t jc__deadline(const jc_opts *o)
{
    if (!o || o->budget_ms <= 0)
        return INT64_MAX;
    return jc__now_ms() + o->budget_ms;
}

/* ---- fields -------------------------------------------------------------- */
int64_t jc__int(const jc_json *o, const char *name, int64_t dflt)
{
    const jc_json *v = jc_json_get(o, name);
    return v && v->type == JC_JSON_INT ? v->i : dflt;
}

const char *jc__str(const jc_json *o, const char *name)
{
    const jc_json *v = jc_json_get(o, name);
    return v && v->type == JC_JSON_STR ? v->s : NULL;
}

const jc_json *jc__value(const jc_op *op)
{
    const jc_json *v = op->cmp ? jc_json_get(op->cmp, "value") : NULL;
    if (v)
        return v;
    return jc_json_get(op->inv, "value");
}
