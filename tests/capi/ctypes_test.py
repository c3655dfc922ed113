#!/usr/bin/env python3
"""kiln's C API from Python through ctypes, the way an FFI user meets it: libkiln.so loaded
by path, a fixture's inputs (read from its .npy files by hand) run through kiln_run and
kiln_run_named, outputs checked for shape and against PyTorch's values, and wrong calls
answered with a status and a message. Standard library only.

usage: ctypes_test.py LIBKILN_SO FIXTURES_ROOT
"""

import ast
import ctypes as C
import os
import struct
import sys

LIB = sys.argv[1]
FIXTURES = os.environ.get("KILN_FIXTURES") or sys.argv[2]

OK, BAD_INPUT, USAGE = 0, 1, 2
INT64, FLOAT32 = 7, 0

kiln = C.CDLL(LIB)
tensor_p = C.c_void_p
model_p = C.c_void_p


def declare(name, restype, *argtypes):
    f = getattr(kiln, name)
    f.restype = restype
    f.argtypes = list(argtypes)


declare("kiln_version", C.c_char_p)
declare("kiln_last_error", C.c_char_p)
declare("kiln_model_load", C.c_int, C.c_char_p, C.c_void_p, C.POINTER(model_p))
declare("kiln_model_load_from_memory", C.c_int, C.c_void_p, C.c_size_t, C.c_void_p, C.POINTER(model_p))
declare("kiln_model_destroy", None, model_p)
declare("kiln_model_input_count", C.c_size_t, model_p)
declare("kiln_model_output_count", C.c_size_t, model_p)
declare("kiln_model_input_name", C.c_char_p, model_p, C.c_size_t)
declare("kiln_model_input_dim", C.c_int, model_p, C.c_size_t, C.c_size_t, C.POINTER(C.c_int64),
        C.POINTER(C.c_char_p))
declare("kiln_tensor_create_copy", C.c_int, C.c_int, C.POINTER(C.c_int64), C.c_size_t, C.c_void_p, C.c_size_t,
        C.POINTER(tensor_p))
declare("kiln_tensor_destroy", None, tensor_p)
declare("kiln_tensor_dtype", C.c_int, tensor_p)
declare("kiln_tensor_rank", C.c_size_t, tensor_p)
declare("kiln_tensor_shape", C.POINTER(C.c_int64), tensor_p)
declare("kiln_tensor_nbytes", C.c_size_t, tensor_p)
declare("kiln_tensor_copy_to", C.c_int, tensor_p, C.c_void_p, C.c_size_t)
declare("kiln_run", C.c_int, model_p, C.POINTER(tensor_p), C.c_size_t, C.c_void_p, C.POINTER(tensor_p), C.c_size_t,
        C.POINTER(C.c_size_t))
declare("kiln_run_named", C.c_int, model_p, C.POINTER(C.c_char_p), C.POINTER(tensor_p), C.c_size_t, C.c_void_p,
        C.POINTER(tensor_p), C.c_size_t, C.POINTER(C.c_size_t))

failures = []


def expect(ok, what):
    print(("ok    " if ok else "FAIL  ") + what)
    if not ok:
        failures.append(what)


def last_error():
    return kiln.kiln_last_error().decode()


def read_npy(path):
    raw = open(path, "rb").read()
    n = struct.unpack("<H", raw[8:10])[0]
    header = ast.literal_eval(raw[10:10 + n].decode())
    return header["descr"], list(header["shape"]), raw[10 + n:]


DTYPES = {"<i8": INT64, "<f4": FLOAT32}


def tensor(descr, shape, data):
    out = tensor_p()
    dims = (C.c_int64 * len(shape))(*shape)
    status = kiln.kiln_tensor_create_copy(DTYPES[descr], dims, len(shape), data, len(data), C.byref(out))
    assert status == OK, last_error()
    return out


def shape_of(t):
    p = kiln.kiln_tensor_shape(t)
    return [p[d] for d in range(kiln.kiln_tensor_rank(t))]


def floats(t):
    buf = C.create_string_buffer(kiln.kiln_tensor_nbytes(t))
    assert kiln.kiln_tensor_copy_to(t, buf, len(buf)) == OK, last_error()
    return struct.unpack("<%df" % (len(buf) // 4), buf.raw)


def main():
    print("kiln", kiln.kiln_version().decode())
    d = os.path.join(FIXTURES, "t2", "bert_tiny_3in")
    archive = os.path.join(d, "bert_tiny_3in.pt")
    model = model_p()
    status = kiln.kiln_model_load(archive.encode(), None, C.byref(model))
    expect(status == OK and model.value, "load " + archive + " " + last_error())
    if status != OK:
        return
    n_in, n_out = kiln.kiln_model_input_count(model), kiln.kiln_model_output_count(model)
    names = [kiln.kiln_model_input_name(model, i).decode() for i in range(n_in)]
    expect(names == ["input_ids", "attention_mask", "token_type_ids"], "input names %s" % names)
    expect(n_out == 2, "2 outputs")
    size, symbol = C.c_int64(), C.c_char_p()
    status = kiln.kiln_model_input_dim(model, 0, 1, C.byref(size), C.byref(symbol))
    expect(status == OK and size.value == -1 and symbol.value == b"seq", "input_ids dim 1 is 'seq'")

    # The trace case: PyTorch's inputs and outputs.
    case = os.path.join(d, "cases", "trace")
    arrays = [read_npy(os.path.join(case, "input_%s.npy" % n)) for n in names]
    inputs = [tensor(*a) for a in arrays]
    ins = (tensor_p * n_in)(*inputs)
    outs = (tensor_p * 4)()
    n = C.c_size_t(0)
    status = kiln.kiln_run(model, ins, n_in, None, outs, 4, C.byref(n))
    expect(status == OK and n.value == 2, "run: status %d, %d outputs %s" % (status, n.value, last_error()))
    if status == OK:
        for k in range(n.value):
            descr, want_shape, data = read_npy(os.path.join(case, "output_%d.npy" % k))
            got_shape = shape_of(outs[k])
            expect(kiln.kiln_tensor_dtype(outs[k]) == FLOAT32 and got_shape == want_shape,
                   "output %d: float32 %s (PyTorch: %s)" % (k, got_shape, want_shape))
            want = struct.unpack("<%df" % (len(data) // 4), data)
            got = floats(outs[k])
            diff = max(abs(a - b) for a, b in zip(got, want))
            expect(len(got) == len(want) and diff <= 1e-4, "output %d within 1e-4 of PyTorch (%.2g)" % (k, diff))
            kiln.kiln_tensor_destroy(outs[k])

    # By name, in another order.
    order = [2, 0, 1]
    by_name = (C.c_char_p * n_in)(*[names[i].encode() for i in order])
    ins_by_name = (tensor_p * n_in)(*[inputs[i] for i in order])
    status = kiln.kiln_run_named(model, by_name, ins_by_name, n_in, None, outs, 4, C.byref(n))
    expect(status == OK and n.value == 2 and shape_of(outs[0]) == [2, 16, 32], "run by name " + last_error())
    for k in range(n.value if status == OK else 0):
        kiln.kiln_tensor_destroy(outs[k])

    # Wrong calls: a status and a message.
    status = kiln.kiln_run(model, ins, n_in - 1, None, outs, 4, C.byref(n))
    expect(status == BAD_INPUT and "the model takes 3 inputs" in last_error(),
           "two inputs of three: %d %r" % (status, last_error()))
    status = kiln.kiln_run(model, ins, n_in, None, outs, 1, C.byref(n))
    expect(status == BAD_INPUT and n.value == 2 and "outputs_capacity is 1" in last_error(),
           "room for one output: %d, needs %d, %r" % (status, n.value, last_error()))
    floats_in = tensor("<f4", [2, 16], bytes(2 * 16 * 4))
    wrong = (tensor_p * n_in)(floats_in, inputs[1], inputs[2])
    status = kiln.kiln_run(model, wrong, n_in, None, outs, 4, C.byref(n))
    expect(status == BAD_INPUT and "input_ids: expected an integer tensor" in last_error(),
           "float32 ids: %d %r" % (status, last_error()))
    kiln.kiln_tensor_destroy(floats_in)
    t = tensor_p()
    dims = (C.c_int64 * 2)(1, 8)
    status = kiln.kiln_tensor_create_copy(INT64, dims, 2, bytes(40), 40, C.byref(t))
    expect(status == BAD_INPUT and "takes 64 bytes" in last_error() and not t.value,
           "40 bytes for int64 [1, 8]: %d %r" % (status, last_error()))
    status = kiln.kiln_run(None, ins, n_in, None, outs, 4, C.byref(n))
    expect(status == USAGE and last_error() == "kiln_run: model is NULL", "NULL model: %d %r" % (status, last_error()))
    status = kiln.kiln_model_load(b"/no/such/model.pt", None, C.byref(t))
    expect(status == BAD_INPUT and "/no/such/model.pt" in last_error(), "missing file: %d %r" % (status, last_error()))
    expect(kiln.kiln_model_input_count(model) == 3 and last_error() == "", "a success clears the message")

    # From memory: ctypes keeps the bytes alive while `blob` is referenced.
    blob = C.create_string_buffer(open(archive, "rb").read())
    from_memory = model_p()
    status = kiln.kiln_model_load_from_memory(blob, len(blob) - 1, None, C.byref(from_memory))
    expect(status == OK, "load from memory " + last_error())
    if status == OK:
        status = kiln.kiln_run(from_memory, ins, n_in, None, outs, 4, C.byref(n))
        expect(status == OK and shape_of(outs[1]) == [2, 32], "run the model from memory " + last_error())
        for k in range(n.value if status == OK else 0):
            kiln.kiln_tensor_destroy(outs[k])
        kiln.kiln_model_destroy(from_memory)

    for t in inputs:
        kiln.kiln_tensor_destroy(t)
    kiln.kiln_model_destroy(model)


main()
if failures:
    print("%d failed" % len(failures))
    sys.exit(1)
print("all passed")
