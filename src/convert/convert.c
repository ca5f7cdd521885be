/* STUB: replaced by the conversion engine. */
#include <stdio.h>
#include "convert/convert.h"
const vp_family *const vp_families[] = { NULL };
int vp_convert(const char *src_path, const char *key, const char *out_dir, const vp_convert_opts *opts, char *err, size_t errlen)
{ (void)src_path; (void)key; (void)out_dir; (void)opts; snprintf(err, errlen, "convert not implemented yet"); return VP_ERR_UNSUPPORTED; }
