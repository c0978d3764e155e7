/*
 * The JSON parser's state, shared by json.c and history.c.  One parser is
 * reused for every line of a history so its scratch stack is allocated
 * once.
 */
#ifndef SKIFF_JEPSEN_JSON_INT_H
#define SKIFF_JEPSEN_JSON_INT_H

#include "checker_int.h"

typedef struct jc_parser {
    cm_arena *arena; /* where values go; borrowed */
    const char *s;
    size_t len, pos;
    const char *err; /* static message on JC_EPARSE */
    jc_json *stack;  /* scratch for container members */
    const char **skeys;
    size_t sp, cap;
} jc_parser;

/* Parses exactly one value filling s[0, len).  0, -ENOMEM or JC_EPARSE
 * (p->err says why, p->pos says where). */
int jc__json_parse(jc_parser *p, const char *s, size_t len, jc_json *out);
void jc__parser_free(jc_parser *p);

#endif
