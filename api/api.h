/*
 * api/api.h -- what the server and the client library share about the
 * wire protocol beyond the generated messages (rpc.pb-c.h): the error code
 * mapping, error names, and frame limits.
 */
#ifndef SKIFF_API_H
#define SKIFF_API_H

#include <stdint.h>

#include "cm.h"
#include "rpc.pb-c.h"

#define API_DEFAULT_MAX_REQUEST (1536 * 1024 + 4096) /* 1.5 MiB + envelope */
#define API_DEFAULT_MAX_STREAMS 1024  /* open streams per connection */
#define API_DEFAULT_MAX_WATCHES 1024  /* watches per connection */
#define API_DEFAULT_OUTBUF (8u << 20) /* bytes queued per connection */

/* The wire code for an internal error code (kv_, watch_, cm_, -errno). */
Skiffpb__ErrorCode api_code_from_err(int err);
/* "COMPACTED", "NO_SPACE", ... for a wire code; "UNKNOWN" otherwise. */
const char *api_code_name(Skiffpb__ErrorCode code);
/* Parses api_code_name's output back; -1 if unknown. */
int api_code_parse(const char *name);

#endif
