// FileBytes — the bytes of a model file, however they reached kiln.
//
// Memory-mapped (the default: stored records and tensors become views into the map, and no
// weight page is touched until used), read into memory (for files that may change while
// loaded), or borrowed from a caller-owned buffer without copying (the caller keeps it alive
// and unchanged for as long as anything loaded from it lives). Move-only; unmaps on
// destruction. Shared by everything that views into it through a shared_ptr.
#pragma once

#include <cstddef>
#include <memory>
#include <span>
#include <string>

namespace kiln::format {

class FileBytes {
 public:
  static std::shared_ptr<const FileBytes> map(const std::string& path);
  static std::shared_ptr<const FileBytes> read(const std::string& path);
  static std::shared_ptr<const FileBytes> borrow(std::span<const std::byte> bytes, std::string name);

  FileBytes(const FileBytes&) = delete;
  FileBytes& operator=(const FileBytes&) = delete;
  ~FileBytes();

  std::span<const std::byte> bytes() const { return {data_, size_}; }
  // The path, or the name given to a borrowed buffer; used in every error message.
  const std::string& name() const { return name_; }

 private:
  FileBytes() = default;
  const std::byte* data_ = nullptr;
  std::size_t size_ = 0;
  std::string name_;
  void* mapping_ = nullptr;           // mmap'ed region to unmap, if mapped
  std::unique_ptr<std::byte[]> owned_;  // the copy, if read into memory
};

}  // namespace kiln::format
