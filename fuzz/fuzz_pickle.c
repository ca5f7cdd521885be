/* The pickle VM on raw bytes (vp__pickle_load, with a persistent-id loader
 * like the torch readers'), then the same bytes as a file, which reaches the
 * legacy torch reader when they start like a pickle (0x80, protocol). */
#include "fuzz_common.h"
#include "format/pickle.h"

/* ('storage', <storage type>, key, location, numel) -> a storage marker;
 * anything else is an error, as in the torch readers. */
static int fz_persid(void *ud, vp_source *src, const vp_value *pid, vp_value **out)
{
    (void)ud;
    vp_dtype dt;
    const vp_value *key = vp_value_item(pid, 2), *numel = vp_value_item(pid, 4);
    if (vp_value_kind(pid) != VP_V_TUPLE || vp_value_len(pid) != 5 || !vp__value_is_str(vp_value_item(pid, 0), "storage") ||
        !vp__value_storage_type(vp_value_item(pid, 1), &dt) || vp_value_kind(key) != VP_V_STR || vp_value_kind(numel) != VP_V_INT)
        return vp__err(src, VP_ERR_FORMAT, "persistent id is not a storage");
    *out = vp__value_new_storage(src, 0, dt, (uint64_t)vp_value_int(numel), vp_value_str(key));
    return *out ? VP_OK : vp__err(src, VP_ERR_LIMIT, "out of pickle memory");
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* the arena cap as vp_source_open would set it for a file of this size */
    vp_source *src = vp__pickle_scratch_source(VP_ARENA_FIXED + size * VP_ARENA_PER_INPUT_BYTE);
    if (!src) return 0;
    vp_value *v = NULL;
    size_t used = 0;
    int rc = vp__pickle_load(src, data, size, "fuzz.pkl", fz_persid, NULL, &v, &used);
    if (rc == VP_OK) {
        if (!v || used == 0 || used > size) abort();
        tu_walk_values(v, FZ_MAX_DEPTH, FZ_MAX_VALUES);   /* bounded: the value may contain itself */
    } else {
        const char *msg = vp_source_errmsg(src);
        if (v || !*msg || strchr(msg, '\n')) abort();
    }
    if (src->arena.used > src->arena.cap) abort();
    /* the VM's own bound (config.h): its values alone stay within it */
    if (src->arena.used > (size_t)VP_PICKLE_MEM_PER_BYTE * size + VP_PICKLE_MEM_FIXED) abort();
    vp_source_close(src);

    if (size >= 2 && data[0] == 0x80 && data[1] <= 5) fz_run(data, size, NULL);
    return 0;
}
