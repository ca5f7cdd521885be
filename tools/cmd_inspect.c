/* vitport inspect: format, top-level structure and tensor table of a file.
 * Reads headers and pickles only, never tensor data. */
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vitport/vitport.h"
#include "cli.h"

static void help(FILE *f)
{
    fprintf(f,
            "usage: vitport inspect FILE [--json] [--key K] [--check-data]\n"
            "\n"
            "Show a checkpoint's format, its top-level structure (for pickled files: keys\n"
            "like model, epoch, args) and every tensor with dtype, shape and byte size,\n"
            "then parameter and byte totals. Reads headers and pickles only, never the\n"
            "tensor data (unless --check-data), so a multi-gigabyte file is instant.\n"
            "\n"
            "Names join nested dictionary keys with '/' (teacher/backbone.cls_token) and\n"
            "list items by index (optimizer/state/0/exp_avg); .npz members drop .npy;\n"
            "TorchScript archives give state_dict() names. A control character in a\n"
            "name or key (from the file) is shown as \\xNN; --json gives it exactly.\n"
            "\n"
            "options:\n"
            "  --json     print one JSON object: format, structure, tensors\n"
            "             [{name, dtype, shape, nbytes}] in file order, totals\n"
            "  --key K    narrow to sub-dictionary K (e.g. teacher, model, state_dict);\n"
            "             names are then relative to it\n"
            "  --check-data\n"
            "             also read the tensor data's checksums: the CRC-32 of every\n"
            "             zip member (torch .pth/.pt, .npz) holding tensor bytes; a\n"
            "             mismatch fails (exit 1) naming the member. safetensors, .npy\n"
            "             and legacy torch files carry no checksums\n"
            "  -h, --help show this help\n");
}

/* One-word description of a value, for the structure line. */
static void describe(const vp_value *v, char *buf, size_t len)
{
    switch (vp_value_kind(v)) {
    case VP_V_NONE: snprintf(buf, len, "None"); break;
    case VP_V_BOOL: snprintf(buf, len, "%s", vp_value_int(v) ? "True" : "False"); break;
    case VP_V_INT: {
        const char *big = vp_value_str(v);
        if (big) snprintf(buf, len, "int %s", big);
        else snprintf(buf, len, "int %lld", (long long)vp_value_int(v));
        break;
    }
    case VP_V_FLOAT: snprintf(buf, len, "float %.17g", vp_value_float(v)); break;
    case VP_V_STR: snprintf(buf, len, "str '%.40s'", vp_value_str(v) ? vp_value_str(v) : ""); break;
    case VP_V_BYTES: snprintf(buf, len, "bytes[%zu]", vp_value_len(v)); break;
    case VP_V_TUPLE: snprintf(buf, len, "tuple[%zu]", vp_value_len(v)); break;
    case VP_V_LIST: snprintf(buf, len, "list[%zu]", vp_value_len(v)); break;
    case VP_V_DICT: snprintf(buf, len, "dict[%zu]", vp_value_len(v)); break;
    case VP_V_SET: snprintf(buf, len, "set[%zu]", vp_value_len(v)); break;
    case VP_V_TENSOR: snprintf(buf, len, "tensor"); break;
    case VP_V_OBJECT: snprintf(buf, len, "object %s", vp_value_str(v) ? vp_value_str(v) : "?"); break;
    default: snprintf(buf, len, "%s", vp_value_str(v) ? vp_value_str(v) : "other"); break; /* dtype, device, ... */
    }
}

static const char *key_text(const vp_value *k, char *buf, size_t len)
{
    if (vp_value_kind(k) == VP_V_STR && vp_value_str(k)) return vp_value_str(k);
    describe(k, buf, len);
    return buf;
}

static void shape_text(const vp_tensor *t, char *buf, size_t len)
{
    size_t n = 0;
    n += (size_t)snprintf(buf + n, len - n, "[");
    for (int d = 0; d < t->ndim && n < len; d++)
        n += (size_t)snprintf(buf + n, len - n, d ? ", %lld" : "%lld", (long long)t->shape[d]);
    if (n < len) snprintf(buf + n, len - n, "]");
}

int cmd_inspect(int argc, char **argv)
{
    const char *path = NULL, *key = NULL;
    int json = 0, check = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) { help(stdout); return VP_EXIT_OK; }
        else if (!strcmp(argv[i], "--json")) json = 1;
        else if (!strcmp(argv[i], "--check-data")) check = 1;
        else if (!strcmp(argv[i], "--key")) {
            if (++i >= argc) { fprintf(stderr, "vitport inspect: --key needs a value\n"); return VP_EXIT_USAGE; }
            key = argv[i];
        } else if (!strncmp(argv[i], "--key=", 6)) key = argv[i] + 6;
        else if (argv[i][0] == '-' && argv[i][1]) {
            fprintf(stderr, "vitport inspect: unknown option '%s' (see vitport inspect --help)\n", argv[i]);
            return VP_EXIT_USAGE;
        } else if (!path) path = argv[i];
        else { fprintf(stderr, "vitport inspect: more than one FILE given\n"); return VP_EXIT_USAGE; }
    }
    if (!path) { help(stderr); return VP_EXIT_USAGE; }

    vp_source *src = NULL;
    if (vp_source_open(&src, path, key) != VP_OK) {
        fprintf(stderr, "vitport inspect: %s\n", vp_source_errmsg(src));
        vp_source_close(src);
        return VP_EXIT_FAIL;
    }
    size_t checked = 0;
    if (check && vp_source_check_data(src, &checked) != VP_OK) {
        fprintf(stderr, "vitport inspect: %s\n", vp_source_errmsg(src));
        vp_source_close(src);
        return VP_EXIT_FAIL;
    }
    size_t n = vp_source_count(src);
    uint64_t params = 0, bytes = 0;
    for (size_t i = 0; i < n; i++) {
        const vp_tensor *t = vp_source_tensor(src, i);
        params += t->numel;
        bytes += t->nbytes;
    }
    const vp_value *root = vp_source_root(src);
    char d[160], kb[160];

    if (json) {
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "file", path);
        cJSON_AddStringToObject(o, "format", vp_source_format(src));
        if (key) cJSON_AddStringToObject(o, "key", key);
        if (root) {
            cJSON *s = cJSON_CreateObject();
            describe(root, d, sizeof d);
            cJSON_AddStringToObject(s, "type", d);
            if (vp_value_kind(root) == VP_V_DICT) {
                cJSON *keys = cJSON_AddObjectToObject(s, "keys");
                for (size_t i = 0; i < vp_value_len(root); i++) {
                    describe(vp_value_item(root, i), d, sizeof d);
                    cJSON_AddStringToObject(keys, key_text(vp_value_key(root, i), kb, sizeof kb), d);
                }
            }
            cJSON_AddItemToObject(o, "structure", s);
        }
        cJSON *arr = cJSON_AddArrayToObject(o, "tensors");
        for (size_t i = 0; i < n; i++) {
            const vp_tensor *t = vp_source_tensor(src, i);
            cJSON *e = cJSON_CreateObject();
            cJSON_AddStringToObject(e, "name", t->name);
            cJSON_AddStringToObject(e, "dtype", vp_dtype_name(t->dtype));
            cJSON *sh = cJSON_AddArrayToObject(e, "shape");
            for (int k = 0; k < t->ndim; k++) cJSON_AddItemToArray(sh, cJSON_CreateNumber((double)t->shape[k]));
            cJSON_AddNumberToObject(e, "nbytes", (double)t->nbytes);
            cJSON_AddItemToArray(arr, e);
        }
        cJSON_AddNumberToObject(o, "total_tensors", (double)n);
        cJSON_AddNumberToObject(o, "total_params", (double)params);
        cJSON_AddNumberToObject(o, "total_bytes", (double)bytes);
        if (check) cJSON_AddNumberToObject(o, "crc_checked_members", (double)checked);
        char *text = cJSON_PrintUnformatted(o);
        if (text) { fputs(text, stdout); fputc('\n', stdout); }
        free(text);
        cJSON_Delete(o);
    } else {
        char pb[4096];
        printf("file:    %s\n", vp_cli_printable(path, pb, sizeof pb));
        printf("format:  %s\n", vp_source_format(src));
        if (key) printf("key:     %s\n", vp_cli_printable(key, pb, sizeof pb));
        if (root) {
            describe(root, d, sizeof d);
            printf("content: %s\n", vp_cli_printable(d, pb, sizeof pb));
            if (vp_value_kind(root) == VP_V_DICT) {
                size_t shown = vp_value_len(root) > 40 ? 40 : vp_value_len(root);
                for (size_t i = 0; i < shown; i++) {
                    describe(vp_value_item(root, i), d, sizeof d);
                    char pd[512];
                    printf("  %-24s %s\n", vp_cli_printable(key_text(vp_value_key(root, i), kb, sizeof kb), pb, sizeof pb),
                           vp_cli_printable(d, pd, sizeof pd));
                }
                if (shown < vp_value_len(root)) printf("  ... %zu more keys\n", vp_value_len(root) - shown);
            }
        }
        size_t w = 4;
        for (size_t i = 0; i < n; i++) {
            size_t l = strlen(vp_cli_printable(vp_source_tensor(src, i)->name, pb, sizeof pb));
            if (l > w) w = l;
        }
        if (w > 70) w = 70;
        printf("\n%-*s  %-8s  %-20s  %s\n", (int)w, "name", "dtype", "shape", "bytes");
        for (size_t i = 0; i < n; i++) {
            const vp_tensor *t = vp_source_tensor(src, i);
            shape_text(t, d, sizeof d);
            printf("%-*s  %-8s  %-20s  %llu\n", (int)w, vp_cli_printable(t->name, pb, sizeof pb), vp_dtype_name(t->dtype), d,
                   (unsigned long long)t->nbytes);
        }
        printf("\n%zu tensors, %llu parameters, %s (%llu bytes)\n", n, (unsigned long long)params,
               vp_cli_bytes((double)bytes, d, sizeof d), (unsigned long long)bytes);
        if (check && checked) printf("data: CRC-32 of %zu zip members checked, all match\n", checked);
        else if (check) printf("data: a %s file carries no checksums; nothing to check\n", vp_source_format(src));
    }
    vp_source_close(src);
    return VP_EXIT_OK;
}
