/*
 * A deterministic stream of random store commands: command i of seed s is
 * always the same bytes, whatever state the store is in, so a crashed
 * writer and a reference replay can produce the same sequence.
 */
#ifndef SKIFF_GEN_H
#define SKIFF_GEN_H

#include "kv.h"

/* Packs command number `i` (1-based) of stream `seed` into `out`. */
int gen_command(uint64_t seed, uint64_t i, cm_buf *out);

#endif
