/*
 * Test helper: packed Pod objects as skiffctl would store them under
 * /registry/pods/<ns>/<name>.
 */
#ifndef SKIFF_TEST_PODS_H
#define SKIFF_TEST_PODS_H

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "objects.h"

/* A Pod with up to two labels ("k=v" strings, NULL for none) and
 * spec.nodeName (NULL: unbound).  Returns a malloc'd packed Object. */
static inline uint8_t *pod_pack(const char *ns, const char *name,
                                const char *l1, const char *l2,
                                const char *node, const char *image,
                                size_t *len)
{
    Skiffpb__V1__ObjectMeta meta = SKIFFPB__V1__OBJECT_META__INIT;
    Skiffpb__V1__ObjectMeta__LabelsEntry le[2] = {
        SKIFFPB__V1__OBJECT_META__LABELS_ENTRY__INIT,
        SKIFFPB__V1__OBJECT_META__LABELS_ENTRY__INIT};
    Skiffpb__V1__ObjectMeta__LabelsEntry *lp[2];
    char kv[2][64];
    const char *ls[2] = {l1, l2};
    for (int i = 0; i < 2; i++) {
        if (!ls[i])
            continue;
        snprintf(kv[i], sizeof kv[i], "%s", ls[i]);
        char *eq = strchr(kv[i], '=');
        *eq = 0;
        le[meta.n_labels].key = kv[i];
        le[meta.n_labels].value = eq + 1;
        lp[meta.n_labels] = &le[meta.n_labels];
        meta.n_labels++;
    }
    meta.labels = lp;
    meta.name = (char *)name;
    meta.namespace_ = (char *)ns;
    Skiffpb__V1__Container ct = SKIFFPB__V1__CONTAINER__INIT;
    ct.name = "app";
    ct.image = (char *)(image ? image : "nginx:1.25");
    Skiffpb__V1__Container *cts[1] = {&ct};
    Skiffpb__V1__PodSpec spec = SKIFFPB__V1__POD_SPEC__INIT;
    spec.n_containers = 1;
    spec.containers = cts;
    spec.node_name = (char *)node;
    Skiffpb__V1__Pod pod = SKIFFPB__V1__POD__INIT;
    pod.api_version = "v1";
    pod.kind = "Pod";
    pod.metadata = &meta;
    pod.spec = &spec;
    obj_object o = SKIFFPB__V1__OBJECT__INIT;
    o.object_case = SKIFFPB__V1__OBJECT__OBJECT_POD;
    o.pod = &pod;
    *len = skiffpb__v1__object__get_packed_size(&o);
    uint8_t *buf = malloc(*len ? *len : 1);
    skiffpb__v1__object__pack(&o, buf);
    return buf;
}

#endif
