/*
 * cli/obj_int.h -- skiffctl's object commands (kubectl's interface over
 * the /registry/ keys): what obj_store.c gives the command files
 * obj_apply.c (apply, create, replace, delete), obj_get.c (get, describe)
 * and obj_edit.c (label, annotate, scale, taint, cordon, uncordon,
 * api-resources).
 *
 * Objects are stored as packed skiffpb.v1.Object values at
 * obj_object_key(); metadata.resourceVersion is never stored: reads fill
 * it from the key's mod_revision and writes compare on it.  Every write
 * goes through obj_admit first (the same function skiffd runs), so errors
 * come early and the bytes sent are the ones the server would store.
 * All per-command memory comes from one cm_arena freed when it ends.
 */
#ifndef SKIFF_CLI_OBJ_INT_H
#define SKIFF_CLI_OBJ_INT_H

#include <stdbool.h>

#include "admit.h"
#include "cli_int.h"
#include "objects.h"

/* Retries of a read-modify-write whose compare failed (kubectl's apply
 * retries conflicts the same way; the API server retries its own
 * read-modify-writes without a bound).  Between attempts octl_backoff
 * waits a little, randomised, so writers racing on one object spread
 * out instead of colliding again. */
#define OCTL_RETRIES 30
/* Sleeps before retry `attempt` (0-based): a random 0..(2^min(attempt,6))
 * milliseconds. */
void octl_backoff(int attempt);
#define OCTL_KEY_MAX 512

/* Results of octl_write besides 0 and client errors. */
#define OCTL_ECONFLICT (-7001) /* the compare failed: re-read and retry */
#define OCTL_EREFUSED (-7002)  /* admission refused: see the res */

/* A kind's names on the command line. */
typedef struct octl_kind {
    const obj_kind *k;
    const char *singular; /* "deployment" */
    const char *shorts;   /* comma-separated short names, "deploy" */
} octl_kind;

/* The kind named by word: plural, singular, short name or Kind, any case,
 * optionally followed by ".<group>" ("deployments.apps").  NULL when
 * none. */
const octl_kind *octl_kind_lookup(const char *word);
const octl_kind *octl_kind_of(const obj_kind *k);
/* Every kind, in api-resources order; n gets the count. */
const octl_kind *octl_kinds(size_t *n);
/* "deployment.apps" or "pod": kubectl's name of a resource type. */
const char *octl_type_name(const octl_kind *k, char *buf, size_t cap);
/* "deployments.apps" or "pods": the plural with its group. */
const char *octl_resource_name(const octl_kind *k, char *buf, size_t cap);
/* The key of (kind, ns, name); ns ignored for cluster-scoped kinds. */
void octl_key(const obj_kind *k, const char *ns, const char *name, char *buf,
              size_t cap);

/* An object as read from the store. */
typedef struct octl_stored {
    obj_object *obj;    /* decoded, resourceVersion filled (arena) */
    const uint8_t *raw; /* the stored bytes (arena) */
    size_t raw_len;
    int64_t mod_revision;
} octl_stored;

/* Reads one key.  0 (found), 1 (absent), or the client's error after
 * printing it. */
int octl_read(ctl *x, const char *key, cm_arena *a, octl_stored *out);
/* Lists a kind in namespace ns (NULL: every namespace), sorted by key
 * (namespace, then name).  0 or the exit code after printing. */
int octl_list(ctl *x, const obj_kind *k, const char *ns, cm_arena *a,
              octl_stored **out, size_t *n);

/* Admits obj (a create when old is NULL) and writes it with a compare on
 * create_revision == 0 or on old's mod_revision.  res->unchanged: nothing
 * was written.  0, OCTL_ECONFLICT, OCTL_EREFUSED (res->code/message), or
 * a client error (printed). */
int octl_write(ctl *x, const char *key, obj_object *obj, const octl_stored *old,
               cm_arena *a, obj_admit_res *res);
/* Prints a refusal as kubectl does: `Error from server (Invalid): ...`,
 * with "error when <doing> \"file\": " in front when file is given. */
void octl_print_refusal(const obj_admit_res *res, const char *doing,
                        const char *file);
/* Kubernetes' reason name for a code ("Invalid", "Conflict"). */
const char *octl_reason(obj_admit_code code);

/* Read-modify-write of one object with conflict retries: reads it, calls
 * mutate (which returns 0, or an exit code to stop with, after printing),
 * then writes it.  NotFound is printed as kubectl does.  *unchanged (may
 * be NULL) tells whether nothing had to be written.  Returns the exit
 * code. */
typedef int (*octl_mutate_fn)(obj_object *o, cm_arena *a, void *arg);
int octl_update(ctl *x, const octl_kind *k, const char *ns, const char *name,
                octl_mutate_fn mutate, void *arg, bool *unchanged);

/* ---- label selectors (-l) ------------------------------------------------ */
/* Whether labels (entries of a map<string,string>) match sel, kubectl's
 * syntax: "a=b,c!=d,e,!f,g in (x,y),h notin (z)".  -1 when sel is
 * malformed. */
int octl_selector_match(const char *sel, size_t n, void *const *labels);

/* ---- manifests ----------------------------------------------------------- */
/* One file's decoded objects. */
typedef struct octl_file {
    const char *name; /* as given ("-" for stdin), arena */
    obj_object **objs;
    size_t n;
} octl_file;
/* Reads and decodes -f FILE|DIR|- (a directory: its .yaml, .yml and .json
 * files, sorted).  Every file is decoded before anything is written; a
 * decode error prints "error: file:line: path: message" and returns 1. */
int octl_load(const char *path, cm_arena *a, octl_file **out, size_t *n);

/* ---- small helpers ------------------------------------------------------- */
/* kubectl's client-side error: "error: <fmt...>" on stderr; returns 1. */
int octl_errorf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* kubectl's age ("5s", "3m20s", "4h", "12d") of an RFC 3339 time; "<unknown>"
 * when absent. */
void octl_age(const char *rfc3339, char *buf, size_t cap);
int64_t octl_now_ms(void);
/* A fresh random (v4) uid. */
void octl_uid(void *data, char *buf, size_t cap);
/* Arena copy of s. */
char *octl_strdup(cm_arena *a, const char *s);
/* Sets (value non-NULL) or removes key in a map<string,string> field
 * (labels, annotations, nodeSelector: every entry type has the shape
 * {base, key, value}); entry_desc is the field's entry message. */
int octl_map_set(cm_arena *a, const ProtobufCMessageDescriptor *entry_desc,
                 size_t *n, void ***entries, const char *key,
                 const char *value);
/* The value of key in such a map, or NULL. */
const char *octl_map_get(size_t n, void *const *entries, const char *key);

/* ---- printing ------------------------------------------------------------ */
/* kubectl's pod STATUS (into status, cap bytes), READY (ready/total
 * containers) and RESTARTS (sum; *last_restart = the latest termination
 * time of a restarted container, or NULL).  obj_podstatus.c. */
void octl_pod_status(const Skiffpb__V1__Pod *p, char *status, size_t scap,
                     int *ready, int *total, int *restarts,
                     const char **last_restart);

/* ---- commands ------------------------------------------------------------ */
/* `get`: kubectl's when its first argument names a kind, else
 * etcdctl's (cmd_get). */
int cmd_obj_get_or_kv(ctl *x, int argc, char **argv);
/* The decision cmd_obj_get_or_kv makes on get's words (after the command
 * word): whether they are kubectl's object get.  main() asks it so that
 * an object get's `-w` (watch) is not taken for etcdctl's global
 * `-w FORMAT`. */
bool octl_get_is_object(int argc, char *const *argv);
int cmd_obj_apply(ctl *x, int argc, char **argv);
int cmd_obj_create(ctl *x, int argc, char **argv);
int cmd_obj_replace(ctl *x, int argc, char **argv);
int cmd_obj_delete(ctl *x, int argc, char **argv);
int cmd_obj_describe(ctl *x, int argc, char **argv);
int cmd_obj_label(ctl *x, int argc, char **argv);
int cmd_obj_annotate(ctl *x, int argc, char **argv);
int cmd_obj_scale(ctl *x, int argc, char **argv);
int cmd_obj_taint(ctl *x, int argc, char **argv);
int cmd_obj_cordon(ctl *x, int argc, char **argv);
int cmd_obj_uncordon(ctl *x, int argc, char **argv);
int cmd_obj_api_resources(ctl *x, int argc, char **argv);

#endif
