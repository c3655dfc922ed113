// Provider — a place where tensors live and kernels run, as a small struct of function
// pointers (in the manner of ggml's backend devices): the CPU today, an AWS Neuron device
// next. Placement assigns every node of a program to the first provider, in the model's
// order, that supports it, and inserts kiln::copy nodes where a value crosses memory
// spaces; weights crossing are copied once, at load. No static registration: a provider
// is a function returning its struct, so a static link keeps every one that is named.
//
// Adding one: write its `supports`, `kernel`, `to_space` and `to_host`, and list it in
// LoadOptions::providers. tests/engine/test_provider.cpp is a complete example with its
// own memory space. Placement (placement.cpp) runs metadata ops (size, dim, dtype) on the
// host whatever space their input is in, and control flow, lists and tuples on the host.
#pragma once

#include <string_view>
#include <vector>

#include "engine/exec/program.hpp"

namespace kiln::exec {

struct Provider {
  const char* name;          // "cpu", "cpu-reference", "test"
  const char* memory_space;  // where the tensors its kernels read and write live: "host", ...
  // Whether it runs node `n` (shapes and dtypes from inference are in the value types).
  bool (*supports)(const ir::Graph& g, ir::NodeId n);
  // The kernel for `n`, called at load for every node placed here.
  Kernel (*kernel)(const ir::Graph& g, ir::NodeId n);
  // A host tensor copied into this provider's memory space, and back. Identity for host.
  kernels::Tensor (*to_space)(const kernels::Tensor& t);
  kernels::Tensor (*to_host)(const kernels::Tensor& t);
};

// Fast kernels (kernels/cpu, chosen by CPUID) where they apply, reference kernels
// otherwise. Supports every node the importer makes.
const Provider& cpu_provider();
// Reference kernels only: the oracle, and the way to check a fast result.
const Provider& reference_provider();

// Ops that read only sizes and dtypes (size, dim, numel, len, dtype, device): placed on
// the host whatever memory space their input lives in.
bool reads_only_metadata(std::string_view kind);

// The kernel of kiln::copy nodes (which placement inserts): moves a tensor between memory
// spaces with the providers' to_space / to_host.
void copy_kernel(Frame& frame, ir::NodeId node);

}  // namespace kiln::exec
