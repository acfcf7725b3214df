// A read-only memory map of a model file: weights are used in place, never copied.
// POSIX mmap, or a Windows file mapping; the path is UTF-8 on every OS.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

namespace pg {

class MappedFile {
 public:
  // Throws std::runtime_error naming the path and the OS error.
  explicit MappedFile(const std::string& path);
  ~MappedFile();
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;

  const uint8_t* data() const { return data_; }
  size_t size() const { return size_; }
  const std::string& path() const { return path_; }

  // Pins the pages in RAM (mlock / VirtualLock) so idle weights are not reclaimed. Throws when the
  // OS refuses (usually RLIMIT_MEMLOCK, or the working-set quota on Windows), with the limit in the
  // message.
  void lock();

 private:
  std::string path_;
  const uint8_t* data_ = nullptr;
  size_t size_ = 0;
  bool locked_ = false;
};

}  // namespace pg
