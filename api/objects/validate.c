/*
 * Validation of objects, as the Kubernetes API server validates them on
 * create, after defaulting.
 *
 * The rules and the wording of the messages follow Kubernetes'
 * (k8s.io/kubernetes/pkg/apis/.../validation): a field path, then
 * "Required value", "Invalid value: <v>: <why>", "Unsupported value: <v>:
 * supported values: ..." or "Forbidden: <why>".  Kubernetes collects every
 * error; we stop at the first, since admission only needs a reason to
 * refuse and a person fixes one line at a time anyway.
 *
 * This file holds the walk's path bookkeeping, the name and label rules,
 * metadata, and the kinds other than Pod; Pod specs (also templates) are in
 * validate_pod.c.
 */
#include "objects_int.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define LABEL_MAX 63
#define SUBDOMAIN_MAX 253
#define DNS_LABEL_MSG                                                          \
    "a lowercase RFC 1123 label must consist of lower case alphanumeric "      \
    "characters or '-', and must start and end with an alphanumeric "          \
    "character"
#define DNS_SUBDOMAIN_MSG                                                      \
    "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric "  \
    "characters, '-' or '.', and must start and end with an alphanumeric "     \
    "character"

static const char *const selector_ops[] = {"In", "NotIn", "Exists",
                                           "DoesNotExist", NULL};

/* ---- path bookkeeping ---------------------------------------------------- */

static size_t vappend(obj__vctx *v, const char *pre, const char *s,
                      const char *post)
{
    size_t old = v->plen;
    snprintf(v->path + old, sizeof v->path - old, "%s%s%s", pre, s, post);
    v->plen = strlen(v->path);
    return old;
}

size_t obj__v_field(obj__vctx *v, const char *name)
{
    return vappend(v, v->plen ? "." : "", name, "");
}

size_t obj__v_index(obj__vctx *v, size_t i)
{
    char num[24];
    snprintf(num, sizeof num, "%zu", i);
    return vappend(v, "[", num, "]");
}

size_t obj__v_key(obj__vctx *v, const char *key)
{
    return vappend(v, "[", key, "]");
}

void obj__v_pop(obj__vctx *v, size_t old)
{
    v->plen = old;
    v->path[old] = '\0';
}

int obj__v_fail(obj__vctx *v, const char *field, const char *fmt, ...)
{
    if (field)
        obj__v_field(v, field);
    va_list ap;
    va_start(ap, fmt);
    obj__error_vset(v->err, v->path, fmt, ap);
    va_end(ap);
    return OBJ_EINVALID;
}

int obj__v_required(obj__vctx *v, const char *field, const char *s)
{
    return s && s[0] ? 0 : obj__v_fail(v, field, "Required value");
}

int obj__v_enum(obj__vctx *v, const char *field, const char *s, bool required,
                const char *const *allowed)
{
    if (!s || !s[0])
        return required ? obj__v_fail(v, field, "Required value") : 0;
    for (const char *const *a = allowed; *a; a++)
        if (!strcmp(*a, s))
            return 0;
    char list[160] = "";
    size_t o = 0;
    for (const char *const *a = allowed; *a && o < sizeof list; a++) {
        int w = snprintf(list + o, sizeof list - o, "%s\"%s\"",
                         a == allowed ? "" : ", ", *a);
        o += w > 0 ? (size_t)w : 0;
    }
    return obj__v_fail(v, field,
                       "Unsupported value: \"%.64s\": supported values: %s", s,
                       list);
}

int obj__v_range(obj__vctx *v, const char *field, int64_t x, int64_t lo,
                 int64_t hi)
{
    if (x >= lo && x <= hi)
        return 0;
    /* The type's maximum means "no upper bound" in the message. */
    if (hi >= INT32_MAX)
        return obj__v_fail(v, field,
                           "Invalid value: %lld: must be greater than or "
                           "equal to %lld",
                           (long long)x, (long long)lo);
    return obj__v_fail(v, field,
                       "Invalid value: %lld: must be between %lld and %lld, "
                       "inclusive",
                       (long long)x, (long long)lo, (long long)hi);
}

/* ---- names --------------------------------------------------------------- */

static bool is_lower_alnum(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
}

static bool is_alnum(char c)
{
    return is_lower_alnum(c) || (c >= 'A' && c <= 'Z');
}

/* [a-z0-9]([-a-z0-9]*[a-z0-9])? over s[0..n), at most max long. */
static bool label_span(const char *s, size_t n, size_t max)
{
    if (!n || n > max || !is_lower_alnum(s[0]) || !is_lower_alnum(s[n - 1]))
        return false;
    for (size_t i = 0; i < n; i++)
        if (!is_lower_alnum(s[i]) && s[i] != '-')
            return false;
    return true;
}

bool obj__is_dns1123_label(const char *s)
{
    return s && label_span(s, strlen(s), LABEL_MAX);
}

bool obj__is_dns1123_subdomain(const char *s)
{
    if (!s || !s[0] || strlen(s) > SUBDOMAIN_MAX)
        return false;
    for (const char *p = s;;) {
        const char *dot = strchr(p, '.');
        size_t n = dot ? (size_t)(dot - p) : strlen(p);
        /* Kubernetes' regex does not cap the parts, only the whole. */
        if (!label_span(p, n, SUBDOMAIN_MAX))
            return false;
        if (!dot)
            return true;
        p = dot + 1;
    }
}

bool obj__is_port_name(const char *s)
{
    size_t n = s ? strlen(s) : 0;
    bool letter = false;
    if (!n || n > 15 || s[0] == '-' || s[n - 1] == '-' || strstr(s, "--"))
        return false;
    for (size_t i = 0; i < n; i++) {
        if (!is_lower_alnum(s[i]) && s[i] != '-')
            return false;
        letter |= s[i] >= 'a' && s[i] <= 'z';
    }
    return letter;
}

/* ([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9], at most 63: a label value or
 * the name part of a qualified name. */
static bool is_label_name(const char *s, size_t n)
{
    if (!n || n > LABEL_MAX || !is_alnum(s[0]) || !is_alnum(s[n - 1]))
        return false;
    for (size_t i = 0; i < n; i++)
        if (!is_alnum(s[i]) && !strchr("-_.", s[i]))
            return false;
    return true;
}

/* Kubernetes' qualified name: [prefix/]name, prefix a DNS subdomain. */
static bool is_qualified_name(const char *s)
{
    if (!s)
        return false;
    const char *slash = strchr(s, '/');
    if (!slash)
        return is_label_name(s, strlen(s));
    char prefix[SUBDOMAIN_MAX + 1];
    size_t pn = (size_t)(slash - s);
    if (!pn || pn > SUBDOMAIN_MAX)
        return false;
    memcpy(prefix, s, pn);
    prefix[pn] = '\0';
    return obj__is_dns1123_subdomain(prefix) &&
           is_label_name(slash + 1, strlen(slash + 1));
}

static bool is_label_value(const char *s)
{
    return !s || !s[0] || is_label_name(s, strlen(s));
}

/* What Kubernetes' path-segment names (RBAC objects) may not be. */
static bool is_path_segment(const char *s)
{
    return s && s[0] && strcmp(s, ".") && strcmp(s, "..") && !strchr(s, '/') &&
           !strchr(s, '%');
}

/* ---- duplicates ---------------------------------------------------------- */

typedef struct dup_ref {
    const void *p;
    size_t i;
    int (*cmp)(const void *, const void *);
} dup_ref;

/* Equal items sort by position, so the later copy follows the earlier. */
static int dup_ref_cmp(const void *pa, const void *pb)
{
    const dup_ref *a = pa, *b = pb;
    int c = a->cmp(a->p, b->p);
    if (c)
        return c;
    return a->i < b->i ? -1 : a->i > b->i;
}

int obj__first_dup(const void *const *items, size_t n,
                   int (*cmp)(const void *, const void *), size_t *out)
{
    *out = n;
    if (n < 2)
        return 0;
    dup_ref *r = cm_calloc(n, sizeof *r);
    if (!r)
        return -ENOMEM;
    for (size_t i = 0; i < n; i++)
        r[i] = (dup_ref){items[i], i, cmp};
    qsort(r, n, sizeof *r, dup_ref_cmp);
    for (size_t j = 1; j < n; j++)
        if (!cmp(r[j].p, r[j - 1].p) && r[j].i < *out)
            *out = r[j].i;
    cm_free(r);
    return 0;
}

static int str_cmp(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

int obj__sorted_names(const char **names, size_t n, const char ***out,
                      size_t *out_n)
{
    const char **v = cm_calloc(n ? n : 1, sizeof *v);
    if (!v)
        return -ENOMEM;
    size_t m = 0;
    for (size_t i = 0; i < n; i++)
        if (names[i])
            v[m++] = names[i];
    qsort(v, m, sizeof *v, str_cmp);
    *out = v;
    *out_n = m;
    return 0;
}

bool obj__has_name(const char *const *sorted, size_t n, const char *name)
{
    return name && bsearch(&name, sorted, n, sizeof *sorted, str_cmp);
}

/* ---- maps ---------------------------------------------------------------- */

const char *obj__entry_key(const void *entry)
{
    const ProtobufCMessage *e = entry;
    return *(char *const *)obj__field_ptr(e, &e->descriptor->fields[0]);
}

const char *obj__entry_str(const void *entry)
{
    const ProtobufCMessage *e = entry;
    return *(char *const *)obj__field_ptr(e, &e->descriptor->fields[1]);
}

const Skiffpb__V1__Quantity *obj__entry_q(const void *entry)
{
    const ProtobufCMessage *e = entry;
    return *(Skiffpb__V1__Quantity *const *)obj__field_ptr(
        e, &e->descriptor->fields[1]);
}

void *obj__map_find(size_t n, void *const *entries, const char *key)
{
    for (size_t i = 0; i < n; i++) {
        const char *k = obj__entry_key(entries[i]);
        if (k && !strcmp(k, key))
            return entries[i];
    }
    return NULL;
}

static const char *key_of(const void *entry)
{
    const char *k = obj__entry_key(entry);
    return k ? k : "";
}

static int entry_cmp(const void *a, const void *b)
{
    return strcmp(key_of(*(void *const *)a), key_of(*(void *const *)b));
}

int obj__map_sort(size_t n, void *const *entries, void ***out)
{
    void **v = cm_calloc(n ? n : 1, sizeof *v);
    if (!v)
        return -ENOMEM;
    if (n)
        memcpy(v, entries, n * sizeof *v);
    qsort(v, n, sizeof *v, entry_cmp);
    *out = v;
    return 0;
}

void *obj__map_lookup(void *const *sorted, size_t n, const char *key)
{
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = strcmp(key, key_of(sorted[mid]));
        if (!c)
            return sorted[mid];
        if (c < 0)
            hi = mid;
        else
            lo = mid + 1;
    }
    return NULL;
}

static bool in_values(const char *v, size_t n, char *const *values)
{
    for (size_t i = 0; i < n; i++)
        if (values[i] && !strcmp(values[i], v))
            return true;
    return false;
}

int obj__selector_matches(const Skiffpb__V1__LabelSelector *sel, size_t n,
                          void *const *labels)
{
    void **sorted;
    if (obj__map_sort(n, labels, &sorted))
        return -ENOMEM;
    int ok = 1;
    for (size_t i = 0; ok && i < sel->n_match_labels; i++) {
        const char *key = sel->match_labels[i]->key;
        const void *l = obj__map_lookup(sorted, n, key ? key : "");
        const char *want = sel->match_labels[i]->value;
        const char *have = l ? obj__entry_str(l) : NULL;
        if (!l || strcmp(have ? have : "", want ? want : ""))
            ok = 0;
    }
    for (size_t i = 0; ok && i < sel->n_match_expressions; i++) {
        const Skiffpb__V1__LabelSelectorRequirement *r =
            sel->match_expressions[i];
        const void *l = obj__map_lookup(sorted, n, r->key ? r->key : "");
        const char *have = l ? obj__entry_str(l) : NULL;
        const char *op = r->operator_ ? r->operator_ : "";
        bool in = l && in_values(have ? have : "", r->n_values, r->values);
        if ((!strcmp(op, "In") && !in) || (!strcmp(op, "NotIn") && in) ||
            (!strcmp(op, "Exists") && !l) || (!strcmp(op, "DoesNotExist") && l))
            ok = 0;
    }
    cm_free(sorted);
    return ok;
}

/* ---- shared rules -------------------------------------------------------- */

int obj__v_labels(obj__vctx *v, const char *field, size_t n,
                  void *const *entries, bool values_are_labels)
{
    size_t o = obj__v_field(v, field);
    for (size_t i = 0; i < n; i++) {
        const char *k = obj__entry_key(entries[i]);
        const char *val = obj__entry_str(entries[i]);
        if (!is_qualified_name(k))
            return obj__v_fail(v, NULL,
                               "Invalid value: \"%.64s\": name part must "
                               "consist of alphanumeric characters, '-', '_' "
                               "or '.', and must start and end with an "
                               "alphanumeric character (at most 63), with an "
                               "optional DNS subdomain prefix and '/'",
                               k ? k : "");
        if (values_are_labels && !is_label_value(val)) {
            obj__v_key(v, k);
            return obj__v_fail(v, NULL,
                               "Invalid value: \"%.64s\": a valid label must "
                               "be an empty string or consist of alphanumeric "
                               "characters, '-', '_' or '.', and must start "
                               "and end with an alphanumeric character (at "
                               "most 63)",
                               val);
        }
    }
    obj__v_pop(v, o);
    return 0;
}

int obj__v_selector(obj__vctx *v, const char *field,
                    const Skiffpb__V1__LabelSelector *sel)
{
    size_t o = obj__v_field(v, field);
    OBJ__TRY(obj__v_labels(v, "matchLabels", sel->n_match_labels,
                           (void *const *)sel->match_labels, true));
    for (size_t i = 0; i < sel->n_match_expressions; i++) {
        const Skiffpb__V1__LabelSelectorRequirement *r =
            sel->match_expressions[i];
        size_t oe = obj__v_field(v, "matchExpressions");
        obj__v_index(v, i);
        OBJ__TRY(obj__v_required(v, "key", r->key));
        if (!is_qualified_name(r->key))
            return obj__v_fail(v, "key",
                               "Invalid value: \"%.64s\": must be "
                               "a qualified name",
                               r->key);
        OBJ__TRY(obj__v_enum(v, "operator", r->operator_, true, selector_ops));
        bool set_op =
            !strcmp(r->operator_, "In") || !strcmp(r->operator_, "NotIn");
        if (set_op && !r->n_values)
            return obj__v_fail(v, "values",
                               "Required value: must be "
                               "specified when `operator` is "
                               "'In' or 'NotIn'");
        if (!set_op && r->n_values)
            return obj__v_fail(v, "values",
                               "Forbidden: may not be specified "
                               "when `operator` is 'Exists' or "
                               "'DoesNotExist'");
        obj__v_pop(v, oe);
    }
    obj__v_pop(v, o);
    return 0;
}

int obj__v_quantities(obj__vctx *v, const char *field, size_t n,
                      void *const *entries)
{
    size_t o = obj__v_field(v, field);
    for (size_t i = 0; i < n; i++) {
        const char *k = obj__entry_key(entries[i]);
        const Skiffpb__V1__Quantity *q = obj__entry_q(entries[i]);
        obj_quantity x;
        size_t ok = obj__v_key(v, k ? k : "");
        if (!is_qualified_name(k))
            return obj__v_fail(v, NULL,
                               "Invalid value: \"%.64s\": must be a "
                               "standard resource name or a "
                               "qualified name",
                               k ? k : "");
        if (!q || !q->string || obj_quantity_parse(q->string, &x))
            return obj__v_fail(v, NULL,
                               "Invalid value: \"%.64s\": must be a "
                               "valid quantity",
                               q && q->string ? q->string : "");
        if (x.whole < 0 || x.nano < 0)
            return obj__v_fail(v, NULL,
                               "Invalid value: \"%.64s\": must be "
                               "greater than or equal to 0",
                               q->string);
        obj__v_pop(v, ok);
    }
    obj__v_pop(v, o);
    return 0;
}

/* ---- metadata ------------------------------------------------------------ */

typedef enum { NAME_SUBDOMAIN, NAME_LABEL, NAME_SEGMENT } name_rule;

static int v_name(obj__vctx *v, const char *field, const char *s,
                  name_rule rule)
{
    if (rule == NAME_LABEL && !obj__is_dns1123_label(s))
        return obj__v_fail(v, field, "Invalid value: \"%.64s\": %s", s,
                           DNS_LABEL_MSG);
    if (rule == NAME_SUBDOMAIN && !obj__is_dns1123_subdomain(s))
        return obj__v_fail(v, field, "Invalid value: \"%.64s\": %s", s,
                           DNS_SUBDOMAIN_MSG);
    if (rule == NAME_SEGMENT && !is_path_segment(s))
        return obj__v_fail(v, field,
                           "Invalid value: \"%.64s\": may not be "
                           "'.' or '..' and may not contain '/' "
                           "or '%%'",
                           s);
    return 0;
}

static int v_meta(obj__vctx *v, const Skiffpb__V1__ObjectMeta *md,
                  bool namespaced, name_rule rule)
{
    if (!md)
        return obj__v_fail(v, "metadata", "Required value");
    size_t o = obj__v_field(v, "metadata");
    if (md->name && md->name[0])
        OBJ__TRY(v_name(v, "name", md->name, rule));
    else if (!md->generate_name || !md->generate_name[0])
        return obj__v_fail(v, "name",
                           "Required value: name or "
                           "generateName is required");
    if (namespaced) {
        OBJ__TRY(obj__v_required(v, "namespace", md->namespace_));
        OBJ__TRY(v_name(v, "namespace", md->namespace_, NAME_LABEL));
    } else if (md->namespace_ && md->namespace_[0]) {
        return obj__v_fail(v, "namespace",
                           "Forbidden: not allowed on this type");
    }
    if (md->has_generation)
        OBJ__TRY(obj__v_range(v, "generation", md->generation, 0, INT64_MAX));
    OBJ__TRY(obj__v_labels(v, "labels", md->n_labels, (void *const *)md->labels,
                           true));
    OBJ__TRY(obj__v_labels(v, "annotations", md->n_annotations,
                           (void *const *)md->annotations, false));
    bool controller = false;
    for (size_t i = 0; i < md->n_owner_references; i++) {
        const Skiffpb__V1__OwnerReference *r = md->owner_references[i];
        size_t oi = obj__v_field(v, "ownerReferences");
        obj__v_index(v, i);
        OBJ__TRY(obj__v_required(v, "apiVersion", r->api_version));
        OBJ__TRY(obj__v_required(v, "kind", r->kind));
        OBJ__TRY(obj__v_required(v, "name", r->name));
        OBJ__TRY(obj__v_required(v, "uid", r->uid));
        if (r->has_controller && r->controller) {
            if (controller)
                return obj__v_fail(v, NULL,
                                   "Invalid value: only one "
                                   "reference can have Controller "
                                   "set to true");
            controller = true;
        }
        obj__v_pop(v, oi);
    }
    for (size_t i = 0; i < md->n_finalizers; i++) {
        size_t oi = obj__v_field(v, "finalizers");
        obj__v_index(v, i);
        if (!is_qualified_name(md->finalizers[i]))
            return obj__v_fail(v, NULL,
                               "Invalid value: \"%.64s\": must be a "
                               "qualified name",
                               md->finalizers[i] ? md->finalizers[i] : "");
        obj__v_pop(v, oi);
    }
    obj__v_pop(v, o);
    return 0;
}

/* ---- workloads ----------------------------------------------------------- */

/* selector + template, the part every workload shares. */
static int
v_selector_template(obj__vctx *v, const Skiffpb__V1__LabelSelector *sel,
                    const Skiffpb__V1__PodTemplateSpec *t, size_t n_claims,
                    Skiffpb__V1__PersistentVolumeClaim *const *claims)
{
    if (!sel)
        return obj__v_fail(v, "selector", "Required value");
    OBJ__TRY(obj__v_selector(v, "selector", sel));
    if (!sel->n_match_labels && !sel->n_match_expressions)
        return obj__v_fail(v, "selector",
                           "Invalid value: {}: empty selector "
                           "is invalid for this workload");
    if (!t)
        return obj__v_fail(v, "template", "Required value");
    size_t o = obj__v_field(v, "template");
    size_t n = t->metadata ? t->metadata->n_labels : 0;
    void *const *labels =
        t->metadata ? (void *const *)t->metadata->labels : NULL;
    if (t->metadata)
        OBJ__TRY(obj__v_labels(v, "metadata.labels", n, labels, true));
    int match = obj__selector_matches(sel, n, labels);
    if (match < 0)
        return match;
    if (!match) {
        char buf[160] = "";
        size_t w = 0;
        for (size_t i = 0; i < n && w < sizeof buf; i++) {
            int k = snprintf(
                buf + w, sizeof buf - w, "%s%s=%s", i ? "," : "",
                obj__entry_key(labels[i]),
                obj__entry_str(labels[i]) ? obj__entry_str(labels[i]) : "");
            w += k > 0 ? (size_t)k : 0;
        }
        return obj__v_fail(v, "metadata.labels",
                           "Invalid value: \"%s\": `selector` does not match "
                           "template `labels`",
                           buf);
    }
    if (!t->spec)
        return obj__v_fail(v, "spec", "Required value");
    size_t os = obj__v_field(v, "spec");
    OBJ__TRY(obj__v_pod_spec(v, t->spec, n_claims, claims));
    static const char *const always[] = {"Always", NULL};
    OBJ__TRY(
        obj__v_enum(v, "restartPolicy", t->spec->restart_policy, true, always));
    obj__v_pop(v, os);
    obj__v_pop(v, o);
    return 0;
}

/* maxSurge / maxUnavailable: a non-negative int or a percentage. */
static int v_int_or_percent(obj__vctx *v, const char *field,
                            const Skiffpb__V1__IntOrString *x, bool cap100,
                            int *out_zero)
{
    *out_zero = 0;
    if (!x)
        return 0;
    if (x->type == 1) {
        const char *s = x->str_val ? x->str_val : "";
        size_t n = strlen(s);
        long pct = 0;
        bool ok = n >= 2 && n <= 5 && s[n - 1] == '%';
        for (size_t i = 0; ok && i + 1 < n; i++) {
            if (s[i] < '0' || s[i] > '9')
                ok = false;
            else
                pct = pct * 10 + (s[i] - '0');
        }
        if (!ok)
            return obj__v_fail(v, field,
                               "Invalid value: \"%.32s\": a valid "
                               "percent string must be a numeric "
                               "string followed by an ending '%%'",
                               s);
        if (cap100 && pct > 100)
            return obj__v_fail(v, field,
                               "Invalid value: \"%s\": must not be "
                               "greater than 100%%",
                               s);
        *out_zero = pct == 0;
        return 0;
    }
    OBJ__TRY(obj__v_range(v, field, x->int_val, 0, INT32_MAX));
    *out_zero = x->int_val == 0;
    return 0;
}

static int v_rolling(obj__vctx *v, const Skiffpb__V1__IntOrString *surge,
                     const Skiffpb__V1__IntOrString *unavail)
{
    int sz, uz;
    OBJ__TRY(v_int_or_percent(v, "maxSurge", surge, false, &sz));
    OBJ__TRY(v_int_or_percent(v, "maxUnavailable", unavail, true, &uz));
    if (surge && unavail && sz && uz)
        return obj__v_fail(v, "maxUnavailable",
                           "Invalid value: 0: may not "
                           "be 0 when `maxSurge` is 0");
    return 0;
}

static int v_replicas(obj__vctx *v, bool has, int32_t n)
{
    return has ? obj__v_range(v, "replicas", n, 0, INT32_MAX) : 0;
}

static int v_deployment(obj__vctx *v, const Skiffpb__V1__DeploymentSpec *s)
{
    OBJ__TRY(v_replicas(v, s->has_replicas, s->replicas));
    OBJ__TRY(v_selector_template(v, s->selector, s->template_, 0, NULL));
    if (s->has_min_ready_seconds)
        OBJ__TRY(obj__v_range(v, "minReadySeconds", s->min_ready_seconds, 0,
                              INT32_MAX));
    if (s->has_revision_history_limit)
        OBJ__TRY(obj__v_range(v, "revisionHistoryLimit",
                              s->revision_history_limit, 0, INT32_MAX));
    if (s->has_progress_deadline_seconds &&
        s->progress_deadline_seconds <= s->min_ready_seconds)
        return obj__v_fail(v, "progressDeadlineSeconds",
                           "Invalid value: %d: must be greater than "
                           "minReadySeconds",
                           (int)s->progress_deadline_seconds);
    if (s->strategy) {
        static const char *const types[] = {"RollingUpdate", "Recreate", NULL};
        size_t o = obj__v_field(v, "strategy");
        OBJ__TRY(obj__v_enum(v, "type", s->strategy->type, true, types));
        const Skiffpb__V1__RollingUpdateDeployment *ru =
            s->strategy->rolling_update;
        if (!strcmp(s->strategy->type, "Recreate") && ru)
            return obj__v_fail(v, "rollingUpdate",
                               "Forbidden: may not be "
                               "specified when strategy "
                               "`type` is 'Recreate'");
        if (ru) {
            obj__v_field(v, "rollingUpdate");
            OBJ__TRY(v_rolling(v, ru->max_surge, ru->max_unavailable));
        }
        obj__v_pop(v, o);
    }
    return 0;
}

static int v_daemonset(obj__vctx *v, const Skiffpb__V1__DaemonSetSpec *s)
{
    OBJ__TRY(v_selector_template(v, s->selector, s->template_, 0, NULL));
    if (s->has_revision_history_limit)
        OBJ__TRY(obj__v_range(v, "revisionHistoryLimit",
                              s->revision_history_limit, 0, INT32_MAX));
    if (s->update_strategy) {
        static const char *const types[] = {"RollingUpdate", "OnDelete", NULL};
        size_t o = obj__v_field(v, "updateStrategy");
        OBJ__TRY(obj__v_enum(v, "type", s->update_strategy->type, true, types));
        const Skiffpb__V1__RollingUpdateDaemonSet *ru =
            s->update_strategy->rolling_update;
        if (!strcmp(s->update_strategy->type, "OnDelete") && ru)
            return obj__v_fail(v, "rollingUpdate",
                               "Forbidden: may not be "
                               "specified when strategy "
                               "`type` is 'OnDelete'");
        if (ru) {
            obj__v_field(v, "rollingUpdate");
            OBJ__TRY(v_rolling(v, ru->max_surge, ru->max_unavailable));
        }
        obj__v_pop(v, o);
    }
    return 0;
}

static int v_pvc_spec(obj__vctx *v,
                      const Skiffpb__V1__PersistentVolumeClaimSpec *s)
{
    static const char *const modes[] = {"ReadWriteOnce", "ReadOnlyMany",
                                        "ReadWriteMany", "ReadWriteOncePod",
                                        NULL};
    static const char *const vmodes[] = {"Filesystem", "Block", NULL};
    if (!s)
        return obj__v_fail(v, "spec", "Required value");
    size_t o = obj__v_field(v, "spec");
    if (!s->n_access_modes)
        return obj__v_fail(v, "accessModes",
                           "Required value: at least 1 "
                           "access mode is required");
    for (size_t i = 0; i < s->n_access_modes; i++) {
        size_t oi = obj__v_field(v, "accessModes");
        obj__v_index(v, i);
        OBJ__TRY(obj__v_enum(v, NULL, s->access_modes[i], true, modes));
        obj__v_pop(v, oi);
    }
    if (s->selector)
        OBJ__TRY(obj__v_selector(v, "selector", s->selector));
    OBJ__TRY(obj__v_enum(v, "volumeMode", s->volume_mode, false, vmodes));
    const Skiffpb__V1__VolumeResourceRequirements *r = s->resources;
    const void *st =
        r ? obj__map_find(r->n_requests, (void *const *)r->requests, "storage")
          : NULL;
    if (!st)
        return obj__v_fail(v, "resources.requests[storage]", "Required value");
    size_t orr = obj__v_field(v, "resources");
    OBJ__TRY(obj__v_quantities(v, "requests", r->n_requests,
                               (void *const *)r->requests));
    OBJ__TRY(
        obj__v_quantities(v, "limits", r->n_limits, (void *const *)r->limits));
    obj_quantity q;
    obj_quantity_parse(obj__entry_q(st)->string, &q);
    if (!q.whole && !q.nano)
        return obj__v_fail(v, "requests[storage]",
                           "Invalid value: \"0\": "
                           "must be greater than "
                           "zero");
    obj__v_pop(v, orr);
    obj__v_pop(v, o);
    return 0;
}

static int v_statefulset(obj__vctx *v, const Skiffpb__V1__StatefulSetSpec *s)
{
    static const char *const policies[] = {"OrderedReady", "Parallel", NULL};
    OBJ__TRY(v_replicas(v, s->has_replicas, s->replicas));
    OBJ__TRY(obj__v_enum(v, "podManagementPolicy", s->pod_management_policy,
                         false, policies));
    for (size_t i = 0; i < s->n_volume_claim_templates; i++) {
        const Skiffpb__V1__PersistentVolumeClaim *c =
            s->volume_claim_templates[i];
        size_t o = obj__v_field(v, "volumeClaimTemplates");
        obj__v_index(v, i);
        if (!c->metadata || !c->metadata->name)
            return obj__v_fail(v, "metadata.name", "Required value");
        OBJ__TRY(v_name(v, "metadata.name", c->metadata->name, NAME_LABEL));
        OBJ__TRY(v_pvc_spec(v, c->spec));
        obj__v_pop(v, o);
    }
    OBJ__TRY(v_selector_template(v, s->selector, s->template_,
                                 s->n_volume_claim_templates,
                                 s->volume_claim_templates));
    if (s->has_revision_history_limit)
        OBJ__TRY(obj__v_range(v, "revisionHistoryLimit",
                              s->revision_history_limit, 0, INT32_MAX));
    if (s->update_strategy) {
        static const char *const types[] = {"RollingUpdate", "OnDelete", NULL};
        size_t o = obj__v_field(v, "updateStrategy");
        OBJ__TRY(obj__v_enum(v, "type", s->update_strategy->type, true, types));
        const Skiffpb__V1__RollingUpdateStatefulSetStrategy *ru =
            s->update_strategy->rolling_update;
        if (!strcmp(s->update_strategy->type, "OnDelete") && ru)
            return obj__v_fail(v, "rollingUpdate",
                               "Forbidden: only allowed "
                               "for updateStrategy "
                               "'RollingUpdate'");
        if (ru && ru->has_partition)
            OBJ__TRY(obj__v_range(v, "rollingUpdate.partition", ru->partition,
                                  0, INT32_MAX));
        obj__v_pop(v, o);
    }
    return 0;
}

/* ---- HPA ----------------------------------------------------------------- */

static int v_positive_quantity(obj__vctx *v, const char *field,
                               const Skiffpb__V1__Quantity *q)
{
    obj_quantity x;
    if (!q || !q->string)
        return obj__v_fail(v, field, "Required value");
    if (obj_quantity_parse(q->string, &x))
        return obj__v_fail(v, field,
                           "Invalid value: \"%.64s\": must be a "
                           "valid quantity",
                           q->string);
    if (x.whole < 0 || x.nano < 0 || (!x.whole && !x.nano))
        return obj__v_fail(v, field,
                           "Invalid value: \"%.64s\": must be "
                           "positive",
                           q->string);
    return 0;
}

static int v_scaling_rules(obj__vctx *v, const char *field,
                           const Skiffpb__V1__HPAScalingRules *r)
{
    static const char *const select[] = {"Max", "Min", "Disabled", NULL};
    static const char *const types[] = {"Pods", "Percent", NULL};
    if (!r)
        return 0;
    size_t o = obj__v_field(v, field);
    if (r->has_stabilization_window_seconds)
        OBJ__TRY(obj__v_range(v, "stabilizationWindowSeconds",
                              r->stabilization_window_seconds, 0, 3600));
    OBJ__TRY(obj__v_enum(v, "selectPolicy", r->select_policy, false, select));
    for (size_t i = 0; i < r->n_policies; i++) {
        const Skiffpb__V1__HPAScalingPolicy *p = r->policies[i];
        size_t oi = obj__v_field(v, "policies");
        obj__v_index(v, i);
        OBJ__TRY(obj__v_enum(v, "type", p->type, true, types));
        OBJ__TRY(obj__v_range(v, "value", p->value, 1, INT32_MAX));
        OBJ__TRY(obj__v_range(v, "periodSeconds", p->period_seconds, 1, 1800));
        obj__v_pop(v, oi);
    }
    obj__v_pop(v, o);
    return 0;
}

static int v_hpa(obj__vctx *v,
                 const Skiffpb__V1__HorizontalPodAutoscalerSpec *s)
{
    static const char *const mtypes[] = {"Resource", NULL};
    static const char *const rnames[] = {"cpu", "memory", NULL};
    static const char *const ttypes[] = {"Utilization", "Value", "AverageValue",
                                         NULL};
    const Skiffpb__V1__CrossVersionObjectReference *ref = s->scale_target_ref;
    if (!ref)
        return obj__v_fail(v, "scaleTargetRef", "Required value");
    OBJ__TRY(obj__v_required(v, "scaleTargetRef.kind", ref->kind));
    OBJ__TRY(obj__v_required(v, "scaleTargetRef.name", ref->name));
    if (!is_path_segment(ref->name))
        return obj__v_fail(v, "scaleTargetRef.name",
                           "Invalid value: \"%.64s\": may not contain '/' "
                           "or '%%'",
                           ref->name);
    int32_t min = s->has_min_replicas ? s->min_replicas : 1;
    OBJ__TRY(obj__v_range(v, "minReplicas", min, 1, INT32_MAX));
    if (!s->has_max_replicas || s->max_replicas < 1)
        return obj__v_fail(v, "maxReplicas",
                           "Invalid value: %d: must be "
                           "greater than or equal to 1",
                           (int)s->max_replicas);
    if (s->max_replicas < min)
        return obj__v_fail(v, "maxReplicas",
                           "Invalid value: %d: must be "
                           "greater than or equal to "
                           "`minReplicas`",
                           (int)s->max_replicas);
    for (size_t i = 0; i < s->n_metrics; i++) {
        const Skiffpb__V1__MetricSpec *m = s->metrics[i];
        size_t o = obj__v_field(v, "metrics");
        obj__v_index(v, i);
        OBJ__TRY(obj__v_enum(v, "type", m->type, true, mtypes));
        if (!m->resource)
            return obj__v_fail(v, "resource",
                               "Required value: must "
                               "populate information for the "
                               "given metric source");
        obj__v_field(v, "resource");
        OBJ__TRY(obj__v_enum(v, "name", m->resource->name, true, rnames));
        const Skiffpb__V1__MetricTarget *t = m->resource->target;
        if (!t)
            return obj__v_fail(v, "target", "Required value");
        obj__v_field(v, "target");
        OBJ__TRY(obj__v_enum(v, "type", t->type, true, ttypes));
        if (!strcmp(t->type, "Utilization")) {
            if (!t->has_average_utilization)
                return obj__v_fail(v, "averageUtilization",
                                   "Required value: must set either a "
                                   "target raw value or a target "
                                   "utilization");
            OBJ__TRY(obj__v_range(v, "averageUtilization",
                                  t->average_utilization, 1, INT32_MAX));
        } else if (!strcmp(t->type, "AverageValue")) {
            OBJ__TRY(v_positive_quantity(v, "averageValue", t->average_value));
        } else {
            OBJ__TRY(v_positive_quantity(v, "value", t->value));
        }
        obj__v_pop(v, o);
    }
    if (s->behavior) {
        size_t o = obj__v_field(v, "behavior");
        OBJ__TRY(v_scaling_rules(v, "scaleUp", s->behavior->scale_up));
        OBJ__TRY(v_scaling_rules(v, "scaleDown", s->behavior->scale_down));
        obj__v_pop(v, o);
    }
    return 0;
}

/* ---- Node, Lease, Event, RBAC -------------------------------------------- */

static const char *const taint_effects[] = {"NoSchedule", "PreferNoSchedule",
                                            "NoExecute", NULL};

static int taint_cmp(const void *pa, const void *pb)
{
    const Skiffpb__V1__Taint *a = pa, *b = pb;
    int c = strcmp(a->key ? a->key : "", b->key ? b->key : "");
    return c ? c
             : strcmp(a->effect ? a->effect : "", b->effect ? b->effect : "");
}

static int v_node(obj__vctx *v, const Skiffpb__V1__NodeSpec *s)
{
    size_t di;
    OBJ__TRY(obj__first_dup((const void *const *)s->taints, s->n_taints,
                            taint_cmp, &di));
    const Skiffpb__V1__Taint *dup = di < s->n_taints ? s->taints[di] : NULL;
    for (size_t i = 0; i < s->n_taints; i++) {
        const Skiffpb__V1__Taint *t = s->taints[i];
        size_t o = obj__v_field(v, "taints");
        obj__v_index(v, i);
        OBJ__TRY(obj__v_required(v, "key", t->key));
        if (!is_qualified_name(t->key))
            return obj__v_fail(v, "key",
                               "Invalid value: \"%.64s\": must be "
                               "a qualified name",
                               t->key);
        if (!is_label_value(t->value))
            return obj__v_fail(v, "value",
                               "Invalid value: \"%.64s\": must "
                               "be a valid label value",
                               t->value);
        OBJ__TRY(obj__v_enum(v, "effect", t->effect, true, taint_effects));
        if (t == dup)
            return obj__v_fail(v, NULL,
                               "Duplicate value: \"%.64s:%s\": taints must "
                               "be unique by key and effect pair",
                               t->key, t->effect);
        obj__v_pop(v, o);
    }
    return 0;
}

static int v_rules(obj__vctx *v, size_t n, Skiffpb__V1__PolicyRule *const *r,
                   bool namespaced)
{
    for (size_t i = 0; i < n; i++) {
        size_t o = obj__v_field(v, "rules");
        obj__v_index(v, i);
        if (!r[i]->n_verbs)
            return obj__v_fail(v, "verbs",
                               "Required value: verbs must "
                               "contain at least one value");
        if (namespaced && r[i]->n_non_resource_urls)
            return obj__v_fail(v, "nonResourceURLs",
                               "Invalid value: namespaced rules cannot apply "
                               "to non-resource URLs");
        if (r[i]->n_non_resource_urls && r[i]->n_resources)
            return obj__v_fail(v, "nonResourceURLs",
                               "Invalid value: rules cannot apply to both "
                               "regular resources and non-resource URLs");
        if (!r[i]->n_non_resource_urls) {
            if (!r[i]->n_resources)
                return obj__v_fail(v, "resources",
                                   "Required value: resource "
                                   "rules must supply at "
                                   "least one resource");
            if (!r[i]->n_api_groups)
                return obj__v_fail(v, "apiGroups",
                                   "Required value: resource "
                                   "rules must supply at "
                                   "least one api group");
        }
        obj__v_pop(v, o);
    }
    return 0;
}

static int v_binding(obj__vctx *v, size_t n, Skiffpb__V1__Subject *const *s,
                     const Skiffpb__V1__RoleRef *ref, bool cluster)
{
    static const char *const role_kinds[] = {"Role", "ClusterRole", NULL};
    static const char *const cluster_kinds[] = {"ClusterRole", NULL};
    static const char *const rbac[] = {"rbac.authorization.k8s.io", NULL};
    static const char *const subj_kinds[] = {"User", "Group", "ServiceAccount",
                                             NULL};
    if (!ref)
        return obj__v_fail(v, "roleRef", "Required value");
    size_t o = obj__v_field(v, "roleRef");
    OBJ__TRY(obj__v_enum(v, "apiGroup", ref->api_group, true, rbac));
    OBJ__TRY(obj__v_enum(v, "kind", ref->kind, true,
                         cluster ? cluster_kinds : role_kinds));
    OBJ__TRY(obj__v_required(v, "name", ref->name));
    OBJ__TRY(v_name(v, "name", ref->name, NAME_SEGMENT));
    obj__v_pop(v, o);
    for (size_t i = 0; i < n; i++) {
        o = obj__v_field(v, "subjects");
        obj__v_index(v, i);
        OBJ__TRY(obj__v_enum(v, "kind", s[i]->kind, true, subj_kinds));
        OBJ__TRY(obj__v_required(v, "name", s[i]->name));
        if (!strcmp(s[i]->kind, "ServiceAccount")) {
            if (s[i]->api_group && s[i]->api_group[0])
                return obj__v_fail(v, "apiGroup",
                                   "Unsupported value: "
                                   "\"%.64s\": supported "
                                   "values: \"\"",
                                   s[i]->api_group);
            if (cluster)
                OBJ__TRY(obj__v_required(v, "namespace", s[i]->namespace_));
        } else {
            OBJ__TRY(obj__v_enum(v, "apiGroup", s[i]->api_group, true, rbac));
        }
        obj__v_pop(v, o);
    }
    return 0;
}

/* ---- public -------------------------------------------------------------- */

#define NEED_SPEC(v, x)                                                        \
    do {                                                                       \
        if (!(x)->spec)                                                        \
            return obj__v_fail(v, "spec", "Required value");                   \
        obj__v_field(v, "spec");                                               \
    } while (0)

int obj_validate(const obj_object *o, obj_error *err)
{
    obj__vctx vc = {.err = err};
    obj__vctx *v = &vc;
    const obj_kind *k = obj_kind_get(o);
    if (err)
        memset(err, 0, sizeof *err);
    if (!k)
        return obj__v_fail(v, "kind", "Required value");
    name_rule rule = NAME_SUBDOMAIN;
    if (o->object_case == SKIFFPB__V1__OBJECT__OBJECT_NAMESPACE)
        rule = NAME_LABEL;
    else if (!strcmp(k->api_version, "rbac.authorization.k8s.io/v1"))
        rule = NAME_SEGMENT;
    OBJ__TRY(v_meta(v, obj_object_meta(o), k->namespaced, rule));
    switch (o->object_case) {
    case SKIFFPB__V1__OBJECT__OBJECT_POD:
        NEED_SPEC(v, o->pod);
        return obj__v_pod_spec(v, o->pod->spec, 0, NULL);
    case SKIFFPB__V1__OBJECT__OBJECT_DEPLOYMENT:
        NEED_SPEC(v, o->deployment);
        return v_deployment(v, o->deployment->spec);
    case SKIFFPB__V1__OBJECT__OBJECT_REPLICA_SET:
        NEED_SPEC(v, o->replica_set);
        OBJ__TRY(v_replicas(v, o->replica_set->spec->has_replicas,
                            o->replica_set->spec->replicas));
        return v_selector_template(v, o->replica_set->spec->selector,
                                   o->replica_set->spec->template_, 0, NULL);
    case SKIFFPB__V1__OBJECT__OBJECT_DAEMON_SET:
        NEED_SPEC(v, o->daemon_set);
        return v_daemonset(v, o->daemon_set->spec);
    case SKIFFPB__V1__OBJECT__OBJECT_STATEFUL_SET:
        NEED_SPEC(v, o->stateful_set);
        return v_statefulset(v, o->stateful_set->spec);
    case SKIFFPB__V1__OBJECT__OBJECT_PERSISTENT_VOLUME_CLAIM:
        return v_pvc_spec(v, o->persistent_volume_claim->spec);
    case SKIFFPB__V1__OBJECT__OBJECT_HORIZONTAL_POD_AUTOSCALER:
        NEED_SPEC(v, o->horizontal_pod_autoscaler);
        return v_hpa(v, o->horizontal_pod_autoscaler->spec);
    case SKIFFPB__V1__OBJECT__OBJECT_NODE:
        if (!o->node->spec)
            return 0;
        obj__v_field(v, "spec");
        return v_node(v, o->node->spec);
    case SKIFFPB__V1__OBJECT__OBJECT_EVENT:
        if (o->event->has_count)
            OBJ__TRY(obj__v_range(v, "count", o->event->count, 0, INT32_MAX));
        if (!o->event->involved_object)
            return obj__v_fail(v, "involvedObject", "Required value");
        return 0;
    case SKIFFPB__V1__OBJECT__OBJECT_LEASE:
        if (!o->lease->spec)
            return 0;
        obj__v_field(v, "spec");
        if (o->lease->spec->has_lease_duration_seconds)
            OBJ__TRY(obj__v_range(v, "leaseDurationSeconds",
                                  o->lease->spec->lease_duration_seconds, 1,
                                  INT32_MAX));
        if (o->lease->spec->has_lease_transitions)
            OBJ__TRY(obj__v_range(v, "leaseTransitions",
                                  o->lease->spec->lease_transitions, 0,
                                  INT32_MAX));
        return 0;
    case SKIFFPB__V1__OBJECT__OBJECT_ROLE:
        return v_rules(v, o->role->n_rules, o->role->rules, true);
    case SKIFFPB__V1__OBJECT__OBJECT_CLUSTER_ROLE:
        return v_rules(v, o->cluster_role->n_rules, o->cluster_role->rules,
                       false);
    case SKIFFPB__V1__OBJECT__OBJECT_ROLE_BINDING:
        return v_binding(v, o->role_binding->n_subjects,
                         o->role_binding->subjects, o->role_binding->role_ref,
                         false);
    case SKIFFPB__V1__OBJECT__OBJECT_CLUSTER_ROLE_BINDING:
        return v_binding(v, o->cluster_role_binding->n_subjects,
                         o->cluster_role_binding->subjects,
                         o->cluster_role_binding->role_ref, true);
    default:
        return 0;
    }
}
