#pragma once
/**
 * @file qdrant_wire.h
 * Qdrant's wire format of the engine's collection structures: the collection config a create
 * body describes, the collection info object, and our index status object (GET
 * /collections/{name}/index). The engine keeps its own structs and stored form; only http/
 * speaks Qdrant's JSON.
 */
#include <nlohmann/json.hpp>

#include "engine/collection.h"
#include "engine/collection_config.h"

namespace wp::http {

/// `PUT /collections/{name}`'s body ({"vectors": {"size", "distance"}, "hnsw_config": {"m",
/// "ef_construct", "ef"}}); throws UserError naming the field. Qdrant's defaults: m = 16,
/// ef_construct = 100.
engine::CollectionConfig collection_config_from_qdrant(const nlohmann::json& body);

/**
 * Applies the index settings of a create or `PATCH /collections/{name}` body to `spec`:
 * `hnsw_config` (m, ef_construct, ef; Qdrant's full_scan_threshold and max_indexing_threads are
 * checked and have no effect), `quantization_config` ({"scalar": {"type": "int8"}} is sq8,
 * "Disabled" none) and `optimizers_config` (checked; waypoint keeps one segment, indexed at
 * once). Throws UserError naming the field; returns whether the index parameters changed.
 */
bool apply_qdrant_index_config(const nlohmann::json& body, index::IndexSpec& spec);

/// Qdrant's collection info object (GET /collections/{name}).
nlohmann::json collection_info_json(const engine::CollectionInfo& info);

/// {"type", "state", "progress", "params" (the request keys of the served kind), "target" (the
/// kind and params a running build makes), "error", "tune"} (GET /collections/{name}/index; PUT
/// answers it too, so the client sees its request taken).
nlohmann::json index_status_json(const engine::IndexStatus& status);

}  // namespace wp::http
