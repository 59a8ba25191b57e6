#include "engine/learned_index.h"

#include <map>
#include <mutex>

#include "engine/learn_module.h"

namespace wp::engine {

namespace {
std::mutex& registry_mu() {
  static std::mutex mu;
  return mu;
}
std::map<std::string, LearnedBuilder>& registry() {
  static std::map<std::string, LearnedBuilder> r;
  return r;
}
}  // namespace

void register_learned_builder(const std::string& type, LearnedBuilder builder) {
  std::lock_guard<std::mutex> g(registry_mu());
  registry()[type] = std::move(builder);
}

namespace {
const LearnedBuilder* find_builder(const std::string& type) {
  std::lock_guard<std::mutex> g(registry_mu());
  auto it = registry().find(type);
  return it == registry().end() ? nullptr : &it->second;  // entries are never erased
}
}  // namespace

const LearnedBuilder* learned_builder(const std::string& type) {
  if (const LearnedBuilder* b = find_builder(type)) return b;
  return load_learn_module() ? find_builder(type) : nullptr;  // the module registers its types
}

}  // namespace wp::engine
