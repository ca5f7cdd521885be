/* The source evaluators (src/verify) against independent truth: every
 * conformance case's expected.npz (the original model's outputs, SigLIP's
 * from the HF reference model) on its inputs.npz, within the case's
 * tolerances.output_max_abs. Head counts and CLIPSeg's extract_layers come
 * from the case's params / converter_hints, as no tensor shows them. Also
 * the conv ops the CLIPSeg evaluator uses against values computed by hand. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "test.h"
#include "test_util.h"
#include "verify/ref.h"

static float *load_f32(vp_source *s, const char *name, const vp_tensor **t)
{
    long i = vp_source_find(s, name);
    if (i < 0) return NULL;
    *t = vp_source_tensor(s, (size_t)i);
    float *p = malloc((*t)->numel * sizeof(float) + 1);
    if (vp_source_read_as(s, (size_t)i, VP_F32, p, (*t)->numel * sizeof(float))) { free(p); return NULL; }
    return p;
}

static int64_t jint(const cJSON *o, const char *k, int64_t d)
{
    const cJSON *v = o ? cJSON_GetObjectItemCaseSensitive(o, k) : NULL;
    return cJSON_IsNumber(v) ? (int64_t)v->valuedouble : d;
}

static void one_case(const char *root, const char *name)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/%s/case.json", root, name);
    cJSON *cs = tu_load_json(path);
    CHECKF(cs != NULL, "%s", path);
    if (!cs) return;
    const char *fam = tu_jstr(cs, "family");
    const cJSON *params = cJSON_GetObjectItemCaseSensitive(cs, "params");
    const cJSON *hints = cJSON_GetObjectItemCaseSensitive(cs, "converter_hints");
    const cJSON *tol = cJSON_GetObjectItemCaseSensitive(cs, "tolerances");
    double tolv = cJSON_GetObjectItemCaseSensitive(tol, "output_max_abs")->valuedouble;

    vp_ref_params hp;
    memset(&hp, 0, sizeof hp);
    hp.heads = jint(params, "heads", 0);
    const cJSON *vis = cJSON_GetObjectItemCaseSensitive(params, "vision"), *txt = cJSON_GetObjectItemCaseSensitive(params, "text");
    if (vis) hp.heads = jint(vis, "heads", 0);
    if (txt) hp.text_heads = jint(txt, "heads", 0);
    const cJSON *ex = cJSON_GetObjectItemCaseSensitive(hints, "extract_layers");
    for (int i = 0; cJSON_IsArray(ex) && i < cJSON_GetArraySize(ex) && i < VP_REF_MAX_EXTRACT; i++)
        hp.extract[hp.nextract++] = (int64_t)cJSON_GetArrayItem(ex, i)->valuedouble;

    vp_source *src = NULL, *inp = NULL, *exp = NULL;
    snprintf(path, sizeof path, "%s/%s/%s", root, name, tu_jstr(cs, "source_file"));
    CHECKF(vp_source_open(&src, path, NULL) == VP_OK, "%s", vp_source_errmsg(src));
    snprintf(path, sizeof path, "%s/%s/inputs.npz", root, name);
    CHECK(vp_source_open(&inp, path, NULL) == VP_OK);
    snprintf(path, sizeof path, "%s/%s/expected.npz", root, name);
    CHECK(vp_source_open(&exp, path, NULL) == VP_OK);

    vp_ref r;
    int rc = vp_ref_init(&r, src, NULL, 0);
    CHECKF(rc == VP_OK, "%s: %s", name, r.err);
    /* the case's family name and the evaluator's agree (a DINO hub backbone
     * is a plain timm-layout state dict: either name is right) */
    int dino_plain = fam && !strcmp(fam, "dino") && r.family && !strcmp(r.family, "timm");
    CHECKF(r.family && fam && (!strcmp(r.family, fam) || dino_plain), "%s: recognised as %s, case says %s", name, r.family, fam);
    vp_ref_info info;
    CHECKF(vp_ref_info_get(&r, &info) == VP_OK, "%s: %s", name, r.err);

    const vp_tensor *tp = NULL, *ti = NULL;
    float *pix = load_f32(inp, "pixel_values", &tp);
    long ii = vp_source_find(inp, "input_ids");
    int64_t *ids = NULL;
    vp_ref_inputs in;
    memset(&in, 0, sizeof in);
    if (pix) { in.pixel_values = pix; in.batch = tp->shape[0]; in.height = tp->shape[2]; in.width = tp->shape[3]; }
    CHECK_EQ_INT(info.image_size, tp ? tp->shape[2] : -1);
    if (ii >= 0) {
        ti = vp_source_tensor(inp, (size_t)ii);
        ids = malloc(ti->numel * 8);
        CHECK(vp_source_read_as(inp, (size_t)ii, VP_I64, ids, ti->numel * 8) == VP_OK);
        in.input_ids = ids; in.text_batch = ti->shape[0]; in.text_len = ti->shape[1];
    }
    rc = rc ? rc : vp_ref_run(&r, &hp, &in);
    CHECKF(rc == VP_OK, "%s: %s", name, r.err);
    size_t nexp = vp_source_count(exp);
    for (size_t k = 0; rc == VP_OK && k < nexp; k++) {
        const vp_tensor *te = vp_source_tensor(exp, k);
        const vp_ref_out *o = vp_ref_output(&r, te->name);
        CHECKF(o != NULL, "%s: the evaluator gives no %s", name, te->name);
        if (!o) continue;
        const vp_tensor *tt;
        float *e = load_f32(exp, te->name, &tt);
        int same = o->ndim == te->ndim;
        for (int d = 0; same && d < te->ndim; d++) same = o->shape[d] == te->shape[d];
        CHECKF(same, "%s: %s shape differs", name, te->name);
        double mx = 0;
        for (uint64_t j = 0; same && j < te->numel; j++) {
            double dd = fabs((double)o->data[j] - e[j]);
            if (!(dd <= mx)) mx = dd;
        }
        CHECKF(same && mx <= tolv, "%s: %s max abs %.3g > %.3g", name, te->name, mx, tolv);
        printf("%-16s %-24s source evaluator vs expected.npz: max abs %.3g\n", name, te->name, mx);
        free(e);
    }
    vp_ref_free(&r);
    free(pix);
    free(ids);
    vp_source_close(src);
    vp_source_close(inp);
    vp_source_close(exp);
    cJSON_Delete(cs);
}

/* conv ops against hand-computed values */
static void conv_ops(void)
{
    /* ConvTranspose2d, Cin 2, Cout 1, k 2 on a 1x2 grid */
    float in[4] = {1, 2, 3, 4};       /* [2, 1, 2]: c0 = (1, 2), c1 = (3, 4) */
    float w[8] = {1, 0, 0, 1, 2, 2, 2, 2}; /* [2, 1, 2, 2] */
    float b = 0.5f, out[8], scr[32];
    CHECK(vp_nn_conv_transpose2d_scratch(2, 1, 2, 1, 2, 2) <= 32);
    vp_nn_conv_transpose2d(out, in, 2, 1, 2, w, &b, 1, 2, 2, 2, scr);
    /* out[y, x*2 + j] for patch x: c0*w0 + c1*w1 + b */
    float want[8] = {1 * 1 + 3 * 2 + .5f, 0 + 6 + .5f, 2 + 8 + .5f, 0 + 8 + .5f,
                     0 + 6 + .5f, 1 + 6 + .5f, 0 + 8 + .5f, 2 + 8 + .5f};
    for (int i = 0; i < 8; i++) CHECKF(out[i] == want[i], "convT[%d] = %g, want %g", i, out[i], want[i]);
    /* overlapping kernels (k 2, stride 1) are summed: 1x2 input (2, 3), kernel
     * row (10, 1) on a 1x2 kernel: out row = (20, 2 + 30, 3) */
    float in2[2] = {2, 3}, w2[2] = {10, 1}, o2[3], scr2[16];
    CHECK(vp_nn_conv_transpose2d_scratch(1, 1, 2, 1, 1, 2) <= 16);
    vp_nn_conv_transpose2d(o2, in2, 1, 1, 2, w2, NULL, 1, 1, 2, 1, scr2);
    CHECK(o2[0] == 20 && o2[1] == 32 && o2[2] == 3);
    /* Conv2d 3x3 pad 1, one channel, all-ones kernel on a 2x2 image: each
     * output sums its 3x3 neighbourhood = the whole image */
    float img[4] = {1, 2, 3, 4}, k9[9], o[4], cols[64];
    for (int i = 0; i < 9; i++) k9[i] = 1;
    CHECK(vp_nn_conv2d_scratch(1, 2, 2, 3, 3, 1, 1) <= 64);
    vp_nn_conv2d(o, img, 1, 2, 2, k9, NULL, 1, 3, 3, 1, 1, cols);
    for (int i = 0; i < 4; i++) CHECKF(o[i] == 10, "conv[%d] = %g", i, o[i]);
    /* a kernel with one 1 at (0, 0) shifts the image down-right by one */
    memset(k9, 0, sizeof k9);
    k9[0] = 1;
    vp_nn_conv2d(o, img, 1, 2, 2, k9, NULL, 1, 3, 3, 1, 1, cols);
    CHECK(o[0] == 0 && o[1] == 0 && o[2] == 0 && o[3] == 1);
}

int main(void)
{
    conv_ops();
    tu_cases cases;
    if (tu_cases_open(&cases)) {
        printf("no conformance cases ($VP_CONFORMANCE unset); only the op checks ran\n");
        TEST_MAIN_END();
    }
    CHECK(cases.n >= 5);
    for (size_t i = 0; i < cases.n; i++) one_case(cases.root, cases.name[i]);
    tu_cases_free(&cases);
    TEST_MAIN_END();
}
