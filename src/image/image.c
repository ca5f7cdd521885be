/* The image handle: loading, pixels, transformers' convert_to_rgb. */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "image_internal.h"

int vp__img_err(vp_image *img, int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vp__verr(img->errmsg, sizeof img->errmsg, img->name ? img->name : "image", fmt, ap);
    va_end(ap);
    return code;
}

static vp_image *img_new(const char *name)
{
    vp_image *img = vp__calloc(1, sizeof *img);
    if (!img) return NULL;
    img->alloc = vp__alloc_get();
    img->name = vp__strdup(name ? name : "image");
    img->mode = "RGB";
    img->format = "raw";
    return img;
}

static void img_clear(vp_image *img)
{
    vp__free(img->rgb);
    vp__free(img->white);
    img->rgb = img->white = NULL;
    img->w = img->h = 0;
}

static int decode(vp_image *img, const uint8_t *p, size_t n)
{
    int rc;
    if (n >= 3 && p[0] == 0xFF && p[1] == 0xD8 && p[2] == 0xFF)
        rc = vp__decode_jpeg(img, p, n);
    else if (n >= 8 && !memcmp(p, "\x89PNG\r\n\x1a\n", 8))
        rc = vp__decode_png(img, p, n);
    else
        rc = vp__img_err(img, VP_ERR_UNSUPPORTED, "not a JPEG or PNG file");
    if (rc) img_clear(img);
    return rc;
}

static int vp_image_load_memory__impl(vp_image **out, const void *data, size_t n, const char *name)
{
    vp_image *img = img_new(name);
    *out = img;
    if (!img) return VP_ERR_NOMEM;
    if (!data && n) return vp__img_err(img, VP_ERR_ARG, "no data");
    return decode(img, data, n);
}

int vp_image_load_memory_ex(vp_image **out, const void *data, size_t n, const char *name, const vp_allocator *allocator)
{
    VP__WITH_ALLOC(allocator, int, vp_image_load_memory__impl(out, data, n, name));
}

int vp_image_load_memory(vp_image **out, const void *data, size_t n, const char *name)
{
    return vp_image_load_memory_ex(out, data, n, name, vp__alloc_current());
}

static int vp_image_load__impl(vp_image **out, const char *path)
{
    vp_image *img = img_new(path);
    *out = img;
    if (!img) return VP_ERR_NOMEM;
    if (!path) return vp__img_err(img, VP_ERR_ARG, "no path");
    vp_map m;
    char err[512];
    if (vp__map_open(&m, path, err, sizeof err) != VP_OK) {
        snprintf(img->errmsg, sizeof img->errmsg, "%s", err);
        return VP_ERR_IO;
    }
    int rc;
    if (m.size > VP_IMAGE_MAX_FILE)
        rc = vp__img_err(img, VP_ERR_LIMIT, "file of %llu bytes exceeds VP_IMAGE_MAX_FILE",
                         (unsigned long long)m.size);
    else
        rc = decode(img, m.base, (size_t)m.size);
    vp__map_close(&m);
    return rc;
}

int vp_image_load_ex(vp_image **out, const char *path, const vp_allocator *allocator)
{
    VP__WITH_ALLOC(allocator, int, vp_image_load__impl(out, path));
}

int vp_image_load(vp_image **out, const char *path)
{
    return vp_image_load_ex(out, path, vp__alloc_current());
}

static int vp_image_from_rgb__impl(vp_image **out, int width, int height, const uint8_t *rgb)
{
    vp_image *img = img_new("array");
    *out = img;
    if (!img) return VP_ERR_NOMEM;
    if (!rgb || width <= 0 || height <= 0)
        return vp__img_err(img, VP_ERR_ARG, "bad array (%dx%d)", width, height);
    if ((uint64_t)width * (uint64_t)height > VP_IMAGE_MAX_PIXELS)
        return vp__img_err(img, VP_ERR_LIMIT, "array of %dx%d pixels exceeds VP_IMAGE_MAX_PIXELS", width, height);
    size_t n = (size_t)width * (size_t)height * 3;
    img->rgb = vp__malloc(n);
    if (!img->rgb) return vp__img_err(img, VP_ERR_NOMEM, "out of memory");
    memcpy(img->rgb, rgb, n);
    img->w = width;
    img->h = height;
    return VP_OK;
}

int vp_image_from_rgb_ex(vp_image **out, int width, int height, const uint8_t *rgb, const vp_allocator *allocator)
{
    VP__WITH_ALLOC(allocator, int, vp_image_from_rgb__impl(out, width, height, rgb));
}

int vp_image_from_rgb(vp_image **out, int width, int height, const uint8_t *rgb)
{
    return vp_image_from_rgb_ex(out, width, height, rgb, vp__alloc_current());
}

static void vp_image_free__impl(vp_image *img)
{
    if (!img) return;
    img_clear(img);
    vp__free(img->name);
    vp__free(img);
}

void vp_image_free(vp_image *img)
{
    VP__WITH_ALLOC_VOID(img ? &img->alloc : vp__alloc_current(), vp_image_free__impl(img));
}

const char *vp_image_errmsg(const vp_image *img) { return img ? img->errmsg : "out of memory"; }
int vp_image_width(const vp_image *img) { return img ? img->w : 0; }
int vp_image_height(const vp_image *img) { return img ? img->h : 0; }
const uint8_t *vp_image_pixels(const vp_image *img) { return img ? img->rgb : NULL; }
const char *vp_image_mode(const vp_image *img) { return img ? img->mode : ""; }
const char *vp_image_format(const vp_image *img) { return img ? img->format : ""; }
int vp_image_has_alpha(const vp_image *img) { return img && img->white; }

/* Pillow's ImagingAlphaComposite with an opaque white destination: the
 * same integer steps (7 extra bits, divisions by 255 by shifts). */
void vp__composite_white(const uint8_t s[4], uint8_t o[3])
{
    enum { PB = 7 };
    uint32_t a = s[3];
    if (a == 0) { o[0] = o[1] = o[2] = 255; return; }
    uint32_t blend = 255u * (255u - a);
    uint32_t outa255 = a * 255u + blend;
    uint32_t coef1 = a * 255u * 255u * (1u << PB) / outa255;
    uint32_t coef2 = 255u * (1u << PB) - coef1;
    for (int c = 0; c < 3; c++) {
        uint32_t t = s[c] * coef1 + 255u * coef2 + (0x80u << PB);
        o[c] = (uint8_t)((((t >> 8) + t) >> 8) >> PB);
    }
}

const uint8_t *vp_image_pixels_on_white(const vp_image *img)
{
    if (!img || !img->rgb) return NULL;
    return img->white ? img->white : img->rgb;
}

static int vp_image_resize__impl(vp_image *img, int on_white, int width, int height, int filter,
                    uint8_t *dst, size_t dst_bytes)
{
    if (!img) return VP_ERR_ARG;
    if (!img->rgb) return vp__img_err(img, VP_ERR_ARG, "image has no pixels");
    if (width <= 0 || height <= 0 || (uint64_t)width * (uint64_t)height > VP_IMAGE_MAX_PIXELS)
        return vp__img_err(img, VP_ERR_ARG, "bad resize target %dx%d", width, height);
    if (!dst || dst_bytes < (size_t)width * (size_t)height * 3)
        return vp__img_err(img, VP_ERR_ARG, "output buffer too small for %dx%d RGB", width, height);
    const uint8_t *src = on_white ? vp_image_pixels_on_white(img) : img->rgb;
    int rc = vp__resize_rgb(src, img->w, img->h, dst, width, height, filter);
    if (rc == VP_ERR_ARG) return vp__img_err(img, rc, "unknown resampling filter %d", filter);
    if (rc) return vp__img_err(img, rc, "out of memory resizing to %dx%d", width, height);
    return VP_OK;
}

int vp_image_resize(vp_image *img, int on_white, int width, int height, int filter,
                    uint8_t *dst, size_t dst_bytes)
{
    VP__WITH_ALLOC(img ? &img->alloc : vp__alloc_current(), int, vp_image_resize__impl(img, on_white, width, height, filter, dst, dst_bytes));
}
