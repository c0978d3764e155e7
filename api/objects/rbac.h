/*
 * api/objects/rbac.h -- authorization: Kubernetes RBAC over skiff's Role,
 * ClusterRole, RoleBinding and ClusterRoleBinding objects, the NodeRestriction
 * rules for node agents, and permissions for raw key-value access
 * (library `rbac`, prefix rbac_).
 *
 * An rbac_store holds copies of the RBAC objects, fed one by one from a
 * watch on /registry/{roles,rolebindings,clusterroles,clusterrolebindings}/
 * (rbac_store_put on PUT, rbac_store_del_key on DELETE), and answers
 * "may this user do this verb on this resource?" as Kubernetes' RBAC
 * authorizer does.  Members of system:masters may do anything.
 *
 * Threads: an rbac_store belongs to one thread (the server's loop); it is
 * not locked.  Decisions are O(bindings + rules of the bound roles).
 */
#ifndef SKIFF_RBAC_H
#define SKIFF_RBAC_H

#include <stdbool.h>
#include <stddef.h>

#include "authn.h"
#include "cm.h"
#include "objects.h"

#define RBAC_GROUP "rbac.authorization.k8s.io"
#define RBAC_NODE_LEASE_NAMESPACE "kube-node-lease"

/* Why a decision came out as it did, for logs and for the PERMISSION_DENIED
 * message ("RBAC: allowed by ClusterRoleBinding \"x\" of ClusterRole ..."). */
typedef struct rbac_reason {
    char msg[512];
} rbac_reason;

/* ---- the store ----------------------------------------------------------- */

typedef struct rbac_store rbac_store;

/* Creates an empty store (denies everyone but system:masters).
 * Returns 0 or -ENOMEM. */
int rbac_store_create(rbac_store **out);
void rbac_store_destroy(rbac_store *s); /* NULL ok */

/* Adds o, or replaces the object of the same kind, namespace and name.
 * What the store needs is copied: o is borrowed for the call (decode it
 * into an arena and reset the arena afterwards).  Objects are taken as
 * they are (the store trusts admission to have validated them); rules with
 * only nonResourceURLs are kept but never match a resource request.
 * Returns 0, CM_EINVAL (o is not one of the four RBAC kinds, has no name,
 * is a namespaced kind without namespace, or is a binding without
 * roleRef) or -ENOMEM.  On failure the store is unchanged: an older
 * version of the object stays in force, so a caller that must fail closed
 * removes it (rbac_store_del_key) when an update cannot be applied. */
int rbac_store_put(rbac_store *s, const obj_object *o);

/* Removes an object.  kind is "Role", "ClusterRole", "RoleBinding" or
 * "ClusterRoleBinding"; ns is ignored for the cluster kinds.  Removing one
 * that is not there is not an error.  Returns 0 or CM_EINVAL (bad kind). */
int rbac_store_del(rbac_store *s, const char *kind, const char *ns,
                   const char *name);

/* The same from a registry key, as a watch's DELETE event gives it:
 * "/registry/roles/<ns>/<name>", "/registry/clusterroles/<name>", ...
 * Returns 0, or CM_EINVAL when key is not an RBAC object's key. */
int rbac_store_del_key(rbac_store *s, const char *key, size_t len);

/* Objects held, by kind, for tests and status pages. */
size_t rbac_store_count(const rbac_store *s, const char *kind);

/* ---- decisions ----------------------------------------------------------- */

/* True when u is an administrator (group system:masters). */
bool rbac_is_admin(const authn_user *u);

/* May u do `verb` on the resource?  Kubernetes' RBAC semantics:
 *   verb:        get, list, watch, create, update, patch, delete (a rule's
 *                "*" matches any).
 *   api_group:   "" for the core group, "apps", "autoscaling",
 *                "coordination.k8s.io", "rbac.authorization.k8s.io".
 *   resource:    plural ("pods"); subresource "status", "binding" or ""
 *                (a rule names "pods/status"; "pods" does not cover it;
 *                "*" covers every resource and "*\/status" every status).
 *   ns:          the namespace, "" for cluster-scoped resources and for
 *                requests across all namespaces (then only
 *                ClusterRoleBindings count).
 *   name:        the object's name, "" for list, watch of a collection and
 *                create without a name (rules with resourceNames then do
 *                not match).
 *   reason:      may be NULL; says which binding allowed, or why not.
 * ClusterRoleBindings grant their ClusterRole everywhere; a RoleBinding
 * grants its Role, or the rules of a ClusterRole, within its namespace.
 * Subjects: User (name), Group (one of u's groups), ServiceAccount (user
 * "system:serviceaccount:<namespace>:<name>", namespace defaulting to the
 * RoleBinding's).  A binding to a missing role grants nothing.
 * NULL strings are taken as "". */
bool rbac_allowed(const rbac_store *s, const authn_user *u, const char *verb,
                  const char *api_group, const char *resource,
                  const char *subresource, const char *ns, const char *name,
                  rbac_reason *reason);

/* NodeRestriction: what a node agent may write beyond what RBAC allows.
 * Applies only to users named "system:node:<node>" in group system:nodes
 * (anyone else: true, "not a node").  Reads (get, list, watch) pass.
 * Writes (create, update, patch, delete) are allowed only:
 *   nodes, nodes/status:      when name is <node>;
 *   pods and subresources:    when the pod is bound to <node>
 *                             (node_name = the stored pod's spec.nodeName;
 *                             for create, the new pod's);
 *   leases:                   in kube-node-lease, named <node>;
 *   events:                   always (an agent reports on its pods);
 *   anything else:            never.
 * A node name that is empty refuses everything.  NULL strings are "".
 * The server calls this after rbac_allowed says yes. */
bool rbac_node_restriction(const authn_user *u, const char *verb,
                           const char *resource, const char *subresource,
                           const char *ns, const char *name,
                           const char *node_name, rbac_reason *reason);

/* ---- built-in roles ------------------------------------------------------ */

/* The built-in ClusterRoles and ClusterRoleBindings (system:kube-scheduler,
 * system:kube-controller-manager, system:node), the same objects as the
 * YAML files in deploy/rbac/.  Decoded into a (borrowed; objects live in
 * it).
 * Returns 0, -ENOMEM, or CM_ECORRUPT if the embedded manifests do not
 * decode (the unit tests make sure they do). */
int rbac_builtin(cm_arena *a, obj_object ***out, size_t *n);

/* The built-in manifests as YAML text (static), one document per object. */
const char *rbac_builtin_yaml(void);

/* rbac_store_put of every built-in object.  0, -ENOMEM (some may have been
 * put: calling again is harmless, puts replace) or CM_ECORRUPT. */
int rbac_store_put_builtin(rbac_store *s);

/* ---- raw key-value access ------------------------------------------------ */

/* What a raw KV request does to its key range. */
typedef enum rbac_kv_access {
    RBAC_KV_READ = 0, /* Range (get or list) */
    RBAC_KV_WATCH,    /* Watch */
    RBAC_KV_WRITE     /* Put, DeleteRange, the writes of a Txn */
} rbac_kv_access;

typedef struct rbac_kv_config rbac_kv_config;

/* Loads raw KV permissions (docs/security.md): one grant a line,
 *   <subject> <access> <key>
 *   subject: user:<name> | group:<name>
 *   access:  read (range and watch) | readwrite
 *   key:     an exact key, or a prefix followed by '*' (so "/app/" and a
 *            star is every key under /app/; a lone star is every key).  Keys
 * are taken byte for byte (no spaces).
 * '#' starts a comment.  Errors give "path:line: reason".
 * Returns 0, RBAC_EFORMAT, -errno or -ENOMEM. */
int rbac_kv_config_load(const char *path, rbac_kv_config **out, char *errmsg,
                        size_t errcap);
int rbac_kv_config_parse(const char *buf, size_t len, const char *name,
                         rbac_kv_config **out, char *errmsg, size_t errcap);
void rbac_kv_config_destroy(rbac_kv_config *c); /* NULL ok */

/* May u do `access` on the keys [key, range_end) (etcd's encoding:
 * range_end empty (rlen 0) means the single key, "\0" means every key from
 * key on)?
 *   - administrators: always;
 *   - a write touching /registry/: never (objects go through admission);
 *   - a read or watch inside /registry/<resource>/ is decided by RBAC
 *     (s, may be NULL: then denied): the whole resource is list or watch
 *     across namespaces, /registry/<resource>/<ns>/ is list or watch in
 *     <ns>, a single key is get (or watch) of that object;
 *   - anything else: the range must be covered by u's grants in c (NULL:
 *     no grants), read grants for reads and watches, readwrite for writes.
 * reason may be NULL. */
bool rbac_kv_allowed(const rbac_store *s, const rbac_kv_config *c,
                     const authn_user *u, const void *key, size_t klen,
                     const void *range_end, size_t rlen, rbac_kv_access access,
                     rbac_reason *reason);

/* The API group of a registry resource ("deployments" -> "apps"), or NULL
 * when skiff does not serve it.  Static. */
const char *rbac_resource_group(const char *resource);
/* True for resources without namespace (nodes, namespaces, clusterroles,
 * clusterrolebindings). */
bool rbac_resource_cluster_scoped(const char *resource);

#endif
