/* vitport embed: image or text embeddings of a model directory, for a few
 * files or texts, or for a large list in resumable shards. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "vitport/vitport.h"
#include "cli.h"

static void help(FILE *f)
{
    fprintf(f,
            "usage: vitport embed MODEL_DIR (--image FILE ... | --text TEXT ... | --images-from LIST)\n"
            "                     [--out FILE.npy] [--batch N] [--shard I/N] [--strict] [--threads N] [--quiet]\n"
            "\n"
            "Embed images (decoded and preprocessed as MODEL_DIR's preprocessor_config.json\n"
            "says) or texts (tokenized with its tokenizer files). The vector taken is:\n"
            "  CLIPModel, SiglipModel, CLIP*WithProjection: image_embeds / text_embeds, the\n"
            "    projected vectors, L2-normalised as the models' forward gives them (only\n"
            "    the tower asked for is run);\n"
            "  CLIPVisionModel, CLIPTextModel, SiglipVisionModel, SiglipTextModel, ViTModel\n"
            "    with a pooler: pooler_output (not normalised);\n"
            "  ViT / DeiT without a pooler, and classifiers: the CLS row of\n"
            "    last_hidden_state (not normalised).\n"
            "stderr names the one used. Rows follow the inputs' order; a bad image is\n"
            "reported (naming the file) and left out, and the command goes on with the\n"
            "rest (exit status 1 at the end), unless --strict. The file names (or texts)\n"
            "of the rows written are saved beside FILE.npy as FILE.txt, one per line.\n"
            "Without --out the rows are printed, one per line, after the name.\n"
            "The summary line on stderr gives the throughput and where the time went:\n"
            "decode (reading and decoding the files), preprocess (resize, crop,\n"
            "normalize), forward, other (copying and writing rows, the progress\n"
            "record), each measured with a monotonic clock, and the model's load before.\n"
            "\n"
            "Large collections: --images-from LIST reads image paths, one per line (blank\n"
            "lines skipped; relative paths from the current directory), and needs --out.\n"
            "With --shard I/N it takes every N-th path from the I-th (0-based), so N runs\n"
            "with I = 0..N-1 cover the list once, each writing its own FILE.npy + FILE.txt.\n"
            "Rows are appended batch by batch to FILE.npy.part / FILE.txt.part and the\n"
            "progress is recorded atomically in FILE.npy.progress: a killed run, started\n"
            "again with the same arguments, goes on after the last completed batch; a\n"
            "finished shard (FILE.npy present, no progress file) is not redone.\n"
            "\n"
            "options:\n"
            "  --image FILE        an image (repeatable)\n"
            "  --text TEXT         a text (repeatable); truncated texts are warned about\n"
            "  --images-from LIST  a file of image paths, one per line\n"
            "  --out FILE.npy      float32 [rows, dim]; written under a temporary name\n"
            "  --batch N           inputs per forward pass (default 16)\n"
            "  --shard I/N         with --images-from: this run's share of the list\n"
            "  --strict            stop at the first bad image (exit 1, nothing written)\n"
            "  --threads N         threads to use (default: all cores)\n"
            "  --quiet             no summary line (the progress bar shows only on a terminal)\n"
            "  -h, --help          show this help\n"
            "\n"
            "exit status: 0 ok, 1 bad input (also: some images were skipped), 2 usage error\n");
}

typedef struct embed_run {
    vp_model *m;
    vp_ctx *c;
    int vis;
    const char *used;            /* output name used */
    int cls;                     /* take row 0 of last_hidden_state */
    int64_t dim;
    vp_cli_timing t;             /* decode, preprocess, forward (tokenizing: decode) */
    double t_load;               /* model, context and preprocessor opened */
} embed_run;

/* "decode 0.41 s, preprocess 0.90 s, forward 7.12 s, other 0.05 s; model load 0.03 s before"
 * for a run of dt seconds ("other": the rest of dt, e.g. copying and writing rows). */
static const char *timing_text(const embed_run *e, double dt, char *buf, size_t len)
{
    const vp_cli_timing *t = &e->t;
    if (e->vis)
        snprintf(buf, len, "decode %.2f s, preprocess %.2f s, forward %.2f s, other %.2f s; model load %.2f s before",
                 t->decode, t->preprocess, t->forward, dt - t->decode - t->preprocess - t->forward, e->t_load);
    else
        snprintf(buf, len, "tokenize %.2f s, forward %.2f s, other %.2f s; model load %.2f s before",
                 t->decode, t->forward, dt - t->decode - t->forward, e->t_load);
    return buf;
}

/* Copy the embedding rows of the last run into dst (n rows). */
static int take_rows(embed_run *e, size_t n, float **dst, size_t *cap, size_t *rows)
{
    const vp_output *o = NULL;
    if (!e->used) {
        const char *emb = e->vis ? "image_embeds" : "text_embeds";
        const char *mt = vp_model_type(e->m);
        if ((o = vp_ctx_output_named(e->c, emb))) e->used = emb;
        else if ((o = vp_ctx_output_named(e->c, "pooler_output"))) e->used = "pooler_output";
        else if ((!strcmp(mt, "vit") || !strcmp(mt, "deit")) && (o = vp_ctx_output_named(e->c, "last_hidden_state"))) {
            e->used = "last_hidden_state";
            e->cls = 1;
        } else {
            fprintf(stderr, "vitport embed: %s gives no embedding output (image_embeds, text_embeds, pooler_output)\n",
                    vp_model_class(e->m));
            return -1;
        }
        e->dim = o->shape[o->ndim - 1];
        fprintf(stderr, "vitport embed: %s: %s%s%s [%lld]\n", vp_model_class(e->m), e->cls ? "CLS row of " : "", e->used,
                strstr(e->used, "_embeds") ? " (L2-normalised)" : "", (long long)e->dim);
    }
    o = vp_ctx_output_named(e->c, e->used);
    if (!o || o->shape[0] != (int64_t)n || o->shape[o->ndim - 1] != e->dim) {
        fprintf(stderr, "vitport embed: %s missing or misshapen\n", e->used);
        return -1;
    }
    size_t need = (*rows + n) * (size_t)e->dim;
    if (need > *cap) {
        size_t nc = need * 2;
        float *p = realloc(*dst, nc * sizeof *p);
        if (!p) { fprintf(stderr, "vitport embed: out of memory\n"); return -1; }
        *dst = p;
        *cap = nc;
    }
    for (size_t r = 0; r < n; r++) {
        const float *src = o->data + (e->cls ? r * (size_t)o->shape[1] * (size_t)e->dim : r * (size_t)e->dim);
        memcpy(*dst + (*rows + r) * (size_t)e->dim, src, (size_t)e->dim * sizeof(float));
    }
    *rows += n;
    return 0;
}

/* Embed a batch of images; rows appended to *dst, ok[] marks the files kept. */
static int image_batch(embed_run *e, vp_preproc *pp, const char *const *paths, size_t n, int strict,
                       unsigned char *ok, float **dst, size_t *cap, size_t *rows, int *bad)
{
    float *pix = NULL;
    int64_t H, W;
    size_t k = 0;
    if (vp_cli_images_timed(pp, paths, n, strict, "embed", &pix, &H, &W, &k, ok, &e->t)) {
        *bad = 1;
        if (strict) return -1;
    }
    int rc = 0;
    if (k) {
        vp_inputs in = {0};
        in.pixel_values = pix; in.batch = (int64_t)k; in.height = H; in.width = W;
        double t0 = vp_cli_now();
        rc = vp_ctx_run(e->c, &in);
        e->t.forward += vp_cli_now() - t0;
        if (rc) { fprintf(stderr, "vitport embed: %s\n", vp_ctx_errmsg(e->c)); rc = -1; }
        else rc = take_rows(e, k, dst, cap, rows);
    }
    free(pix);
    return rc;
}

static int write_all(int fd, const void *p, size_t n)
{
    const char *b = p;
    while (n) {
        ssize_t w = write(fd, b, n);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) return -1;
        b += w; n -= (size_t)w;
    }
    return 0;
}

static char *cat(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    char *s = malloc(la + lb + 1);
    if (s) { memcpy(s, a, la); memcpy(s + la, b, lb + 1); }
    return s;
}

/* FILE.npy -> FILE.txt (else FILE + ".txt"). */
static char *names_path(const char *out)
{
    size_t n = strlen(out);
    char *s = malloc(n + 5);
    if (!s) return NULL;
    memcpy(s, out, n + 1);
    if (n > 4 && !strcmp(out + n - 4, ".npy")) s[n - 4] = 0;
    strcat(s, ".txt");
    return s;
}

static int save_npy(const char *out, const float *rows, size_t n, int64_t dim)
{
    char err[1024];
    int64_t shape[2] = {(int64_t)n, dim};
    if (vp_npy_save(out, VP_F32, 2, shape, rows, err, sizeof err)) {
        fprintf(stderr, "vitport embed: %s\n", err);
        return -1;
    }
    return 0;
}

static int save_names(const char *path, const char *const *names, size_t n)
{
    char *tmp = cat(path, ".tmp");
    FILE *f = tmp ? fopen(tmp, "wb") : NULL;
    int rc = f ? 0 : -1;
    for (size_t i = 0; f && i < n; i++)
        if (fprintf(f, "%s\n", names[i]) < 0) rc = -1;
    if (f && fclose(f)) rc = -1;
    if (!rc && rename(tmp, path)) rc = -1;
    if (rc) {
        fprintf(stderr, "vitport embed: cannot write %s: %s\n", path, strerror(errno));
        if (tmp) remove(tmp);
    }
    free(tmp);
    return rc;
}

/* ---- --images-from: resumable shards ---------------------------------- */
typedef struct progress { size_t next, rows, failed; long long names_bytes; int64_t dim; long shard, nshard; size_t total; } progress;

static int progress_read(const char *path, progress *p)
{
    FILE *f = fopen(path, "r");
    if (!f) return errno == ENOENT ? 1 : -1;
    unsigned long long next, rows, failed, total, dim;
    long long nb;
    int k = fscanf(f, "vitport-embed-progress 1 next %llu rows %llu failed %llu names_bytes %lld dim %llu shard %ld/%ld total %llu",
                   &next, &rows, &failed, &nb, &dim, &p->shard, &p->nshard, &total);
    fclose(f);
    if (k != 8 || nb < 0) return -1;
    p->next = next; p->rows = rows; p->failed = failed; p->names_bytes = nb; p->dim = (int64_t)dim; p->total = total;
    return 0;
}

static int progress_write(const char *path, const progress *p)
{
    char *tmp = cat(path, ".tmp");
    int fd = tmp ? open(tmp, O_WRONLY | O_CREAT | O_TRUNC, 0644) : -1;
    char buf[512];
    int n = snprintf(buf, sizeof buf, "vitport-embed-progress 1 next %llu rows %llu failed %llu names_bytes %lld dim %llu "
                     "shard %ld/%ld total %llu\n", (unsigned long long)p->next, (unsigned long long)p->rows,
                     (unsigned long long)p->failed, p->names_bytes, (unsigned long long)p->dim, p->shard, p->nshard,
                     (unsigned long long)p->total);
    int rc = fd < 0 || write_all(fd, buf, (size_t)n) || fsync(fd) ? -1 : 0;
    if (fd >= 0 && close(fd)) rc = -1;
    if (!rc && rename(tmp, path)) rc = -1;
    if (rc) fprintf(stderr, "vitport embed: cannot record progress in %s: %s\n", path, strerror(errno));
    free(tmp);
    return rc;
}

/* The LIST's paths of shard I/N (malloc'd block, pointers into it). */
static char **read_list(const char *list, long I, long N, size_t *n, char **block)
{
    FILE *f = fopen(list, "rb");
    *n = 0;
    *block = NULL;
    if (!f) { fprintf(stderr, "vitport embed: cannot open %s: %s\n", list, strerror(errno)); return NULL; }
    size_t cap = 1 << 16, len = 0;
    char *b = malloc(cap + 1);
    size_t r;
    while (b && (r = fread(b + len, 1, cap - len, f)) > 0) {
        len += r;
        if (len == cap) { char *nb = realloc(b, cap * 2 + 1); if (!nb) { free(b); b = NULL; break; } b = nb; cap *= 2; }
    }
    int err = ferror(f);
    fclose(f);
    if (!b || err) { free(b); fprintf(stderr, "vitport embed: cannot read %s\n", list); return NULL; }
    b[len] = 0;
    size_t lines = 1;
    for (size_t i = 0; i < len; i++) lines += b[i] == '\n';
    char **v = malloc(lines * sizeof *v);
    if (!v) { free(b); fprintf(stderr, "vitport embed: out of memory\n"); return NULL; }
    size_t idx = 0;
    for (char *s = b; s && *s;) {
        char *e = strchr(s, '\n');
        if (e) *e = 0;
        size_t l = strlen(s);
        if (l && s[l - 1] == '\r') s[--l] = 0;
        if (l) {
            if ((long)(idx % (size_t)N) == I) v[(*n)++] = s;
            idx++;
        }
        s = e ? e + 1 : NULL;
    }
    *block = b;
    return v;
}

static int embed_list(embed_run *e, vp_preproc *pp, const char *list, const char *out, long I, long N,
                      size_t batch, int strict, int quiet)
{
    char *block = NULL, *part = cat(out, ".part"), *prog = cat(out, ".progress"), *names = names_path(out);
    char *names_part = names ? cat(names, ".part") : NULL;
    size_t n = 0;
    char **paths = read_list(list, I, N, &n, &block);
    int status = VP_EXIT_FAIL, fd = -1, fdn = -1;
    float *buf = NULL;
    unsigned char *ok = malloc(batch);
    if (!paths || !part || !prog || !names_part || !ok) goto done;
    progress p = {0};
    int pr = progress_read(prog, &p);
    struct stat st;
    if (pr < 0) { fprintf(stderr, "vitport embed: %s: unreadable progress record; remove it to start over\n", prog); goto done; }
    if (pr == 1 && !stat(out, &st)) {
        if (!quiet) fprintf(stderr, "vitport embed: %s exists and no run is in progress: shard %ld/%ld done\n", out, I, N);
        status = VP_EXIT_OK;
        goto done;
    }
    if (pr == 0 && (p.shard != I || p.nshard != N || p.total != n || p.next > n)) {
        fprintf(stderr, "vitport embed: %s records shard %ld/%ld of %zu paths, not %ld/%ld of %zu; remove it to start over\n",
                prog, p.shard, p.nshard, p.total, I, N, n);
        goto done;
    }
    if (pr == 1) { memset(&p, 0, sizeof p); p.shard = I; p.nshard = N; p.total = n; }
    else if (!quiet) fprintf(stderr, "vitport embed: resuming shard %ld/%ld at path %zu of %zu (%zu rows kept)\n",
                             I, N, p.next, n, p.rows);
    fd = open(part, O_RDWR | O_CREAT, 0644);
    fdn = open(names_part, O_RDWR | O_CREAT, 0644);
    if (fd < 0 || fdn < 0) { fprintf(stderr, "vitport embed: cannot open %s: %s\n", fd < 0 ? part : names_part, strerror(errno)); goto done; }
    /* Drop whatever a killed run wrote after its last recorded batch. */
    off_t keep = (off_t)(p.rows * (size_t)p.dim * sizeof(float));
    if (ftruncate(fd, keep) || ftruncate(fdn, (off_t)p.names_bytes) || lseek(fd, keep, SEEK_SET) < 0 ||
        lseek(fdn, (off_t)p.names_bytes, SEEK_SET) < 0) {
        fprintf(stderr, "vitport embed: cannot resume %s: %s\n", part, strerror(errno));
        goto done;
    }
    if (p.dim) e->dim = p.dim;
    double t0 = vp_cli_now();
    size_t start = p.next, cap = 0;
    while (p.next < n) {
        size_t nb = n - p.next < batch ? n - p.next : batch, rows = 0;
        int bad = 0;
        if (image_batch(e, pp, (const char *const *)paths + p.next, nb, strict, ok, &buf, &cap, &rows, &bad)) goto done;
        if (p.dim && e->dim != p.dim) { fprintf(stderr, "vitport embed: the model gives %lld values, %s holds %lld\n",
                                                (long long)e->dim, part, (long long)p.dim); goto done; }
        p.dim = e->dim;
        for (size_t i = 0; i < nb; i++) {
            if (!ok[i]) { p.failed++; continue; }
            size_t l = strlen(paths[p.next + i]);
            paths[p.next + i][l] = '\n';        /* the block's NUL back to a newline for the write */
            int w = write_all(fdn, paths[p.next + i], l + 1);
            paths[p.next + i][l] = 0;
            if (w) { fprintf(stderr, "vitport embed: cannot write %s: %s\n", names_part, strerror(errno)); goto done; }
            p.names_bytes += (long long)l + 1;
        }
        if (write_all(fd, buf, rows * (size_t)e->dim * sizeof(float)) || fsync(fd) || fsync(fdn)) {
            fprintf(stderr, "vitport embed: cannot write %s: %s\n", part, strerror(errno));
            goto done;
        }
        p.rows += rows;
        p.next += nb;
        if (progress_write(prog, &p)) goto done;
        vp_cli_progress("images", p.next, n, t0);
    }
    /* Finish: the .npy from the appended rows, then the names, then drop the record. */
    void *map = NULL;
    size_t bytes = p.rows * (size_t)p.dim * sizeof(float);
    if (bytes && (map = mmap(NULL, bytes, PROT_READ, MAP_SHARED, fd, 0)) == MAP_FAILED) {
        fprintf(stderr, "vitport embed: cannot map %s: %s\n", part, strerror(errno));
        goto done;
    }
    int rc = save_npy(out, map, p.rows, p.dim ? p.dim : 0);
    if (map) munmap(map, bytes);
    if (rc) goto done;
    if (rename(names_part, names)) { fprintf(stderr, "vitport embed: cannot write %s: %s\n", names, strerror(errno)); goto done; }
    remove(part);
    remove(prog);
    double dt = vp_cli_now() - t0;
    char tb[256];
    if (!quiet)
        fprintf(stderr, "vitport embed: shard %ld/%ld: %zu images embedded, %zu skipped; %zu this run in %.2f s (%.1f images/s; "
                "%s); wrote %s and %s\n", I, N, p.rows, p.failed, p.next - start, dt,
                dt > 0 ? (double)(p.next - start) / dt : 0.0, timing_text(e, dt, tb, sizeof tb), out, names);
    status = p.failed ? VP_EXIT_FAIL : VP_EXIT_OK;
done:
    if (fd >= 0) close(fd);
    if (fdn >= 0) close(fdn);
    free(buf); free(ok); free(paths); free(block); free(part); free(prog); free(names); free(names_part);
    return status;
}

int cmd_embed(int argc, char **argv)
{
    const char *dir = NULL, *out = NULL, *list = NULL, *shard = NULL;
    const char **imgs = calloc((size_t)argc, sizeof *imgs), **texts = calloc((size_t)argc, sizeof *texts);
    size_t ni = 0, nt = 0;
    long batch = 16, threads = 0, I = 0, N = 1;
    int strict = 0, quiet = 0, status = VP_EXIT_USAGE;
    if (!imgs || !texts) { free(imgs); free(texts); return VP_EXIT_FAIL; }
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        int val = !strcmp(a, "--image") || !strcmp(a, "--text") || !strcmp(a, "--images-from") || !strcmp(a, "--out") ||
                  !strcmp(a, "--batch") || !strcmp(a, "--shard") || !strcmp(a, "--threads");
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) { help(stdout); status = VP_EXIT_OK; goto done; }
        else if (val) {
            if (i + 1 >= argc) { fprintf(stderr, "vitport embed: %s needs a value\n", a); goto done; }
            const char *v = argv[++i];
            if (!strcmp(a, "--image")) imgs[ni++] = v;
            else if (!strcmp(a, "--text")) texts[nt++] = v;
            else if (!strcmp(a, "--images-from")) list = v;
            else if (!strcmp(a, "--out")) out = v;
            else if (!strcmp(a, "--shard")) shard = v;
            else if (!strcmp(a, "--batch")) { if (vp_cli_int("embed", a, v, 1, 4096, &batch)) goto done; }
            else if (vp_cli_int("embed", a, v, 1, 1024, &threads)) goto done;
        } else if (!strcmp(a, "--strict")) strict = 1;
        else if (!strcmp(a, "--quiet") || !strcmp(a, "-q")) quiet = 1;
        else if (a[0] == '-' && a[1]) { fprintf(stderr, "vitport embed: unknown option '%s' (see vitport embed --help)\n", a); goto done; }
        else if (!dir) dir = a;
        else { fprintf(stderr, "vitport embed: unexpected argument '%s'\n", a); goto done; }
    }
    if (!dir) { help(stderr); goto done; }
    if ((ni > 0) + (nt > 0) + (list != NULL) != 1) {
        fprintf(stderr, "vitport embed: give --image files, --text texts or --images-from LIST (one kind)\n");
        goto done;
    }
    if (shard) {
        char *e1, *e2;
        I = strtol(shard, &e1, 10);
        N = *e1 == '/' ? strtol(e1 + 1, &e2, 10) : 0;
        if (e1 == shard || *e1 != '/' || *e2 || N < 1 || N > 1000000 || I < 0 || I >= N) {
            fprintf(stderr, "vitport embed: --shard wants I/N with 0 <= I < N, got '%s'\n", shard);
            goto done;
        }
        if (!list) { fprintf(stderr, "vitport embed: --shard goes with --images-from\n"); goto done; }
    }
    if (list && !out) { fprintf(stderr, "vitport embed: --images-from needs --out FILE.npy\n"); goto done; }

    status = VP_EXIT_FAIL;
    embed_run e = {0};
    e.vis = nt == 0;
    vp_preproc *pp = NULL;
    float *rows = NULL;
    int64_t *ids = NULL;
    const char **names = NULL;
    double t_open = vp_cli_now();
    if (vp_model_open(&e.m, dir)) { fprintf(stderr, "vitport embed: %s\n", e.m ? vp_model_errmsg(e.m) : "out of memory"); goto end; }
    if (!(vp_model_inputs(e.m) & (e.vis ? VP_INPUT_PIXELS : VP_INPUT_IDS))) {
        fprintf(stderr, "vitport embed: %s takes no %s\n", vp_model_class(e.m), e.vis ? "images" : "texts");
        goto end;
    }
    if (!strcmp(vp_model_type(e.m), "clipseg")) {
        fprintf(stderr, "vitport embed: %s is a segmentation model (see vitport segment)\n", vp_model_class(e.m));
        goto end;
    }
    if (vp_ctx_new(&e.c, e.m, (int)threads)) { fprintf(stderr, "vitport embed: %s\n", vp_ctx_errmsg(e.c)); goto end; }
    if (e.vis && vp_preproc_open(&pp, dir)) {
        fprintf(stderr, "vitport embed: %s\n", pp ? vp_preproc_errmsg(pp) : "out of memory");
        goto end;
    }
    e.t_load = vp_cli_now() - t_open;
    if (list) { status = embed_list(&e, pp, list, out, I, N, (size_t)batch, strict, quiet); goto end; }

    size_t n = e.vis ? ni : nt, nrows = 0, cap = 0, nn = 0;
    names = malloc(n * sizeof *names);
    unsigned char *ok = malloc(n);
    int bad = 0;
    double t0 = vp_cli_now();
    int64_t L = 0;
    if (!names || !ok) { free(ok); fprintf(stderr, "vitport embed: out of memory\n"); goto end; }
    if (!e.vis && vp_cli_tokenize(dir, texts, nt, "embed", &ids, &L)) { free(ok); goto end; }
    e.t.decode = vp_cli_now() - t0;
    for (size_t s = 0; s < n; s += (size_t)batch) {
        size_t nb = n - s < (size_t)batch ? n - s : (size_t)batch;
        if (e.vis) {
            if (image_batch(&e, pp, imgs + s, nb, strict, ok, &rows, &cap, &nrows, &bad)) { free(ok); goto end; }
            for (size_t i = 0; i < nb; i++) if (ok[i]) names[nn++] = imgs[s + i];
        } else {
            vp_inputs in = {0};
            in.input_ids = ids + s * (size_t)L; in.text_batch = (int64_t)nb; in.text_len = L;
            double tf = vp_cli_now();
            int rf = vp_ctx_run(e.c, &in);
            e.t.forward += vp_cli_now() - tf;
            if (rf) { fprintf(stderr, "vitport embed: %s\n", vp_ctx_errmsg(e.c)); free(ok); goto end; }
            if (take_rows(&e, nb, &rows, &cap, &nrows)) { free(ok); goto end; }
            for (size_t i = 0; i < nb; i++) names[nn++] = texts[s + i];
        }
        vp_cli_progress(e.vis ? "images" : "texts", s + nb, n, t0);
    }
    free(ok);
    if (out) {
        char *np = names_path(out);
        int rc = !np || save_npy(out, rows, nrows, e.dim) || save_names(np, names, nn);
        if (!rc && !quiet) fprintf(stderr, "vitport embed: wrote %s [%zu, %lld] and %s\n", out, nrows, (long long)e.dim, np);
        free(np);
        if (rc) goto end;
    } else {
        for (size_t r = 0; r < nrows; r++) {
            printf("%s", names[r]);
            for (int64_t d = 0; d < e.dim; d++) printf(" %.7g", rows[r * (size_t)e.dim + (size_t)d]);
            printf("\n");
        }
    }
    double dt = vp_cli_now() - t0;
    char tb[256];
    if (!quiet)
        fprintf(stderr, "vitport embed: %zu %s in %.3f s (%.1f/s, %s included; %s)%s\n", nrows,
                e.vis ? "images" : "texts", dt, dt > 0 ? (double)nrows / dt : 0.0, e.vis ? "decoding and preprocessing" : "tokenizing",
                timing_text(&e, dt, tb, sizeof tb), bad ? "; some images were skipped" : "");
    status = bad ? VP_EXIT_FAIL : VP_EXIT_OK;
end:
    free(rows); free(ids); free(names);
    vp_preproc_free(pp);
    vp_ctx_free(e.c);
    vp_model_close(e.m);
done:
    free(imgs); free(texts);
    return status;
}
