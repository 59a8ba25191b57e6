#pragma once
/**
 * @file collection_config.h
 * A collection's schema and index configuration, parsed from Qdrant's create-collection body
 * and stored (in our own JSON form) in the collection's point store.
 */
#include <string>

#include <nlohmann/json.hpp>

#include "index/hnsw_index.h"
#include "index/lsh_index.h"
#include "index/metric.h"

namespace wp::engine {

struct CollectionConfig {
  size_t dim = 0;
  index::Metric metric = index::Metric::kCosine;
  std::string index_type = "hnsw";  ///< "hnsw", "flat", "graph", "rl" or "lsh"
  index::HnswParams hnsw;           ///< Qdrant's hnsw_config: m, ef_construct (and our ef)
  index::LshParams lsh;             ///< index_type "lsh" (random planes)
  double alpha = 1.2;               ///< index_type "graph": RobustPrune's slack

  /// Parses `PUT /collections/{name}`'s body; throws UserError naming the field.
  static CollectionConfig from_qdrant(const nlohmann::json& body);
  /// Our stored form, and back (from_stored throws InternalError on a damaged record).
  nlohmann::json to_stored() const;
  static CollectionConfig from_stored(const nlohmann::json& j);
  /// The `config` object of Qdrant's collection info.
  nlohmann::json to_qdrant() const;
};

/// An LshParams as JSON (stored config, GET index).
nlohmann::json lsh_params_json(const index::LshParams& p);
/// The served index's parameters as JSON (GET index): lsh's, else hnsw's (with alpha for graph).
nlohmann::json index_params_json(const CollectionConfig& c);

/// "Cosine", "Euclid" or "Dot" for a metric; parse_distance is its inverse (UserError otherwise).
const char* distance_name(index::Metric m);
index::Metric parse_distance(const nlohmann::json& j, const std::string& field);

/// Throws UserError unless `name` is 1..255 characters of letters, digits, '_', '-' and '.',
/// and not "." or "..".
void validate_collection_name(const std::string& name);

}  // namespace wp::engine
