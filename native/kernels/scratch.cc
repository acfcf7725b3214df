#include "scratch.h"

#include <mutex>
#include <vector>

namespace pg {
namespace {

// The buffers not lent out.
struct FreeBuffers {
  std::mutex mu;
  std::vector<std::unique_ptr<uint8_t[]>> memory;
  std::vector<size_t> sizes;
};

FreeBuffers& free_buffers() {
  static FreeBuffers* f = new FreeBuffers;  // never destroyed: a lease may end after static destructors ran
  return *f;
}

}  // namespace

ScratchLease::ScratchLease(size_t bytes) {
  FreeBuffers& f = free_buffers();
  {
    // The smallest free buffer that is large enough; else the largest, to grow.
    std::lock_guard<std::mutex> lock(f.mu);
    const size_t none = f.sizes.size();
    size_t pick = none;
    for (size_t i = 0; i < f.sizes.size(); i++)
      if (f.sizes[i] >= bytes && (pick == none || f.sizes[i] < f.sizes[pick])) pick = i;
    if (pick == none)
      for (size_t i = 0; i < f.sizes.size(); i++)
        if (pick == none || f.sizes[i] > f.sizes[pick]) pick = i;
    if (pick != none) {
      memory_ = std::move(f.memory[pick]);
      size_ = f.sizes[pick];
      f.memory.erase(f.memory.begin() + static_cast<std::ptrdiff_t>(pick));
      f.sizes.erase(f.sizes.begin() + static_cast<std::ptrdiff_t>(pick));
    }
  }
  if (size_ < bytes) {
    memory_.reset();  // before allocating the larger one: the two need not coexist
    size_ = 0;
    memory_.reset(new uint8_t[bytes + 63]);  // a std::bad_alloc leaves nothing lent
    size_ = bytes;
  }
  uint8_t* p = memory_.get();
  data_ = p + (64 - reinterpret_cast<uintptr_t>(p) % 64) % 64;
}

ScratchLease::~ScratchLease() {
  FreeBuffers& f = free_buffers();
  std::lock_guard<std::mutex> lock(f.mu);
  f.memory.push_back(std::move(memory_));
  f.sizes.push_back(size_);
}

}  // namespace pg
