/*
 * src/nn/conv.c against torch: tests/fixtures/engine/ops_conv.npz holds, per
 * case, torch.nn.Conv2d / ConvTranspose2d's input (<tag>_in [C, H, W]),
 * weight, bias and output (written by gen_engine_clip.py). The geometry of
 * each tag is listed here; the sizes come from the arrays.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "test.h"
#include "test_util.h"
#include "nn/nn.h"

static vp_source *src;

static float *get(const char *tag, const char *what, vp_tensor *info)
{
    char name[64];
    snprintf(name, sizeof name, "%s_%s", tag, what);
    long i = vp_source_find(src, name);
    CHECKF(i >= 0, "ops_conv.npz has no %s", name);
    if (i < 0) return NULL;
    const vp_tensor *t = vp_source_tensor(src, (size_t)i);
    float *p = malloc((size_t)t->numel * sizeof *p + 1);
    CHECK(p && !vp_source_read_as(src, (size_t)i, VP_F32, p, (size_t)t->numel * sizeof *p));
    if (info) *info = *t;
    return p;
}

static double maxdiff(const float *a, const float *b, int64_t n)
{
    double m = 0;
    for (int64_t i = 0; i < n; i++) {
        double d = fabs((double)a[i] - (double)b[i]);
        if (!(d <= m)) m = d;
    }
    return m;
}

static void conv_case(const char *tag, int transposed, int64_t k, int64_t stride, int64_t pad)
{
    vp_tensor ti, tw, to;
    float *in = get(tag, "in", &ti), *w = get(tag, "w", &tw), *b = get(tag, "b", NULL), *want = get(tag, "out", &to);
    if (!in || !w || !b || !want) goto done;
    int64_t C = ti.shape[0], H = ti.shape[1], W = ti.shape[2];
    int64_t O = transposed ? tw.shape[1] : tw.shape[0];
    CHECK(tw.shape[2] == k && tw.shape[3] == k && to.shape[0] == O);
    int64_t oh = to.shape[1], ow = to.shape[2];
    size_t ns = transposed ? vp_nn_conv_transpose2d_scratch(C, H, W, O, k, k)
                           : vp_nn_conv2d_scratch(C, H, W, k, k, stride, pad);
    float *scratch = malloc(ns * sizeof *scratch), *got = malloc((size_t)(O * oh * ow) * sizeof *got);
    for (int pass = 0; pass < 2; pass++) {       /* with the bias, then without */
        for (int64_t i = 0; i < O * oh * ow; i++) got[i] = NAN;
        if (transposed) vp_nn_conv_transpose2d(got, in, C, H, W, w, pass ? NULL : b, O, k, k, stride, scratch);
        else vp_nn_conv2d(got, in, C, H, W, w, pass ? NULL : b, O, k, k, stride, pad, scratch);
        if (pass)
            for (int64_t o = 0; o < O; o++)
                for (int64_t i = 0; i < oh * ow; i++) got[o * oh * ow + i] += b[o];
        double d = maxdiff(got, want, O * oh * ow);
        printf("%s%s: [%lld, %lld, %lld] -> [%lld, %lld, %lld], max abs %.3g vs torch\n", tag, pass ? " (no bias)" : "",
               (long long)C, (long long)H, (long long)W, (long long)O, (long long)oh, (long long)ow, d);
        CHECKF(d <= 1e-5, "%s: %.3g", tag, d);
    }
    free(scratch);
    free(got);
done:
    free(in); free(w); free(b); free(want);
}

int main(void)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/engine/ops_conv.npz", tu_fixtures_dir());
    int rc = vp_source_open(&src, path, NULL);
    CHECKF(!rc, "%s: %s", path, src ? vp_source_errmsg(src) : "?");
    if (!rc) {
        vp_nn_set_threads(2);
        conv_case("c3p1", 0, 3, 1, 1);     /* the refined CLIPSeg decoder's Conv2d */
        conv_case("c2s2", 0, 2, 2, 0);
        conv_case("c3s2p1", 0, 3, 2, 1);
        conv_case("t4s4", 1, 4, 4, 0);     /* kernel = stride: CLIPSeg's ConvTranspose2d */
        conv_case("t3s2", 1, 3, 2, 0);     /* overlapping */
        conv_case("t2s3", 1, 2, 3, 0);     /* gaps */
    }
    vp_source_close(src);
    TEST_MAIN_END();
}
