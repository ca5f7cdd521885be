/* STUB: replaced by the npy/npz reader. */
#include "core/internal.h"
int vp__open_npz(vp_source *src) { return vp__err(src, VP_ERR_UNSUPPORTED, "npz not implemented yet"); }
int vp__open_npy(vp_source *src) { return vp__err(src, VP_ERR_UNSUPPORTED, "npy not implemented yet"); }
