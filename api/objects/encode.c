/*
 * Objects to YAML and JSON.
 *
 * One walk over a message's descriptor feeds either of two sinks: libyaml's
 * emitter (which knows YAML's quoting rules better than we would) or a
 * small JSON writer.  The walk writes fields in .proto order under their
 * Kubernetes names and leaves out what is not set: absent scalars, NULL
 * strings and messages, empty lists and maps.  A message that is set but
 * empty is written as {} (kubectl writes `resources: {}` the same way), so
 * decoding the output gives back the same presence of every field.
 *
 * The one trap is YAML's implicit typing: a string "true", "8080" or "1.5"
 * written plain would read back as a boolean or a number, which the
 * decoder rightly refuses in a string field.  Such strings are written
 * double-quoted; obj__plain_kind is the same resolver the decoder uses, so
 * the two cannot disagree.
 */
#include "objects_int.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include <yaml.h>

#define JSON_DEPTH_MAX 64

typedef enum { V_STR, V_NUM, V_BOOL } vkind;

typedef struct sink sink;
struct sink {
    int (*map_begin)(sink *s);
    int (*map_end)(sink *s);
    int (*list_begin)(sink *s);
    int (*list_end)(sink *s);
    /* A mapping key (always a string). */
    int (*key)(sink *s, const char *k);
    int (*value)(sink *s, const char *text, vkind kind);
    /* YAML */
    yaml_emitter_t *em;
    /* JSON */
    cm_buf *out;
    int depth;
    bool first[JSON_DEPTH_MAX];
    bool after_key;
};

static int walk_message(sink *s, const ProtobufCMessage *m);

/* ---- YAML sink ----------------------------------------------------------- */

static int y_emit(sink *s, yaml_event_t *ev, int ok)
{
    if (!ok)
        return -ENOMEM;
    return yaml_emitter_emit(s->em, ev) ? 0 : -ENOMEM;
}

static int y_map_begin(sink *s)
{
    yaml_event_t ev;
    return y_emit(s, &ev,
                  yaml_mapping_start_event_initialize(
                      &ev, NULL, NULL, 1, YAML_BLOCK_MAPPING_STYLE));
}

static int y_map_end(sink *s)
{
    yaml_event_t ev;
    return y_emit(s, &ev, yaml_mapping_end_event_initialize(&ev));
}

static int y_list_begin(sink *s)
{
    yaml_event_t ev;
    return y_emit(s, &ev,
                  yaml_sequence_start_event_initialize(
                      &ev, NULL, NULL, 1, YAML_BLOCK_SEQUENCE_STYLE));
}

static int y_list_end(sink *s)
{
    yaml_event_t ev;
    return y_emit(s, &ev, yaml_sequence_end_event_initialize(&ev));
}

/* YAML 1.1 reads a plain 2026-01-02... as a timestamp; kubectl quotes
 * them, and so do we (the decoder accepts either). */
static bool looks_like_time(const char *t)
{
    static const char shape[] = "dddd-dd-dd";
    for (size_t i = 0; shape[i]; i++) {
        bool digit = t[i] >= '0' && t[i] <= '9';
        if (shape[i] == 'd' ? !digit : t[i] != shape[i])
            return false;
    }
    return true;
}

static int y_value(sink *s, const char *text, vkind kind)
{
    yaml_scalar_style_t style = YAML_PLAIN_SCALAR_STYLE;
    if (kind == V_STR)
        style = obj__plain_kind(text, strlen(text)) == OBJ__S_STR &&
                        !looks_like_time(text)
                    ? YAML_ANY_SCALAR_STYLE
                    : YAML_DOUBLE_QUOTED_SCALAR_STYLE;
    yaml_event_t ev;
    return y_emit(s, &ev,
                  yaml_scalar_event_initialize(&ev, NULL, NULL,
                                               (yaml_char_t *)text,
                                               (int)strlen(text), 1, 1, style));
}

static int y_key(sink *s, const char *k)
{
    return y_value(s, k, V_STR);
}

static int y_write(void *data, unsigned char *buf, size_t size)
{
    return cm_buf_append(data, buf, size) == 0;
}

/* ---- JSON sink ----------------------------------------------------------- */

static int j_put(sink *s, const char *p, size_t n)
{
    return cm_buf_append(s->out, p, n);
}

static int j_indent(sink *s)
{
    int rc = j_put(s, "\n", 1);
    for (int i = 0; !rc && i < s->depth; i++)
        rc = j_put(s, "    ", 4);
    return rc;
}

/* Writes the separator before a new element of the enclosing container. */
static int j_elem(sink *s)
{
    if (s->after_key) {
        s->after_key = false;
        return 0;
    }
    if (s->depth == 0)
        return 0;
    int rc = 0;
    if (!s->first[s->depth])
        rc = j_put(s, ",", 1);
    s->first[s->depth] = false;
    return rc ? rc : j_indent(s);
}

static int j_string(sink *s, const char *t)
{
    int rc = j_put(s, "\"", 1);
    for (const unsigned char *p = (const unsigned char *)t; !rc && *p; p++) {
        char esc[8];
        if (*p == '"' || *p == '\\') {
            esc[0] = '\\';
            esc[1] = (char)*p;
            rc = j_put(s, esc, 2);
        } else if (*p == '\n') {
            rc = j_put(s, "\\n", 2);
        } else if (*p == '\t') {
            rc = j_put(s, "\\t", 2);
        } else if (*p < 0x20) {
            snprintf(esc, sizeof esc, "\\u%04x", *p);
            rc = j_put(s, esc, 6);
        } else {
            rc = j_put(s, (const char *)p, 1);
        }
    }
    return rc ? rc : j_put(s, "\"", 1);
}

static int j_open(sink *s, char c)
{
    int rc = j_elem(s);
    if (!rc)
        rc = j_put(s, &c, 1);
    if (rc)
        return rc;
    if (s->depth + 1 >= JSON_DEPTH_MAX)
        return CM_ETOOBIG;
    s->first[++s->depth] = true;
    return 0;
}

static int j_close(sink *s, char c)
{
    bool empty = s->first[s->depth];
    s->depth--;
    int rc = empty ? 0 : j_indent(s);
    return rc ? rc : j_put(s, &c, 1);
}

static int j_map_begin(sink *s)
{
    return j_open(s, '{');
}
static int j_map_end(sink *s)
{
    return j_close(s, '}');
}
static int j_list_begin(sink *s)
{
    return j_open(s, '[');
}
static int j_list_end(sink *s)
{
    return j_close(s, ']');
}

static int j_key(sink *s, const char *k)
{
    int rc = j_elem(s);
    if (!rc)
        rc = j_string(s, k);
    if (!rc)
        rc = j_put(s, ": ", 2);
    s->after_key = true;
    return rc;
}

static int j_value(sink *s, const char *text, vkind kind)
{
    int rc = j_elem(s);
    if (rc)
        return rc;
    return kind == V_STR ? j_string(s, text) : j_put(s, text, strlen(text));
}

/* ---- the walk ------------------------------------------------------------ */

static int walk_value(sink *s, const ProtobufCFieldDescriptor *f,
                      const void *slot)
{
    char num[32];
    switch (f->type) {
    case PROTOBUF_C_TYPE_STRING:
        return s->value(s, *(char *const *)slot, V_STR);
    case PROTOBUF_C_TYPE_INT32:
    case PROTOBUF_C_TYPE_SINT32:
    case PROTOBUF_C_TYPE_SFIXED32:
        snprintf(num, sizeof num, "%" PRId32, *(const int32_t *)slot);
        return s->value(s, num, V_NUM);
    case PROTOBUF_C_TYPE_INT64:
    case PROTOBUF_C_TYPE_SINT64:
    case PROTOBUF_C_TYPE_SFIXED64:
        snprintf(num, sizeof num, "%" PRId64, *(const int64_t *)slot);
        return s->value(s, num, V_NUM);
    case PROTOBUF_C_TYPE_BOOL:
        return s->value(s, *(const protobuf_c_boolean *)slot ? "true" : "false",
                        V_BOOL);
    case PROTOBUF_C_TYPE_MESSAGE: {
        const ProtobufCMessage *m = *(ProtobufCMessage *const *)slot;
        if (obj__is_int_or_string(f->descriptor)) {
            const Skiffpb__V1__IntOrString *v =
                (const Skiffpb__V1__IntOrString *)m;
            if (v->type == 1)
                return s->value(s, v->str_val ? v->str_val : "", V_STR);
            snprintf(num, sizeof num, "%" PRId32, v->int_val);
            return s->value(s, num, V_NUM);
        }
        if (obj__is_quantity(f->descriptor)) {
            const Skiffpb__V1__Quantity *q = (const Skiffpb__V1__Quantity *)m;
            return s->value(s, q->string ? q->string : "0", V_STR);
        }
        return walk_message(s, m);
    }
    default:
        return CM_EINVAL;
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

static int walk_message(sink *s, const ProtobufCMessage *m)
{
    const ProtobufCMessageDescriptor *d = m->descriptor;
    int rc = s->map_begin(s);
    for (unsigned i = 0; !rc && i < d->n_fields; i++) {
        const ProtobufCFieldDescriptor *f = &d->fields[i];
        char name[OBJ__NAME_MAX];
        obj__camel(f->name, name);
        if (f->label != PROTOBUF_C_LABEL_REPEATED) {
            if (!obj__field_present(m, f))
                continue;
            rc = s->key(s, name);
            if (!rc)
                rc = walk_value(s, f, obj__field_ptr(m, f));
            continue;
        }
        size_t n = *obj__field_count(m, f);
        const char *arr = *(char *const *)obj__field_ptr(m, f);
        if (!n)
            continue;
        rc = s->key(s, name);
        if (rc)
            break;
        if (f->type == PROTOBUF_C_TYPE_MESSAGE &&
            obj__is_map_entry(f->descriptor)) {
            /* map<string, V>: entries in their stored order. */
            const ProtobufCMessageDescriptor *ed = f->descriptor;
            const ProtobufCFieldDescriptor *kf = &ed->fields[0];
            const ProtobufCFieldDescriptor *vf = &ed->fields[1];
            rc = s->map_begin(s);
            for (size_t j = 0; !rc && j < n; j++) {
                const ProtobufCMessage *e = ((ProtobufCMessage *const *)arr)[j];
                const char *k = *(char *const *)obj__field_ptr(e, kf);
                rc = s->key(s, k ? k : "");
                if (rc)
                    break;
                if (obj__field_present(e, vf))
                    rc = walk_value(s, vf, obj__field_ptr(e, vf));
                else
                    rc = s->value(s, "", V_STR);
            }
            if (!rc)
                rc = s->map_end(s);
            continue;
        }
        rc = s->list_begin(s);
        size_t sz = slot_size(f);
        for (size_t j = 0; !rc && j < n; j++)
            rc = walk_value(s, f, arr + j * sz);
        if (!rc)
            rc = s->list_end(s);
    }
    return rc ? rc : s->map_end(s);
}

/* ---- public -------------------------------------------------------------- */

int obj_yaml_encode(const obj_object *o, cm_buf *out)
{
    const ProtobufCMessage *m = obj_object_msg(o);
    if (!m)
        return CM_EINVAL;
    yaml_emitter_t em;
    if (!yaml_emitter_initialize(&em))
        return -ENOMEM;
    yaml_emitter_set_output(&em, y_write, out);
    yaml_emitter_set_unicode(&em, 1);
    yaml_emitter_set_width(&em, -1);
    yaml_emitter_set_indent(&em, 2);
    sink s = {.map_begin = y_map_begin,
              .map_end = y_map_end,
              .list_begin = y_list_begin,
              .list_end = y_list_end,
              .key = y_key,
              .value = y_value,
              .em = &em};
    yaml_event_t ev;
    int rc = y_emit(
        &s, &ev, yaml_stream_start_event_initialize(&ev, YAML_UTF8_ENCODING));
    if (!rc)
        rc = y_emit(
            &s, &ev,
            yaml_document_start_event_initialize(&ev, NULL, NULL, NULL, 1));
    if (!rc)
        rc = walk_message(&s, m);
    if (!rc)
        rc = y_emit(&s, &ev, yaml_document_end_event_initialize(&ev, 1));
    if (!rc)
        rc = y_emit(&s, &ev, yaml_stream_end_event_initialize(&ev));
    if (!rc && !yaml_emitter_flush(&em))
        rc = -ENOMEM;
    yaml_emitter_delete(&em);
    return rc;
}

int obj_json_encode(const obj_object *o, cm_buf *out)
{
    const ProtobufCMessage *m = obj_object_msg(o);
    if (!m)
        return CM_EINVAL;
    sink s = {.map_begin = j_map_begin,
              .map_end = j_map_end,
              .list_begin = j_list_begin,
              .list_end = j_list_end,
              .key = j_key,
              .value = j_value,
              .out = out};
    int rc = walk_message(&s, m);
    return rc ? rc : j_put(&s, "\n", 1);
}
