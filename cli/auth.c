/*
 * skiffctl auth: kubectl's `auth can-i` and `auth whoami`, answered by
 * the server (AccessReview and Authenticate requests), so the answer is
 * the one the server's own authorizer gives (docs/security.md).
 */
#include "cli_int.h"

#include <stdio.h>
#include <string.h>

#define MAX_AS_GROUPS 15

static int can_i(ctl *x, int argc, char **argv)
{
    const char *ns = NULL, *as = NULL, *as_group = NULL;
    int all_ns = 0;
    ctl_flag flags[] = {
        {"namespace", 'n', CTL_STR, &ns},
        {"all-namespaces", 'A', CTL_BOOL, &all_ns},
        {"as", 0, CTL_STR, &as},
        {"as-group", 0, CTL_STR, &as_group},
        {NULL, 0, 0, NULL},
    };
    char *pos[argc + 1];
    int npos, rc = ctl_flags_parse(x, argc, argv, flags, pos, &npos);
    if (rc)
        return rc;
    if (npos < 2 || npos > 3)
        return ctl_errorf(CTL_EXIT_BAD_ARGS,
                          "you must specify two arguments: verb resource "
                          "(or verb resource name); for example: skiffctl "
                          "auth can-i create pods");
    /* kubectl takes "pods/web" as resource and name too. */
    char res[256];
    snprintf(res, sizeof res, "%s", pos[1]);
    const char *name = npos == 3 ? pos[2] : NULL;
    char *slash = strchr(res, '/');
    if (slash && !name && !strchr(slash + 1, '/') &&
        strcmp(slash + 1, "status") && strcmp(slash + 1, "binding")) {
        *slash = 0;
        name = slash + 1;
    }
    /* Groups: --as-group may be given as a comma list. */
    char gbuf[1024];
    const char *groups[MAX_AS_GROUPS];
    size_t ng = 0;
    if (as_group) {
        snprintf(gbuf, sizeof gbuf, "%s", as_group);
        for (char *t = strtok(gbuf, ","); t && ng < MAX_AS_GROUPS;
             t = strtok(NULL, ","))
            groups[ng++] = t;
    }
    skiff_op op = {.type = SKIFF_OP_ACCESS_REVIEW,
                   .verb = pos[0],
                   .resource = res,
                   .ns = all_ns ? "" : ns ? ns : "default",
                   .name = name,
                   .as_user = as,
                   .as_groups = groups,
                   .n_as_groups = ng};
    skiff_client *c = ctl_client(x);
    skiff_result r;
    rc = skiff_do_sync(c, &op, &r);
    if (rc) {
        rc = ctl_fail(x, c, rc, &r);
        skiff_result_free(&r);
        return rc;
    }
    printf("%s\n", r.allowed ? "yes" : "no");
    int allowed = r.allowed;
    skiff_result_free(&r);
    return allowed ? 0 : 1; /* kubectl's exit status */
}

static int whoami(ctl *x, int argc, char **argv)
{
    ctl_flag flags[] = {{NULL, 0, 0, NULL}};
    char *pos[argc + 1];
    int npos, rc = ctl_flags_parse(x, argc, argv, flags, pos, &npos);
    if (rc)
        return rc;
    skiff_op op = {.type = SKIFF_OP_WHOAMI};
    skiff_client *c = ctl_client(x);
    skiff_result r;
    rc = skiff_do_sync(c, &op, &r);
    if (rc) {
        rc = ctl_fail(x, c, rc, &r);
        skiff_result_free(&r);
        return rc;
    }
    printf("ATTRIBUTE   VALUE\nUsername    %s\nGroups      [",
           r.user ? r.user : "");
    for (size_t i = 0; i < r.n_groups; i++)
        printf("%s%s", i ? " " : "", r.groups[i]);
    printf("]\n");
    skiff_result_free(&r);
    return 0;
}

int cmd_auth(ctl *x, const char *sub, int argc, char **argv)
{
    if (!strcmp(sub, "can-i"))
        return can_i(x, argc, argv);
    if (!strcmp(sub, "whoami"))
        return whoami(x, argc, argv);
    return ctl_errorf(CTL_EXIT_ERROR,
                      "unknown command \"%s\" for \"skiffctl auth\"", sub);
}
