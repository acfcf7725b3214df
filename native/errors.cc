#include "errors.h"

#include <cstdint>
#include <cstdio>

#if defined(_WIN32)
#include "win.h"
#else
#include <sys/resource.h>
#include <unistd.h>
#if defined(__APPLE__)
#include <sys/sysctl.h>
#endif
#endif

namespace pg {
namespace {

// Bytes in words: "12.0 MiB", "3.5 GiB".
std::string BytesText(size_t bytes) {
  if (bytes == static_cast<size_t>(-1)) return "more than the address space";
  const char* units[] = {"bytes", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"};
  double v = static_cast<double>(bytes);
  int u = 0;
  while (v >= 1024 && u < 6) {
    v /= 1024;
    u++;
  }
  if (u == 0) return std::to_string(bytes) + " bytes";
  char text[32];
  std::snprintf(text, sizeof(text), "%.1f %s", v, units[u]);
  return text;
}

size_t PhysicalMemory() {
#if defined(_WIN32)
  MEMORYSTATUSEX status;
  status.dwLength = sizeof(status);
  if (GlobalMemoryStatusEx(&status)) return static_cast<size_t>(status.ullTotalPhys);
#elif defined(__APPLE__)
  uint64_t bytes = 0;
  size_t size = sizeof(bytes);
  if (sysctlbyname("hw.memsize", &bytes, &size, nullptr, 0) == 0) return static_cast<size_t>(bytes);
#else
  const long pages = sysconf(_SC_PHYS_PAGES), page = sysconf(_SC_PAGESIZE);
  if (pages > 0 && page > 0) return static_cast<size_t>(pages) * static_cast<size_t>(page);
#endif
  return static_cast<size_t>(-1);  // unknown: no limit but the allocator's
}

}  // namespace

CodedError OutOfMemory(const std::string& what, size_t bytes) {
  const size_t limit = max_buffer_bytes();
  const std::string why = bytes > limit ? "more than the " + BytesText(limit) +
                                              " one buffer may take (the machine's memory, or the process's address-space limit)"
                                        : "which the system could not allocate";
  return CodedError("OUT_OF_MEMORY", "", "out of memory: " + what + " needs " + BytesText(bytes) + ", " + why);
}

size_t max_buffer_bytes() {
  size_t limit = PhysicalMemory();
#if !defined(_WIN32)
  struct rlimit rl;
  if (getrlimit(RLIMIT_AS, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY && static_cast<size_t>(rl.rlim_cur) < limit)
    limit = static_cast<size_t>(rl.rlim_cur);
#endif
  return limit;
}

void check_buffer_bytes(size_t bytes, const std::string& what) {
  if (bytes > max_buffer_bytes()) throw OutOfMemory(what, bytes);
}

}  // namespace pg
