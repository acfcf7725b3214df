#include "mapped_file.h"

#include <stdexcept>

#include "../errors.h"
#include "../fault_guard.h"

namespace pg {
namespace {

// The error of a file found changed; `what` says how, `when` since when.
CodedError ChangedError(const std::string& path, const std::string& what, const char* when = "since the model was loaded") {
  return CodedError("MODEL_FILE_CHANGED", path,
                    "the file " + what + " " + when + "; load the model again (a model file must not be rewritten or "
                    "truncated while it is in use: write a new file and rename it over the old one instead)");
}

}  // namespace

void MappedFile::check(bool during_call) const {
  const char* when = during_call ? "during the call" : "since the model was loaded";
  const Stamp now = stamp();
  if (now.size != mapped_.size)
    throw ChangedError(path_, "changed size from " + std::to_string(mapped_.size) + " to " + std::to_string(now.size) + " bytes", when);
  if (now.mtime_sec != mapped_.mtime_sec || now.mtime_nsec != mapped_.mtime_nsec) throw ChangedError(path_, "was modified", when);
}

}  // namespace pg

#if defined(_WIN32)
#include "../win.h"

#include <mutex>

// Windows offers large pages only for pagefile-backed sections (SEC_LARGE_PAGES), never for a view
// of a file, so the weights are mapped with normal pages.

namespace pg {
namespace {

// The system's text for a GetLastError() code, without the trailing ".\r\n".
std::string error_text(DWORD code) {
  char* buf = nullptr;
  const DWORD n = FormatMessageA(
      FORMAT_MESSAGE_ALLOCATE_BUFFER | FORMAT_MESSAGE_FROM_SYSTEM | FORMAT_MESSAGE_IGNORE_INSERTS, nullptr, code,
      0, reinterpret_cast<char*>(&buf), 0, nullptr);
  std::string text = n ? std::string(buf, n) : "error " + std::to_string(code);
  LocalFree(buf);
  while (!text.empty() && (text.back() == '\n' || text.back() == '\r' || text.back() == '.')) text.pop_back();
  return text;
}

std::runtime_error os_error(const std::string& path, const char* what, DWORD code) {
  return std::runtime_error(path + ": " + what + ": " + error_text(code));
}

// Windows file APIs take UTF-16; the path arrives as UTF-8 from JavaScript.
std::wstring widen(const std::string& path) {
  const int len = static_cast<int>(path.size());
  const int n = MultiByteToWideChar(CP_UTF8, MB_ERR_INVALID_CHARS, path.data(), len, nullptr, 0);
  if (n <= 0) throw std::runtime_error(path + ": cannot open: the path is not valid UTF-8");
  std::wstring wide(static_cast<size_t>(n), L'\0');
  MultiByteToWideChar(CP_UTF8, MB_ERR_INVALID_CHARS, path.data(), len, &wide[0], n);
  return wide;
}

// VirtualLock counts against the process's minimum working set, so lock() grows the working set by
// the locked size and unmapping shrinks it back: a read-modify-write, one at a time.
std::mutex g_working_set_mu;

}  // namespace

MappedFile::MappedFile(const std::string& path) : path_(path) {
  // FILE_SHARE_DELETE: as on POSIX, the file may be renamed or replaced while it is mapped.
  HANDLE file = CreateFileW(widen(path).c_str(), GENERIC_READ, FILE_SHARE_READ | FILE_SHARE_DELETE, nullptr,
                            OPEN_EXISTING, FILE_ATTRIBUTE_NORMAL, nullptr);
  if (file == INVALID_HANDLE_VALUE) throw os_error(path, "cannot open", GetLastError());
  LARGE_INTEGER size;
  if (!GetFileSizeEx(file, &size)) {
    const DWORD e = GetLastError();
    CloseHandle(file);
    throw os_error(path, "cannot stat", e);
  }
  size_ = static_cast<size_t>(size.QuadPart);
  if (size_ == 0) {
    CloseHandle(file);
    throw std::runtime_error(path + ": file is empty");
  }
  HANDLE mapping = CreateFileMappingW(file, nullptr, PAGE_READONLY, 0, 0, nullptr);
  const DWORD e = GetLastError();
  if (!mapping) {
    CloseHandle(file);
    throw os_error(path, "cannot map", e);
  }
  void* view = MapViewOfFile(mapping, FILE_MAP_READ, 0, 0, 0);
  const DWORD view_error = GetLastError();
  CloseHandle(mapping);  // the view keeps the mapping alive
  if (!view) {
    CloseHandle(file);
    throw os_error(path, "cannot map", view_error);
  }
  data_ = static_cast<const uint8_t*>(view);
  file_ = file;  // kept open for check()
  mapped_ = stamp();
}

MappedFile::Stamp MappedFile::stamp() const {
  BY_HANDLE_FILE_INFORMATION info;
  if (!GetFileInformationByHandle(static_cast<HANDLE>(file_), &info))
    throw ChangedError(path_, "can no longer be read (" + error_text(GetLastError()) + ")");
  Stamp s;
  s.size = (static_cast<uint64_t>(info.nFileSizeHigh) << 32) | info.nFileSizeLow;
  s.mtime_sec = (static_cast<int64_t>(info.ftLastWriteTime.dwHighDateTime) << 32) | info.ftLastWriteTime.dwLowDateTime;
  return s;
}

MappedFile::~MappedFile() {
  if (file_) CloseHandle(static_cast<HANDLE>(file_));
  if (!data_) return;
  UnmapViewOfFile(data_);  // unlocks the pages too
  if (locked_) {
    std::lock_guard<std::mutex> guard(g_working_set_mu);
    SIZE_T lo = 0, hi = 0;
    if (GetProcessWorkingSetSize(GetCurrentProcess(), &lo, &hi) && lo > size_ && hi > size_)
      SetProcessWorkingSetSize(GetCurrentProcess(), lo - size_, hi - size_);
  }
}

void MappedFile::lock() {
  if (locked_) return;
  std::lock_guard<std::mutex> guard(g_working_set_mu);
  HANDLE self = GetCurrentProcess();
  SIZE_T lo = 0, hi = 0;
  const bool sized = GetProcessWorkingSetSize(self, &lo, &hi) != 0;
  if (!sized || !SetProcessWorkingSetSize(self, lo + size_, hi + size_) ||
      !VirtualLock(const_cast<uint8_t*>(data_), size_)) {
    const DWORD e = GetLastError();
    if (sized) SetProcessWorkingSetSize(self, lo, hi);
    throw std::runtime_error(path_ + ": cannot lock " + std::to_string(size_) + " bytes in memory (" + error_text(e) +
                             "; the working set was " + std::to_string(lo) + ".." + std::to_string(hi) + " bytes)");
  }
  locked_ = true;
}

}  // namespace pg

#else  // POSIX
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace pg {

MappedFile::MappedFile(const std::string& path) : path_(path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) throw std::runtime_error(path + ": cannot open: " + std::strerror(errno));
  struct stat st;
  if (::fstat(fd, &st) != 0) {
    const int e = errno;
    ::close(fd);
    throw std::runtime_error(path + ": cannot stat: " + std::strerror(e));
  }
  size_ = static_cast<size_t>(st.st_size);
  if (size_ == 0) {
    ::close(fd);
    throw std::runtime_error(path + ": file is empty");
  }
  void* p = ::mmap(nullptr, size_, PROT_READ, MAP_SHARED, fd, 0);
  const int e = errno;
  if (p == MAP_FAILED) {
    ::close(fd);
    throw std::runtime_error(path + ": cannot mmap: " + std::strerror(e) +
                             (e == ENODEV ? " (its file system cannot memory-map files: copy it to a local disk)" : ""));
  }
  data_ = static_cast<const uint8_t*>(p);
  fd_ = fd;  // kept open for check()
  mapped_ = stamp();
  register_mapped_range(data_, size_);
#if defined(MADV_HUGEPAGE)
  // A hint: where the kernel and file system cache files in large folios (Linux 6.x on ext4, xfs…),
  // page faults then read 2 MiB at a time and map each with one TLB entry (observed: ~99% of a
  // file PMD-mapped with the hint, ~78% without). Refused on older kernels, which is fine.
  ::madvise(p, size_, MADV_HUGEPAGE);
#endif
}

MappedFile::Stamp MappedFile::stamp() const {
  struct stat st;
  if (::fstat(fd_, &st) != 0) throw ChangedError(path_, std::string("can no longer be read (") + std::strerror(errno) + ")");
  Stamp s;
  s.size = static_cast<uint64_t>(st.st_size);
#if defined(__APPLE__)
  s.mtime_sec = st.st_mtimespec.tv_sec;
  s.mtime_nsec = st.st_mtimespec.tv_nsec;
#else
  s.mtime_sec = st.st_mtim.tv_sec;
  s.mtime_nsec = st.st_mtim.tv_nsec;
#endif
  return s;
}

MappedFile::~MappedFile() {
  if (data_) {
    unregister_mapped_range(data_);
    ::munmap(const_cast<uint8_t*>(data_), size_);
  }
  if (fd_ >= 0) ::close(fd_);
}

void MappedFile::lock() {
  if (locked_) return;
  if (::mlock(data_, size_) != 0) {
    const int e = errno;
    struct rlimit rl;
    std::string limit = "unknown";
    if (::getrlimit(RLIMIT_MEMLOCK, &rl) == 0)
      limit = rl.rlim_cur == RLIM_INFINITY ? "unlimited" : std::to_string(rl.rlim_cur) + " bytes";
    throw std::runtime_error(path_ + ": cannot lock " + std::to_string(size_) + " bytes in memory (" +
                             std::strerror(e) + "; RLIMIT_MEMLOCK is " + limit + ")");
  }
  locked_ = true;
}

}  // namespace pg
#endif
