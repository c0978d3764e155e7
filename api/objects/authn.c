/*
 * api/objects/authn.c -- identities from certificates, printed subjects and
 * a static token file.
 *
 * Identities are small fixed-size values (authn_user) so that a connection
 * can keep its user without owning heap memory and decisions never fail
 * for lack of memory.  Every path that makes one goes through build_user(),
 * which enforces the limits, rejects NUL bytes and invalid UTF-8 (a name
 * with a hidden NUL could look like "admin" to one check and not to
 * another) and adds system:authenticated as the Kubernetes API server does.
 *
 * The token file follows Kubernetes' static token file (a CSV record a
 * line).  We parse one record per line ourselves rather than a general CSV
 * reader: quoted fields spanning lines are not something a token file
 * needs, and refusing them keeps every error pointing at one line.  Any
 * malformed record fails the load, where Kubernetes would log and skip it,
 * because a skipped line silently locks a component out (or a duplicate
 * silently changes who a token is).
 */
#include "authn.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include <openssl/asn1.h>
#include <openssl/crypto.h>
#include <openssl/objects.h>
#include <openssl/x509.h>

#include "cm.h"
#include "rbac_int.h"

#define TOKEN_FILE_MAX                                                         \
    (16u << 20) /* a token file is small; refuse a huge one */

typedef struct token_entry {
    char *token;
    size_t len;
    authn_user user;
} token_entry;

struct authn_tokens {
    token_entry *v;
    size_t n, cap;
};

/* ---- errors -------------------------------------------------------------- */

const char *authn_strerror(int code)
{
    switch (code) {
#define XX(name, val, msg)                                                     \
    case name:                                                                 \
        return msg;
        AUTHN_ERRNO_MAP(XX)
#undef XX
    }
    return "unknown error";
}

const char *authn_err_name(int code)
{
    switch (code) {
#define XX(name, val, msg)                                                     \
    case name:                                                                 \
        return #name;
        AUTHN_ERRNO_MAP(XX)
#undef XX
    }
    return "EUNKNOWN";
}

static const char *lookup_msg(int code)
{
    const char *m = authn_strerror(code);
    return strcmp(m, "unknown error") ? m : NULL;
}

static const char *lookup_name(int code)
{
    const char *m = authn_err_name(code);
    return strcmp(m, "EUNKNOWN") ? m : NULL;
}

void authn_err_register(void)
{
    cm_err_register(AUTHN_ERR_LO, AUTHN_ERR_HI, lookup_msg, lookup_name);
}

/* ---- building users ------------------------------------------------------ */

/* Strict UTF-8: no overlongs, no surrogates, nothing over U+10FFFF. */
static bool utf8_valid(const unsigned char *s, size_t n)
{
    size_t i = 0;
    while (i < n) {
        unsigned c = s[i];
        size_t k;
        unsigned min;
        if (c < 0x80) {
            if (!c)
                return false;
            i++;
            continue;
        } else if ((c & 0xe0) == 0xc0) {
            k = 1, min = 0x80, c &= 0x1f;
        } else if ((c & 0xf0) == 0xe0) {
            k = 2, min = 0x800, c &= 0x0f;
        } else if ((c & 0xf8) == 0xf0) {
            k = 3, min = 0x10000, c &= 0x07;
        } else {
            return false;
        }
        if (i + k >= n)
            return false;
        for (size_t j = 1; j <= k; j++) {
            if ((s[i + j] & 0xc0) != 0x80)
                return false;
            c = (c << 6) | (s[i + j] & 0x3f);
        }
        if (c < min || c > 0x10ffff || (c >= 0xd800 && c <= 0xdfff))
            return false;
        i += k + 1;
    }
    return true;
}

static int set_str(char *dst, const char *src, size_t n)
{
    if (n >= AUTHN_NAME_MAX)
        return CM_ETOOBIG;
    if (!utf8_valid((const unsigned char *)src, n))
        return AUTHN_ENOIDENTITY;
    memcpy(dst, src, n);
    dst[n] = '\0';
    return 0;
}

static int add_group(authn_user *u, const char *g, size_t n)
{
    if (!n)
        return 0; /* "a,,b" in a token file: nothing to add */
    for (size_t i = 0; i < u->n_groups; i++)
        if (strlen(u->groups[i]) == n && !memcmp(u->groups[i], g, n))
            return 0;
    if (u->n_groups == AUTHN_GROUPS_MAX)
        return CM_ETOOBIG;
    int rc = set_str(u->groups[u->n_groups], g, n);
    if (rc)
        return rc;
    u->n_groups++;
    return 0;
}

static int finish_user(authn_user *u)
{
    if (!u->name[0])
        return AUTHN_ENOIDENTITY;
    return add_group(u, AUTHN_GROUP_AUTHENTICATED,
                     strlen(AUTHN_GROUP_AUTHENTICATED));
}

int authn_user_init(authn_user *u, const char *name, const char *const *groups,
                    size_t n_groups)
{
    authn_user t;
    memset(&t, 0, sizeof t);
    int rc = set_str(t.name, name ? name : "", name ? strlen(name) : 0);
    for (size_t i = 0; !rc && i < n_groups; i++)
        rc = add_group(&t, groups[i], strlen(groups[i]));
    if (!rc)
        rc = finish_user(&t);
    if (!rc)
        *u = t;
    return rc;
}

bool authn_user_in_group(const authn_user *u, const char *g)
{
    for (size_t i = 0; i < u->n_groups; i++)
        if (!strcmp(u->groups[i], g))
            return true;
    return false;
}

/* ---- certificates -------------------------------------------------------- */

int authn_from_cert(X509 *cert, authn_user *u)
{
    authn_user t;
    memset(&t, 0, sizeof t);
    X509_NAME *nm = cert ? X509_get_subject_name(cert) : NULL;
    if (!nm)
        return AUTHN_ENOIDENTITY;
    int n_cn = 0, rc = 0;
    for (int i = 0; !rc && i < X509_NAME_entry_count(nm); i++) {
        X509_NAME_ENTRY *e = X509_NAME_get_entry(nm, i);
        int nid = OBJ_obj2nid(X509_NAME_ENTRY_get_object(e));
        if (nid != NID_commonName && nid != NID_organizationName)
            continue;
        unsigned char *s = NULL;
        int len = ASN1_STRING_to_UTF8(&s, X509_NAME_ENTRY_get_data(e));
        if (len < 0) /* a bad encoding (or no memory: OpenSSL does not say) */
            return AUTHN_ENOIDENTITY;
        if (nid == NID_commonName) {
            /* Two CNs would make the user depend on which one a reader
             * picks; refuse rather than guess. */
            rc = ++n_cn > 1 || len == 0
                     ? AUTHN_ENOIDENTITY
                     : set_str(t.name, (const char *)s, (size_t)len);
        } else {
            rc = add_group(&t, (const char *)s, (size_t)len);
        }
        OPENSSL_free(s);
    }
    if (!rc)
        rc = finish_user(&t);
    if (!rc)
        *u = t;
    return rc;
}

/* ---- printed subjects ---------------------------------------------------- */

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

/* Reads one attribute value starting at *pp up to an unescaped separator
 * (one of seps, outside quotes) into out (unescaped, cap bytes).  Trailing
 * spaces of an unquoted value are dropped, as openssl pads " = " and ", ".
 * Returns the value's length, -1 when it does not parse or -2 when it does
 * not fit. */
static long read_value(const char **pp, const char *seps, char *out, size_t cap)
{
    const char *p = *pp;
    size_t n = 0,
           keep = 0; /* keep: length up to the last escaped/quoted byte */
    bool quoted = false;
    while (*p == ' ')
        p++;
    while (*p && (quoted || !strchr(seps, *p))) {
        char c = *p++;
        bool literal = quoted;
        if (c == '"') {
            quoted = !quoted;
            keep = n;
            continue;
        }
        if (c == '\\') {
            if (!*p)
                return -1;
            int h = hexval(p[0]), l = p[0] ? hexval(p[1]) : -1;
            if (h >= 0 && l >= 0) {
                c = (char)(h * 16 + l);
                p += 2;
            } else {
                c = *p++;
            }
            literal = true;
        }
        if (n + 1 >= cap)
            return -2;
        out[n++] = c;
        if (literal || c != ' ')
            keep = n;
    }
    if (quoted)
        return -1;
    *pp = p;
    out[keep] = '\0';
    return (long)keep;
}

int authn_from_subject(const char *line, authn_user *u)
{
    authn_user t;
    memset(&t, 0, sizeof t);
    if (!line)
        return AUTHN_ENOIDENTITY;
    const char *p = line;
    while (*p == ' ')
        p++;
    if (!strncmp(p, "subject", 7) && (p[7] == '=' || p[7] == ':'))
        p += 8;
    while (*p == ' ')
        p++;
    /* "/O=x/CN=y" is openssl's old form; otherwise RDNs are separated by
     * ',' and multi-valued RDNs by '+'. */
    const char *seps = ",+";
    if (*p == '/') {
        seps = "/+";
        p++;
    }
    int n_cn = 0, rc = 0;
    char val[AUTHN_NAME_MAX + 1];
    while (!rc && *p) {
        while (*p == ' ')
            p++;
        const char *k = p;
        while (*p && *p != '=' && *p != ' ' && !strchr(seps, *p))
            p++;
        size_t klen = (size_t)(p - k);
        while (*p == ' ')
            p++;
        if (*p != '=' || !klen)
            return AUTHN_ENOIDENTITY;
        p++;
        long vlen = read_value(&p, seps, val, sizeof val);
        if (vlen < 0)
            return vlen == -1 ? AUTHN_ENOIDENTITY : CM_ETOOBIG;
        if ((size_t)vlen != strlen(val))
            return AUTHN_ENOIDENTITY; /* an escaped NUL byte */
        if (klen == 2 && !strncmp(k, "CN", 2)) {
            rc = ++n_cn > 1 || !vlen ? AUTHN_ENOIDENTITY
                                     : set_str(t.name, val, (size_t)vlen);
        } else if (klen == 1 && k[0] == 'O') {
            rc = add_group(&t, val, (size_t)vlen);
        }
        if (*p)
            p++; /* the separator */
    }
    if (!rc)
        rc = finish_user(&t);
    if (!rc)
        *u = t;
    return rc;
}

/* ---- token file ---------------------------------------------------------- */

#define FIELDS_MAX 8

/* Splits one CSV record (no newline) into fields written NUL-separated
 * into scratch (len+1 bytes).  Returns the number of fields or -1 with
 * *why set. */
static int split_record(const char *s, size_t len, char *scratch, char **fields,
                        const char **why)
{
    size_t i = 0, o = 0;
    int nf = 0;
    for (;;) {
        if (nf == FIELDS_MAX) {
            *why = "too many fields";
            return -1;
        }
        fields[nf++] = scratch + o;
        if (i < len && s[i] == '"') {
            i++;
            for (;;) {
                if (i >= len) {
                    *why = "unterminated quoted field";
                    return -1;
                }
                if (s[i] == '"') {
                    if (i + 1 < len && s[i + 1] == '"') {
                        scratch[o++] = '"';
                        i += 2;
                        continue;
                    }
                    i++;
                    break;
                }
                scratch[o++] = s[i++];
            }
            if (i < len && s[i] != ',') {
                *why = "extraneous text after a quoted field";
                return -1;
            }
        } else {
            while (i < len && s[i] != ',') {
                if (s[i] == '"') {
                    *why = "bare \" in an unquoted field";
                    return -1;
                }
                scratch[o++] = s[i++];
            }
        }
        scratch[o++] = '\0';
        if (i >= len)
            return nf;
        i++; /* the comma */
    }
}

static void trim(const char **s, size_t *n)
{
    while (*n && (**s == ' ' || **s == '\t'))
        (*s)++, (*n)--;
    while (*n && ((*s)[*n - 1] == ' ' || (*s)[*n - 1] == '\t'))
        (*n)--;
}

/* Fills e's user from a record's fields.  Returns 0 or a reason. */
static const char *record_user(char **f, int nf, authn_user *u)
{
    memset(u, 0, sizeof *u);
    if (nf < 3)
        return "want token,user,uid[,\"groups\"]";
    if (!f[0][0])
        return "empty token";
    if (!f[1][0])
        return "empty user name";
    if (set_str(u->name, f[1], strlen(f[1])) ||
        set_str(u->uid, f[2], strlen(f[2])))
        return "user or uid too long or not UTF-8";
    /* Extra fields after the groups are ignored, as Kubernetes does. */
    const char *g = nf > 3 ? f[3] : "";
    while (*g) {
        const char *c = strchr(g, ',');
        size_t n = c ? (size_t)(c - g) : strlen(g);
        const char *s = g;
        size_t m = n;
        trim(&s, &m);
        int rc = add_group(u, s, m);
        if (rc == CM_ETOOBIG)
            return "too many groups, or a group name too long";
        if (rc)
            return "group name not UTF-8";
        g += n + (c ? 1 : 0);
    }
    if (finish_user(u))
        return "too many groups";
    return NULL;
}

static int tokens_add(authn_tokens *t, const char *tok, const authn_user *u)
{
    if (t->n == t->cap) {
        size_t cap = t->cap ? t->cap * 2 : 8;
        token_entry *v = cm_realloc(t->v, cap * sizeof *v);
        if (!v)
            return -ENOMEM;
        t->v = v;
        t->cap = cap;
    }
    char *copy = cm_strdup(tok);
    if (!copy)
        return -ENOMEM;
    t->v[t->n].token = copy;
    t->v[t->n].len = strlen(copy);
    t->v[t->n].user = *u;
    t->n++;
    return 0;
}

static int parse_line(authn_tokens *t, const char *s, size_t len,
                      const char **why)
{
    char *scratch = cm_malloc(len + FIELDS_MAX + 1);
    if (!scratch)
        return -ENOMEM;
    char *f[FIELDS_MAX];
    int rc = 0;
    int nf = split_record(s, len, scratch, f, why);
    authn_user *u = cm_malloc(sizeof *u);
    if (!u) {
        rc = -ENOMEM;
        goto out;
    }
    if (nf < 0 || (*why = record_user(f, nf, u)) != NULL) {
        rc = AUTHN_EFORMAT;
        goto out;
    }
    if (strlen(f[0]) >= AUTHN_NAME_MAX * 4) {
        *why = "token too long";
        rc = AUTHN_EFORMAT;
        goto out;
    }
    for (size_t i = 0; i < t->n; i++)
        if (!strcmp(t->v[i].token, f[0])) {
            *why = "duplicate token";
            rc = AUTHN_EFORMAT;
            goto out;
        }
    rc = tokens_add(t, f[0], u);
out:
    cm_free(u);
    cm_free(scratch);
    return rc;
}

int authn_tokens_parse(const char *buf, size_t len, const char *name,
                       authn_tokens **out, char *errmsg, size_t errcap)
{
    authn_tokens *t = cm_calloc(1, sizeof *t);
    if (!t) {
        if (errmsg && errcap)
            snprintf(errmsg, errcap, "%s: out of memory",
                     name ? name : "tokens");
        return -ENOMEM;
    }
    int rc = 0;
    size_t lineno = 0;
    const char *why = NULL;
    for (size_t i = 0; i < len;) {
        const char *s = buf + i;
        const char *nl = memchr(s, '\n', len - i);
        size_t n = nl ? (size_t)(nl - s) : len - i;
        i += n + (nl ? 1 : 0);
        lineno++;
        if (n && s[n - 1] == '\r')
            n--;
        if (memchr(s, '\0', n)) {
            why = "NUL byte";
            rc = AUTHN_EFORMAT;
            break;
        }
        size_t j = 0;
        while (j < n && (s[j] == ' ' || s[j] == '\t'))
            j++;
        if (j == n || s[j] == '#')
            continue;
        rc = parse_line(t, s, n, &why);
        if (rc)
            break;
    }
    if (rc) {
        if (errmsg && errcap)
            snprintf(errmsg, errcap, "%s:%zu: %s", name ? name : "tokens",
                     lineno, rc == -ENOMEM ? "out of memory" : why);
        authn_tokens_destroy(t);
        return rc;
    }
    *out = t;
    return 0;
}

int rbac__read_file(const char *path, size_t max, int too_big, cm_buf *out,
                    char *errmsg, size_t errcap)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        int e = errno;
        if (errmsg && errcap)
            snprintf(errmsg, errcap, "%s: %s", path, strerror(e));
        return -e;
    }
    char chunk[4096];
    size_t n;
    int rc = 0;
    while ((n = fread(chunk, 1, sizeof chunk, f)) > 0) {
        if (out->len + n > max) {
            rc = too_big;
            if (errmsg && errcap)
                snprintf(errmsg, errcap, "%s: larger than %zu bytes", path,
                         max);
            break;
        }
        if ((rc = cm_buf_append(out, chunk, n)) != 0)
            break;
    }
    if (!rc && ferror(f)) {
        rc = -EIO;
        if (errmsg && errcap)
            snprintf(errmsg, errcap, "%s: read error", path);
    }
    fclose(f);
    return rc;
}

int authn_tokens_load(const char *path, authn_tokens **out, char *errmsg,
                      size_t errcap)
{
    cm_buf b = {0};
    int rc = rbac__read_file(path, TOKEN_FILE_MAX, AUTHN_EFORMAT, &b, errmsg,
                             errcap);
    if (!rc)
        rc = authn_tokens_parse((const char *)b.base, b.len, path, out,
                                errmsg, errcap);
    cm_buf_free(&b);
    return rc;
}

size_t authn_tokens_count(const authn_tokens *t)
{
    return t ? t->n : 0;
}

/* Equal in time that depends on the lengths only, not on where a and b
 * first differ. */
static bool ct_equal(const char *a, size_t alen, const char *b, size_t blen)
{
    unsigned char d = alen != blen;
    size_t n = alen < blen ? alen : blen;
    for (size_t i = 0; i < n; i++)
        d |= (unsigned char)(a[i] ^ b[i]);
    return d == 0;
}

int authn_token_lookup(const authn_tokens *t, const char *token, authn_user *u)
{
    if (!t || !token || !token[0])
        return AUTHN_EUNKNOWN_TOKEN;
    size_t len = strlen(token);
    const token_entry *hit = NULL;
    /* No early exit: every entry is compared. */
    for (size_t i = 0; i < t->n; i++)
        if (ct_equal(t->v[i].token, t->v[i].len, token, len))
            hit = &t->v[i];
    if (!hit)
        return AUTHN_EUNKNOWN_TOKEN;
    *u = hit->user;
    return 0;
}

void authn_tokens_destroy(authn_tokens *t)
{
    if (!t)
        return;
    for (size_t i = 0; i < t->n; i++) {
        OPENSSL_cleanse(t->v[i].token, t->v[i].len);
        cm_free(t->v[i].token);
    }
    cm_free(t->v);
    cm_free(t);
}
