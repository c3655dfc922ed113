#!/usr/bin/env bash
# Checks a `meson install` of kiln as its users meet it: the files are there, every public
# header of include/kiln/ is installed unchanged and compiles on its own (kiln.h as C99 and
# as C++, the rest as C++20) with nothing but `pkg-config --cflags kiln`, and kiln.pc
# answers for shared and static linking.
#
#   tests/install/installed.sh PREFIX      (meson's --libdir=lib)
#
# Prints one line per finding; exits 1 when anything is wrong.
set -euo pipefail
[ $# -eq 1 ] || { echo "usage: $0 PREFIX" >&2; exit 2; }
src=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
prefix=$(cd "$1" && pwd)
export PKG_CONFIG_PATH=$prefix/lib/pkgconfig
bad=0
problem() { echo "install: $*"; bad=1; }

for f in lib/libkiln.a lib/libkiln.so lib/pkgconfig/kiln.pc bin/kiln; do
  [ -f "$prefix/$f" ] || problem "missing $f"
done

# Every header of include/kiln/ is installed, unchanged, and nothing else is.
diff -r "$src/include/kiln" "$prefix/include/kiln" >/dev/null ||
  problem "installed headers differ from include/kiln/: $(diff -rq "$src/include/kiln" "$prefix/include/kiln" | tr '\n' ';')"

version=$(pkg-config --modversion kiln) || problem "pkg-config does not find kiln.pc"
cflags=$(pkg-config --cflags kiln)
pkg-config --libs kiln >/dev/null || problem "pkg-config --libs kiln fails"
pkg-config --static --libs kiln >/dev/null || problem "pkg-config --static --libs kiln fails"
# The CLI reports the same version as kiln.pc.
first=$("$prefix/bin/kiln" --version | sed -n 1p) || problem "bin/kiln --version fails"
[ "$first" = "kiln $version" ] || problem "bin/kiln --version says '$first', kiln.pc says $version"

# Each header alone, with nothing but kiln.pc's flags.
for h in "$prefix"/include/kiln/*; do
  name=kiln/$(basename "$h")
  # shellcheck disable=SC2086
  echo "#include <$name>" | ${CXX:-c++} -std=c++20 -Wall -Wextra -Werror -fsyntax-only $cflags -x c++ - ||
    problem "$name does not compile alone as C++20"
  case $h in
    *.h)
      # shellcheck disable=SC2086
      echo "#include <$name>" | ${CC:-cc} -std=c99 -Wall -Wextra -pedantic -Werror -fsyntax-only $cflags -x c - ||
        problem "$name does not compile alone as C99" ;;
  esac
done

[ $bad -eq 0 ] || exit 1
echo "install: $prefix: kiln $version, $(find "$prefix/include/kiln" -type f | wc -l) headers, $(pkg-config --static --libs kiln)"
