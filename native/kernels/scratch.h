// Scratch memory for one kernel call (a GEMM's packed operands and partial sums, a GEMV's quantized
// x), lent from a process-wide set of buffers and given back when the call ends.
//
// Why shared: the calls come from whichever libuv worker thread runs a model's job, and a buffer per
// calling thread (as these were) kept one copy per thread that ever ran a prefill — about 25 MB more
// peak RSS in a describe() of the full-size model. Buffers are kept (and grown, never shrunk) for
// reuse: fresh pages are slow to fault in on some VMs. The set holds as many buffers as calls ever
// ran at the same time.
//
// Compiled once, without ISA flags (kernels/scratch.cc): the kernel translation units of every
// variant share it.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>

namespace pg {

class ScratchLease {
 public:
  // At least `bytes` bytes, aligned to 64; throws std::bad_alloc (from the calling thread, before
  // any parallel work) when it cannot grow a buffer to that size.
  explicit ScratchLease(size_t bytes);
  ~ScratchLease();  // gives the buffer back
  ScratchLease(const ScratchLease&) = delete;
  ScratchLease& operator=(const ScratchLease&) = delete;

  uint8_t* data() const { return data_; }

 private:
  std::unique_ptr<uint8_t[]> memory_;
  size_t size_ = 0;  // bytes usable from data_
  uint8_t* data_ = nullptr;
};

}  // namespace pg
