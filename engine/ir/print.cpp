#include "engine/ir/print.hpp"

#include <charconv>
#include <string_view>
#include <type_traits>

namespace kiln::ir {

namespace {

// PyTorch's ScalarType names, which its graph dump uses ("Float(*, 16)").
std::string_view scalar_type_name(DType t) {
  switch (t) {
    case DType::float32: return "Float";
    case DType::float64: return "Double";
    case DType::float16: return "Half";
    case DType::bfloat16: return "BFloat16";
    case DType::int8: return "Char";
    case DType::int16: return "Short";
    case DType::int32: return "Int";
    case DType::int64: return "Long";
    case DType::uint8: return "Byte";
    case DType::bool_: return "Bool";
  }
  return "?";
}

// Shortest text that reads back as the same double, with a '.' so it reads as a float
// ("1." like PyTorch, "0.5", "1.0000000000000001e-05").
std::string float_str(double d) {
  char buf[64];
  auto res = std::to_chars(buf, buf + sizeof buf, d);
  std::string s(buf, res.ptr);
  if (s.find_first_of(".eninf") == std::string::npos) s += '.';
  return s;
}

std::string quoted(const std::string& s) {
  std::string out = "\"";
  for (char c : s) {
    if (c == '"' || c == '\\') out += '\\';
    out += c;
  }
  return out + '"';
}

std::string attr_str(const AttrValue& v) {
  return std::visit(
      [](const auto& x) -> std::string {
        using T = std::decay_t<decltype(x)>;
        if constexpr (std::is_same_v<T, bool>) {
          return x ? "1" : "0";  // PyTorch stores bool constants as int attributes
        } else if constexpr (std::is_same_v<T, std::int64_t>) {
          return std::to_string(x);
        } else if constexpr (std::is_same_v<T, double>) {
          return float_str(x);
        } else if constexpr (std::is_same_v<T, std::string>) {
          return quoted(x);
        } else if constexpr (std::is_same_v<T, std::vector<std::int64_t>>) {
          std::string s = "[";
          for (std::size_t i = 0; i < x.size(); ++i) s += (i ? ", " : "") + std::to_string(x[i]);
          return s + "]";
        } else {
          return "<Tensor " + quoted(x.name) + ">";
        }
      },
      v);
}

std::string value_def(const Graph& g, ValueId v) { return value_ref(g, v) + " : " + type_str(value(g, v).type); }

std::string refs(const Graph& g, const std::vector<ValueId>& vs) {
  std::string s;
  for (std::size_t i = 0; i < vs.size(); ++i) s += (i ? ", " : "") + value_ref(g, vs[i]);
  return s;
}

void print_node(const Graph& g, NodeId n, std::size_t indent, std::string& out);

void print_block(const Graph& g, BlockId b, std::size_t i, std::size_t indent, std::string& out) {
  const Block& blk = block(g, b);
  out += std::string(indent, ' ') + "block" + std::to_string(i) + "(";
  for (std::size_t k = 0; k < blk.params.size(); ++k) out += (k ? ", " : "") + value_def(g, blk.params[k]);
  out += "):\n";
  for (NodeId n : blk.nodes) print_node(g, n, indent + 2, out);
  out += std::string(indent + 2, ' ') + "-> (" + refs(g, blk.returns) + ")\n";
}

void print_node(const Graph& g, NodeId n, std::size_t indent, std::string& out) {
  out += std::string(indent, ' ') + node_str(g, n);
  if (const auto& loc = node(g, n).loc)
    out += " # " + loc->file + ":" + std::to_string(loc->line) + ":" + std::to_string(loc->column);
  out += '\n';
  const auto& blocks = node(g, n).blocks;
  for (std::size_t i = 0; i < blocks.size(); ++i) print_block(g, blocks[i], i, indent + 2, out);
}

}  // namespace

std::string type_str(const Type& t) {
  switch (t.kind) {
    case TypeKind::tensor: {
      std::string s = t.tensor.dtype ? std::string(scalar_type_name(*t.tensor.dtype)) : "Tensor";
      if (!t.tensor.shape) return s;
      s += '(';
      const auto& dims = *t.tensor.shape;
      for (std::size_t i = 0; i < dims.size(); ++i) {
        if (i) s += ", ";
        if (!dims[i].symbolic)
          s += std::to_string(dims[i].value);
        else
          s += dims[i].name.empty() ? "*" : dims[i].name;
      }
      return s + ')';
    }
    case TypeKind::int_: return "int";
    case TypeKind::float_: return "float";
    case TypeKind::bool_: return "bool";
    case TypeKind::string: return "str";
    case TypeKind::none: return "NoneType";
    case TypeKind::device: return "Device";
    case TypeKind::list: return (t.elems.empty() ? std::string("?") : type_str(t.elems[0])) + "[]";
    case TypeKind::optional: return (t.elems.empty() ? std::string("?") : type_str(t.elems[0])) + "?";
    case TypeKind::tuple: {
      std::string s = "(";
      for (std::size_t i = 0; i < t.elems.size(); ++i) s += (i ? ", " : "") + type_str(t.elems[i]);
      return s + ")";
    }
  }
  return "?";
}

std::string value_ref(const Graph& g, ValueId v) {
  if (idx(v) >= g.values.size()) return "%<bad " + std::to_string(idx(v)) + ">";
  const std::string& name = value(g, v).name;
  return "%" + (name.empty() ? std::to_string(idx(v)) : name);
}

std::string node_str(const Graph& g, NodeId n) {
  const Node& nd = node(g, n);
  std::string s;
  for (std::size_t i = 0; i < nd.outputs.size(); ++i) {
    if (i) s += ", ";
    s += idx(nd.outputs[i]) < g.values.size() ? value_def(g, nd.outputs[i]) : value_ref(g, nd.outputs[i]);
  }
  s += (s.empty() ? "= " : " = ") + std::string(symbol_str(g, nd.kind));
  if (!nd.attrs.empty()) {
    s += '[';
    for (std::size_t i = 0; i < nd.attrs.size(); ++i)
      s += (i ? ", " : "") + nd.attrs[i].name + "=" + attr_str(nd.attrs[i].value);
    s += ']';
  }
  return s + "(" + refs(g, nd.inputs) + ")";
}

std::string print(const Graph& g) {
  const Block& top = block(g, kTopBlock);
  std::string out = "graph(";
  for (std::size_t i = 0; i < top.params.size(); ++i) out += (i ? ",\n      " : "") + value_def(g, top.params[i]);
  out += "):\n";
  for (NodeId n : top.nodes) print_node(g, n, 2, out);
  out += "  return (" + refs(g, top.returns) + ")\n";
  return out;
}

}  // namespace kiln::ir
