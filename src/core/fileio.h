/* Files: whole small files, read-only mappings, directory sync. Not installed. */
#ifndef VP_CORE_FILEIO_H
#define VP_CORE_FILEIO_H

#include <stddef.h>
#include <stdint.h>

/* The whole of the regular file path, at most limit bytes, into *out
 * (vp__malloc'ed, NUL-terminated; its length in *len). Opened without
 * blocking and checked with fstat, so a FIFO or a device is refused at once
 * instead of waiting for a writer. VP_OK, or with "PATH: reason" in err:
 * VP_ERR_IO (cannot open or read, not a regular file), VP_ERR_LIMIT
 * (larger than limit: "larger than N bytes"), VP_ERR_NOMEM. */
int vp__read_file(const char *path, size_t limit, char **out, size_t *len, char *err, size_t errlen);

/* ---- read-only file mapping --------------------------------------------- */
typedef struct vp_map { int fd; const uint8_t *base; uint64_t size; } vp_map;
/* Opens without blocking (a FIFO or device never stalls the open) and
 * refuses anything but a regular file, naming what it is. */
int vp__map_open(vp_map *m, const char *path, char *err, size_t errlen);
/* "a directory", "a FIFO", ... for a stat st_mode (messages). */
const char *vp__file_kind(unsigned mode);
void vp__map_close(vp_map *m);
/* Release pages of [off, off+len) (MADV_DONTNEED on a read-only mapping). */
void vp__map_release(vp_map *m, uint64_t off, uint64_t len);

/* fsync a directory so a rename or create in it is durable; failures are
 * ignored (nothing written is lost, only the durability guarantee). */
void vp__fsync_dir(const char *dir);

#endif
