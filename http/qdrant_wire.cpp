#include "http/qdrant_wire.h"

#include <algorithm>
#include <cstdint>

#include "engine/index_request.h"
#include "engine/json_fields.h"
#include "engine/json_value.h"
#include "index/error.h"

namespace wp::http {

using engine::get_count;
using index::HnswParams;
using nlohmann::json;

namespace {

void check_object(const json& j, const std::string& field) {
  WP_THROW_IF_NOT(j.is_object(), field, ": expected an object, got ", engine::show_json(j));
}

/// Qdrant's optimizers_config: every field is checked and none changes waypoint's index (one
/// segment, indexed at once, tombstones consolidated as HnswParams says).
void check_optimizers_config(const json& o) {
  check_object(o, "optimizers_config");
  static const char* const kNumbers[] = {
      "deleted_threshold",  "vacuum_min_vector_number", "default_segment_number",
      "max_segment_size",   "memmap_threshold",         "indexing_threshold",
      "flush_interval_sec", "max_optimization_threads", "prevent_unoptimized"};
  for (auto it = o.begin(); it != o.end(); ++it) {
    const std::string& key = it.key();
    const json& value = it.value();
    const bool known =
        std::find_if(std::begin(kNumbers), std::end(kNumbers),
                     [&key](const char* k) { return key == k; }) != std::end(kNumbers);
    WP_THROW_IF_NOT(known, "optimizers_config.", engine::show_text(key),
                    ": unknown field (expected one of deleted_threshold, vacuum_min_vector_number, "
                    "default_segment_number, max_segment_size, memmap_threshold, "
                    "indexing_threshold, flush_interval_sec, max_optimization_threads)");
    WP_THROW_IF_NOT(value.is_null() || value.is_number() || value.is_boolean(),
                    "optimizers_config.", key, ": expected a number, got ",
                    engine::show_json(value));
  }
}

/// Qdrant's quantization_config: {"scalar": {"type": "int8", "quantile", "always_ram"}} is our
/// sq8 codes; "Disabled" (or null) none; product and binary quantization are refused.
void read_quantization_config(const json& q, index::HnswParams& h) {
  if (q.is_null() || q == "Disabled") {
    h.quantization = index::Quantization::kNone;
    return;
  }
  check_object(q, "quantization_config");
  WP_THROW_IF_NOT(q.size() == 1 && q.contains("scalar"),
                  "quantization_config: expected {\"scalar\": {\"type\": \"int8\"}} or "
                  "\"Disabled\" (product and binary quantization are not supported), got ",
                  engine::show_json(q));
  const json& s = q["scalar"];
  check_object(s, "quantization_config.scalar");
  WP_THROW_IF_NOT(engine::get_string(s, "type", "quantization_config.scalar", "") == "int8",
                  "quantization_config.scalar.type: expected \"int8\"");
  engine::check_fields(s, "quantization_config.scalar", {"type", "quantile", "always_ram"});
  if (s.contains("quantile")) {
    engine::get_number(s, "quantile", "quantization_config.scalar", 1, 0.5, 1);
  }
  engine::get_bool(s, "always_ram", "quantization_config.scalar", true);
  h.quantization = index::Quantization::kSq8;
}

void read_hnsw_config(const json& h, index::HnswParams& p) {
  check_object(h, "hnsw_config");
  for (const auto& [key, value] : h.items()) {
    WP_THROW_IF_NOT(key == HnswParams::kM.key || key == HnswParams::kEfConstruction.key ||
                        key == HnswParams::kEfSearch.key || key == "full_scan_threshold" ||
                        key == "max_indexing_threads" || key == "on_disk",
                    "hnsw_config.", engine::show_text(key),
                    ": unknown or unsupported field (expected m, ef_construct, ef, "
                    "full_scan_threshold, max_indexing_threads, on_disk)");
  }
  p.M = get_count(h, HnswParams::kM, "hnsw_config", p.M);
  p.ef_construction = get_count(h, HnswParams::kEfConstruction, "hnsw_config", p.ef_construction);
  p.ef_search = get_count(h, HnswParams::kEfSearch, "hnsw_config", p.ef_search);
  // Qdrant's tuning knobs of its own segments: checked, without effect here (searches choose
  // exact scans by filter selectivity; builds use every thread; the graph is in memory).
  get_count(h, "full_scan_threshold", "hnsw_config", 0, 0, SIZE_MAX);
  get_count(h, "max_indexing_threads", "hnsw_config", 0, 0, 65536);
  WP_THROW_IF_NOT(!engine::get_bool(h, "on_disk", "hnsw_config", false),
                  "hnsw_config.on_disk: true is not supported (the graph is kept in memory)");
}

}  // namespace

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
  apply_qdrant_index_config(body, s);
  return c;
}

bool apply_qdrant_index_config(const json& body, index::IndexSpec& spec) {
  const index::IndexSpec before = spec;
  if (body.contains("hnsw_config") && !body["hnsw_config"].is_null()) {
    read_hnsw_config(body["hnsw_config"], spec.hnsw);
  }
  if (body.contains("quantization_config")) {
    read_quantization_config(body["quantization_config"], spec.hnsw);
  }
  if (body.contains("optimizers_config") && !body["optimizers_config"].is_null()) {
    check_optimizers_config(body["optimizers_config"]);
  }
  spec.validate();
  const index::HnswParams &a = before.hnsw, &b = spec.hnsw;
  return a.M != b.M || a.ef_construction != b.ef_construction || a.ef_search != b.ef_search ||
         a.quantization != b.quantization;
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
      {"quantization_config", h.quantization == index::Quantization::kSq8
                                  ? json{{"scalar", {{"type", "int8"}, {"always_ram", true}}}}
                                  : json()}};
  json payload_schema = json::object();
  for (const auto& [key, f] : info.payload_fields) {
    payload_schema[key] = {{"data_type", engine::payload_schema_name(f.schema)},
                           {"points", f.points}};
  }
  return {{"status", "green"},
          {"optimizer_status", "ok"},
          {"vectors_count", info.points},
          {"indexed_vectors_count", info.points},
          {"points_count", info.points},
          {"segments_count", 1},
          {"config", config},
          {"payload_schema", payload_schema}};
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
