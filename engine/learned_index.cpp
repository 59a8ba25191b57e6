#include "engine/learned_index.h"

#include <map>
#include <mutex>

#include "engine/learn_module.h"
#include "index/error.h"

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

std::unique_ptr<index::Index> build_learned_index(const index::IndexSpec& spec,
                                                  const nlohmann::json& params,
                                                  const index::Matrix& vectors,
                                                  const std::vector<index::label_t>& labels,
                                                  std::function<void(double)> progress) {
  const char* type = index::index_kind_name(spec.kind);
  const LearnedBuilder* build = learned_builder(type);
  WP_THROW_IF_NOT(build, "type: \"", type,
                  "\" needs a waypoint built with LibTorch (WAYPOINT_WITH_TORCH=ON)");
  LearnedBuildRequest req;
  req.vectors = &vectors;
  req.labels = &labels;
  req.metric = spec.metric;
  req.hnsw = spec.hnsw;
  req.params = params;
  req.progress = std::move(progress);
  return (*build)(req);
}

}  // namespace wp::engine
