/*
 * JPEG (libjpeg-turbo) and PNG (libpng) decoding into 8-bit RGB, with the
 * mode conversions of Pillow 13.0.0's Image.open(f).convert("RGB") and
 * .convert("RGBA"). Facts taken from Pillow (and checked by
 * tests/fixtures/gen_images.py against it):
 *  - PNG modes: gray 1 bit is "1" (0/255), 2 and 4 bits "L" scaled by 85
 *    and 17, 16 bits "I;16" (convert clips to 255, it does not shift);
 *    16-bit RGB, RGBA and gray+alpha keep the high byte; palettes of any
 *    depth are "P", indices past the palette give black.
 *  - transparency (tRNS): a palette's alphas go to its entries (255 past
 *    the end); for gray and RGB the colour is compared, truncated to
 *    8 bits, with the 8-bit pixel (for "1": 255 if non-zero, else 0), after
 *    the 2/4-bit scaling and the 16-bit clipping.
 *  - JPEG: 1 component "L", 3 "RGB", 4 "CMYK" (inverted when an Adobe
 *    marker is present); CMYK to RGB is (255-c)*(255-k)/255, rounded.
 *  - truncated files are errors (Pillow: "image file is truncated").
 */
#include <setjmp.h>
#include <stdio.h>
#include <string.h>

#include <jpeglib.h>
#include <jerror.h>
#include <png.h>

#include "image_internal.h"

/* Pillow's MULDIV255: a*b/255 rounded, in integers. */
static inline uint8_t muldiv255(unsigned a, unsigned b)
{
    unsigned t = a * b + 128;
    return (uint8_t)(((t >> 8) + t) >> 8);
}

static int check_size(vp_image *img, uint64_t w, uint64_t h)
{
    if (w == 0 || h == 0)
        return vp__img_err(img, VP_ERR_FORMAT, "image has no pixels (%llux%llu)",
                           (unsigned long long)w, (unsigned long long)h);
    if (w > VP_IMAGE_MAX_SIDE || h > VP_IMAGE_MAX_SIDE || w * h > VP_IMAGE_MAX_PIXELS)
        return vp__img_err(img, VP_ERR_LIMIT,
                           "image of %llux%llu pixels exceeds the limit of %llu pixels "
                           "(VP_IMAGE_MAX_PIXELS, a decompression bomb?)",
                           (unsigned long long)w, (unsigned long long)h,
                           (unsigned long long)VP_IMAGE_MAX_PIXELS);
    return VP_OK;
}

static int alloc_planes(vp_image *img, int w, int h, int alpha)
{
    size_t n = (size_t)w * (size_t)h;
    img->w = w;
    img->h = h;
    img->rgb = vp__malloc(n * 3);
    if (alpha) img->white = vp__malloc(n * 3);
    if (!img->rgb || (alpha && !img->white)) return vp__img_err(img, VP_ERR_NOMEM, "out of memory for %dx%d pixels", w, h);
    return VP_OK;
}

/* ====================================================================== */
/* JPEG                                                                   */
/* ====================================================================== */
typedef struct {
    struct jpeg_error_mgr pub;
    jmp_buf jb;
    char msg[JMSG_LENGTH_MAX];
    int truncated, limit;
} jerr_t;

static void j_error_exit(j_common_ptr c)
{
    jerr_t *e = (jerr_t *)c->err;
    c->err->format_message(c, e->msg);
    longjmp(e->jb, 1);
}

static void j_emit(j_common_ptr c, int level)
{
    jerr_t *e = (jerr_t *)c->err;
    /* Warnings are ignored as Pillow does, except running out of data. */
    if (level < 0 && c->err->msg_code == JWRN_JPEG_EOF) {
        e->truncated = 1;
        c->err->format_message(c, e->msg);
        longjmp(e->jb, 1);
    }
}

static void j_output(j_common_ptr c) { (void)c; }

/* Bound the work of progressive files: refuse too many scans. */
static void j_progress(j_common_ptr c)
{
    j_decompress_ptr d = (j_decompress_ptr)c;
    if (d->input_scan_number > VP_JPEG_MAX_SCANS) {
        jerr_t *e = (jerr_t *)c->err;
        snprintf(e->msg, sizeof e->msg, "more than %d scans (VP_JPEG_MAX_SCANS)", VP_JPEG_MAX_SCANS);
        e->limit = 1;
        longjmp(e->jb, 1);
    }
}

int vp__decode_jpeg(vp_image *img, const uint8_t *data, size_t n)
{
    struct jpeg_decompress_struct ci;
    jerr_t je;
    uint8_t *volatile row = NULL;
    volatile int rc = VP_OK;
    memset(&ci, 0, sizeof ci);
    memset(&je, 0, sizeof je);
    ci.err = jpeg_std_error(&je.pub);
    je.pub.error_exit = j_error_exit;
    je.pub.emit_message = j_emit;
    je.pub.output_message = j_output;
    img->format = "jpeg";
    if (setjmp(je.jb)) {
        if (je.truncated) rc = vp__img_err(img, VP_ERR_FORMAT, "truncated JPEG: image data ends early");
        else if (je.limit) rc = vp__img_err(img, VP_ERR_LIMIT, "JPEG with %s", je.msg);
        else rc = vp__img_err(img, VP_ERR_FORMAT, "bad JPEG: %s", je.msg);
        goto done;
    }
    jpeg_create_decompress(&ci);
    struct jpeg_progress_mgr prog = { .progress_monitor = j_progress };
    ci.progress = &prog;
    jpeg_mem_src(&ci, data, (unsigned long)n);
    jpeg_read_header(&ci, TRUE);
    /* Bound libjpeg's own working memory too (progressive coefficients). */
    ci.mem->max_memory_to_use = 2048L * 1024 * 1024;
    int ncomp = ci.num_components;
    int cmyk = 0, inverted = 0;
    if (ncomp == 1) {
        ci.out_color_space = JCS_GRAYSCALE;
        img->mode = "L";
    } else if (ncomp == 3) {
        ci.out_color_space = JCS_RGB;
        img->mode = "RGB";
    } else if (ncomp == 4) {
        ci.out_color_space = JCS_CMYK;
        cmyk = 1;
        inverted = ci.saw_Adobe_marker;
        img->mode = "CMYK";
    } else {
        rc = vp__img_err(img, VP_ERR_UNSUPPORTED, "JPEG with %d components", ncomp);
        goto done;
    }
    if ((rc = check_size(img, ci.image_width, ci.image_height))) goto done;
    jpeg_start_decompress(&ci);
    int w = (int)ci.output_width, h = (int)ci.output_height, oc = ci.output_components;
    if ((rc = alloc_planes(img, w, h, 0))) goto done;
    row = vp__malloc((size_t)w * (size_t)oc);
    if (!row) { rc = vp__img_err(img, VP_ERR_NOMEM, "out of memory"); goto done; }
    while (ci.output_scanline < ci.output_height) {
        int y = (int)ci.output_scanline;
        JSAMPROW rp = row;
        if (jpeg_read_scanlines(&ci, &rp, 1) != 1) {
            rc = vp__img_err(img, VP_ERR_FORMAT, "truncated JPEG: image data ends early");
            goto done;
        }
        uint8_t *o = img->rgb + (size_t)y * (size_t)w * 3;
        if (oc == 1) {
            for (int x = 0; x < w; x++) o[3 * x] = o[3 * x + 1] = o[3 * x + 2] = row[x];
        } else if (!cmyk) {
            memcpy(o, row, (size_t)w * 3);
        } else {
            for (int x = 0; x < w; x++) {
                const uint8_t *p = row + 4 * x;
                unsigned c = p[0], m = p[1], yy = p[2], k = p[3];
                if (inverted) { c = 255 - c; m = 255 - m; yy = 255 - yy; k = 255 - k; }
                o[3 * x + 0] = muldiv255(255 - c, 255 - k);
                o[3 * x + 1] = muldiv255(255 - m, 255 - k);
                o[3 * x + 2] = muldiv255(255 - yy, 255 - k);
            }
        }
    }
    jpeg_finish_decompress(&ci);
done:
    jpeg_destroy_decompress(&ci);
    vp__free(row);
    return rc;
}

/* ====================================================================== */
/* PNG                                                                    */
/* ====================================================================== */
typedef struct {
    const uint8_t *p;
    size_t n, off;
    char msg[256];
} pngsrc_t;

static void p_read(png_structp png, png_bytep out, size_t len)
{
    pngsrc_t *s = png_get_io_ptr(png);
    if (len > s->n - s->off) {
        snprintf(s->msg, sizeof s->msg, "truncated PNG: file ends early");
        png_error(png, "truncated");
    }
    memcpy(out, s->p + s->off, len);
    s->off += len;
}

static void p_error(png_structp png, png_const_charp msg)
{
    pngsrc_t *s = png_get_error_ptr(png);
    if (!s->msg[0]) snprintf(s->msg, sizeof s->msg, "bad PNG: %s", msg);
    png_longjmp(png, 1);
}

static void p_warn(png_structp png, png_const_charp msg) { (void)png; (void)msg; }

int vp__decode_png(vp_image *img, const uint8_t *data, size_t n)
{
    pngsrc_t src = { data, n, 0, "" };
    png_structp png = png_create_read_struct(PNG_LIBPNG_VER_STRING, &src, p_error, p_warn);
    png_infop info = png ? png_create_info_struct(png) : NULL;
    uint8_t *volatile buf = NULL;
    png_bytep *volatile rows = NULL;
    volatile int rc = VP_OK;
    img->format = "png";
    if (!png || !info) { rc = vp__img_err(img, VP_ERR_NOMEM, "out of memory"); goto done; }
    if (setjmp(png_jmpbuf(png))) {
        if (!rc) rc = vp__img_err(img, VP_ERR_FORMAT, "%s", src.msg[0] ? src.msg : "bad PNG");
        goto done;
    }
    png_set_read_fn(png, &src, p_read);
    /* Sizes are checked below (check_size), with the library's own limit out of the way. */
    png_set_user_limits(png, PNG_UINT_31_MAX, PNG_UINT_31_MAX);
    png_set_chunk_malloc_max(png, 64u << 20);
    png_read_info(png, info);

    png_uint_32 w, h;
    int depth, ctype, interlace;
    png_get_IHDR(png, info, &w, &h, &depth, &ctype, &interlace, NULL, NULL);
    if ((rc = check_size(img, w, h))) goto done;

    /* The transparency entry as the file states it (before any transform). */
    int has_trns = 0, ntrns = 0;
    uint8_t palpha[256];
    memset(palpha, 255, sizeof palpha);
    unsigned tg = 0, tr = 0, tgr = 0, tb = 0;
    {
        png_bytep ta = NULL;
        int nt = 0;
        png_color_16p tc = NULL;
        if (png_get_valid(png, info, PNG_INFO_tRNS) && png_get_tRNS(png, info, &ta, &nt, &tc)) {
            if (ctype == PNG_COLOR_TYPE_PALETTE && ta) {
                has_trns = 1;
                ntrns = nt < 0 ? 0 : (nt > 256 ? 256 : nt);
                memcpy(palpha, ta, (size_t)ntrns);
            } else if ((ctype == PNG_COLOR_TYPE_GRAY || ctype == PNG_COLOR_TYPE_RGB) && tc) {
                has_trns = 1;
                tg = tc->gray; tr = tc->red; tgr = tc->green; tb = tc->blue;
            }
        }
    }
    uint8_t pal[256][3];
    memset(pal, 0, sizeof pal);
    if (ctype == PNG_COLOR_TYPE_PALETTE) {
        png_colorp pc = NULL;
        int np = 0;
        if (!png_get_PLTE(png, info, &pc, &np) || !pc) {
            rc = vp__img_err(img, VP_ERR_FORMAT, "bad PNG: palette image without a palette");
            goto done;
        }
        if (np > 256) np = 256;
        for (int i = 0; i < np; i++) { pal[i][0] = pc[i].red; pal[i][1] = pc[i].green; pal[i][2] = pc[i].blue; }
    }

    /* Transforms: one byte per sample (the 16-bit gray kept whole). */
    int chans;
    if (ctype == PNG_COLOR_TYPE_PALETTE) {
        png_set_packing(png);
        chans = 1;
        img->mode = "P";
    } else if (ctype == PNG_COLOR_TYPE_GRAY) {
        if (depth < 8) png_set_expand_gray_1_2_4_to_8(png);
        chans = 1;
        img->mode = depth == 1 ? "1" : depth == 16 ? "I;16" : "L";
    } else if (ctype == PNG_COLOR_TYPE_GRAY_ALPHA) {
        if (depth == 16) png_set_strip_16(png);
        chans = 2;
        img->mode = depth == 16 ? "RGBA" : "LA";
    } else if (ctype == PNG_COLOR_TYPE_RGB) {
        if (depth == 16) png_set_strip_16(png);
        chans = 3;
        img->mode = "RGB";
    } else if (ctype == PNG_COLOR_TYPE_RGB_ALPHA) {
        if (depth == 16) png_set_strip_16(png);
        chans = 4;
        img->mode = "RGBA";
    } else {
        rc = vp__img_err(img, VP_ERR_UNSUPPORTED, "PNG colour type %d", ctype);
        goto done;
    }
    int gray16 = ctype == PNG_COLOR_TYPE_GRAY && depth == 16;
    png_set_interlace_handling(png);
    png_read_update_info(png, info);
    size_t rowbytes = png_get_rowbytes(png, info);
    size_t want = (size_t)w * (size_t)chans * (gray16 ? 2 : 1);
    if (rowbytes != want) {
        rc = vp__img_err(img, VP_ERR_FORMAT, "bad PNG: unexpected row size %zu", rowbytes);
        goto done;
    }
    int alpha = has_trns || ctype == PNG_COLOR_TYPE_GRAY_ALPHA || ctype == PNG_COLOR_TYPE_RGB_ALPHA;
    if ((rc = alloc_planes(img, (int)w, (int)h, alpha))) goto done;
    buf = vp__malloc(rowbytes * h);
    rows = vp__malloc(sizeof(png_bytep) * h);
    if (!buf || !rows) { rc = vp__img_err(img, VP_ERR_NOMEM, "out of memory for %ux%u pixels", w, h); goto done; }
    for (png_uint_32 y = 0; y < h; y++) rows[y] = buf + (size_t)y * rowbytes;
    png_read_image(png, rows);
    /* The rest of the file (chunks after IDAT) is not needed. */

    /* Pillow's value of a gray transparency colour, 8 bits as compared. */
    uint8_t gtr = depth == 1 ? (tg ? 255 : 0) : (uint8_t)tg;
    for (png_uint_32 y = 0; y < h; y++) {
        const uint8_t *r = rows[y];
        uint8_t *o = img->rgb + (size_t)y * w * 3;
        uint8_t *ow = alpha ? img->white + (size_t)y * w * 3 : NULL;
        for (png_uint_32 x = 0; x < w; x++) {
            uint8_t R, G, B, A = 255;
            if (ctype == PNG_COLOR_TYPE_PALETTE) {
                uint8_t i = r[x];
                R = pal[i][0]; G = pal[i][1]; B = pal[i][2];
                A = palpha[i];
            } else if (ctype == PNG_COLOR_TYPE_GRAY) {
                unsigned v = gray16 ? (unsigned)(r[2 * x] << 8 | r[2 * x + 1]) : r[x];
                if (v > 255) v = 255;
                R = G = B = (uint8_t)v;
                if (has_trns && (uint8_t)v == gtr) A = 0;
            } else if (ctype == PNG_COLOR_TYPE_GRAY_ALPHA) {
                R = G = B = r[2 * x];
                A = r[2 * x + 1];
            } else if (ctype == PNG_COLOR_TYPE_RGB) {
                R = r[3 * x]; G = r[3 * x + 1]; B = r[3 * x + 2];
                if (has_trns && R == (uint8_t)tr && G == (uint8_t)tgr && B == (uint8_t)tb) A = 0;
            } else {
                R = r[4 * x]; G = r[4 * x + 1]; B = r[4 * x + 2]; A = r[4 * x + 3];
            }
            o[3 * x] = R; o[3 * x + 1] = G; o[3 * x + 2] = B;
            if (ow) {
                const uint8_t px[4] = { R, G, B, A };
                vp__composite_white(px, ow + 3 * x);
            }
        }
    }
done:
    if (png) png_destroy_read_struct(&png, info ? &info : NULL, NULL);
    vp__free(buf);
    vp__free(rows);
    return rc;
}
