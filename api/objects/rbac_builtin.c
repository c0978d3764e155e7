/*
 * api/objects/rbac_builtin.c -- the built-in least-privilege ClusterRoles
 * and ClusterRoleBindings of the system components.
 *
 * The roles are data, not code: the YAML files of deploy/rbac/ are the one
 * source, and the build embeds them (embed_rbac.cmake) so the server and
 * an operator reading the manifests see the same rules.  They decode with the
 * ordinary object decoder, so a manifest that stops decoding fails the
 * unit tests rather than a server at startup.
 */
#include "rbac.h"

#include <errno.h>
#include <string.h>

/* Generated from deploy/rbac/ (unsigned so any UTF-8 byte is in range). */
extern const unsigned char rbac__builtin_yaml[];

const char *rbac_builtin_yaml(void)
{
    return (const char *)rbac__builtin_yaml;
}

int rbac_builtin(cm_arena *a, obj_object ***out, size_t *n)
{
    obj_error err;
    const char *y = rbac_builtin_yaml();
    int rc = obj_yaml_decode(y, strlen(y), a, out, n, &err);
    /* Only memory can fail: the tests decode the same bytes. */
    return rc == -ENOMEM ? -ENOMEM : rc ? CM_ECORRUPT : 0;
}

int rbac_store_put_builtin(rbac_store *s)
{
    cm_arena a = {0};
    obj_object **objs;
    size_t n;
    int rc = rbac_builtin(&a, &objs, &n);
    for (size_t i = 0; !rc && i < n; i++)
        rc = rbac_store_put(s, objs[i]);
    cm_arena_free(&a);
    return rc;
}
