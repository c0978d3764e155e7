/*
 * api/objects/rbac_kv.c -- who may use the raw key-value API, and on which
 * keys.
 *
 * Raw KV requests (Range, Put, DeleteRange, Txn, Watch) name byte ranges,
 * not objects, so they get their own rules, modelled on etcd's role key
 * permissions: a grant covers a key or a prefix, and a request is allowed
 * when the union of the user's grants covers its whole range.  Three rules
 * sit above the grants:
 *   - administrators (system:masters) may do anything, as etcd's root;
 *   - nobody else may write under /registry/, because objects written
 *     there must pass admission (decode, validate, default), which a raw
 *     Put would skip;
 *   - reading /registry/ is what every informer does (list a prefix, then
 *     watch it), so a read of one object's key, one resource's prefix or
 *     one namespace's prefix is turned into the RBAC question Kubernetes
 *     would ask (get, list or watch of that resource) when no grant covers
 *     it.  Components then need nothing beyond their ClusterRoles.
 *
 * The grant file is read once at startup; like the token file, one bad line
 * fails the load.
 */
#include "rbac.h"
#include "rbac_int.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#define REGISTRY "/registry/"
#define REGISTRY_END "/registry0" /* first key after the /registry/ prefix */
#define KV_FILE_MAX (4u << 20)

typedef struct grant {
    bool group;
    bool write;
    char *subject;
    uint8_t *lo, *hi; /* [lo, hi); hi NULL: no end */
    size_t lolen, hilen;
} grant;

struct rbac_kv_config {
    grant *v;
    size_t n, cap;
};

/* A key range [lo, hi); hi NULL means "to the end of the keyspace". */
typedef struct span {
    const uint8_t *lo, *hi;
    size_t lolen, hilen;
} span;

/* Resources the registry holds, by kind, so group and scope come from the
 * kind table instead of being written down twice. */
static const struct {
    const char *resource, *kind;
} resources[] = {
    {"namespaces", "Namespace"},
    {"nodes", "Node"},
    {"pods", "Pod"},
    {"replicasets", "ReplicaSet"},
    {"deployments", "Deployment"},
    {"daemonsets", "DaemonSet"},
    {"statefulsets", "StatefulSet"},
    {"persistentvolumeclaims", "PersistentVolumeClaim"},
    {"horizontalpodautoscalers", "HorizontalPodAutoscaler"},
    {"events", "Event"},
    {"leases", "Lease"},
    {"roles", "Role"},
    {"rolebindings", "RoleBinding"},
    {"clusterroles", "ClusterRole"},
    {"clusterrolebindings", "ClusterRoleBinding"},
};

/* ---- helpers ------------------------------------------------------------- */

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

static int bcmp3(const uint8_t *a, size_t an, const uint8_t *b, size_t bn)
{
    int c = memcmp(a, b, an < bn ? an : bn);
    if (c)
        return c;
    return an < bn ? -1 : an > bn;
}

/* Is [key, prefix_end(key)) exactly the request [k, re)?  etcd clients ask
 * for a prefix by incrementing the key's last byte. */
static bool is_prefix_range(const uint8_t *k, size_t kl, const uint8_t *re,
                            size_t rl)
{
    return kl && rl == kl && k[kl - 1] != 0xff && !memcmp(k, re, kl - 1) &&
           re[kl - 1] == k[kl - 1] + 1;
}

static const obj_kind *resource_kind(const char *resource)
{
    for (size_t i = 0; i < sizeof resources / sizeof *resources; i++)
        if (!strcmp(resources[i].resource, resource))
            return obj_kind_find(resources[i].kind);
    return NULL;
}

/* The API group of a kind: its apiVersion up to the '/', "" for "v1".
 * Matched against a fixed list so a static string can be returned. */
static const char *kind_group(const obj_kind *k)
{
    static const char *const groups[] = {"apps", "autoscaling",
                                         "coordination.k8s.io", RBAC_GROUP};
    for (size_t i = 0; i < sizeof groups / sizeof *groups; i++) {
        size_t n = strlen(groups[i]);
        if (!strncmp(k->api_version, groups[i], n) && k->api_version[n] == '/')
            return groups[i];
    }
    return "";
}

/* ---- grants file --------------------------------------------------------- */

static void grant_free(grant *g)
{
    cm_free(g->subject);
    cm_free(g->lo);
    cm_free(g->hi);
}

void rbac_kv_config_destroy(rbac_kv_config *c)
{
    if (!c)
        return;
    for (size_t i = 0; i < c->n; i++)
        grant_free(&c->v[i]);
    cm_free(c->v);
    cm_free(c);
}

/* Makes the grant's range from "key", "prefix*" or "*". */
static int grant_range(grant *g, const char *k, size_t n)
{
    bool prefix = n && k[n - 1] == '*';
    if (prefix)
        n--;
    g->lolen = n;
    if (!(g->lo = cm_malloc(n ? n : 1)))
        return -ENOMEM;
    memcpy(g->lo, k, n);
    if (prefix) {
        /* etcd's prefix end: drop trailing 0xff bytes, increment the last;
         * an empty or all-0xff prefix runs to the end of the keyspace. */
        size_t m = n;
        while (m && (uint8_t)k[m - 1] == 0xff)
            m--;
        if (!m)
            return 0;
        if (!(g->hi = cm_malloc(m)))
            return -ENOMEM;
        memcpy(g->hi, k, m);
        g->hi[m - 1]++;
        g->hilen = m;
    } else {
        /* A single key: [k, k "\0"). */
        if (!(g->hi = cm_malloc(n + 1)))
            return -ENOMEM;
        memcpy(g->hi, k, n);
        g->hi[n] = 0;
        g->hilen = n + 1;
    }
    return 0;
}

static int parse_grant(rbac_kv_config *c, char *line, const char **why)
{
    char *f[4];
    int nf = 0;
    for (char *save = NULL, *t = strtok_r(line, " \t", &save); t;
         t = strtok_r(NULL, " \t", &save)) {
        if (nf == 4)
            break;
        f[nf++] = t;
    }
    if (nf != 3) {
        *why = "want <user:NAME|group:NAME> <read|readwrite> <key|prefix*>";
        return RBAC_EFORMAT;
    }
    grant g = {0};
    if (!strncmp(f[0], "user:", 5)) {
        f[0] += 5;
    } else if (!strncmp(f[0], "group:", 6)) {
        f[0] += 6;
        g.group = true;
    } else {
        *why = "subject must start with user: or group:";
        return RBAC_EFORMAT;
    }
    if (!f[0][0]) {
        *why = "empty subject name";
        return RBAC_EFORMAT;
    }
    if (!strcmp(f[1], "readwrite")) {
        g.write = true;
    } else if (strcmp(f[1], "read")) {
        *why = "access must be read or readwrite";
        return RBAC_EFORMAT;
    }
    if (strchr(f[2], '*') && strchr(f[2], '*') != f[2] + strlen(f[2]) - 1) {
        *why = "'*' may only end a key";
        return RBAC_EFORMAT;
    }
    if (c->n == c->cap) {
        size_t cap = c->cap ? c->cap * 2 : 8;
        grant *v = cm_realloc(c->v, cap * sizeof *v);
        if (!v)
            return -ENOMEM;
        c->v = v;
        c->cap = cap;
    }
    if (!(g.subject = cm_strdup(f[0])) || grant_range(&g, f[2], strlen(f[2]))) {
        grant_free(&g);
        return -ENOMEM;
    }
    c->v[c->n++] = g;
    return 0;
}

int rbac_kv_config_parse(const char *buf, size_t len, const char *name,
                         rbac_kv_config **out, char *errmsg, size_t errcap)
{
    rbac_kv_config *c = cm_calloc(1, sizeof *c);
    if (!c)
        return -ENOMEM;
    int rc = 0;
    size_t lineno = 0;
    const char *why = "out of memory";
    for (size_t i = 0; i < len && !rc;) {
        const char *s = buf + i;
        const char *nl = memchr(s, '\n', len - i);
        size_t n = nl ? (size_t)(nl - s) : len - i;
        i += n + (nl ? 1 : 0);
        lineno++;
        if (memchr(s, '\0', n)) {
            why = "NUL byte";
            rc = RBAC_EFORMAT;
            break;
        }
        const char *hash = memchr(s, '#', n);
        if (hash)
            n = (size_t)(hash - s);
        char *line = cm_malloc(n + 1);
        if (!line) {
            rc = -ENOMEM;
            break;
        }
        memcpy(line, s, n);
        line[n] = '\0';
        size_t blank = strspn(line, " \t\r");
        if (line[blank]) {
            line[strcspn(line, "\r")] = '\0';
            rc = parse_grant(c, line, &why);
        }
        cm_free(line);
    }
    if (rc) {
        if (errmsg && errcap)
            snprintf(errmsg, errcap, "%s:%zu: %s", name ? name : "kv-access",
                     lineno, rc == -ENOMEM ? "out of memory" : why);
        rbac_kv_config_destroy(c);
        return rc;
    }
    *out = c;
    return 0;
}

int rbac_kv_config_load(const char *path, rbac_kv_config **out, char *errmsg,
                        size_t errcap)
{
    cm_buf b = {0};
    int rc = rbac__read_file(path, KV_FILE_MAX, RBAC_EFORMAT, &b, errmsg,
                             errcap);
    if (!rc)
        rc = rbac_kv_config_parse((const char *)b.base, b.len, path, out,
                                  errmsg, errcap);
    cm_buf_free(&b);
    return rc;
}

/* ---- decisions ----------------------------------------------------------- */

static bool grant_applies(const grant *g, const authn_user *u, bool write)
{
    if (write && !g->write)
        return false;
    return g->group ? authn_user_in_group(u, g->subject)
                    : !strcmp(g->subject, u->name);
}

/* Is the whole span covered by the union of u's grants?  Walks from the
 * span's start, each step jumping to the end of a grant that holds the
 * current point; a step always moves forward, so at most n steps. */
static bool covered(const rbac_kv_config *c, const authn_user *u, bool write,
                    span r)
{
    const uint8_t *cur = r.lo;
    size_t curlen = r.lolen;
    for (size_t step = 0; c && step <= c->n; step++) {
        const grant *hit = NULL;
        for (size_t i = 0; i < c->n && !hit; i++) {
            const grant *g = &c->v[i];
            if (grant_applies(g, u, write) &&
                bcmp3(g->lo, g->lolen, cur, curlen) <= 0 &&
                (!g->hi || bcmp3(cur, curlen, g->hi, g->hilen) < 0))
                hit = g;
        }
        if (!hit)
            return false;
        if (!hit->hi)
            return true;
        if (r.hi && bcmp3(hit->hi, hit->hilen, r.hi, r.hilen) >= 0)
            return true;
        cur = hit->hi;
        curlen = hit->hilen;
    }
    return false;
}

static bool touches_registry(span r)
{
    static const uint8_t *lo = (const uint8_t *)REGISTRY;
    static const uint8_t *hi = (const uint8_t *)REGISTRY_END;
    size_t ll = strlen(REGISTRY), hl = strlen(REGISTRY_END);
    /* [a, b) and [lo, hi) meet when a < hi and lo < b. */
    return bcmp3(r.lo, r.lolen, hi, hl) < 0 &&
           (!r.hi || bcmp3(lo, ll, r.hi, r.hilen) < 0);
}

/* Maps a read of a registry key or prefix to an RBAC question. */
static bool registry_read(const rbac_store *s, const authn_user *u,
                          const uint8_t *k, size_t kl, const uint8_t *re,
                          size_t rl, bool watch, rbac_reason *reason)
{
    char buf[512];
    size_t pl = strlen(REGISTRY);
    bool single = rl == 0;
    if (kl >= sizeof buf || kl <= pl || memchr(k, '\0', kl) ||
        (!single && !is_prefix_range(k, kl, re, rl)))
        goto no;
    memcpy(buf, k + pl, kl - pl);
    buf[kl - pl] = '\0';
    /* Segments: resource, then [namespace,] name; a prefix ends in '/'. */
    char *seg[4];
    int n = 0;
    char *p = buf;
    while (n < 4) {
        seg[n++] = p;
        char *sl = strchr(p, '/');
        if (!sl)
            break;
        *sl = '\0';
        p = sl + 1;
    }
    const obj_kind *kind = resource_kind(seg[0]);
    if (!kind)
        goto no;
    const char *ns = "", *name = "";
    int want = kind->namespaced ? 3 : 2; /* segments of one object's key */
    if (single) {
        if (n != want || !seg[want - 1][0] || (want == 3 && !seg[1][0]))
            goto no;
        ns = want == 3 ? seg[1] : "";
        name = seg[want - 1];
    } else {
        /* "/registry/<res>/" splits as {res, ""}; "/registry/<res>/<ns>/"
         * as {res, ns, ""}. */
        bool all = n == 2 && !seg[1][0];
        bool one_ns = kind->namespaced && n == 3 && seg[1][0] && !seg[2][0];
        if (!all && !one_ns)
            goto no;
        ns = one_ns ? seg[1] : "";
    }
    const char *verb = watch ? "watch" : single ? "get" : "list";
    return rbac_allowed(s, u, verb, kind_group(kind), seg[0], "", ns, name,
                        reason);
no:
    say(reason,
        "User \"%s\" may not read this /registry/ range: raw reads there "
        "must name one object's key or a resource or namespace prefix",
        u->name);
    return false;
}

bool rbac_kv_allowed(const rbac_store *s, const rbac_kv_config *c,
                     const authn_user *u, const void *key, size_t klen,
                     const void *range_end, size_t rlen, rbac_kv_access access,
                     rbac_reason *reason)
{
    const uint8_t *k = key, *re = range_end;
    if (!u) {
        say(reason, "no user");
        return false;
    }
    if (rbac_is_admin(u)) {
        say(reason, "allowed: user \"%s\" is in group %s", u->name,
            AUTHN_GROUP_MASTERS);
        return true;
    }
    span r = {k, NULL, klen, 0};
    uint8_t *one = NULL;
    if (rlen == 0) {
        /* A single key is [k, k "\0"). */
        if (!(one = cm_malloc(klen + 1))) {
            say(reason, "out of memory");
            return false;
        }
        memcpy(one, k, klen);
        one[klen] = 0;
        r.hi = one, r.hilen = klen + 1;
    } else if (!(rlen == 1 && re[0] == 0)) {
        r.hi = re, r.hilen = rlen;
        if (bcmp3(r.hi, r.hilen, r.lo, r.lolen) <= 0) {
            say(reason, "empty or inverted key range");
            return false;
        }
    }
    bool write = access == RBAC_KV_WRITE, ok;
    if (write && touches_registry(r)) {
        say(reason,
            "User \"%s\" may not write under " REGISTRY
            " with raw key-value requests: objects are written through the "
            "object API, which applies admission",
            u->name);
        ok = false;
    } else if (covered(c, u, write, r)) {
        say(reason,
            "allowed: the range is covered by the key-value grants "
            "of user \"%s\"",
            u->name);
        ok = true;
    } else if (!write && touches_registry(r)) {
        ok = registry_read(s, u, k, klen, re, rlen, access == RBAC_KV_WATCH,
                           reason);
    } else {
        say(reason,
            "User \"%s\" has no key-value grant covering the range for %s",
            u->name, write ? "writing" : "reading");
        ok = false;
    }
    cm_free(one);
    return ok;
}

const char *rbac_resource_group(const char *resource)
{
    const obj_kind *k = resource ? resource_kind(resource) : NULL;
    return k ? kind_group(k) : NULL;
}

bool rbac_resource_cluster_scoped(const char *resource)
{
    const obj_kind *k = resource ? resource_kind(resource) : NULL;
    return k && !k->namespaced;
}
