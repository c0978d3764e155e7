/*
 * libchecker: offline checkers for Jepsen-style histories of skiff.
 *
 * A history is a file of JSON lines, one operation event per line (see
 * docs/jepsen-checkers.md for every workload's shapes).  jc_history_parse
 * reads it into a jc_history that owns all its memory; the jc_check_*
 * functions read a history and fill a jc_result with a verdict and the
 * anomalies found.  Nothing here touches the network or the store: the
 * checkers are pure functions of the history, so a failing history can be
 * kept and re-checked later.
 *
 * All functions are single-threaded; distinct histories and results may be
 * used from different threads.  Heap use goes through cm_malloc.
 */
#ifndef SKIFF_JEPSEN_CHECKER_H
#define SKIFF_JEPSEN_CHECKER_H

#include <stddef.h>
#include <stdint.h>

/* ---- JSON values ---------------------------------------------------------
 * A tiny DOM.  Strings are NUL-terminated copies (embedded NULs are kept
 * and counted by `len`).  Integers that fit int64 are kept exactly. */
typedef enum jc_json_type {
    JC_JSON_NULL,
    JC_JSON_BOOL,
    JC_JSON_INT,
    JC_JSON_REAL,
    JC_JSON_STR,
    JC_JSON_ARR,
    JC_JSON_OBJ
} jc_json_type;

typedef struct jc_json jc_json;
struct jc_json {
    jc_json_type type;
    int64_t i;         /* BOOL (0/1) and INT */
    double d;          /* REAL (also set for INT) */
    const char *s;     /* STR */
    size_t len;        /* STR bytes; ARR and OBJ item count */
    jc_json *items;    /* ARR elements; OBJ values */
    const char **keys; /* OBJ member names, parallel to items */
};

/* Member `name` of an object, or NULL (also when `o` is not an object). */
const jc_json *jc_json_get(const jc_json *o, const char *name);
/* Element `i` of an array, or NULL. */
const jc_json *jc_json_at(const jc_json *a, size_t i);
/* 1 when a and b are the same JSON value (object member order counts). */
int jc_json_equal(const jc_json *a, const jc_json *b);

/* ---- histories ----------------------------------------------------------- */
typedef enum jc_type { JC_INVOKE, JC_OK, JC_FAIL, JC_INFO } jc_type;

/* One operation: an invoke paired with its completion.  Events that are
 * not invokes and have no pending invoke (watch deliveries, replays) become
 * operations of their own with inv == cmp. */
typedef struct jc_op {
    int64_t index;     /* "index" of the invoke line, else its line no. */
    int64_t cmp_index; /* same for the completion line, -1 if none */
    int64_t process;
    jc_type type;       /* completion type; INFO when never completed */
    const char *f;      /* never NULL ("" when absent) */
    const jc_json *inv; /* the invoke event object */
    const jc_json *cmp; /* the completion event object, or NULL */
    int64_t inv_pos;    /* position of the invoke line in the file */
    int64_t cmp_pos;    /* position of the completion, INT64_MAX if none */
    int64_t inv_time;   /* "time" in ns, or -1 */
    int64_t cmp_time;   /* -1 when absent or never completed */
} jc_op;

typedef struct jc_history jc_history;

/* Parses JSON lines from a buffer.  Blank lines are skipped.  On success
 * returns 0 and *out (owned by the caller, jc_history_destroy).  Errors:
 * -ENOMEM; JC_EPARSE with a message naming the line in errmsg (if errmsg is
 * non-NULL, up to errcap bytes). */
int jc_history_parse(const char *text, size_t len, jc_history **out,
                     char *errmsg, size_t errcap);
/* Same, reading a file.  Also -errno from open/read. */
int jc_history_load(const char *path, jc_history **out, char *errmsg,
                    size_t errcap);
void jc_history_destroy(jc_history *h);
/* Operations in invoke order; borrowed until jc_history_destroy. */
size_t jc_history_count(const jc_history *h);
const jc_op *jc_history_ops(const jc_history *h);

/* ---- errors (-7000..-7999) ----------------------------------------------- */
#define JC_ERRNO_MAP(XX) XX(JC_EPARSE, -7001, "malformed history line")

enum jc_errno {
#define XX(name, val, msg) name = (val),
    JC_ERRNO_MAP(XX)
#undef XX
};
/* Message and symbolic name of any code (falling back to cm_strerror and
 * cm_err_name for codes that are not the checker's).  Static strings. */
const char *jc_strerror(int code);
const char *jc_err_name(int code);

/* ---- results ------------------------------------------------------------- */
typedef enum jc_valid { JC_VALID = 0, JC_INVALID = 1, JC_UNKNOWN = 2 } jc_valid;

typedef struct jc_anomaly {
    char *type;   /* e.g. "G-single", "nonlinearizable" */
    int64_t *ops; /* op indices (jc_op.index), owned */
    size_t nops;
    char *explanation; /* owned */
} jc_anomaly;

typedef struct jc_result {
    jc_valid valid;
    jc_anomaly *anomalies;
    size_t nanomalies;
    char *note;      /* why "unknown", or NULL */
    int64_t checked; /* operations (or events) examined */
} jc_result;

/* Checker options.  A zeroed struct means defaults: budget_ms 0 = none,
 * max_states 0 = 64 Mi memoised states. */
typedef struct jc_opts {
    int64_t budget_ms;
    int64_t max_states;
} jc_opts;

/* Each checker fills `res` (zero it first; free with jc_result_free).
 * Returns 0, or -ENOMEM (res then holds whatever was found so far and
 * must still be freed).  A budget running out is not an error: the
 * verdict becomes JC_UNKNOWN unless an anomaly was already found. */
int jc_check_register(const jc_history *h, const jc_opts *o, jc_result *res);
int jc_check_append(const jc_history *h, const jc_opts *o, jc_result *res);
int jc_check_watch(const jc_history *h, const jc_opts *o, jc_result *res);
int jc_check_lease(const jc_history *h, const jc_opts *o, jc_result *res);

void jc_result_free(jc_result *res);
/* Appends the result as one JSON object (no trailing newline) to a
 * NUL-terminated heap string *out (caller frees with cm_free).  0/-ENOMEM. */
int jc_result_json(const jc_result *res, char **out);
/* Number of anomalies of the given type. */
size_t jc_result_count(const jc_result *res, const char *type);

#endif
