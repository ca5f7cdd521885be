/* Helpers shared by the C tests. They live in tests/util/testutil.c, which
 * is compiled once and linked into every test program. None of them counts
 * a check (test.h's counters are per program): each test still says what
 * it asserts. Failures of the test's own scaffolding (a scratch directory
 * that cannot be made, a file that cannot be written) end the program with
 * exit code 2, as they are not findings about vitport.
 *
 * Builders for files made byte by byte (zip, npy, pickle, safetensors) are
 * declared in test_bytes.h. */
#ifndef VP_TEST_UTIL_H
#define VP_TEST_UTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>

#include "vitport/vitport.h"

/* ---- files and messages -------------------------------------------------- */
/* The whole file, NUL-terminated (malloc'ed); its length in *len when len is
 * not NULL. NULL if it cannot be read. */
char *tu_slurp(const char *path, size_t *len);
/* The file parsed as JSON; NULL if unreadable or not JSON. */
cJSON *tu_load_json(const char *path);
/* Write (replace) a file; exits 2 on failure. */
void tu_write_file(const char *path, const void *data, size_t n);
bool tu_exists(const char *path);                          /* lstat: links count as they are */
/* The string member `key` of a JSON object, or NULL. */
const char *tu_jstr(const cJSON *o, const char *key);
/* msg is not NULL and contains part. */
bool tu_has(const char *msg, const char *part);
/* A non-empty message of one line (no CR, no LF). */
bool tu_one_line(const char *msg);
/* Non-empty and free of control characters (ESC, DEL, CR, LF, ...). */
bool tu_no_control(const char *msg);

/* ---- environment and the shared folders ---------------------------------- */
/* The variable's value when set and not empty, else fallback. */
const char *tu_env(const char *name, const char *fallback);
/* $VP_FIXTURES, or tests/fixtures (the tests run from the source tree). */
const char *tu_fixtures_dir(void);

/* The conformance cases: the sub-folders of $VP_CONFORMANCE that hold a
 * case.json, sorted by name. Tests iterate them and never name one: more
 * cases may come. */
typedef struct tu_cases {
    const char *root;                 /* $VP_CONFORMANCE */
    char **name;
    size_t n;
} tu_cases;
/* 0, or -1 when $VP_CONFORMANCE is unset or empty or cannot be read. */
int tu_cases_open(tu_cases *c);
void tu_cases_free(tu_cases *c);

/* The vp_source_format name for a manifest's free-text "container"
 * description ("torch.save zip", "TorchScript zip (torch.jit.save)",
 * "npz (...)"); NULL if none fits. */
const char *tu_container_format(const char *container);

/* Shape and strides describe C order (size-1 dimensions may have any
 * stride). The tests keep their own, independent of the library's. */
bool tu_c_contiguous(const vp_tensor *t);

/* ---- scratch directories ------------------------------------------------- */
/* Make $TMPDIR/PREFIX.XXXXXX (/tmp when TMPDIR is unset) into buf. */
void tu_mkdtemp(char *buf, size_t size, const char *prefix);
/* Remove a tree (no shell); a missing path is fine. */
void tu_rmtree(const char *path);
/* How many entries of dir have `part` in their name. */
int tu_count_entries(const char *dir, const char *part);

/* ---- allocation failures ------------------------------------------------- */
/* An allocator for vp__set_allocator whose ud is a tu_failing: after `left`
 * more allocations every one fails. */
typedef struct tu_failing { long left; } tu_failing;
void *tu_failing_alloc(void *ud, void *ptr, size_t osize, size_t nsize);

/* ---- safetensors ---------------------------------------------------------- */
/* Write a safetensors file made by hand: the 8-byte little-endian length of
 * `header`, the header text as given, then n data bytes (`data`, or the
 * bytes 0, 1, 2, ... when data is NULL); exits 2 on failure. The bytes are
 * test_bytes.h's st_build. */
void tu_write_st(const char *path, const char *header, const void *data, size_t n);

/* ---- running a conversion ------------------------------------------------ */
/* The one way the C tests run a conversion: in this process, through
 * vp_convert_ex, with the options set in `o` directly or given as
 * `vitport convert`'s arguments (the fixtures keep them so: the "args" of
 * tests/fixtures/convert/vit_cases.json, NAME.args with one a line).
 * `verify` checks the result before it is published as the program does by
 * default: vp_verify_run on the temporary folder, a model the engine of
 * this build cannot run written with a note instead. The program itself
 * (its exit codes, summary line, signals) is tested by tests/cli_*.sh.
 * Implemented in tests/util/convert_run.c. */
typedef struct tu_conv {
    vp_convert_opts o;         /* tu_conv_init: quiet, everything else zero */
    const char *key;           /* --key */
    const char *cwd;           /* relative paths (the source, option files) are taken from here; NULL: ours */
    bool verify;               /* --no-verify clears it; off after tu_conv_init */
    bool log;                  /* keep what the conversion prints on stderr in `logged` */
    /* the result of tu_convert */
    int rc;                    /* VP_OK or the VP_ERR_* code (also returned) */
    char err[2048];            /* the one-line message on failure, else "" */
    char *logged;              /* with log: the stderr output, "" if none */
    double secs;               /* wall time */
    int verified;              /* 1 passed, -1 not verified (the engine cannot run the model), 0 not run */
    char note[1536];           /* "verified CLASS against the CHECK: largest difference ...", "not verified: WHY" */
    /* the runner's own */
    const char *out;
    const char *sets[64];
    char *text[4];
    int ntext;
} tu_conv;

void tu_conv_init(tu_conv *c);
/* Apply `vitport convert` options argv[0 .. n-1] ("--set", "K=V", "--dtype",
 * "f16", "--no-verify", ...); the strings must outlive c. An option the
 * runner does not know ends the program (exit 2). */
void tu_conv_args(tu_conv *c, char *const *argv, int n);
/* The same from a file holding one argument a line; false if it cannot be read. */
bool tu_conv_args_file(tu_conv *c, const char *path);
/* One more --set KEY=VALUE (kv must outlive c). */
void tu_conv_set(tu_conv *c, const char *kv);
/* Convert src (its sub-dictionary c->key) into out; the result in c. */
int tu_convert(tu_conv *c, const char *src, const char *out);
/* Free what the runner allocated (the struct itself is the caller's). */
void tu_conv_free(tu_conv *c);

/* ---- running the program ------------------------------------------------- */
/* Run argv[0] with argv (NULL-terminated) in cwd (NULL: this one), stdout to
 * /dev/null and stderr to errpath. Its exit status, 128 + signal when killed,
 * -1 when it could not be run. */
int tu_run(char *const argv[], const char *cwd, const char *errpath);

/* An allocator (vp_alloc_fn) that counts the live bytes it hands out and
 * their peak, keeping each block's size in a header before it. */
typedef struct tu_counting { size_t live, peak; } tu_counting;
void *tu_counting_alloc(void *ud, void *ptr, size_t osize, size_t nsize);

#endif
