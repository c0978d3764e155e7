/*
 * api/objects/rbac.c -- the RBAC store and Kubernetes' authorization rules.
 *
 * The store keeps its own copy of what a decision needs from each Role,
 * ClusterRole, RoleBinding and ClusterRoleBinding: the objects arrive from
 * a watch, decoded into a per-event arena the caller resets right away.
 * Each copy lives in its own small arena, so replacing or removing one
 * object frees it in one call and a failed copy leaves the store as it
 * was.  The four kinds sit in four unsorted tables searched linearly: a
 * cluster has tens to a few hundred RBAC objects and a decision already
 * has to look at every ClusterRoleBinding, so an index would buy little.
 *
 * A decision follows Kubernetes' RBAC authorizer (rbac.go, its
 * VisitRulesFor and RuleAllows): first every ClusterRoleBinding, then, for
 * a namespaced request, the RoleBindings of that namespace; the first rule
 * that allows ends the search.  Nothing denies: RBAC is purely additive.
 * A binding whose role is missing grants nothing (Kubernetes reports it
 * and goes on).  system:masters is let through before any of this, as the
 * API server's privileged-group authorizer does.
 *
 * NodeRestriction (Kubernetes' admission plugin and node authorizer, in
 * one check) is separate because it needs the object: a node may write a
 * pod only if the pod is bound to it, which RBAC rules cannot say.
 */
#include "rbac.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#define ENTRY_CHUNK 1024 /* arena chunk per object: most fit in one */

enum { T_ROLE, T_CROLE, T_RB, T_CRB, T_N };

static const char *const kind_names[T_N] = {
    "Role", "ClusterRole", "RoleBinding", "ClusterRoleBinding"};
static const char *const kind_resources[T_N] = {
    "roles", "clusterroles", "rolebindings", "clusterrolebindings"};

typedef struct rule {
    char **verbs, **groups, **resources, **names;
    size_t n_verbs, n_groups, n_resources, n_names;
} rule;

typedef struct subject {
    const char *kind, *name, *ns;
} subject;

/* One stored object.  Roles use rules; bindings use ref_* and subjects.
 * ns is "" for the cluster kinds. */
typedef struct entry {
    cm_arena arena;
    const char *ns, *name;
    rule *rules;
    size_t n_rules;
    const char *ref_kind, *ref_name;
    subject *subjects;
    size_t n_subjects;
} entry;

typedef struct table {
    entry **v;
    size_t n, cap;
} table;

struct rbac_store {
    table t[T_N];
};

/* ---- copying objects in -------------------------------------------------- */

static const char *dup(cm_arena *a, const char *s)
{
    if (!s)
        s = "";
    return cm_arena_memdup(a, s, strlen(s) + 1);
}

static int dup_list(cm_arena *a, char *const *src, size_t n, char ***out)
{
    *out = NULL;
    if (!n)
        return 0;
    char **v = cm_arena_alloc(a, n * sizeof *v);
    if (!v)
        return -ENOMEM;
    for (size_t i = 0; i < n; i++)
        if (!(v[i] = (char *)dup(a, src[i])))
            return -ENOMEM;
    *out = v;
    return 0;
}

static int copy_rules(entry *e, Skiffpb__V1__PolicyRule *const *r, size_t n)
{
    e->n_rules = n;
    if (!n)
        return 0;
    e->rules = cm_arena_alloc(&e->arena, n * sizeof *e->rules);
    if (!e->rules)
        return -ENOMEM;
    for (size_t i = 0; i < n; i++) {
        rule *d = &e->rules[i];
        d->n_verbs = r[i]->n_verbs;
        d->n_groups = r[i]->n_api_groups;
        d->n_resources = r[i]->n_resources;
        d->n_names = r[i]->n_resource_names;
        if (dup_list(&e->arena, r[i]->verbs, d->n_verbs, &d->verbs) ||
            dup_list(&e->arena, r[i]->api_groups, d->n_groups, &d->groups) ||
            dup_list(&e->arena, r[i]->resources, d->n_resources,
                     &d->resources) ||
            dup_list(&e->arena, r[i]->resource_names, d->n_names, &d->names))
            return -ENOMEM;
    }
    return 0;
}

static int copy_binding(entry *e, Skiffpb__V1__Subject *const *s, size_t n,
                        const Skiffpb__V1__RoleRef *ref)
{
    if (!ref)
        return CM_EINVAL;
    if (!(e->ref_kind = dup(&e->arena, ref->kind)) ||
        !(e->ref_name = dup(&e->arena, ref->name)))
        return -ENOMEM;
    e->n_subjects = n;
    if (!n)
        return 0;
    e->subjects = cm_arena_alloc(&e->arena, n * sizeof *e->subjects);
    if (!e->subjects)
        return -ENOMEM;
    for (size_t i = 0; i < n; i++) {
        subject *d = &e->subjects[i];
        if (!(d->kind = dup(&e->arena, s[i]->kind)) ||
            !(d->name = dup(&e->arena, s[i]->name)) ||
            !(d->ns = dup(&e->arena, s[i]->namespace_)))
            return -ENOMEM;
    }
    return 0;
}

static void entry_free(entry *e)
{
    if (!e)
        return;
    cm_arena_free(&e->arena);
    cm_free(e);
}

/* Builds the entry for o.  Returns 0 and *which, CM_EINVAL or -ENOMEM. */
static int entry_build(const obj_object *o, entry **out, int *which)
{
    const obj_kind *k = obj_kind_get(o);
    int t = -1;
    for (int i = 0; k && i < T_N; i++)
        if (!strcmp(k->kind, kind_names[i]))
            t = i;
    const Skiffpb__V1__ObjectMeta *m = obj_object_meta(o);
    if (t < 0 || !m || !m->name || !m->name[0])
        return CM_EINVAL;
    bool namespaced = t == T_ROLE || t == T_RB;
    if (namespaced && (!m->namespace_ || !m->namespace_[0]))
        return CM_EINVAL;
    entry *e = cm_calloc(1, sizeof *e);
    if (!e)
        return -ENOMEM;
    e->arena.chunk_sz = ENTRY_CHUNK;
    int rc = -ENOMEM;
    if (!(e->ns = dup(&e->arena, namespaced ? m->namespace_ : "")) ||
        !(e->name = dup(&e->arena, m->name)))
        goto err;
    switch (t) {
    case T_ROLE:
        rc = copy_rules(e, o->role->rules, o->role->n_rules);
        break;
    case T_CROLE:
        rc = copy_rules(e, o->cluster_role->rules, o->cluster_role->n_rules);
        break;
    case T_RB:
        rc = copy_binding(e, o->role_binding->subjects,
                          o->role_binding->n_subjects,
                          o->role_binding->role_ref);
        break;
    default:
        rc = copy_binding(e, o->cluster_role_binding->subjects,
                          o->cluster_role_binding->n_subjects,
                          o->cluster_role_binding->role_ref);
    }
    if (rc)
        goto err;
    *out = e;
    *which = t;
    return 0;
err:
    entry_free(e);
    return rc;
}

static long table_find(const table *t, const char *ns, const char *name)
{
    for (size_t i = 0; i < t->n; i++)
        if (!strcmp(t->v[i]->name, name) && !strcmp(t->v[i]->ns, ns))
            return (long)i;
    return -1;
}

static const entry *find_entry(const rbac_store *s, int which, const char *ns,
                               const char *name)
{
    long i = table_find(&s->t[which], ns, name);
    return i < 0 ? NULL : s->t[which].v[i];
}

static int kind_index(const char *kind)
{
    for (int i = 0; kind && i < T_N; i++)
        if (!strcmp(kind, kind_names[i]))
            return i;
    return -1;
}

/* ---- matching ------------------------------------------------------------ */

static bool has(char *const *v, size_t n, const char *s)
{
    for (size_t i = 0; i < n; i++)
        if (!strcmp(v[i], s))
            return true;
    return false;
}

/* Kubernetes' ResourceMatches: "*" is every resource and subresource, a
 * rule resource "pods/status" names one subresource, "*\/status" that
 * subresource of every resource.  "pods" alone does not cover
 * "pods/status": a role must name subresources it grants. */
static bool resource_matches(const rule *r, const char *resource,
                             const char *sub)
{
    size_t rl = strlen(resource), sl = strlen(sub);
    for (size_t i = 0; i < r->n_resources; i++) {
        const char *x = r->resources[i];
        if (!strcmp(x, "*"))
            return true;
        if (!sl) {
            if (!strcmp(x, resource))
                return true;
            continue;
        }
        if (!strncmp(x, resource, rl) && x[rl] == '/' &&
            !strcmp(x + rl + 1, sub))
            return true;
        if (x[0] == '*' && x[1] == '/' && !strcmp(x + 2, sub))
            return true;
    }
    return false;
}

static bool rule_allows(const rule *r, const char *verb, const char *group,
                        const char *resource, const char *sub, const char *name)
{
    if (!has(r->verbs, r->n_verbs, verb) && !has(r->verbs, r->n_verbs, "*"))
        return false;
    if (!has(r->groups, r->n_groups, group) &&
        !has(r->groups, r->n_groups, "*"))
        return false;
    if (!resource_matches(r, resource, sub))
        return false;
    /* resourceNames restrict by name; a request without one (list,
     * create) cannot be proven to stay inside them. */
    return !r->n_names || (name[0] && has(r->names, r->n_names, name));
}

/* Does subject x of a binding in namespace bns name u? */
static bool subject_applies(const subject *x, const authn_user *u,
                            const char *bns)
{
    if (!strcmp(x->kind, "User"))
        return !strcmp(x->name, u->name);
    if (!strcmp(x->kind, "Group"))
        return authn_user_in_group(u, x->name);
    if (!strcmp(x->kind, "ServiceAccount")) {
        const char *ns = x->ns[0] ? x->ns : bns;
        char want[AUTHN_NAME_MAX * 2];
        int n = snprintf(want, sizeof want, "system:serviceaccount:%s:%s", ns,
                         x->name);
        return ns[0] && n > 0 && (size_t)n < sizeof want &&
               !strcmp(want, u->name);
    }
    return false;
}

static const subject *binding_applies(const entry *b, const authn_user *u)
{
    for (size_t i = 0; i < b->n_subjects; i++)
        if (subject_applies(&b->subjects[i], u, b->ns))
            return &b->subjects[i];
    return NULL;
}

static bool role_allows(const entry *role, const char *verb, const char *group,
                        const char *resource, const char *sub, const char *name)
{
    for (size_t i = 0; role && i < role->n_rules; i++)
        if (rule_allows(&role->rules[i], verb, group, resource, sub, name))
            return true;
    return false;
}

static void say(rbac_reason *r, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void say(rbac_reason *r, const char *fmt, ...)
{
    if (!r)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(r->msg, sizeof r->msg, fmt, ap);
    va_end(ap);
}

static const char *nz(const char *s)
{
    return s ? s : "";
}

/* ---- public: store ------------------------------------------------------- */

int rbac_store_create(rbac_store **out)
{
    rbac_store *s = cm_calloc(1, sizeof *s);
    if (!s)
        return -ENOMEM;
    *out = s;
    return 0;
}

void rbac_store_destroy(rbac_store *s)
{
    if (!s)
        return;
    for (int k = 0; k < T_N; k++) {
        for (size_t i = 0; i < s->t[k].n; i++)
            entry_free(s->t[k].v[i]);
        cm_free(s->t[k].v);
    }
    cm_free(s);
}

int rbac_store_put(rbac_store *s, const obj_object *o)
{
    entry *e;
    int which;
    int rc = entry_build(o, &e, &which);
    if (rc)
        return rc;
    table *t = &s->t[which];
    long i = table_find(t, e->ns, e->name);
    if (i >= 0) {
        entry_free(t->v[i]);
        t->v[i] = e;
        return 0;
    }
    if (t->n == t->cap) {
        size_t cap = t->cap ? t->cap * 2 : 16;
        entry **v = cm_realloc(t->v, cap * sizeof *v);
        if (!v) {
            entry_free(e);
            return -ENOMEM;
        }
        t->v = v;
        t->cap = cap;
    }
    t->v[t->n++] = e;
    return 0;
}

int rbac_store_del(rbac_store *s, const char *kind, const char *ns,
                   const char *name)
{
    int k = kind_index(kind);
    if (k < 0)
        return CM_EINVAL;
    if (k == T_CROLE || k == T_CRB)
        ns = "";
    table *t = &s->t[k];
    long i = table_find(t, nz(ns), nz(name));
    if (i >= 0) {
        entry_free(t->v[i]);
        t->v[i] = t->v[--t->n]; /* order does not matter */
    }
    return 0;
}

int rbac_store_del_key(rbac_store *s, const char *key, size_t len)
{
    static const char pre[] = "/registry/";
    char buf[512];
    if (len >= sizeof buf || len < sizeof pre ||
        memcmp(key, pre, sizeof pre - 1) || memchr(key, '\0', len))
        return CM_EINVAL;
    memcpy(buf, key + sizeof pre - 1, len - (sizeof pre - 1));
    buf[len - (sizeof pre - 1)] = '\0';
    char *res = buf, *a = strchr(res, '/');
    if (!a)
        return CM_EINVAL;
    *a++ = '\0';
    char *b = strchr(a, '/');
    for (int k = 0; k < T_N; k++) {
        if (strcmp(res, kind_resources[k]))
            continue;
        bool namespaced = k == T_ROLE || k == T_RB;
        if (namespaced != (b != NULL))
            return CM_EINVAL;
        if (b)
            *b++ = '\0';
        if (!*a || (b && (!*b || strchr(b, '/'))))
            return CM_EINVAL;
        return rbac_store_del(s, kind_names[k], b ? a : "", b ? b : a);
    }
    return CM_EINVAL;
}

size_t rbac_store_count(const rbac_store *s, const char *kind)
{
    int k = kind_index(kind);
    return k < 0 ? 0 : s->t[k].n;
}

/* ---- public: decisions --------------------------------------------------- */

bool rbac_is_admin(const authn_user *u)
{
    return u && authn_user_in_group(u, AUTHN_GROUP_MASTERS);
}

bool rbac_allowed(const rbac_store *s, const authn_user *u, const char *verb,
                  const char *api_group, const char *resource,
                  const char *subresource, const char *ns, const char *name,
                  rbac_reason *reason)
{
    verb = nz(verb), api_group = nz(api_group), resource = nz(resource);
    subresource = nz(subresource), ns = nz(ns), name = nz(name);
    if (!u) {
        say(reason, "RBAC: no user");
        return false;
    }
    if (rbac_is_admin(u)) {
        say(reason, "RBAC: allowed: user \"%s\" is in group %s", u->name,
            AUTHN_GROUP_MASTERS);
        return true;
    }
    for (size_t i = 0; s && i < s->t[T_CRB].n; i++) {
        const entry *b = s->t[T_CRB].v[i];
        const subject *x = binding_applies(b, u);
        if (!x || strcmp(b->ref_kind, "ClusterRole"))
            continue;
        const entry *r = find_entry(s, T_CROLE, "", b->ref_name);
        if (role_allows(r, verb, api_group, resource, subresource, name)) {
            say(reason,
                "RBAC: allowed by ClusterRoleBinding \"%s\" of ClusterRole "
                "\"%s\" to %s \"%s\"",
                b->name, b->ref_name, x->kind, x->name);
            return true;
        }
    }
    for (size_t i = 0; s && ns[0] && i < s->t[T_RB].n; i++) {
        const entry *b = s->t[T_RB].v[i];
        if (strcmp(b->ns, ns))
            continue;
        const subject *x = binding_applies(b, u);
        if (!x)
            continue;
        /* A RoleBinding may name a ClusterRole: its rules then apply only
         * inside the binding's namespace. */
        const entry *r = !strcmp(b->ref_kind, "ClusterRole")
                             ? find_entry(s, T_CROLE, "", b->ref_name)
                             : find_entry(s, T_ROLE, ns, b->ref_name);
        if (role_allows(r, verb, api_group, resource, subresource, name)) {
            say(reason,
                "RBAC: allowed by RoleBinding \"%s/%s\" of %s \"%s\" to %s "
                "\"%s\"",
                ns, b->name, b->ref_kind, b->ref_name, x->kind, x->name);
            return true;
        }
    }
    char res[160];
    snprintf(res, sizeof res, "%s%s%s", resource, subresource[0] ? "/" : "",
             subresource);
    if (ns[0])
        say(reason,
            "User \"%s\" cannot %s resource \"%s\" in API group \"%s\" in the "
            "namespace \"%s\"",
            u->name, verb, res, api_group, ns);
    else
        say(reason,
            "User \"%s\" cannot %s resource \"%s\" in API group \"%s\" at "
            "the cluster scope",
            u->name, verb, res, api_group);
    return false;
}

/* ---- NodeRestriction ----------------------------------------------------- */

static bool is_read(const char *verb)
{
    return !strcmp(verb, "get") || !strcmp(verb, "list") ||
           !strcmp(verb, "watch");
}

bool rbac_node_restriction(const authn_user *u, const char *verb,
                           const char *resource, const char *subresource,
                           const char *ns, const char *name,
                           const char *node_name, rbac_reason *reason)
{
    verb = nz(verb), resource = nz(resource), subresource = nz(subresource);
    ns = nz(ns), name = nz(name), node_name = nz(node_name);
    size_t pl = strlen(AUTHN_NODE_PREFIX);
    if (!u || strncmp(u->name, AUTHN_NODE_PREFIX, pl) ||
        !authn_user_in_group(u, AUTHN_GROUP_NODES)) {
        say(reason, "NodeRestriction: not a node");
        return true;
    }
    const char *me = u->name + pl;
    if (!me[0]) {
        say(reason, "NodeRestriction: node identity without a node name");
        return false;
    }
    if (is_read(verb)) {
        say(reason, "NodeRestriction: reads are left to RBAC");
        return true;
    }
    bool ok;
    const char *what;
    if (!strcmp(resource, "nodes")) {
        ok = !strcmp(name, me);
        what = "may only modify its own Node";
    } else if (!strcmp(resource, "pods")) {
        ok = !strcmp(node_name, me);
        what = "may only modify pods bound to it";
    } else if (!strcmp(resource, "leases")) {
        ok = !strcmp(ns, RBAC_NODE_LEASE_NAMESPACE) && !strcmp(name, me);
        what = "may only modify its own Lease in " RBAC_NODE_LEASE_NAMESPACE;
    } else if (!strcmp(resource, "events")) {
        ok = true;
        what = "may write events";
    } else {
        ok = false;
        what = "may not modify this resource";
    }
    say(reason, "NodeRestriction: node \"%s\" %s (%s %s%s%s %s%s%s)", me, what,
        verb, resource, subresource[0] ? "/" : "", subresource, ns,
        ns[0] ? "/" : "", name);
    return ok;
}
