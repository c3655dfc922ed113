// Archive — a TorchScript archive (`torch.jit.save` output) read safely and without copies.
//
// Opens the zip, finds the archive's root folder (whatever prefix the first record has:
// the saved file's base name, or "archive"), reads the version record, `byteorder`,
// `constants.pkl`, `data.pkl` (the module object tree) and the `code/` sources, and exposes
// tensors as views into the file's bytes. Nothing in the archive is executed: pickles go
// through the data-only unpickler and code stays text until the importer parses it.
// Legacy `model.json` archives and files without `code/` are refused with a clear message.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "format/file_bytes.hpp"
#include "format/pickle.hpp"
#include "format/zip_reader.hpp"

namespace kiln::format {

struct ArchiveOptions {
  bool verify_crc = false;  // recompute every record's CRC-32 (kiln inspect --verify)
};

// A tensor stored in the archive, as a view into its storage record.
struct TensorData {
  std::string record;                // e.g. "model/data/3"
  std::string storage_type;          // "FloatStorage", ...
  std::optional<DType> dtype;        // empty for quantized or complex storages
  std::size_t element_size = 0;
  std::int64_t storage_offset = 0;   // elements
  std::vector<std::int64_t> sizes;
  std::vector<std::int64_t> strides;
  bool quantized = false;
  std::span<const std::byte> storage;  // the whole storage record, in place

  std::int64_t numel() const;
  bool is_contiguous() const;
  // Bytes of the tensor's elements when it is contiguous (starting at storage_offset).
  std::span<const std::byte> contiguous_bytes() const;
};

class Archive {
 public:
  static Archive open(const std::string& path, ArchiveOptions options = {});
  // Reads the file into memory instead of mapping it (for files that may change).
  static Archive open_copy(const std::string& path, ArchiveOptions options = {});
  // Loads from caller-owned bytes without copying; they must outlive the Archive.
  static Archive from_buffer(std::span<const std::byte> bytes, std::string name, ArchiveOptions options = {});

  const std::string& source() const { return zip_->source(); }
  const ZipReader& zip() const { return *zip_; }
  const std::string& root() const { return root_; }      // "bert_tiny_3in"

  int version() const { return version_; }               // 1..10
  const std::string& version_record() const { return version_record_; }  // "version" or ".data/version"
  const std::string& byteorder() const { return byteorder_; }            // "little" (default when absent)
  bool has_byteorder_record() const { return has_byteorder_record_; }

  const PickleRef& data() const { return data_; }                   // root module object
  const std::vector<PickleRef>& constants() const { return constants_; }  // CONSTANTS.cN
  // Source files keyed by qualifier: "code/__torch__/a/b.py" -> "__torch__.a.b".
  const std::map<std::string, std::string>& code() const { return code_; }

  bool is_mobile() const { return is_mobile_; }           // has bytecode.pkl (ignored)
  bool has_traced_inputs() const { return has_traced_inputs_; }
  bool has_debug_pkl() const { return has_debug_pkl_; }
  bool has_serialization_id() const { return has_serialization_id_; }
  std::vector<std::string> extra_files() const;            // names under extra/

  // Resolves a tensor from data.pkl (or from constants when `constant` is true) to a view,
  // checking that the storage record exists and holds every element the view reaches.
  TensorData tensor(const PickleTensor& t, bool constant = false) const;

  // The full record name for a name relative to the root ("data.pkl" -> "model/data.pkl").
  std::string record_name(const std::string& relative) const { return root_ + "/" + relative; }

 private:
  static Archive load(std::shared_ptr<const FileBytes> file, ArchiveOptions options);
  Archive() = default;

  std::shared_ptr<const ZipReader> zip_;
  std::string root_;
  int version_ = 0;
  std::string version_record_;
  std::string byteorder_ = "little";
  bool has_byteorder_record_ = false;
  PickleRef data_;
  std::vector<PickleRef> constants_;
  std::map<std::string, std::string> code_;
  bool is_mobile_ = false;
  bool has_traced_inputs_ = false;
  bool has_debug_pkl_ = false;
  bool has_serialization_id_ = false;
};

}  // namespace kiln::format
