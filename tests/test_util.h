/* Helpers shared by the C tests. They live in tests/util/testutil.c, which
 * is compiled once and linked into every test program. None of them counts
 * a check (test.h's counters are per program): each test still says what
 * it asserts. Failures of the test's own scaffolding (a scratch directory
 * that cannot be made, a file that cannot be written) end the program with
 * exit code 2, as they are not findings about vitport.
 *
 * Builders for files made byte by byte (zip, npy, pickle) are declared in
 * test_bytes.h. */
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

/* ---- running the program ------------------------------------------------- */
/* Run argv[0] with argv (NULL-terminated) in cwd (NULL: this one), stdout to
 * /dev/null and stderr to errpath. Its exit status, 128 + signal when killed,
 * -1 when it could not be run. */
int tu_run(char *const argv[], const char *cwd, const char *errpath);

#endif
