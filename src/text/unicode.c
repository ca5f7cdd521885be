/*
 * Code point helpers for the tokenizers (see tokenize.h). The Unicode data
 * comes from utf8proc (Debian's libutf8proc); the few rules it does not
 * carry (the two whitespace sets, U+0130's two-character lower case, Python's
 * Final_Sigma) are written out here from the Unicode standard.
 */
#include <string.h>
#include <utf8proc.h>

#include "vitport/vitport.h"
#include "core/alloc.h"
#include "core/buf.h"
#include "text/tokenize.h"

void vp__ids_push(vp_ids *a, int64_t id)
{
    if (a->oom) return;
    if (a->n == a->cap) {
        size_t cap = a->cap ? a->cap * 2 : 64;
        int64_t *v = vp__realloc(a->v, cap * sizeof *v);
        if (!v) { a->oom = 1; return; }
        a->v = v;
        a->cap = cap;
    }
    a->v[a->n++] = id;
}

void vp__ids_free(vp_ids *a) { vp__free(a->v); memset(a, 0, sizeof *a); }

void vp__cps_push(vp_cps *a, int32_t c)
{
    if (a->oom) return;
    if (a->n == a->cap) {
        size_t cap = a->cap ? a->cap * 2 : 64;
        int32_t *v = vp__realloc(a->v, cap * sizeof *v);
        if (!v) { a->oom = 1; return; }
        a->v = v;
        a->cap = cap;
    }
    a->v[a->n++] = c;
}

void vp__cps_free(vp_cps *a) { vp__free(a->v); memset(a, 0, sizeof *a); }

void vp__utf8_to_cps(const uint8_t *s, size_t n, vp_cps *out)
{
    for (size_t i = 0; i < n;) {
        uint32_t c = s[i];
        int k = c < 0x80 ? 0 : c < 0xe0 ? 1 : c < 0xf0 ? 2 : 3;
        if (k) c &= 0x3f >> k;
        for (int j = 1; j <= k && i + (size_t)j < n; j++) c = (c << 6) | (s[i + j] & 0x3f);
        vp__cps_push(out, (int32_t)c);
        i += (size_t)k + 1;
    }
}

void vp__cps_to_utf8(const int32_t *c, size_t n, vp_buf *b)
{
    for (size_t i = 0; i < n; i++) {
        uint8_t u[4];
        utf8proc_ssize_t k = utf8proc_encode_char(c[i], u);
        vp__buf_add(b, u, (size_t)k);
    }
}

int vp__is_space_onig(int32_t c)
{
    return (c >= 0x09 && c <= 0x0d) || c == 0x20 || c == 0x85 || c == 0xa0 || c == 0x1680 ||
           (c >= 0x2000 && c <= 0x200a) || c == 0x2028 || c == 0x2029 || c == 0x202f || c == 0x205f ||
           c == 0x3000;
}

int vp__is_space_py(int32_t c) { return vp__is_space_onig(c) || (c >= 0x1c && c <= 0x1f); }

size_t vp__space_at(const char *s, size_t n, int back, int python)
{
    if (!n) return 0;
    size_t k = 1;
    if (back) while (k < n && ((uint8_t)s[n - k] & 0xc0) == 0x80) k++;
    else while (k < n && ((uint8_t)s[k] & 0xc0) == 0x80) k++;
    const uint8_t *c = (const uint8_t *)s + (back ? n - k : 0);
    int32_t buf[4];
    vp_cps one = { buf, 0, 4, 0 };
    vp__utf8_to_cps(c, k, &one);
    if (one.n != 1) return 0;
    return (python ? vp__is_space_py(one.v[0]) : vp__is_space_onig(one.v[0])) ? k : 0;
}

int vp__nfc(const uint8_t *s, size_t n, vp_cps *out)
{
    out->n = 0;
    if (!n) return 0;
    /* Canonical decomposition into a buffer of ours, then composition, as
     * utf8proc_NFC does it (UTF8PROC_STABLE | UTF8PROC_COMPOSE). */
    const utf8proc_option_t opt = UTF8PROC_STABLE | UTF8PROC_COMPOSE;
    size_t cap = n + 16;
    for (;;) {
        if (cap > out->cap) {
            int32_t *grown = vp__realloc(out->v, cap * sizeof *grown);
            if (!grown) return -1;
            out->v = grown;
            out->cap = cap;
        }
        utf8proc_ssize_t k = utf8proc_decompose(s, (utf8proc_ssize_t)n, out->v, (utf8proc_ssize_t)out->cap, opt);
        if (k < 0) return -1;                    /* cannot happen: the input was validated */
        if ((size_t)k <= out->cap) {
            /* composing never grows the text */
            utf8proc_ssize_t m = utf8proc_normalize_utf32(out->v, k, opt);
            out->n = m < 0 ? 0 : (size_t)m;
            return m < 0 ? -1 : 0;
        }
        cap = (size_t)k;
    }
}

/* Lowercase or Uppercase or titlecase, for the Final_Sigma context:
 * the letter categories plus the Other_Lowercase / Other_Uppercase ranges. */
static int is_cased(int32_t c)
{
    utf8proc_category_t k = utf8proc_category(c);
    if (k == UTF8PROC_CATEGORY_LU || k == UTF8PROC_CATEGORY_LL || k == UTF8PROC_CATEGORY_LT) return 1;
    static const int32_t other[][2] = {
        { 0xaa, 0xaa }, { 0xba, 0xba }, { 0x2b0, 0x2b8 }, { 0x2c0, 0x2c1 }, { 0x2e0, 0x2e4 }, { 0x345, 0x345 },
        { 0x37a, 0x37a }, { 0x10fc, 0x10fc }, { 0x1d2c, 0x1d6a }, { 0x1d78, 0x1d78 }, { 0x1d9b, 0x1dbf },
        { 0x2071, 0x2071 }, { 0x207f, 0x207f }, { 0x2090, 0x209c }, { 0x2160, 0x217f }, { 0x24b6, 0x24e9 },
        { 0x2c7c, 0x2c7d }, { 0xa69c, 0xa69d }, { 0xa770, 0xa770 }, { 0xa7f2, 0xa7f4 }, { 0xa7f8, 0xa7f9 },
        { 0xab5c, 0xab5f }, { 0xab69, 0xab69 }, { 0x10780, 0x107ba }, { 0x1f130, 0x1f149 },
        { 0x1f150, 0x1f169 }, { 0x1f170, 0x1f189 },
    };
    for (size_t i = 0; i < sizeof other / sizeof other[0]; i++)
        if (c >= other[i][0] && c <= other[i][1]) return 1;
    return 0;
}

/* Case_Ignorable: Mn, Me, Cf, Lm, Sk, and Word_Break MidLetter / MidNumLet
 * / Single_Quote. */
static int is_case_ignorable(int32_t c)
{
    utf8proc_category_t k = utf8proc_category(c);
    if (k == UTF8PROC_CATEGORY_MN || k == UTF8PROC_CATEGORY_ME || k == UTF8PROC_CATEGORY_CF ||
        k == UTF8PROC_CATEGORY_LM || k == UTF8PROC_CATEGORY_SK)
        return 1;
    static const int32_t mid[] = { 0x27, 0x2e, 0x3a, 0xb7, 0x387, 0x55f, 0x5f4, 0x2018, 0x2019, 0x2024,
                                   0x2027, 0xfe13, 0xfe52, 0xfe55, 0xff07, 0xff0e, 0xff1a };
    for (size_t i = 0; i < sizeof mid / sizeof mid[0]; i++)
        if (c == mid[i]) return 1;
    return 0;
}

/* CPython's handle_capital_sigma(). */
static int32_t python_sigma(const int32_t *c, size_t n, size_t i)
{
    size_t j = i;
    while (j > 0 && is_case_ignorable(c[j - 1])) j--;
    int final = j > 0 && is_cased(c[j - 1]);
    if (final) {
        j = i + 1;
        while (j < n && is_case_ignorable(c[j])) j++;
        final = j == n || !is_cased(c[j]);
    }
    return final ? 0x3c2 : 0x3c3;
}

void vp__lower(const int32_t *c, size_t n, int python, vp_cps *out)
{
    out->n = 0;
    for (size_t i = 0; i < n; i++) {
        if (c[i] == 0x130) {          /* SpecialCasing: LATIN CAPITAL LETTER I WITH DOT ABOVE */
            vp__cps_push(out, 0x69);
            vp__cps_push(out, 0x307);
        } else if (python && c[i] == 0x3a3) {
            vp__cps_push(out, python_sigma(c, n, i));
        } else {
            vp__cps_push(out, utf8proc_tolower(c[i]));
        }
    }
}
