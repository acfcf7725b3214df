// ScratchLease (native/kernels/scratch.h), standalone: buffers are lent out and given back, shared
// by the threads that call in turn (the point: a buffer per calling thread kept one copy per libuv
// thread), distinct while lent at the same time, 64-byte aligned, grown when too small.
// Prints "ok scratch: N checks" or a FAIL line per broken property.
#include <atomic>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <thread>
#include <vector>

#include "../../native/kernels/scratch.h"

namespace {

int failures = 0, checks = 0;
void check(bool ok, const char* what) {
  checks++;
  if (!ok) {
    failures++;
    std::printf("FAIL scratch: %s\n", what);
  }
}

}  // namespace

int main() {
  using pg::ScratchLease;
  uint8_t* first = nullptr;
  {
    ScratchLease a(1 << 20);
    first = a.data();
    check(reinterpret_cast<uintptr_t>(first) % 64 == 0, "64-byte aligned");
    std::memset(a.data(), 1, 1 << 20);  // all of it is usable
  }
  // Calls in turn from other threads get the same buffer back.
  for (int t = 0; t < 4; t++) {
    uint8_t* got = nullptr;
    std::thread([&] {
      ScratchLease b(1 << 19);
      got = b.data();
    }).join();
    check(got == first, "a later call from another thread reuses the buffer given back");
  }
  // Leases held at the same time are distinct buffers.
  {
    ScratchLease a(1 << 20), b(1 << 20);
    check(a.data() != b.data(), "two leases at once get two buffers");
    std::memset(a.data(), 2, 1 << 20);
    std::memset(b.data(), 3, 1 << 20);
    check(a.data()[(1 << 20) - 1] == 2 && b.data()[0] == 3, "the two buffers do not overlap");
  }
  // A larger request than any buffer grows one, which the next such request gets back.
  uint8_t* grown = nullptr;
  {
    ScratchLease big(8 << 20);
    std::memset(big.data(), 4, 8 << 20);
    grown = big.data();
  }
  {
    ScratchLease again(8 << 20);
    check(again.data() == grown, "a grown buffer is kept for the next large request");
  }
  // Threads hammering it concurrently never share a buffer while both hold it.
  std::atomic<int> overlaps{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 8; t++) {
    threads.emplace_back([&overlaps, t] {
      for (int i = 0; i < 2000; i++) {
        ScratchLease l(4096 + 64 * ((t + i) % 7));
        std::memset(l.data(), t, 4096);
        for (int j = 0; j < 4096; j += 512)
          if (l.data()[j] != t) overlaps++;
      }
    });
  }
  for (auto& th : threads) th.join();
  check(overlaps.load() == 0, "concurrent leases never share a buffer");
  if (failures == 0) std::printf("ok scratch: %d checks\n", checks);
  return failures == 0 ? 0 : 1;
}
