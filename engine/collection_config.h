#pragma once
/**
 * @file collection_config.h
 * A collection's schema and index configuration, and its stored form (our own JSON, in the
 * collection's point store). Qdrant's wire forms of it (the create body, the info object) are
 * http/'s (http/qdrant_wire.h).
 */
#include <map>
#include <string>

#include <nlohmann/json.hpp>

#include "engine/payload_index.h"
#include "index/index_spec.h"
#include "index/metric.h"

namespace wp::engine {

struct CollectionConfig {
  size_t dim = 0;
  /// The served index: its kind and parameters; `index.metric` is the collection's metric.
  index::IndexSpec index;
  /// Payload indexes by key (Qdrant's payload_schema): built in memory at open.
  std::map<std::string, PayloadSchema> payload_schema;

  index::Metric metric() const { return index.metric; }

  /// Our stored form, and back (from_stored throws InternalError on a damaged record).
  nlohmann::json to_stored() const;
  static CollectionConfig from_stored(const nlohmann::json& j);
};

/// "Cosine", "Euclid" or "Dot" for a metric (Qdrant's names, also in our stored form);
/// parse_distance is its inverse (UserError naming `field` otherwise).
const char* distance_name(index::Metric m);
index::Metric parse_distance(const nlohmann::json& j, const std::string& field);

/// The longest collection name: a folder name (255 bytes) less the longest prefix of the
/// server's own folders (".creating-", engine.cpp).
inline constexpr size_t kMaxCollectionName = 245;

/// Throws UserError unless `name` is 1..kMaxCollectionName letters, digits, '_', '-' and '.',
/// not starting with '.': names starting with '.' are the server's own (a collection being
/// created or deleted), never reachable from the API.
void validate_collection_name(const std::string& name);

}  // namespace wp::engine
