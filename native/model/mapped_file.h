// A read-only memory map of a model file: weights are used in place, never copied.
// POSIX mmap, or a Windows file mapping; the path is UTF-8 on every OS.
//
// The file stays open, so that check() can tell whether it changed since it was mapped: a file
// rewritten or cut short under the map would feed the model other weights, or pages that no longer
// exist (SIGBUS, which native/fault_guard.h turns into a failed call). A file renamed, replaced or
// deleted at its path is no change: the map holds the original file's data until it is unmapped.
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

  // Throws CodedError MODEL_FILE_CHANGED naming the file when its size or modification time is no
  // longer what it was when it was mapped (it was written to, or truncated). `during_call`: the
  // check follows a failed read of the map, so the change happened during the call.
  void check(bool during_call = false) const;

 private:
  // What check() compares: size and modification time, as the OS reports them.
  struct Stamp {
    uint64_t size = 0;
    int64_t mtime_sec = 0, mtime_nsec = 0;
  };
  Stamp stamp() const;

  std::string path_;
  const uint8_t* data_ = nullptr;
  size_t size_ = 0;
  bool locked_ = false;
#if defined(_WIN32)
  void* file_ = nullptr;  // the open HANDLE
#else
  int fd_ = -1;
#endif
  Stamp mapped_;  // at mapping time
};

}  // namespace pg
