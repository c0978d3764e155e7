/*
 * Validation of pod specs (Pods, and the templates of every workload).
 *
 * Kubernetes' ValidatePodSpec, for the fields skiff has: containers (names
 * unique across init and regular containers, images, ports, resources with
 * requests <= limits, probes with exactly one handler and timing fields in
 * range), volumes with exactly one source, nodeSelector, affinity terms,
 * tolerations.  Runs after defaulting, so fields the defaults fill in
 * (restartPolicy, imagePullPolicy, probe timings) are required here.
 */
#include "objects_int.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const restart_policies[] = {"Always", "OnFailure", "Never",
                                               NULL};
static const char *const pull_policies[] = {"Always", "IfNotPresent", "Never",
                                            NULL};
static const char *const protocols[] = {"TCP", "UDP", "SCTP", NULL};
static const char *const schemes[] = {"HTTP", "HTTPS", NULL};
static const char *const node_ops[] = {"In", "NotIn", "Exists", "DoesNotExist",
                                       "Gt", "Lt",    NULL};
static const char *const effects[] = {"NoSchedule", "PreferNoSchedule",
                                      "NoExecute", NULL};
static const char *const tol_ops[] = {"Exists", "Equal", NULL};

/* ---- containers ---------------------------------------------------------- */

static int v_port(obj__vctx *v, const char *field,
                  const Skiffpb__V1__IntOrString *p)
{
    if (!p)
        return obj__v_fail(v, field, "Required value");
    if (p->type == 1) {
        if (!obj__is_port_name(p->str_val))
            return obj__v_fail(v, field,
                               "Invalid value: \"%.32s\": must "
                               "contain only alpha-numeric "
                               "characters (a-z, 0-9), and hyphens "
                               "(-), at least one letter, at most "
                               "15 characters",
                               p->str_val ? p->str_val : "");
        return 0;
    }
    return obj__v_range(v, field, p->int_val, 1, 65535);
}

static int v_probe(obj__vctx *v, const char *field, const Skiffpb__V1__Probe *p,
                   bool success_must_be_1)
{
    if (!p)
        return 0;
    size_t o = obj__v_field(v, field);
    int handlers = !!p->exec + !!p->http_get + !!p->tcp_socket;
    if (!handlers)
        return obj__v_fail(v, NULL,
                           "Required value: must specify a handler "
                           "type");
    if (handlers > 1)
        return obj__v_fail(v, NULL,
                           "Forbidden: may not specify more than 1 "
                           "handler type");
    if (p->exec && !p->exec->n_command)
        return obj__v_fail(v, "exec.command", "Required value");
    if (p->http_get) {
        size_t oh = obj__v_field(v, "httpGet");
        OBJ__TRY(v_port(v, "port", p->http_get->port));
        OBJ__TRY(obj__v_enum(v, "scheme", p->http_get->scheme, false, schemes));
        obj__v_pop(v, oh);
    }
    if (p->tcp_socket) {
        size_t ot = obj__v_field(v, "tcpSocket");
        OBJ__TRY(v_port(v, "port", p->tcp_socket->port));
        obj__v_pop(v, ot);
    }
    OBJ__TRY(obj__v_range(v, "initialDelaySeconds", p->initial_delay_seconds, 0,
                          INT32_MAX));
    /* After defaulting these are at least 1; 0 left here means the caller
     * skipped defaulting, which Kubernetes would also refuse. */
    OBJ__TRY(
        obj__v_range(v, "timeoutSeconds", p->timeout_seconds, 1, INT32_MAX));
    OBJ__TRY(obj__v_range(v, "periodSeconds", p->period_seconds, 1, INT32_MAX));
    OBJ__TRY(obj__v_range(v, "successThreshold", p->success_threshold, 1,
                          INT32_MAX));
    OBJ__TRY(obj__v_range(v, "failureThreshold", p->failure_threshold, 1,
                          INT32_MAX));
    if (success_must_be_1 && p->success_threshold != 1)
        return obj__v_fail(v, "successThreshold",
                           "Invalid value: %d: must "
                           "be 1",
                           (int)p->success_threshold);
    if (p->has_termination_grace_period_seconds)
        OBJ__TRY(obj__v_range(v, "terminationGracePeriodSeconds",
                              p->termination_grace_period_seconds, 1,
                              INT64_MAX));
    obj__v_pop(v, o);
    return 0;
}

/* requests <= limits for every resource that has both. */
static int v_resources(obj__vctx *v, const Skiffpb__V1__ResourceRequirements *r)
{
    if (!r)
        return 0;
    size_t o = obj__v_field(v, "resources");
    OBJ__TRY(
        obj__v_quantities(v, "limits", r->n_limits, (void *const *)r->limits));
    OBJ__TRY(obj__v_quantities(v, "requests", r->n_requests,
                               (void *const *)r->requests));
    void **limits;
    OBJ__TRY(obj__map_sort(r->n_limits, (void *const *)r->limits, &limits));
    int rc = 0;
    for (size_t i = 0; !rc && i < r->n_requests; i++) {
        const char *name = r->requests[i]->key;
        const void *lim = obj__map_lookup(limits, r->n_limits, name);
        if (!lim)
            continue;
        obj_quantity rq, lq;
        const char *rs = r->requests[i]->value->string;
        const char *ls = obj__entry_q(lim)->string;
        obj_quantity_parse(rs, &rq);
        obj_quantity_parse(ls, &lq);
        if (obj_quantity_cmp(&rq, &lq) > 0) {
            obj__v_field(v, "requests");
            obj__v_key(v, name);
            rc = obj__v_fail(v, NULL,
                             "Invalid value: \"%.32s\": must be less than or "
                             "equal to %s limit of %.32s",
                             rs, name, ls);
        }
    }
    cm_free(limits);
    if (rc)
        return rc;
    obj__v_pop(v, o);
    return 0;
}

/* What the checks of every container share, computed once per pod spec:
 * the volume names mounts may use (sorted) and the container whose name
 * repeats an earlier one's. */
typedef struct cshared {
    const char **vols;
    size_t n_vols;
    const void *dup;
} cshared;

static const char *or_empty(const char *s)
{
    return s ? s : "";
}

static int container_name_cmp(const void *a, const void *b)
{
    return strcmp(or_empty(((const Skiffpb__V1__Container *)a)->name),
                  or_empty(((const Skiffpb__V1__Container *)b)->name));
}

static int port_name_cmp(const void *a, const void *b)
{
    return strcmp(or_empty(((const Skiffpb__V1__ContainerPort *)a)->name),
                  or_empty(((const Skiffpb__V1__ContainerPort *)b)->name));
}

static int volume_name_cmp(const void *a, const void *b)
{
    return strcmp(or_empty(((const Skiffpb__V1__Volume *)a)->name),
                  or_empty(((const Skiffpb__V1__Volume *)b)->name));
}

/* The item of items[0..n) that repeats an earlier one, or NULL. */
static int find_dup(const void *const *items, size_t n,
                    int (*cmp)(const void *, const void *), const void **out)
{
    size_t i;
    OBJ__TRY(obj__first_dup(items, n, cmp, &i));
    *out = i < n ? items[i] : NULL;
    return 0;
}

/* The named ports of c that repeats an earlier name, or NULL. */
static int dup_port(const Skiffpb__V1__Container *c, const void **out)
{
    *out = NULL;
    if (c->n_ports < 2)
        return 0;
    const void **named = cm_calloc(c->n_ports, sizeof *named);
    if (!named)
        return -ENOMEM;
    size_t m = 0;
    for (size_t i = 0; i < c->n_ports; i++)
        if (c->ports[i]->name && c->ports[i]->name[0])
            named[m++] = c->ports[i];
    int rc = find_dup(named, m, port_name_cmp, out);
    cm_free(named);
    return rc;
}

static int pod_shared(const Skiffpb__V1__PodSpec *s, size_t n_claims,
                      Skiffpb__V1__PersistentVolumeClaim *const *claims,
                      cshared *sh)
{
    size_t nv = s->n_volumes + n_claims;
    size_t nc = s->n_init_containers + s->n_containers;
    const char **names = cm_calloc(nv ? nv : 1, sizeof *names);
    const void **all = cm_calloc(nc ? nc : 1, sizeof *all);
    int rc = -ENOMEM;
    if (!names || !all)
        goto out;
    for (size_t i = 0; i < s->n_volumes; i++)
        names[i] = s->volumes[i]->name;
    for (size_t i = 0; i < n_claims; i++)
        names[s->n_volumes + i] =
            claims[i]->metadata ? claims[i]->metadata->name : NULL;
    if ((rc = obj__sorted_names(names, nv, &sh->vols, &sh->n_vols)))
        goto out;
    /* Names are unique across init and regular containers. */
    for (size_t i = 0; i < s->n_init_containers; i++)
        all[i] = s->init_containers[i];
    for (size_t i = 0; i < s->n_containers; i++)
        all[s->n_init_containers + i] = s->containers[i];
    rc = find_dup(all, nc, container_name_cmp, &sh->dup);
out:
    cm_free(names);
    cm_free(all);
    return rc;
}

static int v_container(obj__vctx *v, const Skiffpb__V1__Container *c, bool init,
                       const cshared *sh)
{
    const void *dport;
    OBJ__TRY(obj__v_required(v, "name", c->name));
    if (!obj__is_dns1123_label(c->name))
        return obj__v_fail(v, "name",
                           "Invalid value: \"%.64s\": a lowercase "
                           "RFC 1123 label must consist of lower "
                           "case alphanumeric characters or '-', "
                           "and must start and end with an "
                           "alphanumeric character",
                           c->name);
    OBJ__TRY(obj__v_required(v, "image", c->image));
    OBJ__TRY(obj__v_enum(v, "imagePullPolicy", c->image_pull_policy, true,
                         pull_policies));
    OBJ__TRY(dup_port(c, &dport));
    for (size_t i = 0; i < c->n_ports; i++) {
        const Skiffpb__V1__ContainerPort *p = c->ports[i];
        size_t o = obj__v_field(v, "ports");
        obj__v_index(v, i);
        if (!p->has_container_port)
            return obj__v_fail(v, "containerPort", "Required value");
        OBJ__TRY(obj__v_range(v, "containerPort", p->container_port, 1, 65535));
        if (p->has_host_port)
            OBJ__TRY(obj__v_range(v, "hostPort", p->host_port, 0, 65535));
        OBJ__TRY(obj__v_enum(v, "protocol", p->protocol, true, protocols));
        if (p->name && p->name[0]) {
            if (!obj__is_port_name(p->name))
                return obj__v_fail(v, "name",
                                   "Invalid value: \"%.32s\": "
                                   "must be no more than 15 "
                                   "characters",
                                   p->name);
            if (p == dport)
                return obj__v_fail(v, "name", "Duplicate value: \"%.32s\"",
                                   p->name);
        }
        obj__v_pop(v, o);
    }
    for (size_t i = 0; i < c->n_env; i++) {
        size_t o = obj__v_field(v, "env");
        obj__v_index(v, i);
        OBJ__TRY(obj__v_required(v, "name", c->env[i]->name));
        obj__v_pop(v, o);
    }
    OBJ__TRY(v_resources(v, c->resources));
    for (size_t i = 0; i < c->n_volume_mounts; i++) {
        const Skiffpb__V1__VolumeMount *m = c->volume_mounts[i];
        size_t o = obj__v_field(v, "volumeMounts");
        obj__v_index(v, i);
        OBJ__TRY(obj__v_required(v, "name", m->name));
        if (!obj__has_name(sh->vols, sh->n_vols, m->name))
            return obj__v_fail(v, "name", "Not found: \"%.64s\"", m->name);
        OBJ__TRY(obj__v_required(v, "mountPath", m->mount_path));
        obj__v_pop(v, o);
    }
    if (init && (c->liveness_probe || c->readiness_probe || c->startup_probe))
        return obj__v_fail(v,
                           c->liveness_probe    ? "livenessProbe"
                           : c->readiness_probe ? "readinessProbe"
                                                : "startupProbe",
                           "Forbidden: may not be set for init containers "
                           "without restartPolicy=Always");
    OBJ__TRY(v_probe(v, "livenessProbe", c->liveness_probe, true));
    OBJ__TRY(v_probe(v, "readinessProbe", c->readiness_probe, false));
    OBJ__TRY(v_probe(v, "startupProbe", c->startup_probe, true));
    return 0;
}

static int v_containers(obj__vctx *v, const char *field, size_t n,
                        Skiffpb__V1__Container *const *cs, bool init,
                        const cshared *sh)
{
    for (size_t i = 0; i < n; i++) {
        size_t o = obj__v_field(v, field);
        obj__v_index(v, i);
        OBJ__TRY(v_container(v, cs[i], init, sh));
        if (cs[i] == sh->dup)
            return obj__v_fail(v, "name", "Duplicate value: \"%.64s\"",
                               cs[i]->name);
        obj__v_pop(v, o);
    }
    return 0;
}

/* ---- volumes ------------------------------------------------------------- */

static int v_volumes(obj__vctx *v, const Skiffpb__V1__PodSpec *s)
{
    const void *dup;
    OBJ__TRY(find_dup((const void *const *)s->volumes, s->n_volumes,
                      volume_name_cmp, &dup));
    for (size_t i = 0; i < s->n_volumes; i++) {
        const Skiffpb__V1__Volume *vol = s->volumes[i];
        size_t o = obj__v_field(v, "volumes");
        obj__v_index(v, i);
        OBJ__TRY(obj__v_required(v, "name", vol->name));
        if (!obj__is_dns1123_label(vol->name))
            return obj__v_fail(v, "name",
                               "Invalid value: \"%.64s\": a "
                               "lowercase RFC 1123 label must "
                               "consist of lower case "
                               "alphanumeric characters or '-'",
                               vol->name);
        if (vol == dup)
            return obj__v_fail(v, "name", "Duplicate value: \"%.64s\"",
                               vol->name);
        int sources = !!vol->host_path + !!vol->empty_dir +
                      !!vol->persistent_volume_claim;
        if (!sources)
            return obj__v_fail(v, NULL,
                               "Required value: must specify a "
                               "volume type");
        if (sources > 1)
            return obj__v_fail(v, NULL,
                               "Forbidden: may not specify more "
                               "than 1 volume type");
        if (vol->persistent_volume_claim)
            OBJ__TRY(obj__v_required(v, "persistentVolumeClaim.claimName",
                                     vol->persistent_volume_claim->claim_name));
        if (vol->host_path)
            OBJ__TRY(obj__v_required(v, "hostPath.path", vol->host_path->path));
        if (vol->empty_dir && vol->empty_dir->size_limit) {
            obj_quantity q;
            const char *sl = vol->empty_dir->size_limit->string;
            if (!sl || obj_quantity_parse(sl, &q) || q.whole < 0 || q.nano < 0)
                return obj__v_fail(v, "emptyDir.sizeLimit",
                                   "Invalid value: \"%.32s\": must be a "
                                   "non-negative quantity",
                                   sl ? sl : "");
        }
        obj__v_pop(v, o);
    }
    return 0;
}

/* ---- scheduling ---------------------------------------------------------- */

static int v_node_term(obj__vctx *v, const Skiffpb__V1__NodeSelectorTerm *t)
{
    for (int fields = 0; fields < 2; fields++) {
        size_t n = fields ? t->n_match_fields : t->n_match_expressions;
        Skiffpb__V1__NodeSelectorRequirement *const *rs =
            fields ? t->match_fields : t->match_expressions;
        for (size_t i = 0; i < n; i++) {
            const Skiffpb__V1__NodeSelectorRequirement *r = rs[i];
            size_t o =
                obj__v_field(v, fields ? "matchFields" : "matchExpressions");
            obj__v_index(v, i);
            OBJ__TRY(obj__v_required(v, "key", r->key));
            OBJ__TRY(obj__v_enum(v, "operator", r->operator_, true, node_ops));
            const char *op = r->operator_;
            if ((!strcmp(op, "In") || !strcmp(op, "NotIn")) && !r->n_values)
                return obj__v_fail(v, "values",
                                   "Required value: must be "
                                   "specified when `operator` "
                                   "is 'In' or 'NotIn'");
            if ((!strcmp(op, "Exists") || !strcmp(op, "DoesNotExist")) &&
                r->n_values)
                return obj__v_fail(v, "values",
                                   "Forbidden: may not be "
                                   "specified when `operator` "
                                   "is 'Exists' or "
                                   "'DoesNotExist'");
            if (!strcmp(op, "Gt") || !strcmp(op, "Lt")) {
                char *end = NULL;
                if (r->n_values == 1 && r->values[0] && r->values[0][0])
                    (void)strtoll(r->values[0], &end, 10);
                if (r->n_values != 1 || !end || *end)
                    return obj__v_fail(v, "values",
                                       "Required value: must be "
                                       "specified single value "
                                       "when `operator` is 'Lt' "
                                       "or 'Gt' (an integer)");
            }
            obj__v_pop(v, o);
        }
    }
    return 0;
}

static int v_pod_affinity_term(obj__vctx *v,
                               const Skiffpb__V1__PodAffinityTerm *t)
{
    if (t->label_selector)
        OBJ__TRY(obj__v_selector(v, "labelSelector", t->label_selector));
    if (t->namespace_selector)
        OBJ__TRY(
            obj__v_selector(v, "namespaceSelector", t->namespace_selector));
    if (!t->topology_key || !t->topology_key[0])
        return obj__v_fail(v, "topologyKey",
                           "Required value: can not be "
                           "empty");
    return 0;
}

static int v_pod_affinity(obj__vctx *v, const char *field,
                          const Skiffpb__V1__PodAffinity *a)
{
    if (!a)
        return 0;
    size_t o = obj__v_field(v, field);
    for (size_t i = 0;
         i < a->n_required_during_scheduling_ignored_during_execution; i++) {
        size_t oi =
            obj__v_field(v, "requiredDuringSchedulingIgnoredDuringExecution");
        obj__v_index(v, i);
        OBJ__TRY(v_pod_affinity_term(
            v, a->required_during_scheduling_ignored_during_execution[i]));
        obj__v_pop(v, oi);
    }
    for (size_t i = 0;
         i < a->n_preferred_during_scheduling_ignored_during_execution; i++) {
        const Skiffpb__V1__WeightedPodAffinityTerm *w =
            a->preferred_during_scheduling_ignored_during_execution[i];
        size_t oi =
            obj__v_field(v, "preferredDuringSchedulingIgnoredDuringExecution");
        obj__v_index(v, i);
        OBJ__TRY(obj__v_range(v, "weight", w->weight, 1, 100));
        if (!w->pod_affinity_term)
            return obj__v_fail(v, "podAffinityTerm", "Required value");
        obj__v_field(v, "podAffinityTerm");
        OBJ__TRY(v_pod_affinity_term(v, w->pod_affinity_term));
        obj__v_pop(v, oi);
    }
    obj__v_pop(v, o);
    return 0;
}

static int v_affinity(obj__vctx *v, const Skiffpb__V1__Affinity *a)
{
    if (!a)
        return 0;
    size_t o = obj__v_field(v, "affinity");
    const Skiffpb__V1__NodeAffinity *na = a->node_affinity;
    if (na) {
        size_t on = obj__v_field(v, "nodeAffinity");
        const Skiffpb__V1__NodeSelector *req =
            na->required_during_scheduling_ignored_during_execution;
        if (req) {
            size_t orq = obj__v_field(
                v, "requiredDuringSchedulingIgnoredDuringExecution");
            if (!req->n_node_selector_terms)
                return obj__v_fail(v, "nodeSelectorTerms",
                                   "Required value: must have at least one "
                                   "node selector term");
            for (size_t i = 0; i < req->n_node_selector_terms; i++) {
                size_t oi = obj__v_field(v, "nodeSelectorTerms");
                obj__v_index(v, i);
                OBJ__TRY(v_node_term(v, req->node_selector_terms[i]));
                obj__v_pop(v, oi);
            }
            obj__v_pop(v, orq);
        }
        for (size_t i = 0;
             i < na->n_preferred_during_scheduling_ignored_during_execution;
             i++) {
            const Skiffpb__V1__PreferredSchedulingTerm *p =
                na->preferred_during_scheduling_ignored_during_execution[i];
            size_t oi = obj__v_field(
                v, "preferredDuringSchedulingIgnoredDuringExecution");
            obj__v_index(v, i);
            OBJ__TRY(obj__v_range(v, "weight", p->weight, 1, 100));
            if (!p->preference)
                return obj__v_fail(v, "preference", "Required value");
            obj__v_field(v, "preference");
            OBJ__TRY(v_node_term(v, p->preference));
            obj__v_pop(v, oi);
        }
        obj__v_pop(v, on);
    }
    OBJ__TRY(v_pod_affinity(v, "podAffinity", a->pod_affinity));
    OBJ__TRY(v_pod_affinity(v, "podAntiAffinity", a->pod_anti_affinity));
    obj__v_pop(v, o);
    return 0;
}

static int v_tolerations(obj__vctx *v, const Skiffpb__V1__PodSpec *s)
{
    for (size_t i = 0; i < s->n_tolerations; i++) {
        const Skiffpb__V1__Toleration *t = s->tolerations[i];
        size_t o = obj__v_field(v, "tolerations");
        obj__v_index(v, i);
        OBJ__TRY(obj__v_enum(v, "operator", t->operator_, false, tol_ops));
        bool exists = t->operator_ && !strcmp(t->operator_, "Exists");
        if ((!t->key || !t->key[0]) && !exists)
            return obj__v_fail(v, "operator",
                               "Invalid value: \"%s\": "
                               "operator must be Exists when "
                               "`key` is empty, which means "
                               "\"match all values and all "
                               "keys\"",
                               t->operator_ ? t->operator_ : "");
        if (exists && t->value && t->value[0])
            return obj__v_fail(v, "operator",
                               "Invalid value: \"%.64s\": "
                               "value must be empty when "
                               "`operator` is 'Exists'",
                               t->value);
        OBJ__TRY(obj__v_enum(v, "effect", t->effect, false, effects));
        if (t->has_toleration_seconds &&
            (!t->effect || strcmp(t->effect, "NoExecute")))
            return obj__v_fail(v, "effect",
                               "Invalid value: \"%s\": effect "
                               "must be 'NoExecute' when "
                               "`tolerationSeconds` is set",
                               t->effect ? t->effect : "");
        obj__v_pop(v, o);
    }
    return 0;
}

/* ---- the spec ------------------------------------------------------------ */

int obj__v_pod_spec(obj__vctx *v, const Skiffpb__V1__PodSpec *s,
                    size_t n_claims,
                    Skiffpb__V1__PersistentVolumeClaim *const *claims)
{
    OBJ__TRY(v_volumes(v, s));
    if (!s->n_containers)
        return obj__v_fail(v, "containers", "Required value");
    cshared sh = {0};
    int rc = pod_shared(s, n_claims, claims, &sh);
    if (!rc)
        rc = v_containers(v, "initContainers", s->n_init_containers,
                          s->init_containers, true, &sh);
    if (!rc)
        rc = v_containers(v, "containers", s->n_containers, s->containers,
                          false, &sh);
    cm_free(sh.vols);
    if (rc)
        return rc;
    OBJ__TRY(obj__v_enum(v, "restartPolicy", s->restart_policy, true,
                         restart_policies));
    if (s->has_termination_grace_period_seconds)
        OBJ__TRY(obj__v_range(v, "terminationGracePeriodSeconds",
                              s->termination_grace_period_seconds, 0,
                              INT64_MAX));
    if (s->has_active_deadline_seconds)
        OBJ__TRY(obj__v_range(v, "activeDeadlineSeconds",
                              s->active_deadline_seconds, 1, INT64_MAX));
    OBJ__TRY(obj__v_labels(v, "nodeSelector", s->n_node_selector,
                           (void *const *)s->node_selector, true));
    if (s->node_name && s->node_name[0] &&
        !obj__is_dns1123_subdomain(s->node_name))
        return obj__v_fail(v, "nodeName",
                           "Invalid value: \"%.64s\": must "
                           "be a DNS subdomain",
                           s->node_name);
    if (s->scheduler_name && s->scheduler_name[0] &&
        !obj__is_dns1123_subdomain(s->scheduler_name))
        return obj__v_fail(v, "schedulerName",
                           "Invalid value: \"%.64s\": "
                           "must be a DNS subdomain",
                           s->scheduler_name);
    OBJ__TRY(v_affinity(v, s->affinity));
    OBJ__TRY(v_tolerations(v, s));
    return 0;
}
