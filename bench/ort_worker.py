"""ONNX Runtime's side of bench/compare: python ort_worker.py MODEL.onnx [--threads T].

Runs in the pinned "bench" environment (tools/requirements/bench.txt) and speaks the line
protocol of bench/worker_protocol.hpp. The session is set up as for serving: every graph
optimisation (ORT_ENABLE_ALL), T intra-op threads, one inter-op thread, sequential
execution, the CPU provider. load_ms is the session's creation (read, optimise, prepare).
"""
import argparse
import json
import sys
import time

import numpy as np
import onnxruntime as ort


def reply(fields):
    sys.stdout.write("ok " + json.dumps(fields) + "\n")
    sys.stdout.flush()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("model")
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()

    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.intra_op_num_threads = args.threads
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    start = time.perf_counter()
    session = ort.InferenceSession(args.model, options, providers=["CPUExecutionProvider"])
    load_ms = (time.perf_counter() - start) * 1e3
    names = [i.name for i in session.get_inputs()]
    reply({"engine": "ort", "version": "%s (ORT_ENABLE_ALL, %d intra-op threads, sequential)"
           % (ort.__version__, args.threads), "load_ms": load_ms})

    feed, outputs = {}, None
    for line in sys.stdin:
        words = line.split()
        verb = words[0] if words else ""
        try:
            if verb == "quit":
                return
            if verb == "inputs":
                batch, seq, path = int(words[1]), int(words[2]), words[3]
                ids = np.fromfile(path, dtype=np.int64, count=batch * seq)
                if ids.size != batch * seq:
                    raise ValueError("cannot read %d int64 ids from %s" % (batch * seq, path))
                ids = ids.reshape(batch, seq)
                feed = {n: ids if n == "input_ids" else
                        np.ones_like(ids) if n == "attention_mask" else np.zeros_like(ids) for n in names}
                reply({})
            elif verb == "run":
                start = time.perf_counter()
                outputs = session.run(None, feed)
                reply({"ms": (time.perf_counter() - start) * 1e3})
            elif verb == "output":
                if outputs is None:
                    raise ValueError("no run yet")
                first = np.ascontiguousarray(outputs[0], dtype=np.float32)
                first.tofile(words[1])
                reply({"shape": list(first.shape)})
            else:
                raise ValueError("unknown request: " + line.strip())
        except Exception as e:  # the driver shows it; the worker stays up
            sys.stdout.write("error %s\n" % str(e).replace("\n", " "))
            sys.stdout.flush()


main()
