/* Internal declarations of the image layer (src/image/). Not installed. */
#ifndef VP_IMAGE_INTERNAL_H
#define VP_IMAGE_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "core/alloc.h"
#include "core/buf.h"
#include "core/config.h"
#include "core/fileio.h"
#include "core/util.h"
#include "vitport/image.h"

struct vp_image {
    vp_allocator alloc;      /* every allocation for this handle (vitport.h, Allocators) */
    char errmsg[512];
    char *name;             /* for messages */
    const char *format;     /* "jpeg", "png", "raw" */
    const char *mode;       /* Pillow's mode of the decoded file */
    int w, h;
    uint8_t *rgb;           /* convert("RGB"): h*w*3 */
    uint8_t *white;         /* convert("RGBA") composited onto white when the
                               image has alpha (or tRNS), else NULL */
};

/* Record a failure on img: "NAME: message"; returns code. */
int vp__img_err(vp_image *img, int code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* Decoders (decode.c): fill img->w, h, rgb, white, mode, format. */
int vp__decode_jpeg(vp_image *img, const uint8_t *data, size_t n);
int vp__decode_png(vp_image *img, const uint8_t *data, size_t n);

/* Pillow's Image.resize of an RGB image (resize.c): src is sh rows of sw*3
 * bytes, dst dh rows of dw*3 bytes. VP_OK, VP_ERR_ARG (bad filter or size)
 * or VP_ERR_NOMEM. */
int vp__resize_rgb(const uint8_t *src, int sw, int sh, uint8_t *dst, int dw, int dh, int filter);

/* Pillow's alpha_composite of one RGBA pixel over opaque white, as RGB. */
void vp__composite_white(const uint8_t rgba[4], uint8_t rgb[3]);

#endif
