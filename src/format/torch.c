/*
 * PyTorch file readers: the torch.save zip format (torch >= 1.6), TorchScript
 * archives (torch.jit.save) and the legacy format
 * (_use_new_zipfile_serialization=False). Each runs the safe pickle reader
 * (pickle.c) over the object pickle, resolves persistent ids to storages and
 * then walks the object tree to name the tensors.
 *
 * Naming: nested dict keys join with '/', list/tuple items by index, in the
 * order the pickle built them; TorchScript archives give the names
 * model.state_dict() gives (parameters, then buffers, then submodules with
 * "name."), using the __parameters__/__buffers__ lists of each class in the
 * archive's code/ folder.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "format/pickle.h"
#include "format/zip.h"

/* Most values one naming walk may visit: pickles share values through the
 * memo, so a small file can describe a tree that is exponentially large
 * when walked as a tree. Real checkpoints visit a few per tensor. */
#define WALK_MAX_VISITS (1u << 24)
/* Most bytes of one code file read whole (TorchScript class definitions). */
#define CODE_MEMBER_MAX ((size_t)16 << 20)

/* ---- storages by key ------------------------------------------------------- */
typedef struct skey {
    const char *key;      /* arena */
    vp_value *val;        /* storage marker */
    uint64_t numel;
    size_t elsize;
    long root;            /* legacy view: index of its root entry, else -1 */
    uint64_t view_offset; /* legacy view: offset into the root, in elements */
    bool resolved;        /* legacy root: data found in the file */
} skey;

typedef struct torch_ctx {
    vp_source *src;
    const char *prefix;   /* zip: folder of data.pkl including '/', "" if none */
    skey *keys;
    size_t nkeys, capkeys;
    uint32_t *hash;       /* key index + 1 */
    size_t hash_cap;
} torch_ctx;

static uint64_t str_hash(const char *s)
{
    uint64_t h = 0xcbf29ce484222325ull;
    for (; *s; s++) { h ^= (uint8_t)*s; h *= 0x100000001b3ull; }
    return h;
}

static long key_find(const torch_ctx *c, const char *key)
{
    if (!c->hash_cap) return -1;
    for (size_t s = str_hash(key) & (c->hash_cap - 1);; s = (s + 1) & (c->hash_cap - 1)) {
        uint32_t e = c->hash[s];
        if (!e) return -1;
        if (!strcmp(c->keys[e - 1].key, key)) return (long)(e - 1);
    }
}

static void hash_insert(uint32_t *hash, size_t cap, const char *key, size_t idx)
{
    size_t s = str_hash(key) & (cap - 1);
    while (hash[s]) s = (s + 1) & (cap - 1);
    hash[s] = (uint32_t)idx + 1;
}

/* Append an entry (its key already in the arena); returns its index or -1. */
static long key_add(torch_ctx *c, const skey *k)
{
    vp_source *src = c->src;
    if (c->nkeys >= VP_MAX_TENSORS) { vp__err(src, VP_ERR_LIMIT, "more than %u storages", VP_MAX_TENSORS); return -1; }
    if (c->nkeys == c->capkeys) {
        size_t cap = c->capkeys ? c->capkeys * 2 : 64;
        skey *p = vp__realloc(c->keys, cap * sizeof *p);
        if (!p) { vp__err(src, VP_ERR_NOMEM, "out of memory"); return -1; }
        c->keys = p;
        c->capkeys = cap;
    }
    if ((c->nkeys + 1) * 2 > c->hash_cap) {
        size_t cap = c->hash_cap ? c->hash_cap * 2 : 128;
        uint32_t *h = vp__calloc(cap, sizeof *h);
        if (!h) { vp__err(src, VP_ERR_NOMEM, "out of memory"); return -1; }
        for (size_t i = 0; i < c->nkeys; i++) hash_insert(h, cap, c->keys[i].key, i);
        vp__free(c->hash);
        c->hash = h;
        c->hash_cap = cap;
    }
    c->keys[c->nkeys] = *k;
    hash_insert(c->hash, c->hash_cap, k->key, c->nkeys);
    return (long)c->nkeys++;
}

static void ctx_free(torch_ctx *c)
{
    vp__free(c->keys);
    vp__free(c->hash);
}

/* The storage key of a persistent id as text (torch writes str; old files may hold bytes or an int). */
static int pid_key(vp_source *src, const vp_value *v, char *buf, size_t len)
{
    if ((vp_value_kind(v) == VP_V_STR || vp_value_kind(v) == VP_V_BYTES) && vp_value_len(v) < len && !memchr(v->text, 0, v->len)) {
        memcpy(buf, v->text, v->len + 1);
        return VP_OK;
    }
    if (vp_value_kind(v) == VP_V_INT && !vp_value_str(v)) {
        snprintf(buf, len, "%lld", (long long)vp_value_int(v));
        return VP_OK;
    }
    return vp__err(src, VP_ERR_FORMAT, "storage key is a %s, not a short string", vp__value_kind_name(v));
}

/* Common checks of ('storage', storage_type, key, location, numel, ...). */
static int pid_storage(vp_source *src, const vp_value *pid, size_t want_len, vp_dtype *dt, char *key, size_t keylen, uint64_t *numel)
{
    if (vp_value_kind(pid) != VP_V_TUPLE)
        return vp__err(src, VP_ERR_FORMAT, "persistent id is a %s, not a tuple", vp__value_kind_name(pid));
    if (vp_value_len(pid) < 1)
        return vp__err(src, VP_ERR_FORMAT, "persistent id is an empty tuple (a storage's is ('storage', type, key, location, numel))");
    if (!vp__value_is_str(pid->items[0], "storage"))
        return vp__err(src, VP_ERR_UNSUPPORTED, "persistent id of a kind other than 'storage' (%s)",
                       vp_value_kind(pid->items[0]) == VP_V_STR ? pid->items[0]->text : vp__value_kind_name(pid->items[0]));
    if (pid->len != want_len)
        return vp__err(src, VP_ERR_FORMAT, "storage persistent id with %zu fields (expected %zu)", pid->len, want_len);
    if (!vp__value_storage_type(pid->items[1], dt))
        return vp__err(src, VP_ERR_FORMAT, "storage persistent id names a %s '%s', not a storage type", vp__value_kind_name(pid->items[1]),
                       vp_value_str(pid->items[1]) ? vp_value_str(pid->items[1]) : "?");
    if ((unsigned)*dt >= VP_DTYPE_COUNT)
        return vp__err(src, VP_ERR_UNSUPPORTED, "storage type '%s' (complex or quantized) is not supported", pid->items[1]->text);
    int rc = pid_key(src, pid->items[2], key, keylen);
    if (rc) return rc;
    const vp_value *n = pid->items[4];
    if (vp_value_kind(n) != VP_V_INT || vp_value_str(n) || vp_value_int(n) < 0)
        return vp__err(src, VP_ERR_FORMAT, "storage '%s': element count is not a non-negative integer", key);
    *numel = (uint64_t)vp_value_int(n);
    return VP_OK;
}

/* ---- naming walk --------------------------------------------------------- */
typedef struct walker {
    vp_source *src;
    char name[VP_MAX_NAME + 2];
    size_t len;            /* may exceed VP_MAX_NAME: then the name is too long */
    unsigned long visits;
} walker;

static void name_add(walker *w, const char *s, size_t n)
{
    size_t room = sizeof w->name - 1;
    if (w->len < room) {
        size_t k = n < room - w->len ? n : room - w->len;
        memcpy(w->name + w->len, s, k);
        w->name[w->len + k] = 0;
    }
    w->len += n;
    w->visits += n >> 8;   /* long keys count against the walk's bound too */
}

static void name_cut(walker *w, size_t len)
{
    w->len = len;
    if (len < sizeof w->name) w->name[len] = 0;
}

/* One path component for a dict key. */
static void key_text(const vp_value *k, char *buf, size_t len, const char **s, size_t *n)
{
    switch (vp_value_kind(k)) {
    case VP_V_STR: case VP_V_BYTES: *s = k->text; *n = k->len; return;
    case VP_V_INT:
        if (vp_value_str(k)) { *s = vp_value_str(k); *n = strlen(*s); return; }
        snprintf(buf, len, "%lld", (long long)vp_value_int(k));
        break;
    case VP_V_BOOL: snprintf(buf, len, "%s", vp_value_int(k) ? "True" : "False"); break;
    case VP_V_NONE: snprintf(buf, len, "None"); break;
    case VP_V_FLOAT: snprintf(buf, len, "%.17g", vp_value_float(k)); break;
    default: snprintf(buf, len, "<%s>", vp__value_kind_name(k)); break;
    }
    *s = buf;
    *n = strlen(buf);
}

static int add_tensor(walker *w, vp_value *v)
{
    vp_source *src = w->src;
    vp_tensor_rec *t = v->u.t;
    const char *name = w->len ? w->name : "tensor";   /* torch.save(tensor) alone */
    if (w->len > VP_MAX_NAME)
        return vp__err(src, VP_ERR_LIMIT, "tensor name longer than %d bytes ('%.60s...')", VP_MAX_NAME, w->name);
    int rc = vp__add_tensor(src, name, t->dtype, t->ndim, t->shape, t->strides, t->offset, (long)t->storage->u.i);
    if (rc) return rc;
    if (t->index < 0) t->index = (long)src->nall - 1;
    return VP_OK;
}

/*
 * Walk v: name tensors (when `naming`) and check that the tree is finite.
 * A pickle can make a container hold itself (through the memo) or nest by
 * mutation after the fact; a depth bound catches both, and the visit bound
 * catches trees made exponential by sharing.
 */
static int walk(walker *w, vp_value *v, int depth, bool naming)
{
    if (!v) return VP_OK;
    if (depth > VP_PICKLE_MAX_DEPTH + 1)
        return vp__err(w->src, VP_ERR_LIMIT, "pickled objects nest deeper than %d levels or contain themselves (VP_PICKLE_MAX_DEPTH)",
                       VP_PICKLE_MAX_DEPTH);
    if (++w->visits > WALK_MAX_VISITS)
        return vp__err(w->src, VP_ERR_LIMIT, "pickled object tree has more than %u nodes when walked (shared references)", WALK_MAX_VISITS);
    size_t keep = w->len;
    char buf[64];
    int rc = VP_OK;
    switch (v->kind) {
    case VP_V_TENSOR:
        if (naming) rc = add_tensor(w, v);
        if (!rc) rc = walk(w, v->state, depth + 1, false);
        return rc;
    case VP_V_DICT:
        for (size_t i = 0; i < v->len && !rc; i++) {
            const char *s;
            size_t n;
            rc = walk(w, v->items[2 * i], depth + 1, false);
            if (rc) break;
            key_text(v->items[2 * i], buf, sizeof buf, &s, &n);
            if (w->len) name_add(w, "/", 1);
            name_add(w, s, n);
            rc = walk(w, v->items[2 * i + 1], depth + 1, naming);
            name_cut(w, keep);
        }
        if (!rc) rc = walk(w, v->state, depth + 1, false);   /* OrderedDict attributes */
        return rc;
    case VP_V_TUPLE: case VP_V_LIST: case VP_V_SET:
        for (size_t i = 0; i < v->len && !rc; i++) {
            snprintf(buf, sizeof buf, "%s%zu", w->len ? "/" : "", i);
            name_add(w, buf, strlen(buf));
            rc = walk(w, v->items[i], depth + 1, naming);
            name_cut(w, keep);
        }
        return rc;
    case VP_V_OBJECT:   /* an inert record: tensors in its arguments or state are named below it */
        rc = walk(w, v->args, depth + 1, naming);
        if (!rc) rc = walk(w, v->state, depth + 1, naming);
        return rc;
    case VP_V_OTHER:
        return walk(w, v->args, depth + 1, false);
    default:
        return VP_OK;
    }
}

/* ---- TorchScript: state_dict() names ----------------------------------------- */
/* The parameter and buffer lists of one class, from its code file. */
typedef struct ts_class {
    const char *text;    /* the code file (owned by the cache) */
    size_t len;
    const char *params, *buffers;   /* the text after "__parameters__ = [" etc, or NULL */
    bool found;
} ts_class;

typedef struct ts_file { char *path; const uint8_t *data; size_t len; uint8_t *owned; bool missing; } ts_file;

typedef struct ts_cached { const char *qual; ts_class k; } ts_cached;

typedef struct ts_ctx {
    walker w;
    torch_ctx *c;
    ts_file *files;
    size_t nfiles, capfiles;
    ts_cached *classes;      /* parsed once per class, not per module object */
    size_t nclasses, capclasses;
} ts_ctx;

static void ts_free(ts_ctx *t)
{
    for (size_t i = 0; i < t->nfiles; i++) { vp__free(t->files[i].path); vp__free(t->files[i].owned); }
    vp__free(t->files);
    vp__free(t->classes);
}

/* The code file of module `mod` ("__torch__.a.b" -> "<prefix>code/__torch__/a/b.py"), cached. */
static int ts_file_get(ts_ctx *t, const char *mod, size_t modlen, const ts_file **out)
{
    vp_source *src = t->c->src;
    vp_buf path = {0};
    vp__buf_puts(&path, t->c->prefix);
    vp__buf_puts(&path, "code/");
    for (size_t i = 0; i < modlen; i++) vp__buf_add(&path, mod[i] == '.' ? "/" : &mod[i], 1);
    vp__buf_puts(&path, ".py");
    if (path.oom) { vp__buf_free(&path); return vp__err(src, VP_ERR_NOMEM, "out of memory"); }
    for (size_t i = 0; i < t->nfiles; i++)
        if (!strcmp(t->files[i].path, path.p)) { vp__buf_free(&path); *out = &t->files[i]; return VP_OK; }
    if (t->nfiles == t->capfiles) {
        size_t cap = t->capfiles ? t->capfiles * 2 : 16;
        ts_file *p = vp__realloc(t->files, cap * sizeof *p);
        if (!p) { vp__buf_free(&path); return vp__err(src, VP_ERR_NOMEM, "out of memory"); }
        t->files = p;
        t->capfiles = cap;
    }
    ts_file *f = &t->files[t->nfiles++];
    memset(f, 0, sizeof *f);
    f->path = path.p;
    long idx = vp__zip_find(src, path.p);
    if (idx < 0) { f->missing = true; *out = f; return VP_OK; }
    int rc = vp__zip_read(src, idx, &f->data, &f->len, &f->owned, CODE_MEMBER_MAX);
    if (rc) return rc;
    *out = f;
    return VP_OK;
}

static bool starts_line(const char *p, size_t left, const char *lit)
{
    size_t n = strlen(lit);
    return left >= n && !memcmp(p, lit, n);
}

/* Find "class NAME(" at the start of a line and, in its body (the indented
 * lines that follow), the __parameters__ and __buffers__ lists. */
static void ts_class_parse(const ts_file *f, const char *cls, size_t clslen, ts_class *out)
{
    memset(out, 0, sizeof *out);
    const char *s = (const char *)f->data, *end = s + f->len;
    for (const char *line = s; line < end;) {
        const char *nl = memchr(line, '\n', (size_t)(end - line));
        const char *next = nl ? nl + 1 : end;
        size_t left = (size_t)(end - line);
        if (starts_line(line, left, "class ") && left > 6 + clslen && !memcmp(line + 6, cls, clslen) && line[6 + clslen] == '(') {
            out->found = true;
            for (const char *b = next; b < end;) {
                const char *bnl = memchr(b, '\n', (size_t)(end - b));
                const char *bnext = bnl ? bnl + 1 : end;
                if (b < end && *b != ' ' && *b != '\t' && *b != '\n') break;   /* end of the class body */
                const char *p = b;
                while (p < bnext && *p == ' ') p++;
                if (starts_line(p, (size_t)(end - p), "__parameters__ = [")) out->params = p + 18;
                else if (starts_line(p, (size_t)(end - p), "__buffers__ = [")) out->buffers = p + 15;
                b = bnext;
            }
            out->text = s;
            out->len = f->len;
            return;
        }
        line = next;
    }
}

/* Whether the quoted list starting at `list` (after '[') holds "name". */
static bool ts_list_has(const ts_class *k, const char *list, const char *name, size_t n)
{
    if (!list) return false;
    const char *end = k->text + k->len;
    for (const char *p = list; p < end && *p != ']' && *p != '\n';) {
        if (*p != '"') { p++; continue; }
        const char *q = memchr(p + 1, '"', (size_t)(end - p - 1));
        if (!q) return false;
        if ((size_t)(q - p - 1) == n && !memcmp(p + 1, name, n)) return true;
        p = q + 1;
    }
    return false;
}

/* The class of module objects named `qual` ("__torch__.a.b.C": class C in
 * code/__torch__/a/b.py), parsed once. */
static int ts_class_get(ts_ctx *t, const char *qual, ts_class *out)
{
    for (size_t i = 0; i < t->nclasses; i++)
        if (!strcmp(t->classes[i].qual, qual)) { *out = t->classes[i].k; return VP_OK; }
    memset(out, 0, sizeof *out);
    const char *dot = strrchr(qual, '.');
    if (dot && dot > qual) {
        const ts_file *f = NULL;
        int rc = ts_file_get(t, qual, (size_t)(dot - qual), &f);
        if (rc) return rc;
        if (!f->missing) ts_class_parse(f, dot + 1, strlen(dot + 1), out);
    }
    if (t->nclasses == t->capclasses) {
        size_t cap = t->capclasses ? t->capclasses * 2 : 16;
        ts_cached *p = vp__realloc(t->classes, cap * sizeof *p);
        if (!p) return vp__err(t->c->src, VP_ERR_NOMEM, "out of memory");
        t->classes = p;
        t->capclasses = cap;
    }
    t->classes[t->nclasses].qual = qual;
    t->classes[t->nclasses++].k = *out;
    return VP_OK;
}

static bool is_ts_object(const vp_value *v)
{
    return vp_value_kind(v) == VP_V_OBJECT && v->text && !strncmp(v->text, "__torch__.", 10);
}

/* A module object: its state is a dict with a 'training' attribute. */
static bool is_ts_module(const vp_value *v)
{
    return is_ts_object(v) && vp_value_kind(v->state) == VP_V_DICT && vp_value_get(v->state, "training");
}

static int ts_module(ts_ctx *t, const vp_value *obj, int depth)
{
    walker *w = &t->w;
    if (depth > VP_PICKLE_MAX_DEPTH) return vp__err(w->src, VP_ERR_LIMIT, "TorchScript modules nest deeper than %d levels", VP_PICKLE_MAX_DEPTH);
    const vp_value *st = obj->state;
    ts_class k;
    int rc = ts_class_get(t, obj->text, &k);
    if (rc) return rc;
    /* Without the class's lists every tensor attribute counts as a parameter. */
    bool known = k.found && k.params;
    size_t keep = w->len;
    for (int pass = 0; pass < 3; pass++) {   /* parameters, buffers, submodules */
        for (size_t i = 0; i < st->len; i++) {
            vp_value *key = st->items[2 * i], *val = st->items[2 * i + 1];
            if (vp_value_kind(key) != VP_V_STR) continue;
            bool tensor = val->kind == VP_V_TENSOR;
            bool take;
            if (pass == 0) take = tensor && (!known || ts_list_has(&k, k.params, key->text, key->len));
            else if (pass == 1) take = tensor && known && ts_list_has(&k, k.buffers, key->text, key->len);
            else take = is_ts_module(val);
            if (!take) continue;
            name_add(w, key->text, key->len);
            if (pass < 2) {
                rc = add_tensor(w, val);
            } else {
                name_add(w, ".", 1);
                rc = ts_module(t, val, depth + 1);
            }
            name_cut(w, keep);
            if (rc) return rc;
        }
    }
    return VP_OK;
}

/* ---- torch zip and TorchScript ------------------------------------------------- */
static int zip_persid(void *ud, vp_source *src, const vp_value *pid, vp_value **out)
{
    torch_ctx *c = ud;
    vp_dtype dt;
    char key[256];
    uint64_t numel = 0;
    int rc = pid_storage(src, pid, 5, &dt, key, sizeof key, &numel);
    if (rc) return rc;
    long k = key_find(c, key);
    if (k >= 0) { *out = c->keys[k].val; return VP_OK; }

    char member[1400];
    snprintf(member, sizeof member, "%sdata/%s", c->prefix, key);
    long e = vp__zip_find(src, member);
    if (e < 0) return vp__err(src, VP_ERR_FORMAT, "storage record '%s' is missing from the archive", member);
    size_t es = vp_dtype_size(dt);
    uint64_t nbytes;
    if (!vp__mul_u64(numel, es, &nbytes)) return vp__err(src, VP_ERR_FORMAT, "storage '%s': byte size overflows", member);
    uint64_t have = vp__zip_usize(src, e);
    if (have < nbytes)
        return vp__err(src, VP_ERR_FORMAT, "storage record '%s' holds %llu bytes but its %llu elements need %llu",
                       member, (unsigned long long)have, (unsigned long long)numel, (unsigned long long)nbytes);
    vp_storage st;
    memset(&st, 0, sizeof st);
    st.dtype = dt;
    st.nbytes = nbytes;
    st.label = vp__arena_strndup(&src->arena, member, strlen(member));
    if (!st.label) return vp__err(src, VP_ERR_LIMIT, "out of name memory");
    st.member = e;
    st.crc = true;
    if (vp__zip_method(src, e) == VP_ZIP_STORED) {
        st.kind = VP_STORE_FILE;
        st.offset = vp__zip_data_offset(src, e);
    } else {
        st.kind = VP_STORE_DEFLATE;
    }
    long idx = vp__add_storage(src, &st);
    if (idx < 0) return VP_ERR_LIMIT;
    skey sk = {.key = st.label + strlen(c->prefix) + 5, .numel = numel, .elsize = es, .root = -1};
    sk.val = vp__value_new_storage(src, idx, dt, numel, sk.key);
    if (!sk.val) return vp__err(src, VP_ERR_LIMIT, "out of pickle memory");
    if (key_add(c, &sk) < 0) return VP_ERR_NOMEM;
    *out = sk.val;
    return VP_OK;
}

/* A small text member of the archive ("version", "byteorder"), trimmed, or
 * *found = false. */
static int read_text_member(vp_source *src, const char *prefix, const char *name, char *buf, size_t len, bool *found)
{
    char member[1200];
    snprintf(member, sizeof member, "%s%s", prefix, name);
    *found = false;
    long e = vp__zip_find(src, member);
    if (e < 0) return VP_OK;
    const uint8_t *d;
    size_t n;
    uint8_t *owned;
    int rc = vp__zip_read(src, e, &d, &n, &owned, 4096);
    if (rc) return rc;
    while (n && (d[n - 1] == '\n' || d[n - 1] == '\r' || d[n - 1] == ' ')) n--;
    if (n >= len) n = len - 1;
    memcpy(buf, d, n);
    buf[n] = 0;
    vp__free(owned);
    *found = true;
    return VP_OK;
}

static int check_records(vp_source *src, const char *prefix)
{
    char buf[64];
    bool found;
    int rc = read_text_member(src, prefix, "byteorder", buf, sizeof buf, &found);
    if (rc) return rc;
    if (found && !strcmp(buf, "big")) return vp__err(src, VP_ERR_UNSUPPORTED, "big-endian torch archive ('%sbyteorder' says big)", prefix);
    if (found && strcmp(buf, "little")) return vp__err(src, VP_ERR_FORMAT, "'%sbyteorder' holds '%.20s', not 'little' or 'big'", prefix, buf);
    if ((rc = read_text_member(src, prefix, "version", buf, sizeof buf, &found))) return rc;
    if (found) {
        char *e;
        long v = strtol(buf, &e, 10);
        if (!*buf || *e || v < 0) return vp__err(src, VP_ERR_FORMAT, "'%sversion' holds '%.20s', not a number", prefix, buf);
    }
    return VP_OK;
}

static bool has_code_folder(const vp_source *src, const char *prefix)
{
    size_t pl = strlen(prefix);
    for (long i = 0; i < vp__zip_count(src); i++) {
        const char *n = vp__zip_name(src, i);
        if (n && !strncmp(n, prefix, pl) && !strncmp(n + pl, "code/", 5)) return true;
    }
    return false;
}

static int name_tensors(vp_source *src, vp_value *root, torch_ctx *c, bool torchscript)
{
    ts_ctx t;
    memset(&t, 0, sizeof t);
    t.w.src = src;
    t.c = c;
    /* Every file gets the full walk: it checks the tree is finite, which the
     * vp_value_* accessors rely on, and names tensors unless TorchScript. */
    bool ts = torchscript && is_ts_object(root);
    int rc = walk(&t.w, root, 0, !ts);
    if (!rc && ts) {
        if (vp_value_kind(root->state) != VP_V_DICT)
            rc = vp__err(src, VP_ERR_FORMAT, "TorchScript root object '%s' has no attribute dict", root->text);
        else
            rc = ts_module(&t, root, 0);
    }
    ts_free(&t);
    return rc;
}

int vp__open_torch_zip(vp_source *src)
{
    long pk = vp__zip_find_suffix(src, "data.pkl");
    if (pk == -2) return vp__err(src, VP_ERR_FORMAT, "archive holds more than one data.pkl");
    if (pk < 0) return vp__err(src, VP_ERR_FORMAT, "archive holds no data.pkl");
    const char *pkname = vp__zip_name(src, pk);
    size_t plen = strlen(pkname) - 8;   /* keep the folder with its '/' */
    if (plen > 1024) return vp__err(src, VP_ERR_FORMAT, "data.pkl lies in a folder whose name is longer than 1024 bytes");
    torch_ctx c;
    memset(&c, 0, sizeof c);
    c.src = src;
    c.prefix = vp__arena_strndup(&src->arena, pkname, plen);
    if (!c.prefix) return vp__err(src, VP_ERR_NOMEM, "out of memory");

    int rc = check_records(src, c.prefix);
    if (rc) return rc;
    char cname[1200];
    snprintf(cname, sizeof cname, "%sconstants.pkl", c.prefix);
    bool torchscript = vp__zip_find(src, cname) >= 0 || has_code_folder(src, c.prefix);
    src->format = torchscript ? "torchscript" : "torch-zip";

    const uint8_t *data;
    size_t n;
    uint8_t *owned;
    /* A stored data.pkl is read in place; a deflated one is inflated, at most
     * as large as the arena its values must fit in anyway. */
    if ((rc = vp__zip_read(src, pk, &data, &n, &owned, src->arena.cap))) return rc;
    vp_value *root = NULL;
    rc = vp__pickle_load(src, data, n, pkname, zip_persid, &c, &root, NULL);
    vp__free(owned);
    if (!rc) {
        src->root = root;
        rc = name_tensors(src, root, &c, torchscript);
    }
    ctx_free(&c);
    return rc;
}

/* ---- legacy format -------------------------------------------------------------- */
static int legacy_persid(void *ud, vp_source *src, const vp_value *pid, vp_value **out)
{
    torch_ctx *c = ud;
    /* ('module', class, source_file, source) for whole pickled modules:
     * the class stands for itself (the object is then an inert record). */
    if (vp_value_kind(pid) == VP_V_TUPLE && pid->len == 4 && vp__value_is_str(pid->items[0], "module")) {
        *out = pid->items[1];
        return VP_OK;
    }
    vp_dtype dt;
    char key[256];
    uint64_t numel = 0;
    int rc = pid_storage(src, pid, 6, &dt, key, sizeof key, &numel);
    if (rc) return rc;
    size_t es = vp_dtype_size(dt);
    uint64_t nbytes;
    if (!vp__mul_u64(numel, es, &nbytes) || nbytes > src->map.size)
        return vp__err(src, VP_ERR_FORMAT, "storage '%s': %llu elements do not fit in the file", key, (unsigned long long)numel);
    long r = key_find(c, key);
    if (r < 0) {
        vp_storage st;
        memset(&st, 0, sizeof st);
        st.kind = VP_STORE_FILE;   /* offset set once the storage list is read */
        st.dtype = dt;
        st.nbytes = nbytes;
        st.label = vp__arena_strndup(&src->arena, key, strlen(key));
        if (!st.label) return vp__err(src, VP_ERR_LIMIT, "out of name memory");
        long idx = vp__add_storage(src, &st);
        if (idx < 0) return VP_ERR_LIMIT;
        skey sk = {.key = st.label, .numel = numel, .elsize = es, .root = -1};
        if (!(sk.val = vp__value_new_storage(src, idx, dt, numel, st.label))) return vp__err(src, VP_ERR_LIMIT, "out of pickle memory");
        if ((r = key_add(c, &sk)) < 0) return VP_ERR_NOMEM;
    } else if (c->keys[r].root >= 0) {
        return vp__err(src, VP_ERR_FORMAT, "storage key '%s' names both a view and a root storage", key);
    }
    const vp_value *view = pid->items[5];
    if (vp_value_kind(view) == VP_V_NONE) { *out = c->keys[r].val; return VP_OK; }

    /* (view_key, offset, size): a slice of the root storage (torch < 0.4 files) */
    int64_t voff, vsize;
    char vkey[256];
    if (vp_value_kind(view) != VP_V_TUPLE || view->len != 3 || (rc = pid_key(src, view->items[0], vkey, sizeof vkey)))
        return rc ? rc : vp__err(src, VP_ERR_FORMAT, "storage '%s': view metadata is not (key, offset, size)", key);
    voff = vp_value_int(view->items[1]);
    vsize = vp_value_int(view->items[2]);
    if (vp_value_kind(view->items[1]) != VP_V_INT || vp_value_kind(view->items[2]) != VP_V_INT || voff < 0 || vsize < 0 ||
        (uint64_t)voff > c->keys[r].numel || (uint64_t)vsize > c->keys[r].numel - (uint64_t)voff)
        return vp__err(src, VP_ERR_FORMAT, "storage view '%s' lies outside its storage '%s'", vkey, key);
    long v = key_find(c, vkey);
    if (v >= 0) {
        if (c->keys[v].root != r) return vp__err(src, VP_ERR_FORMAT, "storage view key '%s' used for two storages", vkey);
        *out = c->keys[v].val;
        return VP_OK;
    }
    vp_storage st = src->storages[c->keys[r].val->u.i];
    st.nbytes = (uint64_t)vsize * es;
    st.label = vp__arena_strndup(&src->arena, vkey, strlen(vkey));
    if (!st.label) return vp__err(src, VP_ERR_LIMIT, "out of name memory");
    long idx = vp__add_storage(src, &st);
    if (idx < 0) return VP_ERR_LIMIT;
    skey sk = {.key = st.label, .numel = (uint64_t)vsize, .elsize = es, .root = r, .view_offset = (uint64_t)voff};
    if (!(sk.val = vp__value_new_storage(src, idx, dt, (uint64_t)vsize, st.label))) return vp__err(src, VP_ERR_LIMIT, "out of pickle memory");
    if (key_add(c, &sk) < 0) return VP_ERR_NOMEM;
    *out = sk.val;
    return VP_OK;
}

/* After the storage-key list: numel (int64) and the raw bytes of each storage. */
static int legacy_storages(vp_source *src, torch_ctx *c, const vp_value *keys, uint64_t off)
{
    if (vp_value_kind(keys) != VP_V_LIST && vp_value_kind(keys) != VP_V_TUPLE)
        return vp__err(src, VP_ERR_FORMAT, "legacy storage key list is a %s", vp__value_kind_name(keys));
    const uint8_t *b = src->map.base;
    uint64_t size = src->map.size;
    for (size_t i = 0; i < keys->len; i++) {
        char key[256];
        int rc = pid_key(src, keys->items[i], key, sizeof key);
        if (rc) return rc;
        long r = key_find(c, key);
        if (r < 0 || c->keys[r].root >= 0)
            return vp__err(src, VP_ERR_FORMAT, "storage key '%s' is listed but no tensor uses it", key);
        skey *k = &c->keys[r];
        if (k->resolved) return vp__err(src, VP_ERR_FORMAT, "storage key '%s' is listed twice", key);
        if (off > size || size - off < 8) return vp__err(src, VP_ERR_FORMAT, "truncated: storage '%s' has no size at byte %llu", key, (unsigned long long)off);
        uint64_t numel = 0;
        for (int j = 7; j >= 0; j--) numel = (numel << 8) | b[off + (uint64_t)j];
        if (numel != k->numel)
            return vp__err(src, VP_ERR_FORMAT, "storage '%s' holds %llu elements in the file but the pickle says %llu",
                           key, (unsigned long long)numel, (unsigned long long)k->numel);
        vp_storage *st = &src->storages[k->val->u.i];
        off += 8;
        if (st->nbytes > size - off)
            return vp__err(src, VP_ERR_FORMAT, "truncated: storage '%s' needs %llu bytes at byte %llu but the file ends first",
                           key, (unsigned long long)st->nbytes, (unsigned long long)off);
        st->offset = off;
        off += st->nbytes;
        k->resolved = true;
    }
    for (size_t i = 0; i < c->nkeys; i++) {
        skey *k = &c->keys[i];
        if (k->root < 0 && !k->resolved) return vp__err(src, VP_ERR_FORMAT, "storage '%s' is used but has no data in the file", k->key);
        if (k->root >= 0)
            src->storages[k->val->u.i].offset = src->storages[c->keys[k->root].val->u.i].offset + k->view_offset * k->elsize;
    }
    return VP_OK;
}

static int legacy_header(vp_source *src, uint64_t *off)
{
    const uint8_t *b = src->map.base;
    size_t size = (size_t)src->map.size, used;
    vp_value *v;
    int rc = vp__pickle_load(src, b, size, "magic number pickle", NULL, NULL, &v, &used);
    if (rc) return rc;
    if (vp_value_kind(v) != VP_V_INT || !vp_value_str(v) || strcmp(vp_value_str(v), "119547037146038801333356"))
        return vp__err(src, VP_ERR_FORMAT, "a pickle, but not a torch.save file (no legacy magic number)");
    *off = used;
    if ((rc = vp__pickle_load(src, b + *off, size - *off, "protocol version pickle", NULL, NULL, &v, &used))) return rc;
    if (vp_value_kind(v) != VP_V_INT || vp_value_str(v) || vp_value_int(v) != 1001)
        return vp__err(src, VP_ERR_UNSUPPORTED, "legacy torch file with protocol version %lld (1001 is supported)", (long long)vp_value_int(v));
    *off += used;
    if ((rc = vp__pickle_load(src, b + *off, size - *off, "sys_info pickle", NULL, NULL, &v, &used))) return rc;
    if (vp_value_kind(v) != VP_V_DICT) return vp__err(src, VP_ERR_FORMAT, "legacy sys_info is a %s, not a dict", vp__value_kind_name(v));
    *off += used;
    return VP_OK;
}

int vp__open_torch_legacy(vp_source *src)
{
    src->format = "torch-legacy";
    uint64_t off = 0;
    int rc = legacy_header(src, &off);
    if (rc) return rc;
    torch_ctx c;
    memset(&c, 0, sizeof c);
    c.src = src;
    c.prefix = "";
    const uint8_t *b = src->map.base;
    size_t size = (size_t)src->map.size, used = 0;
    vp_value *root = NULL, *keys = NULL;
    rc = vp__pickle_load(src, b + off, size - (size_t)off, "object pickle", legacy_persid, &c, &root, &used);
    if (!rc) {
        off += used;
        src->root = root;
        rc = vp__pickle_load(src, b + off, size - (size_t)off, "storage key pickle", NULL, NULL, &keys, &used);
    }
    if (!rc) rc = legacy_storages(src, &c, keys, off + used);
    if (!rc) rc = name_tensors(src, root, &c, false);
    ctx_free(&c);
    return rc;
}
