/* CLIPModel / SiglipModel given only pixel_values or only input_ids run that
 * tower alone: the embeds equal those of a run with both inputs, and the
 * other tower's outputs are absent. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vitport/vitport.h"
#include "test.h"

typedef struct arr { int64_t shape[VP_MAX_DIMS]; int ndim; void *data; } arr;

static int load(const char *path, const char *name, vp_dtype dt, arr *a)
{
    vp_source *s = NULL;
    memset(a, 0, sizeof *a);
    int rc = vp_source_open(&s, path, NULL);
    long i = rc ? -1 : vp_source_find(s, name);
    if (i >= 0) {
        const vp_tensor *t = vp_source_tensor(s, (size_t)i);
        size_t bytes = (size_t)t->numel * vp_dtype_size(dt);
        a->ndim = t->ndim;
        memcpy(a->shape, t->shape, sizeof a->shape);
        a->data = malloc(bytes + 1);
        if (!a->data || vp_source_read_as(s, (size_t)i, dt, a->data, bytes)) { free(a->data); a->data = NULL; }
    }
    vp_source_close(s);
    return a->data ? 0 : -1;
}

static float *copy_out(vp_ctx *c, const char *name, size_t *n)
{
    const vp_output *o = vp_ctx_output_named(c, name);
    if (!o) return NULL;
    *n = 1;
    for (int d = 0; d < o->ndim; d++) *n *= (size_t)o->shape[d];
    float *p = malloc(*n * sizeof *p);
    if (p) memcpy(p, o->data, *n * sizeof *p);
    return p;
}

static double diff(const float *a, const float *b, size_t n)
{
    double m = 0;
    for (size_t i = 0; i < n; i++) m = fmax(m, fabs((double)a[i] - b[i]));
    return m;
}

static void one_case(const char *fixtures, const char *name)
{
    char dir[1024], inp[1100];
    snprintf(dir, sizeof dir, "%s/engine/%s", fixtures, name);
    snprintf(inp, sizeof inp, "%s/inputs.npz", dir);
    arr pix, ids;
    CHECKF(!load(inp, "pixel_values", VP_F32, &pix) && !load(inp, "input_ids", VP_I64, &ids), "%s: inputs", name);
    vp_model *m = NULL;
    vp_ctx *c = NULL;
    int rc = vp_model_open(&m, dir);
    CHECKF(rc == VP_OK, "%s: %s", name, vp_model_errmsg(m));
    if (!rc) rc = vp_ctx_new(&c, m, 1);
    if (rc || !pix.data || !ids.data) goto done;
    vp_inputs both = {0};
    both.pixel_values = pix.data; both.batch = pix.shape[0]; both.height = pix.shape[2]; both.width = pix.shape[3];
    both.input_ids = ids.data; both.text_batch = ids.shape[0]; both.text_len = ids.shape[1];
    CHECKF(vp_ctx_run(c, &both) == VP_OK, "%s both: %s", name, vp_ctx_errmsg(c));
    size_t ni = 0, nt = 0, n1 = 0, n2 = 0;
    float *ie = copy_out(c, "image_embeds", &ni), *te = copy_out(c, "text_embeds", &nt);
    CHECK(ie && te && vp_ctx_output_named(c, "logits_per_image"));

    vp_inputs vis = both;
    vis.input_ids = NULL; vis.text_batch = vis.text_len = 0;
    CHECKF(vp_ctx_run(c, &vis) == VP_OK, "%s vision only: %s", name, vp_ctx_errmsg(c));
    float *ie1 = copy_out(c, "image_embeds", &n1);
    CHECKF(ie1 && ie && n1 == ni && diff(ie, ie1, ni) < 1e-6, "%s: image_embeds alone differ", name);
    CHECK(!vp_ctx_output_named(c, "text_embeds") && !vp_ctx_output_named(c, "logits_per_image"));

    vp_inputs txt = both;
    txt.pixel_values = NULL; txt.batch = txt.height = txt.width = 0;
    CHECKF(vp_ctx_run(c, &txt) == VP_OK, "%s text only: %s", name, vp_ctx_errmsg(c));
    float *te1 = copy_out(c, "text_embeds", &n2);
    CHECKF(te1 && te && n2 == nt && diff(te, te1, nt) < 1e-6, "%s: text_embeds alone differ", name);
    CHECK(!vp_ctx_output_named(c, "image_embeds") && !vp_ctx_output_named(c, "logits_per_text"));

    vp_inputs none = {0};
    CHECK(vp_ctx_run(c, &none) != VP_OK);
    free(ie); free(te); free(ie1); free(te1);
done:
    free(pix.data); free(ids.data);
    vp_ctx_free(c);
    vp_model_close(m);
}

int main(void)
{
    const char *fx = getenv("VP_FIXTURES");
    if (!fx) fx = "tests/fixtures";
    one_case(fx, "clip_p8_h3");
    one_case(fx, "clip_p16_interp");
    one_case(fx, "siglip_p8");
    one_case(fx, "siglip_p14_interp");
    TEST_MAIN_END();
}
