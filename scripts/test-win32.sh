#!/usr/bin/env bash
# win32-x64, proven by running it: the package is packed, installed for Windows (sharp's win32
# binaries included) and run by the official node.exe from npm under wine. node-gyp-build finds
# the MinGW-built prebuild by itself; scripts/golden-check.mjs then converts the tiny fixture,
# loads it and checks every golden case, through `import` and `require`, on each SIMD variant.
# Last, node.exe renamed electron.exe loads the addon too (the delay-load hook at work).
# wine 8 lacks bcryptprimitives.dll, which sharp needs: a stand-in is built (scripts/wine/).
# Slow; not in `npm test`.
#   scripts/test-win32.sh      (needs wine, g++-mingw-w64-x86-64 and cmake)
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD

mapfile -t node < <(node --import tsx scripts/foreign-node.ts win32-x64)
export WINEPREFIX=$HOME/.cache/paligemma-platforms/wine WINEDEBUG=-all
[ -f prebuilds/win32-x64/paligemma.node ] || node scripts/prebuild.mjs win32-x64

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir "$work/dlls"
x86_64-w64-mingw32-gcc -O2 -shared -o "$work/dlls/bcryptprimitives.dll" scripts/wine/bcryptprimitives.c -ladvapi32
export WINEPATH="Z:$work/dlls"
npm pack --pack-destination "$work" --silent >/dev/null
mkdir "$work/app" && cd "$work/app"
echo '{ "name": "win32-app", "private": true }' >package.json
npm install --os=win32 --cpu=x64 --ignore-scripts --no-audit --no-fund "$work"/paligemma-*.tgz >/dev/null
cp "$root/scripts/golden-check.mjs" .

# node.exe under wine cannot write to a pipe (EBADF), so its output goes through a file.
win() {
  local status=0
  "$@" >"$work/out" 2>&1 || status=$?
  cat "$work/out"
  return $status
}

fixture="Z:$root/test/fixtures/paligemma-tiny"
win "${node[@]}" golden-check.mjs "$fixture"
win "${node[@]}" golden-check.mjs "$fixture" --require --simd avx2
win "${node[@]}" golden-check.mjs "$fixture" --simd scalar

mkdir "$work/host" && cp "${node[-1]}" "$work/host/electron.exe"
win "${node[@]:0:${#node[@]}-1}" "$work/host/electron.exe" -e \
  "const p = require('paligemma'); console.log('electron.exe (renamed node.exe) loads the addon:', p.simdVariants().map((v) => v.name).join(', '))"
