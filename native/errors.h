// Errors native code reports with a stable `code` (and the file at fault, when there is one).
// native/bind.cc turns them into JS errors carrying `code` and `path`, and lib/native.ts into the
// package's typed errors (NativeErrorCode there lists the codes). Anything else a native call throws
// is a bug, reported as such.
#pragma once

#include <cstddef>
#include <stdexcept>
#include <string>
#include <vector>

namespace pg {

class CodedError : public std::runtime_error {
 public:
  CodedError(std::string code, std::string path, const std::string& message)
      : std::runtime_error(message), code(std::move(code)), path(std::move(path)) {}
  std::string code;
  std::string path;  // empty when no file is at fault
};

// OUT_OF_MEMORY: the buffer `what` needed `bytes` and could not have them.
CodedError OutOfMemory(const std::string& what, size_t bytes);

// The most bytes one native buffer may take: the machine's physical memory, or less under an
// address-space limit (RLIMIT_AS). A larger buffer could only fail, or page the machine to a halt.
size_t max_buffer_bytes();

// Throws OutOfMemory(what, bytes) when `bytes` exceeds max_buffer_bytes(), before anything is allocated.
void check_buffer_bytes(size_t bytes, const std::string& what);

// Resizes a large buffer: checked against the limit first, and a failed allocation is an
// OUT_OF_MEMORY naming `what` (a bare std::bad_alloc says nothing of what was being allocated).
template <class T>
void resize_buffer(std::vector<T>& v, size_t n, const char* what) {
  if (n <= v.size()) {
    v.resize(n);
    return;
  }
  const size_t bytes = n > static_cast<size_t>(-1) / sizeof(T) ? static_cast<size_t>(-1) : n * sizeof(T);
  check_buffer_bytes(bytes, what);
  try {
    v.resize(n);
  } catch (const std::bad_alloc&) {
    throw OutOfMemory(what, bytes);
  } catch (const std::length_error&) {
    throw OutOfMemory(what, bytes);
  }
}

}  // namespace pg
