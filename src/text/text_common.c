/*
 * What both tokenizer builders (bpe_vocab.c, spm.c) share: error text and
 * the JSON of the files transformers' tokenizers save (strings as
 * json.dumps(ensure_ascii=False) writes them, AddedToken entries,
 * special_tokens_map.json). The layout is json.dumps(indent=2,
 * sort_keys=True): every object below is written with its keys in sorted
 * order, which the callers keep too.
 */
#include <stdio.h>
#include <string.h>

#include <stdarg.h>

#include "vitport/vitport.h"
#include "core/alloc.h"
#include "core/buf.h"
#include "core/util.h"
#include "text/text.h"

int vp_text_fail(char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vp__verr(err, errlen, NULL, fmt, ap);
    va_end(ap);
    return -1;
}

void vp_text_files_free(vp_text_file *files, int n)
{
    for (int i = 0; i < n; i++) {
        vp__free(files[i].data);
        files[i].data = NULL;
        files[i].len = 0;
    }
}

int vp_text_take(vp_text_file *f, const char *name, vp_buf *b)
{
    if (b->oom || !b->p) { vp__buf_free(b); return -1; }
    f->name = name;
    f->data = b->p;
    f->len = b->n;
    memset(b, 0, sizeof *b);
    return 0;
}

/* `"key": {AddedToken}` at `indent` spaces, as AddedToken.__getstate__()
 * lists it; "special" only in tokenizer_config.json's added_tokens_decoder. */
static void added_token(vp_buf *b, int indent, const vp_text_token *t, const vp_text_style *st, int special)
{
    const char *strip = st->strip ? "true" : "false";
    vp__buf_printf(b, "%*s", indent, "");
    vp__buf_json_str(b, t->key, false);
    vp__buf_puts(b, ": {\n");
    vp__buf_printf(b, "%*s\"content\": ", indent + 2, "");
    vp__buf_json_str(b, t->content, false);
    vp__buf_printf(b, ",\n%*s\"lstrip\": %s,\n", indent + 2, "", strip);
    vp__buf_printf(b, "%*s\"normalized\": %s,\n", indent + 2, "", st->normalized ? "true" : "false");
    vp__buf_printf(b, "%*s\"rstrip\": %s,\n", indent + 2, "", strip);
    vp__buf_printf(b, "%*s\"single_word\": false%s\n", indent + 2, "", special ? "," : "");
    if (special) vp__buf_printf(b, "%*s\"special\": true\n", indent + 2, "");
    vp__buf_printf(b, "%*s}", indent, "");
}

void vp_text_added_tokens_decoder(vp_buf *b, const vp_text_token *t, int n, const vp_text_style *st)
{
    vp__buf_puts(b, "  \"added_tokens_decoder\": {\n");
    for (int i = 0; i < n; i++) {
        added_token(b, 4, &t[i], st, 1);
        vp__buf_puts(b, i + 1 < n ? ",\n" : "\n");
    }
    vp__buf_puts(b, "  },\n");
}

void vp_text_config_common(vp_buf *b, int64_t model_max_length, const char *pad_token, const char *processor_class)
{
    vp__buf_printf(b, "  \"model_max_length\": %lld,\n", (long long)model_max_length);
    vp__buf_puts(b, "  \"pad_token\": ");
    vp__buf_json_str(b, pad_token, false);
    vp__buf_puts(b, ",\n");
    if (processor_class) {
        vp__buf_puts(b, "  \"processor_class\": ");
        vp__buf_json_str(b, processor_class, false);
        vp__buf_puts(b, ",\n");
    }
}

void vp_text_special_tokens_map(vp_buf *b, const vp_text_token *t, int n, const vp_text_style *st)
{
    vp__buf_puts(b, "{\n");
    for (int i = 0; i < n; i++) {
        if (t[i].as_string) {
            vp__buf_puts(b, "  ");
            vp__buf_json_str(b, t[i].key, false);
            vp__buf_puts(b, ": ");
            vp__buf_json_str(b, t[i].content, false);
        } else {
            added_token(b, 2, &t[i], st, 0);
        }
        vp__buf_puts(b, i + 1 < n ? ",\n" : "\n");
    }
    vp__buf_puts(b, "}\n");
}
