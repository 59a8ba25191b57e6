#pragma once
/**
 * @file qdrant_wire.h
 * Qdrant's wire format of the engine's collection structures: the collection config a create
 * body describes, the collection info object, and our index status object (GET
 * /collections/{name}/index), aliases' actions and lists. The engine keeps its own structs and
 * stored form; only http/ speaks Qdrant's JSON.
 */
#include <map>
#include <string>
#include <utility>

#include <nlohmann/json.hpp>

#include "engine/collection.h"
#include "engine/collection_config.h"
#include "engine/engine.h"

namespace wp::http {

/// The most named vectors one collection holds.
inline constexpr size_t kMaxNamedVectors = 64;

/// `PUT /collections/{name}`'s body: {"vectors": {"size", "distance", "hnsw_config",
/// "quantization_config"}} for one unnamed vector, or {"vectors": {"name": {...}, ...}} for named
/// ones; the collection's "hnsw_config" and "quantization_config" apply to every vector unless
/// it has its own; throws UserError naming the field. Qdrant's defaults: m = 16,
/// ef_construct = 100.
engine::CollectionConfig collection_config_from_qdrant(const nlohmann::json& body);

/// What a `PATCH /collections/{name}` body changes (qdrant_collection_update).
struct QdrantCollectionUpdate {
  /// The vectors whose index parameters changed, with their new specs: each is rebuilt.
  std::map<std::string, index::IndexSpec> rebuild;
  /// The vectors whose max_indexing_threads changed, with the new value: set on the running
  /// index (Collection::set_max_indexing_threads), no rebuild.
  std::map<std::string, size_t> indexing_threads;
  /// The sparse vectors whose modifier changed, with the new one (Collection::set_sparse_modifiers:
  /// it weighs the next queries, nothing is rebuilt).
  std::map<std::string, engine::SparseModifier> sparse_modifiers;
};

/**
 * The index settings of a `PATCH /collections/{name}` body applied to the collection's vectors:
 * the collection's `hnsw_config` (m, ef_construct, ef, max_indexing_threads; Qdrant's
 * full_scan_threshold is checked and has no effect) and `quantization_config` ({"scalar":
 * {"type": "int8"}} is sq8, "Disabled" none) to every vector, then each vector's own in
 * `vectors: {name: {...}}`; `optimizers_config` is checked (waypoint keeps one segment, indexed
 * at once); any other key is refused. Throws UserError naming the field.
 */
QdrantCollectionUpdate qdrant_collection_update(const nlohmann::json& body,
                                                const engine::CollectionConfig& config);

/// Qdrant's collection info object (GET /collections/{name}).
nlohmann::json collection_info_json(const engine::CollectionInfo& info);

/// {"vector", "type", "state", "progress", "params" (the request keys of the served kind),
/// "max_indexing_threads" (the served index's bound, 0: none), "target" (the kind and params a
/// running build makes), "error", "tune"} (GET /collections/{name}/index;
/// PUT answers it too, so the client sees its request taken).
nlohmann::json index_status_json(const engine::IndexStatus& status);

/// `POST /collections/aliases`'s body: {"actions": [{"create_alias": {"alias_name",
/// "collection_name"}} | {"delete_alias": {"alias_name"}} | {"rename_alias": {"old_alias_name",
/// "new_alias_name"}}...]}; throws UserError naming the field.
std::vector<engine::Engine::AliasAction> read_alias_actions(const nlohmann::json& body);

/// {"aliases": [{"alias_name", "collection_name"}...]}.
nlohmann::json alias_list_json(const std::map<std::string, std::string>& aliases);

/// `PUT /collections/{name}/index`'s body {"field_name", "field_schema"}: the key path, its
/// schema and, for a text index, how it reads texts; throws UserError naming the field.
struct PayloadIndexBody {
  std::string key;
  engine::PayloadSchema schema;
  engine::TextParams text;  ///< how a text index reads texts
};
PayloadIndexBody read_payload_index_body(const nlohmann::json& body);

}  // namespace wp::http
