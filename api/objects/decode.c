/*
 * YAML manifests to objects.
 *
 * libyaml's document API loads one document at a time into a node graph
 * that keeps every node's line, which is what the errors must name.  The
 * graph is then walked against the kind's protobuf-c descriptor: a mapping
 * key is looked up by the field's Kubernetes name (objects_int.h), and the
 * value is converted by the field's type.  The rules are those of the
 * Kubernetes API server, which reads YAML as YAML 1.1 converted to JSON and
 * then decodes that strictly: a plain `true`, `8080` or `1.5` is a boolean
 * or a number and not a string, so it may not go into a string field (and
 * a quoted "8080" may not go into an integer field); null means "not set";
 * unknown and duplicate fields are errors.  Quantities are checked with
 * obj_quantity_parse and kept as written (defaulting canonicalises them).
 *
 * The walk follows the schema, which is not recursive, so its depth is
 * bounded; but YAML aliases can make a small file expand to a huge tree, so
 * each document may visit at most NODE_BUDGET nodes.  And libyaml's
 * scanner does work proportional to the flow nesting depth for every
 * token, so 10^5 nested brackets (a 200 KB request) take minutes to load:
 * a first pass over the events refuses nesting deeper than DEPTH_MAX
 * (Kubernetes objects nest a few dozen levels at most) as soon as it sees
 * it, before the document loader spends that time.
 *
 * Everything decoded is allocated from the caller's arena, so on any error
 * the caller simply resets the arena.
 */
#include "objects_int.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <yaml.h>

#define NODE_BUDGET 1000000L
#define DEPTH_MAX 100

typedef struct dec {
    yaml_document_t *doc;
    cm_arena *a;
    obj_error *err;
    long budget;
    size_t plen;
    char path[OBJ_PATH_MAX];
} dec;

static int fail(dec *d, const yaml_node_t *at, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int dec_message(dec *d, yaml_node_t *v,
                       const ProtobufCMessageDescriptor *desc,
                       ProtobufCMessage **out);
static int dec_slot(dec *d, const ProtobufCFieldDescriptor *f, yaml_node_t *v,
                    void *slot);

/* ---- scalars ------------------------------------------------------------- */

static bool span_is(const char *s, size_t n, const char *const *words)
{
    for (; *words; words++)
        if (strlen(*words) == n && !memcmp(*words, s, n))
            return true;
    return false;
}

static bool all_digits(const char *s, size_t n)
{
    if (!n)
        return false;
    for (size_t i = 0; i < n; i++)
        if (s[i] < '0' || s[i] > '9')
            return false;
    return true;
}

static bool is_float(const char *s, size_t n)
{
    size_t i = 0, digits = 0;
    if (i < n && (s[i] == '+' || s[i] == '-'))
        i++;
    static const char *const special[] = {".inf", ".Inf", ".INF", ".nan",
                                          ".NaN", ".NAN", NULL};
    if (span_is(s + i, n - i, special))
        return true;
    while (i < n && s[i] >= '0' && s[i] <= '9')
        i++, digits++;
    if (i < n && s[i] == '.') {
        i++;
        while (i < n && s[i] >= '0' && s[i] <= '9')
            i++, digits++;
    }
    if (!digits)
        return false;
    if (i < n && (s[i] == 'e' || s[i] == 'E')) {
        i++;
        if (i < n && (s[i] == '+' || s[i] == '-'))
            i++;
        size_t e = i;
        while (i < n && s[i] >= '0' && s[i] <= '9')
            i++;
        if (i == e)
            return false;
    }
    return i == n;
}

obj__scalar obj__plain_kind(const char *s, size_t n)
{
    static const char *const nulls[] = {"", "~", "null", "Null", "NULL", NULL};
    static const char *const bools[] = {
        "true", "True", "TRUE", "false", "False", "FALSE", "yes", "Yes",
        "YES",  "no",   "No",   "NO",    "on",    "On",    "ON",  "off",
        "Off",  "OFF",  "y",    "Y",     "n",     "N",     NULL};
    if (span_is(s, n, nulls))
        return OBJ__S_NULL;
    if (span_is(s, n, bools))
        return OBJ__S_BOOL;
    size_t i = (n && (s[0] == '+' || s[0] == '-')) ? 1 : 0;
    if (all_digits(s + i, n - i))
        return OBJ__S_INT;
    if (n > 2 && s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) {
        bool hex = true;
        for (size_t k = 2; k < n; k++)
            if (!strchr("0123456789abcdefABCDEF", s[k]))
                hex = false;
        if (hex)
            return OBJ__S_INT;
    }
    if (is_float(s, n))
        return OBJ__S_FLOAT;
    return OBJ__S_STR;
}

static const char *scalar_text(const yaml_node_t *v)
{
    return (const char *)v->data.scalar.value;
}

/* How v resolves; quoted and block scalars are always strings. */
static obj__scalar node_kind(const yaml_node_t *v)
{
    if (v->data.scalar.style != YAML_PLAIN_SCALAR_STYLE)
        return OBJ__S_STR;
    return obj__plain_kind(scalar_text(v), v->data.scalar.length);
}

static bool is_null(const yaml_node_t *v)
{
    return v->type == YAML_SCALAR_NODE && node_kind(v) == OBJ__S_NULL;
}

/* "a string", "a list", ... for wrong-type messages. */
static const char *node_desc(const yaml_node_t *v)
{
    if (v->type == YAML_MAPPING_NODE)
        return "a mapping";
    if (v->type == YAML_SEQUENCE_NODE)
        return "a list";
    switch (node_kind(v)) {
    case OBJ__S_NULL:
        return "null";
    case OBJ__S_BOOL:
        return "a boolean";
    case OBJ__S_INT:
        return "an integer";
    case OBJ__S_FLOAT:
        return "a number";
    default:
        return "a string";
    }
}

/* ---- errors and paths ---------------------------------------------------- */

static int fail(dec *d, const yaml_node_t *at, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    obj__error_vset(d->err, d->path, fmt, ap);
    va_end(ap);
    if (d->err)
        d->err->line = at ? (int)at->start_mark.line + 1 : 0;
    return OBJ_EDECODE;
}

static int oom(dec *d)
{
    obj__error_set(d->err, "", "out of memory");
    return -ENOMEM;
}

/* Appends a path element (truncated silently when the path is full). */
static size_t push_str(dec *d, const char *fmt, const char *s)
{
    size_t old = d->plen;
    int w = snprintf(d->path + old, sizeof d->path - old, fmt, s);
    (void)w;
    d->plen = strlen(d->path);
    return old;
}

static size_t push_idx(dec *d, size_t i)
{
    size_t old = d->plen;
    int w = snprintf(d->path + old, sizeof d->path - old, "[%zu]", i);
    (void)w;
    d->plen = strlen(d->path);
    return old;
}

static size_t push_key(dec *d, const char *key)
{
    return push_str(d, d->plen ? ".%s" : "%s", key);
}

static void pop(dec *d, size_t old)
{
    d->plen = old;
    d->path[old] = '\0';
}

static int wrong_type(dec *d, yaml_node_t *v, const char *want)
{
    return fail(d, v, "wrong type: expected %s, got %s", want, node_desc(v));
}

static int spend(dec *d, yaml_node_t *v)
{
    if (--d->budget < 0)
        return fail(d, v,
                    "document too large (over %ld values, counting an "
                    "alias each time it is used)",
                    NODE_BUDGET);
    return 0;
}

/* ---- values -------------------------------------------------------------- */

static int dec_int(dec *d, yaml_node_t *v, long long lo, long long hi,
                   long long *out)
{
    if (v->type != YAML_SCALAR_NODE || node_kind(v) != OBJ__S_INT)
        return wrong_type(d, v, "an integer");
    const char *s = scalar_text(v);
    const char *p = s + (*s == '+' || *s == '-');
    int base = (p[0] == '0' && (p[1] == 'x' || p[1] == 'X')) ? 16 : 10;
    errno = 0;
    char *end;
    long long x = strtoll(s, &end, base);
    if (errno == ERANGE || x < lo || x > hi)
        return fail(d, v, "integer %s out of range [%lld, %lld]", s, lo, hi);
    *out = x;
    return 0;
}

static int dec_int_or_string(dec *d, yaml_node_t *v, ProtobufCMessage **out)
{
    if (v->type != YAML_SCALAR_NODE ||
        (node_kind(v) != OBJ__S_INT && node_kind(v) != OBJ__S_STR))
        return wrong_type(d, v, "an integer or a string");
    Skiffpb__V1__IntOrString *m = (Skiffpb__V1__IntOrString *)obj__msg_new(
        d->a, &skiffpb__v1__int_or_string__descriptor);
    if (!m)
        return oom(d);
    m->has_type = 1;
    if (node_kind(v) == OBJ__S_INT) {
        long long x;
        int rc = dec_int(d, v, INT32_MIN, INT32_MAX, &x);
        if (rc)
            return rc;
        m->type = 0;
        m->has_int_val = 1;
        m->int_val = (int32_t)x;
    } else {
        m->type = 1;
        m->str_val = obj__strndup(d->a, scalar_text(v), v->data.scalar.length);
        if (!m->str_val)
            return oom(d);
    }
    *out = &m->base;
    return 0;
}

/* Kubernetes reads a quantity from a JSON string or number, so any plain
 * number is accepted as written. */
static int dec_quantity(dec *d, yaml_node_t *v, ProtobufCMessage **out)
{
    obj__scalar k = v->type == YAML_SCALAR_NODE ? node_kind(v) : OBJ__S_NULL;
    if (k != OBJ__S_INT && k != OBJ__S_FLOAT && k != OBJ__S_STR)
        return wrong_type(d, v, "a quantity");
    const char *s = scalar_text(v);
    if (strlen(s) != v->data.scalar.length)
        return fail(d, v, "bad quantity");
    obj_quantity q;
    int rc = obj_quantity_parse(s, &q);
    if (rc == OBJ_EQUANTITY_RANGE)
        return fail(d, v, "bad quantity \"%.64s\": out of range", s);
    if (rc)
        return fail(d, v, "bad quantity \"%.64s\"", s);
    Skiffpb__V1__Quantity *m = (Skiffpb__V1__Quantity *)obj__msg_new(
        d->a, &skiffpb__v1__quantity__descriptor);
    if (!m || !(m->string = obj__strdup(d->a, s)))
        return oom(d);
    *out = &m->base;
    return 0;
}

/* Decodes v into the storage of one value of f's type (a field, or one
 * element of a repeated field). */
static int dec_slot(dec *d, const ProtobufCFieldDescriptor *f, yaml_node_t *v,
                    void *slot)
{
    int rc = spend(d, v);
    if (rc)
        return rc;
    long long x;
    switch (f->type) {
    case PROTOBUF_C_TYPE_STRING:
        if (v->type != YAML_SCALAR_NODE || node_kind(v) != OBJ__S_STR)
            return wrong_type(d, v, "a string");
        /* protobuf strings end at the first NUL; refuse rather than cut. */
        if (strlen(scalar_text(v)) != v->data.scalar.length)
            return fail(d, v, "strings must not contain NUL");
        if (!(*(char **)slot =
                  obj__strndup(d->a, scalar_text(v), v->data.scalar.length)))
            return oom(d);
        return 0;
    case PROTOBUF_C_TYPE_INT32:
    case PROTOBUF_C_TYPE_SINT32:
    case PROTOBUF_C_TYPE_SFIXED32:
        if ((rc = dec_int(d, v, INT32_MIN, INT32_MAX, &x)))
            return rc;
        *(int32_t *)slot = (int32_t)x;
        return 0;
    case PROTOBUF_C_TYPE_INT64:
    case PROTOBUF_C_TYPE_SINT64:
    case PROTOBUF_C_TYPE_SFIXED64:
        if ((rc = dec_int(d, v, INT64_MIN, INT64_MAX, &x)))
            return rc;
        *(int64_t *)slot = (int64_t)x;
        return 0;
    case PROTOBUF_C_TYPE_BOOL:
        if (v->type != YAML_SCALAR_NODE || node_kind(v) != OBJ__S_BOOL)
            return wrong_type(d, v, "a boolean");
        *(protobuf_c_boolean *)slot = strchr("tTyYoO", scalar_text(v)[0]) &&
                                      strcmp(scalar_text(v), "off") &&
                                      strcmp(scalar_text(v), "Off") &&
                                      strcmp(scalar_text(v), "OFF");
        return 0;
    case PROTOBUF_C_TYPE_MESSAGE: {
        const ProtobufCMessageDescriptor *md = f->descriptor;
        ProtobufCMessage **mp = slot;
        if (obj__is_int_or_string(md))
            return dec_int_or_string(d, v, mp);
        if (obj__is_quantity(md))
            return dec_quantity(d, v, mp);
        return dec_message(d, v, md, mp);
    }
    default:
        /* objects.proto uses no other types. */
        return fail(d, v, "field type not supported");
    }
}

static size_t slot_size(const ProtobufCFieldDescriptor *f)
{
    switch (f->type) {
    case PROTOBUF_C_TYPE_INT32:
    case PROTOBUF_C_TYPE_SINT32:
    case PROTOBUF_C_TYPE_SFIXED32:
        return sizeof(int32_t);
    case PROTOBUF_C_TYPE_INT64:
    case PROTOBUF_C_TYPE_SINT64:
    case PROTOBUF_C_TYPE_SFIXED64:
        return sizeof(int64_t);
    case PROTOBUF_C_TYPE_BOOL:
        return sizeof(protobuf_c_boolean);
    default:
        return sizeof(void *);
    }
}

typedef struct kref {
    const unsigned char *s;
    size_t n, i;
} kref;

static int kref_cmp(const void *pa, const void *pb)
{
    const kref *a = pa, *b = pb;
    int c = memcmp(a->s, b->s, a->n < b->n ? a->n : b->n);
    if (c)
        return c;
    if (a->n != b->n)
        return a->n < b->n ? -1 : 1;
    return a->i < b->i ? -1 : a->i > b->i;
}

/* The index of the first pair (in document order) whose key repeats an
 * earlier one, or n.  Sorting keeps a mapping of 10^5 labels from costing
 * 10^10 comparisons; the walk then reports the duplicate when it gets
 * there, so errors still come in document order. */
static int first_dup(dec *d, yaml_node_pair_t *s, size_t n, size_t *out)
{
    *out = n;
    if (n < 2)
        return 0;
    kref *r = cm_arena_alloc(d->a, n * sizeof *r);
    if (!r)
        return oom(d);
    size_t m = 0;
    for (size_t i = 0; i < n; i++) {
        yaml_node_t *k = yaml_document_get_node(d->doc, s[i].key);
        if (k && k->type == YAML_SCALAR_NODE)
            r[m++] = (kref){k->data.scalar.value, k->data.scalar.length, i};
    }
    qsort(r, m, sizeof *r, kref_cmp);
    for (size_t j = 1; j < m; j++)
        if (r[j].n == r[j - 1].n && !memcmp(r[j].s, r[j - 1].s, r[j].n) &&
            r[j].i < *out)
            *out = r[j].i;
    return 0;
}

/* map<string, V>: a mapping whose keys are any scalars (YAML-to-JSON makes
 * them strings) and whose values are V's. */
static int dec_map(dec *d, const ProtobufCFieldDescriptor *f, yaml_node_t *v,
                   ProtobufCMessage *m)
{
    if (v->type != YAML_MAPPING_NODE)
        return wrong_type(d, v, "a mapping");
    yaml_node_pair_t *s = v->data.mapping.pairs.start;
    size_t n = (size_t)(v->data.mapping.pairs.top - s);
    ProtobufCMessage **arr = n ? cm_arena_alloc(d->a, n * sizeof *arr) : NULL;
    if (n && !arr)
        return oom(d);
    const ProtobufCMessageDescriptor *ed = f->descriptor;
    size_t dup;
    int rc = first_dup(d, s, n, &dup);
    if (rc)
        return rc;
    for (size_t i = 0; i < n; i++) {
        yaml_node_t *k = yaml_document_get_node(d->doc, s[i].key);
        yaml_node_t *val = yaml_document_get_node(d->doc, s[i].value);
        if (!k || !val)
            return fail(d, v, "malformed mapping");
        if (k->type != YAML_SCALAR_NODE || is_null(k))
            return fail(d, k, "keys must be strings");
        const char *key = scalar_text(k);
        size_t old = push_str(d, "[%s]", key);
        if (strlen(key) != k->data.scalar.length)
            return fail(d, k, "keys must not contain NUL");
        if (i == dup)
            return fail(d, k, "duplicate key");
        ProtobufCMessage *e = obj__msg_new(d->a, ed);
        if (!e || !(*(char **)obj__field_ptr(e, &ed->fields[0]) =
                        obj__strdup(d->a, key)))
            return oom(d);
        rc =
            dec_slot(d, &ed->fields[1], val, obj__field_ptr(e, &ed->fields[1]));
        if (rc)
            return rc;
        arr[i] = e;
        pop(d, old);
    }
    *obj__field_count(m, f) = n;
    *(void **)obj__field_ptr(m, f) = arr;
    return 0;
}

static int dec_field(dec *d, ProtobufCMessage *m,
                     const ProtobufCFieldDescriptor *f, yaml_node_t *v)
{
    /* null is "not set", as in Kubernetes' JSON decoding. */
    if (is_null(v))
        return 0;
    if (f->label != PROTOBUF_C_LABEL_REPEATED) {
        int rc = dec_slot(d, f, v, obj__field_ptr(m, f));
        if (!rc && f->type != PROTOBUF_C_TYPE_STRING &&
            f->type != PROTOBUF_C_TYPE_MESSAGE)
            *(protobuf_c_boolean *)((char *)m + f->quantifier_offset) = 1;
        return rc;
    }
    if (f->type == PROTOBUF_C_TYPE_MESSAGE && obj__is_map_entry(f->descriptor))
        return dec_map(d, f, v, m);
    if (v->type != YAML_SEQUENCE_NODE)
        return wrong_type(d, v, "a list");
    yaml_node_item_t *it = v->data.sequence.items.start;
    size_t n = (size_t)(v->data.sequence.items.top - it);
    size_t sz = slot_size(f);
    char *arr = n ? cm_arena_alloc(d->a, n * sz) : NULL;
    if (n && !arr)
        return oom(d);
    for (size_t i = 0; i < n; i++) {
        yaml_node_t *e = yaml_document_get_node(d->doc, it[i]);
        if (!e)
            return fail(d, v, "malformed list");
        size_t old = push_idx(d, i);
        if (is_null(e))
            return wrong_type(d, e,
                              f->type == PROTOBUF_C_TYPE_MESSAGE ? "a mapping"
                                                                 : "a value");
        int rc = dec_slot(d, f, e, arr + i * sz);
        if (rc)
            return rc;
        pop(d, old);
    }
    *obj__field_count(m, f) = n;
    *(void **)obj__field_ptr(m, f) = arr;
    return 0;
}

static int dec_message(dec *d, yaml_node_t *v,
                       const ProtobufCMessageDescriptor *desc,
                       ProtobufCMessage **out)
{
    if (v->type != YAML_MAPPING_NODE)
        return wrong_type(d, v, "a mapping");
    ProtobufCMessage *m = obj__msg_new(d->a, desc);
    if (!m)
        return oom(d);
    yaml_node_pair_t *s = v->data.mapping.pairs.start;
    size_t n = (size_t)(v->data.mapping.pairs.top - s);
    size_t dup;
    int rc = first_dup(d, s, n, &dup);
    if (rc)
        return rc;
    for (size_t i = 0; i < n; i++) {
        yaml_node_t *k = yaml_document_get_node(d->doc, s[i].key);
        yaml_node_t *val = yaml_document_get_node(d->doc, s[i].value);
        if (!k || !val)
            return fail(d, v, "malformed mapping");
        if (k->type != YAML_SCALAR_NODE || is_null(k))
            return fail(d, k, "field names must be strings");
        const char *key = scalar_text(k);
        size_t old = push_key(d, key);
        if (strlen(key) != k->data.scalar.length)
            return fail(d, k, "unknown field");
        if (i == dup)
            return fail(d, k, "duplicate field");
        const ProtobufCFieldDescriptor *f = obj__field_by_json(desc, key);
        if (!f)
            return fail(d, k, "unknown field");
        if ((rc = dec_field(d, m, f, val)))
            return rc;
        pop(d, old);
    }
    *out = m;
    return 0;
}

/* ---- documents ----------------------------------------------------------- */

/* The string value of the top-level key `name`, NULL when absent. */
static int top_string(dec *d, yaml_node_t *root, const char *name,
                      yaml_node_t **out)
{
    *out = NULL;
    for (yaml_node_pair_t *p = root->data.mapping.pairs.start;
         p < root->data.mapping.pairs.top; p++) {
        yaml_node_t *k = yaml_document_get_node(d->doc, p->key);
        yaml_node_t *v = yaml_document_get_node(d->doc, p->value);
        if (!k || !v || k->type != YAML_SCALAR_NODE ||
            strcmp(scalar_text(k), name))
            continue;
        if (is_null(v))
            return 0;
        if (v->type != YAML_SCALAR_NODE || node_kind(v) != OBJ__S_STR) {
            size_t old = push_key(d, name);
            int rc = wrong_type(d, v, "a string");
            pop(d, old);
            return rc;
        }
        *out = v;
        return 0;
    }
    return 0;
}

static int dec_document(dec *d, yaml_node_t *root, obj_object **out)
{
    if (root->type != YAML_MAPPING_NODE)
        return fail(d, root,
                    "expected a mapping (a Kubernetes object), "
                    "got %s",
                    node_desc(root));
    yaml_node_t *av, *kv;
    int rc = top_string(d, root, "apiVersion", &av);
    if (!rc)
        rc = top_string(d, root, "kind", &kv);
    if (rc)
        return rc;
    if (!av) {
        push_key(d, "apiVersion");
        return fail(d, root, "missing required field");
    }
    if (!kv) {
        push_key(d, "kind");
        return fail(d, root, "missing required field");
    }
    const obj_kind *k = obj_kind_find(scalar_text(kv));
    if (!k) {
        push_key(d, "kind");
        return fail(d, kv, "unsupported kind \"%.64s\"", scalar_text(kv));
    }
    if (strcmp(k->api_version, scalar_text(av))) {
        push_key(d, "apiVersion");
        return fail(d, av,
                    "no matches for kind \"%s\" in version \"%.64s\" "
                    "(want \"%s\")",
                    k->kind, scalar_text(av), k->api_version);
    }
    ProtobufCMessage *m;
    if ((rc = dec_message(d, root, k->desc, &m)))
        return rc;
    obj_object *o =
        (obj_object *)obj__msg_new(d->a, &skiffpb__v1__object__descriptor);
    if (!o)
        return oom(d);
    obj_object_wrap(o, m);
    *out = o;
    return 0;
}

/* The first pass (see the top of the file).  Syntax errors are left to
 * the loader, which reports them with the same words. */
static int check_depth(dec *d, const void *buf, size_t len)
{
    yaml_parser_t p;
    if (!yaml_parser_initialize(&p))
        return oom(d);
    yaml_parser_set_input_string(&p, buf, len);
    int depth = 0, rc = 0;
    for (;;) {
        yaml_event_t ev;
        if (!yaml_parser_parse(&p, &ev)) {
            if (p.error == YAML_MEMORY_ERROR)
                rc = oom(d);
            break;
        }
        yaml_event_type_t t = ev.type;
        size_t line = ev.start_mark.line;
        yaml_event_delete(&ev);
        if (t == YAML_STREAM_END_EVENT)
            break;
        if (t == YAML_SEQUENCE_END_EVENT || t == YAML_MAPPING_END_EVENT)
            depth--;
        if ((t == YAML_SEQUENCE_START_EVENT || t == YAML_MAPPING_START_EVENT) &&
            ++depth > DEPTH_MAX) {
            rc = fail(d, NULL, "yaml: nested deeper than %d levels", DEPTH_MAX);
            if (d->err)
                d->err->line = (int)line + 1;
            break;
        }
    }
    yaml_parser_delete(&p);
    return rc;
}

static int append(dec *d, obj_object ***arr, size_t *n, size_t *cap,
                  obj_object *o)
{
    if (*n == *cap) {
        size_t nc = *cap ? *cap * 2 : 4;
        obj_object **na = cm_arena_alloc(d->a, nc * sizeof *na);
        if (!na)
            return oom(d);
        if (*n)
            memcpy(na, *arr, *n * sizeof *na);
        *arr = na;
        *cap = nc;
    }
    (*arr)[(*n)++] = o;
    return 0;
}

int obj_yaml_decode(const void *buf, size_t len, cm_arena *a, obj_object ***out,
                    size_t *n, obj_error *err)
{
    yaml_parser_t parser;
    obj_object **arr = NULL;
    size_t cnt = 0, cap = 0;
    int rc = 0;
    dec d = {.a = a, .err = err};

    if (err)
        memset(err, 0, sizeof *err);
    if ((rc = check_depth(&d, buf, len)))
        return rc;
    if (!yaml_parser_initialize(&parser))
        return oom(&d);
    yaml_parser_set_input_string(&parser, buf, len);
    for (;;) {
        yaml_document_t doc;
        if (!yaml_parser_load(&parser, &doc)) {
            if (parser.error == YAML_MEMORY_ERROR) {
                rc = oom(&d);
            } else {
                yaml_mark_t mk =
                    parser.problem ? parser.problem_mark : parser.context_mark;
                obj__error_set(err, "", "yaml: %s%s%s",
                               parser.context ? parser.context : "",
                               parser.context ? ": " : "",
                               parser.problem ? parser.problem : "error");
                if (err)
                    err->line = (int)mk.line + 1;
                rc = OBJ_EDECODE;
            }
            break;
        }
        yaml_node_t *root = yaml_document_get_root_node(&doc);
        if (!root) {
            yaml_document_delete(&doc);
            break;
        }
        obj_object *o = NULL;
        d.doc = &doc;
        d.budget = NODE_BUDGET;
        d.plen = 0;
        d.path[0] = '\0';
        if (!is_null(root)) {
            rc = dec_document(&d, root, &o);
            if (!rc)
                rc = append(&d, &arr, &cnt, &cap, o);
        }
        yaml_document_delete(&doc);
        if (rc)
            break;
    }
    yaml_parser_delete(&parser);
    if (rc)
        return rc;
    *out = arr;
    *n = cnt;
    return 0;
}
