#!/usr/bin/env python3
"""`kiln run` and `kiln inspect --graph` as a user runs them: outputs written as .npy,
inputs by name and in order, and every kind of bad input refused with exit 1 and a message
naming the input and what was expected, before anything runs; archives with unknown ops,
bad constants or broken source refused at load with their source location; usage errors
exit 2. Archives are rewritten from fixtures with Python's zipfile (code records are
deflated, so they cannot be patched in place). Standard library only: .npy files are
written and read by hand.

usage: run_test.py KILN FIXTURES_ROOT
"""

import ast
import os
import struct
import subprocess
import sys
import tempfile
import zipfile

from cli_checks import expect, summary

KILN = sys.argv[1]
FIXTURES = os.environ.get("KILN_FIXTURES") or sys.argv[2]


def run(*args):
    return subprocess.run([KILN, *args], capture_output=True, text=True, timeout=120)


# --- .npy by hand ----------------------------------------------------------------------

CODES = {"int64": ("<i8", "q"), "int32": ("<i4", "i"), "float32": ("<f4", "f"), "bool": ("|b1", "?")}


def write_npy(path, dtype, shape, values):
    descr, fmt = CODES[dtype]
    header = "{'descr': '%s', 'fortran_order': False, 'shape': (%s), }" % (
        descr, "".join("%d, " % s for s in shape) if len(shape) != 1 else "%d," % shape[0])
    pad = 64 - (10 + len(header) + 1) % 64
    header = header + " " * pad + "\n"
    with open(path, "wb") as f:
        f.write(b"\x93NUMPY\x01\x00" + struct.pack("<H", len(header)) + header.encode())
        f.write(struct.pack("<%d%s" % (len(values), fmt), *values))
    return path


def read_npy(path):
    raw = open(path, "rb").read()
    n = struct.unpack("<H", raw[8:10])[0]
    header = ast.literal_eval(raw[10:10 + n].decode())
    return header["descr"], list(header["shape"]), raw[10 + n:]


def fixture(gen, name):
    return os.path.join(FIXTURES, gen, name)


def case_inputs(gen, name, case):
    d = fixture(gen, name)
    return sorted(os.path.join(d, "cases", case, f) for f in os.listdir(os.path.join(d, "cases", case))
                  if f.startswith("input_"))


def rewrite_code(src, dst, path_suffix, old, new):
    """Copies an archive with one code record's text changed (stored, not deflated)."""
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w", zipfile.ZIP_STORED) as zout:
        done = False
        for info in zin.infolist():
            data = zin.read(info.filename)
            if info.filename.endswith(path_suffix) and not done:
                text = data.decode()
                assert old in text, (path_suffix, old)
                data = text.replace(old, new, 1).encode()
                done = True
            zout.writestr(info.filename, data)
        assert done, path_suffix
    return dst


def main():
    tmp = tempfile.mkdtemp(prefix="kiln-run-test-")

    # --- a model runs and writes its outputs ---
    bert = os.path.join(fixture("t1", "bert_tiny_2in"), "bert_tiny_2in.pt")
    ids, mask = [os.path.join(fixture("t1", "bert_tiny_2in"), "cases", "trace", "input_%s.npy" % n)
                 for n in ("input_ids", "attention_mask")]
    out = os.path.join(tmp, "out")
    os.mkdir(out)
    r = run("run", bert, ids, mask, "--output-dir", out)
    expect("run in order", r, 0, stdout_has=("output_0: float32 [1, 14, 32]", "output_1: float32 [1, 32]", "time: load"))
    if r.returncode == 0:
        descr, shape, data = read_npy(os.path.join(out, "output_0.npy"))
        want_descr, want_shape, _ = read_npy(os.path.join(fixture("t1", "bert_tiny_2in"), "cases", "trace", "output_0.npy"))
        expect("output_0.npy header", subprocess.CompletedProcess([], 0 if (descr, shape) == (want_descr, want_shape) else 1,
                                                                  "", str((descr, shape))), 0)
    expect("run by name", run("run", bert, "--input", "attention_mask=" + mask, "--input", "input_ids=" + ids), 0,
           stdout_has=("output_0: float32 [1, 14, 32]",))
    expect("int32 ids", run("run", bert, write_npy(os.path.join(tmp, "ids32.npy"), "int32", [1, 3], [5, 6, 7]),
                            write_npy(os.path.join(tmp, "mask3.npy"), "int64", [1, 3], [1, 1, 1])), 0,
           stdout_has=("output_0: float32 [1, 3, 32]",))
    expect("help", run("run", "--help"), 0, stdout_has=("usage: kiln run",))
    expect("reference provider", run("run", bert, ids, mask, "--provider", "cpu-reference"), 0,
           stdout_has=("output_0: float32 [1, 14, 32]",))
    expect("unknown provider", run("run", bert, ids, mask, "--provider", "gpu"), 2,
           stderr_has=("kiln: error: unknown provider 'gpu' (kiln has: cpu, cpu-reference)",))
    expect("placement", run("inspect", "--placement", bert), 0, stdout_has=("cpu (host):", "aten::linear"))
    expect("threads and profile", run("run", bert, ids, mask, "--threads", "2", "--profile"), 0,
           stdout_has=("threads 2", "memory: arena ", "profile (last run", "aten::linear"))
    expect("bad --threads", run("run", bert, ids, mask, "--threads", "two"), 2, stderr_has=("--threads expects a count",))
    expect("bad --max-memory", run("run", bert, ids, mask, "--max-memory", "12Q"), 2, stderr_has=("--max-memory expects a size",))
    expect("--max-memory too small", run("run", bert, ids, mask, "--max-memory", "1K"), 1,
           stderr_has=(bert + ": this run needs ", "more than max_memory = 1024"))
    expect("--max-memory enough", run("run", bert, ids, mask, "--max-memory", "1G"), 0, stdout_has=("output_0: float32",))

    # --- usage errors: exit 2 ---
    expect("no model", run("run"), 2, stderr_has=("kiln: error: run: no MODEL given",))
    expect("bad option", run("run", bert, "--frobnicate"), 2, stderr_has=("unknown option '--frobnicate'",))
    expect("--input without =", run("run", bert, "--input", ids), 2, stderr_has=("--input expects NAME=FILE.npy",))
    expect("both ways", run("run", bert, ids, "--input", "attention_mask=" + mask), 2, stderr_has=("not both",))

    # --- bad inputs: exit 1, named, before running ---
    expect("too few inputs", run("run", bert, ids), 1,
           stderr_has=("kiln: error: " + bert + ": the model takes 2 inputs (input_ids, attention_mask), got 1",))
    expect("unknown name", run("run", bert, "--input", "input_ids=" + ids, "--input", "token_type_ids=" + mask), 1,
           stderr_has=(bert + ":token_type_ids: the model has no input 'token_type_ids' (its inputs: input_ids, attention_mask)",))
    expect("missing name", run("run", bert, "--input", "input_ids=" + ids), 1, stderr_has=(bert + ":attention_mask: input missing",))
    fids = write_npy(os.path.join(tmp, "fids.npy"), "float32", [1, 3], [1.0, 2.0, 3.0])
    expect("float ids", run("run", bert, fids, mask), 1,
           stderr_has=(bert + ":input_ids: expected an integer tensor (int64 or int32), got float32",))
    ids3 = write_npy(os.path.join(tmp, "ids3d.npy"), "int64", [1, 1, 3], [1, 2, 3])
    expect("rank 3 ids", run("run", bert, ids3, ids3), 1,
           stderr_has=(bert + ":input_ids: expected 2 dimensions [batch, seq], got 3 [1, 1, 3]",))
    short_mask = write_npy(os.path.join(tmp, "mask2.npy"), "int64", [1, 2], [1, 1])
    expect("mismatched seq", run("run", bert, os.path.join(tmp, "ids32.npy"), short_mask), 1,
           stderr_has=(bert + ":attention_mask: dimension 1 (seq) is 2, but input_ids has seq = 3",))
    big = write_npy(os.path.join(tmp, "big.npy"), "int64", [1, 3], [5, 512, 7])
    expect("id past the vocabulary", run("run", bert, big, os.path.join(tmp, "mask3.npy")), 1,
           stderr_has=(bert + ":input_ids: id 512 at [0, 1] is out of range for word_embeddings (512 entries: ids 0..511)",))
    neg = write_npy(os.path.join(tmp, "neg.npy"), "int64", [1, 3], [5, 6, -1])
    expect("negative id", run("run", bert, neg, os.path.join(tmp, "mask3.npy")), 1,
           stderr_has=(bert + ":input_ids: id -1 at [0, 2] is out of range for word_embeddings",))
    with open(os.path.join(tmp, "truncated.npy"), "wb") as f:
        f.write(open(ids, "rb").read()[:-5])
    expect("truncated npy", run("run", bert, os.path.join(tmp, "truncated.npy"), mask), 1,
           stderr_has=("kiln: error: " + os.path.join(tmp, "truncated.npy"),))

    # RoBERTa: one token type, and 512 usable positions of its 514-row table.
    roberta = os.path.join(fixture("t1", "roberta_tiny"), "roberta_tiny.pt")
    types1 = write_npy(os.path.join(tmp, "types1.npy"), "int64", [1, 3], [0, 1, 0])
    expect("token type past the type vocabulary", run("run", roberta, os.path.join(tmp, "mask3.npy"),
                                                      os.path.join(tmp, "mask3.npy"), types1), 1,
           stderr_has=(roberta + ":token_type_ids: id 1 at [0, 1] is out of range for token_type_embeddings (1 entries: ids 0..0)",))
    for seq, code in ((512, 0), (513, 1)):
        long_ids = write_npy(os.path.join(tmp, "ids%d.npy" % seq), "int64", [1, seq], [5] * seq)
        long_mask = write_npy(os.path.join(tmp, "mask%d.npy" % seq), "int64", [1, seq], [1] * seq)
        long_types = write_npy(os.path.join(tmp, "types%d.npy" % seq), "int64", [1, seq], [0] * seq)
        expect("roberta seq %d" % seq, run("run", roberta, long_ids, long_mask, long_types), code,
               stderr_has=() if code == 0 else
               (roberta + ":input_ids: these inputs are too large for the model",
                "aten::embedding: index 514 is out of bounds for dimension 0 with size 514",
                "with seq = 513 the model takes at most 512 tokens that are not padding"))
    # Positions count only real tokens: 600 tokens of which 512 are padding run, as in PyTorch.
    padded_ids = write_npy(os.path.join(tmp, "ids600.npy"), "int64", [1, 600], [5] * 512 + [1] * 88)
    padded_mask = write_npy(os.path.join(tmp, "mask600.npy"), "int64", [1, 600], [1] * 512 + [0] * 88)
    padded_types = write_npy(os.path.join(tmp, "types600.npy"), "int64", [1, 600], [0] * 600)
    expect("roberta 600 tokens, 512 real", run("run", roberta, padded_ids, padded_mask, padded_types), 0,
           stdout_has=("output_0: float32 [1, 600, 32]",))

    # The shape report: a baked size refuses, a baked slice warns (or refuses when strict).
    baked = os.path.join(fixture("t1", "baked_size"), "baked_size.pt")
    b2s9 = case_inputs("t1", "baked_size", "b2_s9")
    expect("baked size refuses", run("run", baked, *b2s9), 1,
           stderr_has=(baked + ":baked_size/code/__torch__.py:14: these inputs need a size the trace fixed: aten::reshape",
                       "the model works only with seq = 7, got 9"))
    b3s7 = case_inputs("t1", "baked_size", "b3_s7")
    expect("baked slice warns", run("run", baked, *b3s7), 0,
           stdout_has=("output_1: float32 [2, 7, 8]",),
           stderr_has=("kiln: warning: " + baked + ":baked_size/code/__torch__.py:14: aten::slice", "as PyTorch would"))
    expect("baked slice strict", run("run", baked, *b3s7, "--strict-shapes"), 1, stderr_has=("refused: --strict-shapes",))
    expect("shape report in inspect", run("inspect", "--graph", baked), 0,
           stdout_has=("# shape: baked_size/code/__torch__.py:14:11: aten::reshape: the trace fixed a size",))

    # --- archives kiln refuses at load, with the source location ---
    act = "code/__torch__/torch/nn/modules/activation.py"
    bad = rewrite_code(bert, os.path.join(tmp, "save.pt"), act, "torch.tanh(argument_1)", "torch.save(argument_1)")
    expect("unknown op", run("inspect", "--graph", bad), 1,
           stderr_has=("kiln: error: %s:bert_tiny_2in/%s:8:12: unsupported op aten::save (not in kiln's op allowlist; "
                       "docs/ops.md lists what is)" % (bad, act),))
    expect("unknown op at run", run("run", bad, ids, mask), 1, stderr_has=("unsupported op aten::save",))
    expect("unknown op in inspect's report", run("inspect", bad), 0,
           stdout_has=("warning: kiln cannot run this program: bert_tiny_2in/%s:8:12: unsupported op aten::save" % act,))
    mb = "code/__torch__/transformers/models/bert/modeling_bert.py"
    bad = rewrite_code(bert, os.path.join(tmp, "const.pt"), mb, "CONSTANTS.c0", "CONSTANTS.c7")
    expect("constant out of range", run("inspect", "--graph", bad), 1,
           stderr_has=("CONSTANTS.c7 is out of range: constants.pkl holds",))
    bad = rewrite_code(bert, os.path.join(tmp, "type.pt"), "___torch_mangle_16.py", "torch.softmax(input, -1)",
                       "torch.softmax(input, 1.)")
    expect("wrong argument type", run("inspect", "--graph", bad), 1,
           stderr_has=("no overload of aten::softmax takes (Tensor, float); kiln knows: aten::softmax.int(Tensor self, "
                       "int dim, ScalarType? dtype=None) -> Tensor",))
    bad = rewrite_code(bert, os.path.join(tmp, "syntax.pt"), act, "return torch.tanh(argument_1)", "return torch.tanh(argument_1(")
    expect("syntax error", run("inspect", "--graph", bad), 1, stderr_has=(bad + ":bert_tiny_2in/" + act + ":",))
    bad = rewrite_code(bert, os.path.join(tmp, "fork.pt"), act, "torch.tanh(argument_1)", "fork(argument_1)")
    expect("fork", run("inspect", "--graph", bad), 1, stderr_has=("undefined name 'fork'",))

    # Upgraders: aten::div on a version-3 archive (scripted_control_flow) decides by dtype.
    scripted = os.path.join(fixture("t1", "scripted_control_flow"), "scripted_control_flow.pt")
    old = rewrite_code(scripted, os.path.join(tmp, "div3.pt"), "code/__torch__.py", "torch.mul(h, _2)", "torch.div(h, _2)")
    expect("div before version 4", run("inspect", "--graph=raw", old), 0, stdout_has=("kiln::div_legacy(",))
    expect("div since version 4", run("inspect", "--graph=raw", bert), 0, stdout_has=("aten::div(",))

    return summary("run_test")


if __name__ == "__main__":
    sys.exit(main())
