/*
 * Declarations shared by libchecker's files but not part of its API:
 * a growable string, a string interner, anomaly recording, budgets.
 */
#ifndef SKIFF_JEPSEN_CHECKER_INT_H
#define SKIFF_JEPSEN_CHECKER_INT_H

#include <stdarg.h>
#include <stdint.h>

#include "checker.h"
#include "cm.h"

/* ---- growable string (heap, NUL-terminated once anything is added) ---- */
typedef struct jc_sb {
    char *s;
    size_t len, cap;
    int oom; /* sticky: once an append failed, the string is incomplete */
} jc_sb;

void jc__sb_add(jc_sb *b, const char *p, size_t n);
void jc__sb_printf(jc_sb *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* Compact JSON text of a value (strings escaped). */
void jc__sb_json(jc_sb *b, const jc_json *v);
void jc__sb_jstr(jc_sb *b, const char *s, size_t n); /* quoted + escaped */
/* Hands the string over (never NULL unless OOM); resets the builder. */
char *jc__sb_take(jc_sb *b);
void jc__sb_free(jc_sb *b);

/* ---- interner: distinct strings get dense ids 0, 1, 2, ... ------------- */
typedef struct jc_intern {
    char **strs; /* id -> string (owned) */
    size_t n, cap;
    int32_t *slots; /* open addressing: id + 1, 0 = empty */
    size_t nslots;
} jc_intern;

/* Id of a string (added if new), or -ENOMEM. */
int32_t jc__intern(jc_intern *t, const char *s, size_t n);
/* Id or -1 when absent. */
int32_t jc__intern_find(const jc_intern *t, const char *s, size_t n);
void jc__intern_free(jc_intern *t);
uint64_t jc__hash(const void *p, size_t n);

/* ---- results ------------------------------------------------------------- */
/* Records an anomaly and makes the verdict JC_INVALID.  0 or -ENOMEM. */
int jc__anomaly(jc_result *res, const char *type, const int64_t *ops,
                size_t nops, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));
int jc__set_unknown(jc_result *res, const char *note);

/* ---- budgets ------------------------------------------------------------- */
int64_t jc__now_ms(void);
/* Absolute deadline in ms for a budget (INT64_MAX for none). */
int64_t jc__deadline(const jc_opts *o);

/* ---- field access with defaults ----------------------------------------- */
/* Integer member or `dflt` when absent / not an integer. */
int64_t jc__int(const jc_json *o, const char *name, int64_t dflt);
/* String member or NULL. */
const char *jc__str(const jc_json *o, const char *name);
/* A value's "value" as seen by the checker: the completion's when it has
 * one (reads fill it in), else the invoke's. */
const jc_json *jc__value(const jc_op *op);

#endif
