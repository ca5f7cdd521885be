/* Shared by the conversion tests (test_convert_vit.c, test_convert_conformance.c,
 * test_verify.c): compare a converted folder with expected tensors and
 * JSON, and turn a conformance case's case.json into conversion options
 * (file and folder helpers, and the one way to run a conversion:
 * test_util.h). Tensors are read back through vitport's safetensors
 * reader, whose own tests check it against the `safetensors` package.
 * The bodies are in tests/util/convert_check.c. Each comparison counts
 * one passed check when nothing differs and one failed check per
 * difference. */
#ifndef VP_CONVERT_CHECK_H
#define VP_CONVERT_CHECK_H

#include <math.h>
#include <stdbool.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "convert/convert.h"
#include "core/internal.h"
#include "test.h"
#include "test_util.h"

/* ---- tensors ------------------------------------------------------------ */
/* Every tensor of `want` (an open source) must be in one of the files
 * `have[]` with the same dtype, shape and bytes; no other tensor may be there.
 * Each file must carry {"format": "pt"}. Returns the number of problems. */
int cc_compare_tensors(const char *what, vp_source *want, const char *const *have, int nhave);

/* ---- JSON values ---------------------------------------------------------- */
/* Equal JSON values (numbers by value, objects in any key order). */
bool cc_json_equal(const cJSON *a, const cJSON *b);
/* Keys of ref (recursively into objects) must be in ours with equal values,
 * except `skip`; eps_ok accepts layer_norm_eps 1e-6 where ref has 1e-12.
 * extra_ok: keys only in ours are fine. Returns the number of differences. */
int cc_json_check(const char *what, const cJSON *ours, const cJSON *ref, const char *path, bool eps_ok, bool extra_ok);

/* ---- conformance cases ---------------------------------------------------- */
/* case.json params -> --set: the sizes no tensor shows, per family. */
int cc_params_to_sets(const cJSON *c, char sets[][128], int max);
/* converter_hints: key -> --key, timm_name -> --model-name, config fields -> --set. */
int cc_hints_to_opts(const cJSON *c, vp_convert_opts *o, const char **key, char sets[][128], int n, int max);

#endif
