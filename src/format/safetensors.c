/* STUB: replaced by the safetensors reader and writer. */
#include "core/internal.h"
int vp__open_safetensors(vp_source *src) { return vp__err(src, VP_ERR_UNSUPPORTED, "safetensors not implemented yet"); }
int vp_st_writer_open(vp_st_writer **out, const char *path) { (void)path; *out = NULL; return VP_ERR_UNSUPPORTED; }
int vp_st_writer_meta(vp_st_writer *w, const char *k, const char *v) { (void)w; (void)k; (void)v; return VP_ERR_UNSUPPORTED; }
int vp_st_writer_add(vp_st_writer *w, const char *name, vp_dtype dtype, int ndim, const int64_t *shape) { (void)w; (void)name; (void)dtype; (void)ndim; (void)shape; return VP_ERR_UNSUPPORTED; }
int vp_st_writer_write(vp_st_writer *w, const void *data, size_t n) { (void)w; (void)data; (void)n; return VP_ERR_UNSUPPORTED; }
int vp_st_writer_copy(vp_st_writer *w, int fd, uint64_t offset, uint64_t n) { (void)w; (void)fd; (void)offset; (void)n; return VP_ERR_UNSUPPORTED; }
int vp_st_writer_finish(vp_st_writer *w) { (void)w; return VP_ERR_UNSUPPORTED; }
void vp_st_writer_close(vp_st_writer *w) { (void)w; }
const char *vp_st_writer_errmsg(const vp_st_writer *w) { (void)w; return "not implemented"; }
