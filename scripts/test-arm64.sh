#!/usr/bin/env bash
# linux-arm64, proven by running it: the cross-built prebuild (prebuilds/linux-arm64) under
# qemu-user with the official arm64 Node from npm, through vitest, on the NEON and scalar kernels:
#   test/kernels-matmul.test.ts  test/kernels-ops.test.ts  test/golden.test.ts   (the default set)
# Other test files may be named instead (not those that start child processes: without binfmt_misc
# an emulated Node cannot start another one). Slow (the emulator runs V8 and the kernels); not in
# `npm test`.
#   scripts/test-arm64.sh [test files...]      (needs qemu-user and g++-aarch64-linux-gnu)
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD

mapfile -t node < <(node --import tsx scripts/foreign-node.ts linux-arm64)
addon=$root/prebuilds/linux-arm64/paligemma.glibc.node
[ -f "$addon" ] || node scripts/prebuild.mjs linux-arm64

# A copy of the project with arm64 dependencies (vitest's rollup and sharp are native). The
# dependencies are reinstalled only when the lock file changes; the sources are copied every run.
app=$HOME/.cache/paligemma-platforms/arm64-app
lock_hash=$(sha256sum package-lock.json | cut -c1-16)
if [ "$(cat "$app/.lock-hash" 2>/dev/null)" != "$lock_hash" ]; then
  rm -rf "$app" && mkdir -p "$app"
  cp package.json package-lock.json "$app/"
  (cd "$app" && npm ci --ignore-scripts --os=linux --cpu=arm64 --libc=glibc --no-audit --no-fund >/dev/null)
  echo "$lock_hash" >"$app/.lock-hash"
fi
rm -rf "$app/lib" "$app/test"
cp -r lib test vitest.config.ts tsconfig.json "$app/"

files=("$@")
[ ${#files[@]} -gt 0 ] || files=(test/kernels-matmul.test.ts test/kernels-ops.test.ts test/golden.test.ts)
cd "$app"
# esbuild (vitest's TypeScript transform) runs as a separate program: the host's x64 binary serves.
PALIGEMMA_ADDON=$addon \
ESBUILD_BINARY_PATH=$root/node_modules/@esbuild/linux-x64/bin/esbuild \
  "${node[@]}" node_modules/vitest/vitest.mjs run --pool=threads --poolOptions.threads.singleThread \
    --testTimeout=600000 --hookTimeout=600000 "${files[@]}"
