// libsentencepiece (Debian's libsentencepiece-dev, C++) behind the small C
// interface of tokenize.h: the only C++ in vitport. No exception leaves it.
#include <sentencepiece_processor.h>

#include <cstdio>
#include <memory>
#include <new>
#include <string>
#include <vector>

#include "text/tokenize.h"   /* declares the shim's functions extern "C" */

struct vp_spm {
    sentencepiece::SentencePieceProcessor sp;
    std::vector<std::string> pieces;
};

static void set_err(char *err, size_t errlen, const char *what, const std::string &why)
{
    if (errlen) std::snprintf(err, errlen, "%s: %s", what, why.c_str());
}

extern "C" int vp__spm_load(vp_spm **out, const void *data, size_t n, char *err, size_t errlen)
{
    *out = nullptr;
    try {
        /* owned until it loads: libsentencepiece throws on some malformed models
         * (darts_clone's "zero-length key"), and the catch clauses must free it */
        std::unique_ptr<vp_spm> m(new vp_spm);
        sentencepiece::util::Status st =
            m->sp.LoadFromSerializedProto(absl::string_view(static_cast<const char *>(data), n));
        if (!st.ok()) {
            set_err(err, errlen, "libsentencepiece", st.ToString());
            return -1;
        }
        *out = m.release();
        return 0;
    } catch (const std::bad_alloc &) {
        set_err(err, errlen, "SentencePiece", "out of memory");
    } catch (const std::exception &e) {
        set_err(err, errlen, "SentencePiece", e.what());
    } catch (...) {
        set_err(err, errlen, "SentencePiece", "failed");
    }
    return -1;
}

extern "C" void vp__spm_free(vp_spm *m) { delete m; }

extern "C" int vp__spm_size(const vp_spm *m) { return m->sp.GetPieceSize(); }

extern "C" int vp__spm_piece_id(const vp_spm *m, const char *s, size_t n)
{
    try {
        return m->sp.PieceToId(absl::string_view(s, n));
    } catch (...) {
        return m->sp.unk_id();
    }
}

extern "C" int vp__spm_exact_id(const vp_spm *m, const char *s, size_t n)
{
    try {
        int id = m->sp.PieceToId(absl::string_view(s, n));
        if (id >= 0 && id < m->sp.GetPieceSize() && m->sp.IdToPiece(id) == std::string(s, n)) return id;
    } catch (...) {
    }
    return -1;
}

extern "C" long vp__spm_encode(vp_spm *m, const char *s, size_t n, char *err, size_t errlen)
{
    try {
        m->pieces.clear();
        sentencepiece::util::Status st = m->sp.Encode(absl::string_view(s, n), &m->pieces);
        if (!st.ok()) {
            set_err(err, errlen, "SentencePiece", st.ToString());
            return -1;
        }
        return static_cast<long>(m->pieces.size());
    } catch (const std::bad_alloc &) {
        set_err(err, errlen, "SentencePiece", "out of memory");
    } catch (...) {
        set_err(err, errlen, "SentencePiece", "encoding failed");
    }
    return -1;
}

extern "C" const char *vp__spm_piece(const vp_spm *m, size_t i, size_t *len)
{
    *len = m->pieces[i].size();
    return m->pieces[i].data();
}
