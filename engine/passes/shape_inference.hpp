// Shape and dtype inference, the shape report, and constant folding of shape arithmetic.
//
// infer_shapes walks the graph once, in order, with an abstract value per IR value: a
// tensor's dtype and dims (SymInt polynomials over the inputs' dimension symbols), an
// int's value (aten::size chains stay symbolic: batch, seq, seq + 1), and int lists. It
// writes what it learns into the values' ir::Type, following PyTorch's broadcasting and
// type-promotion rules, and records every place where the trace fixed a size that comes
// from an input: a literal that must equal an input-derived size there (PyTorch fails at
// any other size: "refuses") or a literal slice bound that silently cuts an input-derived
// dimension ("silent"). Matching literals by value is never used: a hidden size of 32
// equal to a traced sequence of 32 is not a finding, because no op compares the two.
// fold_constants then uses what inference proved about ints to simplify shape arithmetic.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "engine/import/importer.hpp"
#include "engine/ir/graph.hpp"
#include "engine/ir/sym_int.hpp"

namespace kiln::passes {

// What is known of one graph input before running: its dtype and dims, each concrete or an
// input symbol (ir::Dim::symbol(id, name)); shape nullopt when even the rank is unknown.
struct InputSpec {
  std::optional<DType> dtype;
  std::optional<std::vector<ir::Dim>> shape;
};

// Input specs for Hugging Face's input names (input_ids, attention_mask, token_type_ids,
// position_ids): int64 [batch, seq], the shared symbols "batch" (id 0) and "seq" (id 1),
// unless traced_inputs.pkl says the input had another rank. Other inputs stay unknown:
// a traced shape says nothing about the ranks and sizes an input may take later.
std::vector<InputSpec> default_input_specs(const import::ImportedModel& model);

struct ShapeFinding {
  // refuses: lhs == rhs must hold (or lhs == 1 with or_one); silent: a literal cuts lhs to
  // at most rhs; limit: lhs <= rhs must hold (an index bound against a table's size, or a
  // slice of a fixed-size buffer by an input-derived length).
  enum class Kind { refuses, silent, limit } kind = Kind::refuses;
  std::optional<ir::SourceLoc> loc;
  std::string op;      // "aten::reshape"
  std::string detail;  // "needs batch*seq*8 == batch*56"
  // The constraint lhs == rhs (refuses) that must hold at run time; for silent findings
  // lhs is the input-derived size and rhs the literal that replaces it.
  ir::SymInt lhs, rhs;
  // When the constraint pins one symbol: which and to what ("seq", 7); for a limit, the
  // largest value the symbol may take.
  std::optional<std::int64_t> symbol;
  std::optional<std::int64_t> value;
  // Set when a "refuses" constraint is also satisfied by broadcasting with size 1.
  bool or_one = false;
  // A limit computed from an upper bound of index values (RoBERTa's position ids count
  // only non-padding tokens): inputs over it may still be fine, so it explains a failure
  // rather than refusing up front.
  bool value_bound = false;
};

struct ShapeReport {
  // Names of dimension symbols by id: the input symbols, then derived ones ("seq+1").
  std::vector<std::string> symbol_names;
  // Definitions of derived symbols (ids >= the number of input symbols).
  std::map<std::int64_t, ir::SymInt> derived;
  std::vector<ShapeFinding> findings;
  // The value of every int-typed IR value (and int-valued 0-dim tensors) when known.
  std::map<std::uint32_t, ir::SymInt> int_values;
  // The traced size of each input symbol, when the archive says (traced_inputs.pkl).
  std::map<std::int64_t, std::int64_t> traced;

  std::string symbol_name(std::int64_t id) const;
  std::string str(const ir::SymInt& v) const;
  // One line per finding: "code/__torch__.py:12:8: aten::reshape: the trace fixed seq to 7 ...".
  std::vector<std::string> lines() const;
};

// `tensors` gives the data of TensorRef constants, so that small integer tensor constants
// (CONSTANTS.c1 holding 0 in `seq_length + 0`) take part in shape arithmetic.
ShapeReport infer_shapes(ir::Graph& g, const std::vector<InputSpec>& inputs,
                         const std::map<std::string, import::ArchiveTensor>& tensors,
                         const std::vector<std::vector<std::int64_t>>& traced_input_shapes = {});

// Replaces ints the report proves constant (sizes of fixed dims, prim::dtype of known
// dtypes) with constants, ints the report proves equal to an earlier top-level int (every
// layer's size(x, 0) is batch) with that int, and Int(NumToTensor(x)) with x. The
// computations left dead go with eliminate_dead_code. Returns the number of rewrites.
std::size_t fold_constants(ir::Graph& g, const ShapeReport& report);

}  // namespace kiln::passes
