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
/* Pickle: what running one may hold, per byte of the pickle, plus a fixed
 * allowance: its values (arena), the stack, MARKs and memo. The VM counts
 * them as it goes and refuses (VP_ERR_LIMIT, naming this limit) a pickle
 * that would need more, so the bound holds for any input. What the cheapest
 * opcodes cost without the cap (tests/test_pickle_mem.c measures each): no
 * allocation for None, True, False, (), '', b'' and ints from -16 to 1023
 * (made once, shared); 8 to 12 bytes per stack slot, MARK or memo key
 * (arrays grown 1.5x, memo keys 0, 1, 2, ... in a dense array); every other
 * value is a 64-byte node, so EMPTY_LIST, EMPTY_DICT and EMPTY_SET (one
 * byte each) cost 74 bytes per byte, NONE TUPLE1 37, SHORT_BINUNICODE of
 * one character 30: pickles made of those alone are refused once past the
 * fixed allowance. The torch pickles of the fixtures and conformance
 * checkpoints need 7 to 11 bytes of values per byte (their names
 * included; the old reader's 11 to 21). */
#define VP_PICKLE_MEM_PER_BYTE 16u
#define VP_PICKLE_MEM_FIXED (16u << 20)
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
/* Opening a safetensors file allocates at most this many bytes per header
 * byte, plus VP_ST_MEM_FIXED (narrowing by a key adds a view: about 190
 * bytes per tensor). The header is parsed by events straight into a
 * 32-byte entry per tensor; what stays is the tensor table (vp_tensor and
 * vp_storage, about 250 bytes per tensor) and the names. The densest header,
 * {"t1":{"dtype":"U8","shape":[0],"data_offsets":[0,0]},...}, costs about
 * 5.6 bytes per byte (tests/test_harden.c measures it; the cJSON tree it
 * replaced cost 19). */
#define VP_ST_MEM_PER_HEADER_BYTE 8u
#define VP_ST_MEM_FIXED (1u << 20)

/* Zip: deflate cannot expand more than 1032:1; a member that claims more
 * is a bomb. Also the most entries in a central directory. */
#define VP_ZIP_MAX_RATIO 1032u
#define VP_ZIP_MAX_ENTRIES (1u << 24)
/* Zip (and npz) tables cost at most this many bytes per byte of the
 * archive, plus VP_ZIP_MEM_FIXED: each member takes at least 76 bytes of
 * headers (46 central + 30 local) and costs the library a 64-byte table
 * entry, its name, hash and CRC slots; an npz member adds its tensor and
 * storage (about 250 bytes) but also at least a 64-byte npy header.
 * Measured (tests/test_harden.c): 1.6 for empty members, 1.9 for npz. */
#define VP_ZIP_MEM_PER_BYTE 4u
#define VP_ZIP_MEM_FIXED (1u << 20)

/* Zip members' CRC-32 checks go through the mapping this many bytes at a
 * time (the cancel flag is looked at and the pages dropped after each). */
#define VP_CRC_CHUNK (8u << 20)
/* An archive whose stored members to check hold at least this many bytes
 * gets a thread that checks them ahead of the copy (src/format/zip.c). */
#define VP_CRC_AHEAD_MIN (64u << 20)

/* Working buffer for streaming copies and conversions. */
#define VP_IO_CHUNK (4u << 20)
/* Buffer for plain byte copies (read + write): small enough to stay in cache. */
#define VP_COPY_CHUNK (1u << 20)

/* Tokenizers: the longest text (bytes; a 1 MiB word needs about 50 MB of BPE
 * scratch) and the largest padding length. */
#define VP_TEXT_MAX_BYTES (1u << 20)
#define VP_TEXT_MAX_LENGTH (1 << 20)

/* Images: the most pixels (width * height) a decoded image may have. Pillow
 * refuses images above twice its MAX_IMAGE_PIXELS (89478485) as
 * decompression bombs; so do we, before allocating any pixel. */
#ifndef VP_IMAGE_MAX_PIXELS   /* the fuzz build lowers it to stay fast */
#define VP_IMAGE_MAX_PIXELS 178956970ull
#endif
/* Images: the longest side, and the largest file read into memory. */
#define VP_IMAGE_MAX_SIDE 65535
#define VP_IMAGE_MAX_FILE (1ull << 30)
/* JPEG: the most scans a progressive file may have (real ones have about
 * 10; many tiny scans make decoding arbitrarily slow). */
#define VP_JPEG_MAX_SCANS 1000
/* Image processors: the largest resize or crop size a config may ask for. */
#define VP_PREPROC_MAX_SIDE 16384
/* Image processors: the largest preprocessor_config.json read. */
#define VP_PREPROC_MAX_JSON (1u << 20)
#endif
