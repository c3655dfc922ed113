#!/usr/bin/env python3
"""`kiln bench` as a user runs it, on the tiny fixture t2/bert_tiny_3in: --json prints one
object with every field docs/bench.md documents, with values that agree with each other
(p10 <= median <= p90, sequences/s from batch and median, memory above zero); --profile
adds the time per op kind; given .npy inputs replace the synthetic ones; wrong inputs and
models exit 1 naming what is wrong, usage errors exit 2. Timings are only checked for
consistency, never for speed.

usage: bench_test.py KILN FIXTURES_ROOT
"""

import json
import os
import subprocess
import sys

from cli_checks import check, expect, summary

KILN = sys.argv[1]
FIXTURES = os.environ.get("KILN_FIXTURES") or sys.argv[2]
FIXTURE = os.path.join(FIXTURES, "t2", "bert_tiny_3in")
MODEL = os.path.join(FIXTURE, "bert_tiny_3in.pt")
QUICK = ("--iters", "3", "--warmup", "1")

# docs/bench.md's fields and their JSON types (bool is no number here).
FIELDS = {
    "kiln_version": str, "model": str, "inputs": str, "batch": int, "seq": int, "threads": int, "iters": int,
    "warmup": int, "load_ms": float, "ready_ms": float, "first_ms": float, "median_ms": float, "p10_ms": float,
    "p90_ms": float, "mean_ms": float, "min_ms": float, "max_ms": float, "seq_per_s": float, "arena_bytes": int,
    "output_bytes": int, "scratch_bytes": int, "peak_rss_bytes": int, "times_ms": list,
}


def run(*args):
    return subprocess.run([KILN, *args], capture_output=True, text=True, timeout=120)


def case_inputs(case, names=("input_ids", "attention_mask", "token_type_ids")):
    return [os.path.join(FIXTURE, "cases", case, "input_%s.npy" % n) for n in names]


def is_number(v):
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def report(name, result):
    """The JSON object a run printed, checked to be exactly one object with every field of
    the right type; None (and a failure recorded) otherwise."""
    lines = result.stdout.splitlines()
    try:
        obj = json.loads(result.stdout)
    except ValueError as e:
        check(name + ": stdout is JSON", False, "%s: %r" % (e, result.stdout[:300]))
        return None
    check(name + ": one object on one line", isinstance(obj, dict) and len(lines) == 1, repr(result.stdout[:300]))
    if not isinstance(obj, dict):
        return None
    missing = [k for k in FIELDS if k not in obj]
    check(name + ": every documented field", not missing, "missing %s" % missing)
    wrong = [k for k, t in FIELDS.items()
             if k in obj and not (is_number(obj[k]) if t is float else isinstance(obj[k], t) and not isinstance(obj[k], bool))]
    check(name + ": field types", not wrong, "wrong type: %s" % {k: obj[k] for k in wrong})
    return None if missing or wrong else obj


def close(a, b, rel=1e-4):
    return abs(a - b) <= rel * max(abs(a), abs(b))


def check_consistent(name, r, batch, seq, iters, warmup):
    """The numbers of one report agree with the command line and with each other."""
    check(name + ": sizes and counts", (r["batch"], r["seq"], r["iters"], r["warmup"]) == (batch, seq, iters, warmup),
          repr({k: r[k] for k in ("batch", "seq", "iters", "warmup")}))
    check(name + ": threads", r["threads"] >= 1, r["threads"])
    check(name + ": load", r["load_ms"] > 0 and r["ready_ms"] >= r["load_ms"] and r["first_ms"] > 0,
          repr({k: r[k] for k in ("load_ms", "ready_ms", "first_ms")}))
    times = r["times_ms"]
    check(name + ": one time per timed run", len(times) == iters and all(is_number(t) and t > 0 for t in times), times)
    order = [r[k] for k in ("min_ms", "p10_ms", "median_ms", "p90_ms", "max_ms")]
    check(name + ": min <= p10 <= median <= p90 <= max", order == sorted(order) and order[0] > 0, order)
    if len(times) == iters:
        s = sorted(times)
        middle = (s[(iters - 1) // 2] + s[iters // 2]) / 2
        check(name + ": median of times_ms", close(r["median_ms"], middle, 1e-3), (r["median_ms"], s))
        check(name + ": min, max, mean of times_ms",
              close(r["min_ms"], s[0], 1e-3) and close(r["max_ms"], s[-1], 1e-3) and close(r["mean_ms"], sum(s) / iters, 1e-3),
              (r["min_ms"], r["max_ms"], r["mean_ms"], s))
    check(name + ": seq_per_s is batch / median", close(r["seq_per_s"], batch * 1000.0 / r["median_ms"], 1e-3),
          (r["seq_per_s"], batch, r["median_ms"]))
    check(name + ": memory", r["arena_bytes"] > 0 and r["output_bytes"] > 0 and r["scratch_bytes"] >= 0 and
          r["peak_rss_bytes"] > r["arena_bytes"], repr({k: r[k] for k in ("arena_bytes", "output_bytes", "peak_rss_bytes")}))


def main():
    version = run("--version").stdout.split()[1]

    # Synthetic inputs. The fixture's vocabulary has 512 ids, so a run at all shows the ids
    # were kept inside the table (an id past it is refused, exit 1).
    r = run("bench", MODEL, "--batch", "2", "--seq", "16", *QUICK, "--json")
    expect("json", r, 0)
    check("json: stderr empty (no progress bar off a terminal)", r.stderr == "", r.stderr[:300])
    obj = report("json", r)
    if obj:
        check_consistent("json", obj, 2, 16, 3, 1)
        check("json: identity", (obj["model"], obj["kiln_version"], obj["inputs"]) == (MODEL, version, "synthetic"),
              repr((obj["model"], obj["kiln_version"], obj["inputs"])))
        check("json: no profile unless asked", "profile" not in obj, sorted(obj))

    r = run("bench", MODEL, "--seq", "8", "--threads", "1", "--iters", "4", "--warmup", "0", "--json", "--profile")
    expect("json --profile", r, 0)
    obj = report("json --profile", r)
    if obj:
        check_consistent("json --profile", obj, 1, 8, 4, 0)
        check("json --profile: one thread", obj["threads"] == 1, obj["threads"])
        prof = obj.get("profile")
        ok = isinstance(prof, dict) and "aten::linear" in prof and all(is_number(v) and v >= 0 for v in prof.values())
        check("json --profile: op kind -> ms", ok, repr(prof)[:300])
        if ok:
            # Kernel times are parts of the runs they were measured in.
            check("json --profile: kernels within the runs", sum(prof.values()) <= obj["mean_ms"] * 1.01 + 0.01,
                  (sum(prof.values()), obj["mean_ms"]))

    # The table.
    r = run("bench", MODEL, "--seq", "8", *QUICK, "--profile")
    expect("table", r, 0, stdout_has=("kiln %s bench: %s" % (version, MODEL), "batch 1, seq 8", "median", "p10 .. p90",
                                      "sequences/s", "arena", "peak RSS", "profile (mean of 3 timed runs",
                                      "aten::linear"))

    # Given inputs: their sizes are the run's.
    r = run("bench", MODEL, *case_inputs("b2_s37_pad"), *QUICK, "--json")
    expect("npy inputs", r, 0)
    obj = report("npy inputs", r)
    if obj:
        check_consistent("npy inputs", obj, 2, 37, 3, 1)
        check("npy inputs: named", obj["inputs"] == "npy", obj["inputs"])
    mixed = case_inputs("trace")
    mixed[1] = case_inputs("b2_s37_pad")[1]
    expect("npy inputs of different lengths", run("bench", MODEL, *mixed, *QUICK), 1,
           stderr_has=("kiln: error: " + MODEL, "attention_mask", "seq"))
    expect("too few npy inputs", run("bench", MODEL, case_inputs("trace")[0], *QUICK), 1,
           stderr_has=("the model takes 3 inputs",))
    expect("not a .npy input", run("bench", MODEL, MODEL, *QUICK), 1, stderr_has=("kiln: error: " + MODEL,))
    expect("missing .npy input", run("bench", MODEL, "/nonexistent/ids.npy"), 1,
           stderr_has=("kiln: error: /nonexistent/ids.npy",))

    # Bad models and sizes the model refuses.
    expect("missing model", run("bench", "/nonexistent/model.pt"), 1, stderr_has=("kiln: error: /nonexistent/model.pt",))
    ids = case_inputs("trace")[0]
    expect("not a model", run("bench", ids), 1, stderr_has=("kiln: error: " + ids,))
    expect("seq past the position table", run("bench", MODEL, "--seq", "600", *QUICK), 1,
           stderr_has=("at most seq = 512",))
    scripted = os.path.join(FIXTURES, "t2", "scripted_control_flow", "scripted_control_flow.pt")
    if os.path.exists(scripted):
        expect("inputs bench cannot make", run("bench", scripted), 1, stderr_has=("give its inputs as .npy files",))

    # Usage.
    for args, says in [
            (("--batch", "0"), "--batch needs a whole number from 1"),
            (("--batch", "-2"), "--batch needs a whole number from 1"),
            (("--seq", "0"), "--seq needs a whole number from 1"),
            (("--seq", "ten"), "--seq needs a whole number from 1"),
            (("--iters", "0"), "--iters needs a whole number from 1"),
            (("--iters", "2.5"), "--iters needs a whole number from 1"),
            (("--warmup", "-1"), "--warmup needs a whole number from 0"),
            (("--threads", "x"), "--threads needs a whole number from 0"),
            (("--iters",), "--iters needs a value"),
            (("--json=yes",), "--json takes no value"),
            (("--bogus",), "unknown option '--bogus'"),
            (("--batch", "65536", "--seq", "65536"), "--batch times --seq is more than"),
            (("--seq", "16") + tuple(case_inputs("trace")), "--batch and --seq size synthetic inputs")]:
        expect("usage: %s" % " ".join(args), run("bench", MODEL, *args), 2,
               stderr_has=("kiln: error: bench: " + says, "(see 'kiln bench --help')"))
    expect("no model", run("bench", "--json"), 2, stderr_has=("kiln: error: bench: no MODEL given",))
    expect("help", run("bench", "--help"), 0, stdout_has=("usage: kiln bench MODEL", "--iters N", "docs/bench.md"))
    expect("listed in kiln --help", run("--help"), 0, stdout_has=("bench MODEL [options]",))

    return summary("bench_test")


if __name__ == "__main__":
    sys.exit(main())
