/*
 * Labelled dependency graphs (graph.c), used by the append checker.
 */
#ifndef SKIFF_JEPSEN_GRAPH_INT_H
#define SKIFF_JEPSEN_GRAPH_INT_H

#include "checker_int.h"

/* Edge kinds, combinable into masks. */
enum { JC_WW = 1, JC_WR = 2, JC_RW = 4, JC_RT = 8 };

typedef struct jc_edge {
    int32_t from, to;
    unsigned kind;
    int32_t key; /* the key that explains it; -1 for realtime */
} jc_edge;

typedef struct jc_graph {
    size_t n; /* nodes, set before adding edges */
    jc_edge *edges;
    size_t ne, cap;
    size_t *off;  /* CSR: edges of v are adj[off[v]..off[v+1]) */
    int32_t *adj; /* edge indices */
    /* scratch for the searches */
    int32_t *idx, *low, *stk, *cstk, *cpos;
} jc_graph;

int jc__graph_add(jc_graph *g, int32_t from, int32_t to, unsigned kind,
                  int32_t key);
/* Builds the CSR index and scratch; call once after the last add.
 * 0 or -ENOMEM. */
int jc__graph_freeze(jc_graph *g);
void jc__graph_free(jc_graph *g);

/* Strongly connected components among `nodes` (the nodes v with
 * member[v] == tag, or all when member is NULL; `nodes` must list exactly
 * them), using edges whose kind is in `mask`.  Writes comp[v] for each
 * listed node and returns the number of components. */
int32_t jc__graph_scc(jc_graph *g, unsigned mask, const int32_t *nodes,
                      size_t nn, const int32_t *member, int32_t tag,
                      int32_t *comp);

/* A shortest path s -> t (a shortest cycle when s == t) inside the same
 * node set and mask.  Edge indices go to path (room for nn entries);
 * returns 1 and *len, or 0 when there is none. */
int jc__graph_path(jc_graph *g, unsigned mask, const int32_t *nodes, size_t nn,
                   const int32_t *member, int32_t tag, int32_t s, int32_t t,
                   int32_t *path, size_t *len);

#endif
