// NumPy .npy reading and writing (format versions 1.0, 2.0 and 3.0).
//
// Every size in a file is checked against the bytes actually present before anything is
// allocated, so a hostile header costs at most its own 64 KiB.
#include "format/npy.hpp"

#include "format/printable.hpp"

#include <algorithm>
#include <bit>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <limits>
#include <memory>
#include <optional>
#include <string_view>
#include <system_error>
#include <utility>

#include "kiln/error.hpp"

namespace kiln::format {

// Data is passed through as raw bytes and read as native values, and '=' descrs are taken
// as little-endian; both are only right on a little-endian host.
static_assert(std::endian::native == std::endian::little,
              "kiln's .npy code assumes a little-endian host");

namespace {

constexpr std::string_view kMagic{"\x93NUMPY", 6};
// NumPy's own reader stops at 10 000 bytes by default; 64 KiB leaves room for any shape
// kiln can hold while bounding what a hostile header can make us scan.
constexpr std::uint64_t kMaxHeaderLen = 64 * 1024;
constexpr std::uint64_t kMaxFileSize = std::uint64_t{16} << 30;
constexpr std::size_t kAlign = 64;
constexpr std::int64_t kInt64Max = std::numeric_limits<std::int64_t>::max();

[[noreturn]] void fail(const std::string& source, const char* where, std::string message) {
  throw Error::bad_input(source, where, std::move(message));
}

// Header text may be latin-1, UTF-8 or garbage: quoted short.
std::string printable(std::string_view s) { return format::printable(s, 48); }

// Written the way Python prints a tuple, so messages match what the user's numpy shows.
std::string shape_string(const std::vector<std::int64_t>& shape) {
  std::string out = "(";
  for (std::size_t i = 0; i < shape.size(); ++i) {
    if (i) out += ", ";
    out += std::to_string(shape[i]);
  }
  if (shape.size() == 1) out += ",";
  return out + ")";
}

// Built by appending: gcc 12's -Wrestrict misfires on "'" + std::string at -O3.
std::string quoted(std::string_view s) {
  std::string out = "'";
  out += printable(s);
  out += '\'';
  return out;
}

// Byte size of a C-order array, or nullopt when it does not fit in int64. A zero dimension
// makes the array empty however large the others are, so it is looked for first.
std::optional<std::int64_t> byte_size(const std::vector<std::int64_t>& shape, DType dtype) {
  if (std::find(shape.begin(), shape.end(), 0) != shape.end()) return 0;
  std::int64_t n = static_cast<std::int64_t>(dtype_size(dtype));
  for (std::int64_t d : shape) {
    if (d < 0 || n > kInt64Max / d) return std::nullopt;
    n *= d;
  }
  return n;
}

struct Prefix {
  int major = 0;
  std::size_t header_offset = 0;  // where the header text starts
  std::uint64_t header_len = 0;
};

// Reads magic, version and header length; `b` is the file's first min(size, 12) bytes or more.
Prefix parse_prefix(std::span<const std::byte> b, const std::string& source) {
  std::size_t have = std::min(b.size(), kMagic.size());
  if (have > 0 && std::memcmp(b.data(), kMagic.data(), have) != 0) {
    fail(source, "magic", "not a .npy file (it does not start with \\x93NUMPY)");
  }
  if (b.size() < kMagic.size()) {
    fail(source, "magic",
         "truncated: " + std::to_string(b.size()) + " bytes, too short for the .npy magic");
  }
  if (b.size() < 8) fail(source, "version", "truncated before the format version");
  int major = std::to_integer<int>(b[6]);
  int minor = std::to_integer<int>(b[7]);
  if (major < 1 || major > 3 || minor != 0) {
    fail(source, "version",
         "unsupported .npy format version " + std::to_string(major) + "." + std::to_string(minor) +
             " (kiln reads 1.0, 2.0 and 3.0)");
  }
  std::size_t len_bytes = major == 1 ? 2 : 4;
  if (b.size() < 8 + len_bytes) fail(source, "header", "truncated in the header length");
  // Assembled byte by byte: the field is little-endian and unaligned.
  std::uint64_t len = 0;
  for (std::size_t i = 0; i < len_bytes; ++i) {
    len |= std::to_integer<std::uint64_t>(b[8 + i]) << (8 * i);
  }
  if (len > kMaxHeaderLen) {
    fail(source, "header",
         "header length " + std::to_string(len) + " is over kiln's limit of 64 KiB");
  }
  return {major, 8 + len_bytes, len};
}

struct Header {
  DType dtype = DType::float32;
  std::vector<std::int64_t> shape;
};

DType dtype_from_descr(std::string_view descr, const std::string& source) {
  struct Entry {
    std::string_view code;
    DType dtype;
  };
  static constexpr Entry table[] = {
      {"f2", DType::float16}, {"f4", DType::float32}, {"f8", DType::float64},
      {"i1", DType::int8},    {"i2", DType::int16},   {"i4", DType::int32},
      {"i8", DType::int64},   {"u1", DType::uint8},   {"b1", DType::bool_},
  };
  const char* supported = "kiln reads float16/32/64, int8/16/32/64, uint8 and bool";
  if (descr.size() >= 2 && std::string_view("<>|=").find(descr[0]) != std::string_view::npos) {
    char order = descr[0];
    std::string_view code = descr.substr(1);
    for (const Entry& e : table) {
      if (e.code != code) continue;
      // Byte order means nothing for one-byte types, so any mark is fine there.
      if (order == '>' && dtype_size(e.dtype) > 1) {
        fail(source, "descr",
             "big-endian data (" + quoted(descr) + ") is not supported; save it little-endian "
             "(arr.astype(arr.dtype.newbyteorder('<')))");
      }
      return e.dtype;
    }
    if (code.starts_with("O")) {
      fail(source, "descr",
           "object arrays (" + quoted(descr) + ") are not supported; " + supported);
    }
  }
  fail(source, "descr", "unsupported dtype " + quoted(descr) + "; " + supported);
}

// A scanner for the one dict literal NumPy writes, not a Python evaluator: string keys,
// string / True / False / tuple-of-int values, in any order, with optional trailing commas.
class HeaderScanner {
 public:
  HeaderScanner(std::string_view text, const std::string& source) : text_(text), source_(source) {}

  Header parse() {
    Header h;
    bool have_descr = false, have_order = false, have_shape = false;
    skip_space();
    expect('{', "the header to start with '{'");
    for (;;) {
      skip_space();
      if (consume('}')) break;
      std::string_view key = string_literal("a key");
      skip_space();
      expect(':', "':' after the key");
      skip_space();
      if (key == "descr") {
        if (have_descr) syntax("duplicate key 'descr'");
        have_descr = true;
        if (peek() == '[') {
          fail(source_, "descr", "structured dtypes (a list of fields) are not supported");
        }
        h.dtype = dtype_from_descr(string_literal("a string for 'descr'"), source_);
      } else if (key == "fortran_order") {
        if (have_order) syntax("duplicate key 'fortran_order'");
        have_order = true;
        if (boolean()) {
          fail(source_, "header",
               "Fortran-order arrays ('fortran_order': True) are not supported; save a C-order "
               "array (np.ascontiguousarray)");
        }
      } else if (key == "shape") {
        if (have_shape) syntax("duplicate key 'shape'");
        have_shape = true;
        h.shape = shape_tuple();
      } else {
        syntax("unknown key " + quoted(key) +
               " (a .npy header has 'descr', 'fortran_order' and 'shape')");
      }
      skip_space();
      if (consume(',')) continue;
      expect('}', "',' or '}' after a value");
      break;
    }
    skip_space();
    if (pos_ != text_.size()) syntax("unexpected text after the header dict");
    for (auto [have, key] : {std::pair{have_descr, "descr"}, std::pair{have_order, "fortran_order"},
                             std::pair{have_shape, "shape"}}) {
      if (!have) fail(source_, "header", std::string("the header has no '") + key + "' key");
    }
    return h;
  }

 private:
  [[noreturn]] void syntax(const std::string& message) const {
    fail(source_, "header", message + " (at header byte " + std::to_string(pos_) + ")");
  }

  char peek() const { return pos_ < text_.size() ? text_[pos_] : '\0'; }

  bool consume(char c) {
    if (pos_ < text_.size() && text_[pos_] == c) {
      ++pos_;
      return true;
    }
    return false;
  }

  void expect(char c, const char* what) {
    if (!consume(c)) {
      syntax(std::string("expected ") + what + ", found " +
             (pos_ < text_.size() ? quoted(text_.substr(pos_, 1)) : "the end of the header"));
    }
  }

  void skip_space() {
    while (pos_ < text_.size() && std::string_view(" \t\r\n").find(text_[pos_]) != std::string_view::npos) {
      ++pos_;
    }
  }

  // NumPy never writes escapes here, so a backslash is refused rather than decoded.
  std::string_view string_literal(const char* what) {
    char q = peek();
    if (q != '\'' && q != '"') syntax(std::string("expected ") + what);
    std::size_t start = ++pos_;
    while (pos_ < text_.size() && text_[pos_] != q) {
      if (text_[pos_] == '\\') syntax("escapes in header strings are not supported");
      ++pos_;
    }
    if (pos_ == text_.size()) syntax("unterminated string");
    return text_.substr(start, pos_++ - start);
  }

  bool boolean() {
    for (auto [word, value] : {std::pair{std::string_view("True"), true},
                               std::pair{std::string_view("False"), false}}) {
      if (text_.substr(pos_).starts_with(word)) {
        pos_ += word.size();
        return value;
      }
    }
    syntax("expected True or False for 'fortran_order'");
  }

  std::vector<std::int64_t> shape_tuple() {
    if (!consume('(')) fail(source_, "shape", "the shape is not a tuple");
    std::vector<std::int64_t> shape;
    for (;;) {
      skip_space();
      if (consume(')')) break;
      shape.push_back(dimension());
      skip_space();
      if (consume(',')) continue;
      if (!consume(')')) {
        fail(source_, "shape",
             "expected ',' or ')' in the shape, at header byte " + std::to_string(pos_));
      }
      break;
    }
    return shape;
  }

  std::int64_t dimension() {
    bool negative = consume('-');
    std::size_t start = pos_;
    std::int64_t v = 0;
    bool too_big = false;
    while (pos_ < text_.size() && text_[pos_] >= '0' && text_[pos_] <= '9') {
      int digit = text_[pos_++] - '0';
      if (v > (kInt64Max - digit) / 10) too_big = true;
      else v = v * 10 + digit;
    }
    std::string_view digits = text_.substr(start, pos_ - start);
    if (digits.empty()) {
      fail(source_, "shape",
           "expected a dimension in the shape, at header byte " + std::to_string(pos_));
    }
    consume('L');  // Python 2 era NumPy wrote longs as 3L
    if (negative) {
      fail(source_, "shape", "negative dimension -" + printable(digits) + " in the shape");
    }
    if (too_big) {
      fail(source_, "shape", "dimension " + printable(digits) + " does not fit in int64");
    }
    return v;
  }

  std::string_view text_;
  const std::string& source_;
  std::size_t pos_ = 0;
};

struct Layout {
  Header header;
  std::uint64_t data_offset = 0;
  std::uint64_t data_bytes = 0;
};

// Parses prefix and header from `head` (which holds at least the whole header when the file
// is long enough) and checks the data size against `total`, the file's full size.
Layout parse_layout(std::span<const std::byte> head, std::uint64_t total,
                    const std::string& source) {
  Prefix p = parse_prefix(head, source);
  std::uint64_t header_end = p.header_offset + p.header_len;
  if (total < header_end || head.size() < header_end) {
    fail(source, "header",
         "truncated: the header needs " + std::to_string(p.header_len) +
             " bytes but the file has " +
             std::to_string(total - std::min<std::uint64_t>(total, p.header_offset)));
  }
  std::string_view text(reinterpret_cast<const char*>(head.data()) + p.header_offset, p.header_len);
  Layout out;
  out.header = HeaderScanner(text, source).parse();
  out.data_offset = header_end;
  std::optional<std::int64_t> need = byte_size(out.header.shape, out.header.dtype);
  const std::string what = "shape " + shape_string(out.header.shape) + " of " +
                           std::string(dtype_name(out.header.dtype));
  if (!need) fail(source, "shape", what + " is too large (over 2^63 bytes)");
  std::uint64_t have = total - header_end;
  auto need_u = static_cast<std::uint64_t>(*need);
  if (have < need_u) {
    fail(source, "data",
         "truncated: " + what + " needs " + std::to_string(need_u) +
             " bytes of data but the file has " + std::to_string(have));
  }
  if (have > need_u) {
    fail(source, "data",
         std::to_string(have - need_u) + " unexpected bytes after the data (" + what + " needs " +
             std::to_string(need_u) + ")");
  }
  out.data_bytes = need_u;
  return out;
}

// A bool byte other than 0 or 1 would be undefined behaviour once read as a C++ bool.
void check_bools(const NpyArray& a, const std::string& source) {
  if (a.dtype != DType::bool_) return;
  for (std::size_t i = 0; i < a.data.size(); ++i) {
    auto v = std::to_integer<unsigned>(a.data[i]);
    if (v > 1) {
      fail(source, "data",
           "bool element " + std::to_string(i) + " is " + std::to_string(v) + ", not 0 or 1");
    }
  }
}

struct FileCloser {
  void operator()(std::FILE* f) const { std::fclose(f); }
};
using File = std::unique_ptr<std::FILE, FileCloser>;

std::string errno_text(int err) { return std::generic_category().message(err); }

void read_exact(std::FILE* f, std::byte* out, std::size_t n, const std::string& path,
                const char* where) {
  if (n == 0) return;
  std::size_t got = std::fread(out, 1, n, f);
  if (got != n) {
    if (std::ferror(f)) fail(path, where, "read error: " + errno_text(errno));
    fail(path, where, "the file ended early (did it change while being read?)");
  }
}

std::string_view descr_for(DType t, const std::string& source) {
  switch (t) {
    case DType::float16: return "<f2";
    case DType::float32: return "<f4";
    case DType::float64: return "<f8";
    case DType::int8: return "|i1";
    case DType::int16: return "<i2";
    case DType::int32: return "<i4";
    case DType::int64: return "<i8";
    case DType::uint8: return "|u1";
    case DType::bool_: return "|b1";
    case DType::bfloat16: break;
  }
  fail(source, "descr",
       "bfloat16 has no NumPy dtype, so it cannot be written as .npy; convert it to float32 first");
}

std::vector<std::byte> serialize(const NpyArray& array, const std::string& source) {
  std::string_view descr = descr_for(array.dtype, source);
  std::optional<std::int64_t> need = byte_size(array.shape, array.dtype);
  if (!need || static_cast<std::uint64_t>(*need) != array.data.size()) {
    throw Error(ErrorKind::usage, source, "data",
                "NpyArray holds " + std::to_string(array.data.size()) +
                    " bytes of data but shape " + shape_string(array.shape) + " of " + std::string(dtype_name(array.dtype)) +
                    (need ? " needs " + std::to_string(*need) : " is invalid"));
  }
  std::string dict = "{'descr': '" + std::string(descr) +
                     "', 'fortran_order': False, 'shape': " + shape_string(array.shape) + ", }";
  // Spaces then '\n' end the header so the data starts 64-byte aligned, as NumPy does.
  auto padded = [&](std::size_t prefix_len) {
    std::size_t unpadded = prefix_len + dict.size() + 1;
    return dict + std::string((kAlign - unpadded % kAlign) % kAlign, ' ') + "\n";
  };
  int major = 1;
  std::string header = padded(10);
  if (header.size() > 0xffff) {
    major = 2;
    header = padded(12);
    if (header.size() > 0xffffffffu) {
      throw Error(ErrorKind::usage, source, "shape",
                  "shape has too many dimensions for a .npy header");
    }
  }
  std::vector<std::byte> out;
  out.reserve((major == 1 ? 10 : 12) + header.size() + array.data.size());
  auto put = [&](unsigned v) { out.push_back(static_cast<std::byte>(v & 0xff)); };
  for (char c : kMagic) put(static_cast<unsigned char>(c));
  put(static_cast<unsigned>(major));
  put(0);
  for (int i = 0; i < (major == 1 ? 2 : 4); ++i) {
    put(static_cast<unsigned>(header.size() >> (8 * i)));
  }
  for (char c : header) put(static_cast<unsigned char>(c));
  out.insert(out.end(), array.data.begin(), array.data.end());
  return out;
}

}  // namespace

std::int64_t NpyArray::numel() const {
  std::int64_t n = 1;
  for (std::int64_t d : shape) n *= d;
  return n;
}

NpyArray parse_npy(std::span<const std::byte> bytes, const std::string& source) {
  Layout layout = parse_layout(bytes, bytes.size(), source);
  NpyArray out;
  out.dtype = layout.header.dtype;
  out.shape = std::move(layout.header.shape);
  auto data = bytes.subspan(layout.data_offset, layout.data_bytes);
  out.data.assign(data.begin(), data.end());
  check_bools(out, source);
  return out;
}

// Reads the header first and the data straight into the array, so a file is never held
// twice in memory and its sizes are checked before the data buffer is allocated.
NpyArray read_npy(const std::string& path) {
  namespace fs = std::filesystem;
  // Checked before opening: opening a FIFO would block until someone writes to it.
  std::error_code ec;
  fs::file_status st = fs::status(path, ec);
  if (!ec && fs::exists(st) && !fs::is_regular_file(st)) fail(path, "", "not a regular file");
  File f(std::fopen(path.c_str(), "rb"));
  if (!f) fail(path, "", "cannot open: " + errno_text(errno));
  std::uint64_t size = fs::file_size(path, ec);
  if (ec) fail(path, "", "cannot get the file size: " + ec.message());
  if (size > kMaxFileSize) {
    fail(path, "",
         "the file is " + std::to_string(size) + " bytes, over kiln's 16 GiB limit for .npy");
  }

  std::vector<std::byte> head(static_cast<std::size_t>(std::min<std::uint64_t>(size, 12)));
  read_exact(f.get(), head.data(), head.size(), path, "header");
  Prefix p = parse_prefix(head, path);
  std::uint64_t header_end = std::min<std::uint64_t>(size, p.header_offset + p.header_len);
  std::size_t already = head.size();
  if (header_end > already) {
    head.resize(static_cast<std::size_t>(header_end));
    read_exact(f.get(), head.data() + already, head.size() - already, path, "header");
  }
  Layout layout = parse_layout(head, size, path);
  if (std::fseek(f.get(), static_cast<long>(layout.data_offset), SEEK_SET) != 0) {
    fail(path, "data", "cannot seek to the data: " + errno_text(errno));
  }

  NpyArray out;
  out.dtype = layout.header.dtype;
  out.shape = std::move(layout.header.shape);
  out.data.resize(static_cast<std::size_t>(layout.data_bytes));
  read_exact(f.get(), out.data.data(), out.data.size(), path, "data");
  check_bools(out, path);
  return out;
}

std::vector<std::byte> serialize_npy(const NpyArray& array) { return serialize(array, ""); }

void write_npy(const std::string& path, const NpyArray& array) {
  std::vector<std::byte> bytes = serialize(array, path);
  File f(std::fopen(path.c_str(), "wb"));
  if (!f) fail(path, "", "cannot open for writing: " + errno_text(errno));
  errno = 0;
  bool ok = std::fwrite(bytes.data(), 1, bytes.size(), f.get()) == bytes.size();
  int err = errno;
  ok = std::fclose(f.release()) == 0 && ok;
  if (!ok) {
    if (err == 0) err = errno;
    std::remove(path.c_str());  // a half-written .npy would only fail later, less clearly
    fail(path, "", "write failed: " + errno_text(err));
  }
}

}  // namespace kiln::format
