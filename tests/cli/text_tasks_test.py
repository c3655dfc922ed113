#!/usr/bin/env python3
"""`kiln fill-mask`, `kiln classify` and `kiln qa` against the Transformers pipelines.

The fixtures t2/text_mlm, text_seqcls and text_qa (and their _sdpa twins) are task heads
with bert-base-uncased's vocabulary; tests/fixtures/make_fixtures.py stored what the
fill-mask, text-classification and question-answering pipelines answered on a few dozen
inputs each (pipeline.json, inputs closer to a tie than its `margin` left out). kiln must
give the same tokens, sequences, labels and answer spans, in the same order, with scores
within float32 rounding. Also: task mismatches are refused with exit 1 naming the
archive's class, usage errors exit 2, bad input lines exit 1 naming the line. Standard
library only.

usage: text_tasks_test.py KILN FIXTURES_ROOT
"""

import json
import os
import subprocess
import sys

from cli_checks import check, expect, summary

KILN = sys.argv[1]
FIXTURES = os.environ.get("KILN_FIXTURES") or sys.argv[2]
SOURCE = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
VOCAB = os.path.join(SOURCE, "tests", "tokenizer", "vocab", "bert-base-uncased", "vocab.txt")


def fixture(name):
    d = os.path.join(FIXTURES, "t2", name)
    return os.path.join(d, name + ".pt"), os.path.join(d, "pipeline.json")


def run(*args, stdin=b""):
    r = subprocess.run([KILN, *args], input=stdin, capture_output=True, timeout=300)
    r.stdout = r.stdout.decode("utf-8", "replace")
    r.stderr = r.stderr.decode("utf-8", "replace")
    return r


def close(a, b):
    return abs(a - b) <= 2e-5 + 1e-3 * abs(b)


def jsonl(items):
    return "".join(json.dumps(i) + "\n" for i in items).encode()


def outputs(name, result, count):
    """The JSON values a successful run printed, one per line; [] (and a failure) otherwise."""
    expect(name, result, 0)
    try:
        out = [json.loads(line) for line in result.stdout.splitlines()]
    except ValueError as e:
        check(name + " output is JSON lines", False, str(e))
        return []
    check(name + " one line per input", len(out) == count, "%d lines for %d inputs" % (len(out), count))
    return out


def check_fill_mask(name):
    model, ref_path = fixture(name)
    ref = json.load(open(ref_path, encoding="utf-8"))
    items = ref["items"]
    out = outputs(name, run("fill-mask", model, "--vocab", VOCAB, "--top-k", str(ref["args"]["top_k"]), "--jsonl",
                            "--batch-size", "7", stdin=jsonl({"text": i["text"]} for i in items)), len(items))
    bad = []
    for item, got in zip(items, out):
        want = item["masks"]
        same = len(got) == len(want) and all(
            len(g) == len(w) and all(gc["token"] == wc["token"] and gc["token_str"] == wc["token_str"] and
                                     gc["sequence"] == wc["sequence"] and close(gc["score"], wc["score"])
                                     for gc, wc in zip(g, w))
            for g, w in zip(got, want))
        if not same:
            bad.append("%r: kiln %s, pipeline %s" % (item["text"], json.dumps(got)[:300], json.dumps(want)[:300]))
    check("%s: %d texts, %d [MASK]s as the fill-mask pipeline" % (name, len(items), sum(len(i["masks"]) for i in items)),
          out and not bad, "; ".join(bad[:3]))


def check_classify(name):
    model, ref_path = fixture(name)
    ref = json.load(open(ref_path, encoding="utf-8"))
    items = ref["items"]
    out = outputs(name, run("classify", model, "--vocab", VOCAB, stdin="".join(i["text"] + "\n" for i in items).encode()),
                  len(items))
    bad = [("%r: kiln %s, pipeline %s" % (i["text"], g, i["labels"])) for i, g in zip(items, out)
           if [x["label"] for x in g] != [x["label"] for x in i["labels"]] or
           not all(close(x["score"], y["score"]) for x, y in zip(g, i["labels"]))]
    check("%s: %d texts labelled as the text-classification pipeline" % (name, len(items)), out and not bad,
          "; ".join(bad[:3]))
    # Names given for the labels replace LABEL_n in the same places.
    named = outputs(name + " --labels", run("classify", model, "--vocab", VOCAB, "--labels", "neg,neu,pos",
                                            stdin=(items[0]["text"] + "\n").encode()), 1)
    names = {"LABEL_0": "neg", "LABEL_1": "neu", "LABEL_2": "pos"}
    check(name + " --labels renames", named and [x["label"] for x in named[0]] ==
          [names[x["label"]] for x in items[0]["labels"]], str(named))


def check_qa(name):
    model, ref_path = fixture(name)
    ref = json.load(open(ref_path, encoding="utf-8"))
    top_k = ref["args"]["top_k"]
    groups = {}
    for item in ref["items"]:
        groups.setdefault(json.dumps(item["args"], sort_keys=True), []).append(item)
    for key, items in sorted(groups.items()):
        args = json.loads(key)
        flags = []
        if "max_seq_len" in args:
            flags += ["--max-length", str(args["max_seq_len"])]
        if "doc_stride" in args:
            flags += ["--stride", str(args["doc_stride"])]
        label = "%s %s" % (name, " ".join(flags) or "defaults")
        out = outputs(label, run("qa", model, "--vocab", VOCAB, "--top-k", str(top_k), "--batch-size", "5", *flags,
                                 stdin=jsonl({"question": i["question"], "context": i["context"]} for i in items)),
                      len(items))
        bad = []
        for item, got in zip(items, out):
            want = item["answers"]
            same = len(got) == len(want) and all(
                (g["start"], g["end"], g["answer"]) == (w["start"], w["end"], w["answer"]) and close(g["score"], w["score"])
                for g, w in zip(got, want))
            if not same:
                bad.append("%r: kiln %s, pipeline %s" % (item["question"], got, want))
        check("%s: %d questions answered as the question-answering pipeline" % (label, len(items)), out and not bad,
              "; ".join(bad[:2]))


def check_errors():
    mlm, _ = fixture("text_mlm")
    cls, _ = fixture("text_seqcls")
    qa, _ = fixture("text_qa")
    encoder = os.path.join(FIXTURES, "t2", "bert_tiny_3in", "bert_tiny_3in.pt")
    expect("qa on a masked LM", run("qa", mlm, "--vocab", VOCAB, "--question", "a", "--context", "b"), 1,
           stderr_has=("kiln: error: %s: not a question-answering model: it is a BertForMaskedLM" % mlm,
                       "needs a BertForQuestionAnswering archive"))
    expect("fill-mask on an encoder", run("fill-mask", encoder, "--vocab", VOCAB, stdin=b"a [MASK]\n"), 1,
           stderr_has=("not a masked-LM model: it is a BertModel (an encoder without a task head",))
    expect("classify on qa", run("classify", qa, "--vocab", VOCAB, stdin=b"x\n"), 1,
           stderr_has=("not a sequence-classification model: it is a BertForQuestionAnswering",))
    expect("embed on a classifier", run("embed", cls, "--vocab", VOCAB, stdin=b"x\n"), 1,
           stderr_has=("not an encoder",))
    expect("no [MASK]", run("fill-mask", mlm, "--vocab", VOCAB, stdin=b"a [MASK]\nno mask here\n"), 1,
           stderr_has=("kiln: error: <stdin>:2: no [MASK] token",))
    expect("bad UTF-8", run("classify", cls, "--vocab", VOCAB, stdin=b"fine\n\xff\n"), 1,
           stderr_has=("kiln: error: <stdin>:2: invalid UTF-8",))
    expect("qa line without context", run("qa", qa, "--vocab", VOCAB, stdin=b'{"question": "q"}\n'), 1,
           stderr_has=("kiln: error: <stdin>:1: missing \"context\"",))
    expect("qa question too long", run("qa", qa, "--vocab", VOCAB, "--max-length", "16", "--stride", "4",
                                       "--question", "one two three four five six seven eight nine ten eleven",
                                       "--context", "a b c d e f g h i j k l m n o p"), 1,
           stderr_has=("the question and special tokens take 14 tokens",))
    expect("labels of the wrong count", run("classify", cls, "--vocab", VOCAB, "--labels", "a,b", stdin=b"x\n"), 1,
           stderr_has=("the model scores 3 labels but 2 label names were given",))
    expect("question without context", run("qa", qa, "--vocab", VOCAB, "--question", "q"), 2,
           stderr_has=("--question needs --context",))
    expect("stride not below max-length", run("qa", qa, "--vocab", VOCAB, "--stride", "384"), 2,
           stderr_has=("--stride (384) must be less than --max-length (384)",))
    expect("bad function", run("classify", cls, "--vocab", VOCAB, "--function", "max"), 2,
           stderr_has=("--function must be softmax, sigmoid or none",))
    expect("top-k 0", run("fill-mask", mlm, "--vocab", VOCAB, "--top-k", "0"), 2, stderr_has=("--top-k",))
    expect("no vocab", run("classify", cls), 2, stderr_has=("classify: no --vocab FILE given",))
    for cmd in ("fill-mask", "classify", "qa"):
        expect(cmd + " --help", run(cmd, "--help"), 0, stdout_has=("usage: kiln " + cmd,))
    # One question on the command line: one object, character offsets into the context.
    context = "Ünïcödé text: the cat is sleeping on the warm windowsill."
    r = run("qa", qa, "--vocab", VOCAB, "--question", "Where is the cat?", "--context", context)
    expect("qa --question --context", r, 0)
    try:
        a = json.loads(r.stdout)
        check("qa answer is the context's characters start..end", context[a["start"]:a["end"]] == a["answer"], str(a))
    except (ValueError, KeyError, TypeError) as e:
        check("qa answer is one JSON object", False, "%s: %r" % (e, r.stdout))


def main():
    for suffix in ("", "_sdpa"):
        if not os.path.exists(fixture("text_mlm" + suffix)[0]):
            check("fixture text_mlm%s exists (tools/make-fixtures)" % suffix, False)
            continue
        check_fill_mask("text_mlm" + suffix)
        check_classify("text_seqcls" + suffix)
        check_qa("text_qa" + suffix)
    check_errors()
    return summary("text tasks")


if __name__ == "__main__":
    sys.exit(main())
