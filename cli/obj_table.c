/*
 * kubectl's tables for `get`: the columns of each kind and the cells
 * computed as kubectl's printers compute them (pkg/printers/
 * internalversion): pod STATUS from phase, reason, init and container
 * states and the deletion timestamp in kubectl's order, READY counts
 * ready running containers, RESTARTS sums restart counts.  Tables are
 * aligned like Go's tabwriter with three spaces of padding.
 */
#include "obj_table.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

/* ---- tables -------------------------------------------------------------- */

int octl_table_row(octl_table *t, char *const *cells)
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

/* Widens w (t->ncols entries) to fit t's cells, and its head too when
 * headers is set. */
void octl_table_widths(const octl_table *t, bool headers, size_t *w)
{
    for (size_t c = 0; c < t->ncols; c++) {
        if (headers && strlen(t->head[c]) > w[c])
            w[c] = strlen(t->head[c]);
        for (size_t r = 0; r < t->nrows; r++) {
            size_t l = strlen(t->cells[r * t->ncols + c]);
            if (l > w[c])
                w[c] = l;
        }
    }
}

/* Prints t (its head first when headers is set) in columns of widths w. */
void octl_table_emit(const octl_table *t, bool headers, const size_t *w)
{
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

void octl_table_print(const octl_table *t, bool headers)
{
    size_t w[OCTL_MAX_COLS] = {0};
    octl_table_widths(t, headers, w);
    octl_table_emit(t, headers, w);
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
void octl_table_head(octl_table *t, const obj_kind *k, const octl_gopts *g)
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
int octl_table_add(octl_table *t, const obj_object *o, const octl_gopts *g)
{
    char c[OCTL_MAX_COLS][256];
    char *cells[OCTL_MAX_COLS];
    size_t n = 0;
    const Skiffpb__V1__ObjectMeta *md = obj_object_meta(o);
    for (size_t i = 0; i < OCTL_MAX_COLS; i++)
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
    return octl_table_row(t, cells);
}

