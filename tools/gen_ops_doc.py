#!/usr/bin/env python3
"""Writes docs/ops.md from the schema table in engine/import/op_schema.cpp (run it after
changing the table; tests/engine/import_test.cpp checks that the page lists every schema).

usage: tools/gen_ops_doc.py
"""
import os
import re

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
HEADER = """# Ops kiln accepts

The importer maps every call in an archive's code to one of these schemas (PyTorch's
notation, from `native_functions.yaml`); a call to anything else is refused when the
model loads, with the op's name and source line. The table lives in
`engine/import/op_schema.cpp` and this page is made from it by `tools/gen_ops_doc.py`;
`tests/engine/import_test.cpp` checks that it lists every schema. I/O and concurrency ops
(`save`, `from_file`, `fork`, `wait`) are deliberately absent: loading never executes
anything from the archive.

Ops marked *(effect)* are never removed or merged by the passes (randomness or an
exception). `kiln::div_legacy` is what `aten::div` on archives before format version 4
becomes (integer operands truncate, as torch < 1.5 did).
"""


def main():
    src = open(os.path.join(ROOT, "engine", "import", "op_schema.cpp")).read()
    start = src.index("constexpr std::string_view kSchemas[] = {")
    body = src[start:src.index("};", start)]
    ops = {}
    for chunk in re.findall(r'((?:"(?:[^"\\]|\\.)*"\s*)+),', body):
        text = "".join(re.findall(r'"((?:[^"\\]|\\.)*)"', chunk))
        effect = text.startswith("!")
        text = text.lstrip("!")
        ops.setdefault(text.split("(")[0].split(".")[0], []).append(text + ("    (effect)" if effect else ""))
    ops["kiln::div_legacy"] = ["kiln::div_legacy.Tensor(Tensor self, Tensor other) -> Tensor",
                               "kiln::div_legacy.Scalar(Tensor self, Scalar other) -> Tensor"]
    out = [HEADER]
    for name in sorted(ops):
        out.append("## `%s`\n" % name)
        out.extend("    " + s for s in ops[name])
        out.append("")
    with open(os.path.join(ROOT, "docs", "ops.md"), "w") as f:
        f.write("\n".join(out))


if __name__ == "__main__":
    main()
