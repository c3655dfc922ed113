// Tests of kiln's IR data structures (engine/ir): graphs built by hand — a linear+gelu
// graph and the shape of the scripted control-flow fixture (prim::Loop, prim::If) — printed
// exactly, accepted by the verifier, broken in each way the verifier must catch (with exact
// messages), and rewritten with replace_all_uses and erase_node.
#include <doctest/doctest.h>

#include <algorithm>
#include <string>
#include <vector>

#include "engine/ir/graph.hpp"
#include "engine/ir/print.hpp"
#include "engine/ir/verify.hpp"
#include "kiln/error.hpp"

namespace ir = kiln::ir;
using ir::Dim;
using ir::Type;
using kiln::DType;

namespace {

Type f32(std::vector<Dim> dims) { return Type::make_tensor(DType::float32, std::move(dims)); }
Dim any(std::int64_t id) { return Dim::symbol(id); }

// The message of the kiln::Error verify throws, checking it is an internal error; "" if none.
std::string verify_error(const ir::Graph& g) {
  try {
    ir::verify(g);
  } catch (const kiln::Error& e) {
    CHECK(e.kind() == kiln::ErrorKind::internal);
    return e.what();
  }
  return "";
}

// linear(input, w, b) -> gelu: the core of a BERT feed-forward layer.
struct LinearGelu {
  ir::Graph g;
  ir::ValueId input, w, b, approx, lin, out;
  ir::NodeId lin_node, gelu_node;

  LinearGelu() {
    input = ir::add_input(g, f32({any(0), any(1), Dim::of(8)}), "input");
    w = ir::append_constant(g, ir::kTopBlock, ir::TensorRef{"data/0"}, f32({Dim::of(4), Dim::of(8)}));
    b = ir::append_constant(g, ir::kTopBlock, ir::TensorRef{"data/1"}, f32({Dim::of(4)}));
    approx = ir::append_constant(g, ir::kTopBlock, std::string("none"), Type::make_string());
    lin_node = ir::append_node(g, ir::kTopBlock, "aten::linear", {input, w, b}, {f32({any(0), any(1), Dim::of(4)})});
    lin = ir::node(g, lin_node).outputs[0];
    gelu_node = ir::append_node(g, ir::kTopBlock, "aten::gelu", {lin, approx}, {f32({any(0), any(1), Dim::of(4)})});
    ir::node(g, gelu_node).loc = ir::SourceLoc{"code/__torch__/transformers/activations.py", 57, 11};
    out = ir::node(g, gelu_node).outputs[0];
    ir::value(g, out).name = std::string("out");  // not `= "..."`: GCC 12 -Wrestrict false positive (PR105651)
    ir::add_output(g, out);
  }
};

// The forward of tests/fixtures' ControlFlowBlock (scripted_control_flow), with the
// submodule calls inlined and the `while` left out:
//   for _ in range(2): h = h + relu(linear(h))
//   if bool(sum(mask) > 0): h0 = h * unsqueeze(mask, -1).to(h.dtype) else: h0 = -h
struct ControlFlow {
  ir::Graph g;
  ir::ValueId x, mask, h, h1, cond, h0, then_out, else_out;
  ir::NodeId loop, if_node, relu, neg;
  ir::BlockId body, then_b, else_b;

  ControlFlow() {
    const Type act = f32({Dim::symbol(0, "batch"), Dim::symbol(1, "seq"), Dim::of(16)});
    const ir::BlockId top = ir::kTopBlock;
    x = ir::add_input(g, act, "x");
    mask = ir::add_input(g, Type::make_tensor(DType::int64, std::vector{Dim::symbol(0, "batch"), Dim::symbol(1, "seq")}),
                         "mask");
    const ir::ValueId steps = ir::append_constant(g, top, std::int64_t{2}, Type::make_int());
    const ir::ValueId yes = ir::append_constant(g, top, true, Type::make_bool());
    const ir::ValueId w = ir::append_constant(g, top, ir::TensorRef{"lin.weight"}, f32({Dim::of(16), Dim::of(16)}));
    const ir::ValueId none = ir::append_constant(g, top, std::int64_t{0}, Type::make_none());
    ir::node(g, ir::value(g, none).node).attrs.clear();  // None constants carry no value
    const ir::ValueId one = ir::append_constant(g, top, std::int64_t{1}, Type::make_int());

    loop = ir::append_node(g, top, "prim::Loop", {steps, yes, x}, {act});
    h = ir::node(g, loop).outputs[0];
    ir::value(g, h).name = std::string("h");  // not `= "..."`: GCC 12 -Wrestrict false positive (PR105651)
    body = ir::add_block(g, loop);
    ir::add_block_param(g, body, Type::make_int(), "i");
    h1 = ir::add_block_param(g, body, act, "h.1");
    const ir::NodeId lin = ir::append_node(g, body, "aten::linear", {h1, w, none}, {act});
    relu = ir::append_node(g, body, "aten::relu", {ir::node(g, lin).outputs[0]}, {act});
    const ir::NodeId add =
        ir::append_node(g, body, "aten::add.Tensor", {h1, ir::node(g, relu).outputs[0], one}, {act});
    ir::block(g, body).returns = {yes, ir::node(g, add).outputs[0]};

    const ir::NodeId sum = ir::append_node(g, top, "aten::sum", {mask, none}, {Type::make_tensor(DType::int64, std::vector<Dim>{})});
    const ir::ValueId zero = ir::append_constant(g, top, std::int64_t{0}, Type::make_int());
    const ir::NodeId gt = ir::append_node(g, top, "aten::gt.Scalar", {ir::node(g, sum).outputs[0], zero},
                                          {Type::make_tensor(DType::bool_, std::vector<Dim>{})});
    const ir::NodeId to_bool = ir::append_node(g, top, "aten::Bool.Tensor", {ir::node(g, gt).outputs[0]}, {Type::make_bool()});
    cond = ir::node(g, to_bool).outputs[0];

    if_node = ir::append_node(g, top, "prim::If", {cond}, {act});
    ir::node(g, if_node).loc = ir::SourceLoc{"code/__torch__.py", 19, 4};
    h0 = ir::node(g, if_node).outputs[0];
    ir::value(g, h0).name = std::string("h0");  // not `= "..."`: GCC 12 -Wrestrict false positive (PR105651)
    then_b = ir::add_block(g, if_node);
    const ir::ValueId minus1 = ir::append_constant(g, then_b, std::int64_t{-1}, Type::make_int());
    const ir::NodeId unsq = ir::append_node(g, then_b, "aten::unsqueeze", {mask, minus1},
                                            {Type::make_tensor(DType::int64, std::nullopt)});
    const ir::NodeId dtype = ir::append_node(g, then_b, "prim::dtype", {h}, {Type::make_int()});
    const ir::ValueId no = ir::append_constant(g, then_b, false, Type::make_bool());
    const ir::NodeId to = ir::append_node(g, then_b, "aten::to.dtype",
                                          {ir::node(g, unsq).outputs[0], ir::node(g, dtype).outputs[0], no, no, none},
                                          {Type::make_tensor()});
    const ir::NodeId mul = ir::append_node(g, then_b, "aten::mul.Tensor", {h, ir::node(g, to).outputs[0]}, {act});
    then_out = ir::node(g, mul).outputs[0];
    ir::block(g, then_b).returns = {then_out};
    else_b = ir::add_block(g, if_node);
    neg = ir::append_node(g, else_b, "aten::neg", {h}, {act});
    else_out = ir::node(g, neg).outputs[0];
    ir::block(g, else_b).returns = {else_out};
    ir::add_output(g, h0);
  }
};

}  // namespace

TEST_CASE("ir: types print as PyTorch writes them") {
  CHECK(ir::type_str(Type::make_tensor()) == "Tensor");
  CHECK(ir::type_str(Type::make_tensor(DType::int64, std::vector{any(0), any(1)})) == "Long(*, *)");
  CHECK(ir::type_str(f32({any(0), Dim::symbol(7, "seq"), Dim::of(32)})) == "Float(*, seq, 32)");
  CHECK(ir::type_str(Type::make_tensor(std::nullopt, std::vector{Dim::of(3)})) == "Tensor(3)");
  CHECK(ir::type_str(Type::make_tensor(DType::bool_, std::vector<Dim>{})) == "Bool()");
  CHECK(ir::type_str(Type::make_tensor(DType::float16)) == "Half");
  CHECK(ir::type_str(Type::make_list(Type::make_int())) == "int[]");
  CHECK(ir::type_str(Type::make_tuple({Type::make_tensor(), Type::make_float()})) == "(Tensor, float)");
  CHECK(ir::type_str(Type::make_optional(Type::make_tensor())) == "Tensor?");
  CHECK(ir::type_str(Type::make_none()) == "NoneType");
  CHECK(ir::type_str(Type::make_device()) == "Device");
  CHECK(ir::type_str(Type::make_string()) == "str");
  CHECK(ir::type_str(Type::make_bool()) == "bool");
  CHECK(Dim::symbol(3, "batch") == Dim::symbol(3, "batch"));
  CHECK_FALSE(Dim::symbol(3) == Dim::of(3));
  CHECK(Type::make_list(Type::make_int()) == Type::make_list(Type::make_int()));
  CHECK_FALSE(Type::make_list(Type::make_int()) == Type::make_list(Type::make_float()));
}

TEST_CASE("ir: linear+gelu graph prints and verifies") {
  LinearGelu t;
  CHECK(ir::print(t.g) ==
        "graph(%input : Float(*, *, 8)):\n"
        "  %1 : Float(4, 8) = prim::Constant[value=<Tensor \"data/0\">]()\n"
        "  %2 : Float(4) = prim::Constant[value=<Tensor \"data/1\">]()\n"
        "  %3 : str = prim::Constant[value=\"none\"]()\n"
        "  %4 : Float(*, *, 4) = aten::linear(%input, %1, %2)\n"
        "  %out : Float(*, *, 4) = aten::gelu(%4, %3) # code/__torch__/transformers/activations.py:57:11\n"
        "  return (%out)\n");
  CHECK_NOTHROW(ir::verify(t.g));
  CHECK(ir::kind_str(t.g, t.lin_node) == "aten::linear");
  CHECK(ir::is_kind(t.g, t.gelu_node, "aten::gelu"));
  CHECK(ir::find_attr(t.g, ir::value(t.g, t.approx).node, "value") != nullptr);
  CHECK(ir::find_attr(t.g, t.lin_node, "value") == nullptr);
}

TEST_CASE("ir: constants of every attribute kind print") {
  ir::Graph g;
  const auto top = ir::kTopBlock;
  ir::append_constant(g, top, std::int64_t{-3}, Type::make_int());
  ir::append_constant(g, top, 1.0, Type::make_float());
  ir::append_constant(g, top, 1e-12, Type::make_float());
  ir::append_constant(g, top, 0.5, Type::make_float());
  ir::append_constant(g, top, true, Type::make_bool());
  ir::append_constant(g, top, std::string("a\"b"), Type::make_string());
  const auto l = ir::append_constant(g, top, std::vector<std::int64_t>{1, -1}, Type::make_list(Type::make_int()));
  const auto s = ir::append_node(g, top, "prim::SetAttr", {l}, {});
  ir::node(g, s).attrs.push_back({"name", std::string("x")});
  CHECK(ir::print(g) ==
        "graph():\n"
        "  %0 : int = prim::Constant[value=-3]()\n"
        "  %1 : float = prim::Constant[value=1.]()\n"
        "  %2 : float = prim::Constant[value=1e-12]()\n"
        "  %3 : float = prim::Constant[value=0.5]()\n"
        "  %4 : bool = prim::Constant[value=1]()\n"
        "  %5 : str = prim::Constant[value=\"a\\\"b\"]()\n"
        "  %6 : int[] = prim::Constant[value=[1, -1]]()\n"
        "  = prim::SetAttr[name=\"x\"](%6)\n"
        "  return ()\n");
  CHECK_NOTHROW(ir::verify(g));
}

TEST_CASE("ir: overload names are split off the kind") {
  ir::Graph g;
  const auto n = ir::append_node(g, ir::kTopBlock, "aten::add.Tensor", {}, {});
  CHECK(ir::kind_str(g, n) == "aten::add");
  CHECK(ir::symbol_str(g, ir::node(g, n).overload) == "Tensor");
  const auto m = ir::append_node(g, ir::kTopBlock, "aten::add", {}, {});
  CHECK(ir::node(g, m).kind == ir::node(g, n).kind);  // interned: same symbol
  CHECK(ir::symbol_str(g, ir::node(g, m).overload).empty());
}

TEST_CASE("ir: control-flow graph prints nested blocks and verifies") {
  ControlFlow t;
  CHECK(ir::print(t.g) ==
        "graph(%x : Float(batch, seq, 16),\n"
        "      %mask : Long(batch, seq)):\n"
        "  %2 : int = prim::Constant[value=2]()\n"
        "  %3 : bool = prim::Constant[value=1]()\n"
        "  %4 : Float(16, 16) = prim::Constant[value=<Tensor \"lin.weight\">]()\n"
        "  %5 : NoneType = prim::Constant()\n"
        "  %6 : int = prim::Constant[value=1]()\n"
        "  %h : Float(batch, seq, 16) = prim::Loop(%2, %3, %x)\n"
        "    block0(%i : int, %h.1 : Float(batch, seq, 16)):\n"
        "      %10 : Float(batch, seq, 16) = aten::linear(%h.1, %4, %5)\n"
        "      %11 : Float(batch, seq, 16) = aten::relu(%10)\n"
        "      %12 : Float(batch, seq, 16) = aten::add(%h.1, %11, %6)\n"
        "      -> (%3, %12)\n"
        "  %13 : Long() = aten::sum(%mask, %5)\n"
        "  %14 : int = prim::Constant[value=0]()\n"
        "  %15 : Bool() = aten::gt(%13, %14)\n"
        "  %16 : bool = aten::Bool(%15)\n"
        "  %h0 : Float(batch, seq, 16) = prim::If(%16) # code/__torch__.py:19:4\n"
        "    block0():\n"
        "      %18 : int = prim::Constant[value=-1]()\n"
        "      %19 : Long = aten::unsqueeze(%mask, %18)\n"
        "      %20 : int = prim::dtype(%h)\n"
        "      %21 : bool = prim::Constant[value=0]()\n"
        "      %22 : Tensor = aten::to(%19, %20, %21, %21, %5)\n"
        "      %23 : Float(batch, seq, 16) = aten::mul(%h, %22)\n"
        "      -> (%23)\n"
        "    block1():\n"
        "      %24 : Float(batch, seq, 16) = aten::neg(%h)\n"
        "      -> (%24)\n"
        "  return (%h0)\n");
  CHECK_NOTHROW(ir::verify(t.g));

  std::vector<std::string> order;
  ir::walk(t.g, [&](ir::NodeId n) { order.emplace_back(ir::kind_str(t.g, n)); });
  CHECK(order == std::vector<std::string>{"prim::Constant", "prim::Constant", "prim::Constant", "prim::Constant",
                                          "prim::Constant", "prim::Loop", "aten::linear", "aten::relu", "aten::add",
                                          "aten::sum", "prim::Constant", "aten::gt", "aten::Bool", "prim::If",
                                          "prim::Constant", "aten::unsqueeze", "prim::dtype", "prim::Constant",
                                          "aten::to", "aten::mul", "aten::neg"});
}

TEST_CASE("ir: verifier rejects a use before its definition") {
  LinearGelu t;
  // Swap linear and gelu: gelu now reads %4 before linear defines it.
  auto& nodes = ir::block(t.g, ir::kTopBlock).nodes;
  std::swap(nodes[3], nodes[4]);
  CHECK(verify_error(t.g) ==
        "code/__torch__/transformers/activations.py:57:11: invalid IR: %out : Float(*, *, 4) = aten::gelu(%4, %3): "
        "input 0 %4 is used before its definition");
}

TEST_CASE("ir: verifier rejects a graph output that is never defined in scope") {
  LinearGelu t;
  ir::block(t.g, ir::kTopBlock).nodes.pop_back();  // drop gelu but keep %out as the output
  CHECK(verify_error(t.g) == "invalid IR: graph: output 0 %out is used before its definition");
}

TEST_CASE("ir: verifier rejects a value used outside its block") {
  ControlFlow t;
  // The else branch reads %23, which the then branch defines.
  ir::node(t.g, t.neg).inputs[0] = t.then_out;
  CHECK(verify_error(t.g) ==
        "invalid IR: %24 : Float(batch, seq, 16) = aten::neg(%23): input 0 %23 is used outside the block that "
        "defines it");

  ControlFlow u;
  // The graph returns the loop body's parameter.
  ir::block(u.g, ir::kTopBlock).returns[0] = u.h1;
  CHECK(verify_error(u.g) == "invalid IR: graph: output 0 %h.1 is used outside the block that defines it");
}

TEST_CASE("ir: verifier rejects a block reading its own node's output") {
  ControlFlow t;
  ir::node(t.g, t.neg).inputs[0] = t.h0;  // the If's result is not defined inside the If
  CHECK(verify_error(t.g) ==
        "invalid IR: %24 : Float(batch, seq, 16) = aten::neg(%h0): input 0 %h0 is used before its definition");
}

TEST_CASE("ir: verifier checks prim::If and prim::Loop arity") {
  {
    ControlFlow t;
    ir::block(t.g, t.else_b).returns.push_back(t.else_out);
    CHECK(verify_error(t.g) ==
          "code/__torch__.py:19:4: invalid IR: %h0 : Float(batch, seq, 16) = prim::If(%16): block 1 returns 2 values, "
          "the node has 1 output");
  }
  {
    ControlFlow t;
    ir::block(t.g, t.then_b).returns.clear();
    CHECK(verify_error(t.g) ==
          "code/__torch__.py:19:4: invalid IR: %h0 : Float(batch, seq, 16) = prim::If(%16): block 0 returns 0 values, "
          "the node has 1 output");
  }
  {
    ControlFlow t;
    ir::node(t.g, t.if_node).blocks.pop_back();
    CHECK(verify_error(t.g) ==
          "code/__torch__.py:19:4: invalid IR: %h0 : Float(batch, seq, 16) = prim::If(%16): prim::If has 1 block, "
          "needs 2");
  }
  {
    ControlFlow t;
    ir::block(t.g, t.body).returns.pop_back();
    CHECK(verify_error(t.g) ==
          "invalid IR: %h : Float(batch, seq, 16) = prim::Loop(%2, %3, %x): body returns 1 value, needs 2 "
          "(condition and 1 carried)");
  }
  {
    ControlFlow t;
    ir::node(t.g, t.loop).inputs.pop_back();  // no carried value, but the body still has one
    CHECK(verify_error(t.g) ==
          "invalid IR: %h : Float(batch, seq, 16) = prim::Loop(%2, %3): body has 2 parameters, needs 1 "
          "(counter and 0 carried)");
  }
  {
    ControlFlow t;
    ir::node(t.g, t.relu).blocks.push_back(t.else_b);
    CHECK(verify_error(t.g) ==
          "invalid IR: %11 : Float(batch, seq, 16) = aten::relu(%10): only prim::If and prim::Loop have blocks, this "
          "node has 1 block");
  }
}

TEST_CASE("ir: verifier rejects a duplicate definition and foreign ids") {
  {
    LinearGelu t;
    // gelu claims linear's output as its own.
    ir::node(t.g, t.gelu_node).outputs[0] = t.lin;
    CHECK(verify_error(t.g) ==
          "code/__torch__/transformers/activations.py:57:11: invalid IR: %4 : Float(*, *, 4) = aten::gelu(%4, %3): "
          "%4 is defined twice");
  }
  {
    LinearGelu t;
    ir::node(t.g, t.gelu_node).inputs[1] = ir::ValueId{99};
    CHECK(verify_error(t.g) ==
          "code/__torch__/transformers/activations.py:57:11: invalid IR: %out : Float(*, *, 4) = aten::gelu(%4, "
          "%<bad 99>): input 1 %<bad 99> is not a value of this graph");
  }
  {
    LinearGelu t;
    ir::node(t.g, t.lin_node).owner = ir::BlockId{5};
    CHECK(verify_error(t.g) ==
          "invalid IR: %4 : Float(*, *, 4) = aten::linear(%input, %1, %2): node is in a block other than its owner");
  }
}

TEST_CASE("ir: replace_all_uses rewrites inputs, block returns and graph outputs") {
  ControlFlow t;
  CHECK(ir::uses(t.g, t.h).size() == 3);  // prim::dtype, aten::mul, aten::neg
  // Skip the loop: every reader of %h reads %x instead.
  ir::replace_all_uses(t.g, t.h, t.x);
  CHECK(ir::uses(t.g, t.h).empty());
  CHECK(ir::uses(t.g, t.x).size() == 4);  // the loop's input and the three above
  CHECK(ir::node(t.g, t.neg).inputs[0] == t.x);
  CHECK_NOTHROW(ir::verify(t.g));

  ir::replace_all_uses(t.g, t.h0, t.x);
  CHECK(ir::block(t.g, ir::kTopBlock).returns == std::vector{t.x});
  const auto x_uses = ir::uses(t.g, t.x);
  CHECK(std::find(x_uses.begin(), x_uses.end(), ir::Use{ir::kNoNode, ir::kTopBlock, 0}) != x_uses.end());
}

TEST_CASE("ir: erase_node removes dead nodes and their blocks") {
  ControlFlow t;
  // %h is still used: erasing the loop must fail and change nothing.
  CHECK_THROWS_WITH_AS(ir::erase_node(t.g, t.loop), "ir: erase_node: %h (output of prim::Loop) is still used",
                       kiln::Error);
  CHECK_NOTHROW(ir::verify(t.g));

  // Make the If dead, then erase it: its blocks and their values go with it.
  ir::block(t.g, ir::kTopBlock).returns[0] = t.h;
  ir::erase_node(t.g, t.if_node);
  CHECK(ir::node(t.g, t.if_node).erased);
  CHECK(ir::node(t.g, t.neg).erased);
  CHECK(ir::value(t.g, t.then_out).erased);
  CHECK(ir::block(t.g, t.else_b).erased);
  // The uses inside the erased blocks are gone; only the graph output is left.
  CHECK(ir::uses(t.g, t.h) == std::vector{ir::Use{ir::kNoNode, ir::kTopBlock, 0}});
  CHECK_NOTHROW(ir::verify(t.g));
  CHECK_THROWS_AS(ir::erase_node(t.g, t.if_node), kiln::Error);

  // A use inside the node's own blocks does not keep it alive: the loop body returns %12.
  ir::block(t.g, ir::kTopBlock).returns[0] = t.x;
  ir::erase_node(t.g, t.loop);
  CHECK_NOTHROW(ir::verify(t.g));
  const std::string printed = ir::print(t.g);
  CHECK(printed.find("prim::Loop") == std::string::npos);
  CHECK(printed.find("aten::gt(%13, %14)") != std::string::npos);  // ids are stable after erasure
  CHECK(printed.ends_with("  return (%x)\n"));
}

TEST_CASE("ir: insert_node_before keeps order and verifies") {
  LinearGelu t;
  const auto scale = ir::insert_node_before(t.g, t.gelu_node, "aten::mul.Scalar", {t.lin, t.approx},
                                            {ir::value(t.g, t.lin).type});
  const ir::ValueId scaled = ir::node(t.g, scale).outputs[0];
  ir::node(t.g, t.gelu_node).inputs[0] = scaled;
  CHECK_NOTHROW(ir::verify(t.g));
  CHECK(ir::block(t.g, ir::kTopBlock).nodes[4] == scale);
  CHECK(ir::print(t.g).find("  %6 : Float(*, *, 4) = aten::mul(%4, %3)\n  %out") != std::string::npos);
}
