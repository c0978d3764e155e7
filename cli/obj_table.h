/*
 * cli/obj_table.h -- kubectl's tables for `get` (obj_table.c), shared by
 * the list and the watch printers (obj_get.c).  Internal to skiffctl.
 */
#ifndef SKIFF_CLI_OBJ_TABLE_H
#define SKIFF_CLI_OBJ_TABLE_H

#include <stdbool.h>
#include <stddef.h>

#include "obj_int.h"

#define OCTL_MAX_COLS 16

typedef struct octl_table {
    size_t ncols, nrows, cap;
    const char *head[OCTL_MAX_COLS];
    char **cells;
    cm_arena *a;
} octl_table;

typedef struct octl_gopts {
    const char *ns, *selector, *out;
    int all_ns, show_labels, no_headers;
    int watch, watch_only;
    bool wide;
} octl_gopts;

/* Appends a row (cells copied into t->a).  0 or -ENOMEM. */
int octl_table_row(octl_table *t, char *const *cells);
/* Column widths of t's rows (and header when headers) into w. */
void octl_table_widths(const octl_table *t, bool headers, size_t *w);
/* Prints t aligned to widths w (the header first when headers). */
void octl_table_emit(const octl_table *t, bool headers, const size_t *w);
/* octl_table_widths then octl_table_emit. */
void octl_table_print(const octl_table *t, bool headers);
/* The columns kubectl prints for kind k (-o wide adds some). */
void octl_table_head(octl_table *t, const obj_kind *k, const octl_gopts *g);
/* A row for o in t's columns.  0 or -ENOMEM. */
int octl_table_add(octl_table *t, const obj_object *o, const octl_gopts *g);

#endif
