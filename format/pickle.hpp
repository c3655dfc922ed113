// unpickle — a data-only pickle VM for the pickles inside TorchScript archives.
//
// Reads protocol 2 as PyTorch writes it (plus the opcodes newer PyTorch readers accept) and
// builds an inert tree of PickleValue. Nothing is ever executed: a GLOBAL is resolved against
// a fixed allowlist (tensor rebuilders, storage types, OrderedDict, torch.jit._pickle list
// builders and restore_type_tag, torch.device, `__torch__.*` classes as inert objects), and
// any other (`os.system`, `builtins.eval`, ...) is refused with an error naming it. Limits on
// stack, memo, container sizes, string lengths and nesting depth keep a hostile pickle from
// exhausting memory or the C++ stack. Errors name the source and the byte offset.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "kiln/dtype.hpp"

namespace kiln::format {

struct PickleValue;
using PickleRef = std::shared_ptr<PickleValue>;

// A storage named by a persistent id: ("storage", torch.<Type>Storage, key, location, numel).
struct PickleStorage {
  std::string type_name;        // "FloatStorage", "QInt8Storage", ...
  std::optional<DType> dtype;   // empty for types kiln cannot compute with (quantized, complex)
  std::size_t element_size = 0; // bytes per element of type_name
  std::string key;              // record name under data/ (or constants/)
  std::string location;         // "cpu", ...
  std::int64_t numel = 0;
};

// A tensor rebuilt by torch._utils._rebuild_tensor_v2 / _rebuild_parameter / _rebuild_qtensor.
struct PickleTensor {
  PickleRef storage;            // kind storage
  std::int64_t storage_offset = 0;  // in elements
  std::vector<std::int64_t> sizes;
  std::vector<std::int64_t> strides;
  bool requires_grad = false;
  bool is_parameter = false;    // came through _rebuild_parameter
  bool quantized = false;       // came through _rebuild_qtensor; qparams kept as-is
  PickleRef qparams;            // the quantizer tuple, when quantized
};

struct PickleValue {
  enum class Kind {
    none, boolean, integer, floating, string,
    tuple, list, dict,
    object,   // instance of an allowlisted class (`__torch__.*`); `state` from BUILD
    global,   // an allowlisted global not (yet) applied, e.g. a class reference
    storage, tensor,
    device,   // torch.device(...): `text` holds "cpu", "cuda:0", ...
  };
  Kind kind = Kind::none;
  bool boolean = false;
  std::int64_t integer = 0;
  double floating = 0;
  // string: raw bytes, not necessarily UTF-8 (custom classes keep binary blobs here);
  // global/object: the qualified name ("__torch__.transformers.models.bert.modeling_bert.BertModel");
  // device: the device string.
  std::string text;
  std::vector<PickleRef> items;                           // tuple, list
  std::vector<std::pair<PickleRef, PickleRef>> entries;   // dict, in insertion order
  PickleRef state;                                        // object: BUILD state (may be null)
  std::string type_tag;        // from restore_type_tag, e.g. "Dict[str, Tensor]"
  PickleStorage storage;       // kind storage
  PickleTensor tensor;         // kind tensor
};

struct PickleLimits {
  std::size_t max_stack = 1 << 20;         // values on the VM stack, marks included
  std::size_t max_memo = 1 << 22;          // memo entries
  std::size_t max_container = 1 << 26;     // elements in one tuple, list or dict
  std::size_t max_string = 1ull << 31;     // bytes in one string
  std::size_t max_depth = 1000;            // nesting of containers and objects
  std::size_t max_dims = 64;               // tensor rank
  // Values made in all (each costs a few hundred bytes; BERT-base's data.pkl makes about
  // 5,000), so that a small hostile pickle cannot ask for gigabytes.
  std::size_t max_values = 1 << 21;
};

// Unpickles one pickle (PROTO 2 .. STOP). Errors are kiln::Error::bad_input(file, record,
// "at byte N: <what>"), e.g. file "model.pt", record "model/data.pkl". Trailing bytes after
// STOP are an error.
PickleRef unpickle(std::span<const std::byte> bytes, const std::string& file, const std::string& record,
                   PickleLimits limits = {});

}  // namespace kiln::format
