/*
 * The object commands' common ground: kind names as kubectl accepts them,
 * reading and listing /registry/ keys, admitted compare-and-swap writes,
 * the read-modify-write loop every small edit (label, scale, cordon, ...)
 * uses, label selectors, loading manifests and a few formatters.
 *
 * Writes are optimistic, as the API server's are: read the object with its
 * mod_revision, change it, admit it (obj_admit, the function skiffd will
 * run), then one txn "mod_revision still equal -> put" (or "create_revision
 * == 0 -> put" for creates).  A lost compare means someone else wrote in
 * between: read again and redo the change, up to OCTL_RETRIES times.
 */
#include "obj_int.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* kubectl api-resources order (alphabetical by resource within a group,
 * core group first). */
static const struct {
    const char *kind, *singular, *shorts;
} names[] = {
    {"Event", "event", "ev"},
    {"Namespace", "namespace", "ns"},
    {"Node", "node", "no"},
    {"PersistentVolumeClaim", "persistentvolumeclaim", "pvc"},
    {"Pod", "pod", "po"},
    {"DaemonSet", "daemonset", "ds"},
    {"Deployment", "deployment", "deploy"},
    {"ReplicaSet", "replicaset", "rs"},
    {"StatefulSet", "statefulset", "sts"},
    {"HorizontalPodAutoscaler", "horizontalpodautoscaler", "hpa"},
    {"Lease", "lease", ""},
    {"ClusterRoleBinding", "clusterrolebinding", ""},
    {"ClusterRole", "clusterrole", ""},
    {"RoleBinding", "rolebinding", ""},
    {"Role", "role", ""},
};
#define N_NAMES (sizeof names / sizeof *names)

static octl_kind table[N_NAMES];

static void table_init(void)
{
    if (table[0].k)
        return;
    for (size_t i = 0; i < N_NAMES; i++) {
        table[i].k = obj_kind_find(names[i].kind);
        table[i].singular = names[i].singular;
        table[i].shorts = names[i].shorts;
    }
}

int octl_errorf(const char *fmt, ...)
{
    va_list ap;
    fflush(stdout);
    fputs("error: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    return CTL_EXIT_ERROR;
}

/* ---- kinds --------------------------------------------------------------- */

const octl_kind *octl_kinds(size_t *n)
{
    table_init();
    *n = N_NAMES;
    return table;
}

static const char *group_of(const obj_kind *k, size_t *len)
{
    const char *slash = strchr(k->api_version, '/');
    *len = slash ? (size_t)(slash - k->api_version) : 0;
    return k->api_version;
}

static bool in_list(const char *list, const char *w, size_t wn)
{
    for (const char *p = list; *p;) {
        const char *e = strchr(p, ',');
        size_t n = e ? (size_t)(e - p) : strlen(p);
        if (n == wn && !strncasecmp(p, w, n))
            return true;
        p += n + (e ? 1 : 0);
    }
    return false;
}

const octl_kind *octl_kind_lookup(const char *word)
{
    table_init();
    size_t wn = strlen(word);
    const char *dot = strchr(word, '.');
    for (size_t i = 0; i < N_NAMES; i++) {
        const octl_kind *k = &table[i];
        size_t n = wn;
        if (dot) {
            /* "deployments.apps": the group must be the kind's. */
            size_t gl;
            const char *g = group_of(k->k, &gl);
            if (strlen(dot + 1) != gl || strncmp(dot + 1, g, gl))
                continue;
            n = (size_t)(dot - word);
        }
        if ((strlen(k->k->resource) == n &&
             !strncasecmp(k->k->resource, word, n)) ||
            (strlen(k->singular) == n && !strncasecmp(k->singular, word, n)) ||
            in_list(k->shorts, word, n))
            return k;
    }
    return NULL;
}

const octl_kind *octl_kind_of(const obj_kind *k)
{
    table_init();
    for (size_t i = 0; i < N_NAMES; i++)
        if (table[i].k == k)
            return &table[i];
    return NULL;
}

const char *octl_type_name(const octl_kind *k, char *buf, size_t cap)
{
    size_t gl;
    const char *g = group_of(k->k, &gl);
    if (gl)
        snprintf(buf, cap, "%s.%.*s", k->singular, (int)gl, g);
    else
        snprintf(buf, cap, "%s", k->singular);
    return buf;
}

const char *octl_resource_name(const octl_kind *k, char *buf, size_t cap)
{
    size_t gl;
    const char *g = group_of(k->k, &gl);
    if (gl)
        snprintf(buf, cap, "%s.%.*s", k->k->resource, (int)gl, g);
    else
        snprintf(buf, cap, "%s", k->k->resource);
    return buf;
}

void octl_key(const obj_kind *k, const char *ns, const char *name, char *buf,
              size_t cap)
{
    if (k->namespaced)
        snprintf(buf, cap, "/registry/%s/%s/%s", k->resource, ns, name);
    else
        snprintf(buf, cap, "/registry/%s/%s", k->resource, name);
}

/* ---- reading ------------------------------------------------------------- */

char *octl_strdup(cm_arena *a, const char *s)
{
    size_t n = strlen(s) + 1;
    char *p = cm_arena_alloc(a, n);
    if (p)
        memcpy(p, s, n);
    return p;
}

/* Decodes a stored value into out (arena copies), resourceVersion filled.
 * -1 when it is not an object (a raw KV put under /registry/). */
static int decode_kv(const skiff_kv *kv, cm_arena *a, octl_stored *out)
{
    ProtobufCAllocator al = {cm_arena_pb_alloc, cm_arena_pb_free, a};
    memset(out, 0, sizeof *out);
    out->raw = cm_arena_memdup(a, kv->value, kv->value_len ? kv->value_len : 1);
    out->raw_len = kv->value_len;
    out->mod_revision = kv->mod_revision;
    out->obj = (obj_object *)protobuf_c_message_unpack(
        &skiffpb__v1__object__descriptor, &al, kv->value_len, kv->value);
    Skiffpb__V1__ObjectMeta *md = out->obj ? obj_object_meta(out->obj) : NULL;
    if (!md)
        return -1;
    char rv[32];
    snprintf(rv, sizeof rv, "%" PRId64, kv->mod_revision);
    md->resource_version = octl_strdup(a, rv);
    return 0;
}

int octl_read(ctl *x, const char *key, cm_arena *a, octl_stored *out)
{
    skiff_client *c = ctl_client(x);
    skiff_result res = {0};
    int rc = skiff_get(c, key, strlen(key), &res);
    if (rc) {
        rc = ctl_fail(x, c, rc, &res);
        skiff_result_free(&res);
        return rc;
    }
    if (!res.n_kvs) {
        skiff_result_free(&res);
        return 1;
    }
    rc = decode_kv(&res.kvs[0], a, out);
    skiff_result_free(&res);
    if (rc)
        return ctl_errorf(CTL_EXIT_ERROR, "%s does not hold an object", key);
    return 0;
}

int octl_list(ctl *x, const obj_kind *k, const char *ns, cm_arena *a,
              octl_stored **out, size_t *n)
{
    char prefix[OCTL_KEY_MAX];
    if (k->namespaced && ns)
        snprintf(prefix, sizeof prefix, "/registry/%s/%s/", k->resource, ns);
    else
        snprintf(prefix, sizeof prefix, "/registry/%s/", k->resource);
    skiff_client *c = ctl_client(x);
    skiff_result res = {0};
    int rc = skiff_get_prefix(c, prefix, strlen(prefix), &res);
    if (rc) {
        rc = ctl_fail(x, c, rc, &res);
        skiff_result_free(&res);
        return rc;
    }
    *n = 0;
    *out = cm_arena_alloc(a, (res.n_kvs + 1) * sizeof **out);
    if (!*out) {
        skiff_result_free(&res);
        return ctl_errorf(CTL_EXIT_ERROR, "out of memory");
    }
    /* Keys come back sorted, which is namespace then name. */
    for (size_t i = 0; i < res.n_kvs; i++)
        if (!decode_kv(&res.kvs[i], a, &(*out)[*n]))
            (*n)++;
    skiff_result_free(&res);
    return 0;
}

/* ---- writing ------------------------------------------------------------- */

int64_t octl_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void octl_uid(void *data, char *buf, size_t cap)
{
    (void)data;
    uint8_t b[16] = {0};
    int fd = open("/dev/urandom", O_RDONLY | O_CLOEXEC);
    if (fd < 0 || read(fd, b, sizeof b) != (ssize_t)sizeof b) {
        /* No entropy device: time and pid still make it unique enough
         * for one client. */
        int64_t t = octl_now_ms();
        memcpy(b, &t, sizeof t);
        pid_t p = getpid();
        memcpy(b + 8, &p, sizeof p);
    }
    if (fd >= 0)
        close(fd);
    b[6] = (uint8_t)((b[6] & 0x0f) | 0x40);
    b[8] = (uint8_t)((b[8] & 0x3f) | 0x80);
    snprintf(buf, cap,
             "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-"
             "%02x%02x%02x%02x%02x%02x",
             b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10],
             b[11], b[12], b[13], b[14], b[15]);
}

const char *octl_reason(obj_admit_code code)
{
    switch (code) {
    case OBJ_ADMIT_INVALID:
        return "Invalid";
    case OBJ_ADMIT_BAD_REQUEST:
        return "BadRequest";
    case OBJ_ADMIT_CONFLICT:
        return "Conflict";
    case OBJ_ADMIT_NOT_FOUND:
        return "NotFound";
    case OBJ_ADMIT_FORBIDDEN:
        return "Forbidden";
    default:
        return "InternalError";
    }
}

void octl_print_refusal(const obj_admit_res *res, const char *doing,
                        const char *file)
{
    fflush(stdout);
    if (file)
        fprintf(stderr, "Error from server (%s): error when %s \"%s\": %s\n",
                octl_reason(res->code), doing, file, res->message);
    else
        fprintf(stderr, "Error from server (%s): %s\n", octl_reason(res->code),
                res->message);
}

int octl_write(ctl *x, const char *key, obj_object *obj, const octl_stored *old,
               cm_arena *a, obj_admit_res *res)
{
    size_t len = protobuf_c_message_get_packed_size(&obj->base);
    uint8_t *buf = cm_arena_alloc(a, len ? len : 1);
    if (!buf)
        return ctl_errorf(CTL_EXIT_ERROR, "out of memory");
    protobuf_c_message_pack(&obj->base, buf);
    obj_admit_req rq = {
        .key = key,
        .value = buf,
        .value_len = len,
        .old_value = old ? old->raw : NULL,
        .old_value_len = old ? old->raw_len : 0,
        .old_mod_revision = old ? old->mod_revision : 0,
        .now_ms = octl_now_ms(),
        .uid = octl_uid,
    };
    int rc = obj_admit(&rq, a, res);
    if (rc == -ENOMEM)
        return ctl_errorf(CTL_EXIT_ERROR, "out of memory");
    if (rc)
        return OCTL_EREFUSED;
    if (res->unchanged)
        return 0;
    skiff_cmp cmp = {
        .result = SKIFF_CMP_EQUAL,
        .target = old ? SKIFF_CMP_MOD : SKIFF_CMP_CREATE,
        .key = key,
        .key_len = strlen(key),
        .number = old ? old->mod_revision : 0,
    };
    skiff_op put = {.type = SKIFF_OP_PUT,
                    .key = key,
                    .key_len = strlen(key),
                    .value = res->value,
                    .value_len = res->value_len};
    skiff_op txn = {.type = SKIFF_OP_TXN,
                    .cmps = &cmp,
                    .n_cmps = 1,
                    .success = &put,
                    .n_success = 1};
    skiff_client *c = ctl_client(x);
    skiff_result r = {0};
    rc = skiff_do_sync(c, &txn, &r);
    if (rc == SKIFF_ECONFLICT) {
        /* The server saw the compare fail before proposing: the same
         * conflict as a txn that did not succeed. */
        skiff_result_free(&r);
        return OCTL_ECONFLICT;
    }
    if (rc) {
        rc = ctl_fail(x, c, rc, &r);
        skiff_result_free(&r);
        return rc;
    }
    int ok = r.succeeded;
    skiff_result_free(&r);
    return ok ? 0 : OCTL_ECONFLICT;
}

void octl_backoff(int attempt)
{
    static unsigned seed;
    if (!seed)
        seed = (unsigned)getpid() ^ (unsigned)octl_now_ms();
    int cap = 1 << (attempt < 6 ? attempt : 6);
    int ms = (int)(rand_r(&seed) % (unsigned)(cap + 1));
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

int octl_update(ctl *x, const octl_kind *k, const char *ns, const char *name,
                octl_mutate_fn mutate, void *arg, bool *unchanged)
{
    char key[OCTL_KEY_MAX], rn[96];
    octl_key(k->k, ns, name, key, sizeof key);
    for (int attempt = 0; attempt < OCTL_RETRIES; attempt++) {
        cm_arena a = {0};
        octl_stored st;
        int rc = octl_read(x, key, &a, &st);
        if (rc == 1) {
            fflush(stdout);
            fprintf(stderr,
                    "Error from server (NotFound): %s \"%s\" not found\n",
                    octl_resource_name(k, rn, sizeof rn), name);
            cm_arena_free(&a);
            return CTL_EXIT_ERROR;
        }
        if (rc) {
            cm_arena_free(&a);
            return rc;
        }
        /* Mutate a second decode, so the stored bytes stay intact for
         * admission's old value. */
        ProtobufCAllocator al = {cm_arena_pb_alloc, cm_arena_pb_free, &a};
        obj_object *o = (obj_object *)protobuf_c_message_unpack(
            &skiffpb__v1__object__descriptor, &al, st.raw_len, st.raw);
        if (!o) {
            cm_arena_free(&a);
            return ctl_errorf(CTL_EXIT_ERROR, "out of memory");
        }
        if ((rc = mutate(o, &a, arg))) {
            cm_arena_free(&a);
            return rc;
        }
        obj_admit_res res;
        rc = octl_write(x, key, o, &st, &a, &res);
        if (rc == OCTL_ECONFLICT) {
            cm_arena_free(&a);
            octl_backoff(attempt);
            continue;
        }
        if (rc == OCTL_EREFUSED)
            octl_print_refusal(&res, NULL, NULL);
        if (!rc && unchanged)
            *unchanged = res.unchanged;
        cm_arena_free(&a);
        return rc ? CTL_EXIT_ERROR : 0;
    }
    fflush(stdout);
    fprintf(stderr,
            "Error from server (Conflict): Operation cannot be fulfilled on "
            "%s \"%s\": the object has been modified; please apply your "
            "changes to the latest version and try again\n",
            octl_resource_name(k, rn, sizeof rn), name);
    return CTL_EXIT_ERROR;
}

/* ---- maps ---------------------------------------------------------------- */

typedef struct map_entry {
    ProtobufCMessage base;
    char *key;
    char *value;
} map_entry;

const char *octl_map_get(size_t n, void *const *entries, const char *key)
{
    for (size_t i = 0; i < n; i++) {
        const map_entry *e = entries[i];
        if (e->key && !strcmp(e->key, key))
            return e->value ? e->value : "";
    }
    return NULL;
}

int octl_map_set(cm_arena *a, const ProtobufCMessageDescriptor *entry_desc,
                 size_t *n, void ***entries, const char *key, const char *value)
{
    for (size_t i = 0; i < *n; i++) {
        map_entry *e = (*entries)[i];
        if (!e->key || strcmp(e->key, key))
            continue;
        if (value) {
            e->value = octl_strdup(a, value);
            return e->value ? 0 : -ENOMEM;
        }
        memmove(&(*entries)[i], &(*entries)[i + 1],
                (*n - i - 1) * sizeof **entries);
        (*n)--;
        return 0;
    }
    if (!value)
        return 0;
    void **ne = cm_arena_alloc(a, (*n + 1) * sizeof *ne);
    map_entry *e = cm_arena_alloc(a, entry_desc->sizeof_message);
    if (!ne || !e)
        return -ENOMEM;
    entry_desc->message_init((ProtobufCMessage *)e);
    if (!(e->key = octl_strdup(a, key)) || !(e->value = octl_strdup(a, value)))
        return -ENOMEM;
    if (*n)
        memcpy(ne, *entries, *n * sizeof *ne);
    ne[(*n)++] = e;
    *entries = ne;
    return 0;
}

/* ---- selectors ----------------------------------------------------------- */

static char *trim(char *s)
{
    while (*s == ' ')
        s++;
    size_t n = strlen(s);
    while (n && s[n - 1] == ' ')
        s[--n] = '\0';
    return s;
}

/* Whether value is in "(a,b,c)" (p points after the '('). */
static bool in_set(char *set, const char *value)
{
    char *save = NULL;
    for (char *t = strtok_r(set, ",", &save); t; t = strtok_r(NULL, ",", &save))
        if (value && !strcmp(trim(t), value))
            return true;
    return false;
}

/* One requirement; -1 malformed, else 0/1. */
static int match_req(char *r, size_t n, void *const *labels)
{
    r = trim(r);
    if (!*r)
        return -1;
    char *sp;
    if ((sp = strstr(r, " notin ")) || (sp = strstr(r, " in "))) {
        bool notin = sp[1] == 'n';
        *sp = '\0';
        char *set = sp + (notin ? 7 : 4);
        set = trim(set);
        size_t sl = strlen(set);
        if (set[0] != '(' || set[sl - 1] != ')')
            return -1;
        set[sl - 1] = '\0';
        const char *v = octl_map_get(n, labels, trim(r));
        bool in = in_set(set + 1, v);
        return notin ? (!v || !in) : in;
    }
    char *op;
    if ((op = strstr(r, "!="))) {
        *op = '\0';
        const char *v = octl_map_get(n, labels, trim(r));
        return !v || strcmp(v, trim(op + 2));
    }
    if ((op = strchr(r, '='))) {
        *op = '\0';
        const char *val = op[1] == '=' ? op + 2 : op + 1;
        const char *v = octl_map_get(n, labels, trim(r));
        return v && !strcmp(v, trim((char *)val));
    }
    if (r[0] == '!')
        return octl_map_get(n, labels, trim(r + 1)) == NULL;
    return octl_map_get(n, labels, r) != NULL;
}

int octl_selector_match(const char *sel, size_t n, void *const *labels)
{
    char *copy = strdup(sel);
    if (!copy)
        return -1;
    int result = 1;
    /* Split on commas outside parentheses. */
    char *start = copy;
    int depth = 0;
    for (char *p = copy;; p++) {
        if (*p == '(')
            depth++;
        else if (*p == ')')
            depth--;
        if ((*p == ',' && depth == 0) || !*p) {
            bool end = !*p;
            *p = '\0';
            int m = match_req(start, n, labels);
            if (m < 0) {
                result = -1;
                break;
            }
            if (!m)
                result = 0;
            if (end)
                break;
            start = p + 1;
        }
    }
    free(copy);
    return result;
}

/* ---- manifests ----------------------------------------------------------- */

static char *read_file(const char *path, size_t *len)
{
    if (!strcmp(path, "-"))
        return ctl_read_stdin(len);
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    size_t cap = 4096, n = 0;
    char *b = malloc(cap);
    while (b) {
        if (n + 1 >= cap) {
            char *nb = realloc(b, cap *= 2);
            if (!nb) {
                free(b);
                b = NULL;
                break;
            }
            b = nb;
        }
        size_t r = fread(b + n, 1, cap - n - 1, f);
        if (!r)
            break;
        n += r;
    }
    fclose(f);
    if (b) {
        b[n] = '\0';
        *len = n;
    }
    return b;
}

static int cmp_str(const void *x, const void *y)
{
    return strcmp(*(char *const *)x, *(char *const *)y);
}

static bool manifest_name(const char *n)
{
    size_t l = strlen(n);
    return (l > 5 && !strcmp(n + l - 5, ".yaml")) ||
           (l > 4 && !strcmp(n + l - 4, ".yml")) ||
           (l > 5 && !strcmp(n + l - 5, ".json"));
}

int octl_load(const char *path, cm_arena *a, octl_file **out, size_t *n)
{
    /* The paths to read: the file, or a directory's manifests sorted. */
    char **paths = NULL;
    size_t np = 0;
    struct stat sb;
    if (strcmp(path, "-") && stat(path, &sb))
        return octl_errorf("the path \"%s\" does not exist", path);
    if (strcmp(path, "-") && S_ISDIR(sb.st_mode)) {
        DIR *d = opendir(path);
        if (!d)
            return ctl_errorf(CTL_EXIT_ERROR, "cannot read %s: %s", path,
                              strerror(errno));
        struct dirent *e;
        while ((e = readdir(d))) {
            if (!manifest_name(e->d_name))
                continue;
            char **np2 = cm_arena_alloc(a, (np + 1) * sizeof *np2);
            size_t pl = strlen(path) + strlen(e->d_name) + 2;
            char *p = cm_arena_alloc(a, pl);
            if (!np2 || !p) {
                closedir(d);
                return ctl_errorf(CTL_EXIT_ERROR, "out of memory");
            }
            snprintf(p, pl, "%s%s%s", path,
                     path[strlen(path) - 1] == '/' ? "" : "/", e->d_name);
            if (np)
                memcpy(np2, paths, np * sizeof *np2);
            np2[np++] = p;
            paths = np2;
        }
        closedir(d);
        if (np)
            qsort(paths, np, sizeof *paths, cmp_str);
    } else {
        paths = cm_arena_alloc(a, sizeof *paths);
        if (!paths || !(paths[0] = octl_strdup(a, path)))
            return ctl_errorf(CTL_EXIT_ERROR, "out of memory");
        np = 1;
    }
    *out = cm_arena_alloc(a, (np + 1) * sizeof **out);
    if (!*out)
        return ctl_errorf(CTL_EXIT_ERROR, "out of memory");
    *n = 0;
    /* Decode everything before anything is written (apply's rule). */
    for (size_t i = 0; i < np; i++) {
        size_t len = 0;
        char *buf = read_file(paths[i], &len);
        if (!buf)
            return ctl_errorf(CTL_EXIT_ERROR, "cannot read %s: %s", paths[i],
                              strerror(errno));
        octl_file *f = &(*out)[(*n)++];
        f->name = paths[i];
        obj_error err;
        int rc = obj_yaml_decode(buf, len, a, &f->objs, &f->n, &err);
        free(buf);
        if (rc) {
            char msg[OBJ_PATH_MAX + OBJ_MSG_MAX + 512];
            obj_error_format(&err, paths[i], msg, sizeof msg);
            fflush(stdout);
            fprintf(stderr, "error: %s\n", msg);
            return CTL_EXIT_ERROR;
        }
    }
    return 0;
}

/* ---- time ---------------------------------------------------------------- */

static int64_t parse_time(const char *s)
{
    struct tm tm = {0};
    if (!s || !strptime(s, "%Y-%m-%dT%H:%M:%S", &tm))
        return -1;
    return (int64_t)timegm(&tm);
}

void octl_age(const char *rfc3339, char *buf, size_t cap)
{
    int64_t t = parse_time(rfc3339);
    if (t < 0) {
        snprintf(buf, cap, "<unknown>");
        return;
    }
    /* kubectl's duration.HumanDuration. */
    int64_t s = octl_now_ms() / 1000 - t;
    if (s < -1) {
        snprintf(buf, cap, "<invalid>");
        return;
    }
    if (s < 0)
        s = 0;
    int64_t m = s / 60, h = s / 3600;
    if (s < 120)
        snprintf(buf, cap, "%" PRId64 "s", s);
    else if (m < 10 && s % 60)
        snprintf(buf, cap, "%" PRId64 "m%" PRId64 "s", m, s % 60);
    else if (m < 180)
        snprintf(buf, cap, "%" PRId64 "m", m);
    else if (h < 8 && m % 60)
        snprintf(buf, cap, "%" PRId64 "h%" PRId64 "m", h, m % 60);
    else if (h < 48)
        snprintf(buf, cap, "%" PRId64 "h", h);
    else if (h < 24 * 8 && h % 24)
        snprintf(buf, cap, "%" PRId64 "d%" PRId64 "h", h / 24, h % 24);
    else if (h < 24 * 365 * 2)
        snprintf(buf, cap, "%" PRId64 "d", h / 24);
    else if (h < 24 * 365 * 8 && (h / 24) % 365)
        snprintf(buf, cap, "%" PRId64 "y%" PRId64 "d", h / 24 / 365,
                 (h / 24) % 365);
    else
        snprintf(buf, cap, "%" PRId64 "y", h / 24 / 365);
}
