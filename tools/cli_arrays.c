/* Arrays the commands take and give: inputs read from .npy / .npz / a
 * torch file / safetensors, outputs written as .npz. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vitport/vitport.h"
#include "cli.h"

int vp_cli_load_array(const char *path, const char *name, vp_dtype dtype, vp_cli_array *out,
                      char *err, size_t errlen)
{
    memset(out, 0, sizeof *out);
    vp_source *src = NULL;
    int rc = vp_source_open(&src, path, NULL);
    if (rc) {
        snprintf(err, errlen, "%s", src ? vp_source_errmsg(src) : "out of memory");
        vp_source_close(src);
        return rc;
    }
    long i = vp_source_find(src, name);
    if (i < 0 && vp_source_count(src) == 1) i = 0;
    if (i < 0) {
        snprintf(err, errlen, "%s: no array named '%s' (and not exactly one array)", path, name);
        vp_source_close(src);
        return VP_ERR_NOTFOUND;
    }
    const vp_tensor *t = vp_source_tensor(src, (size_t)i);
    int float_in = t->dtype == VP_F32 || t->dtype == VP_F64 || t->dtype == VP_F16 || t->dtype == VP_BF16;
    int float_out = dtype == VP_F32;
    if (float_in != float_out || t->dtype == VP_BOOL) {
        snprintf(err, errlen, "%s: '%s' is %s; %s wants %s", path, t->name, vp_dtype_name(t->dtype), name,
                 float_out ? "floating-point values" : "integers");
        vp_source_close(src);
        return VP_ERR_FORMAT;
    }
    size_t bytes = (size_t)t->numel * vp_dtype_size(dtype);
    out->data = malloc(bytes ? bytes : 1);
    if (!out->data) { vp_source_close(src); snprintf(err, errlen, "out of memory"); return VP_ERR_NOMEM; }
    rc = vp_source_read_as(src, (size_t)i, dtype, out->data, bytes);
    if (rc) {
        snprintf(err, errlen, "%s", vp_source_errmsg(src));
        free(out->data);
        out->data = NULL;
        vp_source_close(src);
        return rc;
    }
    out->ndim = t->ndim;
    memcpy(out->shape, t->shape, sizeof out->shape);
    out->dtype = dtype;
    vp_source_close(src);
    return VP_OK;
}

void vp_cli_array_free(vp_cli_array *a)
{
    free(a->data);
    memset(a, 0, sizeof *a);
}
