/* The image decoders (JPEG, PNG) from memory, then what a processor does
 * with the pixels: composite onto white, resize with a filter and size taken
 * from the input, and a small CLIP-style preprocessing. The fuzz build lowers
 * VP_IMAGE_MAX_PIXELS (fuzz/CMakeLists.txt) so that big headers stay fast;
 * anything above it must be refused, not decoded. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/internal.h"
#include "vitport/image.h"

static vp_preproc *pp;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!pp) {
        static const char cfg[] = "{\"image_processor_type\": \"CLIPImageProcessor\", "
                                  "\"size\": {\"shortest_edge\": 12}, \"crop_size\": 10}";
        if (vp_preproc_open_json(&pp, cfg, sizeof cfg - 1, "fuzz.json") != VP_OK) abort();
    }
    vp_image *img;
    int rc = vp_image_load_memory(&img, data, size, "fuzz");
    if (rc != VP_OK) {
        const char *m = vp_image_errmsg(img);
        if (!m || !*m || strchr(m, '\n')) abort();   /* a one-line message, always */
        if (vp_image_pixels(img)) abort();
        vp_image_free(img);
        return 0;
    }
    int w = vp_image_width(img), h = vp_image_height(img);
    if (w <= 0 || h <= 0 || (uint64_t)w * (uint64_t)h > VP_IMAGE_MAX_PIXELS) abort();
    const uint8_t *px = vp_image_pixels(img), *wp = vp_image_pixels_on_white(img);
    if (!px || !wp) abort();
    volatile uint8_t last = px[(size_t)w * h * 3 - 1];
    last = wp[(size_t)w * h * 3 - 1];
    (void)last;
    int tw = (int)(size % 37) + 1, th = (int)((size / 37) % 23) + 1, f = (int)(size % 6);
    uint8_t out[37 * 23 * 3];
    if (vp_image_resize(img, (int)(size & 1), tw, th, f, out, sizeof out) != VP_OK) abort();
    float pv[3 * 10 * 10];
    /* a shortest-edge resize of a very long image may exceed the pixel limit: refused */
    rc = vp_preproc_run(pp, &img, 1, pv, sizeof pv / sizeof pv[0]);
    if (rc != VP_OK && (rc != VP_ERR_LIMIT || strchr(vp_preproc_errmsg(pp), '\n') ||
                        !strstr(vp_preproc_errmsg(pp), "fuzz: "))) abort();
    vp_image_free(img);
    return 0;
}
