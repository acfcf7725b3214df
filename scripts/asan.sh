#!/bin/sh
# Builds both addons with AddressSanitizer + UndefinedBehaviorSanitizer (into build-asan) and runs
# the native-heavy tests against them. CI-optional: slow (sanitized kernels), Linux + GCC/Clang only.
#
#   scripts/asan.sh                  build, then run the default set of test files
#   scripts/asan.sh test/foo.test.ts build, then run only the given files
#   ASAN_SKIP_BUILD=1 scripts/asan.sh  reuse an existing build-asan
#
# Node itself is not instrumented, so the ASan runtime must be the first library loaded: it is
# LD_PRELOADed. Leak detection is off (Node and V8 keep memory alive until exit by design, which
# would drown real reports). UBSan is built with -fno-sanitize-recover, so any undefined behaviour
# aborts the run and fails it, like an ASan error does.
set -eu
cd "$(dirname "$0")/.."

CXX=${CXX:-g++}
SANITIZE="-fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer -g"
ASAN_LIB=$("$CXX" -print-file-name=libasan.so)
if [ ! -e "$ASAN_LIB" ]; then
  echo "asan: $CXX has no libasan.so (install libasan for your compiler)" >&2
  exit 2
fi

if [ "${ASAN_SKIP_BUILD:-}" != 1 ]; then
  # Debug build type: keeps assert() enabled (the project's -O3 still applies, so it stays usable
  # fast). The flags go into CMAKE_CXX_FLAGS_DEBUG because cmake-js sets CMAKE_CXX_FLAGS itself.
  # configure (not just compile) so that changed flags reach an existing build directory.
  npx cmake-js configure -D -O build-asan \
    --CDCMAKE_CXX_FLAGS_DEBUG="$SANITIZE" \
    --CDCMAKE_SHARED_LINKER_FLAGS="$SANITIZE"
  npx cmake-js build -D -O build-asan
fi
# An uninstrumented build would pass vacuously: check the objects really call the ASan runtime.
if ! nm build-asan/CMakeFiles/paligemma_core.dir/native/bind_model.cc.o 2>/dev/null | grep -q __asan_report; then
  echo "asan: build-asan is not instrumented (no __asan_report calls in bind_model.cc.o)" >&2
  exit 2
fi
ADDON=build-asan/Debug/paligemma.node
for built in "$ADDON" build-asan/Debug/paligemma_test.so; do  # lib/native.ts finds the test addon beside ADDON
  if [ ! -e "$built" ]; then
    echo "asan: $built was not built" >&2
    exit 2
  fi
done

# Positive controls: a tiny addon with a deliberate heap overflow, and one with a signed integer
# overflow, must each abort the process under the same preload and options — or a clean run below
# would prove nothing.
control=$(mktemp -d)
trap 'rm -rf "$control"' EXIT
cat > "$control/control.cc" <<'CC'
#include <node_api.h>
#include <climits>
#include <cstdlib>
static napi_value Init(napi_env env, napi_value exports) {
  if (std::getenv("CONTROL_UBSAN")) {
    volatile int big = INT_MAX;
    volatile int sum = big + 1;  // signed overflow: undefined behaviour
    (void)sum;
  } else {
    volatile int* p = new int[4];
    p[4] = 1;  // one past the end
    delete[] p;
  }
  return exports;
}
NAPI_MODULE(NODE_GYP_MODULE_NAME, Init)
CC
"$CXX" -shared -fPIC $SANITIZE -I"$(dirname "$(dirname "$(command -v node)")")/include/node" \
  "$control/control.cc" -o "$control/control.node"
# control NAME ENV_SETTING EXPECTED_REPORT
control() {
  if env "$2" LD_PRELOAD="$ASAN_LIB" ASAN_OPTIONS="detect_leaks=0:handle_segv=0" UBSAN_OPTIONS="halt_on_error=1" \
    node -e "require('$control/control.node')" >"$control/out.txt" 2>&1; then
    echo "asan: the $1 positive control ran without a report; the setup does not detect errors" >&2
    exit 2
  fi
  if ! grep -q "$3" "$control/out.txt"; then
    echo "asan: the $1 positive control failed, but not with the expected report:" >&2
    cat "$control/out.txt" >&2
    exit 2
  fi
}
control ASan CONTROL_ASAN=1 "heap-buffer-overflow"
control UBSan CONTROL_UBSAN=1 "signed integer overflow"
echo "asan: positive controls caught a heap-buffer-overflow and a signed-integer-overflow; running the tests"
rm -rf "$control"
trap - EXIT

if [ $# -gt 0 ]; then
  FILES="$*"
else
  FILES=$(ls test/kernels-*.test.ts test/simd.test.ts test/image.test.ts test/golden.test.ts test/model.test.ts \
    test/native-model.test.ts test/tasks-segmentation.test.ts test/reliability*.test.ts test/fuzz-native.test.ts \
    test/quant-golden.test.ts test/quant-formats.test.ts test/scheduler.test.ts 2>/dev/null)
fi

# handle_segv=0: V8 handles SIGSEGV itself (WebAssembly bounds traps); ASan's handler would take over.
# Errors in instrumented code are still caught by the instrumentation, not by the signal handler.
# halt_on_error / abort_on_error make any report kill the worker, which fails the vitest run.
export ASAN_OPTIONS="detect_leaks=0:handle_segv=0:halt_on_error=1:abort_on_error=1${ASAN_OPTIONS:+:$ASAN_OPTIONS}"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1${UBSAN_OPTIONS:+:$UBSAN_OPTIONS}"
export PALIGEMMA_ADDON="$ADDON"
export LD_PRELOAD="$ASAN_LIB"
# Sanitized kernels are several times slower: give tests more time than the default 60 s.
# shellcheck disable=SC2086
exec npx vitest run --testTimeout=300000 --hookTimeout=300000 $FILES
