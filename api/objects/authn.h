/*
 * api/objects/authn.h -- who is asking: identities from client
 * certificates and from a static bearer token file, as Kubernetes'
 * x509 and token-file authenticators define them (library `rbac`,
 * prefix authn_).
 *
 * A certificate's subject CN is the user name and each O value a group
 * ("CN=system:node:n1, O=system:nodes").  A token file is Kubernetes'
 * static token file: CSV lines `token,user,uid,"group1,group2"`.  Every
 * authenticated user also gets the group "system:authenticated", as the
 * Kubernetes API server adds it.
 *
 * authn_user is a plain value (fixed arrays, no pointers): copy it freely.
 * The token table is immutable after loading, so lookups may run on any
 * thread at once; loading and destroying belong to one thread.
 */
#ifndef SKIFF_AUTHN_H
#define SKIFF_AUTHN_H

#include <stdbool.h>
#include <stddef.h>

/* OpenSSL's certificate type, declared here so that including this header
 * does not pull in OpenSSL's (a repeated identical typedef is valid C11). */
typedef struct x509_st X509;

/* ---- errors: the auth block, -5600..-5619 (shared with rbac.h) ----------- */
#define AUTHN_ERRNO_MAP(XX)                                                    \
    XX(AUTHN_EFORMAT, -5600, "malformed token file")                           \
    XX(AUTHN_ENOIDENTITY, -5601, "credential names no user")                   \
    XX(AUTHN_EUNKNOWN_TOKEN, -5602, "bearer token is not known")               \
    XX(RBAC_EDENIED, -5603, "permission denied")                               \
    XX(RBAC_EFORMAT, -5604, "malformed raw key-value permission file")

enum authn_errno {
#define XX(name, val, msg) name = (val),
    AUTHN_ERRNO_MAP(XX)
#undef XX
};

#define AUTHN_ERR_LO (-5619)
#define AUTHN_ERR_HI (-5600)

/* Message and symbolic name for the codes above; "unknown error" and
 * "EUNKNOWN" for others.  Static strings. */
const char *authn_strerror(int code);
const char *authn_err_name(int code);
/* Registers the block with cm_err_register.  Idempotent; call at startup
 * before threads start. */
void authn_err_register(void);

/* ---- identities ---------------------------------------------------------- */

#define AUTHN_NAME_MAX 256 /* bytes of a name, uid or group, with the NUL */
#define AUTHN_GROUPS_MAX 16

/* An authenticated user.  Names are UTF-8 without NUL bytes. */
typedef struct authn_user {
    char name[AUTHN_NAME_MAX];
    char uid[AUTHN_NAME_MAX]; /* "" for certificates */
    size_t n_groups;
    char groups[AUTHN_GROUPS_MAX][AUTHN_NAME_MAX];
} authn_user;

#define AUTHN_GROUP_AUTHENTICATED "system:authenticated"
#define AUTHN_GROUP_MASTERS "system:masters" /* administrators */
#define AUTHN_GROUP_NODES "system:nodes"
#define AUTHN_NODE_PREFIX "system:node:"

/* Fills u from a name and groups (uid ""), adding system:authenticated.
 * For tests and for the server's own internal identity.
 * Returns 0, AUTHN_ENOIDENTITY (empty name) or CM_ETOOBIG (a string over
 * AUTHN_NAME_MAX-1 bytes, or over AUTHN_GROUPS_MAX groups). */
int authn_user_init(authn_user *u, const char *name, const char *const *groups,
                    size_t n_groups);

/* True when u is in group g. */
bool authn_user_in_group(const authn_user *u, const char *g);

/* The identity of a verified client certificate: its subject's single CN
 * is the name, its O values (in order) the groups.  The caller verifies the
 * chain first (the TLS handshake does); this only reads the subject.
 *   cert: borrowed for the call.
 * Returns 0, AUTHN_ENOIDENTITY (no CN, more than one CN, an empty CN, or a
 * CN or O that is not valid UTF-8 or holds a NUL byte; also when OpenSSL
 * cannot convert a value, which includes running out of memory) or
 * CM_ETOOBIG.  u is written only on success.  OpenSSL allocates with its
 * own allocator, not cm_malloc. */
int authn_from_cert(X509 *cert, authn_user *u);

/* The same from a printed subject, in any of openssl's forms:
 *   "subject=CN = admin, O = system:masters"    (openssl x509 -subject)
 *   "CN=admin,O=system:masters"                 (-nameopt RFC2253)
 *   "/O=system:masters/CN=admin"                (-nameopt compat)
 * Backslash escapes and double-quoted values are understood; attributes
 * other than CN and O are ignored.  Same errors as authn_from_cert, plus
 * AUTHN_ENOIDENTITY for a line that does not parse. */
int authn_from_subject(const char *subject_line, authn_user *u);

/* ---- bearer tokens ------------------------------------------------------- */

typedef struct authn_tokens authn_tokens;

#define AUTHN_ERRMSG_MAX 512

/* Loads a Kubernetes static token file.  Each line is a CSV record
 *   token,user,uid[,"group1,group2,..."]
 * (fields may be double-quoted, with "" for a quote; spaces around groups
 * are trimmed).  Blank lines and lines starting with '#' are skipped.
 * Unlike Kubernetes, which skips bad records with a warning, any malformed
 * record fails the whole load, so a typo never silently drops a user:
 * fewer than 3 fields, an empty token or user, an unterminated quote, a
 * duplicate token, a NUL byte, invalid UTF-8, a user, uid or group over
 * AUTHN_NAME_MAX-1 bytes, a token over 1023 bytes, more than 8 fields, or
 * more than AUTHN_GROUPS_MAX-1 groups.
 *   out:    on success, the table; free with authn_tokens_destroy.
 *   errmsg: on failure, "path:line: reason" (may be NULL).
 * Returns 0, AUTHN_EFORMAT, -errno from opening or reading, or -ENOMEM. */
int authn_tokens_load(const char *path, authn_tokens **out, char *errmsg,
                      size_t errcap);

/* The same from memory; `name` stands in for the path in messages.
 * buf is borrowed for the call and need not end in NUL. */
int authn_tokens_parse(const char *buf, size_t len, const char *name,
                       authn_tokens **out, char *errmsg, size_t errcap);

/* Number of tokens held. */
size_t authn_tokens_count(const authn_tokens *t);

/* The user a bearer token stands for.  Compares in time independent of
 * where tokens differ, so timing does not reveal a token's prefix.
 * Returns 0 (u filled, with system:authenticated added) or
 * AUTHN_EUNKNOWN_TOKEN (also for an empty token). */
int authn_token_lookup(const authn_tokens *t, const char *token, authn_user *u);

void authn_tokens_destroy(authn_tokens *t); /* NULL ok */

#endif
