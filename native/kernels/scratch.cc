#include "scratch.h"

#include <mutex>
#include <vector>

namespace pg {
namespace {

// The buffers not lent out, and how many are lent. The lists always have room for every buffer, so
// that giving one back (in a destructor) never allocates.
struct FreeBuffers {
  std::mutex mu;
  std::vector<std::unique_ptr<uint8_t[]>> memory;
  std::vector<size_t> sizes;
  size_t lent = 0;
};

FreeBuffers& free_buffers() {
  static FreeBuffers* f = new FreeBuffers;  // never destroyed: a lease may end after static destructors ran
  return *f;
}

}  // namespace

ScratchLease::ScratchLease(size_t bytes) {
  FreeBuffers& f = free_buffers();
  {
    std::lock_guard<std::mutex> lock(f.mu);
    f.memory.reserve(f.memory.size() + f.lent + 1);  // room for this lease's buffer too
    f.sizes.reserve(f.memory.size() + f.lent + 1);
    // The smallest free buffer that is large enough; else the largest, to grow.
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
    f.lent++;
  }
  if (size_ < bytes) {
    memory_.reset();  // before allocating the larger one: the two need not coexist
    size_ = 0;
    try {
      memory_.reset(new uint8_t[bytes + 63]);
    } catch (...) {  // nothing stays lent
      std::lock_guard<std::mutex> lock(f.mu);
      f.lent--;
      throw;
    }
    size_ = bytes;
  }
  uint8_t* p = memory_.get();
  data_ = p + (64 - reinterpret_cast<uintptr_t>(p) % 64) % 64;
}

ScratchLease::~ScratchLease() {
  FreeBuffers& f = free_buffers();
  std::lock_guard<std::mutex> lock(f.mu);
  f.lent--;
  f.memory.push_back(std::move(memory_));  // within the capacity reserved when it was lent
  f.sizes.push_back(size_);
}

}  // namespace pg
