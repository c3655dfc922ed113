// The data-only pickle VM behind unpickle().
//
// Safety rests on three rules, each checked where a value is made or inserted:
//  * Nothing is called. A GLOBAL must be on a fixed allowlist and becomes an inert marker;
//    REDUCE / NEWOBJ / BUILD / BINPERSID interpret the few markers PyTorch writes.
//  * A value that has been put inside another value is sealed: no APPEND, SETITEM or BUILD
//    may change it afterwards. Every edge therefore runs from an unsealed value to a sealed
//    one that never gains edges again, so no cycle can form (a cycle of shared_ptrs would
//    leak), and the depth recorded for a sealed value is final. Python's and PyTorch's
//    picklers always finish a container before it is referenced from another, so only
//    self-referencing data is refused.
//  * Every length, count and index is checked against the limits and the bytes left
//    before anything is allocated, and nesting never exceeds max_depth, so neither the
//    VM (which never recurses) nor the recursive destructors of the result can exhaust
//    the C++ stack.
#include "format/pickle.hpp"

#include "format/printable.hpp"

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstring>
#include <limits>
#include <string_view>
#include <unordered_map>

#include "kiln/error.hpp"

namespace kiln::format {

namespace {

using Kind = PickleValue::Kind;

constexpr std::int64_t kInt64Max = std::numeric_limits<std::int64_t>::max();
// Qualified names in archives are a few hundred bytes at most; the cap bounds the scan
// for the newline that ends a GLOBAL operand.
constexpr std::size_t kMaxGlobalName = 4096;
// Keys name zip records; PyTorch writes decimal numbers.
constexpr std::size_t kMaxStorageKey = 256;

// Bookkeeping the VM needs per value, kept in the same allocation. Every value the VM
// handles was made by make(), so the downcast in node() is always to the real type.
struct Node : PickleValue {
  std::size_t depth = 1;  // 1 + the largest depth among the children; 1 with none
  bool sealed = false;    // already inside another value: its children are final
  // dict only, while it is unsealed: canonical key -> index into entries, so that
  // SETITEM replaces an equal key the way Python's dict does, in constant time.
  std::unique_ptr<std::unordered_map<std::string, std::size_t>> index;
};

Node& node(const PickleRef& v) { return static_cast<Node&>(*v); }

PickleRef make(Kind kind) {
  auto n = std::make_shared<Node>();
  n->kind = kind;
  return n;
}

enum Op : std::uint8_t {
  MARK = '(', STOP = '.', POP = '0', POP_MARK = '1', DUP = '2',
  BINFLOAT = 'G', BININT = 'J', BININT1 = 'K', BININT2 = 'M', NONE = 'N',
  BINPERSID = 'Q', REDUCE = 'R', BINSTRING = 'T', SHORT_BINSTRING = 'U',
  BINUNICODE = 'X', APPEND = 'a', BUILD = 'b', GLOBAL = 'c', DICT = 'd',
  EMPTY_DICT = '}', APPENDS = 'e', BINGET = 'h', LONG_BINGET = 'j', LIST = 'l',
  EMPTY_LIST = ']', BINPUT = 'q', LONG_BINPUT = 'r', SETITEM = 's', TUPLE = 't',
  EMPTY_TUPLE = ')', SETITEMS = 'u', BINBYTES = 'B', SHORT_BINBYTES = 'C',
  PROTO = 0x80, NEWOBJ = 0x81, TUPLE1 = 0x85, TUPLE2 = 0x86, TUPLE3 = 0x87,
  NEWTRUE = 0x88, NEWFALSE = 0x89, LONG1 = 0x8a, SHORT_BINUNICODE = 0x8c,
  BINUNICODE8 = 0x8d, MEMOIZE = 0x94,
};

// What applying a global does; `inert` ones are only ever data (storage types inside a
// persistent id, qschemes inside quantizer parameters, the tensor type handed to
// _rebuild_from_type_v2).
enum class Fn : std::uint8_t {
  inert,
  rebuild_tensor_v2,
  rebuild_qtensor,
  rebuild_parameter,
  rebuild_parameter_with_state,
  rebuild_from_type_v2,
  ordered_dict,
  build_intlist,
  build_doublelist,
  build_boollist,
  build_tensorlist,
  build_genericlist,
  restore_type_tag,
  device,
  torch_class,  // __torch__.*: scripted modules and classes, TorchBind classes
};

struct AllowedGlobal {
  std::string_view name;
  Fn fn;
};

constexpr AllowedGlobal kAllowedGlobals[] = {
    {"torch._utils._rebuild_tensor_v2", Fn::rebuild_tensor_v2},
    {"torch._utils._rebuild_qtensor", Fn::rebuild_qtensor},
    {"torch._utils._rebuild_parameter", Fn::rebuild_parameter},
    {"torch._utils._rebuild_parameter_with_state", Fn::rebuild_parameter_with_state},
    {"torch._tensor._rebuild_from_type_v2", Fn::rebuild_from_type_v2},
    {"collections.OrderedDict", Fn::ordered_dict},
    {"torch.jit._pickle.build_intlist", Fn::build_intlist},
    {"torch.jit._pickle.build_doublelist", Fn::build_doublelist},
    {"torch.jit._pickle.build_boollist", Fn::build_boollist},
    {"torch.jit._pickle.build_tensorlist", Fn::build_tensorlist},
    {"torch.jit._pickle.build_genericlist", Fn::build_genericlist},
    {"torch.jit._pickle.restore_type_tag", Fn::restore_type_tag},
    {"torch.device", Fn::device},
    {"torch.per_tensor_affine", Fn::inert},
    {"torch.per_channel_affine", Fn::inert},
    {"torch.per_tensor_symmetric", Fn::inert},
    {"torch.per_channel_symmetric", Fn::inert},
    {"torch.per_channel_affine_float_qparams", Fn::inert},
    {"torch.Tensor", Fn::inert},
    {"torch._tensor.Tensor", Fn::inert},
    {"torch.nn.parameter.Parameter", Fn::inert},
};

struct StorageType {
  std::string_view name;  // after "torch."
  std::optional<DType> dtype;
  std::size_t element_size;
};

constexpr StorageType kStorageTypes[] = {
    {"FloatStorage", DType::float32, 4},   {"DoubleStorage", DType::float64, 8},
    {"HalfStorage", DType::float16, 2},    {"BFloat16Storage", DType::bfloat16, 2},
    {"LongStorage", DType::int64, 8},      {"IntStorage", DType::int32, 4},
    {"ShortStorage", DType::int16, 2},     {"CharStorage", DType::int8, 1},
    {"ByteStorage", DType::uint8, 1},      {"BoolStorage", DType::bool_, 1},
    {"QInt8Storage", std::nullopt, 1},     {"QUInt8Storage", std::nullopt, 1},
    {"QInt32Storage", std::nullopt, 4},    {"QUInt4x2Storage", std::nullopt, 1},
    {"ComplexFloatStorage", std::nullopt, 8}, {"ComplexDoubleStorage", std::nullopt, 16},
};

constexpr std::string_view kTorchClassPrefix = "__torch__";

const StorageType* storage_type(std::string_view qualified) {
  if (!qualified.starts_with("torch.")) return nullptr;
  std::string_view name = qualified.substr(6);
  for (const StorageType& t : kStorageTypes) {
    if (t.name == name) return &t;
  }
  return nullptr;
}

bool is_torch_class_module(std::string_view module) {
  return module == kTorchClassPrefix ||
         (module.starts_with(kTorchClassPrefix) && module[kTorchClassPrefix.size()] == '.');
}

// nullopt: not allowed at all.
std::optional<Fn> global_fn(std::string_view module, std::string_view qualified) {
  if (is_torch_class_module(module)) return Fn::torch_class;
  for (const AllowedGlobal& g : kAllowedGlobals) {
    if (g.name == qualified) return g.fn;
  }
  if (storage_type(qualified)) return Fn::inert;
  return std::nullopt;
}

// Only called on globals that passed global_fn when they were read.
Fn fn_of(const PickleValue& global) {
  std::string_view text = global.text;
  std::string_view module = text.substr(0, text.rfind('.'));
  return global_fn(module, text).value_or(Fn::inert);
}

// Pickled strings are arbitrary bytes; messages quote them escaped and clipped.
std::string quoted(std::string_view s, std::size_t max = 64) {
  return "'" + printable(s, max, "'") + "'";
}

std::string hex_byte(std::uint8_t b) {
  static constexpr char hex[] = "0123456789abcdef";
  std::string out = "0x";
  out += hex[b >> 4];
  out += hex[b & 15];
  return out;
}

// With its article, to read naturally inside messages ("REDUCE on an int").
std::string describe(const PickleValue& v) {
  switch (v.kind) {
    case Kind::none: return "None";
    case Kind::boolean: return "a bool";
    case Kind::integer: return "an int";
    case Kind::floating: return "a float";
    case Kind::string: return "a str";
    case Kind::tuple: return "a tuple of " + std::to_string(v.items.size());
    case Kind::list: return "a list";
    case Kind::dict: return "a dict";
    case Kind::object: return "an object of " + quoted(v.text, 200);
    case Kind::global: return "the global " + quoted(v.text, 200);
    case Kind::storage: return "a storage";
    case Kind::tensor: return "a tensor";
    case Kind::device: return "a device";
  }
  return "?";
}

const char* op_name(std::uint8_t op) {
  switch (op) {
    case MARK: return "MARK";
    case STOP: return "STOP";
    case POP: return "POP";
    case POP_MARK: return "POP_MARK";
    case DUP: return "DUP";
    case BINFLOAT: return "BINFLOAT";
    case BININT: return "BININT";
    case BININT1: return "BININT1";
    case BININT2: return "BININT2";
    case NONE: return "NONE";
    case BINPERSID: return "BINPERSID";
    case REDUCE: return "REDUCE";
    case BINSTRING: return "BINSTRING";
    case SHORT_BINSTRING: return "SHORT_BINSTRING";
    case BINUNICODE: return "BINUNICODE";
    case APPEND: return "APPEND";
    case BUILD: return "BUILD";
    case GLOBAL: return "GLOBAL";
    case DICT: return "DICT";
    case EMPTY_DICT: return "EMPTY_DICT";
    case APPENDS: return "APPENDS";
    case BINGET: return "BINGET";
    case LONG_BINGET: return "LONG_BINGET";
    case LIST: return "LIST";
    case EMPTY_LIST: return "EMPTY_LIST";
    case BINPUT: return "BINPUT";
    case LONG_BINPUT: return "LONG_BINPUT";
    case SETITEM: return "SETITEM";
    case TUPLE: return "TUPLE";
    case EMPTY_TUPLE: return "EMPTY_TUPLE";
    case SETITEMS: return "SETITEMS";
    case BINBYTES: return "BINBYTES";
    case SHORT_BINBYTES: return "SHORT_BINBYTES";
    case PROTO: return "PROTO";
    case NEWOBJ: return "NEWOBJ";
    case TUPLE1: return "TUPLE1";
    case TUPLE2: return "TUPLE2";
    case TUPLE3: return "TUPLE3";
    case NEWTRUE: return "NEWTRUE";
    case NEWFALSE: return "NEWFALSE";
    case LONG1: return "LONG1";
    case SHORT_BINUNICODE: return "SHORT_BINUNICODE";
    case BINUNICODE8: return "BINUNICODE8";
    case MEMOIZE: return "MEMOIZE";
    default: return nullptr;
  }
}

// Python compares dict keys by value, with True == 1 == 1.0; these strings are equal
// exactly when Python's keys would be. Keys without value equality that kiln tracks
// (tensors, containers, objects) compare by identity, as tensors do in TorchScript dicts.
std::string canonical_key(const PickleRef& key) {
  auto integral = [](std::int64_t i) {
    std::string k = "i";
    k.append(reinterpret_cast<const char*>(&i), sizeof i);
    return k;
  };
  const PickleValue& v = *key;
  switch (v.kind) {
    case Kind::none: return "n";
    case Kind::boolean: return integral(v.boolean ? 1 : 0);
    case Kind::integer: return integral(v.integer);
    case Kind::floating: {
      double d = v.floating;
      // -2^63 and 2^63 bound the doubles that are exactly some int64.
      if (d == std::trunc(d) && d >= -9223372036854775808.0 && d < 9223372036854775808.0) {
        return integral(static_cast<std::int64_t>(d));
      }
      if (d == d) {
        std::string k = "f";
        auto bits = std::bit_cast<std::uint64_t>(d);
        k.append(reinterpret_cast<const char*>(&bits), sizeof bits);
        return k;
      }
      break;  // NaN equals nothing but itself
    }
    case Kind::string: return "s" + v.text;
    default: break;
  }
  std::string k = "p";
  const PickleValue* p = key.get();
  k.append(reinterpret_cast<const char*>(&p), sizeof p);
  return k;
}

class Vm {
 public:
  Vm(std::span<const std::byte> in, const std::string& file, const std::string& record,
     const PickleLimits& limits)
      : in_(in), file_(file), record_(record), limits_(limits) {}

  PickleRef run();

 private:
  [[noreturn]] void fail(const std::string& what) const {
    throw Error::bad_input(file_, record_, "at byte " + std::to_string(op_pos_) + ": " + what);
  }

  std::string op() const { return op_name(op_) ? op_name(op_) : hex_byte(op_); }

  // Every value costs a few hundred bytes whatever its pickled size (one byte makes an
  // empty list), so the number of values is what bounds memory.
  PickleRef make(Kind kind) {
    if (++values_ > limits_.max_values) {
      fail("more than " + std::to_string(limits_.max_values) + " values");
    }
    return kiln::format::make(kind);
  }

  // --- input ---
  std::size_t left() const { return in_.size() - pos_; }

  const std::byte* take(std::size_t n) {
    if (n > left()) {
      fail("truncated: " + op() + " needs " + std::to_string(n) + " more bytes, " +
           std::to_string(left()) + " left");
    }
    const std::byte* p = in_.data() + pos_;
    pos_ += n;
    return p;
  }

  std::uint64_t read_le(std::size_t n) {
    const std::byte* p = take(n);
    std::uint64_t v = 0;
    for (std::size_t i = 0; i < n; ++i) v |= std::to_integer<std::uint64_t>(p[i]) << (8 * i);
    return v;
  }

  std::string read_bytes(std::uint64_t n) {
    if (n > limits_.max_string) {
      fail(op() + " of " + std::to_string(n) + " bytes is over the limit of " +
           std::to_string(limits_.max_string));
    }
    if (n > left()) {
      fail("truncated: " + op() + " of " + std::to_string(n) + " bytes, " +
           std::to_string(left()) + " left");
    }
    const std::byte* p = take(static_cast<std::size_t>(n));
    return std::string(reinterpret_cast<const char*>(p), static_cast<std::size_t>(n));
  }

  // A GLOBAL operand line ended by '\n': a dotted module path, or a plain name (PyTorch
  // never writes a dotted one, and refusing it keeps the module/name split unambiguous).
  std::string read_line(const char* what, bool dotted) {
    std::size_t scan = std::min(left(), kMaxGlobalName + 1);
    const auto* begin = reinterpret_cast<const char*>(in_.data() + pos_);
    const void* nl = std::memchr(begin, '\n', scan);
    if (!nl) {
      if (scan > kMaxGlobalName) {
        fail("GLOBAL " + std::string(what) + " is longer than " + std::to_string(kMaxGlobalName) +
             " bytes");
      }
      fail("truncated: GLOBAL " + std::string(what) + " has no terminating newline");
    }
    std::string_view s(begin, static_cast<std::size_t>(static_cast<const char*>(nl) - begin));
    pos_ += s.size() + 1;
    if (s.empty()) fail("GLOBAL " + std::string(what) + " is empty");
    for (char c : s) {
      bool ok = c == '_' || (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') ||
                (c >= 'A' && c <= 'Z') || (dotted && c == '.');
      if (!ok) {
        fail("GLOBAL " + std::string(what) + " " + quoted(s) + " has byte " +
             hex_byte(static_cast<std::uint8_t>(c)) + "; expected a Python identifier");
      }
    }
    return std::string(s);
  }

  // --- stack ---
  // Values below the innermost mark belong to an enclosing MARK ... and are out of reach,
  // as in Python's unpickler, where MARK sets the stack aside.
  std::size_t floor() const { return marks_.empty() ? 0 : marks_.back(); }

  void need(std::size_t n) const {
    std::size_t have = stack_.size() - floor();
    if (have < n) {
      fail("stack underflow: " + op() + " needs " + std::to_string(n) + " value" +
           (n == 1 ? "" : "s") + (marks_.empty() ? "" : " above the mark") + ", found " +
           std::to_string(have));
    }
  }

  void push(PickleRef v) {
    if (stack_.size() + marks_.size() >= limits_.max_stack) {
      fail("stack would exceed the limit of " + std::to_string(limits_.max_stack) + " entries");
    }
    stack_.push_back(std::move(v));
  }

  PickleRef pop() {
    PickleRef v = std::move(stack_.back());
    stack_.pop_back();
    return v;
  }

  std::size_t pop_mark() {
    if (marks_.empty()) fail(op() + " without a MARK");
    std::size_t m = marks_.back();
    marks_.pop_back();
    return m;
  }

  void check_count(std::size_t n, const char* what) const {
    if (n > limits_.max_container) {
      fail(std::string(what) + " of " + std::to_string(n) + " elements is over the limit of " +
           std::to_string(limits_.max_container));
    }
  }

  // --- building values ---
  // Records that `child` now lives inside `parent`; see the file comment for why sealing
  // rules out cycles.
  void adopt(Node& parent, const PickleRef& child) {
    if (child.get() == &parent) fail(op() + " would put " + describe(parent) + " inside itself");
    Node& c = node(child);
    if (!c.sealed) {
      c.sealed = true;
      c.index.reset();
    }
    if (c.depth + 1 > parent.depth) {
      if (c.depth + 1 > limits_.max_depth) {
        fail("values nested more than " + std::to_string(limits_.max_depth) + " deep");
      }
      parent.depth = c.depth + 1;
    }
  }

  Node& mutable_target(const PickleRef& target, Kind kind) {
    if (target->kind != kind) {
      fail(op() + " on " + describe(*target) + "; expected " +
           (kind == Kind::list ? "a list" : kind == Kind::dict ? "a dict" : "an object"));
    }
    Node& n = node(target);
    if (n.sealed) {
      fail(op() + " on " + describe(*target) +
           " that is already inside another value (refused: it could form a cycle)");
    }
    return n;
  }

  void list_append(Node& list, PickleRef item) {
    check_count(list.items.size() + 1, "list");
    adopt(list, item);
    list.items.push_back(std::move(item));
  }

  void dict_set(Node& dict, PickleRef key, PickleRef value) {
    adopt(dict, key);
    adopt(dict, value);
    if (!dict.index) {
      dict.index = std::make_unique<std::unordered_map<std::string, std::size_t>>();
    }
    auto [it, added] = dict.index->try_emplace(canonical_key(key), dict.entries.size());
    if (added) {
      check_count(dict.entries.size() + 1, "dict");
      dict.entries.emplace_back(std::move(key), std::move(value));
    } else {
      // Python keeps the first key object and replaces the value.
      dict.entries[it->second].second = std::move(value);
    }
  }

  // A tuple of the stack values from `start` on, which it removes.
  PickleRef make_tuple(std::size_t start) {
    check_count(stack_.size() - start, "tuple");
    PickleRef t = make(Kind::tuple);
    Node& n = node(t);
    n.items.reserve(stack_.size() - start);
    for (std::size_t i = start; i < stack_.size(); ++i) {
      adopt(n, stack_[i]);
      n.items.push_back(std::move(stack_[i]));
    }
    stack_.resize(start);
    return t;
  }

  // --- applying globals ---
  const PickleValue& tuple_arg(const PickleRef& args, const std::string& fn, std::size_t min,
                               std::size_t max) const {
    if (args->kind != Kind::tuple) fail(fn + " applied to " + describe(*args) + "; expected a tuple");
    std::size_t n = args->items.size();
    if (n < min || n > max) {
      std::string want = std::to_string(min);
      if (max != min) want += " or " + std::to_string(max);
      fail(fn + " takes " + want + " arguments, got " + std::to_string(n));
    }
    return *args;
  }

  const PickleValue& arg(const PickleValue& args, std::size_t i, Kind kind, const std::string& fn,
                         const char* what) const {
    const PickleValue& v = *args.items[i];
    if (v.kind != kind) {
      fail(fn + " argument " + std::to_string(i + 1) + " (" + what + ") is " + describe(v));
    }
    return v;
  }

  std::vector<std::int64_t> int_tuple(const PickleValue& args, std::size_t i, const std::string& fn,
                                      const char* what) const {
    const PickleValue& t = arg(args, i, Kind::tuple, fn, what);
    if (t.items.size() > limits_.max_dims) {
      fail(fn + ": tensor of rank " + std::to_string(t.items.size()) + " is over the limit of " +
           std::to_string(limits_.max_dims));
    }
    std::vector<std::int64_t> out;
    out.reserve(t.items.size());
    for (const PickleRef& e : t.items) {
      if (e->kind != Kind::integer || e->integer < 0) {
        fail(fn + ": " + what + " must be non-negative ints, found " +
             (e->kind == Kind::integer ? "a negative int" : describe(*e)));
      }
      out.push_back(e->integer);
    }
    return out;
  }

  // (storage, offset, sizes, strides, [qparams,] requires_grad, hooks [, metadata])
  PickleRef rebuild_tensor(const PickleRef& args_ref, bool quantized, const std::string& fn) {
    const PickleValue& args = quantized ? tuple_arg(args_ref, fn, 7, 7) : tuple_arg(args_ref, fn, 6, 7);
    const PickleRef& storage = args.items[0];
    arg(args, 0, Kind::storage, fn, "storage");
    std::int64_t offset = arg(args, 1, Kind::integer, fn, "storage offset").integer;
    if (offset < 0) fail(fn + ": negative storage offset " + std::to_string(offset));
    std::vector<std::int64_t> sizes = int_tuple(args, 2, fn, "sizes");
    std::vector<std::int64_t> strides = int_tuple(args, 3, fn, "strides");
    if (sizes.size() != strides.size()) {
      fail(fn + ": " + std::to_string(sizes.size()) + " sizes but " + std::to_string(strides.size()) +
           " strides");
    }
    std::size_t i = 4;
    PickleRef qparams;
    if (quantized) {
      arg(args, i, Kind::tuple, fn, "quantizer parameters");
      qparams = args.items[i++];
    }
    bool requires_grad = arg(args, i++, Kind::boolean, fn, "requires_grad").boolean;
    Kind hooks = args.items[i++]->kind;
    if (hooks != Kind::dict && hooks != Kind::none) {
      fail(fn + ": backward hooks must be an OrderedDict, found " + describe(*args.items[i - 1]));
    }
    if (i < args.items.size()) {
      // Math bits (neg, conj) change what the bytes mean; a set one would silently give
      // wrong values, so only all-false metadata passes.
      const PickleValue& meta = arg(args, i, Kind::dict, fn, "metadata");
      for (const auto& [k, v] : meta.entries) {
        if (v->kind != Kind::boolean || v->boolean) {
          fail(fn + ": tensor metadata " + (k->kind == Kind::string ? quoted(k->text) : describe(*k)) +
               " is not supported");
        }
      }
    }
    // The elements the view reaches must lie inside the storage.
    std::int64_t extent = 1;
    bool empty = std::find(sizes.begin(), sizes.end(), 0) != sizes.end();
    if (empty) extent = 0;
    for (std::size_t d = 0; d < sizes.size() && !empty; ++d) {
      std::int64_t step = 0;
      if (__builtin_mul_overflow(sizes[d] - 1, strides[d], &step) ||
          __builtin_add_overflow(extent, step, &extent)) {
        fail(fn + ": tensor view overflows int64");
      }
    }
    std::int64_t end = 0;
    if (__builtin_add_overflow(offset, extent, &end) || end > storage->storage.numel) {
      fail(fn + ": tensor view (offset " + std::to_string(offset) + ", " + std::to_string(sizes.size()) +
           " dims) reaches element " + std::to_string(offset) + " + " + std::to_string(extent) +
           " of a storage of " + std::to_string(storage->storage.numel));
    }
    PickleRef t = make(Kind::tensor);
    Node& n = node(t);
    adopt(n, storage);
    n.tensor.storage = storage;
    n.tensor.storage_offset = offset;
    n.tensor.sizes = std::move(sizes);
    n.tensor.strides = std::move(strides);
    n.tensor.requires_grad = requires_grad;
    n.tensor.quantized = quantized;
    if (qparams) {
      adopt(n, qparams);
      n.tensor.qparams = std::move(qparams);
    }
    return t;
  }

  PickleRef rebuild_parameter(const PickleRef& args_ref, bool with_state, const std::string& fn) {
    const PickleValue& args = with_state ? tuple_arg(args_ref, fn, 4, 4) : tuple_arg(args_ref, fn, 3, 3);
    const PickleRef& tensor = args.items[0];
    arg(args, 0, Kind::tensor, fn, "tensor");
    bool requires_grad = arg(args, 1, Kind::boolean, fn, "requires_grad").boolean;
    // A copy, since the tensor may be shared through the memo with places that expect it
    // unchanged.
    PickleRef p = make(Kind::tensor);
    Node& n = node(p);
    static_cast<PickleValue&>(n) = *tensor;
    n.depth = node(tensor).depth;
    n.tensor.is_parameter = true;
    n.tensor.requires_grad = requires_grad;
    return p;
  }

  PickleRef build_list(const PickleRef& args_ref, Kind element, const char* tag, const std::string& fn) {
    const PickleValue& args = tuple_arg(args_ref, fn, 1, 1);
    const PickleRef& list = args.items[0];
    arg(args, 0, Kind::list, fn, "list");
    if (element != Kind::none) {
      for (const PickleRef& e : list->items) {
        if (e->kind != element) fail(fn + ": element is " + describe(*e));
      }
    }
    // Setting the tag is no change of children, so a sealed list may take it.
    if (tag && list->type_tag.empty()) list->type_tag = tag;
    return list;
  }

  PickleRef apply(const PickleRef& callable, const PickleRef& args) {
    if (callable->kind != Kind::global) {
      fail("REDUCE on " + describe(*callable) + ", which is not an allowlisted callable");
    }
    const std::string& fn = callable->text;
    switch (fn_of(*callable)) {
      case Fn::inert:
        fail("REDUCE on " + quoted(fn, 200) + ", which is not callable");
      case Fn::rebuild_tensor_v2: return rebuild_tensor(args, false, fn);
      case Fn::rebuild_qtensor: return rebuild_tensor(args, true, fn);
      case Fn::rebuild_parameter: return rebuild_parameter(args, false, fn);
      case Fn::rebuild_parameter_with_state: return rebuild_parameter(args, true, fn);
      case Fn::rebuild_from_type_v2: {
        // (func, type, args, state): the subclass type and its Python state mean nothing
        // to kiln; func must rebuild a plain tensor, so this recursion is one level deep.
        const PickleValue& a = tuple_arg(args, fn, 4, 4);
        const PickleRef& func = a.items[0];
        Fn f = func->kind == Kind::global ? fn_of(*func) : Fn::inert;
        if (f != Fn::rebuild_tensor_v2 && f != Fn::rebuild_qtensor && f != Fn::rebuild_parameter &&
            f != Fn::rebuild_parameter_with_state) {
          fail(fn + ": argument 1 must be a tensor rebuild function, found " + describe(*func));
        }
        arg(a, 1, Kind::global, fn, "type");
        arg(a, 2, Kind::tuple, fn, "args");
        return apply(func, a.items[2]);
      }
      case Fn::ordered_dict:
        // Only ever the empty backward-hooks placeholder.
        tuple_arg(args, fn, 0, 0);
        return make(Kind::dict);
      case Fn::build_intlist: return build_list(args, Kind::integer, "List[int]", fn);
      case Fn::build_doublelist: return build_list(args, Kind::floating, "List[float]", fn);
      case Fn::build_boollist: return build_list(args, Kind::boolean, "List[bool]", fn);
      case Fn::build_tensorlist: return build_list(args, Kind::tensor, "List[Tensor]", fn);
      case Fn::build_genericlist: return build_list(args, Kind::none, nullptr, fn);
      case Fn::restore_type_tag: {
        const PickleValue& a = tuple_arg(args, fn, 2, 2);
        const PickleRef& container = a.items[0];
        if (container->kind != Kind::list && container->kind != Kind::dict) {
          fail(fn + ": argument 1 is " + describe(*container) + "; expected a list or dict");
        }
        container->type_tag = arg(a, 1, Kind::string, fn, "type").text;
        return container;
      }
      case Fn::device: {
        const PickleValue& a = tuple_arg(args, fn, 1, 1);
        const std::string& name = arg(a, 0, Kind::string, fn, "device").text;
        if (name.empty()) fail(fn + ": empty device name");
        PickleRef d = make(Kind::device);
        d->text = name;
        return d;
      }
      case Fn::torch_class: {
        // As in PyTorch, REDUCE hands its argument to the class as state: an empty tuple
        // is no state, anything else (an enum's value, say) is kept.
        PickleRef obj = make(Kind::object);
        obj->text = fn;
        if (!(args->kind == Kind::tuple && args->items.empty())) {
          adopt(node(obj), args);
          obj->state = args;
        }
        return obj;
      }
    }
    fail("internal: unhandled global " + quoted(fn));
  }

  PickleRef persistent_load(const PickleRef& pid) {
    if (pid->kind != Kind::tuple || pid->items.size() != 5 || pid->items[0]->kind != Kind::string ||
        pid->items[0]->text != "storage") {
      std::string what = describe(*pid);
      if (pid->kind == Kind::tuple && !pid->items.empty() && pid->items[0]->kind == Kind::string) {
        what += " starting " + quoted(pid->items[0]->text);
      }
      fail("unknown persistent id (" + what + "); expected ('storage', type, key, location, numel)");
    }
    const std::string fn = "persistent id";
    const PickleValue& type = arg(*pid, 1, Kind::global, fn, "storage type");
    const StorageType* st = storage_type(type.text);
    if (!st) fail("persistent id names " + quoted(type.text, 200) + ", which is not a storage type");
    const std::string& key = arg(*pid, 2, Kind::string, fn, "key").text;
    bool key_ok = !key.empty() && key.size() <= kMaxStorageKey;
    for (char c : key) {
      key_ok = key_ok && (c == '_' || c == '-' || (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') ||
                          (c >= 'A' && c <= 'Z'));
    }
    if (!key_ok) fail("persistent id has storage key " + quoted(key) + "; expected letters, digits, '_' or '-'");
    const std::string& location = arg(*pid, 3, Kind::string, fn, "location").text;
    std::int64_t numel = arg(*pid, 4, Kind::integer, fn, "numel").integer;
    if (numel < 0) fail("persistent id has negative numel " + std::to_string(numel));
    if (numel > kInt64Max / static_cast<std::int64_t>(st->element_size)) {
      fail("persistent id: " + std::to_string(numel) + " elements of " + std::string(st->name) +
           " overflow int64 bytes");
    }
    PickleRef s = make(Kind::storage);
    s->storage.type_name = st->name;
    s->storage.dtype = st->dtype;
    s->storage.element_size = st->element_size;
    s->storage.key = key;
    s->storage.location = location;
    s->storage.numel = numel;
    return s;
  }

  void memo_put(std::uint32_t key) {
    need(1);
    auto it = memo_.find(key);
    if (it != memo_.end()) {
      it->second = stack_.back();
      return;
    }
    if (memo_.size() >= limits_.max_memo) {
      fail("memo would exceed the limit of " + std::to_string(limits_.max_memo) + " entries");
    }
    memo_.emplace(key, stack_.back());
  }

  void memo_get(std::uint32_t key) {
    auto it = memo_.find(key);
    if (it == memo_.end()) fail(op() + " of memo key " + std::to_string(key) + ", which was never stored");
    push(it->second);
  }

  void push_int(std::int64_t i) {
    PickleRef v = make(Kind::integer);
    v->integer = i;
    push(std::move(v));
  }

  void push_string(std::string s) {
    PickleRef v = make(Kind::string);
    v->text = std::move(s);
    push(std::move(v));
  }

  void step();

  std::span<const std::byte> in_;
  const std::string& file_;
  const std::string& record_;
  PickleLimits limits_;
  std::size_t pos_ = 0;
  std::size_t op_pos_ = 0;
  std::size_t values_ = 0;  // values made so far, against limits_.max_values
  std::uint8_t op_ = 0;
  bool stopped_ = false;
  std::vector<PickleRef> stack_;
  std::vector<std::size_t> marks_;
  std::unordered_map<std::uint32_t, PickleRef> memo_;
};

PickleRef Vm::run() {
  if (in_.empty()) fail("empty pickle; expected PROTO 2");
  op_ = std::to_integer<std::uint8_t>(in_[0]);
  if (op_ != PROTO) {
    fail("pickle starts with " + hex_byte(op_) + ", not PROTO (PyTorch writes protocol 2)");
  }
  pos_ = 1;
  auto protocol = static_cast<unsigned>(read_le(1));
  if (protocol != 2) {
    fail("pickle protocol " + std::to_string(protocol) +
         " is not supported; TorchScript archives use protocol 2");
  }
  while (!stopped_) {
    op_pos_ = pos_;
    if (pos_ >= in_.size()) fail("truncated: the pickle ends without STOP");
    op_ = std::to_integer<std::uint8_t>(in_[pos_++]);
    step();
  }
  if (pos_ != in_.size()) {
    op_pos_ = pos_;
    fail(std::to_string(in_.size() - pos_) + " trailing bytes after STOP");
  }
  PickleRef root = std::move(stack_.back());
  // The root may be an unsealed dict; its key index is of no use past this point.
  node(root).index.reset();
  return root;
}

void Vm::step() {
  switch (op_) {
    case PROTO:
      fail("PROTO after the start of the pickle");
    case STOP:
      if (!marks_.empty()) fail("STOP with " + std::to_string(marks_.size()) + " open MARK(s)");
      if (stack_.size() != 1) {
        fail("STOP with " + std::to_string(stack_.size()) + " values on the stack; expected 1");
      }
      stopped_ = true;
      return;
    case MARK:
      if (stack_.size() + marks_.size() >= limits_.max_stack) {
        fail("stack would exceed the limit of " + std::to_string(limits_.max_stack) + " entries");
      }
      marks_.push_back(stack_.size());
      return;
    case POP:
      need(1);
      stack_.pop_back();
      return;
    case POP_MARK:
      stack_.resize(pop_mark());
      return;
    case DUP:
      need(1);
      push(stack_.back());
      return;

    case NONE: push(make(Kind::none)); return;
    case NEWTRUE:
    case NEWFALSE: {
      PickleRef v = make(Kind::boolean);
      v->boolean = op_ == NEWTRUE;
      push(std::move(v));
      return;
    }
    case BININT1: push_int(static_cast<std::int64_t>(read_le(1))); return;
    case BININT2: push_int(static_cast<std::int64_t>(read_le(2))); return;
    case BININT:
      push_int(static_cast<std::int32_t>(static_cast<std::uint32_t>(read_le(4))));
      return;
    case LONG1: {
      auto n = static_cast<std::size_t>(read_le(1));
      if (n > 8) fail("LONG1 of " + std::to_string(n) + " bytes does not fit in 64 bits");
      std::uint64_t v = read_le(n);
      // Two's complement of n bytes: sign-extend from the top byte.
      if (n > 0 && n < 8 && (v >> (8 * n - 1)) & 1) v |= ~std::uint64_t{0} << (8 * n);
      push_int(static_cast<std::int64_t>(v));
      return;
    }
    case BINFLOAT: {
      const std::byte* p = take(8);
      std::uint64_t bits = 0;
      for (int i = 0; i < 8; ++i) bits = (bits << 8) | std::to_integer<std::uint64_t>(p[i]);
      PickleRef v = make(Kind::floating);
      v->floating = std::bit_cast<double>(bits);
      push(std::move(v));
      return;
    }

    case SHORT_BINUNICODE:
    case SHORT_BINSTRING:
    case SHORT_BINBYTES:
      push_string(read_bytes(read_le(1)));
      return;
    case BINUNICODE:
    case BINBYTES:
      push_string(read_bytes(read_le(4)));
      return;
    case BINSTRING: {
      auto n = static_cast<std::int32_t>(static_cast<std::uint32_t>(read_le(4)));
      if (n < 0) fail("BINSTRING with negative length " + std::to_string(n));
      push_string(read_bytes(static_cast<std::uint64_t>(n)));
      return;
    }
    case BINUNICODE8: push_string(read_bytes(read_le(8))); return;

    case EMPTY_TUPLE: push(make(Kind::tuple)); return;
    case TUPLE: {
      std::size_t start = pop_mark();
      push(make_tuple(start));
      return;
    }
    case TUPLE1:
    case TUPLE2:
    case TUPLE3: {
      std::size_t n = op_ - TUPLE1 + 1u;
      need(n);
      push(make_tuple(stack_.size() - n));
      return;
    }

    case EMPTY_LIST: push(make(Kind::list)); return;
    case LIST: {
      std::size_t start = pop_mark();
      check_count(stack_.size() - start, "list");
      PickleRef list = make(Kind::list);
      Node& n = node(list);
      n.items.reserve(stack_.size() - start);
      for (std::size_t i = start; i < stack_.size(); ++i) list_append(n, std::move(stack_[i]));
      stack_.resize(start);
      push(std::move(list));
      return;
    }
    case APPEND: {
      need(2);
      PickleRef item = pop();
      list_append(mutable_target(stack_.back(), Kind::list), std::move(item));
      return;
    }
    case APPENDS: {
      std::size_t start = pop_mark();
      if (start == floor()) fail("stack underflow: APPENDS has no list below its MARK");
      Node& list = mutable_target(stack_[start - 1], Kind::list);
      check_count(list.items.size() + (stack_.size() - start), "list");
      list.items.reserve(list.items.size() + (stack_.size() - start));
      for (std::size_t i = start; i < stack_.size(); ++i) list_append(list, std::move(stack_[i]));
      stack_.resize(start);
      return;
    }

    case EMPTY_DICT: push(make(Kind::dict)); return;
    case DICT: {
      std::size_t start = pop_mark();
      if ((stack_.size() - start) % 2) fail("DICT with an odd number of values (a key without a value)");
      check_count((stack_.size() - start) / 2, "dict");
      PickleRef dict = make(Kind::dict);
      Node& n = node(dict);
      for (std::size_t i = start; i < stack_.size(); i += 2) {
        dict_set(n, std::move(stack_[i]), std::move(stack_[i + 1]));
      }
      stack_.resize(start);
      push(std::move(dict));
      return;
    }
    case SETITEM: {
      need(3);
      PickleRef value = pop();
      PickleRef key = pop();
      dict_set(mutable_target(stack_.back(), Kind::dict), std::move(key), std::move(value));
      return;
    }
    case SETITEMS: {
      std::size_t start = pop_mark();
      if (start == floor()) fail("stack underflow: SETITEMS has no dict below its MARK");
      if ((stack_.size() - start) % 2) fail("SETITEMS with an odd number of values (a key without a value)");
      Node& dict = mutable_target(stack_[start - 1], Kind::dict);
      for (std::size_t i = start; i < stack_.size(); i += 2) {
        dict_set(dict, std::move(stack_[i]), std::move(stack_[i + 1]));
      }
      stack_.resize(start);
      return;
    }

    case BINPUT: memo_put(static_cast<std::uint32_t>(read_le(1))); return;
    case LONG_BINPUT: memo_put(static_cast<std::uint32_t>(read_le(4))); return;
    case MEMOIZE:
      if (memo_.size() > std::numeric_limits<std::uint32_t>::max()) fail("memo is full");
      memo_put(static_cast<std::uint32_t>(memo_.size()));
      return;
    case BINGET: memo_get(static_cast<std::uint32_t>(read_le(1))); return;
    case LONG_BINGET: memo_get(static_cast<std::uint32_t>(read_le(4))); return;

    case GLOBAL: {
      std::string module = read_line("module", true);
      std::string name = read_line("name", false);
      std::string qualified = module + "." + name;
      if (!global_fn(module, qualified)) {
        fail("GLOBAL " + quoted(qualified, 200) +
             " is not allowed (loading never executes code from the archive)");
      }
      PickleRef g = make(Kind::global);
      g->text = std::move(qualified);
      push(std::move(g));
      return;
    }
    case REDUCE: {
      need(2);
      PickleRef args = pop();
      PickleRef callable = pop();
      push(apply(callable, args));
      return;
    }
    case NEWOBJ: {
      need(2);
      PickleRef args = pop();
      PickleRef cls = pop();
      if (cls->kind != Kind::global || fn_of(*cls) != Fn::torch_class) {
        fail("NEWOBJ on " + describe(*cls) + "; only __torch__ classes can be instantiated");
      }
      // The arguments of cls.__new__ carry nothing for TorchScript classes; PyTorch drops
      // them too.
      if (args->kind != Kind::tuple) fail("NEWOBJ arguments are " + describe(*args) + ", not a tuple");
      PickleRef obj = make(Kind::object);
      obj->text = cls->text;
      push(std::move(obj));
      return;
    }
    case BUILD: {
      need(2);
      PickleRef state = pop();
      Node& obj = mutable_target(stack_.back(), Kind::object);
      if (obj.state) fail("BUILD on " + describe(obj) + ", which already has its state");
      adopt(obj, state);
      obj.state = std::move(state);
      return;
    }
    case BINPERSID: {
      need(1);
      PickleRef pid = pop();
      push(persistent_load(pid));
      return;
    }

    default: {
      std::string what = "unsupported opcode " + hex_byte(op_);
      if (op_ >= 0x20 && op_ < 0x7f) what += std::string(" ('") + static_cast<char>(op_) + "')";
      fail(what + "; PyTorch's pickles use protocol 2 opcodes only");
    }
  }
}

}  // namespace

PickleRef unpickle(std::span<const std::byte> bytes, const std::string& file, const std::string& record,
                   PickleLimits limits) {
  return Vm(bytes, file, record, limits).run();
}

}  // namespace kiln::format
