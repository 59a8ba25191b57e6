#include "engine/learned_index.h"

#include <map>
#include <mutex>

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

const LearnedBuilder* learned_builder(const std::string& type) {
  std::lock_guard<std::mutex> g(registry_mu());
  auto it = registry().find(type);
  return it == registry().end() ? nullptr : &it->second;  // entries are never erased
}

}  // namespace wp::engine
