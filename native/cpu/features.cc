#include "features.h"

#if defined(__x86_64__) || defined(_M_X64)
#if defined(_MSC_VER) && !defined(__clang__)
#include <immintrin.h>
#include <intrin.h>
#else
#include <cpuid.h>
#endif
#elif defined(__aarch64__)
#if defined(__linux__)
#include <asm/hwcap.h>
#include <sys/auxv.h>
#elif defined(__APPLE__)
#include <sys/sysctl.h>
#endif
#endif

namespace pg {
namespace {

#if defined(__x86_64__) || defined(_M_X64)
struct Regs {
  unsigned a = 0, b = 0, c = 0, d = 0;
};

// cpuid leaf/subleaf; all zero when the leaf is beyond the CPU's highest one.
Regs cpuid(unsigned leaf, unsigned subleaf) {
  Regs r;
#if defined(_MSC_VER) && !defined(__clang__)
  int v[4];
  __cpuid(v, static_cast<int>(leaf & 0x80000000u));
  if (static_cast<unsigned>(v[0]) < leaf) return r;
  __cpuidex(v, static_cast<int>(leaf), static_cast<int>(subleaf));
  r = {static_cast<unsigned>(v[0]), static_cast<unsigned>(v[1]), static_cast<unsigned>(v[2]), static_cast<unsigned>(v[3])};
#else
  if (__get_cpuid_max(leaf & 0x80000000u, nullptr) < leaf) return r;
  __cpuid_count(leaf, subleaf, r.a, r.b, r.c, r.d);
#endif
  return r;
}

// XCR0: which register states the OS saves on context switch. cpuid alone says what the
// silicon has; without OS support, touching ymm/zmm registers faults.
unsigned long long read_xcr0() {
#if defined(_MSC_VER) && !defined(__clang__)
  return _xgetbv(0);
#else
  unsigned int eax, edx;
  __asm__ volatile("xgetbv" : "=a"(eax), "=d"(edx) : "c"(0));
  return (static_cast<unsigned long long>(edx) << 32) | eax;
#endif
}

constexpr bool bit(unsigned reg, int n) { return (reg >> n) & 1u; }

CpuFeatures detect() {
  CpuFeatures f;
  const Regs l1 = cpuid(1, 0);
  const bool osxsave = bit(l1.c, 27);
  f.sse42 = bit(l1.c, 20);
  const unsigned long long xcr0 = osxsave ? read_xcr0() : 0;
  const bool os_avx = (xcr0 & 0x6) == 0x6;       // xmm + ymm
  const bool os_avx512 = (xcr0 & 0xE6) == 0xE6;  // + opmask, zmm0-15 high, zmm16-31
  f.avx = os_avx && bit(l1.c, 28);
  f.fma = f.avx && bit(l1.c, 12);
  f.f16c = f.avx && bit(l1.c, 29);
  const Regs l7 = cpuid(7, 0);
  f.avx2 = f.avx && bit(l7.b, 5);
  if (os_avx512) {
    f.avx512f = bit(l7.b, 16);
    f.avx512dq = f.avx512f && bit(l7.b, 17);
    f.avx512bw = f.avx512f && bit(l7.b, 30);
    f.avx512vl = f.avx512f && bit(l7.b, 31);
    f.avx512vnni = f.avx512f && bit(l7.c, 11);
    f.avx512fp16 = f.avx512f && bit(l7.d, 23);
  }
  if (f.avx512f && l7.a >= 1) f.avx512bf16 = bit(cpuid(7, 1).a, 5);
  return f;
}
#elif defined(__aarch64__)
#if defined(__APPLE__)
bool sysctl_flag(const char* name) {
  int value = 0;
  size_t size = sizeof(value);
  return sysctlbyname(name, &value, &size, nullptr, 0) == 0 && value != 0;
}
#endif

CpuFeatures detect() {
  CpuFeatures f;
  f.neon = true;  // mandatory on AArch64
#if defined(__linux__)
  const unsigned long hw = getauxval(AT_HWCAP);
  const unsigned long hw2 = getauxval(AT_HWCAP2);
  f.asimdhp = hw & HWCAP_ASIMDHP;
#ifdef HWCAP_ASIMDDP
  f.dotprod = hw & HWCAP_ASIMDDP;
#endif
#ifdef HWCAP2_BF16
  f.bf16 = hw2 & HWCAP2_BF16;
#else
  (void)hw2;
#endif
#elif defined(__APPLE__)
  // hw.optional.arm.FEAT_* from macOS 12; hw.optional.neon_fp16 before.
  f.asimdhp = sysctl_flag("hw.optional.arm.FEAT_FP16") || sysctl_flag("hw.optional.neon_fp16");
  f.bf16 = sysctl_flag("hw.optional.arm.FEAT_BF16");
#endif
  return f;
}
#else
CpuFeatures detect() { return CpuFeatures{}; }
#endif

}  // namespace

const CpuFeatures& cpu_features() {
  static const CpuFeatures features = detect();
  return features;
}

}  // namespace pg
