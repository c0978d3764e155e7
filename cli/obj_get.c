/*
 * `get` for objects: kubectl's tables, -o wide|yaml|json|name, -l, -n, -A,
 * and -w / --watch-only (list, then one entry per change; see "get -w"
 * below).
 *
 * `get` is also etcdctl's command, so cmd_obj_get_or_kv decides by the
 * first argument: a kind name ("pods", "deploy", "nodes/n1") selects the
 * object get, anything else is a key.  A raw key that happens to be a kind
 * name can still be read with a leading "/" or with --prefix.  The same
 * decision gives `-w` its meaning: kubectl's watch in an object get,
 * etcdctl's write-out format (a global flag, parsed by main) for keys.
 *
 * Table columns and cells are obj_table.c's.  Lists in -o yaml are
 * documents separated by "---" (so the output applies again; kubectl
 * prints a List object instead).
 */
#include "obj_table.h"

#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>

/* ---- structured output ----------------------------------------------------
 */

/* Prints s with every line indented by `ind` spaces, no final newline. */
static void print_indented(const char *s, size_t len, int ind)
{
    while (len && s[len - 1] == '\n')
        len--;
    printf("%*s", ind, "");
    for (size_t i = 0; i < len; i++) {
        putchar(s[i]);
        if (s[i] == '\n')
            printf("%*s", ind, "");
    }
}

static int print_objects(octl_stored *items, size_t n, const char *fmt,
                         bool single)
{
    cm_buf b = {0};
    int rc = 0;
    if (!strcmp(fmt, "json") && !single)
        printf("{\n    \"apiVersion\": \"v1\",\n    \"items\": [\n");
    for (size_t i = 0; i < n; i++) {
        cm_buf_reset(&b);
        if (!strcmp(fmt, "yaml")) {
            if ((rc = obj_yaml_encode(items[i].obj, &b)))
                break;
            if (i)
                fputs("---\n", stdout);
            fwrite(b.base, 1, b.len, stdout);
        } else if (single) {
            if ((rc = obj_json_encode(items[i].obj, &b)))
                break;
            fwrite(b.base, 1, b.len, stdout);
        } else {
            if ((rc = obj_json_encode(items[i].obj, &b)))
                break;
            print_indented((const char *)b.base, b.len, 8);
            fputs(i + 1 < n ? ",\n" : "\n", stdout);
        }
    }
    if (!rc && !strcmp(fmt, "json") && !single)
        printf("    ],\n    \"kind\": \"List\",\n    \"metadata\": {\n"
               "        \"resourceVersion\": \"\"\n    }\n}\n");
    cm_buf_free(&b);
    return rc ? octl_errorf("cannot encode: %s", cm_strerror(rc)) : 0;
}

/* ---- get ----------------------------------------------------------------- */

/* The objects of kind k that get shows: the named ones (a missing name
 * is reported and makes the exit code 1) or the list, filtered by -l.
 * Returns 0 or 1 (the exit code so far), or minus an exit code to stop
 * with. */
static int fetch(ctl *x, const octl_kind *k, const octl_gopts *g, const char *ns,
                 const char **wanted, size_t nwanted, cm_arena *a,
                 octl_stored **items, size_t *n)
{
    int rc = 0;
    char rn[96];
    octl_resource_name(k, rn, sizeof rn);
    *n = 0;
    if (nwanted) {
        *items = cm_arena_alloc(a, nwanted * sizeof **items);
        if (!*items)
            return -octl_errorf("out of memory");
        for (size_t i = 0; i < nwanted; i++) {
            char key[OCTL_KEY_MAX];
            octl_key(k->k, ns, wanted[i], key, sizeof key);
            int r = octl_read(x, key, a, &(*items)[*n]);
            if (r == 1) {
                fflush(stdout);
                fprintf(stderr,
                        "Error from server (NotFound): %s \"%s\" not found\n",
                        rn, wanted[i]);
                rc = CTL_EXIT_ERROR;
            } else if (r) {
                return -r;
            } else {
                (*n)++;
            }
        }
    } else {
        int r = octl_list(x, k->k, g->all_ns ? NULL : ns, a, items, n);
        if (r)
            return -r;
    }
    if (g->selector) {
        size_t kept = 0;
        for (size_t i = 0; i < *n; i++) {
            const Skiffpb__V1__ObjectMeta *md =
                obj_object_meta((*items)[i].obj);
            int m = octl_selector_match(g->selector, md->n_labels,
                                        (void *const *)md->labels);
            if (m < 0)
                return -octl_errorf("unable to parse requirement: %s",
                                    g->selector);
            if (m)
                (*items)[kept++] = (*items)[i];
        }
        *n = kept;
    }
    return rc;
}

/* ---- get -w ---------------------------------------------------------------
 * kubectl's `get -w` is list + watch, here an informer (client/informer.c)
 * on the kind's prefix (the namespace's, or the object's key with a
 * NAME).  Its first SYNCED carries the list, printed as `get` prints it
 * (nothing with --watch-only); every later ADD, UPDATE and DELETE is
 * printed as it comes: one table row without the header, one document, or
 * one name.  A deletion prints the object's last state, as kubectl does.
 * When the watch cannot continue (compacted history) the informer lists
 * again and reports what changed as ordinary events, so a relist prints
 * the changed objects like an informer-based kubectl would; a broken
 * connection is resumed by the client library without gap or duplicate.
 *
 * -l applies to every event: an object is shown when it matches, and an
 * update that makes it stop matching shows its previous state (the API
 * server's watch turns that into a DELETED event with the old object).
 * Column widths are fixed by the first batch printed (the list, or the
 * first event with --watch-only) and widen for a longer cell from then
 * on, so rows stay aligned for names like the listed ones.  stdout is
 * flushed after every event so a pipe reader sees it at once.
 *
 * The command runs until SIGINT or SIGTERM (exit 0); the first list is
 * bounded by --command-timeout like any other request. */

static volatile sig_atomic_t watch_stop;

typedef struct wstate {
    const octl_kind *k;
    const octl_gopts *g;
    const char *fmt;
    const char *key;    /* NAME's key, or NULL (every key of the prefix) */
    const char *name;   /* NAME, or NULL */
    size_t w[OCTL_MAX_COLS]; /* column widths, set by the first batch */
    bool widths_set;
    bool synced; /* the first list has been applied (and printed) */
    bool ended;  /* the informer's last callback has run */
    int status;  /* ENDED's status */
    int rc;      /* exit code of an error met in a callback */
    size_t docs; /* documents printed, for yaml's "---" */
    skiff_informer *inf;
} wstate;

/* One object of the first list, kept for sorting. */
typedef struct witem {
    char *key;
    obj_object *obj;
} witem;

typedef struct wcollect {
    wstate *ws;
    cm_arena *a;
    witem *items;
    size_t n, cap;
} wcollect;

static void on_stop_signal(int sig)
{
    (void)sig;
    watch_stop = 1;
}

/* Decodes a stored value (resourceVersion filled) into a; NULL when it is
 * not an object (a raw KV put under /registry/) or memory ran out. */
static obj_object *watch_decode(const skiff_kv *kv, cm_arena *a)
{
    ProtobufCAllocator al = {cm_arena_pb_alloc, cm_arena_pb_free, a};
    obj_object *o = (obj_object *)protobuf_c_message_unpack(
        &skiffpb__v1__object__descriptor, &al, kv->value_len, kv->value);
    Skiffpb__V1__ObjectMeta *md = o ? obj_object_meta(o) : NULL;
    if (!md)
        return NULL;
    char rv[32];
    snprintf(rv, sizeof rv, "%" PRId64, kv->mod_revision);
    md->resource_version = octl_strdup(a, rv);
    return md->resource_version ? o : NULL;
}

/* Whether kv passes the NAME filter. */
static bool watch_key_wanted(const wstate *ws, const skiff_kv *kv)
{
    return !ws->key || (kv->key_len == strlen(ws->key) &&
                        !memcmp(kv->key, ws->key, kv->key_len));
}

/* Whether o passes -l (checked before the watch starts, so it parses). */
static bool watch_selected(const wstate *ws, const obj_object *o)
{
    if (!ws->g->selector)
        return true;
    const Skiffpb__V1__ObjectMeta *md = obj_object_meta(o);
    return octl_selector_match(ws->g->selector, md->n_labels,
                               (void *const *)md->labels) > 0;
}

/* Prints objs in the chosen format; the first table printed carries the
 * header and fixes the column widths.  0 or the exit code. */
static int watch_print(wstate *ws, obj_object *const *objs, size_t n,
                       cm_arena *a)
{
    if (!n)
        return 0;
    if (!strcmp(ws->fmt, "name")) {
        char tn[96];
        octl_type_name(ws->k, tn, sizeof tn);
        for (size_t i = 0; i < n; i++)
            printf("%s/%s\n", tn, obj_object_meta(objs[i])->name);
    } else if (!strcmp(ws->fmt, "yaml") || !strcmp(ws->fmt, "json")) {
        bool yaml = !strcmp(ws->fmt, "yaml");
        cm_buf b = {0};
        for (size_t i = 0; i < n; i++) {
            cm_buf_reset(&b);
            int rc = yaml ? obj_yaml_encode(objs[i], &b)
                          : obj_json_encode(objs[i], &b);
            if (rc) {
                cm_buf_free(&b);
                return octl_errorf("cannot encode: %s", cm_strerror(rc));
            }
            if (yaml && ws->docs)
                fputs("---\n", stdout);
            fwrite(b.base, 1, b.len, stdout);
            ws->docs++;
        }
        cm_buf_free(&b);
    } else {
        octl_table t = {.a = a};
        octl_table_head(&t, ws->k->k, ws->g);
        for (size_t i = 0; i < n; i++)
            if (octl_table_add(&t, objs[i], ws->g))
                return octl_errorf("out of memory");
        bool head = !ws->widths_set && !ws->g->no_headers;
        octl_table_widths(&t, head, ws->w);
        octl_table_emit(&t, head, ws->w);
        ws->widths_set = true;
    }
    fflush(stdout);
    return 0;
}

static void watch_collect(const skiff_kv *kv, void *arg)
{
    wcollect *wc = arg;
    if (wc->n == wc->cap || !watch_key_wanted(wc->ws, kv))
        return;
    obj_object *o = watch_decode(kv, wc->a);
    char *key = cm_arena_alloc(wc->a, kv->key_len + 1);
    if (!o || !key || !watch_selected(wc->ws, o))
        return;
    memcpy(key, kv->key, kv->key_len);
    key[kv->key_len] = '\0';
    wc->items[wc->n++] = (witem){key, o};
}

static int cmp_witem(const void *x, const void *y)
{
    return strcmp(((const witem *)x)->key, ((const witem *)y)->key);
}

/* The first list has been applied: NotFound for a missing NAME, else
 * prints the list sorted by key (namespace, then name) unless
 * --watch-only.  0 or the exit code. */
static int watch_first(wstate *ws, skiff_informer *inf)
{
    if (ws->key && !skiff_informer_get(inf, ws->key, strlen(ws->key))) {
        char rn[96];
        octl_resource_name(ws->k, rn, sizeof rn);
        fflush(stdout);
        fprintf(stderr, "Error from server (NotFound): %s \"%s\" not found\n",
                rn, ws->name);
        return CTL_EXIT_ERROR;
    }
    if (ws->g->watch_only)
        return 0;
    cm_arena a = {0};
    wcollect wc = {.ws = ws, .a = &a, .cap = skiff_informer_len(inf)};
    wc.items = cm_arena_alloc(&a, (wc.cap + 1) * sizeof *wc.items);
    if (!wc.items) {
        cm_arena_free(&a);
        return octl_errorf("out of memory");
    }
    skiff_informer_foreach(inf, watch_collect, &wc);
    qsort(wc.items, wc.n, sizeof *wc.items, cmp_witem);
    obj_object **objs = cm_arena_alloc(&a, (wc.n + 1) * sizeof *objs);
    int rc = objs ? 0 : octl_errorf("out of memory");
    for (size_t i = 0; !rc && i < wc.n; i++)
        objs[i] = wc.items[i].obj;
    if (!rc)
        rc = watch_print(ws, objs, wc.n, &a);
    cm_arena_free(&a);
    return rc;
}

/* One change after the first list: kv is the new state (NULL for a
 * deletion), old the previous one (NULL for an addition).  0 or the exit
 * code. */
static int watch_change(wstate *ws, const skiff_kv *kv, const skiff_kv *old)
{
    const skiff_kv *any = kv ? kv : old;
    if (!any || !watch_key_wanted(ws, any))
        return 0;
    cm_arena a = {0};
    obj_object *o = kv ? watch_decode(kv, &a) : NULL;
    if (!o || !watch_selected(ws, o)) {
        /* A deletion, or an update that left the selection: the last
         * state that was shown, if it was. */
        o = old ? watch_decode(old, &a) : NULL;
        if (o && !watch_selected(ws, o))
            o = NULL;
    }
    int rc = o ? watch_print(ws, &o, 1, &a) : 0;
    cm_arena_free(&a);
    return rc;
}

static void on_watch_event(skiff_informer *inf, int status,
                           skiff_informer_event ev, const skiff_kv *kv,
                           const skiff_kv *old, void *data)
{
    wstate *ws = data;
    if (ev == SKIFF_INFORMER_ENDED) {
        ws->ended = true;
        ws->status = status;
        return;
    }
    if (ws->rc)
        return;
    if (ev == SKIFF_INFORMER_SYNCED) {
        /* Later SYNCEDs end a relist whose changes were just printed. */
        if (!ws->synced) {
            ws->synced = true;
            ws->rc = watch_first(ws, inf);
        }
        return;
    }
    if (ws->synced) /* the first list's ADDs are printed at its SYNCED */
        ws->rc = watch_change(ws, kv, old);
}

/* get KIND [NAME] -w / --watch-only.  Returns the exit code. */
static int obj_watch(ctl *x, const octl_kind *k, const octl_gopts *g, const char *ns,
                     const char *name, const char *fmt)
{
    if (g->selector && octl_selector_match(g->selector, 0, NULL) < 0)
        return octl_errorf("unable to parse requirement: %s", g->selector);
    char key[OCTL_KEY_MAX], prefix[OCTL_KEY_MAX];
    wstate ws = {.k = k, .g = g, .fmt = fmt};
    if (name) {
        octl_key(k->k, ns, name, key, sizeof key);
        ws.key = key;
        ws.name = name;
        snprintf(prefix, sizeof prefix, "%s", key);
    } else if (k->k->namespaced && !g->all_ns) {
        snprintf(prefix, sizeof prefix, "/registry/%s/%s/", k->k->resource, ns);
    } else {
        snprintf(prefix, sizeof prefix, "/registry/%s/", k->k->resource);
    }
    skiff_client *c = ctl_client(x);
    struct sigaction sa = {.sa_handler = on_stop_signal}, old_int, old_term;
    sigemptyset(&sa.sa_mask);
    watch_stop = 0;
    sigaction(SIGINT, &sa, &old_int);
    sigaction(SIGTERM, &sa, &old_term);
    int rc = skiff_informer_start(c, &ws.inf, prefix, strlen(prefix),
                                  on_watch_event, &ws);
    if (rc) {
        rc = ctl_fail(x, c, rc, NULL);
        goto out;
    }
    /* The informer retries a list that failed for a transient reason;
     * the first one gets --command-timeout, as a plain get would. */
    int64_t deadline = octl_now_ms() + x->command_timeout_ms;
    while (!ws.ended && !ws.rc && !watch_stop) {
        skiff_client_poll(c, 100);
        if (!ws.synced && !ws.ended && octl_now_ms() > deadline) {
            const char *m = skiff_client_errmsg(c);
            ws.rc = ctl_errorf(CTL_EXIT_ERROR, "%s",
                               m[0] ? m : "context deadline exceeded");
        }
    }
    if (!ws.ended)
        skiff_informer_close(ws.inf);
    /* Its last callback writes to ws: wait for it. */
    while (!ws.ended)
        skiff_client_poll(c, 100);
    rc = ws.rc;
    if (!rc && ws.status != -ECANCELED)
        rc = ctl_fail(x, c, ws.status, NULL);
out:
    fflush(stdout);
    sigaction(SIGINT, &old_int, NULL);
    sigaction(SIGTERM, &old_term, NULL);
    return rc;
}

static int obj_get(ctl *x, int argc, char **argv)
{
    x->kube = 1;
    octl_gopts g = {0};
    ctl_flag flags[] = {
        {"namespace", 'n', CTL_STR, &g.ns},
        {"selector", 'l', CTL_STR, &g.selector},
        {"output", 'o', CTL_STR, &g.out},
        {"all-namespaces", 'A', CTL_BOOL, &g.all_ns},
        {"show-labels", 0, CTL_BOOL, &g.show_labels},
        {"no-headers", 0, CTL_BOOL, &g.no_headers},
        /* kubectl's -w; etcdctl's -w (write-out) is for keys only. */
        {"watch", 'w', CTL_BOOL, &g.watch},
        {"watch-only", 0, CTL_BOOL, &g.watch_only},
        {NULL, 0, 0, NULL},
    };
    char **pos = calloc((size_t)argc + 1, sizeof *pos);
    if (!pos)
        return octl_errorf("out of memory");
    int npos = 0, rc = ctl_flags_parse(x, argc, argv, flags, pos, &npos);
    cm_arena a = {0};
    if (rc)
        goto out;
    const char *fmt = g.out ? g.out : "";
    g.wide = !strcmp(fmt, "wide");
    if (*fmt && !g.wide && strcmp(fmt, "yaml") && strcmp(fmt, "json") &&
        strcmp(fmt, "name")) {
        rc = octl_errorf("unable to match a printer suitable for the output "
                         "format \"%s\", allowed formats are: "
                         "json,name,wide,yaml",
                         fmt);
        goto out;
    }
    /* KIND [NAME...], KIND/NAME, or KIND,KIND,... (no names). */
    char *slash = strchr(pos[0], '/');
    if (slash)
        *slash = '\0';
    const char **wanted = (const char **)pos + 1;
    size_t nwanted = (size_t)npos - 1;
    if (slash) {
        wanted = (const char **)&pos[0];
        nwanted = 1;
    }
    const octl_kind *kinds[16];
    size_t nk = 0;
    char *save = NULL;
    for (char *w = strtok_r(pos[0], ",", &save); w && nk < 16;
         w = strtok_r(NULL, ",", &save)) {
        if (!(kinds[nk++] = octl_kind_lookup(w))) {
            rc = octl_errorf("the server doesn't have a resource type "
                             "\"%s\"",
                             w);
            goto out;
        }
    }
    if (slash)
        pos[0] = slash + 1;
    if (nk > 1 && nwanted) {
        rc = octl_errorf("arguments in resource/name form must have a single "
                         "resource and name");
        goto out;
    }
    const char *ns = g.ns ? g.ns : "default";
    if (g.watch || g.watch_only) {
        if (nk > 1 || nwanted > 1) {
            rc = octl_errorf("watch is only supported on individual "
                             "resources and resource collections, but %zu "
                             "resources were found",
                             nk > 1 ? nk : nwanted);
            goto out;
        }
        rc = obj_watch(x, kinds[0], &g, ns, nwanted ? wanted[0] : NULL, fmt);
        goto out;
    }
    octl_stored *all = NULL;
    size_t nall = 0;
    bool tables_printed = false;
    for (size_t ki = 0; ki < nk; ki++) {
        octl_stored *items;
        size_t n;
        int r = fetch(x, kinds[ki], &g, ns, wanted, nwanted, &a, &items, &n);
        if (r < 0) {
            rc = -r;
            goto out;
        }
        rc = r ? r : rc;
        if (!strcmp(fmt, "yaml") || !strcmp(fmt, "json")) {
            /* One document stream / List over every kind. */
            octl_stored *m = cm_arena_alloc(&a, (nall + n + 1) * sizeof *m);
            if (!m) {
                rc = octl_errorf("out of memory");
                goto out;
            }
            if (nall)
                memcpy(m, all, nall * sizeof *m);
            if (n)
                memcpy(m + nall, items, n * sizeof *m);
            all = m;
            nall += n;
            continue;
        }
        nall += n;
        char tn[96];
        octl_type_name(kinds[ki], tn, sizeof tn);
        if (!strcmp(fmt, "name")) {
            for (size_t i = 0; i < n; i++)
                printf("%s/%s\n", tn, obj_object_meta(items[i].obj)->name);
        } else if (n) {
            /* Several kinds: kubectl separates the tables by a blank line
             * and prefixes names with their type. */
            if (tables_printed)
                putchar('\n');
            octl_table t = {.a = &a};
            octl_table_head(&t, kinds[ki]->k, &g);
            for (size_t i = 0; i < n; i++) {
                if (nk > 1) {
                    Skiffpb__V1__ObjectMeta *md = obj_object_meta(items[i].obj);
                    size_t l = strlen(tn) + strlen(md->name) + 2;
                    char *nm = cm_arena_alloc(&a, l);
                    if (!nm) {
                        rc = octl_errorf("out of memory");
                        goto out;
                    }
                    snprintf(nm, l, "%s/%s", tn, md->name);
                    md->name = nm;
                }
                if (octl_table_add(&t, items[i].obj, &g)) {
                    rc = octl_errorf("out of memory");
                    goto out;
                }
            }
            octl_table_print(&t, !g.no_headers);
            tables_printed = true;
        }
    }
    if (!nall && !nwanted) {
        fflush(stdout);
        if (kinds[0]->k->namespaced && !g.all_ns)
            fprintf(stderr, "No resources found in %s namespace.\n", ns);
        else
            fprintf(stderr, "No resources found\n");
        goto out;
    }
    if (!strcmp(fmt, "yaml") || !strcmp(fmt, "json")) {
        int r = print_objects(all, nall, fmt, nwanted == 1);
        rc = r ? r : rc;
    }
out:
    free(pos);
    cm_arena_free(&a);
    return rc;
}

/* Whether w names a kind as get's first argument: "pods", "deploy/web",
 * "deploy,pods"; never a word starting with "/" (a key). */
static bool is_kind_word(const char *w)
{
    char word[128];
    snprintf(word, sizeof word, "%s", w);
    char *slash = strchr(word, '/');
    if (slash && slash != word)
        *slash = '\0';
    char *comma = strchr(word, ',');
    if (comma)
        *comma = '\0';
    return word[0] != '/' && octl_kind_lookup(word);
}

bool octl_get_is_object(int argc, char *const *argv)
{
    /* The first word that is not a flag decides.  Flags that take a value
     * in either command are skipped with it; `--flag=value` is one word.
     * `-w` is kubectl's watch (no value) when a kind follows it, else
     * etcdctl's write-out with its format. */
    static const char *const valued[] = {"-n",
                                         "--namespace",
                                         "-l",
                                         "--selector",
                                         "-o",
                                         "--output",
                                         "--endpoints",
                                         "--cacert",
                                         "--cert",
                                         "--key",
                                         "--dial-timeout",
                                         "--command-timeout",
                                         "--token",
                                         "--write-out",
                                         "--consistency",
                                         "--order",
                                         "--sort-by",
                                         "--limit",
                                         "--rev",
                                         "--min-mod-revision",
                                         "--max-mod-revision",
                                         "--min-create-revision",
                                         "--max-create-revision",
                                         NULL};
    for (int i = 0; i < argc; i++) {
        const char *w = argv[i];
        if (!strcmp(w, "--"))
            break;
        if (!strcmp(w, "-w")) {
            if (i + 1 < argc && !is_kind_word(argv[i + 1]))
                i++;
            continue;
        }
        if (w[0] == '-' && w[1]) {
            for (const char *const *v = valued; *v; v++)
                if (!strcmp(w, *v)) {
                    i++;
                    break;
                }
            continue;
        }
        return is_kind_word(w);
    }
    return false;
}

int cmd_obj_get_or_kv(ctl *x, int argc, char **argv)
{
    if (octl_get_is_object(argc, argv))
        return obj_get(x, argc, argv);
    return cmd_get(x, argc, argv);
}
