/*
 * vitport images: decode JPEG and PNG, resize as Pillow does, and turn
 * images into the `pixel_values` that transformers' image processors give.
 *
 * The reference is Pillow 13.0.0 and transformers' PIL-based ("slow")
 * image processor classes (ViTImageProcessor, DeiTImageProcessor,
 * CLIPImageProcessor, SiglipImageProcessor). Same conventions as
 * vitport.h: opaque handles, int result codes, a one-line message per
 * handle, destroying NULL is a no-op.
 */
#ifndef VITPORT_IMAGE_H
#define VITPORT_IMAGE_H

#include "vitport.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ------------------------------------------------------------------ */
/* Images                                                              */
/* ------------------------------------------------------------------ */
typedef struct vp_image vp_image;

/* Pillow's resampling filters, with Pillow's (and the configs' "resample")
 * numbers. */
enum {
    VP_RESAMPLE_NEAREST = 0,
    VP_RESAMPLE_LANCZOS = 1,
    VP_RESAMPLE_BILINEAR = 2,
    VP_RESAMPLE_BICUBIC = 3,
    VP_RESAMPLE_BOX = 4,
    VP_RESAMPLE_HAMMING = 5
};

/**
 * Constructor. Decodes the JPEG or PNG file at `path` (recognised from its
 * bytes) into 8-bit RGB exactly as Pillow's Image.open(path).convert("RGB"):
 * any PNG bit depth, palette, grayscale, alpha, 16-bit; grayscale and CMYK
 * JPEG. The EXIF orientation is not applied (transformers does not).
 * Images above VP_IMAGE_MAX_PIXELS are refused before any pixel is
 * allocated. *out always receives a handle unless memory runs out (then
 * NULL), so that vp_image_errmsg() can tell why; free it in either case.
 */
VP_API int vp_image_load(vp_image **out, const char *path);
/** As above, every allocation for the handle through `allocator` (NULL: the default; vitport.h, Allocators). */
VP_API int vp_image_load_ex(vp_image **out, const char *path, const vp_allocator *allocator);

/** Constructor: as vp_image_load, from `n` bytes in memory; `name` (may be
 * NULL) is used in messages. The bytes are not kept. */
VP_API int vp_image_load_memory(vp_image **out, const void *data, size_t n, const char *name);
/** As above, every allocation for the handle through `allocator` (NULL: the default; vitport.h, Allocators). */
VP_API int vp_image_load_memory_ex(vp_image **out, const void *data, size_t n, const char *name,
                                   const vp_allocator *allocator);

/** Constructor: an image from `height` rows of `width` RGB pixels (an
 * (H, W, 3) uint8 array in C order), as transformers takes a NumPy array. */
VP_API int vp_image_from_rgb(vp_image **out, int width, int height, const uint8_t *rgb);
/** As above, every allocation for the handle through `allocator` (NULL: the default; vitport.h, Allocators). */
VP_API int vp_image_from_rgb_ex(vp_image **out, int width, int height, const uint8_t *rgb, const vp_allocator *allocator);

/** Destructor. NULL is a harmless no-op. */
VP_API void vp_image_free(vp_image *img);

/** The message of the last failure on this handle ("" if none). */
VP_API const char *vp_image_errmsg(const vp_image *img);

VP_API int vp_image_width(const vp_image *img);
VP_API int vp_image_height(const vp_image *img);

/** The pixels as convert("RGB") gives them: height rows of width*3 bytes.
 * NULL if the image failed to load. Valid until vp_image_free. */
VP_API const uint8_t *vp_image_pixels(const vp_image *img);

/**
 * The pixels as transformers' convert_to_rgb gives them (what processors
 * with do_convert_rgb use): for an image with an alpha band or a PNG
 * transparency entry, convert("RGBA") composited onto opaque white with
 * Pillow's alpha_composite; otherwise the same as vp_image_pixels().
 */
VP_API const uint8_t *vp_image_pixels_on_white(const vp_image *img);

/** Pillow's mode for the decoded file ("1", "L", "LA", "I;16", "P",
 * "RGB", "RGBA", "CMYK"), "RGB" for raw arrays. */
VP_API const char *vp_image_mode(const vp_image *img);

/** "jpeg", "png" or "raw". */
VP_API const char *vp_image_format(const vp_image *img);

/** Whether the image has an alpha band or a transparency entry (then
 * vp_image_pixels_on_white() may differ from vp_image_pixels()). */
VP_API int vp_image_has_alpha(const vp_image *img);

/**
 * Method: resize the RGB pixels (`on_white`: those of
 * vp_image_pixels_on_white) to width x height with `filter`
 * (VP_RESAMPLE_*), exactly as Pillow's Image.resize((width, height),
 * filter) on an RGB image; dst receives height*width*3 bytes.
 */
VP_API int vp_image_resize(vp_image *img, int on_white, int width, int height, int filter,
                           uint8_t *dst, size_t dst_bytes);

/* ------------------------------------------------------------------ */
/* Image processors (preprocessor_config.json)                         */
/* ------------------------------------------------------------------ */
typedef struct vp_preproc vp_preproc;

/**
 * Constructor. Reads `path`: a model directory or the JSON file itself.
 * In a directory, as transformers 5's from_pretrained: processor_config.json's
 * "image_processor" object when that file has one (a processor's
 * save_pretrained writes only it), else preprocessor_config.json. The class is taken
 * from "image_processor_type" (or the older "feature_extractor_type"):
 * ViT, DeiT, CLIP and Siglip image processors; keys the file leaves out
 * take that class's defaults, and a key set to null means None (a null
 * do_* is false), as from_pretrained does.
 * *out always receives a handle unless memory runs out.
 */
VP_API int vp_preproc_open(vp_preproc **out, const char *path);
/** As above, every allocation for the handle through `allocator` (NULL: the default; vitport.h, Allocators). */
VP_API int vp_preproc_open_ex(vp_preproc **out, const char *path, const vp_allocator *allocator);

/** Constructor: as vp_preproc_open from JSON text; `name` names it in messages. */
VP_API int vp_preproc_open_json(vp_preproc **out, const char *json, size_t len, const char *name);
/** As above, every allocation for the handle through `allocator` (NULL: the default; vitport.h, Allocators). */
VP_API int vp_preproc_open_json_ex(vp_preproc **out, const char *json, size_t len, const char *name,
                                   const vp_allocator *allocator);

/** Destructor. NULL is a harmless no-op. */
VP_API void vp_preproc_free(vp_preproc *pp);

VP_API const char *vp_preproc_errmsg(const vp_preproc *pp);

/** The class the settings were taken from, e.g. "CLIPImageProcessor". */
VP_API const char *vp_preproc_class(const vp_preproc *pp);

/** Method: the (height, width) of `img`'s pixel_values (channels are 3).
 * It depends on the image only with a shortest-edge resize and no crop. */
VP_API int vp_preproc_output_size(vp_preproc *pp, const vp_image *img, int *height, int *width);

/**
 * Method: preprocess n images into out, float32 [n, 3, H, W] in C order
 * (out_floats must be at least that many). Every image must give the same
 * H and W (see vp_preproc_output_size), else VP_ERR_ARG. The result equals
 * transformers' PIL-backend processor on the same pixels: resize (Pillow),
 * center crop (zero padding when the crop is larger), rescale (float64
 * product rounded to float32), normalize (float32).
 */
VP_API int vp_preproc_run(vp_preproc *pp, vp_image *const *images, size_t n,
                          float *out, size_t out_floats);

#ifdef __cplusplus
}
#endif
#endif /* VITPORT_IMAGE_H */
