/*
 * Image processors from preprocessor_config.json, as transformers 5.x's
 * PIL-backend classes (ViTImageProcessorPil, DeiTImageProcessorPil,
 * CLIPImageProcessorPil, SiglipImageProcessorPil: what AutoImageProcessor
 * gives when torchvision is absent, or with backend="pil"):
 *   convert_to_rgb (when do_convert_rgb) -> resize (Pillow, uint8) ->
 *   center_crop (uint8, zero padding) -> rescale (uint8 as float64 times
 *   the factor, then float32) -> normalize ((x - mean) / std in float32)
 *   -> channels first.
 * Keys a config leaves out take the class's defaults (its attributes); a
 * key set to null replaces the default with None, as from_pretrained does:
 * a null do_* is false, a null resample is BILINEAR (resize's default).
 */
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "hf/json.h"
#include "image_internal.h"

enum { SZ_NONE = 0, SZ_HW, SZ_SHORT, SZ_SHORT_LONG };

typedef struct { int kind; int h, w, shortest, longest; } size_spec;

struct vp_preproc {
    vp_allocator alloc;      /* every allocation for this handle (vitport.h, Allocators) */
    char errmsg[512];
    char *name;
    char cls[64];
    int do_resize, do_center_crop, do_rescale, do_normalize, do_convert_rgb, default_to_square;
    size_spec size, crop;
    int resample;
    double rescale_factor;
    float mean[3], std[3];
};

static int pp_err(vp_preproc *pp, int code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int pp_err(vp_preproc *pp, int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vp__verr(pp->errmsg, sizeof pp->errmsg, pp->name, fmt, ap);
    va_end(ap);
    return code;
}

/* ---- class defaults (the classes' attributes in transformers 5.x) ------- */
static const float STANDARD[3] = { 0.5f, 0.5f, 0.5f };
static const double CLIP_MEAN[3] = { 0.48145466, 0.4578275, 0.40821073 };
static const double CLIP_STD[3] = { 0.26862954, 0.26130258, 0.27577711 };

static int set_class(vp_preproc *pp, const char *type)
{
    char base[64];
    size_t n = strlen(type);
    if (n >= sizeof base) return 0;
    memcpy(base, type, n + 1);
    if (n > 4 && !strcmp(base + n - 4, "Fast")) base[n - 4] = 0;
    else if (n > 3 && !strcmp(base + n - 3, "Pil")) base[n - 3] = 0;
    else if (n > 16 && !strcmp(base + n - 16, "FeatureExtractor"))
        snprintf(base + n - 16, sizeof base - (n - 16), "ImageProcessor");
    pp->rescale_factor = 1.0 / 255.0;
    pp->default_to_square = 1;
    pp->do_resize = pp->do_rescale = pp->do_normalize = 1;
    for (int c = 0; c < 3; c++) { pp->mean[c] = STANDARD[c]; pp->std[c] = STANDARD[c]; }
    pp->size = (size_spec){ SZ_HW, 224, 224, 0, 0 };
    pp->crop = (size_spec){ SZ_NONE, 0, 0, 0, 0 };
    if (!strcmp(base, "ViTImageProcessor")) {
        pp->resample = VP_RESAMPLE_BILINEAR;
    } else if (!strcmp(base, "DeiTImageProcessor")) {
        pp->resample = VP_RESAMPLE_BICUBIC;
        pp->size = (size_spec){ SZ_HW, 256, 256, 0, 0 };
        pp->crop = (size_spec){ SZ_HW, 224, 224, 0, 0 };
        pp->do_center_crop = 1;
    } else if (!strcmp(base, "CLIPImageProcessor")) {
        pp->resample = VP_RESAMPLE_BICUBIC;
        pp->size = (size_spec){ SZ_SHORT, 0, 0, 224, 0 };
        pp->crop = (size_spec){ SZ_HW, 224, 224, 0, 0 };
        pp->do_center_crop = 1;
        pp->do_convert_rgb = 1;
        pp->default_to_square = 0;
        for (int c = 0; c < 3; c++) { pp->mean[c] = (float)CLIP_MEAN[c]; pp->std[c] = (float)CLIP_STD[c]; }
    } else if (!strcmp(base, "SiglipImageProcessor")) {
        pp->resample = VP_RESAMPLE_BICUBIC;
        pp->do_convert_rgb = 1;
        pp->default_to_square = 0;
    } else {
        return 0;
    }
    snprintf(pp->cls, sizeof pp->cls, "%s", base);
    return 1;
}

/* ---- JSON fields --------------------------------------------------------- */
static int get_bool(vp_preproc *pp, const cJSON *o, const char *key, int *out)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    if (!v) return VP_OK;
    /* An explicit null replaces the class default with None (false). */
    if (cJSON_IsNull(v)) { *out = 0; return VP_OK; }
    if (cJSON_IsBool(v)) { *out = cJSON_IsTrue(v); return VP_OK; }
    return pp_err(pp, VP_ERR_FORMAT, "\"%s\" is not true, false or null", key);
}

static int side(vp_preproc *pp, const char *key, const cJSON *v, int *out)
{
    double d = cJSON_IsNumber(v) ? v->valuedouble : -1;
    if (!cJSON_IsNumber(v) || d != floor(d) || d < 1 || d > VP_PREPROC_MAX_SIDE)
        return pp_err(pp, VP_ERR_FORMAT, "\"%s\": sizes must be whole numbers from 1 to %d (VP_PREPROC_MAX_SIDE)",
                      key, VP_PREPROC_MAX_SIDE);
    *out = (int)d;
    return VP_OK;
}

/* transformers' get_size_dict: a dict as it is, an int square or shortest
 * edge (default_to_square), a list (height, width). */
static int get_size(vp_preproc *pp, const cJSON *o, const char *key, int dts, size_spec *out)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    if (!v) return VP_OK;
    size_spec s = { 0 };
    if (cJSON_IsNull(v)) { *out = s; return VP_OK; }
    int rc;
    if (cJSON_IsNumber(v)) {
        int n = 0;
        if ((rc = side(pp, key, v, &n))) return rc;
        if (dts) s = (size_spec){ SZ_HW, n, n, 0, 0 };
        else s = (size_spec){ SZ_SHORT, 0, 0, n, 0 };
    } else if (cJSON_IsArray(v)) {
        if (cJSON_GetArraySize(v) != 2) return pp_err(pp, VP_ERR_FORMAT, "\"%s\": a list must be [height, width]", key);
        s.kind = SZ_HW;
        if ((rc = side(pp, key, cJSON_GetArrayItem(v, 0), &s.h))) return rc;
        if ((rc = side(pp, key, cJSON_GetArrayItem(v, 1), &s.w))) return rc;
    } else if (cJSON_IsObject(v)) {
        const cJSON *h = cJSON_GetObjectItemCaseSensitive(v, "height"), *w = cJSON_GetObjectItemCaseSensitive(v, "width");
        const cJSON *se = cJSON_GetObjectItemCaseSensitive(v, "shortest_edge"), *le = cJSON_GetObjectItemCaseSensitive(v, "longest_edge");
        int nkeys = cJSON_GetArraySize(v);
        if (h && w && nkeys == 2) {
            s.kind = SZ_HW;
            if ((rc = side(pp, key, h, &s.h)) || (rc = side(pp, key, w, &s.w))) return rc;
        } else if (se && nkeys == 1) {
            s.kind = SZ_SHORT;
            if ((rc = side(pp, key, se, &s.shortest))) return rc;
        } else if (se && le && nkeys == 2) {
            s.kind = SZ_SHORT_LONG;
            if ((rc = side(pp, key, se, &s.shortest)) || (rc = side(pp, key, le, &s.longest))) return rc;
        } else {
            return pp_err(pp, VP_ERR_UNSUPPORTED,
                          "\"%s\": only {height, width}, {shortest_edge} and {shortest_edge, longest_edge} are supported", key);
        }
    } else {
        return pp_err(pp, VP_ERR_FORMAT, "\"%s\" is not a size", key);
    }
    *out = s;
    return VP_OK;
}

static int get_triple(vp_preproc *pp, const cJSON *o, const char *key, float out[3], int *isnull)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    if (!v) return VP_OK;
    if (cJSON_IsNull(v)) { *isnull = 1; return VP_OK; }
    double d[3];
    if (cJSON_IsNumber(v)) {
        d[0] = d[1] = d[2] = v->valuedouble;
    } else if (cJSON_IsArray(v) && cJSON_GetArraySize(v) == 3) {
        for (int c = 0; c < 3; c++) {
            const cJSON *x = cJSON_GetArrayItem(v, c);
            if (!cJSON_IsNumber(x)) return pp_err(pp, VP_ERR_FORMAT, "\"%s\" has a non-number", key);
            d[c] = x->valuedouble;
        }
    } else {
        return pp_err(pp, VP_ERR_FORMAT, "\"%s\" must be a number or a list of 3 numbers", key);
    }
    for (int c = 0; c < 3; c++) {
        if (!isfinite(d[c])) return pp_err(pp, VP_ERR_FORMAT, "\"%s\" is not finite", key);
        out[c] = (float)d[c];   /* np.array(mean, dtype=float32) */
    }
    return VP_OK;
}

/* member: NULL for an image processor's own file; "image_processor" for a
 * processor's processor_config.json, which nests it (transformers 5). */
static int configure(vp_preproc *pp, const char *text, size_t len, const char *member)
{
    int jrc;
    cJSON *root = vp_json_parse_ex(text, len, &jrc);
    if (!root) return pp_err(pp, jrc, jrc == VP_ERR_NOMEM ? "out of memory" : "not JSON");
    int rc = VP_OK;
    cJSON *o = root;
    if (!cJSON_IsObject(o)) { rc = pp_err(pp, VP_ERR_FORMAT, "not a JSON object"); goto done; }
    if (member) {
        o = cJSON_GetObjectItemCaseSensitive(root, member);
        if (!cJSON_IsObject(o)) { rc = pp_err(pp, VP_ERR_FORMAT, "\"%s\" is not a JSON object", member); goto done; }
    }
    const cJSON *t = cJSON_GetObjectItemCaseSensitive(o, "image_processor_type");
    if (!cJSON_IsString(t)) t = cJSON_GetObjectItemCaseSensitive(o, "feature_extractor_type");
    if (!cJSON_IsString(t)) { rc = pp_err(pp, VP_ERR_FORMAT, "no \"image_processor_type\""); goto done; }
    if (!set_class(pp, t->valuestring)) {
        rc = pp_err(pp, VP_ERR_UNSUPPORTED, "image processor \"%.80s\" (supported: ViT, DeiT, CLIP, Siglip image processors)",
                    t->valuestring);
        goto done;
    }
    if ((rc = get_bool(pp, o, "do_resize", &pp->do_resize))) goto done;
    if ((rc = get_bool(pp, o, "do_center_crop", &pp->do_center_crop))) goto done;
    if ((rc = get_bool(pp, o, "do_rescale", &pp->do_rescale))) goto done;
    if ((rc = get_bool(pp, o, "do_normalize", &pp->do_normalize))) goto done;
    if ((rc = get_bool(pp, o, "do_convert_rgb", &pp->do_convert_rgb))) goto done;
    if ((rc = get_bool(pp, o, "default_to_square", &pp->default_to_square))) goto done;
    int do_pad = 0;
    if ((rc = get_bool(pp, o, "do_pad", &do_pad))) goto done;
    if (do_pad) { rc = pp_err(pp, VP_ERR_UNSUPPORTED, "\"do_pad\": padding is not supported"); goto done; }
    if ((rc = get_size(pp, o, "size", pp->default_to_square, &pp->size))) goto done;
    if ((rc = get_size(pp, o, "crop_size", 1, &pp->crop))) goto done;
    const cJSON *r = cJSON_GetObjectItemCaseSensitive(o, "resample");
    if (cJSON_IsNull(r)) pp->resample = VP_RESAMPLE_BILINEAR;   /* resize()'s default for None */
    if (r && !cJSON_IsNull(r)) {
        if (!cJSON_IsNumber(r) || r->valuedouble != floor(r->valuedouble) || r->valuedouble < 0 || r->valuedouble > 5) {
            rc = pp_err(pp, VP_ERR_UNSUPPORTED, "\"resample\" must be a Pillow filter number 0..5");
            goto done;
        }
        pp->resample = (int)r->valuedouble;
    }
    const cJSON *f = cJSON_GetObjectItemCaseSensitive(o, "rescale_factor");
    if (cJSON_IsNull(f) && pp->do_rescale) { rc = pp_err(pp, VP_ERR_FORMAT, "do_rescale with \"rescale_factor\": null"); goto done; }
    if (f && !cJSON_IsNull(f)) {
        if (!cJSON_IsNumber(f) || !isfinite(f->valuedouble)) { rc = pp_err(pp, VP_ERR_FORMAT, "\"rescale_factor\" is not a number"); goto done; }
        pp->rescale_factor = f->valuedouble;
    }
    int mean_null = 0, std_null = 0;
    if ((rc = get_triple(pp, o, "image_mean", pp->mean, &mean_null))) goto done;
    if ((rc = get_triple(pp, o, "image_std", pp->std, &std_null))) goto done;
    if (pp->do_normalize && (mean_null || std_null)) {
        rc = pp_err(pp, VP_ERR_FORMAT, "do_normalize with a null \"image_mean\" or \"image_std\"");
        goto done;
    }
    if (pp->do_resize && pp->size.kind == SZ_NONE) { rc = pp_err(pp, VP_ERR_FORMAT, "do_resize without \"size\""); goto done; }
    if (pp->do_center_crop && pp->crop.kind != SZ_HW) {
        rc = pp_err(pp, VP_ERR_FORMAT, "do_center_crop needs \"crop_size\" with height and width");
        goto done;
    }
done:
    cJSON_Delete(root);
    return rc;
}

static vp_preproc *pp_new(const char *name)
{
    vp_preproc *pp = vp__calloc(1, sizeof *pp);
    if (!pp) return NULL;
    pp->alloc = vp__alloc_get();
    pp->name = vp__strdup(name ? name : "preprocessor_config.json");
    return pp;
}

static int vp_preproc_open_json__impl(vp_preproc **out, const char *json, size_t len, const char *name)
{
    vp_preproc *pp = pp_new(name);
    *out = pp;
    if (!pp) return VP_ERR_NOMEM;
    if (!json) return pp_err(pp, VP_ERR_ARG, "no JSON");
    if (len > VP_PREPROC_MAX_JSON) return pp_err(pp, VP_ERR_LIMIT, "larger than VP_PREPROC_MAX_JSON");
    return configure(pp, json, len, NULL);
}

int vp_preproc_open_json_ex(vp_preproc **out, const char *json, size_t len, const char *name, const vp_allocator *allocator)
{
    VP__WITH_ALLOC(allocator, int, vp_preproc_open_json__impl(out, json, len, name));
}

int vp_preproc_open_json(vp_preproc **out, const char *json, size_t len, const char *name)
{
    return vp_preproc_open_json_ex(out, json, len, name, vp__alloc_current());
}

/* Does a processor's processor_config.json nest the image processor? As
 * transformers 5's from_pretrained, which prefers it to
 * preprocessor_config.json (and save_pretrained of a processor writes only
 * it). A file that is absent, unreadable as JSON or without the key: no. */
static bool nests_image_processor(const vp_map *m)
{
    cJSON *o = vp_json_parse((const char *)m->base, (size_t)m->size);
    bool yes = cJSON_IsObject(o) && cJSON_HasObjectItem(o, "image_processor");
    cJSON_Delete(o);
    return yes;
}

static int vp_preproc_open__impl(vp_preproc **out, const char *path)
{
    *out = NULL;
    if (!path) return vp_preproc_open_json(out, NULL, 0, "preprocessor_config.json");
    vp_buf file = { 0 };
    vp__buf_puts(&file, path);
    struct stat st;
    const char *member = NULL;
    vp_map m;
    char err[512];
    int rc;
    if (stat(path, &st) == 0 && S_ISDIR(st.st_mode)) {
        vp__buf_puts(&file, "/processor_config.json");
        if (file.oom) { vp__buf_free(&file); return VP_ERR_NOMEM; }
        if (vp__map_open(&m, file.p, err, sizeof err) == VP_OK) {
            if (m.size <= VP_PREPROC_MAX_JSON && nests_image_processor(&m)) member = "image_processor";
            if (!member) vp__map_close(&m);
        }
        if (!member) {
            file.n = 0;
            vp__buf_puts(&file, path);
            vp__buf_puts(&file, "/preprocessor_config.json");
        }
    }
    if (file.oom) { if (member) vp__map_close(&m); vp__buf_free(&file); return VP_ERR_NOMEM; }
    if (!member && (rc = vp__map_open(&m, file.p, err, sizeof err)) != VP_OK) {
        vp_preproc *pp = pp_new(file.p);
        *out = pp;
        vp__buf_free(&file);
        if (!pp) return VP_ERR_NOMEM;
        snprintf(pp->errmsg, sizeof pp->errmsg, "%s", err);
        return VP_ERR_IO;
    }
    vp_preproc *pp = pp_new(file.p);
    *out = pp;
    vp__buf_free(&file);
    if (!pp) rc = VP_ERR_NOMEM;
    else if (m.size > VP_PREPROC_MAX_JSON) rc = pp_err(pp, VP_ERR_LIMIT, "larger than VP_PREPROC_MAX_JSON");
    else rc = configure(pp, m.size ? (const char *)m.base : "", (size_t)m.size, member);
    vp__map_close(&m);
    return rc;
}

int vp_preproc_open_ex(vp_preproc **out, const char *path, const vp_allocator *allocator)
{
    VP__WITH_ALLOC(allocator, int, vp_preproc_open__impl(out, path));
}

int vp_preproc_open(vp_preproc **out, const char *path)
{
    return vp_preproc_open_ex(out, path, vp__alloc_current());
}

static void vp_preproc_free__impl(vp_preproc *pp)
{
    if (!pp) return;
    vp__free(pp->name);
    vp__free(pp);
}

void vp_preproc_free(vp_preproc *pp)
{
    VP__WITH_ALLOC_VOID(pp ? &pp->alloc : vp__alloc_current(), vp_preproc_free__impl(pp));
}

const char *vp_preproc_errmsg(const vp_preproc *pp) { return pp ? pp->errmsg : "out of memory"; }
const char *vp_preproc_class(const vp_preproc *pp) { return pp ? pp->cls : ""; }

/* ---- sizes ---------------------------------------------------------------- */
/* The resize target (height, width) for an h x w image (`who` names it in messages). */
static int resize_target(vp_preproc *pp, const char *who, int h, int w, int *oh, int *ow)
{
    const size_spec *s = &pp->size;
    double rh, rw;
    if (s->kind == SZ_HW) {
        rh = s->h; rw = s->w;
    } else if (s->kind == SZ_SHORT) {
        /* get_resize_output_image_size(default_to_square=False) */
        int shrt = w <= h ? w : h, lng = w <= h ? h : w;
        double nl = floor((double)s->shortest * (double)lng / (double)shrt);
        if (w <= h) { rh = nl; rw = s->shortest; } else { rh = s->shortest; rw = nl; }
    } else {
        /* get_size_with_aspect_ratio(image_size, shortest_edge, longest_edge) */
        double size = s->shortest, raw = -1;
        double mn = h < w ? h : w, mx = h < w ? w : h;
        if (mx / mn * size > s->longest) {
            raw = s->longest * mn / mx;
            size = nearbyint(raw);   /* Python's round(): half to even */
        }
        if ((h <= w && h == size) || (w <= h && w == size)) { rh = h; rw = w; }
        else if (w < h) { rw = size; rh = floor(raw >= 0 ? raw * h / w : size * h / w); }
        else { rh = size; rw = floor(raw >= 0 ? raw * w / h : size * w / h); }
    }
    if (rh < 1 || rw < 1)
        return pp_err(pp, VP_ERR_ARG, "%s: resizing its %dx%d pixels gives an empty image", who, w, h);
    /* The intermediate image is bounded by the pixel limit only (a 2x30000
     * image resized to a shortest edge of 224 is 224 x 3360000 in transformers too). */
    if (rh * rw > (double)VP_IMAGE_MAX_PIXELS)
        return pp_err(pp, VP_ERR_LIMIT, "%s: resizing its %dx%d pixels to %.0fx%.0f would exceed VP_IMAGE_MAX_PIXELS",
                      who, w, h, rw, rh);
    *oh = (int)rh;
    *ow = (int)rw;
    return VP_OK;
}

static int out_size(vp_preproc *pp, const vp_image *img, int *rh, int *rw, int *oh, int *ow)
{
    if (!img || !img->rgb) return pp_err(pp, VP_ERR_ARG, "%s: image has no pixels", img && img->name ? img->name : "image");
    int h = img->h, w = img->w, rc;
    if (pp->do_resize && (rc = resize_target(pp, img->name, img->h, img->w, &h, &w))) return rc;
    *rh = h; *rw = w;
    if (pp->do_center_crop) { h = pp->crop.h; w = pp->crop.w; }
    *oh = h; *ow = w;
    return VP_OK;
}

static int vp_preproc_output_size__impl(vp_preproc *pp, const vp_image *img, int *height, int *width)
{
    if (!pp) return VP_ERR_ARG;
    int rh, rw;
    return out_size(pp, img, &rh, &rw, height, width);
}

int vp_preproc_output_size(vp_preproc *pp, const vp_image *img, int *height, int *width)
{
    VP__WITH_ALLOC(pp ? &pp->alloc : vp__alloc_current(), int, vp_preproc_output_size__impl(pp, img, height, width));
}

/* Python's floor division for the crop offset. */
static int floordiv2(int a) { return a >= 0 ? a / 2 : -((-a + 1) / 2); }

static int vp_preproc_run__impl(vp_preproc *pp, vp_image *const *images, size_t n, float *out, size_t out_floats)
{
    if (!pp) return VP_ERR_ARG;
    pp->errmsg[0] = 0;
    if (n && (!images || !out)) return pp_err(pp, VP_ERR_ARG, "no images or no output");
    int H = 0, W = 0;
    for (size_t i = 0; i < n; i++) {
        int rh, rw, oh, ow, rc;
        if ((rc = out_size(pp, images[i], &rh, &rw, &oh, &ow))) return rc;
        if (i == 0) { H = oh; W = ow; }
        else if (oh != H || ow != W)
            return pp_err(pp, VP_ERR_ARG, "image %zu gives %dx%d pixel values where image 0 gives %dx%d; "
                          "they cannot be batched", i, ow, oh, W, H);
    }
    uint64_t need = (uint64_t)n * 3 * (uint64_t)H * (uint64_t)W;
    if (need > out_floats) return pp_err(pp, VP_ERR_ARG, "output holds %zu floats, %llu needed", out_floats,
                                         (unsigned long long)need);
    size_t plane = (size_t)H * (size_t)W;
    for (size_t i = 0; i < n; i++) {
        vp_image *img = images[i];
        int rh, rw, oh, ow;
        out_size(pp, img, &rh, &rw, &oh, &ow);
        const uint8_t *src = pp->do_convert_rgb ? vp_image_pixels_on_white(img) : img->rgb;
        uint8_t *tmp = NULL;
        if (rh != img->h || rw != img->w) {
            tmp = vp__malloc((size_t)rh * (size_t)rw * 3);
            if (!tmp) return pp_err(pp, VP_ERR_NOMEM, "out of memory resizing to %dx%d", rw, rh);
            int rc = vp__resize_rgb(src, img->w, img->h, tmp, rw, rh, pp->resample);
            if (rc) { vp__free(tmp); return pp_err(pp, rc, "resize to %dx%d failed", rw, rh); }
            src = tmp;
        }
        int top = 0, left = 0;
        if (pp->do_center_crop) { top = floordiv2(rh - oh); left = floordiv2(rw - ow); }
        float *o = out + i * 3 * plane;
        for (int c = 0; c < 3; c++) {
            float m = pp->mean[c], s = pp->std[c];
            for (int y = 0; y < oh; y++) {
                int sy = top + y;
                float *orow = o + (size_t)c * plane + (size_t)y * (size_t)ow;
                for (int x = 0; x < ow; x++) {
                    int sx = left + x;
                    unsigned v = 0;   /* padding is zeros, before rescale */
                    if (sy >= 0 && sy < rh && sx >= 0 && sx < rw) v = src[((size_t)sy * (size_t)rw + (size_t)sx) * 3 + (size_t)c];
                    float f = pp->do_rescale ? (float)((double)v * pp->rescale_factor) : (float)v;
                    if (pp->do_normalize) f = (f - m) / s;
                    orow[x] = f;
                }
            }
        }
        vp__free(tmp);
    }
    return VP_OK;
}

int vp_preproc_run(vp_preproc *pp, vp_image *const *images, size_t n, float *out, size_t out_floats)
{
    VP__WITH_ALLOC(pp ? &pp->alloc : vp__alloc_current(), int, vp_preproc_run__impl(pp, images, n, out, out_floats));
}
