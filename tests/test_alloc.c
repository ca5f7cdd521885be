/*
 * Per-handle allocators (vp_allocator, vitport.h "Allocators"): two threads,
 * each with its own counting allocator, at the same time open a source and
 * read it, load a model and run it, convert a checkpoint (verified, which
 * opens models and sources inside the conversion), tokenize, decode and
 * preprocess an image. Every block carries its allocator's tag, so a block
 * freed or resized by another allocator is caught; at the end each allocator
 * has made allocations, freed all of them, and seen none of another's, and
 * the process default (a third tagged allocator, installed first) saw none
 * of theirs while the threads ran.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "test.h"
#include "test_util.h"
#include "core/alloc.h"

typedef struct counter {
    int id;
    atomic_long allocs, frees, live, foreign;
} counter;

enum { HDR = 16 };

static void *count_alloc(void *ud, void *ptr, size_t osize, size_t nsize)
{
    counter *c = ud;
    (void)osize;
    if (ptr) {
        unsigned char *h = (unsigned char *)ptr - HDR;
        int id;
        memcpy(&id, h, sizeof id);
        if (id != c->id) { c->foreign++; return NULL; }   /* not ours: leave it alone */
        if (nsize == 0) { c->frees++; c->live--; free(h); return NULL; }
        unsigned char *n = realloc(h, nsize + HDR);
        return n ? n + HDR : NULL;
    }
    if (nsize == 0) return NULL;
    unsigned char *h = malloc(nsize + HDR);
    if (!h) return NULL;
    memcpy(h, &c->id, sizeof c->id);
    c->allocs++;
    c->live++;
    return h + HDR;
}

typedef struct job {
    counter c;
    char out[1024];          /* the scratch folder's prefix for this thread's outputs */
    int fails;
    char why[512];
} job;

static void fail(job *j, const char *what, const char *msg)
{
    if (!j->fails++) snprintf(j->why, sizeof j->why, "%s: %s", what, msg ? msg : "?");
}

static int verify_cb(void *arg, const char *tmp_dir, const char *src_path, const char *key,
                     const char *family, char *err, size_t errlen)
{
    (void)arg; (void)family;
    vp_verify *v = NULL;   /* no allocator given: the conversion's, which is current */
    int rc = vp_verify_new(&v);
    vp_verify_opts o;
    memset(&o, 0, sizeof o);
    o.source = src_path;
    o.key = key;
    o.threads = 2;         /* the engine's OpenMP regions run; they must not allocate */
    if (!rc) rc = vp_verify_run(v, tmp_dir, &o);
    if (rc) snprintf(err, errlen, "%s", vp_verify_errmsg(v));
    vp_verify_free(v);
    return rc;
}

static void *work(void *arg)
{
    job *j = arg;
    vp_allocator a = {count_alloc, &j->c};
    char path[4096];
    const char *fx = tu_fixtures_dir();
    for (int round = 0; round < 2; round++) {
        /* a source: every tensor read */
        vp_source *s = NULL;
        snprintf(path, sizeof path, "%s/npz_compressed.npz", fx);
        if (vp_source_open_ex(&s, path, NULL, &a)) fail(j, "source", vp_source_errmsg(s));
        for (size_t i = 0; s && i < vp_source_count(s); i++) {
            const vp_tensor *t = vp_source_tensor(s, i);
            void *buf = malloc(t->nbytes ? t->nbytes : 1);
            if (vp_source_read(s, i, buf, t->nbytes)) fail(j, "read", vp_source_errmsg(s));
            free(buf);
        }
        vp_source_close(s);

        /* a model, run with two threads */
        vp_model *m = NULL;
        vp_ctx *c = NULL;
        snprintf(path, sizeof path, "%s/engine/vit_cls_odd", fx);
        if (vp_model_open_ex(&m, path, &a)) fail(j, "model", vp_model_errmsg(m));
        else if (vp_ctx_new(&c, m, 2)) fail(j, "ctx", vp_ctx_errmsg(c));
        else {
            int64_t hw = vp_model_image_size(m);
            size_t n = (size_t)(2 * 3 * hw * hw);
            float *px = malloc(n * sizeof *px);
            for (size_t i = 0; i < n; i++) px[i] = (float)((i * 7919) % 255) / 255.0f - 0.5f;
            vp_inputs in;
            memset(&in, 0, sizeof in);
            in.pixel_values = px;
            in.batch = 2;
            in.height = in.width = hw;
            if (vp_ctx_run(c, &in) || vp_ctx_output_count(c) == 0) fail(j, "run", vp_ctx_errmsg(c));
            free(px);
        }
        vp_ctx_free(c);
        vp_model_close(m);

        /* a conversion, verified inside (models and sources opened by it) */
        char dir[1100], err[1024] = "", *summary = NULL;
        snprintf(dir, sizeof dir, "%s-out%d", j->out, round);
        snprintf(path, sizeof path, "%s/convert/dino_p16.pth", fx);
        vp_convert_opts o;
        memset(&o, 0, sizeof o);
        o.quiet = 1;
        o.verify = verify_cb;
        o.allocator = &a;
        const char *sets[1] = {"num_attention_heads=2"};
        o.sets = sets;
        o.nsets = 1;
        if (vp_convert_ex(path, NULL, dir, &o, err, sizeof err, &summary) || !summary || !tu_has(summary, "\"family\""))
            fail(j, "convert", err);
        vp_convert_free(summary);

        /* the converted folder's image processor, on a decoded image */
        vp_preproc *pp = NULL;
        vp_image *img = NULL;
        char ppath[1200];
        snprintf(ppath, sizeof ppath, "%s/preprocessor_config.json", dir);
        if (vp_preproc_open_ex(&pp, ppath, &a)) fail(j, "preproc", vp_preproc_errmsg(pp));
        snprintf(path, sizeof path, "%s/image/files/photo_chelsea.png", fx);
        if (vp_image_load_ex(&img, path, &a)) fail(j, "image", vp_image_errmsg(img));
        int h = 0, w = 0;
        if (pp && img && !vp_preproc_output_size(pp, img, &h, &w) && h > 0 && w > 0) {
            float *pv = malloc((size_t)3 * (size_t)h * (size_t)w * sizeof *pv);
            if (vp_preproc_run(pp, &img, 1, pv, (size_t)3 * (size_t)h * (size_t)w)) fail(j, "preproc run", vp_preproc_errmsg(pp));
            free(pv);
        } else {
            fail(j, "preproc size", pp ? vp_preproc_errmsg(pp) : "no preprocessor");
        }
        vp_image_free(img);
        vp_preproc_free(pp);

        /* a tokenizer */
        vp_tokenizer *tok = NULL;
        snprintf(path, sizeof path, "%s/text/clip_tiny", fx);
        if (vp_tokenizer_open_ex(&tok, path, &a)) fail(j, "tokenizer", vp_tokenizer_errmsg(tok));
        else {
            const char *texts[2] = {"a photo of a cat", "two dogs"};
            int64_t L = vp_tokenizer_length(tok);
            int64_t *ids = malloc((size_t)(2 * L) * sizeof *ids), *mask = malloc((size_t)(2 * L) * sizeof *mask);
            int trunc[2];
            if (vp_tokenizer_encode(tok, texts, NULL, 2, ids, mask, trunc)) fail(j, "encode", vp_tokenizer_errmsg(tok));
            free(ids);
            free(mask);
        }
        vp_tokenizer_close(tok);
    }
    return NULL;
}

int main(void)
{
    /* the process default, tagged too: installed before anything allocates */
    static counter dflt = {.id = 0x64666c74};
    vp__set_allocator(count_alloc, &dflt);

    static job jobs[2];
    char scratch[512];
    tu_mkdtemp(scratch, sizeof scratch, "vp-alloc");
    for (int i = 0; i < 2; i++) {
        jobs[i].c.id = 0x41 + i;
        snprintf(jobs[i].out, sizeof jobs[i].out, "%s/t%d", scratch, i);
    }
    long dflt_before = dflt.allocs;
    pthread_t thr[2];
    for (int i = 0; i < 2; i++) CHECK(pthread_create(&thr[i], NULL, work, &jobs[i]) == 0);
    for (int i = 0; i < 2; i++) pthread_join(thr[i], NULL);
    for (int i = 0; i < 2; i++) {
        job *j = &jobs[i];
        CHECKF(j->fails == 0, "thread %d: %d failures, the first: %s", i, j->fails, j->why);
        CHECKF(j->c.allocs > 1000, "thread %d: its allocator made %ld allocations", i, (long)j->c.allocs);
        CHECKF(j->c.live == 0 && j->c.allocs == j->c.frees, "thread %d: %ld allocations, %ld frees", i,
               (long)j->c.allocs, (long)j->c.frees);
        CHECKF(j->c.foreign == 0, "thread %d: its allocator was handed %ld blocks of another", i, (long)j->c.foreign);
    }
    CHECKF(dflt.allocs == dflt_before, "the process default made %ld allocations while the threads ran",
           (long)(dflt.allocs - dflt_before));
    CHECK(dflt.foreign == 0);

    /* A handle made with the default frees with it, whichever allocator is
     * current for the code around (here none): a source opened without one. */
    vp_source *s = NULL;
    char path[4096];
    snprintf(path, sizeof path, "%s/npz_compressed.npz", tu_fixtures_dir());
    long live0 = dflt.live;
    CHECK(vp_source_open(&s, path, NULL) == VP_OK);
    CHECK(dflt.live > live0);
    vp_source_close(s);
    CHECK_EQ_INT(dflt.live, live0);

    /* A failing per-handle allocator: the constructor fails cleanly and the
     * handle (if any) closes with the same allocator. */
    tu_failing none = {0};
    vp_allocator failing = {tu_failing_alloc, &none};
    vp_model *m = NULL;
    snprintf(path, sizeof path, "%s/engine/vit_cls_odd", tu_fixtures_dir());
    CHECK(vp_model_open_ex(&m, path, &failing) == VP_ERR_NOMEM && m == NULL);
    vp_model_close(m);

    vp__set_allocator(NULL, NULL);
    tu_rmtree(scratch);
    TEST_MAIN_END();
}
