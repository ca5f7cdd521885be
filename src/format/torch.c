/* STUB: replaced by the torch readers. */
#include "core/internal.h"
int vp__open_torch_zip(vp_source *src) { return vp__err(src, VP_ERR_UNSUPPORTED, "torch zip not implemented yet"); }
int vp__open_torch_legacy(vp_source *src) { return vp__err(src, VP_ERR_UNSUPPORTED, "legacy torch not implemented yet"); }
