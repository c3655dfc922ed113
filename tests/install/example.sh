#!/usr/bin/env bash
# Builds one of docs/examples against an installed kiln the way a user would (its Makefile,
# pkg-config), runs it on a model and checks what it prints.
#
#   tests/install/example.sh c|cpp shared|static PREFIX WORKDIR MODEL EXPECTED
#
#   shared  `make`: linked to PREFIX/lib/libkiln.so, run with LD_LIBRARY_PATH
#   static  `make static`: one fully static program from libkiln.a and
#           `pkg-config --static --libs kiln` (kiln built with -Donednn=disabled)
# The example is copied to WORKDIR/LANG-MODE and built there (warnings are errors).
# EXPECTED is its output after the first line, which must be "kiln <kiln.pc's version>".
# Exits 0 when it builds, runs with exit 0 and prints that; 1 otherwise, saying why.
set -euo pipefail
[ $# -eq 6 ] || { echo "usage: $0 c|cpp shared|static PREFIX WORKDIR MODEL EXPECTED" >&2; exit 2; }
lang=$1 mode=$2 expected=$6
src=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
prefix=$(cd "$3" && pwd)
model=$(realpath "$5")
work=$4/$lang-$mode
export PKG_CONFIG_PATH=$prefix/lib/pkgconfig

rm -rf "$work"; mkdir -p "$work"
cp "$src/docs/examples/$lang"/* "$work"/
case $mode in
  shared) target=all; exe=kiln-example ;;
  static) target=static; exe=kiln-example-static ;;
  *) echo "example: unknown mode $mode" >&2; exit 2 ;;
esac
export CFLAGS="-O2 -Werror" CXXFLAGS="-O2 -Werror"
if ! make -s -C "$work" "$target" >"$work/build.log" 2>&1; then
  cat "$work/build.log"; echo "example: $lang $mode: the build failed"; exit 1
fi
# A static program needs no shared library (readelf comes with binutils, beside gcc).
if [ "$mode" = static ] && readelf -d "$work/$exe" | grep -q NEEDED; then
  readelf -d "$work/$exe" | grep NEEDED; echo "example: $lang $mode: not statically linked"; exit 1
fi

rc=0
LD_LIBRARY_PATH=$prefix/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH} "$work/$exe" "$model" \
  >"$work/out.txt" 2>"$work/err.txt" || rc=$?
if [ $rc -ne 0 ]; then
  cat "$work/out.txt" "$work/err.txt"; echo "example: $lang $mode: exit $rc on $model"; exit 1
fi
want="kiln $(pkg-config --modversion kiln)"
got=$(head -n 1 "$work/out.txt")
if [ "$got" != "$want" ] || ! tail -n +2 "$work/out.txt" | diff -u "$expected" - ; then
  [ "$got" = "$want" ] || echo "first line: '$got', expected '$want'"
  echo "example: $lang $mode: unexpected output on $model"; exit 1
fi
echo "example: $lang $mode: ok ($(stat -c %s "$work/$exe") bytes, $(tail -n 1 "$work/out.txt" | sed 's/^ *//'))"
