/* Element types: names, sizes and conversions (round-to-nearest-even, as torch). */
#include <math.h>
#include <string.h>

#include "internal.h"

static const struct { const char *np, *st; size_t size; } T[VP_DTYPE_COUNT] = {
    [VP_F64] = {"float64", "F64", 8}, [VP_F32] = {"float32", "F32", 4},
    [VP_F16] = {"float16", "F16", 2}, [VP_BF16] = {"bfloat16", "BF16", 2},
    [VP_I64] = {"int64", "I64", 8},   [VP_I32] = {"int32", "I32", 4},
    [VP_I16] = {"int16", "I16", 2},   [VP_I8] = {"int8", "I8", 1},
    [VP_U8] = {"uint8", "U8", 1},     [VP_BOOL] = {"bool", "BOOL", 1},
};

size_t vp_dtype_size(vp_dtype t) { return (unsigned)t < VP_DTYPE_COUNT ? T[t].size : 0; }
const char *vp_dtype_name(vp_dtype t) { return (unsigned)t < VP_DTYPE_COUNT ? T[t].np : "?"; }
const char *vp_dtype_st_name(vp_dtype t) { return (unsigned)t < VP_DTYPE_COUNT ? T[t].st : "?"; }

int vp_dtype_parse(const char *name, vp_dtype *out)
{
    for (int i = 0; i < VP_DTYPE_COUNT; i++)
        if (!strcmp(name, T[i].np) || !strcmp(name, T[i].st)) { *out = (vp_dtype)i; return VP_OK; }
    return VP_ERR_NOTFOUND;
}

static inline uint32_t f2u(float f) { uint32_t u; memcpy(&u, &f, 4); return u; }
static inline float u2f(uint32_t u) { float f; memcpy(&f, &u, 4); return f; }

static float half_to_float(uint16_t h)
{
    uint32_t sign = (uint32_t)(h & 0x8000) << 16;
    uint32_t exp = (h >> 10) & 0x1f, man = h & 0x3ff;
    if (exp == 0) {
        if (man == 0) return u2f(sign);
        /* subnormal: value = man * 2^-24 */
        float f = (float)man * 5.9604644775390625e-08f;
        return sign ? -f : f;
    }
    if (exp == 31) return u2f(sign | 0x7f800000u | (man << 13));
    return u2f(sign | ((exp + 112) << 23) | (man << 13));
}

static uint16_t float_to_half(float f)
{
    uint32_t u = f2u(f);
    uint16_t sign = (uint16_t)((u >> 16) & 0x8000);
    uint32_t a = u & 0x7fffffffu;
    if (a >= 0x7f800000u) /* inf or nan */
        return sign | 0x7c00 | (a > 0x7f800000u ? (uint16_t)(0x200 | ((a >> 13) & 0x3ff)) : 0);
    if (a >= 0x477ff000u) return sign | 0x7c00; /* rounds to >= 65520: inf */
    if (a < 0x38800000u) {
        /* result is subnormal or zero: scale so the integer part is the mantissa */
        float v = u2f(a) * 16777216.0f; /* 2^24: exact, a < 2^-14 */
        /* v < 1024; round to nearest even using the FPU (default mode is RNE) */
        float r = nearbyintf(v);
        return sign | (uint16_t)r;
    }
    uint32_t mant_odd = (a >> 13) & 1;
    a += 0xfffu + mant_odd;          /* round to nearest even on bit 13 */
    a -= (uint32_t)(112u << 23);
    return sign | (uint16_t)(a >> 13);
}

static float bf16_to_float(uint16_t b) { return u2f((uint32_t)b << 16); }

static uint16_t float_to_bf16(float f)
{
    uint32_t u = f2u(f);
    if ((u & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((u >> 16) | 0x40); /* quiet nan */
    u += 0x7fffu + ((u >> 16) & 1);
    return (uint16_t)(u >> 16);
}

static double load(const void *p, vp_dtype t, size_t i)
{
    switch (t) {
    case VP_F64: { double v; memcpy(&v, (const char *)p + 8 * i, 8); return v; }
    case VP_F32: { float v; memcpy(&v, (const char *)p + 4 * i, 4); return v; }
    case VP_F16: { uint16_t v; memcpy(&v, (const char *)p + 2 * i, 2); return half_to_float(v); }
    case VP_BF16: { uint16_t v; memcpy(&v, (const char *)p + 2 * i, 2); return bf16_to_float(v); }
    case VP_I64: { int64_t v; memcpy(&v, (const char *)p + 8 * i, 8); return (double)v; }
    case VP_I32: { int32_t v; memcpy(&v, (const char *)p + 4 * i, 4); return v; }
    case VP_I16: { int16_t v; memcpy(&v, (const char *)p + 2 * i, 2); return v; }
    case VP_I8: return ((const int8_t *)p)[i];
    case VP_U8: return ((const uint8_t *)p)[i];
    case VP_BOOL: return ((const uint8_t *)p)[i] != 0;
    default: return 0;
    }
}

static int64_t load_i(const void *p, vp_dtype t, size_t i)
{
    switch (t) {
    case VP_I64: { int64_t v; memcpy(&v, (const char *)p + 8 * i, 8); return v; }
    case VP_I32: { int32_t v; memcpy(&v, (const char *)p + 4 * i, 4); return v; }
    case VP_I16: { int16_t v; memcpy(&v, (const char *)p + 2 * i, 2); return v; }
    case VP_I8: return ((const int8_t *)p)[i];
    case VP_U8: return ((const uint8_t *)p)[i];
    case VP_BOOL: return ((const uint8_t *)p)[i] != 0;
    default: {
        double d = load(p, t, i);
        if (!(d == d)) return 0;
        if (d >= 9.2233720368547758e18) return INT64_MAX;
        if (d <= -9.2233720368547758e18) return INT64_MIN;
        return (int64_t)d;
    }
    }
}

static bool is_float(vp_dtype t) { return t == VP_F64 || t == VP_F32 || t == VP_F16 || t == VP_BF16; }

void vp_dtype_convert(void *dst, vp_dtype dt, const void *src, vp_dtype st, size_t n)
{
    if (dt == st) { memcpy(dst, src, n * vp_dtype_size(dt)); return; }
    char *d = dst;
    const char *s = src;
    /* Fast paths for the conversions that matter for model weights. */
    if (st == VP_F16 && dt == VP_F32) {
        for (size_t i = 0; i < n; i++) { uint16_t h; memcpy(&h, s + 2 * i, 2); float f = half_to_float(h); memcpy(d + 4 * i, &f, 4); }
        return;
    }
    if (st == VP_BF16 && dt == VP_F32) {
        for (size_t i = 0; i < n; i++) { uint16_t h; memcpy(&h, s + 2 * i, 2); float f = bf16_to_float(h); memcpy(d + 4 * i, &f, 4); }
        return;
    }
    if (st == VP_F32 && dt == VP_F16) {
        for (size_t i = 0; i < n; i++) { float f; memcpy(&f, s + 4 * i, 4); uint16_t h = float_to_half(f); memcpy(d + 2 * i, &h, 2); }
        return;
    }
    if (st == VP_F32 && dt == VP_BF16) {
        for (size_t i = 0; i < n; i++) { float f; memcpy(&f, s + 4 * i, 4); uint16_t h = float_to_bf16(f); memcpy(d + 2 * i, &h, 2); }
        return;
    }
    for (size_t i = 0; i < n; i++) {
        switch (dt) {
        case VP_F64: { double v = load(s, st, i); if (!is_float(st)) v = (double)load_i(s, st, i); memcpy(d + 8 * i, &v, 8); break; }
        /* f64 -> f32/f16/bf16 goes through float; double rounding can differ
         * from a direct rounding only in rare halfway cases. */
        case VP_F32: { float v = (float)load(s, st, i); memcpy(d + 4 * i, &v, 4); break; }
        case VP_F16: { uint16_t v = float_to_half((float)load(s, st, i)); memcpy(d + 2 * i, &v, 2); break; }
        case VP_BF16: { uint16_t v = float_to_bf16((float)load(s, st, i)); memcpy(d + 2 * i, &v, 2); break; }
        case VP_I64: { int64_t v = load_i(s, st, i); memcpy(d + 8 * i, &v, 8); break; }
        case VP_I32: { int32_t v = (int32_t)load_i(s, st, i); memcpy(d + 4 * i, &v, 4); break; }
        case VP_I16: { int16_t v = (int16_t)load_i(s, st, i); memcpy(d + 2 * i, &v, 2); break; }
        case VP_I8: ((int8_t *)d)[i] = (int8_t)load_i(s, st, i); break;
        case VP_U8: ((uint8_t *)d)[i] = (uint8_t)load_i(s, st, i); break;
        case VP_BOOL: ((uint8_t *)d)[i] = load(s, st, i) != 0; break;
        default: break;
        }
    }
}
