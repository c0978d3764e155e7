/*
 * Dependency graphs for the Elle-style checkers: labelled edges in CSR
 * form, strongly connected components and shortest cycles.
 *
 * Every cycle search is confined to a subset of nodes (one SCC) and a set
 * of edge kinds, because that is how anomalies are classified: a cycle of
 * ww edges alone is G0, ww+wr is G1c, and so on.  The searches reset only
 * the scratch entries of the nodes they are given, so classifying many
 * small components costs time proportional to the components, not to the
 * whole graph.  Tarjan's algorithm runs with an explicit stack since a
 * 100,000-transaction history can make a path that deep.
 */
#include "graph_int.h"

#include <errno.h>
#include <string.h>

int jc__graph_add(jc_graph *g, int32_t from, int32_t to, unsigned kind,
                  int32_t key)
{
    if (g->ne == g->cap) {
        size_t nc = g->cap ? g->cap * 2 : 1024;
        jc_edge *e = cm_realloc(g->edges, nc * sizeof *e);
        if (!e)
            return -ENOMEM;
        g->edges = e;
        g->cap = nc;
    }
    g->edges[g->ne++] = (jc_edge){from, to, kind, key};
    return 0;
}

int jc__graph_freeze(jc_graph *g)
{
    size_t n = g->n;
    g->off = cm_calloc(n + 1, sizeof *g->off);
    g->adj = cm_malloc((g->ne ? g->ne : 1) * sizeof *g->adj);
    g->idx = cm_malloc((n ? n : 1) * sizeof *g->idx);
    g->low = cm_malloc((n ? n : 1) * sizeof *g->low);
    g->stk = cm_malloc((n ? n : 1) * sizeof *g->stk);
    g->cstk = cm_malloc((n ? n : 1) * sizeof *g->cstk);
    g->cpos = cm_malloc((n ? n : 1) * sizeof *g->cpos);
    if (!g->off || !g->adj || !g->idx || !g->low || !g->stk || !g->cstk ||
        !g->cpos)
        return -ENOMEM;
    for (size_t i = 0; i < g->ne; i++)
        g->off[g->edges[i].from + 1]++;
    for (size_t v = 0; v < n; v++)
        g->off[v + 1] += g->off[v];
    /* cpos doubles as the fill cursor while building. */
    for (size_t v = 0; v < n; v++)
        g->cpos[v] = (int32_t)g->off[v];
    for (size_t i = 0; i < g->ne; i++)
        g->adj[g->cpos[g->edges[i].from]++] = (int32_t)i;
    return 0;
}

void jc__graph_free(jc_graph *g)
{
    cm_free(g->edges);
    cm_free(g->off);
    cm_free(g->adj);
    cm_free(g->idx);
    cm_free(g->low);
    cm_free(g->stk);
    cm_free(g->cstk);
    cm_free(g->cpos);
    memset(g, 0, sizeof *g);
}

static int in_set(const int32_t *member, int32_t tag, int32_t v)
{
    return !member || member[v] == tag;
}

int32_t jc__graph_scc(jc_graph *g, unsigned mask, const int32_t *nodes,
                      size_t nn, const int32_t *member, int32_t tag,
                      int32_t *comp)
{
    /* idx: -1 unvisited; low: lowlink, or -1 once assigned to a comp. */
    for (size_t i = 0; i < nn; i++) {
        g->idx[nodes[i]] = -1;
        comp[nodes[i]] = -1;
    }
    int32_t counter = 0, ncomp = 0;
    size_t sp = 0;
    for (size_t i = 0; i < nn; i++) {
        int32_t root = nodes[i];
        if (g->idx[root] >= 0)
            continue;
        size_t csp = 0;
        g->cstk[csp++] = root;
        g->cpos[root] = (int32_t)g->off[root];
        g->idx[root] = g->low[root] = counter++;
        g->stk[sp++] = root;
        while (csp) {
            int32_t v = g->cstk[csp - 1];
            if ((size_t)g->cpos[v] < g->off[v + 1]) {
                const jc_edge *e = &g->edges[g->adj[g->cpos[v]++]];
                int32_t w = e->to;
                if (!(e->kind & mask) || !in_set(member, tag, w))
                    continue;
                if (g->idx[w] < 0) {
                    g->idx[w] = g->low[w] = counter++;
                    g->stk[sp++] = w;
                    g->cpos[w] = (int32_t)g->off[w];
                    g->cstk[csp++] = w;
                } else if (comp[w] < 0 && g->idx[w] < g->low[v]) {
                    g->low[v] = g->idx[w]; /* w is on the stack */
                }
                continue;
            }
            csp--;
            if (csp) {
                int32_t parent = g->cstk[csp - 1];
                if (g->low[v] < g->low[parent])
                    g->low[parent] = g->low[v];
            }
            if (g->low[v] == g->idx[v]) {
                int32_t w;
                do {
                    w = g->stk[--sp];
                    comp[w] = ncomp;
                } while (w != v);
                ncomp++;
            }
        }
    }
    return ncomp;
}

int jc__graph_path(jc_graph *g, unsigned mask, const int32_t *nodes, size_t nn,
                   const int32_t *member, int32_t tag, int32_t s, int32_t t,
                   int32_t *path, size_t *len)
{
    /* BFS; idx holds the edge that reached a node (-2 unreached), stk is
     * the queue.  With s == t this finds a shortest cycle through s. */
    for (size_t i = 0; i < nn; i++)
        g->idx[nodes[i]] = -2;
    size_t qh = 0, qt = 0;
    g->stk[qt++] = s;
    int32_t found = -1;
    while (qh < qt && found < 0) {
        int32_t v = g->stk[qh++];
        for (size_t k = g->off[v]; k < g->off[v + 1]; k++) {
            int32_t ei = g->adj[k];
            const jc_edge *e = &g->edges[ei];
            if (!(e->kind & mask) || !in_set(member, tag, e->to))
                continue;
            if (e->to == t) {
                found = ei;
                break;
            }
            if (g->idx[e->to] != -2 || e->to == s)
                continue;
            g->idx[e->to] = ei;
            g->stk[qt++] = e->to;
        }
    }
    *len = 0;
    if (found < 0)
        return 0;
    /* Walk back from t to s, then reverse. */
    size_t n = 0;
    for (int32_t ei = found;;) {
        path[n++] = ei;
        int32_t from = g->edges[ei].from;
        if (from == s)
            break;
        ei = g->idx[from];
    }
    for (size_t i = 0; i < n / 2; i++) {
        int32_t x = path[i];
        path[i] = path[n - 1 - i];
        path[n - 1 - i] = x;
    }
    *len = n;
    return 1;
}
