/*
 * `describe KIND NAME`: kubectl's human-readable summary of one object and
 * the Events that name it.
 *
 * The common header (Name, Namespace, Labels, Annotations,
 * CreationTimestamp) is kubectl's layout; each kind then adds the lines
 * kubectl's describer prints first and most (pods: node, status, IP,
 * containers, conditions; deployments: selector, replicas line, strategy;
 * nodes: roles, taints, unschedulable, conditions, capacity).  The full
 * object is always one `get -o yaml` away, so rarely read fields are left
 * out.  Events are those of the object's namespace whose involvedObject
 * is the object (same uid, or same kind, namespace and name when either
 * has no uid), sorted by lastTimestamp, in kubectl's table.
 */
#include "obj_int.h"

#include <stdlib.h>
#include <string.h>

static void kv_lines(const char *title, int width, size_t n,
                     void *const *entries)
{
    typedef struct {
        ProtobufCMessage base;
        char *key, *value;
    } entry;
    printf("%-*s", width, title);
    if (!n)
        printf("<none>\n");
    for (size_t i = 0; i < n; i++) {
        const entry *e = entries[i];
        if (i)
            printf("%*s", width, "");
        printf("%s=%s\n", e->key, e->value ? e->value : "");
    }
}

static void conditions(size_t n, Skiffpb__V1__Condition *const *c)
{
    printf("Conditions:\n");
    if (!n) {
        printf("  <none>\n");
        return;
    }
    printf("  %-16s %-7s %s\n", "Type", "Status", "Reason");
    printf("  %-16s %-7s %s\n", "----", "------", "------");
    for (size_t i = 0; i < n; i++)
        printf("  %-16s %-7s %s\n", c[i]->type ? c[i]->type : "",
               c[i]->status ? c[i]->status : "",
               c[i]->reason ? c[i]->reason : "");
}

static void describe_pod(const Skiffpb__V1__Pod *p)
{
    const Skiffpb__V1__PodSpec *s = p->spec;
    const Skiffpb__V1__PodStatus *st = p->status;
    printf("Node:         %s\n", s && s->node_name ? s->node_name : "<none>");
    printf("Start Time:   %s\n",
           st && st->start_time ? st->start_time : "<unset>");
    printf("Status:       %s\n", st && st->phase ? st->phase : "");
    if (st && st->reason)
        printf("Reason:       %s\n", st->reason);
    if (st && st->message)
        printf("Message:      %s\n", st->message);
    printf("IP:           %s\n", st && st->pod_ip ? st->pod_ip : "");
    printf("Containers:\n");
    for (size_t i = 0; s && i < s->n_containers; i++) {
        const Skiffpb__V1__Container *c = s->containers[i];
        printf("  %s:\n", c->name ? c->name : "");
        printf("    Image:          %s\n", c->image ? c->image : "");
        const Skiffpb__V1__ContainerStatus *cs = NULL;
        for (size_t j = 0; st && j < st->n_container_statuses; j++)
            if (st->container_statuses[j]->name && c->name &&
                !strcmp(st->container_statuses[j]->name, c->name))
                cs = st->container_statuses[j];
        const Skiffpb__V1__ContainerState *state = cs ? cs->state : NULL;
        if (state && state->running)
            printf("    State:          Running\n");
        else if (state && state->terminated)
            printf("    State:          Terminated\n      Reason:       %s\n"
                   "      Exit Code:    %d\n",
                   state->terminated->reason ? state->terminated->reason : "",
                   state->terminated->exit_code);
        else if (state && state->waiting)
            printf("    State:          Waiting\n      Reason:       %s\n",
                   state->waiting->reason ? state->waiting->reason : "");
        else
            printf("    State:          Waiting\n");
        printf("    Ready:          %s\n", cs && cs->ready ? "True" : "False");
        printf("    Restart Count:  %d\n", cs ? cs->restart_count : 0);
        const Skiffpb__V1__ResourceRequirements *r = c->resources;
        if (r && r->n_limits) {
            printf("    Limits:\n");
            for (size_t j = 0; j < r->n_limits; j++)
                printf("      %s:  %s\n", r->limits[j]->key,
                       r->limits[j]->value && r->limits[j]->value->string
                           ? r->limits[j]->value->string
                           : "");
        }
        if (r && r->n_requests) {
            printf("    Requests:\n");
            for (size_t j = 0; j < r->n_requests; j++)
                printf("      %s:  %s\n", r->requests[j]->key,
                       r->requests[j]->value && r->requests[j]->value->string
                           ? r->requests[j]->value->string
                           : "");
        }
    }
    conditions(st ? st->n_conditions : 0, st ? st->conditions : NULL);
    printf("QoS Class:       %s\n", st && st->qos_class ? st->qos_class : "");
    kv_lines("Node-Selectors:", 17, s ? s->n_node_selector : 0,
             s ? (void *const *)s->node_selector : NULL);
    printf("Tolerations:     ");
    for (size_t i = 0; s && i < s->n_tolerations; i++) {
        const Skiffpb__V1__Toleration *t = s->tolerations[i];
        if (i)
            printf("                 ");
        printf("%s%s%s%s%s", t->key ? t->key : "",
               t->operator_ && !strcmp(t->operator_, "Exists") ? "" : "=",
               t->value ? t->value : "", t->effect ? ":" : "",
               t->effect ? t->effect : "");
        if (t->has_toleration_seconds)
            printf(" for %llds", (long long)t->toleration_seconds);
        printf(" op=%s\n", t->operator_ ? t->operator_ : "Equal");
    }
    if (!s || !s->n_tolerations)
        printf("<none>\n");
}

static void describe_deployment(const Skiffpb__V1__Deployment *d)
{
    const Skiffpb__V1__DeploymentSpec *s = d->spec;
    const Skiffpb__V1__DeploymentStatus *st = d->status;
    printf("Selector:               ");
    for (size_t i = 0; s && s->selector && i < s->selector->n_match_labels; i++)
        printf("%s%s=%s", i ? "," : "", s->selector->match_labels[i]->key,
               s->selector->match_labels[i]->value);
    printf("\n");
    int want = s && s->has_replicas ? s->replicas : 0;
    printf("Replicas:               %d desired | %d updated | %d total | %d "
           "available | %d unavailable\n",
           want, st ? st->updated_replicas : 0, st ? st->replicas : 0,
           st ? st->available_replicas : 0, st ? st->unavailable_replicas : 0);
    printf("StrategyType:           %s\n",
           s && s->strategy && s->strategy->type ? s->strategy->type : "");
    printf("MinReadySeconds:        %d\n", s ? s->min_ready_seconds : 0);
    const Skiffpb__V1__RollingUpdateDeployment *ru =
        s && s->strategy ? s->strategy->rolling_update : NULL;
    if (ru) {
        char u[32] = "", g[32] = "";
        const Skiffpb__V1__IntOrString *mu = ru->max_unavailable,
                                       *ms = ru->max_surge;
        if (mu)
            snprintf(u, sizeof u, mu->type ? "%s" : "%.0s%d",
                     mu->type ? mu->str_val : "", mu->int_val);
        if (ms)
            snprintf(g, sizeof g, ms->type ? "%s" : "%.0s%d",
                     ms->type ? ms->str_val : "", ms->int_val);
        printf("RollingUpdateStrategy:  %s max unavailable, %s max surge\n", u,
               g);
    }
    printf("Pod Template:\n  Containers:\n");
    const Skiffpb__V1__PodSpec *ps =
        s && s->template_ ? s->template_->spec : NULL;
    for (size_t i = 0; ps && i < ps->n_containers; i++)
        printf("   %s:\n    Image:  %s\n",
               ps->containers[i]->name ? ps->containers[i]->name : "",
               ps->containers[i]->image ? ps->containers[i]->image : "");
    conditions(st ? st->n_conditions : 0, st ? st->conditions : NULL);
}

static void describe_node(const Skiffpb__V1__Node *n)
{
    const Skiffpb__V1__NodeSpec *s = n->spec;
    const Skiffpb__V1__NodeStatus *st = n->status;
    printf("Taints:             ");
    for (size_t i = 0; s && i < s->n_taints; i++) {
        const Skiffpb__V1__Taint *t = s->taints[i];
        if (i)
            printf("                    ");
        printf("%s%s%s:%s\n", t->key ? t->key : "", t->value ? "=" : "",
               t->value ? t->value : "", t->effect ? t->effect : "");
    }
    if (!s || !s->n_taints)
        printf("<none>\n");
    printf("Unschedulable:      %s\n",
           s && s->unschedulable ? "true" : "false");
    conditions(st ? st->n_conditions : 0, st ? st->conditions : NULL);
    printf("Addresses:\n");
    for (size_t i = 0; st && i < st->n_addresses; i++)
        printf("  %s:  %s\n",
               st->addresses[i]->type ? st->addresses[i]->type : "",
               st->addresses[i]->address ? st->addresses[i]->address : "");
    printf("Capacity:\n");
    for (size_t i = 0; st && i < st->n_capacity; i++)
        printf("  %s:  %s\n", st->capacity[i]->key,
               st->capacity[i]->value && st->capacity[i]->value->string
                   ? st->capacity[i]->value->string
                   : "");
    printf("Allocatable:\n");
    for (size_t i = 0; st && i < st->n_allocatable; i++)
        printf("  %s:  %s\n", st->allocatable[i]->key,
               st->allocatable[i]->value && st->allocatable[i]->value->string
                   ? st->allocatable[i]->value->string
                   : "");
}

/* Whether event e is about object o: the same uid when both have one,
 * else the same kind, namespace and name (kubectl's field selector). */
static bool about(const Skiffpb__V1__Event *e, const obj_kind *k,
                  const Skiffpb__V1__ObjectMeta *md)
{
    const Skiffpb__V1__ObjectReference *r = e ? e->involved_object : NULL;
    if (!r)
        return false;
    if (r->uid && r->uid[0] && md->uid && md->uid[0])
        return !strcmp(r->uid, md->uid);
    const char *ns = k->namespaced && md->namespace_ ? md->namespace_ : "";
    return r->kind && r->name && !strcmp(r->kind, k->kind) &&
           !strcmp(r->name, md->name) &&
           !strcmp(r->namespace_ ? r->namespace_ : "", ns);
}

static const char *ev_last(const Skiffpb__V1__Event *e)
{
    return e->last_timestamp    ? e->last_timestamp
           : e->first_timestamp ? e->first_timestamp
           : e->event_time      ? e->event_time
                                : "";
}

static int by_last(const void *x, const void *y)
{
    const Skiffpb__V1__Event *a = *(Skiffpb__V1__Event *const *)x;
    const Skiffpb__V1__Event *b = *(Skiffpb__V1__Event *const *)y;
    /* RFC 3339 UTC strings of one format sort as times; ties keep the
     * names' order (generated names grow with time), as qsort is not
     * stable. */
    int c = strcmp(ev_last(a), ev_last(b));
    if (c || !a->metadata || !b->metadata)
        return c;
    return strcmp(a->metadata->name ? a->metadata->name : "",
                  b->metadata->name ? b->metadata->name : "");
}

#define EV_COLS 5

/* The object's Events as kubectl describe prints them: sorted by
 * lastTimestamp, Age "3m (x5 over 10m)" for repeats, columns aligned as
 * its tabwriter does (two spaces between). */
static int events(ctl *x, const obj_object *o, cm_arena *a)
{
    const obj_kind *k = obj_kind_get(o);
    const Skiffpb__V1__ObjectMeta *md = obj_object_meta(o);
    octl_stored *items;
    size_t n;
    /* Events of cluster-scoped objects live in "default", as in
     * Kubernetes. */
    int rc =
        octl_list(x, obj_kind_find("Event"),
                  k->namespaced ? md->namespace_ : "default", a, &items, &n);
    if (rc)
        return rc;
    Skiffpb__V1__Event **ev = cm_arena_alloc(a, (n + 1) * sizeof *ev);
    if (!ev)
        return octl_errorf("out of memory");
    size_t m = 0;
    for (size_t i = 0; i < n; i++)
        if (about(items[i].obj->event, k, md))
            ev[m++] = items[i].obj->event;
    if (!m) {
        printf("Events:            <none>\n");
        return 0;
    }
    qsort(ev, m, sizeof *ev, by_last);
    /* Cells first, then widths, then the table. */
    const char *(*cell)[EV_COLS] = cm_arena_alloc(a, (m + 2) * sizeof *cell);
    if (!cell)
        return octl_errorf("out of memory");
    static const char *const head[2][EV_COLS] = {
        {"Type", "Reason", "Age", "From", "Message"},
        {"----", "------", "----", "----", "-------"}};
    memcpy(cell[0], head[0], sizeof head[0]);
    memcpy(cell[1], head[1], sizeof head[1]);
    for (size_t i = 0; i < m; i++) {
        const Skiffpb__V1__Event *e = ev[i];
        char age[96], first[32], last[32];
        if (e->count > 1) {
            octl_age(ev_last(e), last, sizeof last);
            octl_age(e->first_timestamp, first, sizeof first);
            snprintf(age, sizeof age, "%s (x%d over %s)", last, e->count,
                     first);
        } else {
            octl_age(e->first_timestamp ? e->first_timestamp : ev_last(e), age,
                     sizeof age);
        }
        const char *from = e->source && e->source->component
                               ? e->source->component
                           : e->reporting_component ? e->reporting_component
                                                    : "";
        const char **row = cell[i + 2];
        row[0] = e->type ? e->type : "";
        row[1] = e->reason ? e->reason : "";
        row[2] = octl_strdup(a, age);
        row[3] = from;
        row[4] = e->message ? e->message : "";
        if (!row[2])
            return octl_errorf("out of memory");
    }
    int w[EV_COLS] = {0};
    for (size_t i = 0; i < m + 2; i++)
        for (int j = 0; j < EV_COLS - 1; j++)
            if ((int)strlen(cell[i][j]) > w[j])
                w[j] = (int)strlen(cell[i][j]);
    printf("Events:\n");
    for (size_t i = 0; i < m + 2; i++) {
        printf(" ");
        for (int j = 0; j < EV_COLS - 1; j++)
            printf(" %-*s ", w[j], cell[i][j]);
        printf(" %s\n", cell[i][EV_COLS - 1]);
    }
    return 0;
}

int cmd_obj_describe(ctl *x, int argc, char **argv)
{
    const char *ns = NULL;
    ctl_flag flags[] = {
        {"namespace", 'n', CTL_STR, &ns},
        {NULL, 0, 0, NULL},
    };
    char **pos = calloc((size_t)argc + 1, sizeof *pos);
    if (!pos)
        return octl_errorf("out of memory");
    int npos = 0, rc = ctl_flags_parse(x, argc, argv, flags, pos, &npos);
    cm_arena a = {0};
    if (rc)
        goto out;
    if (npos < 1) {
        rc = octl_errorf("You must specify the type of resource to describe.");
        goto out;
    }
    char *slash = strchr(pos[0], '/');
    if (slash)
        *slash = '\0';
    const octl_kind *k = octl_kind_lookup(pos[0]);
    if (!k) {
        rc = octl_errorf("the server doesn't have a resource type \"%s\"",
                         pos[0]);
        goto out;
    }
    const char *name = slash ? slash + 1 : npos > 1 ? pos[1] : NULL;
    if (!name) {
        rc = octl_errorf("describe needs a NAME");
        goto out;
    }
    char key[OCTL_KEY_MAX], rn[96];
    octl_key(k->k, ns ? ns : "default", name, key, sizeof key);
    octl_stored st;
    rc = octl_read(x, key, &a, &st);
    if (rc == 1) {
        fflush(stdout);
        fprintf(stderr, "Error from server (NotFound): %s \"%s\" not found\n",
                octl_resource_name(k, rn, sizeof rn), name);
        goto out;
    }
    if (rc)
        goto out;
    const Skiffpb__V1__ObjectMeta *md = obj_object_meta(st.obj);
    printf("Name:         %s\n", md->name);
    if (k->k->namespaced)
        printf("Namespace:    %s\n", md->namespace_ ? md->namespace_ : "");
    if (!strcmp(k->k->kind, "Node")) {
        char roles[128] = "";
        size_t o = 0;
        for (size_t i = 0; i < md->n_labels && o < sizeof roles; i++)
            if (!strncmp(md->labels[i]->key, "node-role.kubernetes.io/", 24))
                o += (size_t)snprintf(roles + o, sizeof roles - o, "%s%s",
                                      o ? "," : "", md->labels[i]->key + 24);
        printf("Roles:        %s\n", o ? roles : "<none>");
    }
    kv_lines("Labels:", 14, md->n_labels, (void *const *)md->labels);
    kv_lines("Annotations:", 14, md->n_annotations,
             (void *const *)md->annotations);
    printf("CreationTimestamp:  %s\n",
           md->creation_timestamp ? md->creation_timestamp : "");
    switch (st.obj->object_case) {
    case SKIFFPB__V1__OBJECT__OBJECT_POD:
        describe_pod(st.obj->pod);
        break;
    case SKIFFPB__V1__OBJECT__OBJECT_DEPLOYMENT:
        describe_deployment(st.obj->deployment);
        break;
    case SKIFFPB__V1__OBJECT__OBJECT_NODE:
        describe_node(st.obj->node);
        break;
    default:
        break;
    }
    rc = events(x, st.obj, &a);
out:
    free(pos);
    cm_arena_free(&a);
    return rc;
}
