#include "format/module_tree.hpp"

#include <map>
#include <set>

#include "kiln/error.hpp"

namespace kiln::format {

namespace {

using Kind = PickleValue::Kind;

// "__torch__.a.b.C" -> ("__torch__.a.b", "C")
std::pair<std::string, std::string> split_qualified(const std::string& q) {
  const size_t dot = q.rfind('.');
  if (dot == std::string::npos) return {"", q};
  return {q.substr(0, dot), q.substr(dot + 1)};
}

class TreeBuilder {
 public:
  explicit TreeBuilder(const Archive& archive) : archive_(archive) {}

  ModuleTree build() {
    walk(archive_.data(), "");
    if (const ClassOutline* root = outline(archive_.data()->text)) tree_.root_class = *root;
    return std::move(tree_);
  }

 private:
  const ClassOutline* outline(const std::string& class_name) {
    auto [qualifier, name] = split_qualified(class_name);
    auto file = outlines_.find(qualifier);
    if (file == outlines_.end()) {
      std::vector<ClassOutline> classes;
      auto code = archive_.code().find(qualifier);
      if (code != archive_.code().end()) {
        classes = outline_classes(code->second, qualifier, archive_.source(),
                                  archive_.record_name("code/" + qualifier + ".py"));
      }
      file = outlines_.emplace(qualifier, std::move(classes)).first;
    }
    for (const ClassOutline& c : file->second) {
      if (c.qualified_name == class_name) return &c;
    }
    return nullptr;
  }

  static std::string join(const std::string& prefix, const std::string& name) {
    return prefix.empty() ? name : prefix + "." + name;
  }

  // A module reached through two attributes (a shared submodule) is listed under both
  // names, as PyTorch's state_dict does. A hostile pickle can share submodules so that the
  // names multiply exponentially, so the number of names is capped.
  static constexpr size_t kMaxEntries = 1 << 20;

  void count_entry() {
    if (++entries_ > kMaxEntries) {
      throw Error::bad_input(archive_.source(), archive_.record_name("data.pkl"),
                             "module tree has more than " + std::to_string(kMaxEntries) +
                                 " modules and tensors (shared submodules expand too far)");
    }
  }

  void walk(const PickleRef& object, const std::string& path) {
    // The unpickler bounds nesting, so this recursion is bounded too.
    count_entry();
    const std::string& cls = object->text;
    ModuleInfo info{path, cls, cls.rfind("__torch__.torch.classes.", 0) == 0};
    tree_.modules.push_back(info);
    if (info.custom_class) return;
    if (!object->state || object->state->kind != Kind::dict) {
      throw Error::bad_input(archive_.source(), archive_.record_name("data.pkl"),
                             "module '" + (path.empty() ? std::string("<root>") : path) + "' (" + cls +
                                 ") has no attribute dict");
    }
    std::set<std::string> parameters, buffers;
    if (const ClassOutline* c = outline(cls)) {
      parameters.insert(c->parameters.begin(), c->parameters.end());
      buffers.insert(c->buffers.begin(), c->buffers.end());
    }
    for (const auto& [key, value] : object->state->entries) {
      if (key->kind != Kind::string) continue;
      const std::string name = join(path, key->text);
      if (value->kind == Kind::tensor) {
        count_entry();
        ModuleTensor t;
        t.name = name;
        t.kind = parameters.count(key->text)  ? ModuleTensor::Kind::parameter
                 : buffers.count(key->text) ? ModuleTensor::Kind::buffer
                                            : ModuleTensor::Kind::other;
        t.data = archive_.tensor(value->tensor);
        if (t.data.quantized) tree_.quantized.push_back(name);
        tree_.tensors.push_back(std::move(t));
      } else if (value->kind == Kind::object) {
        walk(value, name);
      }
    }
  }

  const Archive& archive_;
  std::map<std::string, std::vector<ClassOutline>> outlines_;
  ModuleTree tree_;
  size_t entries_ = 0;
};

}  // namespace

ModuleTree module_tree(const Archive& archive) { return TreeBuilder(archive).build(); }

}  // namespace kiln::format
