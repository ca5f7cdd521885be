/* A growable byte buffer (for building JSON, names, messages). Not installed. */
#ifndef VP_CORE_BUF_H
#define VP_CORE_BUF_H

#include <stdbool.h>
#include <stddef.h>

/* {0} is an empty buffer; a failed growth sets oom and drops later additions. */
typedef struct vp_buf { char *p; size_t n, cap; bool oom; } vp_buf;
void vp__buf_add(vp_buf *b, const void *data, size_t n);
void vp__buf_puts(vp_buf *b, const char *s);
void vp__buf_printf(vp_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void vp__buf_free(vp_buf *b);
/* s as a quoted JSON string, escaped as Python's json.dumps and Rust's
 * serde_json escape it (\" \\ \b \f \n \r \t, other controls \u00XX);
 * ascii: as json.dumps(ensure_ascii=True), every character past U+007E
 * as \uXXXX (a byte of invalid UTF-8 as U+FFFD). */
void vp__buf_json_str(vp_buf *b, const char *s, bool ascii);

#endif
