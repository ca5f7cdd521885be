/* tests/util/value_walk.h. No allocation, no output: usable from a fuzz
 * target as from a test. */
#include "value_walk.h"

static void walk(const vp_value *v, int depth, int max_depth, long *budget)
{
    if (!v || depth > max_depth || --*budget < 0) return;
    (void)vp_value_str(v);
    (void)vp_value_int(v);
    (void)vp_value_float(v);
    (void)vp_value_tensor(v);
    vp_kind k = vp_value_kind(v);
    size_t n = vp_value_len(v);
    if (k == VP_V_STR || k == VP_V_BYTES) {
        const char *s = vp_value_str(v);
        if (s && n) { volatile char c = s[n - 1]; (void)c; }   /* the length must be readable */
    }
    if (k == VP_V_TUPLE || k == VP_V_LIST || k == VP_V_SET || k == VP_V_DICT) {
        for (size_t i = 0; i < n && *budget > 0; i++) {
            if (k == VP_V_DICT) {
                const vp_value *key = vp_value_key(v, i);
                walk(key, depth + 1, max_depth, budget);
                if (vp_value_kind(key) == VP_V_STR) (void)vp_value_get(v, vp_value_str(key));
            }
            walk(vp_value_item(v, i), depth + 1, max_depth, budget);
        }
        (void)vp_value_item(v, n);   /* out of range: NULL, no crash */
    }
    if (k == VP_V_OBJECT) {
        walk(vp_value_state(v), depth + 1, max_depth, budget);
        walk(vp_value_args(v), depth + 1, max_depth, budget);
    }
}

void tu_walk_values(const vp_value *v, int max_depth, long budget)
{
    walk(v, 0, max_depth, &budget);
}
