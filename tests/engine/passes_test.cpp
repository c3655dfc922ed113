// Tests of the graph rewrites in engine/passes/passes.hpp on small graphs built by hand:
// each pass's result printed exactly and verified, what each must keep (effects, random ops,
// values that differ only in ways that matter), and functionalize's refusals with their
// exact messages.
#include <doctest/doctest.h>

#include <cstdint>
#include <limits>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "engine/ir/graph.hpp"
#include "engine/ir/print.hpp"
#include "engine/ir/verify.hpp"
#include "engine/passes/passes.hpp"
#include "kiln/error.hpp"

namespace ir = kiln::ir;
namespace passes = kiln::passes;
using ir::Dim;
using ir::Type;
using kiln::DType;

namespace {

const ir::BlockId top = ir::kTopBlock;

Type f32() { return Type::make_tensor(DType::float32, std::vector{Dim::of(4)}); }
Type f16() { return Type::make_tensor(DType::float16, std::vector{Dim::of(4)}); }

// The output of a new node at the end of `b`.
ir::ValueId op(ir::Graph& g, ir::BlockId b, std::string_view kind, std::vector<ir::ValueId> inputs, Type type = f32()) {
  return ir::node(g, ir::append_node(g, b, kind, std::move(inputs), {std::move(type)})).outputs[0];
}

ir::ValueId int_const(ir::Graph& g, ir::BlockId b, std::int64_t v) {
  return ir::append_constant(g, b, v, Type::make_int());
}
ir::ValueId bool_const(ir::Graph& g, ir::BlockId b, bool v) { return ir::append_constant(g, b, v, Type::make_bool()); }

ir::ValueId none_const(ir::Graph& g, ir::BlockId b) {
  const ir::NodeId n = ir::append_node(g, b, "prim::Constant", {}, {Type::make_none()});
  return ir::node(g, n).outputs[0];
}

void name(ir::Graph& g, ir::ValueId v, const char* text) {
  ir::value(g, v).name = std::string(text);  // not `= "..."`: GCC 12 -Wrestrict false positive (PR105651)
}

// The graph printed, after checking that it verifies.
std::string verified(const ir::Graph& g) {
  CHECK_NOTHROW(ir::verify(g));
  return ir::print(g);
}

// The message of the kiln::Error functionalize throws, checking it is a bad_input error.
std::string functionalize_error(ir::Graph& g) {
  try {
    passes::functionalize(g);
  } catch (const kiln::Error& e) {
    CHECK(e.kind() == kiln::ErrorKind::bad_input);
    return e.what();
  }
  return "";
}

// x -> prim::If(cond) with one output per branch value; returns the If node.
ir::NodeId make_if(ir::Graph& g, ir::BlockId b, ir::ValueId cond, std::vector<Type> outputs) {
  const ir::NodeId n = ir::append_node(g, b, "prim::If", {cond}, std::move(outputs));
  ir::add_block(g, n);
  ir::add_block(g, n);
  return n;
}

ir::BlockId branch(const ir::Graph& g, ir::NodeId if_node, std::size_t i) { return ir::node(g, if_node).blocks[i]; }

}  // namespace

TEST_CASE("passes: eliminate_dead_code removes a dead chain in one call") {
  ir::Graph g;
  const ir::ValueId x = ir::add_input(g, f32(), "x");
  const ir::ValueId cond = ir::add_input(g, Type::make_bool(), "cond");
  // relu -> neg -> exp: only the last is unread, the others die with it.
  const ir::ValueId r = op(g, top, "aten::relu", {x});
  const ir::ValueId n = op(g, top, "aten::neg", {r});
  op(g, top, "aten::exp", {n});
  // A constant read only inside a dead If goes with the If.
  const ir::ValueId two = int_const(g, top, 2);
  const ir::NodeId dead_if = make_if(g, top, cond, {f32()});
  ir::block(g, branch(g, dead_if, 0)).returns = {op(g, branch(g, dead_if, 0), "aten::mul.Scalar", {x, two})};
  ir::block(g, branch(g, dead_if, 1)).returns = {x};
  // A loop whose result is unread and whose body is pure.
  const ir::ValueId trips = int_const(g, top, 3);
  const ir::ValueId yes = bool_const(g, top, true);
  const ir::NodeId loop = ir::append_node(g, top, "prim::Loop", {trips, yes, x}, {f32()});
  const ir::BlockId body = ir::add_block(g, loop);
  ir::add_block_param(g, body, Type::make_int(), "i");
  const ir::ValueId h = ir::add_block_param(g, body, f32(), "h");
  ir::block(g, body).returns = {yes, op(g, body, "aten::tanh", {h})};
  ir::add_output(g, op(g, top, "aten::sigmoid", {x}));

  // relu, neg, exp; the constant 2, the If and its mul; the loop's two constants, the loop
  // and its tanh.
  CHECK(passes::eliminate_dead_code(g) == 10);
  CHECK(verified(g) ==
        "graph(%x : Float(4),\n"
        "      %cond : bool):\n"
        "  %14 : Float(4) = aten::sigmoid(%x)\n"
        "  return (%14)\n");
  CHECK(passes::eliminate_dead_code(g) == 0);
}

TEST_CASE("passes: eliminate_dead_code keeps effects and what they read") {
  ir::Graph g;
  const ir::ValueId x = ir::add_input(g, f32(), "x");
  const ir::ValueId cond = ir::add_input(g, Type::make_bool(), "cond");
  const ir::ValueId one = int_const(g, top, 1);
  // An in-place op whose result is unread still writes its input.
  const ir::ValueId fresh = op(g, top, "aten::relu", {x});
  op(g, top, "aten::add_.Scalar", {fresh, one, one});
  ir::append_node(g, top, "prim::Print", {fresh}, {});
  // A branch that may raise: the If has no output but must stay.
  const ir::ValueId msg = ir::append_constant(g, top, std::string("bad"), Type::make_string());
  const ir::NodeId check = make_if(g, top, cond, {});
  ir::append_node(g, branch(g, check, 0), "prim::RaiseException", {msg}, {});
  // A list append whose result is unread still changes the list.
  const ir::ValueId list = op(g, top, "prim::ListConstruct", {x}, Type::make_list(Type::make_tensor()));
  op(g, top, "aten::append.t", {list, x}, Type::make_list(Type::make_tensor()));
  // Random but effect-free: an unread training dropout goes.
  const ir::ValueId p = ir::append_constant(g, top, 0.1, Type::make_float());
  op(g, top, "aten::dropout", {x, p, bool_const(g, top, true)});
  ir::add_output(g, list);

  CHECK(passes::eliminate_dead_code(g) == 3);
  CHECK(verified(g) ==
        "graph(%x : Float(4),\n"
        "      %cond : bool):\n"
        "  %2 : int = prim::Constant[value=1]()\n"
        "  %3 : Float(4) = aten::relu(%x)\n"
        "  %4 : Float(4) = aten::add_(%3, %2, %2)\n"
        "  = prim::Print(%3)\n"
        "  %5 : str = prim::Constant[value=\"bad\"]()\n"
        "  = prim::If(%cond)\n"
        "    block0():\n"
        "      = prim::RaiseException(%5)\n"
        "      -> ()\n"
        "    block1():\n"
        "      -> ()\n"
        "  %6 : Tensor[] = prim::ListConstruct(%x)\n"
        "  %7 : Tensor[] = aten::append(%6, %x)\n"
        "  return (%6)\n");
}

TEST_CASE("passes: eliminate_dead_code keeps loop-carried state and drops unread If outputs") {
  ir::Graph g;
  const ir::ValueId x = ir::add_input(g, f32(), "x");
  const ir::ValueId cond = ir::add_input(g, Type::make_bool(), "cond");
  const ir::ValueId trips = int_const(g, top, 3);
  const ir::ValueId yes = bool_const(g, top, true);
  // Two carried values; only the first is read after the loop, the second still feeds
  // the next iteration, so the body keeps computing it.
  const ir::NodeId loop = ir::append_node(g, top, "prim::Loop", {trips, yes, x, x}, {f32(), f32()});
  const ir::BlockId body = ir::add_block(g, loop);
  ir::add_block_param(g, body, Type::make_int(), "i");
  const ir::ValueId a = ir::add_block_param(g, body, f32(), "a");
  const ir::ValueId b = ir::add_block_param(g, body, f32(), "b");
  op(g, body, "aten::relu", {a});  // dead inside the body
  ir::block(g, body).returns = {yes, op(g, body, "aten::add.Tensor", {a, b}), op(g, body, "aten::tanh", {b})};
  // The If's second output is unread: it goes, and so does what computed it.
  const ir::ValueId h = ir::node(g, loop).outputs[0];
  const ir::NodeId pick = make_if(g, top, cond, {f32(), f32()});
  ir::block(g, branch(g, pick, 0)).returns = {h, op(g, branch(g, pick, 0), "aten::exp", {h})};
  ir::block(g, branch(g, pick, 1)).returns = {op(g, branch(g, pick, 1), "aten::neg", {h}), h};
  ir::add_output(g, ir::node(g, pick).outputs[0]);

  CHECK(passes::eliminate_dead_code(g) == 3);  // relu, exp, and the If's output
  CHECK(verified(g) ==
        "graph(%x : Float(4),\n"
        "      %cond : bool):\n"
        "  %2 : int = prim::Constant[value=3]()\n"
        "  %3 : bool = prim::Constant[value=1]()\n"
        "  %4 : Float(4), %5 : Float(4) = prim::Loop(%2, %3, %x, %x)\n"
        "    block0(%i : int, %a : Float(4), %b : Float(4)):\n"
        "      %10 : Float(4) = aten::add(%a, %b)\n"
        "      %11 : Float(4) = aten::tanh(%b)\n"
        "      -> (%3, %10, %11)\n"
        "  %12 : Float(4) = prim::If(%cond)\n"
        "    block0():\n"
        "      -> (%4)\n"
        "    block1():\n"
        "      %15 : Float(4) = aten::neg(%4)\n"
        "      -> (%15)\n"
        "  return (%12)\n");
}

TEST_CASE("passes: eliminate_common_subexpressions merges equal constants only") {
  ir::Graph g;
  const double nan = std::numeric_limits<double>::quiet_NaN();
  std::vector<ir::ValueId> outs;
  auto keep = [&](ir::ValueId v) { outs.push_back(v); };
  keep(int_const(g, top, 1));
  keep(int_const(g, top, 1));       // merged
  keep(bool_const(g, top, true));   // not an int: kept
  keep(ir::append_constant(g, top, 0.0, Type::make_float()));
  keep(ir::append_constant(g, top, -0.0, Type::make_float()));  // 1/x tells them apart: kept
  keep(ir::append_constant(g, top, 0.0, Type::make_float()));   // merged
  keep(ir::append_constant(g, top, nan, Type::make_float()));
  keep(ir::append_constant(g, top, nan, Type::make_float()));   // NaN equals nothing: kept
  keep(ir::append_constant(g, top, ir::TensorRef{"w"}, f32()));
  keep(ir::append_constant(g, top, ir::TensorRef{"w"}, f32()));  // merged
  keep(ir::append_constant(g, top, ir::TensorRef{"b"}, f32()));  // another tensor: kept
  keep(ir::append_constant(g, top, ir::TensorRef{"w"}, f16()));  // another type: kept
  keep(ir::append_constant(g, top, std::string("cpu"), Type::make_string()));
  keep(ir::append_constant(g, top, std::string("cpu"), Type::make_device()));  // another type: kept
  keep(none_const(g, top));
  keep(none_const(g, top));  // merged
  for (ir::ValueId v : outs) ir::add_output(g, v);

  CHECK(passes::eliminate_common_subexpressions(g) == 4);
  CHECK(verified(g) ==
        "graph():\n"
        "  %0 : int = prim::Constant[value=1]()\n"
        "  %2 : bool = prim::Constant[value=1]()\n"
        "  %3 : float = prim::Constant[value=0.]()\n"
        "  %4 : float = prim::Constant[value=-0.]()\n"
        "  %6 : float = prim::Constant[value=nan]()\n"
        "  %7 : float = prim::Constant[value=nan]()\n"
        "  %8 : Float(4) = prim::Constant[value=<Tensor \"w\">]()\n"
        "  %10 : Float(4) = prim::Constant[value=<Tensor \"b\">]()\n"
        "  %11 : Half(4) = prim::Constant[value=<Tensor \"w\">]()\n"
        "  %12 : str = prim::Constant[value=\"cpu\"]()\n"
        "  %13 : Device = prim::Constant[value=\"cpu\"]()\n"
        "  %14 : NoneType = prim::Constant()\n"
        "  return (%0, %0, %2, %3, %4, %3, %6, %7, %8, %8, %10, %11, %12, %13, %14, %14)\n");
}

TEST_CASE("passes: eliminate_common_subexpressions merges equal pure ops, not random ones") {
  ir::Graph g;
  const ir::ValueId x = ir::add_input(g, f32(), "x");
  const ir::ValueId w = ir::append_constant(g, top, ir::TensorRef{"w"}, Type::make_tensor(DType::float32));
  const ir::ValueId b = ir::append_constant(g, top, ir::TensorRef{"b"}, Type::make_tensor(DType::float32));
  const ir::ValueId l1 = op(g, top, "aten::linear", {x, w, b});
  const ir::ValueId l2 = op(g, top, "aten::linear", {x, w, b});  // merged with l1
  // Equal once l2 reads as l1: a chain merges in one call.
  const ir::ValueId g1 = op(g, top, "aten::relu", {l1});
  const ir::ValueId g2 = op(g, top, "aten::relu", {l2});
  const ir::ValueId p = ir::append_constant(g, top, 0.1, Type::make_float());
  const ir::ValueId train = bool_const(g, top, true);
  const ir::ValueId d1 = op(g, top, "aten::dropout", {g1, p, train});
  const ir::ValueId d2 = op(g, top, "aten::dropout", {g2, p, train});  // random: kept
  // Another overload is another op.
  const ir::ValueId one = int_const(g, top, 1);
  const ir::ValueId s1 = op(g, top, "aten::add.Tensor", {d1, d2, one});
  const ir::ValueId s2 = op(g, top, "aten::add.Scalar", {d1, d2, one});
  ir::add_output(g, s1);
  ir::add_output(g, s2);

  CHECK(passes::eliminate_common_subexpressions(g) == 2);
  CHECK(verified(g) ==
        "graph(%x : Float(4)):\n"
        "  %1 : Float = prim::Constant[value=<Tensor \"w\">]()\n"
        "  %2 : Float = prim::Constant[value=<Tensor \"b\">]()\n"
        "  %3 : Float(4) = aten::linear(%x, %1, %2)\n"
        "  %5 : Float(4) = aten::relu(%3)\n"
        "  %7 : float = prim::Constant[value=0.1]()\n"
        "  %8 : bool = prim::Constant[value=1]()\n"
        "  %9 : Float(4) = aten::dropout(%5, %7, %8)\n"
        "  %10 : Float(4) = aten::dropout(%5, %7, %8)\n"
        "  %11 : int = prim::Constant[value=1]()\n"
        "  %12 : Float(4) = aten::add(%9, %10, %11)\n"
        "  %13 : Float(4) = aten::add(%9, %10, %11)\n"
        "  return (%12, %13)\n");
}

TEST_CASE("passes: eliminate_common_subexpressions reaches into blocks, not out of them") {
  ir::Graph g;
  const ir::ValueId x = ir::add_input(g, f32(), "x");
  const ir::ValueId cond = ir::add_input(g, Type::make_bool(), "cond");
  const ir::ValueId before = op(g, top, "aten::relu", {x});
  const ir::NodeId pick = make_if(g, top, cond, {f32()});
  // Then: relu(x) already ran before the If, so the branch reuses it.
  const ir::ValueId inner = op(g, branch(g, pick, 0), "aten::relu", {x});
  ir::block(g, branch(g, pick, 0)).returns = {op(g, branch(g, pick, 0), "aten::mul.Tensor", {inner, before})};
  // Else: tanh(x) runs only on this branch, so the tanh after the If must compute its own.
  ir::block(g, branch(g, pick, 1)).returns = {op(g, branch(g, pick, 1), "aten::tanh", {x})};
  const ir::ValueId after = op(g, top, "aten::tanh", {x});
  ir::add_output(g, op(g, top, "aten::add.Tensor", {ir::node(g, pick).outputs[0], after, int_const(g, top, 1)}));

  CHECK(passes::eliminate_common_subexpressions(g) == 1);
  CHECK(verified(g) ==
        "graph(%x : Float(4),\n"
        "      %cond : bool):\n"
        "  %2 : Float(4) = aten::relu(%x)\n"
        "  %3 : Float(4) = prim::If(%cond)\n"
        "    block0():\n"
        "      %5 : Float(4) = aten::mul(%2, %2)\n"
        "      -> (%5)\n"
        "    block1():\n"
        "      %6 : Float(4) = aten::tanh(%x)\n"
        "      -> (%6)\n"
        "  %7 : Float(4) = aten::tanh(%x)\n"
        "  %8 : int = prim::Constant[value=1]()\n"
        "  %9 : Float(4) = aten::add(%3, %7, %8)\n"
        "  return (%9)\n");
}

TEST_CASE("passes: eliminate_common_subexpressions does not merge reads of written values") {
  ir::Graph g;
  const ir::ValueId x = ir::add_input(g, f32(), "x");
  const ir::ValueId one = int_const(g, top, 1);
  const ir::ValueId t = op(g, top, "aten::relu", {x});
  const ir::ValueId a = op(g, top, "aten::exp", {t});
  op(g, top, "aten::add_.Scalar", {t, one, one});
  const ir::ValueId b = op(g, top, "aten::exp", {t});  // reads t after the write: kept
  int_const(g, top, 1);                                // constants still merge
  ir::add_output(g, op(g, top, "aten::sub.Tensor", {a, b, one}));

  CHECK(passes::eliminate_common_subexpressions(g) == 1);
  CHECK(ir::print(g).find("aten::exp(%2)\n  %4 : Float(4) = aten::add_(%2, %1, %1)\n  %5 : Float(4) = aten::exp(%2)") !=
        std::string::npos);
  CHECK_NOTHROW(ir::verify(g));
}

TEST_CASE("passes: eliminate_common_subexpressions does not merge reads of a list the graph appends to") {
  ir::Graph g;
  const ir::ValueId x = ir::add_input(g, f32(), "x");
  const Type list_type = Type::make_list(Type::make_tensor());
  const ir::ValueId l = op(g, top, "prim::ListConstruct", {x}, list_type);
  const ir::ValueId l2 = op(g, top, "prim::ListConstruct", {x}, list_type);  // another list: kept
  const ir::ValueId n1 = op(g, top, "aten::len.t", {l}, Type::make_int());
  op(g, top, "aten::append.t", {l, x}, list_type);
  const ir::ValueId n2 = op(g, top, "aten::len.t", {l}, Type::make_int());  // one longer: kept
  const ir::ValueId s1 = op(g, top, "aten::relu", {x});
  const ir::ValueId s2 = op(g, top, "aten::relu", {x});  // no list involved: merged
  for (ir::ValueId v : {l2, n1, n2, s1, s2}) ir::add_output(g, v);

  CHECK(passes::eliminate_common_subexpressions(g) == 1);
  CHECK(verified(g) ==
        "graph(%x : Float(4)):\n"
        "  %1 : Tensor[] = prim::ListConstruct(%x)\n"
        "  %2 : Tensor[] = prim::ListConstruct(%x)\n"
        "  %3 : int = aten::len(%1)\n"
        "  %4 : Tensor[] = aten::append(%1, %x)\n"
        "  %5 : int = aten::len(%1)\n"
        "  %6 : Float(4) = aten::relu(%x)\n"
        "  return (%2, %3, %5, %6, %6)\n");
}

TEST_CASE("passes: remove_inference_noops removes what inference does not need") {
  ir::Graph g;
  const ir::ValueId x = ir::add_input(g, f32(), "x");
  const ir::ValueId no = bool_const(g, top, false);
  const ir::ValueId yes = bool_const(g, top, true);
  const ir::ValueId none = none_const(g, top);
  const ir::ValueId p = ir::append_constant(g, top, 0.1, Type::make_float());
  const ir::ValueId contiguous_format = int_const(g, top, 0);
  const ir::ValueId float32 = int_const(g, top, 6);
  const ir::ValueId float16 = int_const(g, top, 5);
  const ir::ValueId cpu = ir::append_constant(g, top, std::string("cpu"), Type::make_device());
  ir::ValueId v = op(g, top, "aten::dropout", {x, p, no});
  v = op(g, top, "aten::detach", {v});
  v = op(g, top, "aten::contiguous", {v, contiguous_format});
  v = op(g, top, "aten::to.dtype", {v, float32, no, no, none});
  v = op(g, top, "aten::to.device", {v, cpu, float32, no, no, none});
  v = op(g, top, "aten::type_as", {v, x});
  v = op(g, top, "prim::unchecked_cast", {v});
  name(g, v, "same");
  const ir::ValueId half = op(g, top, "aten::to.dtype", {v, float16, no, no, none}, f16());  // another dtype
  const ir::ValueId copied = op(g, top, "aten::to.dtype", {v, float32, no, yes, none});      // an explicit copy
  const ir::ValueId trained = op(g, top, "aten::dropout", {v, p, yes});                      // training
  ir::add_output(g, v);
  ir::add_output(g, half);
  ir::add_output(g, copied);
  ir::add_output(g, trained);

  CHECK(passes::remove_inference_noops(g) == 7);
  CHECK(verified(g) ==
        "graph(%x : Float(4)):\n"
        "  %1 : bool = prim::Constant[value=0]()\n"
        "  %2 : bool = prim::Constant[value=1]()\n"
        "  %3 : NoneType = prim::Constant()\n"
        "  %4 : float = prim::Constant[value=0.1]()\n"
        "  %5 : int = prim::Constant[value=0]()\n"
        "  %6 : int = prim::Constant[value=6]()\n"
        "  %7 : int = prim::Constant[value=5]()\n"
        "  %8 : Device = prim::Constant[value=\"cpu\"]()\n"
        "  %16 : Half(4) = aten::to(%x, %7, %1, %1, %3)\n"
        "  %17 : Float(4) = aten::to(%x, %6, %1, %2, %3)\n"
        "  %18 : Float(4) = aten::dropout(%x, %4, %2)\n"
        "  return (%x, %16, %17, %18)\n");
}

TEST_CASE("passes: remove_inference_noops reads every aten::to overload's own arguments") {
  ir::Graph g;
  const ir::ValueId x = ir::add_input(g, f32(), "x");
  const ir::ValueId other = ir::add_input(g, f32(), "other");
  const ir::ValueId no = bool_const(g, top, false);
  const ir::ValueId none = none_const(g, top);
  const ir::ValueId float32 = int_const(g, top, 6);
  const ir::ValueId strided = int_const(g, top, 0);
  const ir::ValueId preserve = int_const(g, top, 1);
  const ir::ValueId cpu = ir::append_constant(g, top, std::string("cpu"), Type::make_device());
  ir::ValueId v = op(g, top, "aten::to.dtype_layout", {x, float32, strided, cpu, no, no, no, preserve});
  v = op(g, top, "aten::to.other", {v, other, no, no, none});
  v = op(g, top, "aten::to.prim_dtype", {v, none, no, no});
  v = op(g, top, "aten::to.prim_Device", {v, cpu, float32, no, no});
  v = op(g, top, "aten::to.prim_other", {v, no, no});
  ir::add_output(g, v);
  // dtype_layout to another layout (sparse_coo) stays.
  ir::add_output(g, op(g, top, "aten::to.dtype_layout", {x, none, preserve, none, none, no, no, none}));

  CHECK(passes::remove_inference_noops(g) == 5);
  CHECK(verified(g) ==
        "graph(%x : Float(4),\n"
        "      %other : Float(4)):\n"
        "  %2 : bool = prim::Constant[value=0]()\n"
        "  %3 : NoneType = prim::Constant()\n"
        "  %4 : int = prim::Constant[value=6]()\n"
        "  %5 : int = prim::Constant[value=0]()\n"
        "  %6 : int = prim::Constant[value=1]()\n"
        "  %7 : Device = prim::Constant[value=\"cpu\"]()\n"
        "  %13 : Float(4) = aten::to(%x, %3, %6, %3, %3, %2, %2, %3)\n"
        "  return (%x, %13)\n");
}

TEST_CASE("passes: remove_inference_noops keeps what it cannot prove a no-op") {
  ir::Graph g;
  const ir::ValueId x = ir::add_input(g, f32(), "x");
  const ir::ValueId unknown = ir::add_input(g, Type::make_tensor(), "unknown");
  const ir::ValueId no = bool_const(g, top, false);
  const ir::ValueId none = none_const(g, top);
  const ir::ValueId float32 = int_const(g, top, 6);
  const ir::ValueId one = int_const(g, top, 1);
  const ir::ValueId cuda = ir::append_constant(g, top, std::string("cuda"), Type::make_device());
  std::vector<ir::ValueId> outs;
  outs.push_back(op(g, top, "aten::to.dtype", {unknown, float32, no, no, none}));  // dtype unknown
  outs.push_back(op(g, top, "aten::to.device", {x, cuda, float32, no, no, none}));  // another device
  outs.push_back(op(g, top, "aten::type_as", {x, unknown}));
  outs.push_back(op(g, top, "aten::contiguous", {x, int_const(g, top, 2)}));  // channels_last
  // While the graph writes in place, a contiguous copy is a different tensor.
  const ir::ValueId fresh = op(g, top, "aten::relu", {x});
  const ir::ValueId c = op(g, top, "aten::contiguous", {fresh, int_const(g, top, 0)});
  outs.push_back(op(g, top, "aten::add_.Scalar", {c, one, one}));
  outs.push_back(fresh);
  for (ir::ValueId v : outs) ir::add_output(g, v);

  const std::string before = ir::print(g);
  CHECK(passes::remove_inference_noops(g) == 0);
  CHECK(ir::print(g) == before);
}

TEST_CASE("passes: functionalize rewrites an in-place op on a fresh value") {
  ir::Graph g;
  const ir::ValueId x = ir::add_input(g, f32(), "x");
  const ir::ValueId y = ir::add_input(g, f32(), "y");
  const ir::ValueId cond = ir::add_input(g, Type::make_bool(), "cond");
  const ir::ValueId one = int_const(g, top, 1);
  const ir::ValueId t = op(g, top, "aten::relu", {x});
  name(g, t, "t");
  const ir::ValueId old = op(g, top, "aten::neg", {t});  // reads t before the write: the old value
  // `sum` is t itself in PyTorch, so it too must see the mul_ that follows.
  const ir::ValueId sum = op(g, top, "aten::add_.Tensor", {t, y, one});
  op(g, top, "aten::mul_.Scalar", {t, one});
  const ir::ValueId later = op(g, top, "aten::exp", {t});
  const ir::NodeId pick = make_if(g, top, cond, {f32()});  // a later read inside a block
  ir::block(g, branch(g, pick, 0)).returns = {op(g, branch(g, pick, 0), "aten::tanh", {t})};
  ir::block(g, branch(g, pick, 1)).returns = {old};
  ir::add_output(g, sum);
  ir::add_output(g, later);
  ir::add_output(g, ir::node(g, pick).outputs[0]);
  ir::add_output(g, t);

  CHECK(passes::functionalize(g) == 2);
  CHECK(verified(g) ==
        "graph(%x : Float(4),\n"
        "      %y : Float(4),\n"
        "      %cond : bool):\n"
        "  %3 : int = prim::Constant[value=1]()\n"
        "  %t : Float(4) = aten::relu(%x)\n"
        "  %5 : Float(4) = aten::neg(%t)\n"
        "  %6 : Float(4) = aten::add(%t, %y, %3)\n"
        "  %7 : Float(4) = aten::mul(%6, %3)\n"
        "  %8 : Float(4) = aten::exp(%7)\n"
        "  %9 : Float(4) = prim::If(%cond)\n"
        "    block0():\n"
        "      %10 : Float(4) = aten::tanh(%7)\n"
        "      -> (%10)\n"
        "    block1():\n"
        "      -> (%5)\n"
        "  return (%7, %8, %9, %7)\n");
  CHECK(ir::symbol_str(g, ir::node(g, ir::value(g, sum).node).overload) == "Tensor");  // overload kept
  CHECK(passes::functionalize(g) == 0);
}

TEST_CASE("passes: functionalize refuses writes that an alias could see") {
  const ir::SourceLoc loc{"code/__torch__.py", 12, 8};
  auto inplace_on = [&](ir::Graph& g, ir::ValueId target) {
    const ir::ValueId one = int_const(g, top, 1);
    const ir::ValueId r = op(g, top, "aten::add_.Scalar", {target, one, one});
    ir::node(g, ir::value(g, r).node).loc = loc;
    ir::add_output(g, r);
  };
  {
    ir::Graph g;
    inplace_on(g, ir::add_input(g, f32(), "x"));
    CHECK(functionalize_error(g) ==
          "code/__torch__.py:12:8: in-place aten::add_ on a graph input is not supported");
    CHECK(ir::print(g).find("aten::add_(") != std::string::npos);  // left as it was
  }
  {
    ir::Graph g;
    inplace_on(g, ir::append_constant(g, top, ir::TensorRef{"w"}, f32()));
    CHECK(functionalize_error(g) == "code/__torch__.py:12:8: in-place aten::add_ on a constant is not supported");
  }
  {
    ir::Graph g;
    const ir::ValueId x = ir::add_input(g, f32(), "x");
    inplace_on(g, op(g, top, "aten::view", {x, ir::append_constant(g, top, std::vector<std::int64_t>{4},
                                                                     Type::make_list(Type::make_int()))}));
    CHECK(functionalize_error(g) ==
          "code/__torch__.py:12:8: in-place aten::add_ on a possible alias (the output of aten::view) is not "
          "supported");
  }
  {
    ir::Graph g;
    const ir::ValueId x = ir::add_input(g, f32(), "x");
    const ir::ValueId t = op(g, top, "aten::relu", {x});
    ir::add_output(g, op(g, top, "aten::t", {t}));  // a view of t, read after the write
    inplace_on(g, t);
    CHECK(functionalize_error(g) ==
          "code/__torch__.py:12:8: in-place aten::add_ on a value aliased by an earlier aten::t is not supported");
  }
  {
    ir::Graph g;
    const ir::ValueId x = ir::add_input(g, f32(), "x");
    const ir::ValueId cond = ir::add_input(g, Type::make_bool(), "cond");
    const ir::ValueId t = op(g, top, "aten::relu", {x});
    const ir::NodeId pick = make_if(g, top, cond, {f32()});
    ir::block(g, branch(g, pick, 0)).returns = {t};
    ir::block(g, branch(g, pick, 1)).returns = {x};
    ir::add_output(g, ir::node(g, pick).outputs[0]);
    inplace_on(g, t);
    CHECK(functionalize_error(g) ==
          "code/__torch__.py:12:8: in-place aten::add_ on a value read inside a block of an earlier prim::If is not "
          "supported");
  }
  {
    // A write inside a loop body to a value from outside it would need a carried value.
    ir::Graph g;
    const ir::ValueId x = ir::add_input(g, f32(), "x");
    const ir::ValueId t = op(g, top, "aten::relu", {x});
    const ir::NodeId loop = ir::append_node(g, top, "prim::Loop", {int_const(g, top, 2), bool_const(g, top, true)}, {});
    const ir::BlockId body = ir::add_block(g, loop);
    ir::add_block_param(g, body, Type::make_int(), "i");
    const ir::ValueId one = int_const(g, body, 1);
    const ir::NodeId add = ir::append_node(g, body, "aten::add_.Scalar", {t, one, one}, {f32()});
    ir::block(g, body).returns = {bool_const(g, body, true)};
    ir::add_output(g, t);
    CHECK(functionalize_error(g) == "in-place aten::add_ on a value defined outside its block is not supported");
    CHECK(ir::node(g, add).erased == false);
  }
}

TEST_CASE("passes: fuse_linear_concat makes linears of one input one GEMM, their results slices") {
  // x -> linear(w1, b1) read by a view that flattens it (not possible on a column slice:
  // it must become a reshape) and a view that splits its last dim (fine on any strides);
  // x -> linear(w2, None) with its None defined after the first linear; a linear of
  // another input stays.
  ir::Graph g;
  const auto shape = [](std::vector<std::int64_t> sizes) {
    std::vector<Dim> dims;
    for (const std::int64_t s : sizes) dims.push_back(Dim::of(s));
    return Type::make_tensor(DType::float32, dims);
  };
  const auto constant = [&](std::vector<std::int64_t> sizes) { return op(g, top, "prim::Constant", {}, shape(sizes)); };
  const ir::ValueId x = ir::add_input(g, shape({2, 5, 4}), "x"), y = ir::add_input(g, shape({2, 5, 4}), "y");
  const ir::ValueId w1 = constant({3, 4}), b1 = constant({3});
  const ir::ValueId l1 = op(g, top, "aten::linear", {x, w1, b1}, shape({2, 5, 3}));
  const ir::ValueId flat = op(g, top, "aten::view", {l1, op(g, top, "prim::Constant", {}, Type::make_list(Type::make_int()))},
                              shape({30}));
  const ir::ValueId split = op(g, top, "aten::view", {l1, op(g, top, "prim::Constant", {}, Type::make_list(Type::make_int()))},
                               shape({2, 5, 3, 1}));
  const ir::ValueId none = none_const(g, top), w2 = constant({2, 4});
  const ir::ValueId l2 = op(g, top, "aten::linear", {x, w2, none}, shape({2, 5, 2}));
  const ir::ValueId other = op(g, top, "aten::linear", {y, w2, none}, shape({2, 5, 2}));
  for (const ir::ValueId v : {flat, split, l2, other}) ir::add_output(g, v);
  REQUIRE_NOTHROW(ir::verify(g));

  CHECK(passes::fuse_linear_concat(g) == 1);
  const std::string printed = verified(g);
  INFO(printed);
  std::size_t concats = 0, slices = 0, views = 0, reshapes = 0, linears = 0;
  ir::walk(g, [&](ir::NodeId n) {
    concats += ir::is_kind(g, n, "kiln::linear_concat");
    slices += ir::is_kind(g, n, "aten::slice");
    views += ir::is_kind(g, n, "aten::view");
    reshapes += ir::is_kind(g, n, "aten::reshape");
    linears += ir::is_kind(g, n, "aten::linear");
  });
  CHECK(concats == 1);
  CHECK(slices == 2);
  CHECK(views == 1);     // the split
  CHECK(reshapes == 1);  // the flatten
  CHECK(linears == 1);   // y's
  CHECK(printed.find("Float(2, 5, 5) = kiln::linear_concat(%x") != std::string::npos);
}

TEST_CASE("passes: sink_expands computes elementwise ops before the expand they read") {
  // The SDPA mask chain of Hugging Face models: expand a [2, 1, 1, 5] mask to [2, 1, 5, 5],
  // then to float, 1 - it, to bool, masked_fill: all four move before the expand. An add
  // with a full-size tensor, a mul of two expands to different size lists, and an add of a
  // 0-dim tensor to an expand of another (where moving would change dtype promotion), stay.
  ir::Graph g;
  const auto shape = [](DType dtype, std::vector<std::int64_t> sizes) {
    std::vector<Dim> dims;
    for (const std::int64_t s : sizes) dims.push_back(Dim::of(s));
    return Type::make_tensor(dtype, dims);
  };
  const Type big = shape(DType::float32, {2, 1, 5, 5});
  const ir::ValueId mask = ir::add_input(g, shape(DType::int64, {2, 1, 1, 5}), "mask");
  const ir::ValueId full = ir::add_input(g, big, "full");
  const ir::ValueId sizes = op(g, top, "prim::Constant", {}, Type::make_list(Type::make_int()));
  const ir::ValueId other_sizes = op(g, top, "prim::Constant", {}, Type::make_list(Type::make_int()));
  const ir::ValueId no = bool_const(g, top, false), none = none_const(g, top);
  const ir::ValueId expanded = op(g, top, "aten::expand", {mask, sizes, no}, shape(DType::int64, {2, 1, 5, 5}));
  const ir::ValueId as_float = op(g, top, "aten::to", {expanded, int_const(g, top, 6), no, no, none}, big);
  const ir::ValueId one = op(g, top, "prim::Constant", {}, shape(DType::float32, {}));
  const ir::ValueId inverted = op(g, top, "aten::sub.Tensor", {one, as_float, int_const(g, top, 1)}, big);
  const ir::ValueId as_bool =
      op(g, top, "aten::to", {inverted, int_const(g, top, 11), no, no, none}, shape(DType::bool_, {2, 1, 5, 5}));
  const ir::ValueId lowest = ir::append_constant(g, top, -3.4028234663852886e38, Type::make_float());
  const ir::ValueId filled = op(g, top, "aten::masked_fill.Scalar", {inverted, as_bool, lowest}, big);
  const ir::ValueId added = op(g, top, "aten::add.Tensor", {filled, full, int_const(g, top, 1)}, big);
  const ir::ValueId again = op(g, top, "aten::expand", {mask, other_sizes, no}, shape(DType::int64, {2, 1, 5, 5}));
  const ir::ValueId product = op(g, top, "aten::mul.Tensor", {expanded, again}, shape(DType::int64, {2, 1, 5, 5}));
  // A 0-dim Byte expanded to [3] plus a 0-dim Long is Byte(3); moved, it would be Long().
  const ir::ValueId byte = ir::add_input(g, shape(DType::uint8, {}), "byte");
  const ir::ValueId wide = ir::add_input(g, shape(DType::int64, {}), "wide");
  const ir::ValueId three = op(g, top, "prim::Constant", {}, Type::make_list(Type::make_int()));
  const ir::ValueId bytes = op(g, top, "aten::expand", {byte, three, no}, shape(DType::uint8, {3}));
  const ir::ValueId sum = op(g, top, "aten::add.Tensor", {bytes, wide, int_const(g, top, 1)}, shape(DType::uint8, {3}));
  for (const ir::ValueId v : {added, product, sum}) ir::add_output(g, v);
  REQUIRE_NOTHROW(ir::verify(g));

  CHECK(passes::sink_expands(g) == 4);
  const std::string printed = verified(g);
  INFO(printed);
  std::size_t expands = 0;
  ir::walk(g, [&](ir::NodeId n) { expands += ir::is_kind(g, n, "aten::expand"); });
  // The chain's four ops now give [2, 1, 1, 5]; one expand after them, and the two the mul reads.
  for (const char* line : {"Float(2, 1, 1, 5) = aten::to(%mask", "Float(2, 1, 1, 5) = aten::sub(",
                           "Bool(2, 1, 1, 5) = aten::to(", "Float(2, 1, 1, 5) = aten::masked_fill(",
                           "Float(2, 1, 5, 5) = aten::expand(", "Float(2, 1, 5, 5) = aten::add(",
                           "Long(2, 1, 5, 5) = aten::mul(", "Byte(3) = aten::add(%"}) {
    CHECK_MESSAGE(printed.find(line) != std::string::npos, line);
  }
  CHECK(expands == 4);
}
