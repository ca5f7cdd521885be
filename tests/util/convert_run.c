/* The conversion runner of tests/test_util.h: vp_convert_ex in this
 * process, options from `vitport convert`'s arguments, the verification
 * the program runs by default, stderr kept when asked. */
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "../test_util.h"
#include "vitport/verify.h"

static void fail(const char *what, const char *arg)
{
    fprintf(stderr, "test conversion runner: %s%s\n", what, arg ? arg : "");
    exit(2);
}

void tu_conv_init(tu_conv *c)
{
    memset(c, 0, sizeof *c);
    c->o.quiet = 1;
}

void tu_conv_set(tu_conv *c, const char *kv)
{
    if (c->o.nsets >= (int)(sizeof c->sets / sizeof c->sets[0])) fail("too many --set: ", kv);
    c->sets[c->o.nsets++] = kv;
    c->o.sets = c->sets;
}

void tu_conv_args(tu_conv *c, char *const *argv, int n)
{
    for (int i = 0; i < n; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--force")) c->o.force = 1;
        else if (!strcmp(a, "--quiet")) c->o.quiet = 1;
        else if (!strcmp(a, "--sync")) c->o.sync = 1;
        else if (!strcmp(a, "--no-crc")) c->o.no_crc = 1;
        else if (!strcmp(a, "--no-verify")) c->verify = false;
        else {
            static const char *const VALUED[] = {"--set", "--family", "--model-name", "--key", "--dtype", "--config",
                                                 "--max-shard-size", "--bpe-vocab", "--spm", "--labels", NULL};
            int k = 0;
            while (VALUED[k] && strcmp(a, VALUED[k])) k++;
            if (!VALUED[k]) fail("an option it does not know: ", a);
            if (i + 1 >= n) fail("no value after ", a);
            const char *v = argv[++i];
            switch (k) {
            case 0: tu_conv_set(c, v); break;
            case 1: c->o.family = v; break;
            case 2: c->o.model_name = v; break;
            case 3: c->key = v; break;
            case 4: c->o.dtype = v; break;
            case 5: c->o.config_path = v; break;
            case 6: if (vp_parse_size(v, &c->o.max_shard_size)) fail("not a size: ", v); break;
            case 7: c->o.bpe_vocab = v; break;
            case 8: c->o.spm = v; break;
            default: c->o.labels = v; break;
            }
        }
    }
}

bool tu_conv_args_file(tu_conv *c, const char *path)
{
    char *text = tu_slurp(path, NULL);
    if (!text) return false;
    if (c->ntext >= (int)(sizeof c->text / sizeof c->text[0])) fail("too many argument files: ", path);
    c->text[c->ntext++] = text;
    char *argv[128], *save = NULL;
    int n = 0;
    for (char *line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        if (n == (int)(sizeof argv / sizeof argv[0])) fail("too many arguments in ", path);
        argv[n++] = line;
    }
    tu_conv_args(c, argv, n);
    return true;
}

int tu_convert(tu_conv *c, const char *src, const char *out)
{
    free(c->logged);
    c->logged = NULL;
    c->err[0] = c->note[0] = 0;
    c->verified = 0;
    c->out = out;
    vp_convert_opts o = c->o;
    vp_verify_convert_state vs;   /* the check vitport convert runs by default, from the library */
    memset(&vs, 0, sizeof vs);
    vs.out_dir = out;
    vs.no_crc = c->o.no_crc;
    if (c->verify) { o.verify = vp_verify_convert; o.verify_arg = &vs; }

    char here[PATH_MAX];
    if (c->cwd && (!getcwd(here, sizeof here) || chdir(c->cwd))) fail("cannot change to ", c->cwd);
    char logpath[PATH_MAX];
    int saved = -1;
    if (c->log) {
        snprintf(logpath, sizeof logpath, "%s/vp_conv_log.XXXXXX", tu_env("TMPDIR", "/tmp"));
        int fd = mkstemp(logpath);
        if (fd < 0) fail("cannot make a log file in ", tu_env("TMPDIR", "/tmp"));
        fflush(stderr);
        saved = dup(2);
        if (saved < 0 || dup2(fd, 2) < 0) fail("cannot redirect stderr to ", logpath);
        close(fd);
    }
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    c->rc = vp_convert_ex(src, c->key, out, &o, c->err, sizeof c->err, NULL);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    c->secs = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) * 1e-9;
    if (c->rc == VP_OK) c->err[0] = 0;
    if (vs.ran && (vs.rc == VP_OK || vs.engine_missing)) {
        c->verified = vs.engine_missing ? -1 : 1;
        snprintf(c->note, sizeof c->note, "%s", vs.summary);
    }
    vp_verify_free(vs.v);
    if (c->log) {
        fflush(stderr);
        dup2(saved, 2);
        close(saved);
        c->logged = tu_slurp(logpath, NULL);
        unlink(logpath);
        if (!c->logged && !(c->logged = calloc(1, 1))) fail("out of memory", NULL);
    }
    if (c->cwd && chdir(here)) fail("cannot change back to ", here);
    return c->rc;
}

void tu_conv_free(tu_conv *c)
{
    free(c->logged);
    c->logged = NULL;
    for (int i = 0; i < c->ntext; i++) free(c->text[i]);
    c->ntext = 0;
}
