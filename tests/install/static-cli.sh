#!/usr/bin/env bash
# Links kiln's CLI into one fully static program from an installed libkiln.a (built with
# -Donednn=disabled), the way any program would link it: the CLI's own objects from a
# meson build folder and `pkg-config --static --libs kiln`, no --whole-archive. Runs
# `kiln --version` and `kiln run` on a fixture's trace case, and prints the size, as built
# and stripped.
#
#   tests/install/static-cli.sh BUILDDIR PREFIX OUTDIR FIXTURE_DIR
set -euo pipefail
[ $# -eq 4 ] || { echo "usage: $0 BUILDDIR PREFIX OUTDIR FIXTURE_DIR" >&2; exit 2; }
build=$1 out=$3 fixture=$4
prefix=$(cd "$2" && pwd)
export PKG_CONFIG_PATH=$prefix/lib/pkgconfig
mkdir -p "$out"
exe=$out/kiln

objs=("$build"/tools/kiln.p/*.o)
[ -f "${objs[0]}" ] || { echo "static-cli: no objects in $build/tools/kiln.p (build tools/kiln first)"; exit 1; }
# shellcheck disable=SC2046
${CXX:-c++} -static -o "$exe" "${objs[@]}" $(pkg-config --static --libs kiln)
if readelf -d "$exe" | grep -q NEEDED; then
  readelf -d "$exe" | grep NEEDED; echo "static-cli: not statically linked"; exit 1
fi
strip -o "$exe.stripped" "$exe"

"$exe" --version >"$out/version.txt" || { cat "$out/version.txt"; echo "static-cli: kiln --version failed"; exit 1; }
grep -q "^oneDNN: disabled" "$out/version.txt" || { cat "$out/version.txt"; echo "static-cli: expected a build without oneDNN"; exit 1; }

# kiln run on the fixture's first case, inputs by name; it prints each output's dtype and shape.
mapfile -t run_args < <(python3 - "$fixture/manifest.json" <<'PY'
import json, os, sys
m = json.load(open(sys.argv[1]))
d = os.path.dirname(sys.argv[1])
print(os.path.join(d, m["archive"]))
for i in m["cases"][0]["inputs"]:
    print("--input"); print(i["name"] + "=" + os.path.join(d, i["file"]))
for n, o in enumerate(m["cases"][0]["outputs"]):
    print("#output_%d: %s [%s]" % (n, o["dtype"], ", ".join(map(str, o["shape"]))))
PY
)
args=(); expected=()
for a in "${run_args[@]}"; do
  if [[ $a == \#* ]]; then expected+=("${a#\#}"); else args+=("$a"); fi
done
if ! "$exe" run "${args[@]}" >"$out/run.txt" 2>&1; then
  cat "$out/run.txt"; echo "static-cli: kiln run failed"; exit 1
fi
for e in "${expected[@]}"; do
  grep -qxF "$e" "$out/run.txt" || { cat "$out/run.txt"; echo "static-cli: kiln run did not print '$e'"; exit 1; }
done

size=$(stat -c %s "$exe"); stripped=$(stat -c %s "$exe.stripped")
mib() { awk -v b="$1" 'BEGIN { printf "%.1f MiB", b / 1048576 }'; }
echo "static-cli: $(sed -n 1p "$out/version.txt"), fully static, runs $(basename "${args[0]}"): $size bytes ($(mib "$size")), stripped $stripped bytes ($(mib "$stripped"))"
