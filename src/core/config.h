/*
 * vitport's limits and tunables, in one place (after Lua's luaconf.h).
 * Each limit is part of the documented behaviour: input that exceeds one
 * is refused with VP_ERR_LIMIT and a message naming the limit.
 */
#ifndef VP_CONFIG_H
#define VP_CONFIG_H

/* Pickle: deepest nesting of containers (lists, dicts, tuples, objects).
 * torch.load has no such limit and overflows the C stack on deep input;
 * we refuse instead. Real checkpoints nest fewer than 20 levels. */
#define VP_PICKLE_MAX_DEPTH 200
/* Pickle: most entries on the value stack and in the memo. */
#define VP_PICKLE_MAX_STACK (1u << 22)
#define VP_PICKLE_MAX_MEMO  (1u << 22)
/* Pickle: most items in one container. */
#define VP_PICKLE_MAX_ITEMS (1u << 24)
/* Pickle: most bytes of decimal/binary text for one integer (LONG opcodes). */
#define VP_PICKLE_MAX_LONG_BYTES 4096

/* Arena (names, pickle values): at most this many bytes per input byte
 * of pickle, plus a fixed allowance. Bounds memory for any input. */
#define VP_ARENA_PER_INPUT_BYTE 64
#define VP_ARENA_FIXED (16u << 20)

/* Tensors per file. */
#define VP_MAX_TENSORS (1u << 22)
/* Longest tensor or key name. */
#define VP_MAX_NAME 4096
/* npy header and safetensors JSON header size limits. */
#define VP_NPY_MAX_HEADER (1u << 20)
#define VP_ST_MAX_HEADER 100000000u    /* as the reference implementation */

/* Zip: deflate cannot expand more than 1032:1; a member that claims more
 * is a bomb. Also the most entries in a central directory. */
#define VP_ZIP_MAX_RATIO 1032u
#define VP_ZIP_MAX_ENTRIES (1u << 24)

/* Zip members' CRC-32 checks go through the mapping this many bytes at a
 * time (the cancel flag is looked at and the pages dropped after each). */
#define VP_CRC_CHUNK (8u << 20)

/* Working buffer for streaming copies and conversions. */
#define VP_IO_CHUNK (4u << 20)
/* Buffer for plain byte copies (read + write): small enough to stay in cache. */
#define VP_COPY_CHUNK (1u << 20)

#endif
