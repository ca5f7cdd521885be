/*
 * The output-folder transaction: files are written into a temporary
 * directory beside OUT_DIR, which is renamed into place only when complete
 * (renameat2 NOREPLACE / EXCHANGE where the kernel has them); on any failure
 * the temporary directory is removed and OUT_DIR is untouched.
 */
#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdbool.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "convert/converter.h"

/* ------------------------------------------------------------------------ */
/* Files and directories                                                     */
/* ------------------------------------------------------------------------ */
int vp_conv_write_file(const char *dir, const char *name, const void *data, size_t len, char *err, size_t errlen)
{
    char path[PATH_MAX];
    if (snprintf(path, sizeof path, "%s/%s", dir, name) >= (int)sizeof path) {
        snprintf(err, errlen, "path too long");
        return VP_ERR_ARG;
    }
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    if (fd < 0) { snprintf(err, errlen, "%s: %s", path, strerror(errno)); return VP_ERR_IO; }
    const char *p = data;
    size_t left = len;
    while (left) {
        ssize_t r = write(fd, p, left);
        if (r < 0 && errno == EINTR) continue;
        if (r < 0) { snprintf(err, errlen, "%s: %s", path, strerror(errno)); close(fd); return VP_ERR_IO; }
        p += r;
        left -= (size_t)r;
    }
    if (fsync(fd) || close(fd)) { snprintf(err, errlen, "%s: %s", path, strerror(errno)); return VP_ERR_IO; }
    return VP_OK;
}

int vp_conv_write_json_file(const char *dir, const char *name, const cJSON *j, char *err, size_t errlen)
{
    size_t len;
    char *text = vp_json_dump(j, &len);
    if (!text) { snprintf(err, errlen, "out of memory"); return VP_ERR_NOMEM; }
    int rc = vp_conv_write_file(dir, name, text, len, err, errlen);
    vp__free(text);
    return rc;
}

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st; (void)flag; (void)ftw;
    remove(path);
    return 0;
}

void vp_conv_remove_tree(const char *path)
{
    if (path && *path) nftw(path, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

/* The start time of process pid in clock ticks since boot (field 22 of
 * /proc/PID/stat): with the pid it names one process for good, as a pid
 * alone may be reused. 0 when unknown. */
static unsigned long long proc_start_time(long pid)
{
    char path[64], buf[1024];
    snprintf(path, sizeof path, "/proc/%ld/stat", pid);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return 0;
    ssize_t n = read(fd, buf, sizeof buf - 1);
    close(fd);
    if (n <= 0) return 0;
    buf[n] = 0;
    char *q = strrchr(buf, ')');               /* the command name may hold spaces and ')' */
    if (!q) return 0;
    q++;
    for (int i = 0; i < 19; i++) {             /* skip fields 3..21 */
        while (*q == ' ') q++;
        while (*q && *q != ' ') q++;
    }
    while (*q == ' ') q++;
    char *end;
    errno = 0;
    unsigned long long t = strtoull(q, &end, 10);
    return errno || end == q ? 0 : t;
}

#define TMP_TAG ".vitport-tmp-"

/* A new directory beside OUT_DIR, created with mkdir so the umask applies
 * (mkdtemp would make it 0700), named .BASE.vitport-tmp-PID-START-XXXXXX
 * (START: the process's start time) so that a later conversion can tell a
 * folder left by a killed process from one still being written. */
int vp_conv_make_temp_dir(char *buf, size_t len, const char *parent, const char *base)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    long pid = (long)getpid();
    unsigned long long start = proc_start_time(pid);
    unsigned seed = (unsigned)ts.tv_nsec ^ ((unsigned)pid << 16);
    for (int attempt = 0; attempt < 100; attempt++) {
        seed = seed * 1103515245u + 12345u;
        if (snprintf(buf, len, "%s/.%s" TMP_TAG "%ld-%llu-%06x", parent, base, pid, start, seed & 0xffffff) >= (int)len) {
            errno = ENAMETOOLONG;
            return -1;
        }
        if (mkdir(buf, 0777) == 0) return 0;
        if (errno != EEXIST) return -1;
    }
    return -1;
}

/* Parse "PID-START-XXXXXX" (decimal, decimal, six hex digits, nothing after). */
static bool parse_tmp_suffix(const char *s, long *pid, unsigned long long *start)
{
    char *end;
    if (*s < '1' || *s > '9') return false;
    errno = 0;
    long p = strtol(s, &end, 10);
    if (errno || *end != '-' || p <= 0 || p > INT_MAX) return false;   /* a pid_t; never a group */
    s = end + 1;
    if (*s < '0' || *s > '9') return false;
    unsigned long long t = strtoull(s, &end, 10);
    if (errno || *end != '-') return false;
    s = end + 1;
    for (int i = 0; i < 6; i++)
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f'))) return false;
    if (s[6]) return false;
    *pid = p;
    *start = t;
    return true;
}

/* Whether the process that made a folder named with (pid, start) is gone:
 * no such pid, or the pid now belongs to a process started at another time. */
static bool owner_dead(long pid, unsigned long long start)
{
    if (kill((pid_t)pid, 0) == 0 || errno == EPERM) {
        unsigned long long now = proc_start_time(pid);
        return start && now && now != start;      /* reused pid */
    }
    return errno == ESRCH;
}

int vp_conv_remove_stale(const char *parent, int quiet)
{
    DIR *d = opendir(parent);
    if (!d) return 0;
    int removed = 0;
    uid_t me = geteuid();
    struct dirent *e;
    while ((e = readdir(d))) {
        const char *name = e->d_name;
        if (name[0] != '.') continue;
        const char *tag = NULL;
        for (const char *q = strstr(name, TMP_TAG); q; q = strstr(q + 1, TMP_TAG)) tag = q;
        if (!tag || tag == name) continue;
        long pid;
        unsigned long long start;
        if (!parse_tmp_suffix(tag + strlen(TMP_TAG), &pid, &start)) continue;
        char path[PATH_MAX];
        if (snprintf(path, sizeof path, "%s/%s", parent, name) >= (int)sizeof path) continue;
        struct stat st;
        if (lstat(path, &st) || !S_ISDIR(st.st_mode) || st.st_uid != me) continue;   /* ours only */
        if (!owner_dead(pid, start)) continue;
        vp_conv_remove_tree(path);
        if (lstat(path, &st) == 0) continue;                /* could not be removed */
        removed++;
        if (!quiet)
            fprintf(stderr, "vitport convert: removed %s, left by an interrupted conversion (process %ld, no longer running)\n",
                    path, pid);
    }
    closedir(d);
    return removed;
}

/* OUT_DIR split into parent and base name (trailing slashes dropped). */
int vp_conv_split_out(const char *out, char *parent, size_t plen, char *base, size_t blen)
{
    size_t n = strlen(out);
    while (n > 1 && out[n - 1] == '/') n--;
    if (n == 0 || n >= plen || n >= blen) return VP_ERR_ARG;
    const char *slash = NULL;
    for (size_t i = 0; i < n; i++) if (out[i] == '/') slash = out + i;
    if (!slash) { snprintf(parent, plen, "."); snprintf(base, blen, "%.*s", (int)n, out); }
    else {
        size_t pl = (size_t)(slash - out);
        snprintf(parent, plen, "%.*s", (int)(pl ? pl : 1), out);
        snprintf(base, blen, "%.*s", (int)(n - pl - 1), slash + 1);
    }
    if (!*base || !strcmp(base, ".") || !strcmp(base, "..")) return VP_ERR_ARG;
    return VP_OK;
}

#ifndef RENAME_NOREPLACE
#  define RENAME_NOREPLACE (1 << 0)
#endif
#ifndef RENAME_EXCHANGE
#  define RENAME_EXCHANGE (1 << 1)
#endif
#include <sys/syscall.h>

static int rename2(const char *from, const char *to, unsigned flags)
{
#ifdef SYS_renameat2
    return (int)syscall(SYS_renameat2, AT_FDCWD, from, AT_FDCWD, to, flags);
#else
    (void)from; (void)to; (void)flags;
    errno = ENOSYS;
    return -1;
#endif
}

/* Move the finished temporary directory to out. With force an existing out
 * is swapped out atomically (or renamed away first) and deleted. */
int vp_conv_publish(const char *tmp, const char *out, const char *parent, const char *base, int force, char *err, size_t errlen)
{
    struct stat st;
    bool exists = lstat(out, &st) == 0;
    if (exists && !force) {
        snprintf(err, errlen, "%s exists (use --force to replace it)", out);
        return VP_ERR_ARG;
    }
    if (!exists) {
        if (rename2(tmp, out, RENAME_NOREPLACE) == 0) { vp__fsync_dir(parent); return VP_OK; }
        if (errno == EEXIST) { snprintf(err, errlen, "%s appeared while converting; not replaced", out); return VP_ERR_IO; }
        if (errno != ENOSYS && errno != EINVAL) { snprintf(err, errlen, "rename to %s: %s", out, strerror(errno)); return VP_ERR_IO; }
        if (rename(tmp, out)) { snprintf(err, errlen, "rename to %s: %s", out, strerror(errno)); return VP_ERR_IO; }
        vp__fsync_dir(parent);
        return VP_OK;
    }
    if (rename2(tmp, out, RENAME_EXCHANGE) == 0) {
        vp__fsync_dir(parent);
        vp_conv_remove_tree(tmp);            /* now holds the old contents */
        return VP_OK;
    }
    char old[PATH_MAX];
    if (snprintf(old, sizeof old, "%s/.%s.vitport-old-XXXXXX", parent, base) >= (int)sizeof old || !mkdtemp(old)) {
        snprintf(err, errlen, "cannot make a name to move %s away: %s", out, strerror(errno));
        return VP_ERR_IO;
    }
    rmdir(old);
    if (rename(out, old)) { snprintf(err, errlen, "rename %s away: %s", out, strerror(errno)); return VP_ERR_IO; }
    if (rename(tmp, out)) {
        snprintf(err, errlen, "rename to %s: %s", out, strerror(errno));
        rename(old, out);            /* put the old one back */
        return VP_ERR_IO;
    }
    vp__fsync_dir(parent);
    vp_conv_remove_tree(old);
    return VP_OK;
}
