#!/usr/bin/env python3
"""Every folder `vitport convert` writes must load with transformers'
from_pretrained (the venv's transformers 5.x): no missing, unexpected or
mismatched keys, no error messages and no warnings in the loading info or
the log. Covers every conformance case ($VP_CONFORMANCE, head counts from
case.json params as --set, from_pretrained kwargs from case.json) and every
converting fixture case (tests/fixtures/convert/*_cases.json, and the
NAME.args + NAME.{pt,pth,npz} cases).

Also checked here, against Python itself: config.json and
preprocessor_config.json are byte-for-byte what json.dumps(indent=2,
sort_keys=True) writes (save_pretrained's format), and a conformance
model's outputs on inputs.npz match the original model's expected.npz within
the case's output tolerance.
"""
import glob
import json
import re
import logging
import os
import shutil
import subprocess
import sys
import tempfile
import warnings

import numpy as np
import torch
import transformers
from vp_report import Report

BIN = os.path.abspath(os.environ["VP_BIN"])
FIX = os.environ.get("VP_FIXTURES", "")
CONF = os.environ.get("VP_CONFORMANCE", "")
report = Report("py_convert_load")


class Capture(logging.Handler):
    def __init__(self):
        super().__init__(logging.WARNING)
        self.messages = []

    def emit(self, record):
        self.messages.append(record.getMessage())


def params_to_args(case):
    """case.json params -> --set (the sizes no tensor shows), hints -> options."""
    args = []
    fam = case.get("family", "")
    p = case.get("params", {})
    if fam in ("timm", "dino") and isinstance(p.get("heads"), int):
        args += ["--set", f"num_attention_heads={p['heads']}"]
    for tower, key in (("vision", "vision_config"), ("text", "text_config")):
        if isinstance(p.get(tower), dict) and isinstance(p[tower].get("heads"), int):
            args += ["--set", f"{key}.num_attention_heads={p[tower]['heads']}"]
    for short, key in (("vheads", "vision_config.num_attention_heads"), ("theads", "text_config.num_attention_heads"),
                       ("decoder_heads", "decoder_num_attention_heads")):
        if isinstance(p.get(short), int):
            args += ["--set", f"{key}={p[short]}"]
    for k, v in case.get("converter_hints", {}).items():
        if k == "key":
            args += ["--key", v]
        elif k == "timm_name":
            args += ["--model-name", v]
        elif k != "base_model":
            args += ["--set", f"{k}={json.dumps(v)}"]
    return args


def check_json_format(what, path):
    text = open(path, encoding="utf-8").read()
    want = json.dumps(json.loads(text), indent=2, sort_keys=True) + "\n"
    report(text == want, f"{what}: {os.path.basename(path)} as json.dumps writes it",
           "differs from json.dumps(indent=2, sort_keys=True)")


def config_ids(cfg):
    """Every bos/eos/pad id that the written config.json holds, at any depth."""
    ids = set()
    for k, v in cfg.items():
        if isinstance(v, dict):
            ids |= config_ids(v)
        elif k.endswith("_token_id") and isinstance(v, int):
            ids.add(v)
    return ids


def foreign_id_warning(msg, cfg):
    """transformers 5.x builds a default sub-config (SiglipTextConfig(): vocab
    32000, bos/eos 49406/49407) while loading, and warns that *its* ids lie
    outside *its* vocabulary. That warning is about no value of ours: it comes
    with every SigLIP checkpoint, the hub's too. Ignore a token-id range warning
    only when the id it names is not in the config we wrote."""
    m = re.search(r"_token_id must be .* got (-?\d+)", msg)
    return bool(m) and int(m.group(1)) not in config_ids(cfg)


def load(what, out, kwargs):
    """from_pretrained with loading info; returns the model or None."""
    cfg = json.load(open(os.path.join(out, "config.json")))
    cls = getattr(transformers, cfg["architectures"][0])
    cap = Capture()
    tlog = logging.getLogger("transformers")
    tlog.addHandler(cap)
    try:
        with warnings.catch_warnings(record=True) as ws:
            warnings.simplefilter("always")
            model, info = cls.from_pretrained(out, output_loading_info=True, **kwargs)
    except Exception as e:  # noqa: BLE001 - any failure to load is the finding
        report(False, what, f"from_pretrained raised {type(e).__name__}: {e}")
        return None
    finally:
        tlog.removeHandler(cap)
    problems = {k: v for k, v in info.items() if v}
    msgs = [m for m in cap.messages + [str(w.message) for w in ws] if not foreign_id_warning(m, cfg)]
    report(not problems, f"{what}: loading info", str(problems))
    report(not msgs, f"{what}: no warnings", " | ".join(msgs)[:1000])
    return model


def convert(what, src, out, args, cwd=None):
    r = subprocess.run([BIN, "convert", src, out, "--quiet"] + args, cwd=cwd, capture_output=True, text=True)
    report(r.returncode == 0, f"{what}: convert", r.stderr.strip()[-600:])
    return r.returncode == 0


def compare_outputs(name, case_dir, case, model):
    inputs = np.load(os.path.join(case_dir, "inputs.npz"))
    expected = np.load(os.path.join(case_dir, "expected.npz"))
    feed = {"pixel_values": torch.from_numpy(inputs["pixel_values"])}
    if "input_ids" in inputs.files:
        feed["input_ids"] = torch.from_numpy(inputs["input_ids"])
    with torch.no_grad():
        try:
            out = model(**feed)
        except Exception as e:  # noqa: BLE001
            report(False, f"{name}: forward", f"{type(e).__name__}: {e}")
            return
    tol = case.get("tolerances", {}).get("output_max_abs", 1e-4)
    compared = 0
    for key in expected.files:
        got = getattr(out, key, None)
        if got is None or not torch.is_tensor(got):
            continue
        want = torch.from_numpy(expected[key])
        if got.shape != want.shape:
            report(False, f"{name}: {key}", f"shape {tuple(got.shape)} vs {tuple(want.shape)}")
            continue
        diff = (got.float() - want.float()).abs().max().item()
        report(diff <= tol, f"{name}: {key} within {tol}", f"max abs diff {diff}")
        compared += 1
    report(compared > 0, f"{name}: outputs compared", "no expected output is a field of the model's output")


def conformance(tmp):
    if not CONF or not os.path.isdir(CONF):
        return
    for name in sorted(os.listdir(CONF)):
        d = os.path.join(CONF, name)
        if not os.path.isfile(os.path.join(d, "case.json")):
            continue
        case = json.load(open(os.path.join(d, "case.json")))
        out = os.path.join(tmp, "conf_" + name)
        if not convert(name, os.path.join(d, case["source_file"]), out, params_to_args(case)):
            continue
        for f in ("config.json", "preprocessor_config.json"):
            if os.path.exists(os.path.join(out, f)):
                check_json_format(name, os.path.join(out, f))
        model = load(name, out, case.get("from_pretrained_kwargs", {}))
        if model is not None:
            compare_outputs(name, d, case, model.eval())
        shutil.rmtree(out, ignore_errors=True)


def fixtures(tmp):
    fixdir = os.path.join(FIX, "convert")
    for listing in sorted(glob.glob(os.path.join(fixdir, "*_cases.json"))):
        try:
            cases = json.load(open(listing))
        except ValueError:
            continue
        if not isinstance(cases, list):
            continue
        for c in cases:
            if not isinstance(c, dict) or "refuse" in c or "source" not in c or not isinstance(c.get("args"), list):
                continue
            name = c.get("name", c["source"])
            out = os.path.join(tmp, "fix_" + name)
            if not convert(name, c["source"], out, c["args"], cwd=fixdir):
                continue
            for f in ("config.json", "preprocessor_config.json"):
                if os.path.exists(os.path.join(out, f)):
                    check_json_format(name, os.path.join(out, f))
            load(name, out, c.get("from_pretrained_kwargs", {}))
            shutil.rmtree(out, ignore_errors=True)


def args_fixtures(tmp):
    """The other fixture convention: NAME.args (one option per line) beside
    the source NAME.pt / .pth / .npz."""
    fixdir = os.path.join(FIX, "convert")
    for argfile in sorted(glob.glob(os.path.join(fixdir, "*.args"))):
        name = os.path.basename(argfile)[:-5]
        srcs = [name + ext for ext in (".pt", ".pth", ".npz") if os.path.exists(os.path.join(fixdir, name + ext))]
        if len(srcs) != 1:
            continue
        args = [a for a in open(argfile).read().splitlines() if a]
        out = os.path.join(tmp, "fix_" + name)
        if not convert(name, srcs[0], out, args, cwd=fixdir):
            continue
        for f in ("config.json", "preprocessor_config.json"):
            if os.path.exists(os.path.join(out, f)):
                check_json_format(name, os.path.join(out, f))
        load(name, out, {})
        shutil.rmtree(out, ignore_errors=True)


def main():
    transformers.utils.logging.disable_progress_bar()
    transformers.utils.logging.set_verbosity_warning()
    tmp = tempfile.mkdtemp(prefix="vp_py_convert_")
    try:
        conformance(tmp)
        fixtures(tmp)
        args_fixtures(tmp)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return report.finish()


if __name__ == "__main__":
    sys.exit(main())
