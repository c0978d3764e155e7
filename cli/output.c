/*
 * skiffctl's printers: the three output formats etcdctl offers.
 *
 *   simple  lines of text: keys and values as they are (or hex with
 *           --hex), "OK" for put, the count for del, SUCCESS/FAILURE for
 *           txn, etc.
 *   json    the JSON an etcd user's scripts already parse: the response
 *           with snake_case field names, keys and values base64-encoded,
 *           zero fields left out (Go's omitempty on the protobuf structs),
 *           and a header with cluster_id, member_id, revision, raft_term.
 *   table   bordered tables for the commands that have one (member list,
 *           endpoint status/hashkv, snapshot status); other commands fall
 *           back to simple output, as etcdctl's table printer does.
 *
 * Sizes and durations are printed the way etcdctl's Go libraries print
 * them ("20 kB", "2.345ms") so outputs compare line by line.
 */
#include "cli_int.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

/* ---- scalars ------------------------------------------------------------- */

/* Prints bytes and a newline, as hex escapes with --hex. */
static void print_bytes(ctl *x, const uint8_t *p, size_t n)
{
    if (x->hex) {
        for (size_t i = 0; i < n; i++)
            printf("\\x%02x", p[i]);
    } else if (n) {
        fwrite(p, 1, n, stdout);
    }
    putchar('\n');
}

void out_kv_simple(ctl *x, const skiff_kv *kv, int value_only, int keys_only)
{
    if (!value_only)
        print_bytes(x, kv->key, kv->key_len);
    if (!keys_only || value_only)
        print_bytes(x, kv->value, kv->value_len);
    else
        putchar('\n');
}

void out_json_bytes(FILE *f, const void *p, size_t n)
{
    static const char tbl[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    const uint8_t *b = p;
    fputc('"', f);
    size_t i = 0;
    for (; i + 3 <= n; i += 3) {
        uint32_t v = (uint32_t)b[i] << 16 | (uint32_t)b[i + 1] << 8 | b[i + 2];
        fputc(tbl[v >> 18], f);
        fputc(tbl[(v >> 12) & 63], f);
        fputc(tbl[(v >> 6) & 63], f);
        fputc(tbl[v & 63], f);
    }
    if (n - i == 1) {
        uint32_t v = (uint32_t)b[i] << 16;
        fputc(tbl[v >> 18], f);
        fputc(tbl[(v >> 12) & 63], f);
        fputs("==", f);
    } else if (n - i == 2) {
        uint32_t v = (uint32_t)b[i] << 16 | (uint32_t)b[i + 1] << 8;
        fputc(tbl[v >> 18], f);
        fputc(tbl[(v >> 12) & 63], f);
        fputc(tbl[(v >> 6) & 63], f);
        fputc('=', f);
    }
    fputc('"', f);
}

void out_json_string(FILE *f, const char *s)
{
    fputc('"', f);
    for (const unsigned char *p = (const unsigned char *)s; p && *p; p++) {
        if (*p == '"' || *p == '\\')
            fprintf(f, "\\%c", *p);
        else if (*p < 0x20)
            fprintf(f, "\\u%04x", *p);
        else
            fputc(*p, f);
    }
    fputc('"', f);
}

void out_json_header(FILE *f, const skiff_header *h)
{
    fprintf(f,
            "\"header\":{\"cluster_id\":%" PRIu64 ",\"member_id\":%" PRIu64
            ",\"revision\":%" PRId64 ",\"raft_term\":%" PRIu64 "}",
            h->cluster_id, h->member_id, h->revision, h->raft_term);
}

void out_json_kv(FILE *f, const skiff_kv *kv)
{
    fputs("{\"key\":", f);
    out_json_bytes(f, kv->key, kv->key_len);
    if (kv->create_revision)
        fprintf(f, ",\"create_revision\":%" PRId64, kv->create_revision);
    if (kv->mod_revision)
        fprintf(f, ",\"mod_revision\":%" PRId64, kv->mod_revision);
    if (kv->version)
        fprintf(f, ",\"version\":%" PRId64, kv->version);
    if (kv->value_len) {
        fputs(",\"value\":", f);
        out_json_bytes(f, kv->value, kv->value_len);
    }
    if (kv->lease)
        fprintf(f, ",\"lease\":%" PRId64, kv->lease);
    fputc('}', f);
}

/* Appends ,"name":[kv,...] when there are any. */
static void json_kvs(FILE *f, const char *name, const skiff_kv *kvs, size_t n)
{
    if (!n)
        return;
    fprintf(f, ",\"%s\":[", name);
    for (size_t i = 0; i < n; i++) {
        if (i)
            fputc(',', f);
        out_json_kv(f, &kvs[i]);
    }
    fputc(']', f);
}

void out_human_bytes(char *buf, size_t cap, uint64_t n)
{
    static const char *units[] = {"B", "kB", "MB", "GB", "TB", "PB", "EB"};
    if (n < 10) {
        snprintf(buf, cap, "%" PRIu64 " B", n);
        return;
    }
    double v = (double)n;
    int u = 0;
    while (v >= 1000 && u < 6) {
        v /= 1000;
        u++;
    }
    /* humanize rounds to one decimal below 10, else to a whole number. */
    if (v < 10)
        snprintf(buf, cap, "%.1f %s", v, units[u]);
    else
        snprintf(buf, cap, "%.0f %s", v, units[u]);
}

/* Trims trailing zeros of a %f rendering ("2.500000" -> "2.5"). */
static void trim_zeros(char *s)
{
    char *dot = strchr(s, '.');
    if (!dot)
        return;
    char *e = s + strlen(s) - 1;
    while (e > dot && *e == '0')
        *e-- = 0;
    if (e == dot)
        *e = 0;
}

void out_duration(char *buf, size_t cap, double s)
{
    char num[64];
    const char *unit;
    if (s < 1e-6) {
        snprintf(num, sizeof num, "%.0f", s * 1e9);
        unit = "ns";
    } else if (s < 1e-3) {
        snprintf(num, sizeof num, "%.3f", s * 1e6);
        unit = "µs";
    } else if (s < 1) {
        snprintf(num, sizeof num, "%.6f", s * 1e3);
        unit = "ms";
    } else {
        snprintf(num, sizeof num, "%.9f", s);
        unit = "s";
    }
    trim_zeros(num);
    snprintf(buf, cap, "%s%s", num, unit);
}

/* ---- responses ----------------------------------------------------------- */

/* RangeResponse as JSON. */
static void json_get_body(FILE *f, const skiff_result *r)
{
    fputc('{', f);
    out_json_header(f, &r->header);
    json_kvs(f, "kvs", r->kvs, r->n_kvs);
    if (r->more)
        fputs(",\"more\":true", f);
    if (r->count)
        fprintf(f, ",\"count\":%" PRId64, r->count);
    fputc('}', f);
}

/* PutResponse as JSON. */
static void json_put_body(FILE *f, const skiff_result *r)
{
    fputc('{', f);
    out_json_header(f, &r->header);
    if (r->n_kvs) {
        fputs(",\"prev_kv\":", f);
        out_json_kv(f, &r->kvs[0]);
    }
    fputc('}', f);
}

/* DeleteRangeResponse as JSON. */
static void json_del_body(FILE *f, const skiff_result *r)
{
    fputc('{', f);
    out_json_header(f, &r->header);
    if (r->count)
        fprintf(f, ",\"deleted\":%" PRId64, r->count);
    json_kvs(f, "prev_kvs", r->kvs, r->n_kvs);
    fputc('}', f);
}

/* TxnResponse as JSON, each op's response wrapped as etcd's oneof. */
static void json_txn_body(FILE *f, const skiff_result *r)
{
    fputc('{', f);
    out_json_header(f, &r->header);
    if (r->succeeded)
        fputs(",\"succeeded\":true", f);
    if (r->n_responses) {
        fputs(",\"responses\":[", f);
        for (size_t i = 0; i < r->n_responses; i++) {
            const skiff_result *o = &r->responses[i];
            if (i)
                fputc(',', f);
            fputs("{\"Response\":{", f);
            switch (o->type) {
            case SKIFF_OP_RANGE:
                fputs("\"response_range\":", f);
                json_get_body(f, o);
                break;
            case SKIFF_OP_PUT:
                fputs("\"response_put\":", f);
                json_put_body(f, o);
                break;
            case SKIFF_OP_DELETE:
                fputs("\"response_delete_range\":", f);
                json_del_body(f, o);
                break;
            case SKIFF_OP_TXN:
                fputs("\"response_txn\":", f);
                json_txn_body(f, o);
                break;
            default:
                fputs("\"unknown\":{}", f);
                break;
            }
            fputs("}}", f);
        }
        fputc(']', f);
    }
    fputc('}', f);
}

void out_get(ctl *x, const skiff_result *r, int value_only, int keys_only,
             int count_only)
{
    if (x->out == CTL_OUT_JSON) {
        json_get_body(stdout, r);
        putchar('\n');
        return;
    }
    if (count_only) {
        printf("%" PRId64 "\n", r->count);
        return;
    }
    for (size_t i = 0; i < r->n_kvs; i++)
        out_kv_simple(x, &r->kvs[i], value_only, keys_only);
}

void out_put(ctl *x, const skiff_result *r)
{
    if (x->out == CTL_OUT_JSON) {
        json_put_body(stdout, r);
        putchar('\n');
        return;
    }
    printf("OK\n");
    if (r->n_kvs)
        out_kv_simple(x, &r->kvs[0], 0, 0);
}

void out_del(ctl *x, const skiff_result *r)
{
    if (x->out == CTL_OUT_JSON) {
        json_del_body(stdout, r);
        putchar('\n');
        return;
    }
    printf("%" PRId64 "\n", r->count);
    for (size_t i = 0; i < r->n_kvs; i++)
        out_kv_simple(x, &r->kvs[i], 0, 0);
}

void out_txn(ctl *x, const skiff_result *r)
{
    if (x->out == CTL_OUT_JSON) {
        json_txn_body(stdout, r);
        putchar('\n');
        return;
    }
    printf("%s\n", r->succeeded ? "SUCCESS" : "FAILURE");
    for (size_t i = 0; i < r->n_responses; i++) {
        const skiff_result *o = &r->responses[i];
        putchar('\n');
        switch (o->type) {
        case SKIFF_OP_RANGE:
            out_get(x, o, 0, 0, 0);
            break;
        case SKIFF_OP_PUT:
            out_put(x, o);
            break;
        case SKIFF_OP_DELETE:
            out_del(x, o);
            break;
        case SKIFF_OP_TXN:
            out_txn(x, o);
            break;
        default:
            printf("unexpected response\n");
            break;
        }
    }
}

/* ---- members ------------------------------------------------------------- */

void out_join(char *buf, size_t cap, const char *const *v, size_t n)
{
    size_t off = 0;
    buf[0] = 0;
    for (size_t i = 0; i < n && off < cap; i++)
        off +=
            (size_t)snprintf(buf + off, cap - off, "%s%s", i ? "," : "", v[i]);
}

/* ,"name":["a","b"] */
static void json_strings(FILE *f, const char *name, const char *const *v,
                         size_t n)
{
    fprintf(f, ",\"%s\":[", name);
    for (size_t i = 0; i < n; i++) {
        if (i)
            fputc(',', f);
        out_json_string(f, v[i]);
    }
    fputc(']', f);
}

void out_json_member(FILE *f, const skiff_member *m)
{
    fprintf(f, "{\"ID\":%" PRIu64 ",\"name\":", m->id);
    out_json_string(f, m->name ? m->name : "");
    json_strings(f, "peerURLs", m->peer_urls, m->n_peer_urls);
    json_strings(f, "clientURLs", m->client_urls, m->n_client_urls);
    if (m->is_learner)
        fputs(",\"isLearner\":true", f);
    fputc('}', f);
}

void out_json_members(FILE *f, const skiff_member *m, size_t n)
{
    fputc('[', f);
    for (size_t i = 0; i < n; i++) {
        if (i)
            fputc(',', f);
        out_json_member(f, &m[i]);
    }
    fputc(']', f);
}

/* ---- tables -------------------------------------------------------------- */

void out_table_init(out_table *t, const char *const *head, size_t ncols)
{
    memset(t, 0, sizeof *t);
    t->head = head;
    t->ncols = ncols;
}

void out_table_row(out_table *t, const char *const *cells)
{
    if (t->nrows == t->cap) {
        size_t nc = t->cap ? t->cap * 2 : 8;
        char **n = realloc(t->cells, nc * t->ncols * sizeof *n);
        if (!n)
            return;
        t->cells = n;
        t->cap = nc;
    }
    for (size_t i = 0; i < t->ncols; i++)
        t->cells[t->nrows * t->ncols + i] = strdup(cells[i] ? cells[i] : "");
    t->nrows++;
}

/* A +----+----+ line. */
static void rule(FILE *f, const size_t *w, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        fputc('+', f);
        for (size_t j = 0; j < w[i] + 2; j++)
            fputc('-', f);
    }
    fputs("+\n", f);
}

void out_table_print(out_table *t, FILE *f)
{
    size_t w[16] = {0};
    size_t n = t->ncols < 16 ? t->ncols : 16;
    for (size_t i = 0; i < n; i++) {
        w[i] = strlen(t->head[i]);
        for (size_t r = 0; r < t->nrows; r++) {
            size_t l = strlen(t->cells[r * t->ncols + i]);
            if (l > w[i])
                w[i] = l;
        }
    }
    rule(f, w, n);
    for (size_t i = 0; i < n; i++) {
        /* Headers are centred, as tablewriter does. */
        size_t l = strlen(t->head[i]), pad = w[i] - l;
        fprintf(f, "| %*s%s%*s ", (int)(pad / 2), "", t->head[i],
                (int)(pad - pad / 2), "");
    }
    fputs("|\n", f);
    rule(f, w, n);
    for (size_t r = 0; r < t->nrows; r++) {
        for (size_t i = 0; i < n; i++)
            fprintf(f, "| %*s ", (int)w[i], t->cells[r * t->ncols + i]);
        fputs("|\n", f);
    }
    rule(f, w, n);
    for (size_t i = 0; i < t->nrows * t->ncols; i++)
        free(t->cells[i]);
    free(t->cells);
    t->cells = NULL;
    t->nrows = t->cap = 0;
}
