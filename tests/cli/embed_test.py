#!/usr/bin/env python3
"""`kiln embed` as a user runs it, on the real all-MiniLM-L6-v2 (fixture t2/minilm_l6):
one JSON array per input line, in input order, matching sentence-transformers' embeddings
(sentence_embeddings.npy) with --normalize --max-length 256; unit norms with --normalize;
JSON-lines input; and bad input (invalid UTF-8, bad JSON) refused with exit 1 naming the
line, usage errors with exit 2, a model with a task head with exit 1. Standard library
only: the .npy file is read by hand.

usage: embed_test.py KILN FIXTURES_ROOT
"""

import ast
import json
import math
import os
import struct
import subprocess
import sys

from cli_checks import check, expect, summary

KILN = sys.argv[1]
FIXTURES = os.environ.get("KILN_FIXTURES") or sys.argv[2]
SOURCE = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
# all-MiniLM-L6-v2's vocab.txt is bert-base-uncased's, byte for byte.
VOCAB = os.path.join(SOURCE, "tests", "tokenizer", "vocab", "bert-base-uncased", "vocab.txt")
MINILM = os.path.join(FIXTURES, "t2", "minilm_l6")
MODEL = os.path.join(MINILM, "minilm_l6.pt")
SEQCLS = os.path.join(FIXTURES, "t2", "bert_tiny_seqcls", "bert_tiny_seqcls.pt")


def run(*args, stdin=b""):
    r = subprocess.run([KILN, *args], input=stdin, capture_output=True, timeout=300)
    r.stdout = r.stdout.decode("utf-8", "replace")
    r.stderr = r.stderr.decode("utf-8", "replace")
    return r


def read_npy_f32(path):
    raw = open(path, "rb").read()
    n = struct.unpack("<H", raw[8:10])[0]
    header = ast.literal_eval(raw[10:10 + n].decode())
    assert header["descr"] == "<f4" and not header["fortran_order"], header
    rows, cols = header["shape"]
    flat = struct.unpack("<%df" % (rows * cols), raw[10 + n:10 + n + 4 * rows * cols])
    return [list(flat[i * cols:(i + 1) * cols]) for i in range(rows)]


def vectors(result):
    """The embeddings a successful run printed, one per line; None if any line is not a
    JSON array of numbers."""
    try:
        out = [json.loads(line) for line in result.stdout.splitlines()]
    except ValueError:
        return None
    if not all(isinstance(v, list) and all(isinstance(x, (int, float)) for x in v) for v in out):
        return None
    return out


def norm(v):
    return math.sqrt(sum(x * x for x in v))


def cosine(a, b):
    return sum(x * y for x, y in zip(a, b)) / max(norm(a) * norm(b), 1e-12)


def main():
    sentences_path = os.path.join(MINILM, "sentences.txt")
    sentences = open(sentences_path, encoding="utf-8").read().splitlines()
    text = "\n".join(sentences).encode() + b"\n"
    reference = read_npy_f32(os.path.join(MINILM, "sentence_embeddings.npy"))

    # --- sentence-transformers' numbers, in input order ---
    r = run("embed", MODEL, "--vocab", VOCAB, "--normalize", "--max-length", "256", stdin=text)
    expect("embed 100 sentences", r, 0)
    got = vectors(r)
    check("100 lines of 384 floats", got is not None and len(got) == 100 and all(len(v) == 384 for v in got),
          "got %s" % (None if got is None else [len(v) for v in got][:5]))
    if got and len(got) == 100:
        worst = min(cosine(g, e) for g, e in zip(got, reference))
        check("cosine with sentence-transformers >= 0.9999", worst >= 0.9999, "worst %.6f" % worst)
        check("--normalize gives unit norms", all(abs(norm(v) - 1) < 1e-5 for v in got),
              "norms %s" % [norm(v) for v in got[:3]])
        # Floats printed as %.9g of a float32: the float32 nearest each number prints the same.
        first = r.stdout.splitlines()[0].strip("[]").split(",")
        check("float32 round trip", all("%.9g" % struct.unpack("<f", struct.pack("<f", float(t)))[0] == t for t in first),
              first[:4])
        # Batching by length does not reorder: the same lines reversed come back reversed.
        r2 = run("embed", MODEL, "--vocab", VOCAB, "--normalize", "--max-length", "256", "--batch-size", "7",
                 stdin="\n".join(reversed(sentences[:20])).encode())
        expect("reversed input", r2, 0)
        back = vectors(r2)
        check("reversed input gives reversed output", back is not None and len(back) == 20 and
              all(max(abs(a - b) for a, b in zip(back[19 - i], got[i])) < 1e-5 for i in range(20)))

    # --- without --normalize: not unit length; cls pooling differs from mean ---
    three = "\n".join(sentences[:3]).encode()
    plain = vectors(run("embed", MODEL, "--vocab", VOCAB, stdin=three))
    check("unnormalized", plain is not None and len(plain) == 3 and any(abs(norm(v) - 1) > 1e-3 for v in plain))
    cls = vectors(run("embed", MODEL, "--vocab", VOCAB, "--pooling", "cls", "--threads", "1", stdin=three))
    check("cls pooling", cls is not None and plain is not None and len(cls) == 3 and cls[0] != plain[0])

    # --- JSON lines: the "text" field, other keys ignored; CRLF and a last line without LF ---
    jl = "\r\n".join(json.dumps({"id": i, "text": s}) for i, s in enumerate(sentences[:3])).encode()
    jr = run("embed", MODEL, "--vocab", VOCAB, "--jsonl", stdin=jl)
    expect("jsonl", jr, 0)
    jv = vectors(jr)
    check("jsonl gives what plain lines give", jv is not None and plain is not None and len(jv) == 3 and
          all(max(abs(a - b) for a, b in zip(x, y)) < 1e-6 for x, y in zip(jv, plain)))
    expect("empty input", run("embed", MODEL, "--vocab", VOCAB, stdin=b""), 0)
    check("empty input prints nothing", run("embed", MODEL, "--vocab", VOCAB, stdin=b"").stdout == "")
    empty_line = vectors(run("embed", MODEL, "--vocab", VOCAB, stdin=b"\n"))
    check("an empty line embeds too", empty_line is not None and len(empty_line) == 1 and len(empty_line[0]) == 384)

    # --- bad input: exit 1 naming the line, nothing written ---
    bad = run("embed", MODEL, "--vocab", VOCAB, stdin=b"fine\nalso fine\nbad \xff byte\nfine\n")
    expect("invalid UTF-8", bad, 1, stderr_has=("kiln: error: <stdin>:3: invalid UTF-8 (byte 0xFF at column 5)",))
    check("nothing written before a bad line", bad.stdout == "", bad.stdout[:100])
    expect("bad JSON", run("embed", MODEL, "--vocab", VOCAB, "--jsonl", stdin=b'{"text": "a"}\n{"text": \n'), 1,
           stderr_has=("kiln: error: <stdin>:2: bad JSON",))
    expect("no text", run("embed", MODEL, "--vocab", VOCAB, "--jsonl", stdin=b'{"txt": "a"}\n'), 1,
           stderr_has=("kiln: error: <stdin>:1: missing \"text\"",))
    expect("text not a string", run("embed", MODEL, "--vocab", VOCAB, "--jsonl", stdin=b'["a"]\n'), 1,
           stderr_has=("kiln: error: <stdin>:1: expected a JSON object",))

    # --- models it cannot embed with, files it cannot read ---
    expect("classification head", run("embed", SEQCLS, "--vocab", VOCAB, stdin=b"hello\n"), 1,
           stderr_has=("kiln: error: %s: not an encoder: its first output is float32 [batch, 3]" % SEQCLS,
                       "[batch, seq, hidden]"))
    tokcls = os.path.join(FIXTURES, "t2", "bert_tiny_tokcls", "bert_tiny_tokcls.pt")
    expect("token classification head", run("embed", tokcls, "--vocab", VOCAB, stdin=b"hello\n"), 1,
           stderr_has=("not an encoder: it is a BertForTokenClassification", "[batch, seq, 5]"))
    expect("missing model", run("embed", "/nonexistent.pt", "--vocab", VOCAB, stdin=b"x\n"), 1,
           stderr_has=("/nonexistent.pt",))
    expect("missing vocab", run("embed", MODEL, "--vocab", "/nonexistent/vocab.txt", stdin=b"x\n"), 1,
           stderr_has=("/nonexistent/vocab.txt",))

    # --- usage: exit 2 ---
    expect("no --vocab", run("embed", MODEL), 2, stderr_has=("kiln: error: embed: no --vocab FILE given",))
    expect("no model", run("embed", "--vocab", VOCAB), 2, stderr_has=("embed: no MODEL given",))
    expect("bad pooling", run("embed", MODEL, "--vocab", VOCAB, "--pooling", "max"), 2,
           stderr_has=("--pooling must be mean or cls",))
    expect("bad max length", run("embed", MODEL, "--vocab", VOCAB, "--max-length", "1"), 2,
           stderr_has=("--max-length needs a whole number from 2",))
    expect("bad batch size", run("embed", MODEL, "--vocab", VOCAB, "--batch-size", "0"), 2,
           stderr_has=("--batch-size needs a whole number from 1",))
    expect("bad threads", run("embed", MODEL, "--vocab", VOCAB, "--threads", "x"), 2, stderr_has=("--threads",))
    expect("unknown option", run("embed", MODEL, "--vocab", VOCAB, "--bogus"), 2, stderr_has=("unknown option '--bogus'",))
    expect("value on a flag", run("embed", MODEL, "--vocab", VOCAB, "--normalize=yes"), 2,
           stderr_has=("--normalize takes no value",))
    expect("two models", run("embed", MODEL, MODEL, "--vocab", VOCAB), 2, stderr_has=("unexpected argument",))
    expect("help", run("embed", "--help"), 0, stdout_has=("usage: kiln embed MODEL --vocab FILE",))
    expect("listed in kiln --help", run("--help"), 0, stdout_has=("embed MODEL --vocab FILE",))
    # Not a terminal: no progress bar on stderr.
    quiet = run("embed", MODEL, "--vocab", VOCAB, "--batch-size", "2", stdin=text)
    expect("no progress bar when stderr is not a terminal", quiet, 0)
    check("stderr empty when not a terminal", quiet.stderr == "", quiet.stderr[:200])

    return summary("embed_test")


if __name__ == "__main__":
    sys.exit(main())
