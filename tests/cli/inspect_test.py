#!/usr/bin/env python3
"""`kiln inspect` as a user runs it: exit codes, messages and --json, on real fixture
archives and on damaged and hostile ones made from them. Each bad file must be refused
with exit 1 and `kiln: error: <file>[:<record>]: <what>` within 10 s under a 2 GiB address
space limit, never a crash. Standard library only.

usage: inspect_test.py KILN FIXTURES_ROOT
"""

import glob
import json
import os
import resource
import shutil
import struct
import subprocess
import sys
import tempfile
import zipfile

from cli_checks import expect, summary

KILN = sys.argv[1]
FIXTURES = os.environ.get("KILN_FIXTURES") or sys.argv[2]


def limit_memory():
    two_gib = 2 << 30
    resource.setrlimit(resource.RLIMIT_AS, (two_gib, two_gib))


def run(*args):
    # ASan reserves a huge shadow address range: the address-space limit applies only to
    # builds without sanitizers.
    sanitized = "sanitizers: none" not in subprocess.run([KILN, "--version"], capture_output=True,
                                                         text=True).stdout
    return subprocess.run([KILN, *args], capture_output=True, text=True, timeout=10,
                          preexec_fn=None if sanitized else limit_memory)


def rewrite(src, dst, replace=None, drop=(), add=None):
    """Copies a zip archive, replacing, dropping or adding records (names relative to the root)."""
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w") as zout:
        root = zin.namelist()[0].split("/")[0]
        for info in zin.infolist():
            rel = info.filename[len(root) + 1:]
            if rel in drop:
                continue
            data = (replace or {}).get(rel, zin.read(info.filename))
            zout.writestr(info.filename, data, compress_type=info.compress_type)
        for rel, data in (add or {}).items():
            zout.writestr(root + "/" + rel, data)


def record_data_offset(path, name):
    with zipfile.ZipFile(path) as z:
        info = z.getinfo(name)
    with open(path, "rb") as f:
        f.seek(info.header_offset + 26)
        name_len, extra_len = struct.unpack("<HH", f.read(4))
    return info.header_offset + 30 + name_len + extra_len


def main():
    archives = sorted(glob.glob(os.path.join(FIXTURES, "*", "*", "*.pt")))
    if not archives:
        print("inspect_test: no fixture archives under %s" % FIXTURES)
        return 1
    tmp = tempfile.mkdtemp(prefix="kiln-inspect-")
    try:
        # Every fixture: text and JSON agree with the manifest.
        for path in archives:
            manifest = json.load(open(os.path.join(os.path.dirname(path), "manifest.json")))
            name = os.path.basename(path)
            r = run("inspect", path)
            expect(name + " text", r, 0, stdout_has=("root folder: %s/" % manifest["container"]["root"],
                                                     "format version: %d" % manifest["container"]["version"]))
            r = run("inspect", "--json", "--verify", path)
            expect(name + " json", r, 0)
            if r.returncode == 0:
                j = json.loads(r.stdout)
                ok = (j["root"] == manifest["container"]["root"] and j["crc_verified"] is True
                      and [a["name"] for a in j["forward"]["args"]] == manifest["input_names"]
                      and sorted(t["name"] for t in j["tensors"]) == sorted(manifest["tensors"]))
                expect(name + " json content", subprocess.CompletedProcess([], 0 if ok else 1, "", ""), 0)

        # The smallest archive with a tensor (op fixtures may have none): data/0 is damaged below.
        def has_tensor(p):
            with zipfile.ZipFile(p) as z:
                return any(n.split("/", 1)[1] == "data/0" for n in z.namelist())
        base = min((p for p in archives if has_tensor(p)), key=os.path.getsize)
        root = zipfile.ZipFile(base).namelist()[0].split("/")[0]
        raw = open(base, "rb").read()

        # Usage errors exit 2.
        expect("no args", run(), 2, stderr_has=("usage:",))
        expect("unknown command", run("frobnicate"), 2, stderr_has=("kiln: error: unknown command",))
        expect("inspect without model", run("inspect"), 2, stderr_has=("kiln: error: inspect: no MODEL",))
        expect("inspect bad option", run("inspect", "--nope", base), 2, stderr_has=("unknown option",))
        expect("inspect help", run("inspect", "--help"), 0, stdout_has=("usage: kiln inspect",))

        # Bad input exits 1 with the file named.
        missing = os.path.join(tmp, "missing.pt")
        expect("missing file", run("inspect", missing), 1, stderr_has=("kiln: error: " + missing,))
        expect("directory", run("inspect", tmp), 1, stderr_has=("kiln: error: " + tmp,))

        def bad(name, data, *needles, verify=False):
            p = os.path.join(tmp, name)
            with open(p, "wb") as f:
                f.write(data)
            args = ["inspect"] + (["--verify"] if verify else []) + [p]
            expect(name, run(*args), 1, stderr_has=("kiln: error: " + p,) + needles)
            return p

        bad("empty.pt", b"")
        bad("not_a_zip.pt", b"hello, this is not a zip archive at all" * 10)
        for n in (len(raw) // 3, len(raw) - 100, len(raw) - 1):
            bad("truncated_%d.pt" % n, raw[:n])
        wrong_magic = bytearray(raw)
        wrong_magic[0:4] = b"PK\x05\x05"
        bad("wrong_magic.pt", bytes(wrong_magic))

        # A flipped byte inside a tensor's storage: only --verify can notice it.
        off = record_data_offset(base, root + "/data/0")
        flipped = bytearray(raw)
        flipped[off] ^= 0xFF
        p = bad("crc.pt", bytes(flipped), root + "/data/0", "CRC", verify=True)
        expect("crc without --verify", run("inspect", p), 0)

        # Hostile and inconsistent contents inside a well-formed zip.
        def rewritten(name, *needles, **kw):
            p = os.path.join(tmp, name)
            rewrite(base, p, **kw)
            expect(name, run("inspect", p), 1, stderr_has=("kiln: error: " + p,) + needles)

        rewritten("os_system.pt", "os.system", replace={"data.pkl": b"\x80\x02cos\nsystem\nq\x00X\x02\x00\x00\x00idq\x01\x85q\x02Rq\x03."})
        rewritten("eval.pt", "builtins.eval", replace={"data.pkl": b"\x80\x02cbuiltins\neval\nX\x01\x00\x00\x001\x85R."})
        rewritten("deep.pt", replace={"data.pkl": b"\x80\x02" + b"]" * 200000 + b"." })
        # Three million one-byte values: bounded by the value count, not by memory.
        rewritten("many_values.pt", "values", replace={"data.pkl": b"\x80\x02]" + b"]a" * 3000000 + b"."})
        rewritten("no_data_pkl.pt", "data.pkl", drop=("data.pkl",))
        rewritten("no_code.pt", "code/", drop=tuple(n[len(root) + 1:] for n in zipfile.ZipFile(base).namelist()
                                                  if "/code/" in n))
        rewritten("legacy.pt", "model.json", add={"model.json": b"{}"})
        rewritten("version_99.pt", "version 99", replace={".data/version": b"99\n", "version": b"99\n"})
        rewritten("big_endian.pt", "byte order", add={"byteorder": b"big"})
        rewritten("short_storage.pt", "data/0", replace={"data/0": b"\x00" * 4})
        rewritten("missing_storage.pt", "data/0", drop=("data/0",))
    finally:
        shutil.rmtree(tmp)

    return summary("inspect_test")


if __name__ == "__main__":
    sys.exit(main())
