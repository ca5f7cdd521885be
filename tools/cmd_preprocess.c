/* vitport preprocess: the pixel_values a model directory's
 * preprocessor_config.json makes of image files. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vitport/vitport.h"
#include "cli.h"

static void help(FILE *f)
{
    fprintf(f,
            "usage: vitport preprocess MODEL_DIR --image FILE [--image FILE ...] --out PIXEL_VALUES.npy\n"
            "\n"
            "Decode JPEG / PNG files and turn them into the pixel_values array (float32,\n"
            "[N, 3, H, W]) that MODEL_DIR's preprocessor_config.json describes, as\n"
            "transformers' image processor (PIL backend, Pillow 13.0.0) computes it: for\n"
            "debugging a mismatch, or feeding `vitport run`. All images must give the same\n"
            "H x W. Any unreadable image fails the command, naming the file.\n"
            "\n"
            "options:\n"
            "  --image FILE   an image (repeatable; the rows follow their order)\n"
            "  --out FILE     the .npy to write (temporary name, renamed when complete)\n"
            "  -h, --help     show this help\n"
            "\n"
            "exit status: 0 ok, 1 bad input, 2 usage error\n");
}

int cmd_preprocess(int argc, char **argv)
{
    const char *dir = NULL, *out = NULL;
    const char **imgs = calloc((size_t)argc, sizeof *imgs);
    size_t n = 0;
    int status = VP_EXIT_USAGE;
    if (!imgs) return VP_EXIT_FAIL;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) { help(stdout); status = VP_EXIT_OK; goto done; }
        else if (!strcmp(a, "--image") || !strcmp(a, "--out")) {
            if (i + 1 >= argc) { fprintf(stderr, "vitport preprocess: %s needs a value\n", a); goto done; }
            if (a[2] == 'i') imgs[n++] = argv[++i];
            else out = argv[++i];
        } else if (a[0] == '-' && a[1]) {
            fprintf(stderr, "vitport preprocess: unknown option '%s' (see vitport preprocess --help)\n", a);
            goto done;
        } else if (!dir) dir = a;
        else { fprintf(stderr, "vitport preprocess: unexpected argument '%s'\n", a); goto done; }
    }
    if (!dir) { help(stderr); goto done; }
    if (!n || !out) { fprintf(stderr, "vitport preprocess: give at least one --image and --out\n"); goto done; }

    status = VP_EXIT_FAIL;
    vp_preproc *pp = NULL;
    if (vp_preproc_open(&pp, dir)) {
        fprintf(stderr, "vitport preprocess: %s\n", pp ? vp_preproc_errmsg(pp) : "out of memory");
        vp_preproc_free(pp);
        goto done;
    }
    unsigned char *ok = malloc(n);
    float *pix = NULL;
    int64_t H = 0, W = 0;
    size_t k = 0;
    if (ok && !vp_cli_images(pp, imgs, n, 1, "preprocess", &pix, &H, &W, &k, ok)) {
        char err[1024];
        int64_t shape[4] = {(int64_t)k, 3, H, W};
        if (vp_npy_save(out, VP_F32, 4, shape, pix, err, sizeof err))
            fprintf(stderr, "vitport preprocess: %s\n", err);
        else {
            printf("%s: pixel_values [%zu, 3, %lld, %lld] (%s) -> %s\n", dir, k, (long long)H, (long long)W,
                   vp_preproc_class(pp), out);
            status = VP_EXIT_OK;
        }
    }
    free(pix);
    free(ok);
    vp_preproc_free(pp);
done:
    free(imgs);
    return status;
}
