/*
 * api/objects/rbac_int.h -- what authn.c and rbac_kv.c share inside the
 * rbac library.
 */
#ifndef SKIFF_RBAC_INT_H
#define SKIFF_RBAC_INT_H

#include <stddef.h>

#include "cm.h"

/* Reads the whole of the small configuration file `path` into `out` (an
 * empty cm_buf; the caller frees it).  0, `too_big` when the file holds
 * more than `max` bytes, -errno from open, -EIO, -ENOMEM; errors other
 * than -ENOMEM are described in errmsg ("path: why"). */
int rbac__read_file(const char *path, size_t max, int too_big, cm_buf *out,
                    char *errmsg, size_t errcap);

#endif
