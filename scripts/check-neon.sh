#!/bin/sh
# Compiles the NEON and scalar kernel variants for AArch64 (object files only: they need just the
# kernel headers, not node), so the arm64 build is checked on an x86 machine. With --run, also builds
# the quantized-kernel test program (test/native/quant-dot-test.cc: dots, GEMM, GEMV) statically and
# runs it under qemu-aarch64, on a CPU with the dot-product extension and on one without (slow: minutes).
#   scripts/check-neon.sh [--run]   (needs aarch64-linux-gnu-g++: apt-get install g++-aarch64-linux-gnu;
#                                    --run needs qemu-aarch64: apt-get install qemu-user)
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
compile() {  # source, extra flags...
  src=$1
  shift
  obj="$out/$(echo "$src" | tr / _).o"
  if "$CXX" -std=c++17 -O2 -Wall -Wextra "$@" -c "$src" -o "$obj"; then
    echo "ok   $src"
  else
    echo "FAIL $src" >&2
    status=1
  fi
}
for src in native/kernels/neon/*.cc native/kernels/scalar/*.cc native/quant/quantize.cc native/cpu/features.cc \
  native/kernels/quant_dot_select.cc native/threadpool.cc native/fault_guard.cc native/kernels/scratch.cc; do
  compile "$src"
done
compile native/kernels/neon_dotprod/quant_dot.cc -march=armv8.2-a+dotprod
[ "$status" = 0 ] || exit "$status"

if [ "${1:-}" = "--run" ]; then
  if ! command -v qemu-aarch64 >/dev/null 2>&1; then
    echo "check-neon: qemu-aarch64 not found (apt-get install qemu-user)" >&2
    exit 2
  fi
  compile test/native/quant-dot-test.cc
  "$CXX" -static -pthread -o "$out/quant-dot-test" "$out"/native_quant_quantize.cc.o "$out"/native_cpu_features.cc.o \
    "$out"/native_threadpool.cc.o "$out"/native_fault_guard.cc.o "$out"/native_kernels_scratch.cc.o \
    "$out"/native_kernels_quant_dot_select.cc.o "$out"/native_kernels_scalar_quant_dot.cc.o \
    "$out"/native_kernels_neon_quant_dot.cc.o "$out"/native_kernels_neon_dotprod_quant_dot.cc.o \
    "$out"/test_native_quant-dot-test.cc.o
  for cpu in max cortex-a53; do  # with and without the dot-product extension
    echo "qemu-aarch64 -cpu $cpu:"
    qemu-aarch64 -cpu "$cpu" "$out/quant-dot-test" || status=1
  done
fi
exit $status
