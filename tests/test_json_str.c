/* vp__buf_json_str, the one JSON string writer (config.json, the tokenizer
 * files, safetensors headers), against what Python 3.11's json.dumps wrote
 * for the same strings, ensure_ascii False and True (the expected strings
 * below are its output, pasted as C octal escapes); serde_json, which the
 * safetensors reference writer uses, escapes as json.dumps(ensure_ascii=False)
 * does (tests/py_safetensors.py compares those files byte for byte). */
#include <string.h>

#include "core/internal.h"
#include "test.h"

static const struct { const char *in, *plain, *ascii; } k_cases[] = {
    {"\001\002\003\004\005\006\007\010\011\012\013\014\015\016\017\020\021\022\023\024\025\026\027\030\031\032\033\034\035\036\037 !\"#$%&'()*+,-./0123456789:;<=>\077@ABCDEFGHIJKLMNOPQRSTUVWXYZ[\\]^_`abcdefghijklmnopqrstuvwxyz{|}~\177",
     "\"\\u0001\\u0002\\u0003\\u0004\\u0005\\u0006\\u0007\\b\\t\\n\\u000b\\f\\r\\u000e\\u000f\\u0010\\u0011\\u0012\\u0013\\u0014\\u0015\\u0016\\u0017\\u0018\\u0019\\u001a\\u001b\\u001c\\u001d\\u001e\\u001f !\\\"#$%&'()*+,-./0123456789:;<=>\077@ABCDEFGHIJKLMNOPQRSTUVWXYZ[\\\\]^_`abcdefghijklmnopqrstuvwxyz{|}~\177\"",
     "\"\\u0001\\u0002\\u0003\\u0004\\u0005\\u0006\\u0007\\b\\t\\n\\u000b\\f\\r\\u000e\\u000f\\u0010\\u0011\\u0012\\u0013\\u0014\\u0015\\u0016\\u0017\\u0018\\u0019\\u001a\\u001b\\u001c\\u001d\\u001e\\u001f !\\\"#$%&'()*+,-./0123456789:;<=>\077@ABCDEFGHIJKLMNOPQRSTUVWXYZ[\\\\]^_`abcdefghijklmnopqrstuvwxyz{|}~\\u007f\""},
    {"caf\303\251 \344\270\255\346\226\207 \360\237\230\200 \303\277\304\200\337\277\340\240\200\357\277\277\360\220\200\200\364\217\277\277",
     "\"caf\303\251 \344\270\255\346\226\207 \360\237\230\200 \303\277\304\200\337\277\340\240\200\357\277\277\360\220\200\200\364\217\277\277\"",
     "\"caf\\u00e9 \\u4e2d\\u6587 \\ud83d\\ude00 \\u00ff\\u0100\\u07ff\\u0800\\uffff\\ud800\\udc00\\udbff\\udfff\""},
    {"",
     "\"\"",
     "\"\""},
    {"a\"b\\c/d",
     "\"a\\\"b\\\\c/d\"",
     "\"a\\\"b\\\\c/d\""},
};

static void check(const char *in, bool ascii, const char *want)
{
    vp_buf b = {0};
    vp__buf_json_str(&b, in, ascii);
    CHECKF(!b.oom && b.p && !strcmp(b.p, want), "ensure_ascii=%d: got %s, want %s", ascii, b.p ? b.p : "(null)", want);
    vp__buf_free(&b);
}

int main(void)
{
    for (size_t i = 0; i < sizeof k_cases / sizeof *k_cases; i++) {
        check(k_cases[i].in, false, k_cases[i].plain);
        check(k_cases[i].in, true, k_cases[i].ascii);
    }
    /* Bytes that are not UTF-8 (which Python could not have held): as they
     * are without ensure_ascii, one U+FFFD per byte that starts no
     * well-formed sequence with it (overlong, surrogate, past U+10FFFF,
     * cut short by the end of the string). */
    check("a\377b", false, "\"a\377b\"");
    check("a\377b", true, "\"a\\ufffdb\"");
    check("\300\200", true, "\"\\ufffd\\ufffd\"");
    check("\355\240\200", true, "\"\\ufffd\\ufffd\\ufffd\"");
    check("\364\220\200\200", true, "\"\\ufffd\\ufffd\\ufffd\\ufffd\"");
    check("x\342\202", true, "\"x\\ufffd\\ufffd\"");
    TEST_MAIN_END();
}
