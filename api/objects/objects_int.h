/*
 * api/objects/objects_int.h -- what the codec, validation and defaulting
 * files share: a small reflective layer over protobuf-c's descriptors
 * (YAML names of fields, presence, map entries, the two leaf messages) and
 * arena helpers.
 */
#ifndef SKIFF_OBJ_OBJECTS_INT_H
#define SKIFF_OBJ_OBJECTS_INT_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "objects.h"

/* Longest camelCase field name (the affinity terms' names are 51). */
#define OBJ__NAME_MAX 96

/* Kubernetes' JSON name of a snake_case proto field name (see the rule at
 * the top of objects.proto).  out holds OBJ__NAME_MAX bytes. */
void obj__camel(const char *snake, char out[OBJ__NAME_MAX]);

/* The field of d whose JSON name is key, or NULL. */
const ProtobufCFieldDescriptor *
obj__field_by_json(const ProtobufCMessageDescriptor *d, const char *key);

/* The field of d named `name` in the .proto, or NULL. */
const ProtobufCFieldDescriptor *
obj__field_by_name(const ProtobufCMessageDescriptor *d, const char *name);

/* protoc's map<K,V> entries: messages named *Entry with key and value. */
bool obj__is_map_entry(const ProtobufCMessageDescriptor *d);

/* The two messages that read as YAML scalars. */
bool obj__is_int_or_string(const ProtobufCMessageDescriptor *d);
bool obj__is_quantity(const ProtobufCMessageDescriptor *d);

/* Whether the singular field f is set in m (has_x, or a non-NULL
 * pointer for strings and messages). */
bool obj__field_present(const ProtobufCMessage *m,
                        const ProtobufCFieldDescriptor *f);

/* Address of the field's storage, and of its count for repeated ones. */
static inline void *obj__field_ptr(const ProtobufCMessage *m,
                                   const ProtobufCFieldDescriptor *f)
{
    return (char *)m + f->offset;
}
static inline size_t *obj__field_count(const ProtobufCMessage *m,
                                       const ProtobufCFieldDescriptor *f)
{
    return (size_t *)((char *)m + f->quantifier_offset);
}

/* A new initialised message of type d from a, or NULL. */
ProtobufCMessage *obj__msg_new(cm_arena *a,
                               const ProtobufCMessageDescriptor *d);
/* NUL-terminated arena copy of s[0..n), or NULL. */
char *obj__strndup(cm_arena *a, const char *s, size_t n);
char *obj__strdup(cm_arena *a, const char *s);

/* How YAML (1.1, as Kubernetes' decoder reads it) resolves a plain
 * scalar.  A string field takes only OBJ__S_STR or a quoted scalar. */
typedef enum obj__scalar {
    OBJ__S_NULL,
    OBJ__S_BOOL,
    OBJ__S_INT,
    OBJ__S_FLOAT,
    OBJ__S_STR
} obj__scalar;
obj__scalar obj__plain_kind(const char *s, size_t n);

/* Sets e's path and a printf-style message; line 0. */
void obj__error_set(obj_error *e, const char *path, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
void obj__error_vset(obj_error *e, const char *path, const char *fmt,
                     va_list ap);

/* ---- validation -------------------------------------------------------------
 * A validation walk keeps the field path of where it is; a failure is
 * reported at that path (plus an optional last segment) and ends the walk,
 * so nothing needs popping on the error path. */
typedef struct obj__vctx {
    obj_error *err;
    size_t plen;
    char path[OBJ_PATH_MAX];
} obj__vctx;

/* Append ".name" (or "name" at the root), "[i]" or "[key]"; each returns
 * the length to restore with obj__v_pop. */
size_t obj__v_field(obj__vctx *v, const char *name);
size_t obj__v_index(obj__vctx *v, size_t i);
size_t obj__v_key(obj__vctx *v, const char *key);
void obj__v_pop(obj__vctx *v, size_t old);
/* Records the error at the current path (with ".field" appended when field
 * is not NULL) and returns OBJ_EINVALID. */
int obj__v_fail(obj__vctx *v, const char *field, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#define OBJ__TRY(expr)                                                         \
    do {                                                                       \
        int rc_ = (expr);                                                      \
        if (rc_)                                                               \
            return rc_;                                                        \
    } while (0)

bool obj__is_dns1123_label(const char *s);
bool obj__is_dns1123_subdomain(const char *s);
/* Kubernetes' IANA_SVC_NAME: a named port. */
bool obj__is_port_name(const char *s);

/* Checks a field that must hold one of `allowed` (NULL-terminated):
 * "Required value" when s is NULL or empty and required, else "Unsupported
 * value" when not listed. */
int obj__v_enum(obj__vctx *v, const char *field, const char *s, bool required,
                const char *const *allowed);
/* "Required value" when s is NULL or empty. */
int obj__v_required(obj__vctx *v, const char *field, const char *s);
/* Invalid unless lo <= x <= hi; hi >= INT32_MAX reads "no upper bound". */
int obj__v_range(obj__vctx *v, const char *field, int64_t x, int64_t lo,
                 int64_t hi);

/* Duplicate and membership checks without quadratic cost: a 1.5 MiB pod
 * can list 10^5 containers.  obj__first_dup sets *out to the index of the
 * first of items[0..n) that cmp finds equal to an earlier one, or n.
 * obj__sorted_names makes a sorted cm_malloc'd copy of names (NULLs
 * dropped) for obj__has_name; cm_free it.  Both return 0 or -ENOMEM. */
int obj__first_dup(const void *const *items, size_t n,
                   int (*cmp)(const void *, const void *), size_t *out);
int obj__sorted_names(const char **names, size_t n, const char ***out,
                      size_t *out_n);
bool obj__has_name(const char *const *sorted, size_t n, const char *name);

/* Label keys/values (or annotation keys, values unchecked) of a map field's
 * entries (any map<string,string>). */
int obj__v_labels(obj__vctx *v, const char *field, size_t n,
                  void *const *entries, bool values_are_labels);
/* A LabelSelector: keys, values, operators. */
int obj__v_selector(obj__vctx *v, const char *field,
                    const Skiffpb__V1__LabelSelector *sel);
/* Every quantity in a map<string, Quantity> parses and is >= 0. */
int obj__v_quantities(obj__vctx *v, const char *field, size_t n,
                      void *const *entries);
/* Pod spec rules; claim_names are extra volume names (a StatefulSet's
 * volumeClaimTemplates) that volumeMounts may use. */
int obj__v_pod_spec(obj__vctx *v, const Skiffpb__V1__PodSpec *s,
                    size_t n_claims,
                    Skiffpb__V1__PersistentVolumeClaim *const *claims);

/* ---- maps ---------------------------------------------------------------- */

/* Key and value of a map<string,string> entry (any entry type). */
const char *obj__entry_key(const void *entry);
const char *obj__entry_str(const void *entry);
/* The value message of a map<string, Quantity> entry, or NULL. */
const Skiffpb__V1__Quantity *obj__entry_q(const void *entry);
/* The entry for key in entries[0..n), or NULL. */
void *obj__map_find(size_t n, void *const *entries, const char *key);
/* A cm_malloc'd copy of entries sorted by key, for obj__map_lookup (one
 * lookup per entry of another map stays O(n log n)); cm_free it.  0 or
 * -ENOMEM. */
int obj__map_sort(size_t n, void *const *entries, void ***out);
void *obj__map_lookup(void *const *sorted, size_t n, const char *key);
/* Whether labels (a map<string,string>) are selected by sel.  0 or 1, or
 * -ENOMEM. */
int obj__selector_matches(const Skiffpb__V1__LabelSelector *sel, size_t n,
                          void *const *labels);

#endif
