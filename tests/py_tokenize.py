#!/usr/bin/env python3
"""Cross-check vitport's tokenizers (libvitport.so through ctypes, $VP_LIB)
against transformers on the whole corpus of tests/fixtures/gen_text.py:

- CLIP on OpenAI's real vocabulary (open_clip's bpe_simple_vocab_16e6.txt.gz),
  read four ways: the .txt.gz itself (against CLIPTokenizer's defaults), the
  vocab.json + merges.txt + tokenizer_config.json vitport's converter writes,
  the same without the config (normalized=false special tokens), and the
  tokenizer.json transformers saves;
- SigLIP on the SentencePiece models the generator trained (byte fallback on
  and off), with the configs transformers 5 saves and with the ones vitport's
  converter writes (lstrip/rstrip special tokens, as transformers 4 saved).

Every tokenizer is the one AutoTokenizer picks; ids and attention masks of
tokenizer(texts, padding="max_length", truncation=True) must be identical,
and the truncation flags must agree with the untruncated lengths.
"""
import ctypes
import gzip
import json
import os
import shutil
import sys
import tempfile
import warnings

warnings.filterwarnings("ignore")
SRC = os.environ.get("VP_SRC", os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
FIX = os.path.join(SRC, "tests", "fixtures")
sys.path.insert(0, FIX)
import gen_text  # noqa: E402

from transformers import AutoTokenizer, CLIPTokenizer, SiglipTokenizer  # noqa: E402

from vp_sanitizers import preload_sanitizers  # noqa: E402

preload_sanitizers()
lib = ctypes.CDLL(os.environ["VP_LIB"])
P = ctypes.c_void_p
lib.vp_tokenizer_open.argtypes = [ctypes.POINTER(P), ctypes.c_char_p]
lib.vp_tokenizer_close.argtypes = [P]
lib.vp_tokenizer_errmsg.restype = ctypes.c_char_p
lib.vp_tokenizer_errmsg.argtypes = [P]
lib.vp_tokenizer_length.restype = ctypes.c_int64
lib.vp_tokenizer_length.argtypes = [P]
lib.vp_tokenizer_set_length.argtypes = [P, ctypes.c_int64]
lib.vp_tokenizer_pad_id.restype = ctypes.c_int64
lib.vp_tokenizer_pad_id.argtypes = [P]
lib.vp_tokenizer_encode.argtypes = [P, ctypes.POINTER(ctypes.c_char_p), ctypes.POINTER(ctypes.c_size_t),
                                    ctypes.c_size_t, ctypes.POINTER(ctypes.c_int64), ctypes.POINTER(ctypes.c_int64),
                                    ctypes.POINTER(ctypes.c_int)]


class Tok:
    def __init__(self, path):
        self.h = P()
        rc = lib.vp_tokenizer_open(ctypes.byref(self.h), path.encode())
        if rc:
            msg = lib.vp_tokenizer_errmsg(self.h).decode()
            lib.vp_tokenizer_close(self.h)
            raise RuntimeError(msg)
        self.length = lib.vp_tokenizer_length(self.h)

    def set_length(self, n):
        assert lib.vp_tokenizer_set_length(self.h, n) == 0
        self.length = n

    def encode_bytes(self, bs):
        L, n = self.length, len(bs)
        arr = (ctypes.c_char_p * n)(*bs)
        lens = (ctypes.c_size_t * n)(*[len(b) for b in bs])
        ids = (ctypes.c_int64 * (n * L))()
        mask = (ctypes.c_int64 * (n * L))()
        tr = (ctypes.c_int * n)()
        rc = lib.vp_tokenizer_encode(self.h, arr, lens, n, ids, mask, tr)
        if rc:
            raise ValueError(lib.vp_tokenizer_errmsg(self.h).decode())
        return ([list(ids[i * L:(i + 1) * L]) for i in range(n)], [list(mask[i * L:(i + 1) * L]) for i in range(n)],
                list(tr))

    def encode(self, texts):
        return self.encode_bytes([t.encode("utf-8") for t in texts])

    def close(self):
        lib.vp_tokenizer_close(self.h)


def compare(name, vp_path, ref, texts, n_special):
    tok = Tok(vp_path)
    assert tok.length == ref.model_max_length, (name, tok.length, ref.model_max_length)
    ids, mask, tr = [], [], []
    for i in range(0, len(texts), 100):   # batches
        a, b, c = tok.encode(texts[i:i + 100])
        ids += a
        mask += b
        tr += c
    tok.close()
    e = ref(texts, padding="max_length", truncation=True)
    full = ref(texts, truncation=False)["input_ids"]
    bad = 0
    for i, t in enumerate(texts):
        ref_mask = e["attention_mask"][i] if "attention_mask" in e else [int(j < len(full[i])) for j in range(tok.length)]
        if ids[i] != e["input_ids"][i] or mask[i] != ref_mask:
            bad += 1
            if bad <= 5:
                print("  MISMATCH %s text %d %r\n    vitport      %s\n    transformers %s" %
                      (name, i, t[:80], ids[i][:24], e["input_ids"][i][:24]))
        if tr[i] != (len(full[i]) > tok.length):
            bad += 1
            if bad <= 5:
                print("  TRUNCATION FLAG %s text %d: %d, %d ids untruncated" % (name, i, tr[i], len(full[i])))
    ntr = sum(tr)
    print("%-28s %-20s %5d strings, %3d truncated, %d mismatches" % (name, type(ref).__name__, len(texts), ntr, bad))
    return bad


def exhaustive(name, vp_path, ref, texts, length, skipped):
    """Every text at a padding length that truncates none: the Unicode
    tables (NFC, lower case, letter / number / space classes, Final_Sigma)
    on every code point."""
    tok = Tok(vp_path)
    tok.set_length(length)
    bad = 0
    for i in range(0, len(texts), 500):
        batch = texts[i:i + 500]
        ids, mask, tr = tok.encode(batch)
        e = ref(batch, padding="max_length", truncation=True, max_length=length)
        for k, t in enumerate(batch):
            if tr[k] or ids[k] != e["input_ids"][k]:
                bad += 1
                if bad <= 5:
                    print("  MISMATCH %s %r\n    vitport      %s\n    transformers %s" %
                          (name, t[:40], ids[k][:30], e["input_ids"][k][:30]))
    tok.close()
    print("%-28s %-20s %5d strings (every assigned code point; %d unassigned left out), "
          "%d mismatches" % (name, type(ref).__name__, len(texts), skipped, bad))
    return bad


def code_points(limit, assigned):
    """Code points 1..limit-1 (no surrogates) that `assigned` says the
    reference's Unicode tables and vitport's both know; the rest are counted."""
    keep = [chr(c) for c in range(1, limit) if not 0xD800 <= c < 0xE000 and assigned(c)]
    return keep, limit - 1 - 2048 - len(keep)


def utf8proc_assigned():
    """Assigned in utf8proc's Unicode (15.0 in Debian 12's 2.8): the
    `tokenizers` wheel knows a newer Unicode (16.0), whose additions vitport's
    tables cannot have."""
    u = ctypes.CDLL("libutf8proc.so.2")
    u.utf8proc_category.argtypes = [ctypes.c_int32]
    u.utf8proc_category.restype = ctypes.c_int
    return lambda c: u.utf8proc_category(c) != 0   # UTF8PROC_CATEGORY_CN


def python_assigned(c):
    """Assigned in Python's unicodedata (14.0 for Python 3.11), whose tables
    SiglipTokenizer's str.lower and re use; utf8proc's are newer."""
    import unicodedata
    return unicodedata.category(chr(c)) != "Cn"


def main():
    texts = gen_text.corpus()
    texts += ["nul\x00inside", "\x00", "a\x00</s>b", "a\x00<|endoftext|>"]
    bpe = gen_text.openai_bpe_path()
    tmp = tempfile.mkdtemp(prefix="vp-tok-")
    bad = 0
    try:
        vocab, merges = gen_text.clip_vocab(bpe)
        assert len(vocab) == 49408
        conv = os.path.join(tmp, "clip_converted")
        gen_text.write_clip_dir(conv, vocab, merges)
        bare = os.path.join(tmp, "clip_bare")
        gen_text.write_clip_dir(bare, vocab, merges, config=False)
        with open(os.path.join(bare, "tokenizer_config.json"), "w") as f:
            json.dump({"model_max_length": 77, "tokenizer_class": "CLIPTokenizer"}, f)
        ref_conv = AutoTokenizer.from_pretrained(conv)
        assert isinstance(ref_conv, CLIPTokenizer)
        bad += compare("clip openai converter dir", conv, ref_conv, texts, 2)
        # added tokens with lstrip / rstrip (whitespace beside them taken in), raw and normalized
        for norm in (False, True):
            strip = os.path.join(tmp, "clip_strip%d" % norm)
            gen_text.write_clip_dir(strip, vocab, merges)
            cfg = gen_text.converter_config(len(vocab))
            for t in cfg["added_tokens_decoder"].values():
                t.update(lstrip=True, rstrip=True, normalized=norm)
            with open(os.path.join(strip, "tokenizer_config.json"), "w") as f:
                json.dump(cfg, f)
            bad += compare("clip openai strip norm=%d" % norm, strip, AutoTokenizer.from_pretrained(strip), texts, 2)
        bad += compare("clip openai bare dir", bare, AutoTokenizer.from_pretrained(bare), texts, 2)
        ref_gz = CLIPTokenizer(vocab=os.path.join(bare, "vocab.json"), merges=os.path.join(bare, "merges.txt"),
                               model_max_length=77)
        bad += compare("clip openai .txt.gz", bpe, ref_gz, texts, 2)
        js = os.path.join(tmp, "clip_json")
        ref_gz.save_pretrained(js)
        for extra in ("vocab.json", "merges.txt"):
            if os.path.exists(os.path.join(js, extra)):
                os.remove(os.path.join(js, extra))
        bad += compare("clip openai tokenizer.json", js, AutoTokenizer.from_pretrained(js), texts, 2)
        cps, skipped = code_points(0x110000, utf8proc_assigned())
        bad += exhaustive("clip openai code points", conv, ref_conv,
                          [" ".join(cps[i:i + 48]) for i in range(0, len(cps), 48)], 1024, skipped)

        for name in ("siglip_bf", "siglip_nobf"):
            d = os.path.join(FIX, "text", name)
            ref = AutoTokenizer.from_pretrained(d)
            assert isinstance(ref, SiglipTokenizer), type(ref)
            bad += compare(name + " (transformers 5)", d, ref, texts, 1)
            if name == "siglip_nobf":
                # each BMP character beside capital sigmas, as Final_Sigma sees them
                cps, skipped = code_points(0x10000, python_assigned)
                words = ["\u0391\u03a3%s\u03a3 \u0391%s\u03a3 \u03a3%s" % (c, c, c) for c in cps]
                bad += exhaustive(name + " code points", d, ref,
                                  [" ".join(words[i:i + 12]) for i in range(0, len(words), 12)], 1024, skipped)
            # the configs vitport's converter writes (as transformers 4 saved them)
            d4 = os.path.join(tmp, name + "_conv")
            os.makedirs(d4)
            shutil.copy(os.path.join(d, "spiece.model"), d4)
            for f in ("tokenizer_config.json", "special_tokens_map.json"):
                with open(os.path.join(FIX, "convert", "siglip_base.tok", f)) as fi:
                    j = json.load(fi)
                if "model_max_length" in j:
                    j["model_max_length"] = 64
                with open(os.path.join(d4, f), "w") as fo:
                    json.dump(j, fo, indent=2)
            bad += compare(name + " (converter)", d4, AutoTokenizer.from_pretrained(d4), texts, 1)

        # invalid UTF-8 is refused, naming the text and the byte
        tok = Tok(conv)
        for b in (b"\xff", b"ab\xc3", b"\xed\xa0\x80", b"\xc0\xaf", b"ok\xf4\x90\x80\x80"):
            try:
                tok.encode_bytes([b"fine", b])
                print("invalid UTF-8 %r accepted" % b)
                bad += 1
            except ValueError as e:
                assert "text 1" in str(e) and "UTF-8" in str(e), str(e)
        tok.close()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print("total mismatches: %d" % bad)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
