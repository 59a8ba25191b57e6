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

#include "engine/multi_vector.h"
#include "engine/payload_index.h"
#include "engine/sparse_vector.h"
#include "index/index_spec.h"
#include "index/metric.h"

namespace wp::engine {

/// One vector space of a collection: the dimension and metric of its vectors and its index.
struct VectorConfig {
  size_t dim = 0;
  /// The served index: its kind and parameters; `index.metric` is the space's metric.
  index::IndexSpec index;
  /// The most threads that insert into the index (Qdrant's hnsw_config.max_indexing_threads;
  /// 0: as the server chooses). Index::set_max_insert_threads.
  size_t max_indexing_threads = 0;

  index::Metric metric() const { return index.metric; }
};

/// One sparse vector space (Qdrant's sparse_vectors): how its queries are weighed.
struct SparseVectorConfig {
  SparseModifier modifier = SparseModifier::kNone;
};

/// One multivector space (Qdrant's vector params with `multivector_config`, comparator
/// max_sim): each point holds 1.. vectors of `dim` values, scored by MaxSim (multi_vector.h) in
/// an exact scan.
struct MultiVectorConfig {
  size_t dim = 0;
  index::Metric metric{};
};

struct CollectionConfig {
  /// The vector spaces by name (Qdrant's named vectors). A collection of one unnamed vector (the
  /// default, `"vectors": {"size", "distance"}`) holds the single name "".
  std::map<std::string, VectorConfig> vectors;
  /// The sparse vector spaces by name (none of them a name of `vectors`).
  std::map<std::string, SparseVectorConfig> sparse_vectors;
  /// The multivector spaces by name (none of them a name of `vectors` or `sparse_vectors`); ""
  /// alone (and no `vectors`) is a collection of one unnamed multivector.
  std::map<std::string, MultiVectorConfig> multivectors;
  /// Payload indexes by key (Qdrant's payload_schema): built in memory at open.
  std::map<std::string, PayloadSchema> payload_schema;
  /// How a text index reads texts, by key (absent: the default TextParams); looked up by a
  /// string_view while filters test points, so without a string made each time.
  std::map<std::string, TextParams, std::less<>> text_params;

  /// A collection of one unnamed vector.
  static CollectionConfig single(size_t dim, const index::IndexSpec& index);
  /// Whether the dense vectors (and multivectors) are named (a point's vectors are then an
  /// object by name; with sparse vectors they are too, and the unnamed vector is named "" there).
  bool named() const {
    return !(vectors.size() + multivectors.size() == 1 &&
             (vectors.count("") || multivectors.count("")));
  }
  /// The space `name` ("" is the unnamed vector); UserError naming `field` when the collection
  /// has none of that name (Qdrant's "Not existing vector name error").
  const VectorConfig& vector(const std::string& name, const std::string& field) const;

  /// Our stored form, and back (from_stored throws InternalError on a damaged record).
  nlohmann::json to_stored() const;
  static CollectionConfig from_stored(const nlohmann::json& j);
};

/// The longest vector name, in bytes.
inline constexpr size_t kMaxVectorName = 128;
/// Throws UserError naming `field` unless `name` is 1..kMaxVectorName bytes without control
/// characters.
void validate_vector_name(const std::string& name, const std::string& field);
/// The message of Qdrant's error for a vector name a collection does not have.
std::string no_vector_named(const std::string& name);

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
