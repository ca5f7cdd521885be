/* Small helpers every layer uses: overflow-checked arithmetic, shapes,
 * UTF-8, message formatting. Not installed. */
#ifndef VP_CORE_UTIL_H
#define VP_CORE_UTIL_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "vitport/vitport.h"

/* Overflow-checked arithmetic: return false on overflow. */
static inline bool vp__mul_u64(uint64_t a, uint64_t b, uint64_t *r) { return !__builtin_mul_overflow(a, b, r); }
static inline bool vp__add_u64(uint64_t a, uint64_t b, uint64_t *r) { return !__builtin_add_overflow(a, b, r); }

/* "[3, 4]": a shape as messages print it, into buf (truncated to len, which
 * VP_SHAPE_STR_LEN always suffices for); returns buf. */
#define VP_SHAPE_STR_LEN (VP_MAX_DIMS * 22 + 4)
const char *vp__shape_str(char *buf, size_t len, int ndim, const int64_t *shape);

/* The exact integer square root of n, or -1 when n is negative or not a
 * perfect square. */
int64_t vp__isqrt(int64_t n);

/* Whether strides (in elements) lay the shape out in C order; size-1
 * dimensions may have any stride. Products of in-bounds views cannot
 * overflow: vp__add_tensor checked the extent. */
bool vp__c_contiguous(int ndim, const int64_t *shape, const int64_t *strides);

/* "PREFIX: message" (printf-style; no prefix when NULL or "") into dst, kept
 * to one line (vp__oneline); returns 0. The library's messages are made
 * here (a conversion's also pass vp__oneline as vp_convert_ex returns), so
 * names quoted from a file cannot break a line or send a terminal an escape
 * sequence. */
int vp__verr(char *dst, size_t dstlen, const char *prefix, const char *fmt, va_list ap);
/* Every control character in s (CR, LF, TAB, ESC, DEL, ...) becomes a space. */
void vp__oneline(char *s);
/* The message into err (one line, as vp__verr without a prefix); returns
 * code, so that `return vp__errf(err, errlen, VP_ERR_FORMAT, ...)` reports. */
int vp__errf(char *err, size_t errlen, int code, const char *fmt, ...) __attribute__((format(printf, 4, 5)));

/* ---- text ------------------------------------------------------------------ */
/* UTF-8 check: the offset of the first byte that does not start a well-formed
 * sequence, or n. Well-formed as Python's strict decode and Rust's
 * str::from_utf8 take it (no overlong forms, nothing past U+10FFFF, no
 * surrogates); surrogates true accepts U+D800..U+DFFF too (Python's
 * "surrogatepass", which pickle's BINUNICODE uses). NUL bytes are valid. */
size_t vp__utf8_check(const uint8_t *s, size_t n, bool surrogates);
/* A copy of a name fit for a one-line message: control bytes become '?',
 * a name past 150 bytes is cut ("..."); returns buf. */
#define VP_SHOWN_LEN 160
const char *vp__shown(char buf[static VP_SHOWN_LEN], const char *name);
/* Does a JSON text hold the escape \u0000 inside a string? cJSON would cut
 * the string (a key or a value) there, silently changing it. */
bool vp__json_has_nul_escape(const char *s, size_t n);

#endif
