#!/usr/bin/env python3
"""`kiln tokenize` as a user runs it: its output on a sample of corpus lines must equal the
reference outputs that tests/tokenizer/make_corpus.py wrote (plain lines, --pair and
--jsonl input; both vocabulary files; several option sets), and usage mistakes and bad
input must give the documented exit codes and messages. Standard library only.

usage: cli_test.py KILN FIXTURES_ROOT
"""

import json
import os
import subprocess
import sys

KILN = sys.argv[1]
FIXTURES = os.environ.get("KILN_FIXTURES") or sys.argv[2]
FIELDS = ("input_ids", "token_type_ids", "attention_mask", "offsets", "tokens")
failures = []
passed = 0


def run(args, stdin):
    if isinstance(stdin, str):
        stdin = stdin.encode("utf-8")
    return subprocess.run([KILN, "tokenize", *args], input=stdin, capture_output=True, timeout=120)


def expect(name, result, code, stderr_has=(), stdout_lines=None):
    global passed
    problems = []
    err = result.stderr.decode("utf-8", "replace")
    if result.returncode != code:
        problems.append("exit %d, expected %d" % (result.returncode, code))
    for s in stderr_has:
        if s not in err:
            problems.append("stderr lacks %r" % s)
    if stdout_lines is not None:
        got = result.stdout.decode("utf-8", "replace").splitlines()
        if len(got) != stdout_lines:
            problems.append("%d output lines, expected %d" % (len(got), stdout_lines))
    if problems:
        failures.append("%s: %s\n  stdout: %s\n  stderr: %s" % (name, "; ".join(problems),
                                                               result.stdout[-300:], err[-500:]))
    else:
        passed += 1


def compare(name, result, records):
    """The run must succeed with one output line per record, each equal to the reference."""
    global passed
    if result.returncode != 0:
        failures.append("%s: exit %d: %s" % (name, result.returncode, result.stderr.decode("utf-8", "replace")[-800:]))
        return
    lines = result.stdout.decode("utf-8").split("\n")
    if lines[-1] != "":
        failures.append("%s: output does not end with a newline" % name)
        return
    lines = lines[:-1]
    if len(lines) != len(records):
        failures.append("%s: %d output lines for %d input lines" % (name, len(lines), len(records)))
        return
    bad = 0
    for line, rec in zip(lines, records):
        got = json.loads(line)
        if list(got) != list(FIELDS):
            failures.append("%s: keys %s, expected %s in that order" % (name, list(got), list(FIELDS)))
            return
        if line != json.dumps(got, ensure_ascii=False, separators=(",", ":")):
            failures.append("%s: output is not compact JSON: %s" % (name, line[:200]))
            return
        want = {k: rec[k] for k in FIELDS}
        if got != want:
            bad += 1
            if bad <= 3:
                failures.append("%s: corpus line %d %r:\n  kiln:      %s\n  reference: %s" %
                                (name, rec["line"], rec["text"][:80], json.dumps(got)[:400], json.dumps(want)[:400]))
    if bad == 0:
        passed += 1


def load(vocab, options):
    with open(os.path.join(FIXTURES, "tokenizer-golden.%s.%s.jsonl" % (vocab, options)), encoding="utf-8") as f:
        return [json.loads(line) for line in f]


def sample(records):
    """About 150 lines of every kind: the hand-written ones first, then a spread of the rest."""
    picked = records[:60] + records[60::len(records) // 90]
    return [r for r in picked if "error" not in r]


def jsonl_input(records):
    out = []
    for r in records:
        obj = {"text": r["text"]}
        if "text_pair" in r:
            obj["text_pair"] = r["text_pair"]
        out.append(json.dumps(obj, ensure_ascii=False))
    return "\n".join(out) + "\n"


def plain_ok(text):
    # Lines are split at LF and a trailing CR is dropped, so such texts cannot go in plain.
    return "\n" not in text and not text.endswith("\r")


def main():
    global passed
    index_path = os.path.join(FIXTURES, "tokenizer-golden.json")
    if not os.path.isfile(index_path):
        sys.exit("cli_test: %s missing: make it with tools/make-fixtures" % index_path)
    with open(index_path, encoding="utf-8") as f:
        index = json.load(f)
    vocab_dir = index["vocab_dir"]
    flags = {"max16_longest_first": ["--max-length", "16"],
             "max16_only_second": ["--max-length", "16", "--truncation", "only_second"],
             "max32_padding": ["--max-length=32", "--padding"],
             "no_special": ["--no-special-tokens"], "default": []}

    # Outputs against the reference.
    for v in index["vocabs"]:
        name, lowercase = v["name"], v["lowercase"]
        case_flag = ["--lowercase"] if lowercase else ["--no-lowercase"]
        for options, extra in flags.items():
            records = sample(load(name, options))
            for vocab_file, vflags in (("tokenizer.json", []), ("vocab.txt", case_flag)):
                vocab = ["--vocab", os.path.join(vocab_dir, name, vocab_file)]
                label = "%s/%s %s" % (name, vocab_file, options)
                compare(label + " --jsonl", run(vocab + vflags + extra + ["--jsonl"], jsonl_input(records)), records)
                if options == "max16_only_second":
                    continue  # single texts that need truncating are errors there
                singles = [r for r in records if "text_pair" not in r and plain_ok(r["text"])]
                compare(label + " plain", run(vocab + vflags + extra, "".join(r["text"] + "\n" for r in singles)),
                        singles)
                pairs = [r for r in records if "text_pair" in r and plain_ok(r["text"]) and "\t" not in r["text"]
                         and plain_ok(r["text_pair"])]
                compare(label + " --pair", run(vocab + vflags + extra + ["--pair"],
                                               "".join(r["text"] + "\t" + r["text_pair"] + "\n" for r in pairs)),
                        pairs)

    uncased = os.path.join(vocab_dir, "bert-base-uncased", "vocab.txt")
    vocab = ["--vocab", uncased]

    # Line handling: CRLF, no final newline, empty input, NUL bytes, empty lines.
    one = {"input_ids": [101, 7592, 102], "token_type_ids": [0, 0, 0], "attention_mask": [1, 1, 1],
           "offsets": [[0, 0], [0, 5], [0, 0]], "tokens": ["[CLS]", "hello", "[SEP]"]}
    empty = {"input_ids": [101, 102], "token_type_ids": [0, 0], "attention_mask": [1, 1],
             "offsets": [[0, 0], [0, 0]], "tokens": ["[CLS]", "[SEP]"]}
    for label, data, want in [("CRLF", b"hello\r\nhello\r\n", [one, one]),
                              ("no final newline", b"hello\nhello", [one, one]),
                              ("empty input", b"", []),
                              ("empty lines", b"\n\n", [empty, empty]),
                              ("NUL deleted", b"hel\x00lo\n", [dict(one, offsets=[[0, 0], [0, 6], [0, 0]])])]:
        r = run(vocab, data)
        got = [json.loads(x) for x in r.stdout.decode().splitlines()] if r.returncode == 0 else None
        if got != want:
            failures.append("%s: exit %d, got %s" % (label, r.returncode, r.stdout[:300]))
        else:
            passed += 1

    # Usage mistakes: exit 2.
    for label, args in [("no --vocab", []),
                        ("--padding without --max-length", vocab + ["--padding"]),
                        ("--truncation without --max-length", vocab + ["--truncation", "only_first"]),
                        ("bad --truncation", vocab + ["--max-length", "8", "--truncation", "longest"]),
                        ("bad --max-length", vocab + ["--max-length", "abc"]),
                        ("zero --max-length", vocab + ["--max-length", "0"]),
                        ("--max-length without value", vocab + ["--max-length"]),
                        ("unknown option", vocab + ["--frobnicate"]),
                        ("positional argument", vocab + ["some text"]),
                        ("--pair with --jsonl", vocab + ["--pair", "--jsonl"]),
                        ("--lowercase with --no-lowercase", vocab + ["--lowercase", "--no-lowercase"]),
                        ("flag with a value", vocab + ["--pair=yes"])]:
        expect(label, run(args, "hello\n"), 2, stderr_has=["kiln: error: tokenize: "], stdout_lines=0)

    r = run(["--help"], "")
    expect("--help", r, 0, stdout_lines=None)
    if b"--max-length" not in r.stdout or b"--jsonl" not in r.stdout:
        failures.append("--help does not describe the options: %r" % r.stdout[:200])
    top = subprocess.run([KILN, "--help"], capture_output=True, text=True)
    if "tokenize" not in top.stdout:
        failures.append("kiln --help does not list tokenize")

    # Bad input: exit 1, the line and column named, the lines before it written.
    expect("missing vocabulary", run(["--vocab", "/nonexistent/vocab.txt"], "hello\n"), 1,
           stderr_has=["kiln: error: /nonexistent/vocab.txt"], stdout_lines=0)
    for label, data, where in [
            ("invalid byte", b"ok\nfine\nbad \xff byte\nnever\n", "<stdin>:line 3, column 5: invalid UTF-8"),
            ("truncated sequence", b"ok\nend \xe2\x82", "<stdin>:line 2, column 5: invalid UTF-8"),
            ("overlong", b"\xc0\xafx\n", "<stdin>:line 1, column 1: invalid UTF-8"),
            ("surrogate", b"ok\n\xed\xa0\x80\n", "<stdin>:line 2, column 1: invalid UTF-8"),
            ("past U+10FFFF", b"\xf4\x90\x80\x80\n", "<stdin>:line 1, column 1: invalid UTF-8"),
            ("continuation byte", b"a\x80\n", "<stdin>:line 1, column 2: invalid UTF-8")]:
        before = int(where.split("line ")[1].split(",")[0]) - 1  # lines written before the bad one
        expect(label, run(vocab, data), 1, stderr_has=[where], stdout_lines=before)
    expect("--pair without TAB", run(vocab + ["--pair"], "a\tb\nno tab here\n"), 1,
           stderr_has=["<stdin>:line 2: --pair: no TAB"], stdout_lines=1)
    expect("invalid UTF-8 in --pair", run(vocab + ["--pair"], b"a\t\xffb\n"), 1,
           stderr_has=["<stdin>:line 1, column 3: invalid UTF-8"], stdout_lines=0)
    for label, data, message in [
            ("bad JSON", '{"text": "a"}\n{"text": "b",}\n', "<stdin>:line 2, column"),
            ("JSON not an object", '["a"]\n', "<stdin>:line 1: expected a JSON object"),
            ("unknown key", '{"text": "a", "text_pairs": "b"}\n', "<stdin>:line 1: unknown key \"text_pairs\""),
            ("missing text", '{"text_pair": "b"}\n', "<stdin>:line 1: missing \"text\""),
            ("text not a string", '{"text": 5}\n', "<stdin>:line 1: \"text\" must be a string"),
            ("empty JSON line", '{"text": "a"}\n\n', "<stdin>:line 2, column 1"),
            ("invalid UTF-8 in JSON", b'{"text": "a\xffb"}\n', "<stdin>:line 1, column 12")]:
        expect(label, run(vocab + ["--jsonl"], data), 1, stderr_has=[message])
    r = run(vocab + ["--jsonl"], '{"text": "a", "text_pair": null}\n')
    if r.returncode != 0 or json.loads(r.stdout)["tokens"] != ["[CLS]", "a", "[SEP]"]:
        failures.append("text_pair null should be a single text: exit %d %r" % (r.returncode, r.stdout))
    else:
        passed += 1
    # A truncation the strategy cannot do is the reference's error; kiln names the line.
    r = run(vocab + ["--max-length", "4", "--truncation", "only_second"], "a b\nthe quick brown fox jumps\n")
    if r.returncode == 0 or b"<stdin>:line 2" not in r.stderr or len(r.stdout.splitlines()) != 1:
        failures.append("only_second on a long single text: exit %d, stderr %r" % (r.returncode, r.stderr[-300:]))
    else:
        passed += 1

    print("cli_tokenize: %d passed, %d failed" % (passed, len(failures)))
    for f in failures:
        print("FAIL " + f)
    sys.exit(1 if failures else 0)


main()
