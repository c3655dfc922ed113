#!/usr/bin/env python3
"""Writes the seed corpora of kiln's libFuzzer targets.

    make_corpus.py FIXTURES_ROOT OUT_DIR

FIXTURES_ROOT is what tools/make-fixtures fills ($KILN_FIXTURES, <repo>/.fixtures): its
archives are found as FIXTURES_ROOT/*/*/*.pt. OUT_DIR gets one folder per target:

  fuzz_zip_reader/, fuzz_archive/  the 3 smallest fixture archives; truncated and
                                   bit-flipped variants of the smallest; small synthetic
                                   zips (stored, deflate, ZIP64) and a minimal TorchScript
                                   archive built here
  fuzz_unpickler/                  every distinct data.pkl and constants.pkl of those
                                   archives; hand-written valid and hostile pickles
                                   (forbidden GLOBALs, deep nesting, huge lengths, ...)
  fuzz_import/                     the 3 smallest archives, scripted_control_flow,
                                   baked_size and bert_tiny_1in, rewritten with every
                                   record stored so that mutations reach the code

Standard library only (runs with any python3, no torch). The output is deterministic:
fixed names, fixed zip timestamps, files written in sorted order. Existing files in
OUT_DIR's target folders are removed first.
"""

import glob
import hashlib
import io
import os
import struct
import sys
import zipfile

TARGETS = ("fuzz_zip_reader", "fuzz_unpickler", "fuzz_archive", "fuzz_ts_parser", "fuzz_import")
DATE = (2000, 1, 1, 0, 0, 0)


def stored_copy(path):
    """The archive with every record stored (uncompressed), same names and order."""
    out = io.BytesIO()
    with zipfile.ZipFile(path) as zin, zipfile.ZipFile(out, "w", zipfile.ZIP_STORED) as zout:
        for info in zin.infolist():
            zout.writestr(zipfile.ZipInfo(info.filename, DATE), zin.read(info.filename))
    return out.getvalue()


# --- a tiny pickle assembler (protocol 2, the opcodes PyTorch writes) ---------------

def p_str(s):
    b = s.encode() if isinstance(s, str) else s
    return b"X" + struct.pack("<I", len(b)) + b


def p_int(i):
    if 0 <= i < 256:
        return b"K" + bytes([i])
    if 0 <= i < 65536:
        return b"M" + struct.pack("<H", i)
    if -(1 << 31) <= i < (1 << 31):
        return b"J" + struct.pack("<i", i)
    return b"\x8a\x08" + struct.pack("<q", i)  # LONG1


def p_global(module, name):
    return b"c" + module.encode() + b"\n" + name.encode() + b"\n"


def p_tuple(*items):
    return b"(" + b"".join(items) + b"t"


def p_tensor(storage_type, key, numel, offset, sizes, strides, requires_grad=False):
    storage = p_tuple(p_str("storage"), p_global("torch", storage_type), p_str(key),
                      p_str("cpu"), p_int(numel)) + b"Q"
    return (p_global("torch._utils", "_rebuild_tensor_v2")
            + p_tuple(storage, p_int(offset), p_tuple(*map(p_int, sizes)),
                      p_tuple(*map(p_int, strides)), b"\x88" if requires_grad else b"\x89",
                      p_global("collections", "OrderedDict") + b")R")
            + b"R")


def p_object(cls_module, cls_name, items):
    """A __torch__ object with a dict state: NEWOBJ then BUILD."""
    body = b"".join(p_str(k) + v for k, v in items)
    return p_global(cls_module, cls_name) + b")\x81" + b"}(" + body + b"ub"


def pickle(body):
    return b"\x80\x02" + body + b"."


# --- zips ------------------------------------------------------------------------------

def make_zip(records, force_zip64=False):
    """records: [(name, bytes, compress_type)] -> zip bytes with fixed timestamps."""
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as z:
        for name, data, method in records:
            info = zipfile.ZipInfo(name, date_time=DATE)
            info.compress_type = method
            with z.open(info, "w", force_zip64=force_zip64) as f:
                f.write(data)
    return out.getvalue()


def minimal_archive():
    """A small TorchScript archive in the shape torch.jit.save writes: a root module
    with a parameter, a buffer, a plain attribute, a submodule (shared by two
    attributes) and a tensor constant."""
    root = "tiny"
    sub = p_object("__torch__", "Sub", [
        ("training", b"\x89"),
        ("scale", p_tensor("DoubleStorage", "2", 1, 0, [], [])),
    ])
    data = pickle(p_object("__torch__", "Tiny", [
        ("training", b"\x89"),
        ("weight", p_tensor("FloatStorage", "0", 6, 0, [2, 3], [3, 1])),
        ("running", p_tensor("FloatStorage", "1", 4, 1, [3], [1])),
        ("steps", p_int(3)),
        ("sub", sub + b"q\x00"),
        ("alias", b"h\x00"),
    ]))
    constants = pickle(p_tuple(p_tensor("LongStorage", "0", 2, 0, [2], [1])))
    code = (
        "class Tiny(Module):\n"
        "  __parameters__ = [\"weight\", ]\n"
        "  __buffers__ = [\"running\", ]\n"
        "  training : bool\n"
        "  weight : Tensor\n"
        "  running : Tensor\n"
        "  steps : int\n"
        "  sub : __torch__.Sub\n"
        "  alias : __torch__.Sub\n"
        "  def forward(self: __torch__.Tiny,\n"
        "    x: Tensor) -> Tensor:\n"
        "    return torch.matmul(x, self.weight)\n"
        "class Sub(Module):\n"
        "  __parameters__ = []\n"
        "  __buffers__ = [\"scale\", ]\n"
        "  training : bool\n"
        "  scale : Tensor\n"
    ).encode()
    floats = b"".join(struct.pack("<f", float(i)) for i in range(6))
    return make_zip([
        (root + "/data.pkl", data, zipfile.ZIP_STORED),
        (root + "/code/__torch__.py", code, zipfile.ZIP_DEFLATED),
        (root + "/data/0", floats, zipfile.ZIP_STORED),
        (root + "/data/1", floats[:16], zipfile.ZIP_STORED),
        (root + "/data/2", struct.pack("<d", 0.5), zipfile.ZIP_STORED),
        (root + "/constants.pkl", constants, zipfile.ZIP_STORED),
        (root + "/constants/0", struct.pack("<qq", 7, -7), zipfile.ZIP_STORED),
        (root + "/.data/version", b"3\n", zipfile.ZIP_STORED),
        (root + "/byteorder", b"little", zipfile.ZIP_STORED),
    ])


def small_zips():
    text = b"kiln fuzz seed\n" * 20
    return {
        "synthetic-stored.zip": make_zip([("a/x", b"hello", zipfile.ZIP_STORED),
                                          ("a/y", b"", zipfile.ZIP_STORED)]),
        "synthetic-deflate.zip": make_zip([("a/text", text, zipfile.ZIP_DEFLATED)]),
        "synthetic-zip64.zip": make_zip([("a/x", b"zip64 record", zipfile.ZIP_STORED),
                                         ("a/z", text, zipfile.ZIP_DEFLATED)], force_zip64=True),
        "synthetic-empty.zip": make_zip([]),
    }


def variants(name, data):
    """Truncated and bit-flipped copies of one archive, at fixed positions."""
    out = {
        name + ".trunc-half": data[: len(data) // 2],
        name + ".trunc-tail": data[:-10],            # the end of central directory record cut
        name + ".trunc-head": data[len(data) // 3:],  # offsets now point past the data
    }
    eocd = data.rfind(b"PK\x05\x06")
    cdir = data.find(b"PK\x01\x02")
    flips = {
        "eocd-count": eocd + 10,   # total entries
        "eocd-offset": eocd + 16,  # central directory offset
        "cdir-method": cdir + 10,  # first entry's compression method
        "cdir-csize": cdir + 20,   # first entry's compressed size
        "cdir-usize": cdir + 24,   # first entry's uncompressed size
        "cdir-namelen": cdir + 28,
        "cdir-offset": cdir + 42,  # first entry's local header offset
        "local-sig": 0,
        "first-data": 64,          # inside the first record's name / data
    }
    for what, pos in sorted(flips.items()):
        if 0 <= pos < len(data):
            b = bytearray(data)
            b[pos] ^= 0x80
            out[name + ".flip-" + what] = bytes(b)
    return out


# --- pickles ---------------------------------------------------------------------------

def hostile_pickles():
    deep = 1100  # over PickleLimits::max_depth (1000)
    tensor = p_tensor("FloatStorage", "0", 4, 0, [2, 2], [2, 1])
    return {
        # Forbidden globals: must be refused by name, never called.
        "hostile-os-system.pkl": pickle(p_global("os", "system") + p_str("echo pwned") + b"\x85R"),
        "hostile-builtins-eval.pkl": pickle(p_global("builtins", "eval") + p_str("1+1") + b"\x85R"),
        "hostile-subprocess.pkl": pickle(p_global("subprocess", "Popen") + p_tuple(p_str("sh")) + b"R"),
        "hostile-torch-load.pkl": pickle(p_global("torch", "load") + p_tuple(p_str("x.pt")) + b"R"),
        "hostile-global-newline.pkl": pickle(b"cos\nsystem"),
        # Nesting over the depth limit, through every container kind.
        "hostile-deep-list.pkl": pickle(b"]" * deep + b"a" * (deep - 1)),
        "hostile-deep-tuple.pkl": pickle(b"N" + b"\x85" * deep),
        "hostile-deep-dict.pkl": pickle(b"}" + b"K\x00}" * (deep - 1) + b"s" * (deep - 1)),
        "hostile-deep-mark.pkl": pickle(b"(" * deep + b"N" + b"t" * deep),
        # Lengths far past the input and the limits.
        "hostile-binunicode8-huge.pkl": b"\x80\x02\x8d" + struct.pack("<Q", 1 << 63) + b"ab.",
        "hostile-binunicode-huge.pkl": b"\x80\x02X" + struct.pack("<I", 0xFFFFFFFF) + b"ab.",
        "hostile-binstring-negative.pkl": b"\x80\x02T" + struct.pack("<i", -5) + b"ab.",
        "hostile-long1-huge.pkl": b"\x80\x02\x8a\xff" + b"\x01" * 16 + b".",
        "hostile-memo-get-missing.pkl": pickle(b"j" + struct.pack("<I", 0xFFFFFFFF)),
        "hostile-memo-put-huge.pkl": pickle(b"Nr" + struct.pack("<I", 0xFFFFFFFF)),
        "hostile-numel-huge.pkl": pickle(p_tensor("DoubleStorage", "0", (1 << 63) - 1, 0, [1], [1])),
        "hostile-tensor-overflow.pkl": pickle(p_tensor("FloatStorage", "0", 4, 0, [1 << 40, 1 << 40],
                                                       [1 << 40, 1 << 40])),
        "hostile-tensor-past-storage.pkl": pickle(p_tensor("FloatStorage", "0", 4, 3, [2], [1])),
        "hostile-storage-key-path.pkl": pickle(p_tensor("FloatStorage", "../../etc/passwd", 4, 0, [4], [1])),
        # Stack abuse.
        "hostile-self-append.pkl": pickle(b"]q\x00h\x00a"),
        "hostile-self-setitem.pkl": pickle(b"}q\x00K\x00h\x00s"),
        "hostile-build-twice.pkl": pickle(p_object("__torch__", "M", []) + b"}b"),
        "hostile-dup-fanout.pkl": pickle(b"](" + b"N" + b"2" * 4096 + b"e"),
        "hostile-pop-empty.pkl": pickle(b"0N"),
        "hostile-appends-no-list.pkl": pickle(b"(Ne]"),
        "hostile-stop-early.pkl": b"\x80\x02N.N.",
        "hostile-proto3.pkl": b"\x80\x03N.",
        "hostile-no-stop.pkl": b"\x80\x02N",
        # Valid pickles of the shapes TorchScript writes.
        "valid-none.pkl": pickle(b"N"),
        "valid-tensor.pkl": pickle(tensor),
        "valid-intlist.pkl": pickle(p_global("torch.jit._pickle", "build_intlist")
                                    + p_tuple(b"]" + b"(" + p_int(1) + p_int(2) + b"e") + b"R"),
        "valid-type-tag.pkl": pickle(p_global("torch.jit._pickle", "restore_type_tag")
                                     + p_tuple(b"}" + p_str("a") + tensor + b"s", p_str("Dict[str, Tensor]"))
                                     + b"R"),
        "valid-device.pkl": pickle(p_global("torch", "device") + p_tuple(p_str("cpu")) + b"R"),
        "valid-object.pkl": pickle(p_object("__torch__.a", "M", [("x", p_int(1)), ("t", tensor)])),
    }


# --- main ------------------------------------------------------------------------------

def main(argv):
    if len(argv) != 3:
        sys.stderr.write(__doc__)
        return 2
    root, out = argv[1], argv[2]
    archives = sorted(glob.glob(os.path.join(root, "*", "*", "*.pt")),
                      key=lambda p: (os.path.getsize(p), p))[:3]
    if not archives:
        sys.stderr.write("make_corpus.py: no archives under %s/*/*/*.pt (run tools/make-fixtures)\n" % root)
        return 1

    seeds = {t: {} for t in TARGETS}
    for path in archives:
        seeds["fuzz_archive"]["fixture-" + os.path.basename(path)] = open(path, "rb").read()
    smallest = archives[0]
    seeds["fuzz_archive"].update(variants("fixture-" + os.path.basename(smallest),
                                          open(smallest, "rb").read()))
    tiny = minimal_archive()
    seeds["fuzz_archive"]["synthetic-tiny.pt"] = tiny
    seeds["fuzz_archive"].update(variants("synthetic-tiny.pt", tiny))
    seeds["fuzz_zip_reader"] = dict(seeds["fuzz_archive"])
    # The importer: the smallest archives, plus programs with control flow, a baked size
    # and a whole (tiny) BERT, from the first generation that has them.
    # Rewritten with every record stored: PyTorch deflates code records, and mutations of
    # deflated bytes almost never inflate to source the parser gets far in.
    for path in archives:
        seeds["fuzz_import"]["fixture-" + os.path.basename(path)] = stored_copy(path)
    for name in ("scripted_control_flow", "baked_size", "bert_tiny_1in"):
        found = sorted(glob.glob(os.path.join(root, "*", name, name + ".pt")))
        if found:
            seeds["fuzz_import"]["fixture-" + name + ".pt"] = stored_copy(found[0])
    seeds["fuzz_zip_reader"].update(small_zips())

    # Pickles of the fixtures, each distinct content once, named after its first archive.
    seen = set()
    for path in sorted(archives) + ["<synthetic-tiny>"]:
        z = zipfile.ZipFile(io.BytesIO(tiny) if path == "<synthetic-tiny>" else path)
        label = "synthetic-tiny" if path == "<synthetic-tiny>" else "fixture-" + os.path.basename(path)[:-3]
        for name in sorted(z.namelist()):
            base = name.rsplit("/", 1)[-1]
            if name.count("/") != 1 or base not in ("data.pkl", "constants.pkl"):
                continue
            data = z.read(name)
            digest = hashlib.sha256(data).digest()
            if digest in seen:
                continue
            seen.add(digest)
            seeds["fuzz_unpickler"]["%s-%s" % (label, base)] = data
    seeds["fuzz_unpickler"].update(hostile_pickles())

    # The TorchScript parser's seeds: every distinct code file under 8 KiB of every fixture.
    for path in sorted(glob.glob(os.path.join(root, "*", "*", "*.pt"))):
        z = zipfile.ZipFile(path)
        for name in z.namelist():
            if "/code/" in name and name.endswith(".py") and z.getinfo(name).file_size <= 8192:
                data = z.read(name)
                seeds["fuzz_ts_parser"][hashlib.sha256(data).hexdigest()[:16] + ".py"] = data

    for target in TARGETS:
        d = os.path.join(out, target)
        os.makedirs(d, exist_ok=True)
        for old in sorted(os.listdir(d)):
            os.remove(os.path.join(d, old))
        for name in sorted(seeds[target]):
            with open(os.path.join(d, name), "wb") as f:
                f.write(seeds[target][name])
        print("make_corpus.py: %s: %d seeds" % (target, len(seeds[target])))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
