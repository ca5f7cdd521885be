/* STUB: replaced by the zip reader. */
#include "core/internal.h"
int vp__zip_open(vp_source *src) { return vp__err(src, VP_ERR_UNSUPPORTED, "zip not implemented yet"); }
bool vp__zip_has_suffix(const vp_source *src, const char *suffix) { (void)src; (void)suffix; return false; }
void vp__zip_free(struct vp_zip *zip) { (void)zip; }
int vp__zip_inflate(vp_source *src, long entry, uint8_t *dst, uint64_t want) { (void)entry; (void)dst; (void)want; return vp__err(src, VP_ERR_UNSUPPORTED, "zip not implemented yet"); }
