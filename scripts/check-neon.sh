#!/bin/sh
# Compiles the NEON and scalar kernel variants for AArch64 (object files only: they need just the
# kernel headers, not node), so the arm64 build is checked on an x86 machine.
#   scripts/check-neon.sh            (needs aarch64-linux-gnu-g++: apt-get install g++-aarch64-linux-gnu)
set -eu
cd "$(dirname "$0")/.."
CXX=${CXX_AARCH64:-aarch64-linux-gnu-g++}
if ! command -v "$CXX" >/dev/null 2>&1; then
  echo "check-neon: $CXX not found (apt-get install g++-aarch64-linux-gnu)" >&2
  exit 2
fi
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
status=0
for src in native/kernels/neon/*.cc native/kernels/scalar/*.cc; do
  obj="$out/$(echo "$src" | tr / _).o"
  if "$CXX" -std=c++17 -O2 -Wall -Wextra -c "$src" -o "$obj"; then
    echo "ok   $src"
  else
    echo "FAIL $src" >&2
    status=1
  fi
done
exit $status
