/* STUB: replaced by the pickle value tree accessors. */
#include "core/internal.h"
void vp__value_free_all(vp_source *src) { (void)src; }
vp_kind vp_value_kind(const vp_value *v) { (void)v; return VP_V_NONE; }
size_t vp_value_len(const vp_value *v) { (void)v; return 0; }
const vp_value *vp_value_item(const vp_value *v, size_t i) { (void)v; (void)i; return NULL; }
const vp_value *vp_value_key(const vp_value *v, size_t i) { (void)v; (void)i; return NULL; }
const vp_value *vp_value_get(const vp_value *v, const char *key) { (void)v; (void)key; return NULL; }
const char *vp_value_str(const vp_value *v) { (void)v; return NULL; }
int64_t vp_value_int(const vp_value *v) { (void)v; return 0; }
double vp_value_float(const vp_value *v) { (void)v; return 0; }
const vp_value *vp_value_state(const vp_value *v) { (void)v; return NULL; }
const vp_value *vp_value_args(const vp_value *v) { (void)v; return NULL; }
long vp_value_tensor(const vp_value *v) { (void)v; return -1; }
