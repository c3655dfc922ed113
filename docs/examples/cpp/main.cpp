// kiln from C++: load a TorchScript model, run it once, print what it takes and returns.
//
//   make && ./kiln-example model.pt
//
// Every input gets batch 1, sequence 8, int64: "attention_mask" all ones, "token_type_ids"
// all zeros, anything else token ids ([CLS] 5 6 7 8 9 10 [SEP] in BERT's vocabulary).
// C++20, kiln.hpp only; build it against an installed kiln with the Makefile beside it.
#include <kiln/kiln.hpp>

#include <cstdint>
#include <iostream>
#include <optional>
#include <string>
#include <vector>

namespace {

// "[batch, seq]", "[1, 8, 32]", or "?" when loading could not tell.
std::string shape_text(const std::optional<std::vector<kiln::Dim>>& shape) {
  if (!shape) return "?";
  std::string text = "[";
  for (std::size_t i = 0; i < shape->size(); ++i) {
    const kiln::Dim& d = (*shape)[i];
    text += (i ? ", " : "") + (d.symbol.empty() ? std::to_string(d.size) : d.symbol);
  }
  return text + "]";
}

std::string shape_text(const std::vector<std::int64_t>& shape) {
  std::string text = "[";
  for (std::size_t i = 0; i < shape.size(); ++i) text += (i ? ", " : "") + std::to_string(shape[i]);
  return text + "]";
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::cerr << "usage: " << argv[0] << " MODEL.pt\n";
    return 2;
  }
  try {
    std::cout << "kiln " << kiln::build_info().version << "\n";
    const kiln::Model model = kiln::Model::load(argv[1]);

    constexpr std::int64_t seq = 8;
    const std::vector<std::int64_t> ids{101, 5, 6, 7, 8, 9, 10, 102};
    const std::vector<std::int64_t> ones(seq, 1), zeros(seq, 0);

    const std::vector<kiln::TensorInfo> inputs = model.inputs();
    std::cout << "inputs: " << inputs.size() << "\n";
    std::vector<kiln::Tensor> tensors;
    for (std::size_t i = 0; i < inputs.size(); ++i) {
      const kiln::TensorInfo& in = inputs[i];
      std::cout << "  " << i << ": " << in.name << " " << shape_text(in.shape) << " "
                << (in.dtype ? kiln::dtype_name(*in.dtype) : "?") << "\n";
      const std::vector<std::int64_t>& values =
          in.name == "attention_mask" ? ones : in.name == "token_type_ids" ? zeros : ids;
      tensors.push_back(kiln::Tensor::from_values(kiln::DType::int64, {1, seq}, values));
    }

    const std::vector<kiln::Tensor> outputs = model.run(tensors);
    std::cout << "outputs: " << outputs.size() << "\n";
    for (std::size_t i = 0; i < outputs.size(); ++i)
      std::cout << "  " << i << ": " << shape_text(outputs[i].shape()) << " "
                << kiln::dtype_name(outputs[i].dtype()) << "\n";
  } catch (const kiln::Error& e) {
    std::cerr << "kiln-example: " << e.what() << "\n";
    return 1;
  }
  return 0;
}
