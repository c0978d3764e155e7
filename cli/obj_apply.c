/*
 * `apply`, `create`, `replace` and `delete`: kubectl's write commands.
 *
 * Every manifest named by -f is decoded before anything is written, so a
 * file with an unknown field, a wrong type or a bad quantity writes
 * nothing (the error names file:line:path).  Objects are then handled one
 * by one in file order; a refused object is reported and the others still
 * go through, and the exit code is 1 when any failed (kubectl's rule).
 *
 * apply has no last-applied annotation (kubectl's three-way merge): it
 * overlays what the file says on the stored object: labels and
 * annotations key by key (keys only on the server stay), and every
 * top-level field but metadata and status (spec, or rules/subjects/...
 * for kinds without spec) replaced by the file's.  Server-set metadata and
 * status stay as stored (obj_admit keeps them).  A lost compare re-reads
 * and merges again, up to OCTL_RETRIES times.
 */
#include "obj_int.h"

#include "delete.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

enum mode { MODE_APPLY, MODE_CREATE, MODE_REPLACE };

typedef struct wopts {
    const char *file;
    const char *ns;
    const char *cascade;
    const char *selector;
    const char *grace;
    int all, force, now, wait, ignore_not_found;
} wopts;

/* Same storage move as admit.c's: f's value, presence or count. */
static void copy_field(ProtobufCMessage *dst, const ProtobufCMessage *src,
                       const ProtobufCFieldDescriptor *f)
{
    size_t sz;
    if (f->label == PROTOBUF_C_LABEL_REPEATED) {
        *(size_t *)((char *)dst + f->quantifier_offset) =
            *(size_t *)((char *)src + f->quantifier_offset);
        sz = sizeof(void *);
    } else if (f->type == PROTOBUF_C_TYPE_STRING ||
               f->type == PROTOBUF_C_TYPE_MESSAGE) {
        sz = sizeof(void *);
    } else {
        /* Scalars: their presence flag, then their value. */
        *(protobuf_c_boolean *)((char *)dst + f->quantifier_offset) =
            *(const protobuf_c_boolean *)((const char *)src +
                                          f->quantifier_offset);
        sz = f->type == PROTOBUF_C_TYPE_BOOL ? sizeof(protobuf_c_boolean)
             : (f->type == PROTOBUF_C_TYPE_INT64 ||
                f->type == PROTOBUF_C_TYPE_UINT64 ||
                f->type == PROTOBUF_C_TYPE_SINT64 ||
                f->type == PROTOBUF_C_TYPE_FIXED64 ||
                f->type == PROTOBUF_C_TYPE_SFIXED64 ||
                f->type == PROTOBUF_C_TYPE_DOUBLE)
                 ? 8
                 : 4;
    }
    memcpy((char *)dst + f->offset, (const char *)src + f->offset, sz);
}

/* Overlays the file's object on the stored one (see the top comment). */
static int merge(obj_object *stored, const obj_object *file, cm_arena *a)
{
    ProtobufCMessage *s = obj_object_msg(stored);
    const ProtobufCMessage *f = obj_object_msg(file);
    const ProtobufCMessageDescriptor *d = s->descriptor;
    for (unsigned i = 0; i < d->n_fields; i++) {
        const ProtobufCFieldDescriptor *fd = &d->fields[i];
        if (!strcmp(fd->name, "metadata") || !strcmp(fd->name, "status"))
            continue;
        copy_field(s, f, fd);
    }
    Skiffpb__V1__ObjectMeta *sm = obj_object_meta(stored);
    const Skiffpb__V1__ObjectMeta *fm = obj_object_meta(file);
    for (size_t i = 0; i < fm->n_labels; i++)
        if (octl_map_set(a, &skiffpb__v1__object_meta__labels_entry__descriptor,
                         &sm->n_labels, (void ***)&sm->labels,
                         fm->labels[i]->key, fm->labels[i]->value))
            return -ENOMEM;
    for (size_t i = 0; i < fm->n_annotations; i++)
        if (octl_map_set(
                a, &skiffpb__v1__object_meta__annotations_entry__descriptor,
                &sm->n_annotations, (void ***)&sm->annotations,
                fm->annotations[i]->key, fm->annotations[i]->value))
            return -ENOMEM;
    if (fm->n_owner_references) {
        sm->n_owner_references = fm->n_owner_references;
        sm->owner_references = fm->owner_references;
    }
    if (fm->n_finalizers) {
        sm->n_finalizers = fm->n_finalizers;
        sm->finalizers = fm->finalizers;
    }
    return 0;
}

/* Puts the object in the namespace of -n (or "default"), refusing a
 * file namespace that contradicts -n as kubectl does.  0 or 1. */
static int place(obj_object *o, const char *ns_flag, cm_arena *a)
{
    const obj_kind *k = obj_kind_get(o);
    Skiffpb__V1__ObjectMeta *md = obj_object_meta(o);
    if (!k->namespaced)
        return 0;
    if (md->namespace_ && md->namespace_[0]) {
        if (ns_flag && strcmp(ns_flag, md->namespace_))
            return octl_errorf("the namespace from the provided object \"%s\" "
                               "does not match the namespace \"%s\". You must "
                               "pass '--namespace=%s' to perform this "
                               "operation.",
                               md->namespace_, ns_flag, md->namespace_);
        return 0;
    }
    md->namespace_ = octl_strdup(a, ns_flag ? ns_flag : "default");
    return md->namespace_ ? 0 : octl_errorf("out of memory");
}

/* Writes one object from file `fname`.  Returns 0 or 1 (printed). */
static int write_one(ctl *x, enum mode mode, obj_object *fo, const char *fname,
                     cm_arena *a)
{
    const octl_kind *k = octl_kind_of(obj_kind_get(fo));
    Skiffpb__V1__ObjectMeta *fm = obj_object_meta(fo);
    char key[OCTL_KEY_MAX], tn[96], rn[96];
    octl_type_name(k, tn, sizeof tn);
    octl_resource_name(k, rn, sizeof rn);
    if (!fm || !fm->name || !fm->name[0])
        return octl_errorf("error when %s \"%s\": resource name may not be "
                           "empty",
                           mode == MODE_CREATE ? "creating" : "applying",
                           fname);
    if (obj_object_key(fo, key, sizeof key))
        return octl_errorf("name too long: %s", fm->name);
    /* A -o yaml output applied again carries the resourceVersion it was
     * read at: apply is not conditional on it (kubectl drops it too). */
    char *file_rv = fm->resource_version;
    if (mode != MODE_REPLACE)
        fm->resource_version = NULL;
    for (int attempt = 0; attempt < OCTL_RETRIES; attempt++) {
        octl_stored st;
        int rc = octl_read(x, key, a, &st);
        if (rc != 0 && rc != 1)
            return rc;
        obj_admit_res res;
        const char *doing;
        if (rc == 1) {
            if (mode == MODE_REPLACE) {
                fflush(stdout);
                fprintf(stderr,
                        "Error from server (NotFound): error when replacing "
                        "\"%s\": %s \"%s\" not found\n",
                        fname, rn, fm->name);
                return CTL_EXIT_ERROR;
            }
            doing = "creating";
            rc = octl_write(x, key, fo, NULL, a, &res);
        } else {
            if (mode == MODE_CREATE) {
                fflush(stdout);
                fprintf(stderr,
                        "Error from server (AlreadyExists): error when "
                        "creating \"%s\": %s \"%s\" already exists\n",
                        fname, rn, fm->name);
                return CTL_EXIT_ERROR;
            }
            obj_object *w = fo;
            if (mode == MODE_APPLY) {
                if (merge(st.obj, fo, a))
                    return octl_errorf("out of memory");
                w = st.obj;
            } else {
                fm->resource_version = file_rv;
            }
            doing = mode == MODE_APPLY ? "applying" : "replacing";
            rc = octl_write(x, key, w, &st, a, &res);
        }
        if (rc == OCTL_ECONFLICT) {
            octl_backoff(attempt);
            continue;
        }
        if (rc == OCTL_EREFUSED) {
            octl_print_refusal(&res, doing, fname);
            return CTL_EXIT_ERROR;
        }
        if (rc)
            return rc;
        const char *what = !strcmp(doing, "creating") ? "created"
                           : mode == MODE_REPLACE     ? "replaced"
                           : res.unchanged            ? "unchanged"
                                                      : "configured";
        printf("%s/%s %s\n", tn, fm->name, what);
        return 0;
    }
    fflush(stdout);
    fprintf(stderr,
            "Error from server (Conflict): error when applying \"%s\": "
            "Operation cannot be fulfilled on %s \"%s\": the object has been "
            "modified; please apply your changes to the latest version and "
            "try again\n",
            fname, rn, fm->name);
    return CTL_EXIT_ERROR;
}

static int run_write(ctl *x, enum mode mode, int argc, char **argv)
{
    wopts o = {0};
    const char *out = NULL;
    int validate = 1;
    ctl_flag flags[] = {
        {"filename", 'f', CTL_STR, &o.file},
        {"namespace", 'n', CTL_STR, &o.ns},
        {"output", 'o', CTL_STR, &out},
        {"validate", 0, CTL_BOOL, &validate},
        {"force", 0, CTL_BOOL, &o.force},
        {NULL, 0, 0, NULL},
    };
    char **pos = calloc((size_t)argc + 1, sizeof *pos);
    if (!pos)
        return octl_errorf("out of memory");
    int npos = 0, rc = ctl_flags_parse(x, argc, argv, flags, pos, &npos);
    free(pos);
    if (rc)
        return rc;
    if (!o.file)
        return octl_errorf("must specify one of -f and -k");
    cm_arena a = {0};
    octl_file *files;
    size_t nf;
    if ((rc = octl_load(o.file, &a, &files, &nf))) {
        cm_arena_free(&a);
        return rc;
    }
    int failed = 0;
    for (size_t i = 0; i < nf; i++) {
        for (size_t j = 0; j < files[i].n; j++) {
            obj_object *obj = files[i].objs[j];
            if (place(obj, o.ns, &a) ||
                write_one(x, mode, obj, files[i].name, &a))
                failed = 1;
        }
    }
    cm_arena_free(&a);
    return failed ? CTL_EXIT_ERROR : 0;
}

int cmd_obj_apply(ctl *x, int argc, char **argv)
{
    return run_write(x, MODE_APPLY, argc, argv);
}

int cmd_obj_create(ctl *x, int argc, char **argv)
{
    return run_write(x, MODE_CREATE, argc, argv);
}

int cmd_obj_replace(ctl *x, int argc, char **argv)
{
    return run_write(x, MODE_REPLACE, argc, argv);
}

/* ---- delete -------------------------------------------------------------- */

/* Deletes one object with the propagation policy (controllers/delete.h:
 * the same compare-and-swap deletion the garbage collector uses); prints
 * kubectl's line.  0 or 1. */
static int delete_one(ctl *x, const octl_kind *k, const char *ns,
                      const char *name, const char *fname, int ignore_missing,
                      ctl_propagation prop)
{
    char key[OCTL_KEY_MAX], tn[96], rn[96], msg[OBJ_ADMIT_MSG_MAX + 128];
    octl_key(k->k, ns, name, key, sizeof key);
    skiff_client *c = ctl_client(x);
    ctl_delete_opts opts = {.propagation = prop, .retries = OCTL_RETRIES};
    ctl_delete_outcome out;
    int rc = ctl_delete_object(c, key, &opts, &out, msg, sizeof msg);
    if (rc == -EAGAIN) {
        fflush(stdout);
        fprintf(stderr,
                "Error from server (Conflict): Operation cannot be fulfilled "
                "on %s \"%s\": the object has been modified; please apply "
                "your changes to the latest version and try again\n",
                octl_resource_name(k, rn, sizeof rn), name);
        return CTL_EXIT_ERROR;
    }
    if (rc == SKIFF_EINVALID_ARGUMENT || rc == -EINVAL) {
        fflush(stdout);
        fprintf(stderr, "Error from server: %s\n", msg);
        return CTL_EXIT_ERROR;
    }
    if (rc)
        return ctl_fail(x, c, rc, NULL);
    if (out == CTL_DELETE_ABSENT) {
        if (ignore_missing)
            return 0;
        fflush(stdout);
        fprintf(
            stderr, "Error from server (NotFound): %s%s%s%s \"%s\" not found\n",
            fname ? "error when deleting \"" : "", fname ? fname : "",
            fname ? "\": " : "", octl_resource_name(k, rn, sizeof rn), name);
        return CTL_EXIT_ERROR;
    }
    printf("%s \"%s\" deleted\n", octl_type_name(k, tn, sizeof tn), name);
    return 0;
}

int cmd_obj_delete(ctl *x, int argc, char **argv)
{
    wopts o = {0};
    int all_ns = 0;
    ctl_flag flags[] = {
        {"filename", 'f', CTL_STR, &o.file},
        {"namespace", 'n', CTL_STR, &o.ns},
        {"selector", 'l', CTL_STR, &o.selector},
        {"cascade", 0, CTL_STR, &o.cascade},
        {"grace-period", 0, CTL_STR, &o.grace},
        {"all", 0, CTL_BOOL, &o.all},
        {"all-namespaces", 'A', CTL_BOOL, &all_ns},
        {"force", 0, CTL_BOOL, &o.force},
        {"now", 0, CTL_BOOL, &o.now},
        {"wait", 0, CTL_BOOL, &o.wait},
        {"ignore-not-found", 0, CTL_BOOL, &o.ignore_not_found},
        {NULL, 0, 0, NULL},
    };
    char **pos = calloc((size_t)argc + 1, sizeof *pos);
    if (!pos)
        return octl_errorf("out of memory");
    int npos = 0, rc = ctl_flags_parse(x, argc, argv, flags, pos, &npos);
    if (rc) {
        free(pos);
        return rc;
    }
    /* kubectl's --cascade: background (default), foreground, orphan, and
     * the deprecated true/false (background/orphan). */
    ctl_propagation prop = CTL_PROPAGATION_BACKGROUND;
    if (o.cascade && ctl_propagation_parse(o.cascade, &prop)) {
        free(pos);
        return octl_errorf(
            "invalid cascade value (%s). Must be \"background\", "
            "\"foreground\", or \"orphan\"",
            o.cascade);
    }
    const char *ns = o.ns ? o.ns : "default";
    int failed = 0;
    cm_arena a = {0};
    if (o.file) {
        octl_file *files;
        size_t nf;
        if ((rc = octl_load(o.file, &a, &files, &nf)))
            goto out;
        for (size_t i = 0; i < nf; i++)
            for (size_t j = 0; j < files[i].n; j++) {
                obj_object *obj = files[i].objs[j];
                if (place(obj, o.ns, &a)) {
                    failed = 1;
                    continue;
                }
                const Skiffpb__V1__ObjectMeta *md = obj_object_meta(obj);
                if (delete_one(x, octl_kind_of(obj_kind_get(obj)),
                               md->namespace_, md->name ? md->name : "",
                               files[i].name, o.ignore_not_found, prop))
                    failed = 1;
            }
        goto out;
    }
    if (npos < 1) {
        rc = octl_errorf("You must provide one or more resources by argument "
                         "or filename.");
        goto out;
    }
    /* KIND NAME..., KIND/NAME..., or KIND with -l / --all. */
    const octl_kind *k = NULL;
    char *slash = strchr(pos[0], '/');
    if (slash) {
        for (int i = 0; i < npos; i++) {
            char *s = strchr(pos[i], '/');
            if (!s) {
                rc = octl_errorf("there is no need to specify a resource "
                                 "type as a separate argument when passing "
                                 "arguments in resource/name form");
                goto out;
            }
            *s = '\0';
            if (!(k = octl_kind_lookup(pos[i]))) {
                rc = octl_errorf("the server doesn't have a resource type "
                                 "\"%s\"",
                                 pos[i]);
                goto out;
            }
            if (delete_one(x, k, ns, s + 1, NULL, o.ignore_not_found, prop))
                failed = 1;
        }
        goto out;
    }
    if (!(k = octl_kind_lookup(pos[0]))) {
        rc = octl_errorf("the server doesn't have a resource type \"%s\"",
                         pos[0]);
        goto out;
    }
    if (npos > 1) {
        for (int i = 1; i < npos; i++)
            if (delete_one(x, k, ns, pos[i], NULL, o.ignore_not_found, prop))
                failed = 1;
        goto out;
    }
    if (!o.selector && !o.all) {
        rc = octl_errorf("resource(s) were provided, but no name was "
                         "specified");
        goto out;
    }
    octl_stored *items;
    size_t n;
    if ((rc = octl_list(x, k->k, all_ns ? NULL : ns, &a, &items, &n)))
        goto out;
    size_t matched = 0;
    for (size_t i = 0; i < n; i++) {
        const Skiffpb__V1__ObjectMeta *md = obj_object_meta(items[i].obj);
        if (o.selector) {
            int m = octl_selector_match(o.selector, md->n_labels,
                                        (void *const *)md->labels);
            if (m < 0) {
                rc = octl_errorf("unable to parse requirement: %s", o.selector);
                goto out;
            }
            if (!m)
                continue;
        }
        matched++;
        if (delete_one(x, k, md->namespace_, md->name, NULL, 1, prop))
            failed = 1;
    }
    if (!matched) {
        fflush(stdout);
        if (k->k->namespaced && !all_ns)
            fprintf(stderr, "No resources found in %s namespace.\n", ns);
        else
            fprintf(stderr, "No resources found\n");
    }
out:
    free(pos);
    cm_arena_free(&a);
    if (rc)
        return rc;
    return failed ? CTL_EXIT_ERROR : 0;
}
