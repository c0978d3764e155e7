/*
 * The small edits: `label`, `annotate`, `scale`, `taint`, `cordon`,
 * `uncordon`, plus `api-resources`.
 *
 * Each is a mutate function run by octl_update's read-modify-write loop,
 * so a concurrent writer costs a retry, never a lost update, and the
 * result passes admission like any other write (scale to -1 is refused
 * with the validation message).  Messages and refusals are kubectl's:
 * "pod/x labeled", "'app' already has a value (a), and --overwrite is
 * false", "node/n1 already cordoned".
 */
#include "obj_int.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* ---- common -------------------------------------------------------------- */

typedef struct target {
    const octl_kind *k;
    const char *name;
    char **rest; /* words after the target */
    int nrest;
} target;

/* KIND NAME or KIND/NAME at pos[0..].  0 or 1 (printed). */
static int parse_target(char **pos, int npos, target *t)
{
    if (npos < 1)
        return octl_errorf("You must provide one or more resources by "
                           "argument or filename.");
    char *slash = strchr(pos[0], '/');
    if (slash)
        *slash = '\0';
    t->k = octl_kind_lookup(pos[0]);
    if (!t->k)
        return octl_errorf("the server doesn't have a resource type \"%s\"",
                           pos[0]);
    if (slash) {
        t->name = slash + 1;
        t->rest = pos + 1;
        t->nrest = npos - 1;
    } else {
        if (npos < 2)
            return octl_errorf("resource(s) were provided, but no name was "
                               "specified");
        t->name = pos[1];
        t->rest = pos + 2;
        t->nrest = npos - 2;
    }
    return 0;
}

/* Parses flags and the target; pos is the caller's to free. */
static int parse(ctl *x, int argc, char **argv, const ctl_flag *flags,
                 char ***pos, target *t)
{
    *pos = calloc((size_t)argc + 1, sizeof **pos);
    if (!*pos)
        return octl_errorf("out of memory");
    int npos = 0, rc = ctl_flags_parse(x, argc, argv, flags, *pos, &npos);
    if (rc)
        return rc;
    return parse_target(*pos, npos, t);
}

static void done(const target *t, const char *verb)
{
    char tn[96];
    printf("%s/%s %s\n", octl_type_name(t->k, tn, sizeof tn), t->name, verb);
}

/* ---- label and annotate -------------------------------------------------- */

typedef struct kv_edit {
    bool annotations;
    int overwrite;
    char **args;
    int nargs;
} kv_edit;

static int mutate_map(obj_object *o, cm_arena *a, void *arg)
{
    kv_edit *e = arg;
    Skiffpb__V1__ObjectMeta *md = obj_object_meta(o);
    size_t *n = e->annotations ? &md->n_annotations : &md->n_labels;
    void ***entries =
        e->annotations ? (void ***)&md->annotations : (void ***)&md->labels;
    const ProtobufCMessageDescriptor *d =
        e->annotations
            ? &skiffpb__v1__object_meta__annotations_entry__descriptor
            : &skiffpb__v1__object_meta__labels_entry__descriptor;
    for (int i = 0; i < e->nargs; i++) {
        char *w = e->args[i];
        size_t l = strlen(w);
        int rc;
        if (l && w[l - 1] == '-' && !strchr(w, '=')) {
            w[l - 1] = '\0';
            rc = octl_map_set(a, d, n, entries, w, NULL);
            w[l - 1] = '-'; /* a retry parses the word again */
        } else {
            char *eq = strchr(w, '=');
            if (!eq)
                return octl_errorf("invalid %s format: %s",
                                   e->annotations ? "annotation" : "label", w);
            *eq = '\0';
            const char *old = octl_map_get(*n, *entries, w);
            if (old && strcmp(old, eq + 1) && !e->overwrite) {
                octl_errorf("'%s' already has a value (%s), and --overwrite "
                            "is false",
                            w, old);
                *eq = '=';
                return CTL_EXIT_ERROR;
            }
            rc = octl_map_set(a, d, n, entries, w, eq + 1);
            *eq = '=';
        }
        if (rc)
            return octl_errorf("out of memory");
    }
    return 0;
}

static int run_map(ctl *x, int argc, char **argv, bool annotations)
{
    kv_edit e = {.annotations = annotations};
    const char *ns = NULL;
    int all = 0;
    ctl_flag flags[] = {
        {"overwrite", 0, CTL_BOOL, &e.overwrite},
        {"namespace", 'n', CTL_STR, &ns},
        {"all", 0, CTL_BOOL, &all},
        {NULL, 0, 0, NULL},
    };
    char **pos;
    target t;
    int rc = parse(x, argc, argv, flags, &pos, &t);
    if (!rc && !t.nrest)
        rc = octl_errorf("at least one %s update is required",
                         annotations ? "annotation" : "label");
    if (!rc) {
        e.args = t.rest;
        e.nargs = t.nrest;
        bool unchanged = false;
        rc = octl_update(x, t.k, ns ? ns : "default", t.name, mutate_map, &e,
                         &unchanged);
        if (!rc)
            done(&t, unchanged ? (annotations ? "not annotated" : "not labeled")
                               : (annotations ? "annotated" : "labeled"));
    }
    free(pos);
    return rc;
}

int cmd_obj_label(ctl *x, int argc, char **argv)
{
    return run_map(x, argc, argv, false);
}

int cmd_obj_annotate(ctl *x, int argc, char **argv)
{
    return run_map(x, argc, argv, true);
}

/* ---- scale --------------------------------------------------------------- */

typedef struct scale_arg {
    int64_t replicas, current;
} scale_arg;

static int mutate_scale(obj_object *o, cm_arena *a, void *arg)
{
    (void)a;
    scale_arg *s = arg;
    int32_t *r = NULL;
    protobuf_c_boolean *has = NULL;
    switch (o->object_case) {
    case SKIFFPB__V1__OBJECT__OBJECT_DEPLOYMENT:
        if (o->deployment->spec)
            r = &o->deployment->spec->replicas,
            has = &o->deployment->spec->has_replicas;
        break;
    case SKIFFPB__V1__OBJECT__OBJECT_REPLICA_SET:
        if (o->replica_set->spec)
            r = &o->replica_set->spec->replicas,
            has = &o->replica_set->spec->has_replicas;
        break;
    case SKIFFPB__V1__OBJECT__OBJECT_STATEFUL_SET:
        if (o->stateful_set->spec)
            r = &o->stateful_set->spec->replicas,
            has = &o->stateful_set->spec->has_replicas;
        break;
    default:
        break;
    }
    if (!r)
        return octl_errorf("cannot scale a %s", obj_kind_get(o)->kind);
    if (s->current >= 0 && *r != s->current)
        return octl_errorf("Expected replicas to be %lld, was %d",
                           (long long)s->current, *r);
    *r = (int32_t)s->replicas;
    *has = 1;
    return 0;
}

int cmd_obj_scale(ctl *x, int argc, char **argv)
{
    scale_arg s = {.replicas = INT64_MIN, .current = -1};
    const char *ns = NULL;
    ctl_flag flags[] = {
        {"replicas", 0, CTL_INT, &s.replicas},
        {"current-replicas", 0, CTL_INT, &s.current},
        {"namespace", 'n', CTL_STR, &ns},
        {NULL, 0, 0, NULL},
    };
    char **pos;
    target t;
    int rc = parse(x, argc, argv, flags, &pos, &t);
    if (!rc && s.replicas == INT64_MIN)
        rc = octl_errorf("required flag(s) \"replicas\" not set");
    if (!rc && (s.replicas < INT32_MIN || s.replicas > INT32_MAX))
        rc = octl_errorf("invalid --replicas value");
    if (!rc) {
        rc = octl_update(x, t.k, ns ? ns : "default", t.name, mutate_scale, &s,
                         NULL);
        if (!rc)
            done(&t, "scaled");
    }
    free(pos);
    return rc;
}

/* ---- taint --------------------------------------------------------------- */

typedef struct taint_arg {
    char **args;
    int nargs;
    int overwrite;
    bool removed;
} taint_arg;

static bool valid_effect(const char *e)
{
    return !strcmp(e, "NoSchedule") || !strcmp(e, "PreferNoSchedule") ||
           !strcmp(e, "NoExecute");
}

static int mutate_taint(obj_object *o, cm_arena *a, void *arg)
{
    taint_arg *ta = arg;
    if (o->object_case != SKIFFPB__V1__OBJECT__OBJECT_NODE)
        return octl_errorf("taint is only supported on nodes");
    Skiffpb__V1__Node *nd = o->node;
    if (!nd->spec) {
        nd->spec = cm_arena_alloc(a, sizeof *nd->spec);
        if (!nd->spec)
            return octl_errorf("out of memory");
        skiffpb__v1__node_spec__init(nd->spec);
    }
    Skiffpb__V1__NodeSpec *sp = nd->spec;
    ta->removed = false;
    for (int i = 0; i < ta->nargs; i++) {
        char w[256];
        snprintf(w, sizeof w, "%s", ta->args[i]);
        size_t l = strlen(w);
        bool remove = l && w[l - 1] == '-';
        if (remove)
            w[--l] = '\0';
        char *colon = strrchr(w, ':');
        const char *effect = NULL;
        if (colon) {
            *colon = '\0';
            effect = colon + 1;
            if (!valid_effect(effect))
                return octl_errorf("invalid taint effect: %s, unsupported "
                                   "taint effect",
                                   effect);
        } else if (!remove) {
            return octl_errorf("invalid taint spec: %s", ta->args[i]);
        }
        char *eq = strchr(w, '=');
        const char *value = NULL;
        if (eq) {
            *eq = '\0';
            value = eq + 1;
        }
        if (!w[0])
            return octl_errorf("invalid taint spec: %s", ta->args[i]);
        if (remove) {
            size_t kept = 0;
            for (size_t j = 0; j < sp->n_taints; j++) {
                Skiffpb__V1__Taint *tt = sp->taints[j];
                bool match =
                    tt->key && !strcmp(tt->key, w) &&
                    (!effect || (tt->effect && !strcmp(tt->effect, effect)));
                if (!match)
                    sp->taints[kept++] = tt;
            }
            if (kept == sp->n_taints)
                return octl_errorf("taint \"%s%s%s\" not found", w,
                                   effect ? ":" : "", effect ? effect : "");
            sp->n_taints = kept;
            ta->removed = true;
            continue;
        }
        Skiffpb__V1__Taint *tt = NULL;
        for (size_t j = 0; j < sp->n_taints; j++)
            if (sp->taints[j]->key && !strcmp(sp->taints[j]->key, w) &&
                sp->taints[j]->effect && !strcmp(sp->taints[j]->effect, effect))
                tt = sp->taints[j];
        if (tt && !ta->overwrite)
            return octl_errorf("node %s already has %s taint(s) with same "
                               "effect(s) and --overwrite is false",
                               nd->metadata->name, w);
        if (!tt) {
            Skiffpb__V1__Taint **nt =
                cm_arena_alloc(a, (sp->n_taints + 1) * sizeof *nt);
            tt = cm_arena_alloc(a, sizeof *tt);
            if (!nt || !tt)
                return octl_errorf("out of memory");
            skiffpb__v1__taint__init(tt);
            if (sp->n_taints)
                memcpy(nt, sp->taints, sp->n_taints * sizeof *nt);
            nt[sp->n_taints++] = tt;
            sp->taints = nt;
        }
        tt->key = octl_strdup(a, w);
        tt->value = value ? octl_strdup(a, value) : NULL;
        tt->effect = octl_strdup(a, effect);
        /* The API server stamps NoExecute taints with the time they were
         * added (eviction timing counts from it). */
        if (!strcmp(effect, "NoExecute")) {
            char ts[32];
            time_t now = (time_t)(octl_now_ms() / 1000);
            struct tm tm;
            gmtime_r(&now, &tm);
            strftime(ts, sizeof ts, "%Y-%m-%dT%H:%M:%SZ", &tm);
            tt->time_added = octl_strdup(a, ts);
        } else {
            tt->time_added = NULL;
        }
        if (!tt->key || !tt->effect || (value && !tt->value))
            return octl_errorf("out of memory");
    }
    return 0;
}

int cmd_obj_taint(ctl *x, int argc, char **argv)
{
    taint_arg ta = {0};
    ctl_flag flags[] = {
        {"overwrite", 0, CTL_BOOL, &ta.overwrite},
        {NULL, 0, 0, NULL},
    };
    char **pos;
    target t;
    int rc = parse(x, argc, argv, flags, &pos, &t);
    if (!rc && t.k->k != obj_kind_find("Node"))
        rc = octl_errorf("invalid resource type %s, only node types are "
                         "supported",
                         t.k->k->resource);
    if (!rc && !t.nrest)
        rc = octl_errorf("at least one taint update is required");
    if (!rc) {
        ta.args = t.rest;
        ta.nargs = t.nrest;
        rc = octl_update(x, t.k, NULL, t.name, mutate_taint, &ta, NULL);
        if (!rc)
            done(&t, ta.removed ? "untainted" : "tainted");
    }
    free(pos);
    return rc;
}

/* ---- cordon and uncordon ------------------------------------------------- */

typedef struct cordon_arg {
    bool on;
    bool already;
} cordon_arg;

static int mutate_cordon(obj_object *o, cm_arena *a, void *arg)
{
    cordon_arg *c = arg;
    Skiffpb__V1__Node *nd = o->node;
    if (!nd->spec) {
        nd->spec = cm_arena_alloc(a, sizeof *nd->spec);
        if (!nd->spec)
            return octl_errorf("out of memory");
        skiffpb__v1__node_spec__init(nd->spec);
    }
    bool cur = nd->spec->has_unschedulable && nd->spec->unschedulable;
    c->already = cur == c->on;
    /* unschedulable is omitempty in Kubernetes: false is written as
     * absent. */
    nd->spec->has_unschedulable = c->on;
    nd->spec->unschedulable = c->on;
    return 0;
}

static int run_cordon(ctl *x, int argc, char **argv, bool on)
{
    ctl_flag flags[] = {{NULL, 0, 0, NULL}};
    char **pos = calloc((size_t)argc + 2, sizeof *pos);
    if (!pos)
        return octl_errorf("out of memory");
    int npos = 0, rc = ctl_flags_parse(x, argc, argv, flags, pos + 1, &npos);
    if (!rc && npos < 1)
        rc = octl_errorf("USAGE: %s NODE [flags]", on ? "cordon" : "uncordon");
    if (!rc) {
        /* cordon takes node names only: make it "nodes NAME". */
        pos[0] = "nodes";
        target t;
        cordon_arg c = {.on = on};
        rc = parse_target(pos, npos + 1, &t);
        if (!rc)
            rc = octl_update(x, t.k, NULL, t.name, mutate_cordon, &c, NULL);
        if (!rc)
            done(&t, c.already
                         ? (on ? "already cordoned" : "already uncordoned")
                         : (on ? "cordoned" : "uncordoned"));
    }
    free(pos);
    return rc;
}

int cmd_obj_cordon(ctl *x, int argc, char **argv)
{
    return run_cordon(x, argc, argv, true);
}

int cmd_obj_uncordon(ctl *x, int argc, char **argv)
{
    return run_cordon(x, argc, argv, false);
}

/* ---- api-resources ------------------------------------------------------- */

int cmd_obj_api_resources(ctl *x, int argc, char **argv)
{
    int no_headers = 0;
    const char *out = NULL;
    ctl_flag flags[] = {
        {"no-headers", 0, CTL_BOOL, &no_headers},
        {"output", 'o', CTL_STR, &out},
        {NULL, 0, 0, NULL},
    };
    char **pos = calloc((size_t)argc + 1, sizeof *pos);
    if (!pos)
        return octl_errorf("out of memory");
    int npos = 0, rc = ctl_flags_parse(x, argc, argv, flags, pos, &npos);
    free(pos);
    if (rc)
        return rc;
    size_t n;
    const octl_kind *ks = octl_kinds(&n);
    if (out && !strcmp(out, "name")) {
        char rn[96];
        for (size_t i = 0; i < n; i++)
            printf("%s\n", octl_resource_name(&ks[i], rn, sizeof rn));
        return 0;
    }
    size_t w[4] = {4, 10, 10, 10};
    for (size_t i = 0; i < n; i++) {
        size_t l = strlen(ks[i].k->resource);
        w[0] = l > w[0] ? l : w[0];
        l = strlen(ks[i].shorts);
        w[1] = l > w[1] ? l : w[1];
        l = strlen(ks[i].k->api_version);
        w[2] = l > w[2] ? l : w[2];
    }
    if (!no_headers)
        printf("%-*s   %-*s   %-*s   %-*s   %s\n", (int)w[0], "NAME", (int)w[1],
               "SHORTNAMES", (int)w[2], "APIVERSION", (int)w[3], "NAMESPACED",
               "KIND");
    for (size_t i = 0; i < n; i++)
        printf("%-*s   %-*s   %-*s   %-*s   %s\n", (int)w[0], ks[i].k->resource,
               (int)w[1], ks[i].shorts, (int)w[2], ks[i].k->api_version,
               (int)w[3], ks[i].k->namespaced ? "true" : "false",
               ks[i].k->kind);
    return 0;
}
