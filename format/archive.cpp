#include "format/archive.hpp"

#include <algorithm>
#include <charconv>
#include <limits>

#include "kiln/error.hpp"

namespace kiln::format {

namespace {

std::string as_text(const std::vector<std::byte>& bytes) {
  return std::string(reinterpret_cast<const char*>(bytes.data()), bytes.size());
}

std::string trim(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == '\r' || s.back() == ' ')) s.pop_back();
  size_t i = 0;
  while (i < s.size() && s[i] == ' ') ++i;
  return s.substr(i);
}

bool starts_with(const std::string& s, const std::string& prefix) {
  return s.size() >= prefix.size() && s.compare(0, prefix.size(), prefix) == 0;
}

bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

// "code/__torch__/a/b.py" -> "__torch__.a.b"
std::string qualifier_of(const std::string& relative) {
  std::string q = relative.substr(5, relative.size() - 5 - 3);
  std::replace(q.begin(), q.end(), '/', '.');
  return q;
}

}  // namespace

std::int64_t TensorData::numel() const {
  std::int64_t n = 1;
  for (std::int64_t s : sizes) n *= s;  // sizes were bounds-checked by Archive::tensor
  return n;
}

bool TensorData::is_contiguous() const {
  std::int64_t expected = 1;
  for (size_t i = sizes.size(); i-- > 0;) {
    if (sizes[i] != 1 && strides[i] != expected) return false;
    expected *= sizes[i];
  }
  return true;
}

std::span<const std::byte> TensorData::contiguous_bytes() const {
  if (!is_contiguous()) {
    throw Error(ErrorKind::internal, "", record, "contiguous_bytes() of a non-contiguous tensor");
  }
  return storage.subspan(static_cast<size_t>(storage_offset) * element_size,
                         static_cast<size_t>(numel()) * element_size);
}

Archive Archive::open(const std::string& path, ArchiveOptions options) {
  return load(FileBytes::map(path), options);
}

Archive Archive::open_copy(const std::string& path, ArchiveOptions options) {
  return load(FileBytes::read(path), options);
}

Archive Archive::from_buffer(std::span<const std::byte> bytes, std::string name, ArchiveOptions options) {
  return load(FileBytes::borrow(bytes, std::move(name)), options);
}

Archive Archive::load(std::shared_ptr<const FileBytes> file, ArchiveOptions options) {
  Archive a;
  a.zip_ = std::make_shared<const ZipReader>(std::move(file));
  const ZipReader& zip = *a.zip_;
  const std::string& src = zip.source();
  if (zip.entries().empty()) throw Error::bad_input(src, "", "the zip archive has no records");

  // PyTorch names the root after the saved file (or "archive" for a stream); every record
  // must live under it.
  const std::string& first = zip.entries().front().name;
  const size_t slash = first.find('/');
  if (slash == std::string::npos || slash == 0) {
    throw Error::bad_input(src, first, "not a TorchScript archive: the first record is not inside a folder");
  }
  a.root_ = first.substr(0, slash);
  const std::string prefix = a.root_ + "/";
  for (const ZipEntry& e : zip.entries()) {
    if (!starts_with(e.name, prefix)) {
      throw Error::bad_input(src, e.name, "record outside the archive's root folder '" + a.root_ + "/'");
    }
  }
  if (options.verify_crc) {
    for (const ZipEntry& e : zip.entries()) zip.verify_crc(e);
  }

  auto find = [&](const std::string& relative) { return zip.find(prefix + relative); };
  auto read_text = [&](const ZipEntry& e) { return as_text(zip.read(e)); };

  if (find("model.json")) {
    throw Error::bad_input(src, a.root_ + "/model.json",
                           "legacy TorchScript archive (model.json, PyTorch 1.0-1.2) is not supported; "
                           "re-save it with a newer torch.jit.save");
  }

  // Version: ".data/version" from file format 6 on, "version" before.
  const ZipEntry* version = find(".data/version");
  a.version_record_ = ".data/version";
  if (!version) {
    version = find("version");
    a.version_record_ = "version";
  }
  if (!version) throw Error::bad_input(src, a.root_, "no version record (version or .data/version)");
  {
    const std::string text = trim(read_text(*version));
    int v = 0;
    auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
    if (ec != std::errc() || end != text.data() + text.size()) {
      throw Error::bad_input(src, version->name, "version is not a number: '" + text.substr(0, 32) + "'");
    }
    if (v < 1 || v > 10) {
      throw Error::bad_input(src, version->name,
                             "unsupported file format version " + std::to_string(v) + " (kiln reads 1 to 10)");
    }
    a.version_ = v;
  }

  if (const ZipEntry* bo = find("byteorder")) {
    a.has_byteorder_record_ = true;
    a.byteorder_ = trim(read_text(*bo));
    if (a.byteorder_ != "little") {
      throw Error::bad_input(src, bo->name,
                             "byte order '" + a.byteorder_.substr(0, 16) + "' is not supported (kiln reads little-endian archives)");
    }
  }

  bool has_code = false;
  for (const ZipEntry& e : zip.entries()) {
    const std::string rel = e.name.substr(prefix.size());
    if (starts_with(rel, "code/")) {
      has_code = true;
      if (ends_with(rel, ".py")) {
        a.code_[qualifier_of(rel)] = read_text(e);
      } else if (ends_with(rel, ".debug_pkl")) {
        a.has_debug_pkl_ = true;
      }
    } else if (rel == "bytecode.pkl") {
      a.is_mobile_ = true;
    } else if (rel == "traced_inputs.pkl") {
      a.has_traced_inputs_ = true;
    } else if (rel == ".data/serialization_id") {
      a.has_serialization_id_ = true;
    }
  }
  if (!has_code) {
    throw Error::bad_input(src, a.root_,
                           a.is_mobile_ ? "mobile archive without TorchScript code (bytecode only) is not supported"
                                        : "not a TorchScript archive: no code/ records");
  }

  const ZipEntry* data = find("data.pkl");
  if (!data) throw Error::bad_input(src, prefix + "data.pkl", "missing: the archive has no module object");
  if (const ZipEntry* constants = find("constants.pkl")) {
    const std::vector<std::byte> bytes = zip.read(*constants);
    PickleRef c = unpickle(bytes, src, constants->name);
    if (c->kind != PickleValue::Kind::tuple) {
      throw Error::bad_input(src, constants->name, "constants table is not a tuple");
    }
    a.constants_ = c->items;
  }
  {
    const std::vector<std::byte> bytes = zip.read(*data);
    a.data_ = unpickle(bytes, src, data->name);
  }
  if (a.data_->kind != PickleValue::Kind::object) {
    throw Error::bad_input(src, data->name, "the root of data.pkl is not a module object");
  }
  return a;
}

std::vector<std::string> Archive::extra_files() const {
  std::vector<std::string> out;
  const std::string prefix = root_ + "/extra/";
  for (const ZipEntry& e : zip_->entries()) {
    if (starts_with(e.name, prefix)) out.push_back(e.name.substr(prefix.size()));
  }
  return out;
}

TensorData Archive::tensor(const PickleTensor& t, bool constant) const {
  const std::string& src = source();
  if (!t.storage || t.storage->kind != PickleValue::Kind::storage) {
    throw Error::bad_input(src, record_name("data.pkl"), "tensor without a storage");
  }
  const PickleStorage& s = t.storage->storage;
  TensorData d;
  d.storage_type = s.type_name;
  d.dtype = s.dtype;
  d.element_size = s.element_size;
  d.storage_offset = t.storage_offset;
  d.sizes = t.sizes;
  d.strides = t.strides;
  d.quantized = t.quantized;

  // Tensor constants live under constants/; mobile archives may name them N.storage.
  const ZipEntry* e = nullptr;
  for (const std::string& dir : constant ? std::vector<std::string>{"constants/", "data/"}
                                         : std::vector<std::string>{"data/"}) {
    e = zip_->find(record_name(dir + s.key));
    if (!e) e = zip_->find(record_name(dir + s.key + ".storage"));
    if (e) break;
  }
  if (!e) {
    throw Error::bad_input(src, record_name((constant ? "constants/" : "data/") + s.key),
                           "storage record missing");
  }
  d.record = e->name;
  if (e->method != 0) throw Error::bad_input(src, e->name, "storage record is compressed; expected stored");

  // Every element the view can reach must lie inside the declared storage, and the
  // storage inside the record.
  constexpr std::int64_t kMax = std::numeric_limits<std::int64_t>::max();
  if (s.element_size == 0 || s.numel < 0 ||
      static_cast<std::uint64_t>(s.numel) > e->uncompressed_size / s.element_size) {
    throw Error::bad_input(src, e->name,
                           "storage of " + std::to_string(s.numel) + " elements of " + std::to_string(s.element_size) +
                               " bytes does not fit the record's " + std::to_string(e->uncompressed_size) + " bytes");
  }
  if (t.storage_offset < 0 || t.sizes.size() != t.strides.size()) {
    throw Error::bad_input(src, e->name, "tensor with a negative offset or mismatched sizes and strides");
  }
  bool empty = false;
  std::int64_t last = t.storage_offset;  // index of the furthest element
  for (size_t i = 0; i < t.sizes.size(); ++i) {
    if (t.sizes[i] < 0 || t.strides[i] < 0) {
      throw Error::bad_input(src, e->name, "tensor with a negative size or stride");
    }
    if (t.sizes[i] == 0) empty = true;
    if (t.sizes[i] > 1) {
      if (t.strides[i] != 0 && t.sizes[i] - 1 > (kMax - last) / t.strides[i]) {
        throw Error::bad_input(src, e->name, "tensor extent overflows");
      }
      last += (t.sizes[i] - 1) * t.strides[i];
    }
  }
  if (!empty && last >= s.numel) {
    throw Error::bad_input(src, e->name,
                           "tensor reaches element " + std::to_string(last) + " of a storage of " +
                               std::to_string(s.numel) + " elements");
  }
  std::int64_t n = 1;
  for (std::int64_t size : t.sizes) {
    if (size != 0 && n > kMax / size) throw Error::bad_input(src, e->name, "tensor element count overflows");
    n *= size;
  }
  d.storage = zip_->view(*e).first(static_cast<size_t>(s.numel) * s.element_size);
  return d;
}

}  // namespace kiln::format
