// FileBytes: the three ways a model file's bytes reach kiln.
#include "format/file_bytes.hpp"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstring>
#include <utility>

#include "kiln/error.hpp"

namespace kiln::format {

namespace {

// read() copies the whole file onto the heap; past this a typo'd path to a disk image
// would exhaust memory long before anything could report it, and map() serves big models.
constexpr std::uint64_t kMaxReadSize = std::uint64_t{64} << 30;

[[noreturn]] void fail_errno(const std::string& path, const char* what, int err) {
  throw Error::bad_input(path, "", std::string(what) + ": " + std::strerror(err));
}

// Closes the descriptor on every path out, including exceptions; the mapping (if any)
// outlives it, as POSIX allows.
class Fd {
 public:
  explicit Fd(const std::string& path) : fd_(::open(path.c_str(), O_RDONLY | O_CLOEXEC)) {
    if (fd_ < 0) fail_errno(path, "cannot open", errno);
  }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  ~Fd() { ::close(fd_); }
  int get() const { return fd_; }

 private:
  int fd_;
};

// The file's size, refusing what cannot be a model file: directories, pipes and devices
// either have no meaningful size or cannot be mapped.
std::uint64_t regular_file_size(const Fd& fd, const std::string& path) {
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0) fail_errno(path, "cannot stat", errno);
  if (!S_ISREG(st.st_mode)) throw Error::bad_input(path, "", "not a regular file");
  if (st.st_size < 0) throw Error::bad_input(path, "", "the file reports a negative size");
  auto size = static_cast<std::uint64_t>(st.st_size);
  if constexpr (sizeof(std::size_t) < sizeof(std::uint64_t)) {
    if (size > SIZE_MAX) {
      throw Error::bad_input(path, "", "file of " + std::to_string(size) +
                                           " bytes does not fit in this process's address space");
    }
  }
  return size;
}

}  // namespace

FileBytes::~FileBytes() {
  if (mapping_ != nullptr) ::munmap(mapping_, size_);
}

std::shared_ptr<const FileBytes> FileBytes::map(const std::string& path) {
  Fd fd(path);
  const std::uint64_t size = regular_file_size(fd, path);
  std::shared_ptr<FileBytes> out(new FileBytes());
  out->name_ = path;
  // mmap refuses a zero length, and an empty file has nothing to map anyway.
  if (size == 0) return out;
  void* p = ::mmap(nullptr, static_cast<std::size_t>(size), PROT_READ, MAP_PRIVATE, fd.get(), 0);
  if (p == MAP_FAILED) fail_errno(path, "cannot map", errno);
  out->mapping_ = p;
  out->data_ = static_cast<const std::byte*>(p);
  out->size_ = static_cast<std::size_t>(size);
  return out;
}

std::shared_ptr<const FileBytes> FileBytes::read(const std::string& path) {
  Fd fd(path);
  const std::uint64_t size = regular_file_size(fd, path);
  if (size > kMaxReadSize) {
    throw Error::bad_input(path, "", "file of " + std::to_string(size) +
                                         " bytes is larger than the " +
                                         std::to_string(kMaxReadSize >> 30) +
                                         " GiB that reading into memory allows; map it instead");
  }
  std::shared_ptr<FileBytes> out(new FileBytes());
  out->name_ = path;
  if (size == 0) return out;
  const auto n = static_cast<std::size_t>(size);
  out->owned_ = std::make_unique_for_overwrite<std::byte[]>(n);
  std::size_t done = 0;
  while (done < n) {
    // Linux moves at most about 2 GiB per read(); a short count is not an error.
    ssize_t got = ::read(fd.get(), out->owned_.get() + done, n - done);
    if (got < 0) {
      if (errno == EINTR) continue;
      fail_errno(path, "cannot read", errno);
    }
    if (got == 0) {
      throw Error::bad_input(path, "", "file shrank while being read: got " + std::to_string(done) +
                                           " of " + std::to_string(n) + " bytes");
    }
    done += static_cast<std::size_t>(got);
  }
  out->data_ = out->owned_.get();
  out->size_ = n;
  return out;
}

std::shared_ptr<const FileBytes> FileBytes::borrow(std::span<const std::byte> bytes,
                                                   std::string name) {
  std::shared_ptr<FileBytes> out(new FileBytes());
  out->name_ = std::move(name);
  out->data_ = bytes.data();
  out->size_ = bytes.size();
  return out;
}

}  // namespace kiln::format
