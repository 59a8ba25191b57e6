#pragma once
/**
 * @file tune_space.h
 * The tuner's search space: named discrete choices per index kind (hnsw: m, ef_construct,
 * quantization, ef; graph: those and RobustPrune's alpha; lsh: bits, tables, probes, candidates;
 * rl: the degree the learning job compares at (m) and ef, or only the ef of a trained graph file),
 * and the configurations in it, which are index request bodies (engine/index_request.h) once
 * written out.
 */
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "index/index_spec.h"
#include "index/metric.h"

namespace wp::engine::tune {

/// One named discrete choice; `labels` name categorical values (else the values are numbers).
struct Choice {
  std::string name;
  std::vector<double> values;
  std::vector<std::string> labels;
  bool search_time = false;  ///< changes the search, not the build
};

/// What the standard space depends on besides the tuned types.
struct SpaceOptions {
  /// RobustPrune's alpha > 1 is not defined on inner product: graph offers alpha 1 only there.
  index::Metric metric = index::Metric::kL2;
  /// rl: a graph trained beforehand (`waypoint tune --rl-graph FILE`): only its ef is tuned.
  /// Otherwise each rl configuration is a learning job (engine/learned_index.h) at degree m.
  bool rl_trained_file = false;
};

struct Space {
  std::vector<index::IndexKind> kinds;       ///< the tuned kinds, in order
  std::vector<std::vector<Choice>> choices;  ///< per kind, in sampling order

  /// The standard space over the kinds named in `types` ("hnsw", "graph", "lsh", "rl"). UserError
  /// for an unknown, untunable or repeated kind.
  static Space standard(const std::vector<std::string>& types, const SpaceOptions& options = {});
  /// The position of kind `type` (a kind's name); UserError when it is not in the space.
  size_t type_index(const std::string& type) const;
  /// The name of the kind of configuration type `t`.
  const char* type_name(size_t t) const { return index::index_kind_name(kinds.at(t)); }
  /// The most values any choice (the type included) has: the width of a controller's heads.
  size_t max_values() const;
};

/// A configuration: a type and one value index per choice of that type.
struct Config {
  size_t type = 0;
  std::vector<size_t> picks;
  bool operator<(const Config& o) const { return type != o.type ? type < o.type : picks < o.picks; }
  bool operator==(const Config& o) const { return type == o.type && picks == o.picks; }
};

bool valid(const Space& s, const Config& c);
/// The value of choice `name` in `c` (nullopt when its type has no such choice).
std::optional<double> value(const Space& s, const Config& c, const std::string& name);
/// "hnsw m=16 ef_construct=200 quantization=none ef=64"
std::string describe(const Space& s, const Config& c);
/// The configuration's search width: its ef or LSH candidates (0 when it has neither).
size_t search_ef(const Space& s, const Config& c);
/// The body `PUT /collections/{name}/index` and `waypoint build --config` accept.
nlohmann::json to_request(const Space& s, const Config& c);
/// The configuration of a request body (inverse of to_request; UserError if off the space).
Config from_request(const Space& s, const nlohmann::json& body);

}  // namespace wp::engine::tune
