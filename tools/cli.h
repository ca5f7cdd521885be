/* The vitport program's subcommands. Each takes argv after the command
 * name (argv[0] is the command) and returns the exit status:
 * 0 ok, 1 bad input or a failed check, 2 usage error. */
#ifndef VP_CLI_H
#define VP_CLI_H

#define VP_EXIT_OK 0
#define VP_EXIT_FAIL 1
#define VP_EXIT_USAGE 2

int cmd_inspect(int argc, char **argv);   /* tools/cmd_inspect.c */
int cmd_convert(int argc, char **argv);   /* tools/cmd_convert.c */

int cmd_run(int argc, char **argv);       /* tools/cmd_run.c */
int cmd_verify(int argc, char **argv);    /* tools/cmd_verify.c */
int cmd_preprocess(int argc, char **argv); /* tools/cmd_preprocess.c */
int cmd_tokenize(int argc, char **argv);  /* tools/cmd_tokenize.c */
int cmd_embed(int argc, char **argv);     /* tools/cmd_embed.c */
int cmd_classify(int argc, char **argv);  /* tools/cmd_classify.c */
int cmd_segment(int argc, char **argv);   /* tools/cmd_segment.c */

/* An array read from a file (tools/cli_arrays.c). */
#include "vitport/vitport.h"
typedef struct vp_cli_array {
    void *data;
    vp_dtype dtype;
    int ndim;
    int64_t shape[VP_MAX_DIMS];
} vp_cli_array;
/* The array `name` of an .npz / safetensors / torch file, or the only array
 * of a file holding one (.npy), read as dtype (VP_F32 or VP_I64). */
int vp_cli_load_array(const char *path, const char *name, vp_dtype dtype, vp_cli_array *out,
                      char *err, size_t errlen);
void vp_cli_array_free(vp_cli_array *a);

/* Human-readable byte count ("1.5 GB") into buf. */
const char *vp_cli_bytes(double n, char *buf, unsigned len);
/* s fit for a terminal: s itself when it holds no control character, else
 * a copy in buf with each one as \xNN (a name from a file cannot move the
 * cursor or clear the screen), cut with "..." when buf is too short. */
const char *vp_cli_printable(const char *s, char *buf, size_t len);

/* Verification reports shared by verify and convert (tools/cmd_verify.c). */
#include <cjson/cJSON.h>
cJSON *vp_cli_verify_json(const vp_verify *v, int rc);
/* obj[key] = val, replacing (val is taken; tools/cli_json.c). */
void vp_cli_json_set(cJSON *obj, const char *key, cJSON *val);
/* j as indented JSON text and a newline on stdout. */
void vp_cli_json_print(const cJSON *j);
/* vp_convert_opts.verify for `vitport convert` (arg: a vp_cli_convert_check):
 * the library's vp_verify_convert, with the progress line and --json. */
typedef struct vp_cli_convert_check {
    vp_verify_convert_state st;  /* out_dir, no_crc in; what happened out (st.v: caller frees) */
    int quiet;
    cJSON *json;                 /* the comparisons, for --json (caller deletes) */
} vp_cli_convert_check;
int vp_cli_convert_verify(void *arg, const char *tmp_dir, const char *src, const char *key,
                          const char *family, char *err, size_t errlen);

/* Shared by the model-facing commands (tools/cli_inputs.c). */
double vp_cli_now(void);
/* An integer option value in lo..hi; -1 (with a message) otherwise. */
int vp_cli_int(const char *cmd, const char *opt, const char *v, long lo, long hi, long *out);
/* Load and preprocess n image files into *pix ([n_ok, 3, H, W], malloc'd).
 * ok[i] tells which files made it; a bad file is reported on stderr naming
 * it, and skipped (strict: the call fails). Returns VP_EXIT_OK when every
 * file was good, VP_EXIT_FAIL otherwise. */
int vp_cli_images(vp_preproc *pp, const char *const *paths, size_t n, int strict, const char *cmd,
                  float **pix, int64_t *H, int64_t *W, size_t *n_ok, unsigned char *ok);
/* Seconds spent in each phase (vp_cli_now around the calls), accumulated. */
typedef struct vp_cli_timing { double decode, preprocess, forward; } vp_cli_timing;
/* vp_cli_images, adding the seconds of decoding (vp_image_load and the output
 * size) and of preprocessing (vp_preproc_run) to *t (NULL: not timed). */
int vp_cli_images_timed(vp_preproc *pp, const char *const *paths, size_t n, int strict, const char *cmd,
                        float **pix, int64_t *H, int64_t *W, size_t *n_ok, unsigned char *ok, vp_cli_timing *t);
/* Tokenize n texts with dir's tokenizer files into *ids ([n, *L], malloc'd);
 * warns on stderr for each truncated text. */
int vp_cli_tokenize(const char *dir, const char *const *texts, size_t n, const char *cmd,
                    int64_t **ids, int64_t *L);
/* A progress line on stderr when it is a terminal. */
void vp_cli_progress(const char *what, size_t done, size_t total, double t0);

#endif
