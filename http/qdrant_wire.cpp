#include "http/qdrant_wire.h"

#include "engine/index_request.h"
#include "engine/json_fields.h"
#include "engine/json_value.h"
#include "index/error.h"

namespace wp::http {

using engine::get_count;
using index::HnswParams;
using nlohmann::json;

engine::CollectionConfig collection_config_from_qdrant(const json& body) {
  WP_THROW_IF_NOT(body.is_object(), "body: expected a JSON object");
  WP_THROW_IF_NOT(body.contains("vectors"),
                  "vectors: missing (expected {\"size\": N, \"distance\": "
                  "\"Cosine\"|\"Euclid\"|\"Dot\"})");
  const json& v = body["vectors"];
  WP_THROW_IF_NOT(v.is_object(), "vectors: expected an object, got ", engine::show_json(v));
  WP_THROW_IF_NOT(v.contains("size"), "vectors.size: missing; named vectors are not supported yet");
  engine::CollectionConfig c;
  c.dim = get_count(v, "size", "vectors", 0, 1, 65536);
  WP_THROW_IF_NOT(v.contains("distance"), "vectors.distance: missing");
  index::IndexSpec& s = c.index;
  s.metric = engine::parse_distance(v["distance"], "vectors.distance");
  s.hnsw.M = 16;
  s.hnsw.ef_construction = 100;
  if (body.contains("hnsw_config") && !body["hnsw_config"].is_null()) {
    const json& h = body["hnsw_config"];
    WP_THROW_IF_NOT(h.is_object(), "hnsw_config: expected an object, got ", engine::show_json(h));
    s.hnsw.M = get_count(h, HnswParams::kM, "hnsw_config", s.hnsw.M);
    s.hnsw.ef_construction =
        get_count(h, HnswParams::kEfConstruction, "hnsw_config", s.hnsw.ef_construction);
    s.hnsw.ef_search = get_count(h, HnswParams::kEfSearch, "hnsw_config", s.hnsw.ef_search);
  }
  s.validate();
  return c;
}

json collection_info_json(const engine::CollectionInfo& info) {
  const engine::CollectionConfig& c = info.config;
  const index::HnswParams& h = c.index.hnsw;
  const json config{
      {"params",
       {{"vectors", {{"size", c.dim}, {"distance", engine::distance_name(c.metric())}}},
        {"shard_number", 1},
        {"replication_factor", 1},
        {"write_consistency_factor", 1},
        {"on_disk_payload", false}}},
      {"hnsw_config",
       {{"m", h.M},
        {"ef_construct", h.ef_construction},
        {"full_scan_threshold", 10000},
        {"max_indexing_threads", 0},
        {"on_disk", false}}},
      {"optimizer_config",
       {{"deleted_threshold", h.consolidate_fraction},
        {"vacuum_min_vector_number", 1000},
        {"default_segment_number", 1},
        {"max_segment_size", nullptr},
        {"memmap_threshold", nullptr},
        {"indexing_threshold", 0},
        {"flush_interval_sec", 0},
        {"max_optimization_threads", nullptr}}},
      {"wal_config", {{"wal_capacity_mb", 0}, {"wal_segments_ahead", 0}}},
      {"quantization_config", nullptr}};
  return {{"status", "green"},
          {"optimizer_status", "ok"},
          {"vectors_count", info.points},
          {"indexed_vectors_count", info.points},
          {"points_count", info.points},
          {"segments_count", 1},
          {"config", config},
          {"payload_schema", json::object()}};
}

json index_status_json(const engine::IndexStatus& s) {
  json j{{"type", index::index_kind_name(s.served.kind)},
         {"state", s.state},
         {"progress", s.progress},
         {"params", engine::index_params_json(s.served)}};
  if (!s.error.empty()) j["error"] = s.error;
  if (s.target) {
    j["target"] = {{"type", index::index_kind_name(s.target->kind)},
                   {"params", engine::index_params_json(*s.target)}};
  }
  if (s.tune) {
    const engine::tune::AutoTuneOutcome& t = *s.tune;
    j["tune"] = {{"strategy", t.strategy},
                 {"trials", t.trials},
                 {"recall_target", t.recall_target},
                 {"k", t.k},
                 {"config", t.config},
                 {"recall", t.recall},
                 {"qps", t.qps},
                 {"feasible", t.feasible},
                 {"queries", t.queries}};
  }
  return j;
}

}  // namespace wp::http
