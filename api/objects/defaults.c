/*
 * Defaulting, as the Kubernetes API server does it on create.
 *
 * Three sources in Kubernetes are folded together here, because admission
 * in skiffd runs them as one step: the versioned types' SetDefaults_*
 * functions (restartPolicy, imagePullPolicy, probe timings, requests from
 * limits, workload strategies, HPA behavior), the create strategies
 * (status.qosClass, PVC and Namespace phases) and the admission plugins
 * skiff always runs (DefaultTolerationSeconds' not-ready/unreachable
 * tolerations, Priority's priority 0).  Only Pods get the last two and the
 * QoS class; pod templates get the spec defaults only, as in Kubernetes.
 *
 * Every default only fills what is unset, so applying twice changes
 * nothing.  Quantities are rewritten in canonical form ("0.5" -> "500m") by
 * a walk over the whole object, as Kubernetes stores them.  uid and time
 * come from the caller's env so tests are deterministic.
 */
#include "objects_int.h"

#include <errno.h>
#include <string.h>

#define DEFAULT_GRACE_SECONDS 30
#define DEFAULT_TOLERATION_SECONDS 300
#define REQ_ENTRY skiffpb__v1__resource_requirements__requests_entry__descriptor

typedef struct dctx {
    cm_arena *a;
} dctx;

/* Allocates a message of type T into *(p) when it is NULL. */
#define ENSURE(d, p, T, DESC)                                                  \
    do {                                                                       \
        if (!(p) && !((p) = (T *)obj__msg_new((d)->a, &DESC)))                 \
            return -ENOMEM;                                                    \
    } while (0)

#define SET_STR(d, field, value)                                               \
    do {                                                                       \
        if (!(field) || !(field)[0]) {                                         \
            if (!((field) = obj__strdup((d)->a, value)))                       \
                return -ENOMEM;                                                \
        }                                                                      \
    } while (0)

#define SET_INT(has, field, value)                                             \
    do {                                                                       \
        if (!(has)) {                                                          \
            (has) = 1;                                                         \
            (field) = (value);                                                 \
        }                                                                      \
    } while (0)

/* Kubernetes holds these probe fields as plain ints: 0 means unset. */
#define SET_NONZERO(has, field, value)                                         \
    do {                                                                       \
        if (!(has) || !(field)) {                                              \
            (has) = 1;                                                         \
            (field) = (value);                                                 \
        }                                                                      \
    } while (0)

/* ---- helpers ------------------------------------------------------------- */

static int new_int_or_string(dctx *d, Skiffpb__V1__IntOrString **p,
                             const char *str, int32_t i)
{
    if (*p)
        return 0;
    Skiffpb__V1__IntOrString *x = (Skiffpb__V1__IntOrString *)obj__msg_new(
        d->a, &skiffpb__v1__int_or_string__descriptor);
    if (!x)
        return -ENOMEM;
    x->has_type = 1;
    if (str) {
        x->type = 1;
        if (!(x->str_val = obj__strdup(d->a, str)))
            return -ENOMEM;
    } else {
        x->type = 0;
        x->has_int_val = 1;
        x->int_val = i;
    }
    *p = x;
    return 0;
}

/* Appends one element to a repeated pointer field. */
static int push_ptr(dctx *d, size_t *n, void ***arr, void *elem)
{
    void **na = cm_arena_alloc(d->a, (*n + 1) * sizeof *na);
    if (!na)
        return -ENOMEM;
    if (*n)
        memcpy(na, *arr, *n * sizeof *na);
    na[(*n)++] = elem;
    *arr = na;
    return 0;
}

/* An arena copy of a quantity, so no two fields share a message (callers
 * may free their own messages field by field). */
static Skiffpb__V1__Quantity *copy_quantity(dctx *d,
                                            const Skiffpb__V1__Quantity *q)
{
    Skiffpb__V1__Quantity *c = (Skiffpb__V1__Quantity *)obj__msg_new(
        d->a, &skiffpb__v1__quantity__descriptor);
    if (c && q && q->string && !(c->string = obj__strdup(d->a, q->string)))
        return NULL;
    return c;
}

/* Rewrites every Quantity under m in canonical form. */
static int canon_quantities(dctx *d, ProtobufCMessage *m)
{
    const ProtobufCMessageDescriptor *desc = m->descriptor;
    if (obj__is_quantity(desc)) {
        Skiffpb__V1__Quantity *q = (Skiffpb__V1__Quantity *)m;
        obj_quantity x;
        char buf[OBJ_QUANTITY_STRMAX];
        if (!q->string || obj_quantity_parse(q->string, &x) ||
            obj_quantity_format(&x, buf, sizeof buf) || !strcmp(buf, q->string))
            return 0; /* validation reports what does not parse */
        return (q->string = obj__strdup(d->a, buf)) ? 0 : -ENOMEM;
    }
    for (unsigned i = 0; i < desc->n_fields; i++) {
        const ProtobufCFieldDescriptor *f = &desc->fields[i];
        if (f->type != PROTOBUF_C_TYPE_MESSAGE)
            continue;
        if (f->label == PROTOBUF_C_LABEL_REPEATED) {
            size_t n = *obj__field_count(m, f);
            ProtobufCMessage **arr =
                *(ProtobufCMessage ***)obj__field_ptr(m, f);
            for (size_t j = 0; j < n; j++)
                if (arr[j])
                    OBJ__TRY(canon_quantities(d, arr[j]));
        } else {
            ProtobufCMessage *sub = *(ProtobufCMessage **)obj__field_ptr(m, f);
            if (sub)
                OBJ__TRY(canon_quantities(d, sub));
        }
    }
    return 0;
}

/* ---- pods ---------------------------------------------------------------- */

/* Always for ":latest" or no tag, IfNotPresent for any other tag or a
 * digest (Kubernetes' SetDefaults_Container). */
static const char *pull_policy_for(const char *image)
{
    if (!image)
        return "IfNotPresent";
    if (strchr(image, '@'))
        return "IfNotPresent";
    const char *last = strrchr(image, '/');
    const char *colon = strchr(last ? last : image, ':');
    if (!colon || !strcmp(colon, ":latest"))
        return "Always";
    return "IfNotPresent";
}

static int default_probe(dctx *d, Skiffpb__V1__Probe *p)
{
    if (!p)
        return 0;
    SET_NONZERO(p->has_timeout_seconds, p->timeout_seconds, 1);
    SET_NONZERO(p->has_period_seconds, p->period_seconds, 10);
    SET_NONZERO(p->has_success_threshold, p->success_threshold, 1);
    SET_NONZERO(p->has_failure_threshold, p->failure_threshold, 3);
    if (p->http_get) {
        SET_STR(d, p->http_get->path, "/");
        SET_STR(d, p->http_get->scheme, "HTTP");
    }
    return 0;
}

/* A limit without a request makes the request equal to the limit. */
static int default_requests(dctx *d, Skiffpb__V1__ResourceRequirements *r)
{
    if (!r || !r->n_limits)
        return 0;
    void **reqs;
    OBJ__TRY(obj__map_sort(r->n_requests, (void *const *)r->requests, &reqs));
    size_t n = r->n_requests, missing = 0;
    for (size_t i = 0; i < r->n_limits; i++)
        if (r->limits[i]->key && !obj__map_lookup(reqs, n, r->limits[i]->key))
            missing++;
    /* One array for all additions: appending one by one to an arena
     * array would copy it each time. */
    void **na =
        missing ? cm_arena_alloc(d->a, (n + missing) * sizeof *na) : NULL;
    int rc = missing && !na ? -ENOMEM : 0;
    if (na && n)
        memcpy(na, r->requests, n * sizeof *na);
    size_t k = n;
    for (size_t i = 0; na && !rc && i < r->n_limits; i++) {
        const char *name = r->limits[i]->key;
        if (!name || obj__map_lookup(reqs, n, name))
            continue;
        Skiffpb__V1__ResourceRequirements__RequestsEntry *e =
            (Skiffpb__V1__ResourceRequirements__RequestsEntry *)obj__msg_new(
                d->a, &REQ_ENTRY);
        if (!e || !(e->key = obj__strdup(d->a, name)) ||
            !(e->value = copy_quantity(d, r->limits[i]->value)))
            rc = -ENOMEM;
        else
            na[k++] = e;
    }
    cm_free(reqs);
    if (!rc && na) {
        r->requests = (Skiffpb__V1__ResourceRequirements__RequestsEntry **)na;
        r->n_requests = k;
    }
    return rc;
}

static int default_container(dctx *d, Skiffpb__V1__Container *c)
{
    SET_STR(d, c->image_pull_policy, pull_policy_for(c->image));
    for (size_t i = 0; i < c->n_ports; i++)
        SET_STR(d, c->ports[i]->protocol, "TCP");
    OBJ__TRY(default_requests(d, c->resources));
    OBJ__TRY(default_probe(d, c->liveness_probe));
    OBJ__TRY(default_probe(d, c->readiness_probe));
    OBJ__TRY(default_probe(d, c->startup_probe));
    return 0;
}

static int default_pod_spec(dctx *d, Skiffpb__V1__PodSpec *s)
{
    if (!s)
        return 0;
    SET_STR(d, s->restart_policy, "Always");
    SET_INT(s->has_termination_grace_period_seconds,
            s->termination_grace_period_seconds, DEFAULT_GRACE_SECONDS);
    SET_STR(d, s->scheduler_name, "default-scheduler");
    for (size_t i = 0; i < s->n_init_containers; i++)
        OBJ__TRY(default_container(d, s->init_containers[i]));
    for (size_t i = 0; i < s->n_containers; i++)
        OBJ__TRY(default_container(d, s->containers[i]));
    return 0;
}

/* Whether some toleration already tolerates key:NoExecute. */
static bool tolerates(const Skiffpb__V1__PodSpec *s, const char *key)
{
    for (size_t i = 0; i < s->n_tolerations; i++) {
        const Skiffpb__V1__Toleration *t = s->tolerations[i];
        bool any_key = (!t->key || !t->key[0]) && t->operator_ &&
                       !strcmp(t->operator_, "Exists");
        bool effect =
            !t->effect || !t->effect[0] || !strcmp(t->effect, "NoExecute");
        if (effect && (any_key || (t->key && !strcmp(t->key, key))))
            return true;
    }
    return false;
}

/* DefaultTolerationSeconds: pods stay bound for 5 minutes to a node that
 * goes not-ready or unreachable before they are evicted. */
static int default_tolerations(dctx *d, Skiffpb__V1__PodSpec *s)
{
    static const char *const keys[] = {"node.kubernetes.io/not-ready",
                                       "node.kubernetes.io/unreachable"};
    for (size_t i = 0; i < 2; i++) {
        if (tolerates(s, keys[i]))
            continue;
        Skiffpb__V1__Toleration *t = (Skiffpb__V1__Toleration *)obj__msg_new(
            d->a, &skiffpb__v1__toleration__descriptor);
        if (!t || !(t->key = obj__strdup(d->a, keys[i])) ||
            !(t->operator_ = obj__strdup(d->a, "Exists")) ||
            !(t->effect = obj__strdup(d->a, "NoExecute")))
            return -ENOMEM;
        t->has_toleration_seconds = 1;
        t->toleration_seconds = DEFAULT_TOLERATION_SECONDS;
        OBJ__TRY(push_ptr(d, &s->n_tolerations, (void ***)&s->tolerations, t));
    }
    return 0;
}

static int default_pod(dctx *d, Skiffpb__V1__Pod *p)
{
    ENSURE(d, p->spec, Skiffpb__V1__PodSpec, skiffpb__v1__pod_spec__descriptor);
    OBJ__TRY(default_pod_spec(d, p->spec));
    OBJ__TRY(default_tolerations(d, p->spec));
    /* The Priority admission plugin: no priorityClassName, priority 0. */
    if (!p->spec->priority_class_name || !p->spec->priority_class_name[0])
        SET_INT(p->spec->has_priority, p->spec->priority, 0);
    ENSURE(d, p->status, Skiffpb__V1__PodStatus,
           skiffpb__v1__pod_status__descriptor);
    SET_STR(d, p->status->phase, "Pending");
    SET_STR(d, p->status->qos_class, obj_pod_qos_class(p->spec));
    return 0;
}

static int default_template(dctx *d, Skiffpb__V1__PodTemplateSpec *t)
{
    return t ? default_pod_spec(d, t->spec) : 0;
}

/* ---- workloads ----------------------------------------------------------- */

static int default_deployment(dctx *d, Skiffpb__V1__DeploymentSpec *s)
{
    SET_INT(s->has_replicas, s->replicas, 1);
    ENSURE(d, s->strategy, Skiffpb__V1__DeploymentStrategy,
           skiffpb__v1__deployment_strategy__descriptor);
    SET_STR(d, s->strategy->type, "RollingUpdate");
    if (!strcmp(s->strategy->type, "RollingUpdate")) {
        ENSURE(d, s->strategy->rolling_update,
               Skiffpb__V1__RollingUpdateDeployment,
               skiffpb__v1__rolling_update_deployment__descriptor);
        OBJ__TRY(new_int_or_string(
            d, &s->strategy->rolling_update->max_unavailable, "25%", 0));
        OBJ__TRY(new_int_or_string(d, &s->strategy->rolling_update->max_surge,
                                   "25%", 0));
    }
    SET_INT(s->has_revision_history_limit, s->revision_history_limit, 10);
    SET_INT(s->has_progress_deadline_seconds, s->progress_deadline_seconds,
            600);
    return default_template(d, s->template_);
}

static int default_daemonset(dctx *d, Skiffpb__V1__DaemonSetSpec *s)
{
    ENSURE(d, s->update_strategy, Skiffpb__V1__DaemonSetUpdateStrategy,
           skiffpb__v1__daemon_set_update_strategy__descriptor);
    SET_STR(d, s->update_strategy->type, "RollingUpdate");
    if (!strcmp(s->update_strategy->type, "RollingUpdate")) {
        ENSURE(d, s->update_strategy->rolling_update,
               Skiffpb__V1__RollingUpdateDaemonSet,
               skiffpb__v1__rolling_update_daemon_set__descriptor);
        OBJ__TRY(new_int_or_string(
            d, &s->update_strategy->rolling_update->max_unavailable, NULL, 1));
        OBJ__TRY(new_int_or_string(
            d, &s->update_strategy->rolling_update->max_surge, NULL, 0));
    }
    SET_INT(s->has_revision_history_limit, s->revision_history_limit, 10);
    return default_template(d, s->template_);
}

static int default_pvc_spec(dctx *d, Skiffpb__V1__PersistentVolumeClaimSpec *s)
{
    if (s)
        SET_STR(d, s->volume_mode, "Filesystem");
    return 0;
}

static int default_statefulset(dctx *d, Skiffpb__V1__StatefulSetSpec *s)
{
    SET_INT(s->has_replicas, s->replicas, 1);
    SET_STR(d, s->pod_management_policy, "OrderedReady");
    ENSURE(d, s->update_strategy, Skiffpb__V1__StatefulSetUpdateStrategy,
           skiffpb__v1__stateful_set_update_strategy__descriptor);
    SET_STR(d, s->update_strategy->type, "RollingUpdate");
    if (!strcmp(s->update_strategy->type, "RollingUpdate")) {
        ENSURE(d, s->update_strategy->rolling_update,
               Skiffpb__V1__RollingUpdateStatefulSetStrategy,
               skiffpb__v1__rolling_update_stateful_set_strategy__descriptor);
        SET_INT(s->update_strategy->rolling_update->has_partition,
                s->update_strategy->rolling_update->partition, 0);
    }
    SET_INT(s->has_revision_history_limit, s->revision_history_limit, 10);
    for (size_t i = 0; i < s->n_volume_claim_templates; i++)
        OBJ__TRY(default_pvc_spec(d, s->volume_claim_templates[i]->spec));
    return default_template(d, s->template_);
}

/* ---- HPA ----------------------------------------------------------------- */

static int add_policy(dctx *d, Skiffpb__V1__HPAScalingRules *r,
                      const char *type, int32_t value)
{
    Skiffpb__V1__HPAScalingPolicy *p =
        (Skiffpb__V1__HPAScalingPolicy *)obj__msg_new(
            d->a, &skiffpb__v1__hpascaling_policy__descriptor);
    if (!p || !(p->type = obj__strdup(d->a, type)))
        return -ENOMEM;
    p->has_value = p->has_period_seconds = 1;
    p->value = value;
    p->period_seconds = 15;
    return push_ptr(d, &r->n_policies, (void ***)&r->policies, p);
}

/* autoscaling/v2's behavior defaults: scale up by 100% or 4 pods per 15 s
 * at once, scale down by up to 100% per 15 s after a 5-minute window. */
static int default_rules(dctx *d, Skiffpb__V1__HPAScalingRules **rp, bool up)
{
    ENSURE(d, *rp, Skiffpb__V1__HPAScalingRules,
           skiffpb__v1__hpascaling_rules__descriptor);
    Skiffpb__V1__HPAScalingRules *r = *rp;
    SET_INT(r->has_stabilization_window_seconds,
            r->stabilization_window_seconds, up ? 0 : 300);
    SET_STR(d, r->select_policy, "Max");
    if (!r->n_policies) {
        OBJ__TRY(add_policy(d, r, "Percent", 100));
        if (up)
            OBJ__TRY(add_policy(d, r, "Pods", 4));
    }
    return 0;
}

static int default_hpa(dctx *d, Skiffpb__V1__HorizontalPodAutoscalerSpec *s)
{
    SET_INT(s->has_min_replicas, s->min_replicas, 1);
    if (!s->n_metrics) {
        /* No metrics: target 80% average CPU utilization. */
        Skiffpb__V1__MetricSpec *m = (Skiffpb__V1__MetricSpec *)obj__msg_new(
            d->a, &skiffpb__v1__metric_spec__descriptor);
        if (!m || !(m->type = obj__strdup(d->a, "Resource")))
            return -ENOMEM;
        ENSURE(d, m->resource, Skiffpb__V1__ResourceMetricSource,
               skiffpb__v1__resource_metric_source__descriptor);
        ENSURE(d, m->resource->target, Skiffpb__V1__MetricTarget,
               skiffpb__v1__metric_target__descriptor);
        SET_STR(d, m->resource->name, "cpu");
        SET_STR(d, m->resource->target->type, "Utilization");
        SET_INT(m->resource->target->has_average_utilization,
                m->resource->target->average_utilization, 80);
        OBJ__TRY(push_ptr(d, &s->n_metrics, (void ***)&s->metrics, m));
    }
    if (s->behavior) {
        OBJ__TRY(default_rules(d, &s->behavior->scale_up, true));
        OBJ__TRY(default_rules(d, &s->behavior->scale_down, false));
    }
    return 0;
}

/* ---- others -------------------------------------------------------------- */

static int default_subjects(dctx *d, size_t n, Skiffpb__V1__Subject **s)
{
    for (size_t i = 0; i < n; i++)
        if (s[i]->kind &&
            (!strcmp(s[i]->kind, "User") || !strcmp(s[i]->kind, "Group")))
            SET_STR(d, s[i]->api_group, "rbac.authorization.k8s.io");
    return 0;
}

/* Node status: allocatable defaults to capacity. */
static int default_node(dctx *d, Skiffpb__V1__Node *n)
{
    Skiffpb__V1__NodeStatus *st = n->status;
    if (!st || st->n_allocatable || !st->n_capacity)
        return 0;
    Skiffpb__V1__NodeStatus__AllocatableEntry **na =
        cm_arena_alloc(d->a, st->n_capacity * sizeof *na);
    if (!na)
        return -ENOMEM;
    for (size_t i = 0; i < st->n_capacity; i++) {
        Skiffpb__V1__NodeStatus__AllocatableEntry *e =
            (Skiffpb__V1__NodeStatus__AllocatableEntry *)obj__msg_new(
                d->a, &skiffpb__v1__node_status__allocatable_entry__descriptor);
        const char *key = st->capacity[i]->key;
        if (!e || !(e->key = obj__strdup(d->a, key ? key : "")) ||
            !(e->value = copy_quantity(d, st->capacity[i]->value)))
            return -ENOMEM;
        na[i] = e;
    }
    st->allocatable = na;
    st->n_allocatable = st->n_capacity;
    return 0;
}

static int default_meta(dctx *d, obj_object *o, const obj_defaults_env *env)
{
    const obj_kind *k = obj_kind_get(o);
    ProtobufCMessage *m = obj_object_msg(o);
    const ProtobufCFieldDescriptor *f =
        obj__field_by_name(m->descriptor, "metadata");
    Skiffpb__V1__ObjectMeta **mdp = obj__field_ptr(m, f);
    ENSURE(d, *mdp, Skiffpb__V1__ObjectMeta,
           skiffpb__v1__object_meta__descriptor);
    Skiffpb__V1__ObjectMeta *md = *mdp;
    if (k->namespaced)
        SET_STR(d, md->namespace_, "default");
    else
        md->namespace_ = NULL; /* the API server drops it, as here */
    char buf[64];
    if (env && env->uid && (!md->uid || !md->uid[0])) {
        buf[0] = '\0';
        env->uid(env->data, buf, sizeof buf);
        buf[sizeof buf - 1] = '\0';
        if (!(md->uid = obj__strdup(d->a, buf)))
            return -ENOMEM;
    }
    if (env && env->now &&
        (!md->creation_timestamp || !md->creation_timestamp[0])) {
        buf[0] = '\0';
        env->now(env->data, buf, sizeof buf);
        buf[sizeof buf - 1] = '\0';
        if (!(md->creation_timestamp = obj__strdup(d->a, buf)))
            return -ENOMEM;
    }
    /* apiVersion and kind are implied by the oneof; write them so the
     * stored object reads back as a manifest. */
    const ProtobufCFieldDescriptor *av =
        obj__field_by_name(m->descriptor, "api_version");
    const ProtobufCFieldDescriptor *kd =
        obj__field_by_name(m->descriptor, "kind");
    SET_STR(d, *(char **)obj__field_ptr(m, av), k->api_version);
    SET_STR(d, *(char **)obj__field_ptr(m, kd), k->kind);
    return 0;
}

/* ---- public -------------------------------------------------------------- */

/* A quantity counts towards QoS only when set and nonzero. */
static bool q_set(size_t n, void *const *entries, const char *name,
                  obj_quantity *out)
{
    const void *e = obj__map_find(n, entries, name);
    const Skiffpb__V1__Quantity *q = e ? obj__entry_q(e) : NULL;
    if (!q || !q->string || obj_quantity_parse(q->string, out))
        return false;
    return out->whole || out->nano;
}

const char *obj_pod_qos_class(const Skiffpb__V1__PodSpec *spec)
{
    static const char *const res[] = {"cpu", "memory"};
    bool any = false, guaranteed = true;
    for (size_t pass = 0; pass < 2; pass++) {
        size_t n = pass ? spec->n_containers : spec->n_init_containers;
        Skiffpb__V1__Container *const *cs =
            pass ? spec->containers : spec->init_containers;
        for (size_t i = 0; i < n; i++) {
            const Skiffpb__V1__ResourceRequirements *r = cs[i]->resources;
            for (size_t k = 0; k < 2; k++) {
                obj_quantity rq, lq;
                bool hr = r && q_set(r->n_requests, (void *const *)r->requests,
                                     res[k], &rq);
                bool hl = r && q_set(r->n_limits, (void *const *)r->limits,
                                     res[k], &lq);
                any |= hr || hl;
                /* Guaranteed needs a cpu and a memory limit on every
                 * container, with requests equal to them. */
                if (!hl || (hr && obj_quantity_cmp(&rq, &lq) != 0))
                    guaranteed = false;
            }
        }
    }
    if (!any)
        return "BestEffort";
    return guaranteed ? "Guaranteed" : "Burstable";
}

int obj_defaults(obj_object *o, const obj_defaults_env *env, cm_arena *a)
{
    dctx dc = {.a = a};
    dctx *d = &dc;
    if (!obj_kind_get(o))
        return CM_EINVAL;
    OBJ__TRY(default_meta(d, o, env));
    switch (o->object_case) {
    case SKIFFPB__V1__OBJECT__OBJECT_POD:
        OBJ__TRY(canon_quantities(d, &o->pod->base));
        return default_pod(d, o->pod);
    case SKIFFPB__V1__OBJECT__OBJECT_DEPLOYMENT:
        ENSURE(d, o->deployment->spec, Skiffpb__V1__DeploymentSpec,
               skiffpb__v1__deployment_spec__descriptor);
        OBJ__TRY(default_deployment(d, o->deployment->spec));
        break;
    case SKIFFPB__V1__OBJECT__OBJECT_REPLICA_SET:
        ENSURE(d, o->replica_set->spec, Skiffpb__V1__ReplicaSetSpec,
               skiffpb__v1__replica_set_spec__descriptor);
        SET_INT(o->replica_set->spec->has_replicas,
                o->replica_set->spec->replicas, 1);
        OBJ__TRY(default_template(d, o->replica_set->spec->template_));
        break;
    case SKIFFPB__V1__OBJECT__OBJECT_DAEMON_SET:
        ENSURE(d, o->daemon_set->spec, Skiffpb__V1__DaemonSetSpec,
               skiffpb__v1__daemon_set_spec__descriptor);
        OBJ__TRY(default_daemonset(d, o->daemon_set->spec));
        break;
    case SKIFFPB__V1__OBJECT__OBJECT_STATEFUL_SET:
        ENSURE(d, o->stateful_set->spec, Skiffpb__V1__StatefulSetSpec,
               skiffpb__v1__stateful_set_spec__descriptor);
        OBJ__TRY(default_statefulset(d, o->stateful_set->spec));
        break;
    case SKIFFPB__V1__OBJECT__OBJECT_PERSISTENT_VOLUME_CLAIM: {
        Skiffpb__V1__PersistentVolumeClaim *c = o->persistent_volume_claim;
        OBJ__TRY(default_pvc_spec(d, c->spec));
        ENSURE(d, c->status, Skiffpb__V1__PersistentVolumeClaimStatus,
               skiffpb__v1__persistent_volume_claim_status__descriptor);
        SET_STR(d, c->status->phase, "Pending");
        break;
    }
    case SKIFFPB__V1__OBJECT__OBJECT_HORIZONTAL_POD_AUTOSCALER:
        ENSURE(d, o->horizontal_pod_autoscaler->spec,
               Skiffpb__V1__HorizontalPodAutoscalerSpec,
               skiffpb__v1__horizontal_pod_autoscaler_spec__descriptor);
        OBJ__TRY(default_hpa(d, o->horizontal_pod_autoscaler->spec));
        break;
    case SKIFFPB__V1__OBJECT__OBJECT_NAMESPACE:
        ENSURE(d, o->namespace_->status, Skiffpb__V1__NamespaceStatus,
               skiffpb__v1__namespace_status__descriptor);
        SET_STR(d, o->namespace_->status->phase, "Active");
        break;
    case SKIFFPB__V1__OBJECT__OBJECT_NODE:
        OBJ__TRY(default_node(d, o->node));
        break;
    case SKIFFPB__V1__OBJECT__OBJECT_ROLE_BINDING:
        OBJ__TRY(default_subjects(d, o->role_binding->n_subjects,
                                  o->role_binding->subjects));
        break;
    case SKIFFPB__V1__OBJECT__OBJECT_CLUSTER_ROLE_BINDING:
        OBJ__TRY(default_subjects(d, o->cluster_role_binding->n_subjects,
                                  o->cluster_role_binding->subjects));
        break;
    default:
        break;
    }
    return canon_quantities(d, obj_object_msg(o));
}
