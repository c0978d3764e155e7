/*
 * `get` for objects: kubectl's tables, -o wide|yaml|json|name, -l, -n, -A.
 *
 * `get` is also etcdctl's command, so cmd_obj_get_or_kv decides by the
 * first argument: a kind name ("pods", "deploy", "nodes/n1") selects the
 * object get, anything else is a key.  A raw key that happens to be a kind
 * name can still be read with a leading "/" or with --prefix.
 *
 * Table columns and cell values follow kubectl's printers
 * (pkg/printers/internalversion): pod STATUS is computed from phase,
 * reason, init and container states and the deletion timestamp exactly in
 * kubectl's order, READY counts ready running containers, RESTARTS sums
 * restart counts.  Tables are aligned like Go's tabwriter with three
 * spaces of padding.  Lists in -o yaml are documents separated by "---"
 * (so the output applies again; kubectl prints a List object instead).
 */
#include "obj_int.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#define MAX_COLS 16

typedef struct table {
    size_t ncols, nrows, cap;
    const char *head[MAX_COLS];
    char **cells;
    cm_arena *a;
} table;

typedef struct gopts {
    const char *ns, *selector, *out;
    int all_ns, show_labels, no_headers;
    bool wide;
} gopts;

/* ---- tables -------------------------------------------------------------- */

static int table_row(table *t, char *const *cells)
{
    if (t->nrows == t->cap) {
        size_t nc = t->cap ? t->cap * 2 : 16;
        char **n = cm_arena_alloc(t->a, nc * t->ncols * sizeof *n);
        if (!n)
            return -1;
        if (t->nrows)
            memcpy(n, t->cells, t->nrows * t->ncols * sizeof *n);
        t->cells = n;
        t->cap = nc;
    }
    for (size_t i = 0; i < t->ncols; i++) {
        char *c = octl_strdup(t->a, cells[i] ? cells[i] : "");
        if (!c)
            return -1;
        t->cells[t->nrows * t->ncols + i] = c;
    }
    t->nrows++;
    return 0;
}

static void table_print(const table *t, bool headers)
{
    size_t w[MAX_COLS] = {0};
    for (size_t c = 0; c < t->ncols; c++) {
        if (headers)
            w[c] = strlen(t->head[c]);
        for (size_t r = 0; r < t->nrows; r++) {
            size_t l = strlen(t->cells[r * t->ncols + c]);
            if (l > w[c])
                w[c] = l;
        }
    }
    for (size_t r = headers ? 0 : 1; r <= t->nrows; r++) {
        for (size_t c = 0; c < t->ncols; c++) {
            const char *s = r ? t->cells[(r - 1) * t->ncols + c] : t->head[c];
            if (c + 1 == t->ncols)
                printf("%s\n", s);
            else
                printf("%-*s   ", (int)w[c], s);
        }
    }
}

/* ---- cells --------------------------------------------------------------- */

static const char *or_none(const char *s)
{
    return s && *s ? s : "<none>";
}

static const char *cond_status(size_t n, Skiffpb__V1__Condition *const *c,
                               const char *type)
{
    for (size_t i = 0; i < n; i++)
        if (c[i]->type && !strcmp(c[i]->type, type))
            return c[i]->status ? c[i]->status : "";
    return NULL;
}

static void node_roles(const Skiffpb__V1__ObjectMeta *md, char *buf, size_t cap)
{
    static const char pfx[] = "node-role.kubernetes.io/";
    size_t o = 0;
    buf[0] = '\0';
    for (size_t i = 0; md && i < md->n_labels; i++) {
        const char *k = md->labels[i]->key;
        const char *role = NULL;
        if (!strncmp(k, pfx, sizeof pfx - 1) && k[sizeof pfx - 1])
            role = k + sizeof pfx - 1;
        else if (!strcmp(k, "kubernetes.io/role"))
            role = md->labels[i]->value;
        if (role && o < cap)
            o += (size_t)snprintf(buf + o, cap - o, "%s%s", o ? "," : "", role);
    }
    if (!buf[0])
        snprintf(buf, cap, "<none>");
}

static void node_status(const Skiffpb__V1__Node *n, char *buf, size_t cap)
{
    const char *r = n->status ? cond_status(n->status->n_conditions,
                                            n->status->conditions, "Ready")
                              : NULL;
    snprintf(buf, cap, "%s",
             !r                    ? "Unknown"
             : !strcmp(r, "True")  ? "Ready"
             : !strcmp(r, "False") ? "NotReady"
                                   : "Unknown");
    if (n->spec && n->spec->unschedulable) {
        size_t l = strlen(buf);
        snprintf(buf + l, cap - l, ",SchedulingDisabled");
    }
}

static const char *node_address(const Skiffpb__V1__Node *n, const char *type)
{
    for (size_t i = 0; n->status && i < n->status->n_addresses; i++)
        if (n->status->addresses[i]->type &&
            !strcmp(n->status->addresses[i]->type, type))
            return n->status->addresses[i]->address;
    return NULL;
}

/* HPA TARGETS: "cpu: 40%/70%" per metric, "<unknown>" without status. */
static void hpa_targets(const Skiffpb__V1__HorizontalPodAutoscaler *h,
                        char *buf, size_t cap)
{
    size_t o = 0;
    buf[0] = '\0';
    const Skiffpb__V1__HorizontalPodAutoscalerSpec *s = h->spec;
    for (size_t i = 0; s && i < s->n_metrics && o < cap; i++) {
        const Skiffpb__V1__MetricSpec *m = s->metrics[i];
        if (!m->resource || !m->resource->target)
            continue;
        const Skiffpb__V1__MetricTarget *t = m->resource->target;
        const char *name = m->resource->name ? m->resource->name : "";
        char cur[48] = "<unknown>", want[48] = "";
        for (size_t j = 0; h->status && j < h->status->n_current_metrics; j++) {
            const Skiffpb__V1__MetricStatus *ms = h->status->current_metrics[j];
            if (!ms->resource || !ms->resource->current ||
                !ms->resource->name || strcmp(ms->resource->name, name))
                continue;
            const Skiffpb__V1__MetricValueStatus *v = ms->resource->current;
            if (t->has_average_utilization && v->has_average_utilization)
                snprintf(cur, sizeof cur, "%d%%", v->average_utilization);
            else if (v->average_value && v->average_value->string)
                snprintf(cur, sizeof cur, "%s", v->average_value->string);
            else if (v->value && v->value->string)
                snprintf(cur, sizeof cur, "%s", v->value->string);
        }
        if (t->has_average_utilization)
            snprintf(want, sizeof want, "%d%%", t->average_utilization);
        else if (t->average_value && t->average_value->string)
            snprintf(want, sizeof want, "%s", t->average_value->string);
        else if (t->value && t->value->string)
            snprintf(want, sizeof want, "%s", t->value->string);
        o += (size_t)snprintf(buf + o, cap - o, "%s%s: %s/%s", o ? ", " : "",
                              name, cur, want);
    }
    if (!buf[0])
        snprintf(buf, cap, "<none>");
}

static void num(char *buf, size_t cap, int v)
{
    snprintf(buf, cap, "%d", v);
}

/* Fills the head of t for kind k; returns the column count. */
static void table_head(table *t, const obj_kind *k, const gopts *g)
{
    static const char *pod[] = {
        "NAME", "READY", "STATUS",         "RESTARTS",       "AGE",
        "IP",   "NODE",  "NOMINATED NODE", "READINESS GATES"};
    static const char *deploy[] = {"NAME",      "READY",   "UP-TO-DATE",
                                   "AVAILABLE", "AGE",     "CONTAINERS",
                                   "IMAGES",    "SELECTOR"};
    static const char *node[] = {
        "NAME",           "STATUS",           "ROLES",       "AGE",
        "VERSION",        "INTERNAL-IP",      "EXTERNAL-IP", "OS-IMAGE",
        "KERNEL-VERSION", "CONTAINER-RUNTIME"};
    static const char *hpa[] = {"NAME",    "REFERENCE", "TARGETS", "MINPODS",
                                "MAXPODS", "REPLICAS",  "AGE"};
    static const char *rs[] = {"NAME", "DESIRED", "CURRENT", "READY", "AGE"};
    static const char *sts[] = {"NAME", "READY", "AGE"};
    static const char *ns[] = {"NAME", "STATUS", "AGE"};
    static const char *ds[] = {"NAME",          "DESIRED",    "CURRENT",
                               "READY",         "UP-TO-DATE", "AVAILABLE",
                               "NODE SELECTOR", "AGE"};
    static const char *pvc[] = {"NAME",     "STATUS",       "VOLUME",
                                "CAPACITY", "ACCESS MODES", "STORAGECLASS",
                                "AGE"};
    static const char *other[] = {"NAME", "AGE"};
    const char **h = other;
    size_t n = 2;
    if (!strcmp(k->kind, "Pod"))
        h = pod, n = g->wide ? 9 : 5;
    else if (!strcmp(k->kind, "Deployment"))
        h = deploy, n = g->wide ? 8 : 5;
    else if (!strcmp(k->kind, "Node"))
        h = node, n = g->wide ? 10 : 5;
    else if (!strcmp(k->kind, "HorizontalPodAutoscaler"))
        h = hpa, n = 7;
    else if (!strcmp(k->kind, "ReplicaSet"))
        h = rs, n = 5;
    else if (!strcmp(k->kind, "StatefulSet"))
        h = sts, n = 3;
    else if (!strcmp(k->kind, "Namespace"))
        h = ns, n = 3;
    else if (!strcmp(k->kind, "DaemonSet"))
        h = ds, n = 8;
    else if (!strcmp(k->kind, "PersistentVolumeClaim"))
        h = pvc, n = 7;
    t->ncols = 0;
    if (g->all_ns && k->namespaced)
        t->head[t->ncols++] = "NAMESPACE";
    for (size_t i = 0; i < n; i++)
        t->head[t->ncols++] = h[i];
    if (g->show_labels)
        t->head[t->ncols++] = "LABELS";
}

/* Comma-joined container names or images of a template. */
static void containers(const Skiffpb__V1__PodTemplateSpec *t, bool images,
                       char *buf, size_t cap)
{
    size_t o = 0;
    buf[0] = '\0';
    for (size_t i = 0; t && t->spec && i < t->spec->n_containers && o < cap;
         i++) {
        const Skiffpb__V1__Container *c = t->spec->containers[i];
        const char *s = images ? c->image : c->name;
        o += (size_t)snprintf(buf + o, cap - o, "%s%s", i ? "," : "",
                              s ? s : "");
    }
}

static void selector_cell(const Skiffpb__V1__LabelSelector *s, char *buf,
                          size_t cap)
{
    size_t o = 0;
    buf[0] = '\0';
    for (size_t i = 0; s && i < s->n_match_labels && o < cap; i++)
        o += (size_t)snprintf(buf + o, cap - o, "%s%s=%s", i ? "," : "",
                              s->match_labels[i]->key,
                              s->match_labels[i]->value);
    if (!buf[0])
        snprintf(buf, cap, "<none>");
}

/* One row of kind-specific cells for o. */
static int table_add(table *t, const obj_object *o, const gopts *g)
{
    char c[MAX_COLS][256];
    char *cells[MAX_COLS];
    size_t n = 0;
    const Skiffpb__V1__ObjectMeta *md = obj_object_meta(o);
    for (size_t i = 0; i < MAX_COLS; i++)
        cells[i] = c[i], c[i][0] = '\0';
    if (g->all_ns && obj_kind_get(o)->namespaced)
        snprintf(c[n++], 256, "%s", md->namespace_ ? md->namespace_ : "");
    snprintf(c[n++], 256, "%s", md->name ? md->name : "");
    char age[32];
    octl_age(md->creation_timestamp, age, sizeof age);
    switch (o->object_case) {
    case SKIFFPB__V1__OBJECT__OBJECT_POD: {
        const Skiffpb__V1__Pod *p = o->pod;
        int ready, total, restarts;
        const char *last;
        octl_pod_status(p, c[n + 1], 256, &ready, &total, &restarts, &last);
        snprintf(c[n], 256, "%d/%d", ready, total);
        n += 2;
        if (restarts && last) {
            char ago[32];
            octl_age(last, ago, sizeof ago);
            snprintf(c[n++], 256, "%d (%s ago)", restarts, ago);
        } else {
            num(c[n++], 256, restarts);
        }
        snprintf(c[n++], 256, "%s", age);
        if (g->wide) {
            snprintf(c[n++], 256, "%s",
                     or_none(p->status ? p->status->pod_ip : NULL));
            snprintf(c[n++], 256, "%s",
                     or_none(p->spec ? p->spec->node_name : NULL));
            snprintf(
                c[n++], 256, "%s",
                or_none(p->status ? p->status->nominated_node_name : NULL));
            snprintf(c[n++], 256, "<none>");
        }
        break;
    }
    case SKIFFPB__V1__OBJECT__OBJECT_DEPLOYMENT: {
        const Skiffpb__V1__Deployment *d = o->deployment;
        const Skiffpb__V1__DeploymentStatus *s = d->status;
        int want = d->spec && d->spec->has_replicas ? d->spec->replicas : 0;
        snprintf(c[n++], 256, "%d/%d", s ? s->ready_replicas : 0, want);
        num(c[n++], 256, s ? s->updated_replicas : 0);
        num(c[n++], 256, s ? s->available_replicas : 0);
        snprintf(c[n++], 256, "%s", age);
        if (g->wide) {
            const Skiffpb__V1__PodTemplateSpec *tp =
                d->spec ? d->spec->template_ : NULL;
            containers(tp, false, c[n++], 256);
            containers(tp, true, c[n++], 256);
            selector_cell(d->spec ? d->spec->selector : NULL, c[n++], 256);
        }
        break;
    }
    case SKIFFPB__V1__OBJECT__OBJECT_NODE: {
        const Skiffpb__V1__Node *nd = o->node;
        node_status(nd, c[n++], 256);
        node_roles(md, c[n++], 256);
        snprintf(c[n++], 256, "%s", age);
        const Skiffpb__V1__NodeSystemInfo *ni =
            nd->status ? nd->status->node_info : NULL;
        snprintf(c[n++], 256, "%s",
                 ni && ni->kubelet_version ? ni->kubelet_version : "");
        if (g->wide) {
            snprintf(c[n++], 256, "%s",
                     or_none(node_address(nd, "InternalIP")));
            snprintf(c[n++], 256, "%s",
                     or_none(node_address(nd, "ExternalIP")));
            snprintf(c[n++], 256, "%s",
                     ni && ni->os_image ? ni->os_image : "<unknown>");
            snprintf(c[n++], 256, "%s",
                     ni && ni->kernel_version ? ni->kernel_version
                                              : "<unknown>");
            snprintf(c[n++], 256, "%s",
                     ni && ni->container_runtime_version
                         ? ni->container_runtime_version
                         : "<unknown>");
        }
        break;
    }
    case SKIFFPB__V1__OBJECT__OBJECT_HORIZONTAL_POD_AUTOSCALER: {
        const Skiffpb__V1__HorizontalPodAutoscaler *h =
            o->horizontal_pod_autoscaler;
        const Skiffpb__V1__CrossVersionObjectReference *r =
            h->spec ? h->spec->scale_target_ref : NULL;
        snprintf(c[n++], 256, "%s/%s", r && r->kind ? r->kind : "",
                 r && r->name ? r->name : "");
        hpa_targets(h, c[n++], 256);
        if (h->spec && h->spec->has_min_replicas)
            num(c[n++], 256, h->spec->min_replicas);
        else
            snprintf(c[n++], 256, "<unset>");
        num(c[n++], 256, h->spec ? h->spec->max_replicas : 0);
        num(c[n++], 256, h->status ? h->status->current_replicas : 0);
        snprintf(c[n++], 256, "%s", age);
        break;
    }
    case SKIFFPB__V1__OBJECT__OBJECT_REPLICA_SET: {
        const Skiffpb__V1__ReplicaSet *r = o->replica_set;
        num(c[n++], 256, r->spec ? r->spec->replicas : 0);
        num(c[n++], 256, r->status ? r->status->replicas : 0);
        num(c[n++], 256, r->status ? r->status->ready_replicas : 0);
        snprintf(c[n++], 256, "%s", age);
        break;
    }
    case SKIFFPB__V1__OBJECT__OBJECT_STATEFUL_SET: {
        const Skiffpb__V1__StatefulSet *s = o->stateful_set;
        snprintf(c[n++], 256, "%d/%d",
                 s->status ? s->status->ready_replicas : 0,
                 s->spec ? s->spec->replicas : 0);
        snprintf(c[n++], 256, "%s", age);
        break;
    }
    case SKIFFPB__V1__OBJECT__OBJECT_DAEMON_SET: {
        const Skiffpb__V1__DaemonSetStatus *s = o->daemon_set->status;
        num(c[n++], 256, s ? s->desired_number_scheduled : 0);
        num(c[n++], 256, s ? s->current_number_scheduled : 0);
        num(c[n++], 256, s ? s->number_ready : 0);
        num(c[n++], 256, s ? s->updated_number_scheduled : 0);
        num(c[n++], 256, s ? s->number_available : 0);
        const Skiffpb__V1__DaemonSetSpec *sp = o->daemon_set->spec;
        const Skiffpb__V1__PodSpec *ps =
            sp && sp->template_ ? sp->template_->spec : NULL;
        size_t w = 0;
        for (size_t i = 0; ps && i < ps->n_node_selector && w < 256; i++)
            w += (size_t)snprintf(c[n] + w, 256 - w, "%s%s=%s", i ? "," : "",
                                  ps->node_selector[i]->key,
                                  ps->node_selector[i]->value);
        if (!c[n][0])
            snprintf(c[n], 256, "<none>");
        n++;
        snprintf(c[n++], 256, "%s", age);
        break;
    }
    case SKIFFPB__V1__OBJECT__OBJECT_NAMESPACE:
        snprintf(c[n++], 256, "%s",
                 o->namespace_->status && o->namespace_->status->phase
                     ? o->namespace_->status->phase
                     : "");
        snprintf(c[n++], 256, "%s", age);
        break;
    case SKIFFPB__V1__OBJECT__OBJECT_PERSISTENT_VOLUME_CLAIM: {
        const Skiffpb__V1__PersistentVolumeClaim *p =
            o->persistent_volume_claim;
        snprintf(c[n++], 256, "%s",
                 p->status && p->status->phase ? p->status->phase : "");
        snprintf(c[n++], 256, "%s",
                 p->spec && p->spec->volume_name ? p->spec->volume_name : "");
        c[n++][0] = '\0'; /* capacity: set once bound */
        size_t w = 0;
        for (size_t i = 0; p->spec && i < p->spec->n_access_modes; i++) {
            const char *m = p->spec->access_modes[i];
            const char *s = !strcmp(m, "ReadWriteOnce")      ? "RWO"
                            : !strcmp(m, "ReadOnlyMany")     ? "ROX"
                            : !strcmp(m, "ReadWriteMany")    ? "RWX"
                            : !strcmp(m, "ReadWriteOncePod") ? "RWOP"
                                                             : m;
            w += (size_t)snprintf(c[n] + w, 256 - w, "%s%s", i ? "," : "", s);
        }
        n++;
        snprintf(c[n++], 256, "%s",
                 p->spec && p->spec->storage_class_name
                     ? p->spec->storage_class_name
                     : "<unset>");
        snprintf(c[n++], 256, "%s", age);
        break;
    }
    default:
        snprintf(c[n++], 256, "%s", age);
        break;
    }
    if (g->show_labels) {
        size_t w = 0;
        for (size_t i = 0; i < md->n_labels && w < 256; i++)
            w += (size_t)snprintf(c[n] + w, 256 - w, "%s%s=%s", i ? "," : "",
                                  md->labels[i]->key, md->labels[i]->value);
        if (!c[n][0])
            snprintf(c[n], 256, "<none>");
        n++;
    }
    return table_row(t, cells);
}

/* ---- structured output ----------------------------------------------------
 */

/* Prints s with every line indented by `ind` spaces, no final newline. */
static void print_indented(const char *s, size_t len, int ind)
{
    while (len && s[len - 1] == '\n')
        len--;
    printf("%*s", ind, "");
    for (size_t i = 0; i < len; i++) {
        putchar(s[i]);
        if (s[i] == '\n')
            printf("%*s", ind, "");
    }
}

static int print_objects(octl_stored *items, size_t n, const char *fmt,
                         bool single)
{
    cm_buf b = {0};
    int rc = 0;
    if (!strcmp(fmt, "json") && !single)
        printf("{\n    \"apiVersion\": \"v1\",\n    \"items\": [\n");
    for (size_t i = 0; i < n; i++) {
        cm_buf_reset(&b);
        if (!strcmp(fmt, "yaml")) {
            if ((rc = obj_yaml_encode(items[i].obj, &b)))
                break;
            if (i)
                fputs("---\n", stdout);
            fwrite(b.base, 1, b.len, stdout);
        } else if (single) {
            if ((rc = obj_json_encode(items[i].obj, &b)))
                break;
            fwrite(b.base, 1, b.len, stdout);
        } else {
            if ((rc = obj_json_encode(items[i].obj, &b)))
                break;
            print_indented((const char *)b.base, b.len, 8);
            fputs(i + 1 < n ? ",\n" : "\n", stdout);
        }
    }
    if (!rc && !strcmp(fmt, "json") && !single)
        printf("    ],\n    \"kind\": \"List\",\n    \"metadata\": {\n"
               "        \"resourceVersion\": \"\"\n    }\n}\n");
    cm_buf_free(&b);
    return rc ? octl_errorf("cannot encode: %s", cm_strerror(rc)) : 0;
}

/* ---- get ----------------------------------------------------------------- */

/* The objects of kind k that get shows: the named ones (a missing name
 * is reported and makes the exit code 1) or the list, filtered by -l.
 * Returns 0 or 1 (the exit code so far), or minus an exit code to stop
 * with. */
static int fetch(ctl *x, const octl_kind *k, const gopts *g, const char *ns,
                 const char **wanted, size_t nwanted, cm_arena *a,
                 octl_stored **items, size_t *n)
{
    int rc = 0;
    char rn[96];
    octl_resource_name(k, rn, sizeof rn);
    *n = 0;
    if (nwanted) {
        *items = cm_arena_alloc(a, nwanted * sizeof **items);
        if (!*items)
            return -octl_errorf("out of memory");
        for (size_t i = 0; i < nwanted; i++) {
            char key[OCTL_KEY_MAX];
            octl_key(k->k, ns, wanted[i], key, sizeof key);
            int r = octl_read(x, key, a, &(*items)[*n]);
            if (r == 1) {
                fflush(stdout);
                fprintf(stderr,
                        "Error from server (NotFound): %s \"%s\" not found\n",
                        rn, wanted[i]);
                rc = CTL_EXIT_ERROR;
            } else if (r) {
                return -r;
            } else {
                (*n)++;
            }
        }
    } else {
        int r = octl_list(x, k->k, g->all_ns ? NULL : ns, a, items, n);
        if (r)
            return -r;
    }
    if (g->selector) {
        size_t kept = 0;
        for (size_t i = 0; i < *n; i++) {
            const Skiffpb__V1__ObjectMeta *md =
                obj_object_meta((*items)[i].obj);
            int m = octl_selector_match(g->selector, md->n_labels,
                                        (void *const *)md->labels);
            if (m < 0)
                return -octl_errorf("unable to parse requirement: %s",
                                    g->selector);
            if (m)
                (*items)[kept++] = (*items)[i];
        }
        *n = kept;
    }
    return rc;
}

static int obj_get(ctl *x, int argc, char **argv)
{
    gopts g = {0};
    ctl_flag flags[] = {
        {"namespace", 'n', CTL_STR, &g.ns},
        {"selector", 'l', CTL_STR, &g.selector},
        {"output", 'o', CTL_STR, &g.out},
        {"all-namespaces", 'A', CTL_BOOL, &g.all_ns},
        {"show-labels", 0, CTL_BOOL, &g.show_labels},
        {"no-headers", 0, CTL_BOOL, &g.no_headers},
        {NULL, 0, 0, NULL},
    };
    char **pos = calloc((size_t)argc + 1, sizeof *pos);
    if (!pos)
        return octl_errorf("out of memory");
    int npos = 0, rc = ctl_flags_parse(x, argc, argv, flags, pos, &npos);
    cm_arena a = {0};
    if (rc)
        goto out;
    const char *fmt = g.out ? g.out : "";
    g.wide = !strcmp(fmt, "wide");
    if (*fmt && !g.wide && strcmp(fmt, "yaml") && strcmp(fmt, "json") &&
        strcmp(fmt, "name")) {
        rc = octl_errorf("unable to match a printer suitable for the output "
                         "format \"%s\", allowed formats are: "
                         "json,name,wide,yaml",
                         fmt);
        goto out;
    }
    /* KIND [NAME...], KIND/NAME, or KIND,KIND,... (no names). */
    char *slash = strchr(pos[0], '/');
    if (slash)
        *slash = '\0';
    const char **wanted = (const char **)pos + 1;
    size_t nwanted = (size_t)npos - 1;
    if (slash) {
        wanted = (const char **)&pos[0];
        nwanted = 1;
    }
    const octl_kind *kinds[16];
    size_t nk = 0;
    char *save = NULL;
    for (char *w = strtok_r(pos[0], ",", &save); w && nk < 16;
         w = strtok_r(NULL, ",", &save)) {
        if (!(kinds[nk++] = octl_kind_lookup(w))) {
            rc = octl_errorf("the server doesn't have a resource type "
                             "\"%s\"",
                             w);
            goto out;
        }
    }
    if (slash)
        pos[0] = slash + 1;
    if (nk > 1 && nwanted) {
        rc = octl_errorf("arguments in resource/name form must have a single "
                         "resource and name");
        goto out;
    }
    const char *ns = g.ns ? g.ns : "default";
    octl_stored *all = NULL;
    size_t nall = 0;
    bool tables_printed = false;
    for (size_t ki = 0; ki < nk; ki++) {
        octl_stored *items;
        size_t n;
        int r = fetch(x, kinds[ki], &g, ns, wanted, nwanted, &a, &items, &n);
        if (r < 0) {
            rc = -r;
            goto out;
        }
        rc = r ? r : rc;
        if (!strcmp(fmt, "yaml") || !strcmp(fmt, "json")) {
            /* One document stream / List over every kind. */
            octl_stored *m = cm_arena_alloc(&a, (nall + n + 1) * sizeof *m);
            if (!m) {
                rc = octl_errorf("out of memory");
                goto out;
            }
            if (nall)
                memcpy(m, all, nall * sizeof *m);
            if (n)
                memcpy(m + nall, items, n * sizeof *m);
            all = m;
            nall += n;
            continue;
        }
        nall += n;
        char tn[96];
        octl_type_name(kinds[ki], tn, sizeof tn);
        if (!strcmp(fmt, "name")) {
            for (size_t i = 0; i < n; i++)
                printf("%s/%s\n", tn, obj_object_meta(items[i].obj)->name);
        } else if (n) {
            /* Several kinds: kubectl separates the tables by a blank line
             * and prefixes names with their type. */
            if (tables_printed)
                putchar('\n');
            table t = {.a = &a};
            table_head(&t, kinds[ki]->k, &g);
            for (size_t i = 0; i < n; i++) {
                if (nk > 1) {
                    Skiffpb__V1__ObjectMeta *md = obj_object_meta(items[i].obj);
                    size_t l = strlen(tn) + strlen(md->name) + 2;
                    char *nm = cm_arena_alloc(&a, l);
                    if (!nm) {
                        rc = octl_errorf("out of memory");
                        goto out;
                    }
                    snprintf(nm, l, "%s/%s", tn, md->name);
                    md->name = nm;
                }
                if (table_add(&t, items[i].obj, &g)) {
                    rc = octl_errorf("out of memory");
                    goto out;
                }
            }
            table_print(&t, !g.no_headers);
            tables_printed = true;
        }
    }
    if (!nall && !nwanted) {
        fflush(stdout);
        if (kinds[0]->k->namespaced && !g.all_ns)
            fprintf(stderr, "No resources found in %s namespace.\n", ns);
        else
            fprintf(stderr, "No resources found\n");
        goto out;
    }
    if (!strcmp(fmt, "yaml") || !strcmp(fmt, "json")) {
        int r = print_objects(all, nall, fmt, nwanted == 1);
        rc = r ? r : rc;
    }
out:
    free(pos);
    cm_arena_free(&a);
    return rc;
}

int cmd_obj_get_or_kv(ctl *x, int argc, char **argv)
{
    /* The first word that is not a flag decides.  Flags that take a value
     * in either command are skipped with it; `--flag=value` is one word. */
    static const char *const valued[] = {"-n",
                                         "--namespace",
                                         "-l",
                                         "--selector",
                                         "-o",
                                         "--output",
                                         "--endpoints",
                                         "--cacert",
                                         "--cert",
                                         "--key",
                                         "--dial-timeout",
                                         "--command-timeout",
                                         "-w",
                                         "--write-out",
                                         "--consistency",
                                         "--order",
                                         "--sort-by",
                                         "--limit",
                                         "--rev",
                                         "--min-mod-revision",
                                         "--max-mod-revision",
                                         "--min-create-revision",
                                         "--max-create-revision",
                                         NULL};
    for (int i = 0; i < argc; i++) {
        const char *w = argv[i];
        if (!strcmp(w, "--"))
            break;
        if (w[0] == '-' && w[1]) {
            for (const char *const *v = valued; *v; v++)
                if (!strcmp(w, *v)) {
                    i++;
                    break;
                }
            continue;
        }
        char word[128];
        snprintf(word, sizeof word, "%s", w);
        char *slash = strchr(word, '/');
        if (slash && slash != word)
            *slash = '\0';
        char *comma = strchr(word, ',');
        if (comma)
            *comma = '\0';
        if (word[0] != '/' && octl_kind_lookup(word))
            return obj_get(x, argc, argv);
        break;
    }
    return cmd_get(x, argc, argv);
}
