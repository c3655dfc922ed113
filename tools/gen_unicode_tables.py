#!/usr/bin/env python3
"""Generates tokenizer/unicode_tables.cpp by probing the reference tokenizer.

kiln's tokenizer must agree with Hugging Face `tokenizers` (Rust) on every code point, and
the Rust crates behind it carry Unicode data of different ages (the control/punctuation/mark
tables predate Unicode 9, lowercasing follows the Rust compiler's Unicode). Tables built from
a Unicode database would disagree on rare characters, so this script asks the pinned
reference what it does with each code point and writes down the answers:

  control     removed by BertNormalizer(clean_text)
  nws         turned into ' ' by BertNormalizer(clean_text)
  chinese     padded with spaces by BertNormalizer(handle_chinese_chars)
  mn          removed after NFD by BertNormalizer(strip_accents)
  ws          split on (and dropped) by BertPreTokenizer, also Rust's char::is_whitespace
  punct       isolated by BertPreTokenizer
  word        a regex \\w character, which stops a single_word added token from matching
  decomposition, lowercase and canonical combining class (the order NFD sorts marks into)

Run with the reference environment, from the repository root:
  $(tools/python-env tok)/bin/python tools/gen_unicode_tables.py
It rewrites tokenizer/unicode_tables.cpp; the output depends only on the reference, so a
second run gives the same bytes.
"""

import json
import os
import sys
import unicodedata

import tokenizers
from tokenizers import Tokenizer, normalizers, pre_tokenizers

EXPECTED_VERSION = "0.23.3"
MAX_CP = 0x10FFFF
OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tokenizer", "unicode_tables.cpp")

FLAG_BITS = {
    "control": 0x01,
    "nws": 0x02,
    "chinese": 0x04,
    "mn": 0x08,
    "ws": 0x10,
    "punct": 0x20,
    "word": 0x40,
}


def code_points():
    for cp in range(MAX_CP + 1):
        if 0xD800 <= cp <= 0xDFFF:  # surrogates cannot reach the reference (nor valid UTF-8)
            continue
        yield cp


def bert_normalizer(clean=False, chinese=False, strip=False, lower=False):
    return normalizers.BertNormalizer(clean_text=clean, handle_chinese_chars=chinese,
                                      strip_accents=strip, lowercase=lower)


def single_word_probe_tokenizer():
    # A WordPiece tokenizer without normalizer whose only job is to say whether the
    # single_word added token "<q>" matched next to a character.
    spec = {
        "version": "1.0", "truncation": None, "padding": None,
        "added_tokens": [{"id": 1, "content": "<q>", "single_word": True, "lstrip": False,
                          "rstrip": False, "normalized": False, "special": False}],
        "normalizer": None, "pre_tokenizer": None, "post_processor": None, "decoder": None,
        "model": {"type": "WordPiece", "unk_token": "[UNK]", "continuing_subword_prefix": "##",
                  "max_input_chars_per_word": 100, "vocab": {"[UNK]": 0, "<q>": 1}},
    }
    return Tokenizer.from_str(json.dumps(spec))


def probe():
    clean = bert_normalizer(clean=True)
    chinese = bert_normalizer(chinese=True)
    strip = bert_normalizer(strip=True)
    lower = bert_normalizer(lower=True)
    nfd = normalizers.NFD()
    pre = pre_tokenizers.BertPreTokenizer()
    sw = single_word_probe_tokenizer()
    q_id = sw.token_to_id("<q>")

    flags = {}
    decomp = {}
    lowercase = {}
    stripped = {}
    for cp in code_points():
        c = chr(cp)
        f = 0
        r = clean.normalize_str(c)
        if r == "":
            f |= FLAG_BITS["control"]
        elif r == " " and c != " ":
            f |= FLAG_BITS["nws"]
        elif r != c:
            sys.exit(f"U+{cp:04X}: clean_text gave {r!r}")

        r = chinese.normalize_str(c)
        if r == f" {c} ":
            f |= FLAG_BITS["chinese"]
        elif r != c:
            sys.exit(f"U+{cp:04X}: handle_chinese_chars gave {r!r}")

        d = nfd.normalize_str(c)
        if d != c:
            decomp[cp] = [ord(x) for x in d]
        s = strip.normalize_str(c)
        if d == c:
            if s == "":
                f |= FLAG_BITS["mn"]
            elif s != c:
                sys.exit(f"U+{cp:04X}: strip_accents gave {s!r} for a non-decomposing char")
        else:
            stripped[cp] = s

        lo = lower.normalize_str(c)
        if lo != c:
            lowercase[cp] = [ord(x) for x in lo]

        parts = [p for p, _ in pre.pre_tokenize_str("a" + c + "b")]
        if parts == ["a", "b"]:
            f |= FLAG_BITS["ws"]
        elif parts == ["a", c, "b"]:
            f |= FLAG_BITS["punct"]
        elif parts != ["a" + c + "b"]:
            sys.exit(f"U+{cp:04X}: BertPreTokenizer gave {parts!r}")

        before = q_id in sw.encode(c + "<q>", add_special_tokens=False).ids
        after = q_id in sw.encode("<q>" + c, add_special_tokens=False).ids
        if before != after:
            sys.exit(f"U+{cp:04X}: word-boundary test differs before/after the token")
        if not before:
            f |= FLAG_BITS["word"]
        if f:
            flags[cp] = f

    # strip_accents must be exactly "NFD, then drop the mn characters", or the tables
    # cannot describe it.
    for cp, s in stripped.items():
        want = "".join(chr(x) for x in decomp[cp] if not flags.get(x, 0) & FLAG_BITS["mn"])
        if s != want:
            sys.exit(f"U+{cp:04X}: strip_accents gave {s!r}, NFD minus marks is {want!r}")
    return flags, decomp, lowercase


def probe_ccc(decomp):
    """Canonical combining classes as the reference's NFD sorts by them.

    Candidates come from Python's unicodedata; each is checked against one representative
    of every class: x followed by r is reordered exactly when 0 < ccc(r) < ccc(x).
    """
    nfd = normalizers.NFD()
    cands = {cp: unicodedata.combining(chr(cp)) for cp in code_points()
             if unicodedata.combining(chr(cp)) and cp not in decomp}
    # A representative must be a mark the reference knows: one it sorts before U+0345
    # (class 240) or after U+0334 (class 1). Marks newer than the reference's data are not.
    def known(cp):
        return (nfd.normalize_str("\u0345" + chr(cp)) != "\u0345" + chr(cp)
                or nfd.normalize_str(chr(cp) + "\u0334") != chr(cp) + "\u0334")
    reps = {}
    for cp, k in sorted(cands.items()):
        if k not in reps and known(cp):
            reps[k] = cp
    ccc = {}
    for x, k in sorted(cands.items()):
        agrees = True
        silent = True
        for rk, r in reps.items():
            fwd = nfd.normalize_str(chr(x) + chr(r)) != chr(x) + chr(r)
            bwd = nfd.normalize_str(chr(r) + chr(x)) != chr(r) + chr(x)
            silent = silent and not fwd and not bwd
            if fwd != (rk < k) or bwd != (k < rk):
                agrees = False
        if agrees:
            ccc[x] = k
        elif not silent:
            sys.exit(f"U+{x:04X}: reference combining class is neither {k} nor 0")
    # A character unknown to Python but known to the reference as a mark would be sorted
    # before a following class-240 mark (U+0345); none may exist.
    ypogegrammeni = "\u0345"
    for cp in code_points():
        if cp in ccc or cp in decomp or cp == 0x345:
            continue
        s = ypogegrammeni + chr(cp)
        if nfd.normalize_str(s) != s:
            sys.exit(f"U+{cp:04X}: has a combining class the probe did not find")
    return ccc


def ranges(prop):
    """[(first, last, value)] for runs of equal nonzero value over a {cp: value} map."""
    out = []
    for cp in sorted(prop):
        v = prop[cp]
        if out and out[-1][1] == cp - 1 and out[-1][2] == v:
            out[-1][1] = cp
        else:
            out.append([cp, cp, v])
    return out


def hangul_algorithmic(decomp):
    """True when the reference decomposes every Hangul syllable by the Unicode algorithm."""
    s_base, l_base, v_base, t_base, t_count, n_count = 0xAC00, 0x1100, 0x1161, 0x11A7, 28, 588
    for s in range(s_base, s_base + 11172):
        i = s - s_base
        want = [l_base + i // n_count, v_base + (i % n_count) // t_count]
        if i % t_count:
            want.append(t_base + i % t_count)
        if decomp.get(s) != want:
            return False
    return True


def lower_runs(single):
    """Single-code-point lowercase maps as runs (first, count, stride, delta)."""
    runs = []
    for cp in sorted(single):
        delta = single[cp] - cp
        if runs:
            first, count, stride, d = runs[-1]
            last = first + (count - 1) * stride
            if d == delta:
                if count == 1 and cp - last in (1, 2):
                    runs[-1] = [first, 2, cp - last, d]
                    continue
                if count > 1 and cp - last == stride:
                    runs[-1][1] += 1
                    continue
        runs.append([cp, 1, 1, delta])
    return runs


def wrap(items, per_line, indent="    "):
    lines = []
    for i in range(0, len(items), per_line):
        lines.append(indent + " ".join(items[i:i + per_line]))
    return "\n".join(lines)


def emit(flags, decomp, lowercase, ccc):
    hangul = hangul_algorithmic(decomp)
    if hangul:
        decomp = {cp: d for cp, d in decomp.items() if not 0xAC00 <= cp < 0xAC00 + 11172}
    flag_ranges = ranges(flags)
    ccc_ranges = ranges(ccc)
    single = {cp: m[0] for cp, m in lowercase.items() if len(m) == 1}
    multi = {cp: m for cp, m in lowercase.items() if len(m) > 1}
    runs = lower_runs(single)

    pool = []
    decomp_entries = []
    for cp in sorted(decomp):
        seq = decomp[cp]
        decomp_entries.append(f"{{0x{cp:X}, {len(pool)}, {len(seq)}}},")
        pool.extend(seq)
    lower_multi_entries = []
    lower_pool = []
    for cp in sorted(multi):
        seq = multi[cp]
        lower_multi_entries.append(f"{{0x{cp:X}, {len(lower_pool)}, {len(seq)}}},")
        lower_pool.extend(seq)

    def hexes(seq):
        return [f"0x{x:X}," for x in seq]

    out = []
    out.append("// GENERATED by tools/gen_unicode_tables.py from Hugging Face tokenizers "
               f"{tokenizers.__version__} (Rust);")
    out.append("// do not edit. Each table records what the reference does with every code point "
               "(see the")
    out.append("// script for how each property is probed). Regenerate with:")
    out.append("//   $(tools/python-env tok)/bin/python tools/gen_unicode_tables.py")
    out.append('#include "tokenizer/unicode_tables.hpp"')
    out.append("")
    out.append("namespace kiln::tokenizer::tables {")
    out.append("")
    out.append(f"const bool kHangulAlgorithmic = {'true' if hangul else 'false'};")
    out.append("")
    out.append("// {first, last, flags}; flags are the Flag bits of unicode_tables.hpp.")
    out.append(f"const FlagRange kFlagRanges[{len(flag_ranges)}] = {{")
    out.append(wrap([f"{{0x{a:X}, 0x{b:X}, 0x{v:02X}}}," for a, b, v in flag_ranges], 4))
    out.append("};")
    out.append("")
    out.append("// {first, last, class}: canonical combining classes other than 0.")
    out.append(f"const CccRange kCccRanges[{len(ccc_ranges)}] = {{")
    out.append(wrap([f"{{0x{a:X}, 0x{b:X}, {v}}}," for a, b, v in ccc_ranges], 5))
    out.append("};")
    out.append("")
    out.append("// {first, count, stride, delta}: first + i*stride lowercases to itself + delta.")
    out.append(f"const LowerRun kLowerRuns[{len(runs)}] = {{")
    out.append(wrap([f"{{0x{a:X}, {n}, {s}, {d}}}," for a, n, s, d in runs], 4))
    out.append("};")
    out.append("")
    out.append("// Lowercase maps to more than one code point: {cp, offset, length} into kLowerPool.")
    out.append(f"const Expansion kLowerMulti[{len(lower_multi_entries)}] = {{")
    out.append(wrap(lower_multi_entries, 4))
    out.append("};")
    out.append(f"const char32_t kLowerPool[{len(lower_pool)}] = {{")
    out.append(wrap(hexes(lower_pool), 8))
    out.append("};")
    out.append("")
    out.append("// Full canonical decompositions (Hangul syllables excepted when kHangulAlgorithmic):")
    out.append("// {cp, offset, length} into kDecompPool, sorted by cp.")
    out.append(f"const Expansion kDecompositions[{len(decomp_entries)}] = {{")
    out.append(wrap(decomp_entries, 4))
    out.append("};")
    out.append(f"const char32_t kDecompPool[{len(pool)}] = {{")
    out.append(wrap(hexes(pool), 8))
    out.append("};")
    out.append("")
    out.append("const std::size_t kFlagRangeCount = std::size(kFlagRanges);")
    out.append("const std::size_t kCccRangeCount = std::size(kCccRanges);")
    out.append("const std::size_t kLowerRunCount = std::size(kLowerRuns);")
    out.append("const std::size_t kLowerMultiCount = std::size(kLowerMulti);")
    out.append("const std::size_t kDecompositionCount = std::size(kDecompositions);")
    out.append("")
    out.append("}  // namespace kiln::tokenizer::tables")
    return "\n".join(out) + "\n"


def main():
    if tokenizers.__version__ != EXPECTED_VERSION:
        sys.exit(f"gen_unicode_tables: need tokenizers {EXPECTED_VERSION}, have {tokenizers.__version__}")
    flags, decomp, lowercase = probe()
    ccc = probe_ccc(decomp)
    text = emit(flags, decomp, lowercase, ccc)
    with open(OUT, "w", encoding="utf-8", newline="\n") as f:
        f.write(text)
    print(f"gen_unicode_tables: wrote {os.path.normpath(OUT)} ({len(text)} bytes)")


if __name__ == "__main__":
    main()
