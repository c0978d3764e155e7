/*
 * A small JSON parser for history lines.
 *
 * Histories can hold millions of values, so the DOM lives in the history's
 * arena and is freed all at once.  Array and object members are collected
 * on a scratch stack shared by the whole parse: a nested container's
 * members are popped before the container itself is pushed as its parent's
 * member, so each container's members are contiguous on the stack and are
 * copied to the arena in one block when it closes.  Nesting is limited to
 * keep recursion bounded on hostile input.
 */
#include "json_int.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define MAX_DEPTH 64

static void skip_ws(jc_parser *p)
{
    while (p->pos < p->len && (p->s[p->pos] == ' ' || p->s[p->pos] == '\t' ||
                               p->s[p->pos] == '\r' || p->s[p->pos] == '\n'))
        p->pos++;
}

static int fail(jc_parser *p, const char *what)
{
    if (!p->err)
        p->err = what;
    return JC_EPARSE;
}

static int push(jc_parser *p, const jc_json *v, const char *key)
{
    if (p->sp == p->cap) {
        size_t ncap = p->cap ? p->cap * 2 : 64;
        jc_json *nv = cm_realloc(p->stack, ncap * sizeof *nv);
        if (!nv)
            return -ENOMEM;
        p->stack = nv;
        const char **nk = cm_realloc(p->skeys, ncap * sizeof *nk);
        if (!nk)
            return -ENOMEM;
        p->skeys = nk;
        p->cap = ncap;
    }
    p->stack[p->sp] = *v;
    p->skeys[p->sp] = key;
    p->sp++;
    return 0;
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

static void put_utf8(char *o, size_t *n, uint32_t cp)
{
    if (cp < 0x80) {
        o[(*n)++] = (char)cp;
    } else if (cp < 0x800) {
        o[(*n)++] = (char)(0xc0 | (cp >> 6));
        o[(*n)++] = (char)(0x80 | (cp & 0x3f));
    } else if (cp < 0x10000) {
        o[(*n)++] = (char)(0xe0 | (cp >> 12));
        o[(*n)++] = (char)(0x80 | ((cp >> 6) & 0x3f));
        o[(*n)++] = (char)(0x80 | (cp & 0x3f));
    } else {
        o[(*n)++] = (char)(0xf0 | (cp >> 18));
        o[(*n)++] = (char)(0x80 | ((cp >> 12) & 0x3f));
        o[(*n)++] = (char)(0x80 | ((cp >> 6) & 0x3f));
        o[(*n)++] = (char)(0x80 | (cp & 0x3f));
    }
}

/* Parses a string at p->pos (on the opening quote) into arena memory.  The
 * decoded form is never longer than the source, so one allocation of the
 * source length suffices. */
static int parse_str(jc_parser *p, const char **out, size_t *outlen)
{
    size_t start = ++p->pos, end = start;
    while (end < p->len && p->s[end] != '"') {
        if (p->s[end] == '\\')
            end++;
        end++;
    }
    if (end >= p->len)
        return fail(p, "unterminated string");
    char *o = cm_arena_alloc(p->arena, end - start + 1);
    if (!o)
        return -ENOMEM;
    size_t n = 0;
    for (size_t i = start; i < end; i++) {
        char c = p->s[i];
        if ((unsigned char)c < 0x20)
            return fail(p, "control character in string");
        if (c != '\\') {
            o[n++] = c;
            continue;
        }
        c = p->s[++i];
        switch (c) {
        case '"':
        case '\\':
        case '/':
            o[n++] = c;
            break;
        case 'b':
            o[n++] = '\b';
            break;
        case 'f':
            o[n++] = '\f';
            break;
        case 'n':
            o[n++] = '\n';
            break;
        case 'r':
            o[n++] = '\r';
            break;
        case 't':
            o[n++] = '\t';
            break;
        case 'u': {
            uint32_t cp = 0;
            if (i + 4 >= end + 1 || end - i < 5)
                return fail(p, "bad \\u escape");
            for (int k = 1; k <= 4; k++) {
                int h = hexval(p->s[i + k]);
                if (h < 0)
                    return fail(p, "bad \\u escape");
                cp = cp * 16 + (uint32_t)h;
            }
            i += 4;
            /* Surrogate pairs become one code point; a lone surrogate is
             * kept as is (histories only compare bytes). */
            if (cp >= 0xd800 && cp < 0xdc00 && end - i >= 7 &&
                p->s[i + 1] == '\\' && p->s[i + 2] == 'u') {
                uint32_t lo = 0;
                int ok = 1;
                for (int k = 3; k <= 6; k++) {
                    int h = hexval(p->s[i + k]);
                    if (h < 0)
                        ok = 0;
                    lo = lo * 16 + (uint32_t)(h < 0 ? 0 : h);
                }
                if (ok && lo >= 0xdc00 && lo < 0xe000) {
                    cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
                    i += 6;
                }
            }
            put_utf8(o, &n, cp);
            break;
        }
        default:
            return fail(p, "bad escape");
        }
    }
    o[n] = '\0';
    p->pos = end + 1;
    *out = o;
    *outlen = n;
    return 0;
}

static int parse_value(jc_parser *p, jc_json *v, int depth);

static int parse_container(jc_parser *p, jc_json *v, int depth, int obj)
{
    size_t base = p->sp;
    int rc;
    p->pos++;
    skip_ws(p);
    if (p->pos < p->len && p->s[p->pos] == (obj ? '}' : ']')) {
        p->pos++;
    } else {
        for (;;) {
            const char *key = NULL;
            size_t klen;
            jc_json item;
            skip_ws(p);
            if (obj) {
                if (p->pos >= p->len || p->s[p->pos] != '"')
                    return fail(p, "expected member name");
                if ((rc = parse_str(p, &key, &klen)))
                    return rc;
                skip_ws(p);
                if (p->pos >= p->len || p->s[p->pos] != ':')
                    return fail(p, "expected ':'");
                p->pos++;
            }
            if ((rc = parse_value(p, &item, depth + 1)))
                return rc;
            if ((rc = push(p, &item, key)))
                return rc;
            skip_ws(p);
            if (p->pos < p->len && p->s[p->pos] == ',') {
                p->pos++;
                continue;
            }
            if (p->pos < p->len && p->s[p->pos] == (obj ? '}' : ']')) {
                p->pos++;
                break;
            }
            return fail(p, obj ? "expected ',' or '}'" : "expected ',' or ']'");
        }
    }
    size_t n = p->sp - base;
    memset(v, 0, sizeof *v);
    v->type = obj ? JC_JSON_OBJ : JC_JSON_ARR;
    v->len = n;
    if (n) {
        v->items =
            cm_arena_memdup(p->arena, p->stack + base, n * sizeof(jc_json));
        if (!v->items)
            return -ENOMEM;
        if (obj) {
            v->keys =
                cm_arena_memdup(p->arena, p->skeys + base, n * sizeof(char *));
            if (!v->keys)
                return -ENOMEM;
        }
    }
    p->sp = base;
    return 0;
}

static int parse_number(jc_parser *p, jc_json *v)
{
    size_t start = p->pos;
    int real = 0;
    if (p->pos < p->len && p->s[p->pos] == '-')
        p->pos++;
    while (p->pos < p->len) {
        char c = p->s[p->pos];
        if (c >= '0' && c <= '9') {
            p->pos++;
        } else if (c == '.' || c == 'e' || c == 'E' || c == '+' || c == '-') {
            real = 1;
            p->pos++;
        } else {
            break;
        }
    }
    char tmp[64];
    size_t n = p->pos - start;
    if (n == 0 || n >= sizeof tmp)
        return fail(p, "bad number");
    memcpy(tmp, p->s + start, n);
    tmp[n] = '\0';
    char *end;
    memset(v, 0, sizeof *v);
    if (!real) {
        errno = 0;
        long long ll = strtoll(tmp, &end, 10);
        if (*end == '\0' && errno == 0) {
            v->type = JC_JSON_INT;
            v->i = ll;
            v->d = (double)ll;
            return 0;
        }
    }
    v->d = strtod(tmp, &end);
    if (*end != '\0')
        return fail(p, "bad number");
    v->type = JC_JSON_REAL;
    return 0;
}

static int match_word(jc_parser *p, const char *w)
{
    size_t n = strlen(w);
    if (p->len - p->pos < n || memcmp(p->s + p->pos, w, n) != 0)
        return 0;
    p->pos += n;
    return 1;
}

static int parse_value(jc_parser *p, jc_json *v, int depth)
{
    if (depth > MAX_DEPTH)
        return fail(p, "nested too deeply");
    skip_ws(p);
    if (p->pos >= p->len)
        return fail(p, "unexpected end of line");
    memset(v, 0, sizeof *v);
    char c = p->s[p->pos];
    switch (c) {
    case '{':
        return parse_container(p, v, depth, 1);
    case '[':
        return parse_container(p, v, depth, 0);
    case '"':
        v->type = JC_JSON_STR;
        return parse_str(p, &v->s, &v->len);
    case 't':
        if (!match_word(p, "true"))
            return fail(p, "bad literal");
        v->type = JC_JSON_BOOL;
        v->i = 1;
        return 0;
    case 'f':
        if (!match_word(p, "false"))
            return fail(p, "bad literal");
        v->type = JC_JSON_BOOL;
        return 0;
    case 'n':
        if (!match_word(p, "null"))
            return fail(p, "bad literal");
        v->type = JC_JSON_NULL;
        return 0;
    default:
        if (c == '-' || (c >= '0' && c <= '9'))
            return parse_number(p, v);
        return fail(p, "unexpected character");
    }
}

int jc__json_parse(jc_parser *p, const char *s, size_t len, jc_json *out)
{
    p->s = s;
    p->len = len;
    p->pos = 0;
    p->err = NULL;
    p->sp = 0;
    int rc = parse_value(p, out, 0);
    if (rc)
        return rc;
    skip_ws(p);
    if (p->pos != p->len)
        return fail(p, "trailing characters");
    return 0;
}

void jc__parser_free(jc_parser *p)
{
    cm_free(p->stack);
    cm_free(p->skeys);
    p->stack = NULL;
    p->skeys = NULL;
    p->cap = p->sp = 0;
}

const jc_json *jc_json_get(const jc_json *o, const char *name)
{
    if (!o || o->type != JC_JSON_OBJ)
        return NULL;
    for (size_t i = 0; i < o->len; i++)
        if (strcmp(o->keys[i], name) == 0)
            return &o->items[i];
    return NULL;
}

const jc_json *jc_json_at(const jc_json *a, size_t i)
{
    if (!a || a->type != JC_JSON_ARR || i >= a->len)
        return NULL;
    return &a->items[i];
}

int jc_json_equal(const jc_json *a, const jc_json *b)
{
    /* A missing value and null are the same to every checker. */
    int an = !a || a->type == JC_JSON_NULL, bn = !b || b->type == JC_JSON_NULL;
    if (an || bn)
        return an && bn;
    if (a->type != b->type) {
        if ((a->type == JC_JSON_INT || a->type == JC_JSON_REAL) &&
            (b->type == JC_JSON_INT || b->type == JC_JSON_REAL))
            return a->d == b->d;
        return 0;
    }
    switch (a->type) {
    case JC_JSON_BOOL:
    case JC_JSON_INT:
        return a->i == b->i;
    case JC_JSON_REAL:
        return a->d == b->d;
    case JC_JSON_STR:
        return a->len == b->len && memcmp(a->s, b->s, a->len) == 0;
    case JC_JSON_ARR:
    case JC_JSON_OBJ:
        if (a->len != b->len)
            return 0;
        for (size_t i = 0; i < a->len; i++) {
            if (a->type == JC_JSON_OBJ && strcmp(a->keys[i], b->keys[i]))
                return 0;
            if (!jc_json_equal(&a->items[i], &b->items[i]))
                return 0;
        }
        return 1;
    default:
        return 1;
    }
}
