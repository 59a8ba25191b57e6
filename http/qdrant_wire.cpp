#include "http/qdrant_wire.h"

#include <algorithm>
#include <cstdint>
#include <optional>

#include "engine/index_request.h"
#include "engine/json_fields.h"
#include "engine/json_path.h"
#include "engine/json_value.h"
#include "engine/payload_index.h"
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
void read_quantization_config(const json& q, const std::string& f, index::HnswParams& h) {
  if (q.is_null() || q == "Disabled") {
    h.quantization = index::Quantization::kNone;
    return;
  }
  check_object(q, f);
  WP_THROW_IF_NOT(q.size() == 1 && q.contains("scalar"), f,
                  ": expected {\"scalar\": {\"type\": \"int8\"}} or "
                  "\"Disabled\" (product and binary quantization are not supported), got ",
                  engine::show_json(q));
  const json& s = q["scalar"];
  check_object(s, f + ".scalar");
  WP_THROW_IF_NOT(engine::get_string(s, "type", f + ".scalar", "") == "int8",
                  f + ".scalar.type: expected \"int8\"");
  engine::check_fields(s, f + ".scalar", {"type", "quantile", "always_ram"});
  if (s.contains("quantile")) {
    engine::get_number(s, "quantile", f + ".scalar", 1, 0.5, 1);
  }
  engine::get_bool(s, "always_ram", f + ".scalar", true);
  h.quantization = index::Quantization::kSq8;
}

void read_hnsw_config(const json& h, const std::string& f, index::IndexSpec& spec,
                      size_t& max_indexing_threads) {
  check_object(h, f);
  for (const auto& [key, value] : h.items()) {
    WP_THROW_IF_NOT(key == HnswParams::kM.key || key == HnswParams::kEfConstruction.key ||
                        key == HnswParams::kEfSearch.key || key == "full_scan_threshold" ||
                        key == "max_indexing_threads" || key == "on_disk" || key == "payload_m",
                    f, ".", engine::show_text(key),
                    ": unknown or unsupported field (expected m, ef_construct, ef, "
                    "full_scan_threshold, max_indexing_threads, on_disk, payload_m)");
  }
  index::HnswParams& p = spec.hnsw;
  // Qdrant's m: 0 builds no graph of the whole collection (its multitenancy recipe, with
  // payload_m): searched exactly here (a flat index; a filter's matches listed by the payload
  // indexes, as a tenant's are); an m of 2 or more builds the graph again. The HNSW parameters
  // are kept for that.
  if (h.contains(HnswParams::kM.key) && h[HnswParams::kM.key].is_number_integer() &&
      h[HnswParams::kM.key] == 0) {
    spec.kind = index::IndexKind::kFlat;
  } else if (h.contains(HnswParams::kM.key)) {
    p.M = get_count(h, HnswParams::kM, f, p.M);
    if (spec.kind == index::IndexKind::kFlat) spec.kind = index::IndexKind::kHnsw;
  }
  // Qdrant's graphs per tenant: checked, without effect here (a tenant's points are listed by
  // its payload index and searched exactly, or walked in the whole graph).
  get_count(h, "payload_m", f, 0, 0, static_cast<size_t>(HnswParams::kM.hi));
  p.ef_construction = get_count(h, HnswParams::kEfConstruction, f, p.ef_construction);
  p.ef_search = get_count(h, HnswParams::kEfSearch, f, p.ef_search);
  // 0: as the server chooses (serve --indexing-threads), where Qdrant picks 8 to 16.
  max_indexing_threads = get_count(h, "max_indexing_threads", f, max_indexing_threads, 0, 65536);
  // Qdrant's tuning knobs of its own segments: checked, without effect here (searches choose
  // exact scans by filter selectivity; the graph is in memory).
  get_count(h, "full_scan_threshold", f, 0, 0, SIZE_MAX);
  WP_THROW_IF_NOT(!engine::get_bool(h, "on_disk", f, false),
                  f + ".on_disk: true is not supported (the graph is kept in memory)");
}

}  // namespace

namespace {

/// The index settings of one vector at `v` (a vector's params, or the body for the collection's
/// own): hnsw_config and quantization_config; `at` prefixes the fields in messages.
void apply_index_settings(const json& v, const std::string& at, engine::VectorConfig& c) {
  if (v.contains("hnsw_config") && !v["hnsw_config"].is_null()) {
    read_hnsw_config(v["hnsw_config"], at + "hnsw_config", c.index, c.max_indexing_threads);
  }
  if (v.contains("quantization_config")) {
    read_quantization_config(v["quantization_config"], at + "quantization_config", c.index.hnsw);
  }
}

/// One vector's params ({"size", "distance", "hnsw_config", "quantization_config", "on_disk",
/// "datatype", "multivector_config"}) at `at`, over the collection's settings in `body`.
engine::VectorConfig read_vector_params(const json& v, const std::string& at, const json& body) {
  check_object(v, at);
  engine::check_fields(v, at,
                       {"size", "distance", "hnsw_config", "quantization_config", "on_disk",
                        "datatype", "multivector_config"});
  engine::VectorConfig c;
  WP_THROW_IF_NOT(v.contains("size"), at, ".size: missing");
  c.dim = get_count(v, "size", at, 0, 1, 65536);
  WP_THROW_IF_NOT(v.contains("distance"), at, ".distance: missing");
  index::IndexSpec& s = c.index;
  s.metric = engine::parse_distance(v["distance"], at + ".distance");
  s.hnsw.M = 16;
  s.hnsw.ef_construction = 100;
  engine::get_bool(v, "on_disk", at, false);  // a storage hint: vectors are kept in memory
  const std::string type = engine::get_string(v, "datatype", at, "float32");
  WP_THROW_IF_NOT(type == "float32", at, ".datatype: only \"float32\" is supported, got ",
                  engine::show_json(json(type)));
  apply_index_settings(body, "", c);
  apply_index_settings(v, at + ".", c);
  s.validate();
  return c;
}

/// Whether a vector's params at `at` make it a multivector (Qdrant's multivector_config:
/// {"comparator": "max_sim"}, the one comparator there is).
bool read_multivector_config(const json& v, const std::string& at) {
  if (!v.contains("multivector_config") || v["multivector_config"].is_null()) return false;
  const json& m = v["multivector_config"];
  const std::string in = at + ".multivector_config";
  check_object(m, in);
  engine::check_fields(m, in, {"comparator"});
  WP_THROW_IF_NOT(m.contains("comparator"), in, ".comparator: missing (expected \"max_sim\")");
  const std::string comparator = engine::get_string(m, "comparator", in, "");
  WP_THROW_IF_NOT(comparator == "max_sim", in, ".comparator: expected \"max_sim\", got ",
                  engine::show_json(json(comparator)));
  return true;
}

/// The space `name` of a create body from its params `v` at `at`: a dense vector, or a
/// multivector (scanned exactly whatever its hnsw_config, which is checked).
void read_space(const json& v, const std::string& at, const std::string& name, const json& body,
                engine::CollectionConfig& c) {
  const engine::VectorConfig vc = read_vector_params(v, at, body);
  if (read_multivector_config(v, at)) {
    c.multivectors[name] = engine::MultiVectorConfig{vc.dim, vc.metric()};
  } else {
    c.vectors[name] = vc;
  }
}

}  // namespace

namespace {

/// One sparse vector's params at `at` ({"index": {"full_scan_threshold", "on_disk", "datatype"},
/// "modifier": "none"|"idf"}; null is {}): its modifier, when given.
std::optional<engine::SparseModifier> read_sparse_params(const json& params,
                                                         const std::string& at) {
  const json none = json::object();
  const json& p = params.is_null() ? none : params;
  check_object(p, at);
  engine::check_fields(p, at, {"index", "modifier"});
  if (p.contains("index") && !p["index"].is_null()) {
    const json& index = p["index"];
    const std::string in = at + ".index";
    check_object(index, in);
    engine::check_fields(index, in, {"full_scan_threshold", "on_disk", "datatype"});
    // Qdrant's tuning knobs of its own segments: checked, without effect here (the postings
    // are in memory and a query walks only its own dimensions').
    get_count(index, "full_scan_threshold", in, 0, 0, SIZE_MAX);
    engine::get_bool(index, "on_disk", in, false);
    const std::string type = engine::get_string(index, "datatype", in, "float32");
    WP_THROW_IF_NOT(type == "float32", in, ".datatype: only \"float32\" is supported, got ",
                    engine::show_json(json(type)));
  }
  if (!p.contains("modifier") || p["modifier"].is_null()) return std::nullopt;
  const std::string modifier = engine::get_string(p, "modifier", at, "none");
  WP_THROW_IF_NOT(modifier == "none" || modifier == "idf", at,
                  ".modifier: expected \"none\" or \"idf\", got ",
                  engine::show_json(json(modifier)));
  return modifier == "idf" ? engine::SparseModifier::kIdf : engine::SparseModifier::kNone;
}

/// The sparse vector spaces of a create body (Qdrant's sparse_vectors: {name: params}) into `c`.
void read_sparse_vectors(const json& body, engine::CollectionConfig& c) {
  if (!body.contains("sparse_vectors") || body["sparse_vectors"].is_null()) return;
  const json& sparse = body["sparse_vectors"];
  check_object(sparse, "sparse_vectors");
  WP_THROW_IF_NOT(sparse.size() <= kMaxNamedVectors, "sparse_vectors: at most ", kMaxNamedVectors,
                  " sparse vectors, got ", sparse.size());
  for (const auto& [name, params] : sparse.items()) {
    const std::string at = "sparse_vectors." + name;
    engine::validate_vector_name(name, "sparse_vectors");
    WP_THROW_IF_NOT(!c.vectors.count(name) && !c.multivectors.count(name), at, ": ",
                    engine::show_json(json(name)),
                    " is already the name of a dense vector or a multivector");
    c.sparse_vectors[name].modifier =
        read_sparse_params(params, at).value_or(engine::SparseModifier::kNone);
  }
}

}  // namespace

engine::CollectionConfig collection_config_from_qdrant(const json& body) {
  WP_THROW_IF_NOT(body.is_object(), "body: expected a JSON object");
  const bool sparse = body.contains("sparse_vectors") && body["sparse_vectors"].is_object() &&
                      !body["sparse_vectors"].empty();
  WP_THROW_IF_NOT(body.contains("vectors") || sparse,
                  "vectors: missing (expected {\"size\": N, \"distance\": "
                  "\"Cosine\"|\"Euclid\"|\"Dot\"} or named vectors {\"name\": {\"size\", "
                  "\"distance\"}}, or sparse_vectors)");
  const json none = json::object();
  const json& v = body.contains("vectors") && !body["vectors"].is_null() ? body["vectors"] : none;
  WP_THROW_IF_NOT(v.is_object(), "vectors: expected an object, got ", engine::show_json(v));
  if (body.contains("optimizers_config") && !body["optimizers_config"].is_null()) {
    check_optimizers_config(body["optimizers_config"]);
  }
  engine::CollectionConfig c;
  if (v.contains("size") || v.contains("distance")) {
    read_space(v, "vectors", "", body, c);
  } else {
    WP_THROW_IF_NOT((!v.empty() || sparse) && v.size() <= kMaxNamedVectors, "vectors: expected ",
                    "{\"size\", \"distance\"} or 1..", kMaxNamedVectors,
                    " named vectors {\"name\": {\"size\", \"distance\"}}, got ",
                    engine::show_json(v));
    for (const auto& [name, params] : v.items()) {
      engine::validate_vector_name(name, "vectors");
      read_space(params, "vectors." + name, name, body, c);
    }
  }
  read_sparse_vectors(body, c);
  return c;
}

QdrantCollectionUpdate qdrant_collection_update(const json& body,
                                                const engine::CollectionConfig& config) {
  WP_THROW_IF_NOT(body.is_object(), "body: expected a JSON object");
  for (const auto& [key, value] : body.items()) {
    WP_THROW_IF_NOT(key == "hnsw_config" || key == "quantization_config" ||
                        key == "optimizers_config" || key == "vectors" || key == "sparse_vectors",
                    engine::show_text(key),
                    ": not supported by waypoint's collection update (expected hnsw_config, "
                    "quantization_config, optimizers_config, vectors, sparse_vectors)");
  }
  if (body.contains("optimizers_config") && !body["optimizers_config"].is_null()) {
    check_optimizers_config(body["optimizers_config"]);
  }
  const json none = json::object();
  const json& named =
      body.contains("vectors") && !body["vectors"].is_null() ? body["vectors"] : none;
  check_object(named, "vectors");
  for (const auto& [name, v] : named.items()) {
    const std::string at = "vectors." + name;
    if (const auto multi = config.multivectors.find(name); multi != config.multivectors.end()) {
      // Checked, without effect: a multivector space is scanned exactly, with no index.
      check_object(v, at);
      engine::check_fields(v, at, {"hnsw_config", "quantization_config", "on_disk"});
      engine::get_bool(v, "on_disk", at, false);
      engine::VectorConfig unused;
      apply_index_settings(v, at + ".", unused);
      continue;
    }
    (void)config.vector(name, "vectors");
    check_object(v, at);
    engine::check_fields(v, at, {"hnsw_config", "quantization_config", "on_disk"});
    engine::get_bool(v, "on_disk", at, false);
  }
  QdrantCollectionUpdate update;
  const json& sparse = body.contains("sparse_vectors") && !body["sparse_vectors"].is_null()
                           ? body["sparse_vectors"]
                           : none;
  check_object(sparse, "sparse_vectors");
  for (const auto& [name, params] : sparse.items()) {
    const auto it = config.sparse_vectors.find(name);
    WP_THROW_IF_NOT(it != config.sparse_vectors.end(),
                    "sparse_vectors: ", engine::no_vector_named(name),
                    " (not a sparse vector of the collection)");
    const std::optional<engine::SparseModifier> m =
        read_sparse_params(params, "sparse_vectors." + name);
    if (m && *m != it->second.modifier) update.sparse_modifiers[name] = *m;
  }
  for (const auto& [name, vc] : config.vectors) {
    engine::VectorConfig next = vc;
    apply_index_settings(body, "", next);
    if (named.contains(name)) apply_index_settings(named[name], "vectors." + name + ".", next);
    next.index.validate();
    const index::HnswParams &a = vc.index.hnsw, &b = next.index.hnsw;
    if (a.M != b.M || a.ef_construction != b.ef_construction || a.ef_search != b.ef_search ||
        a.quantization != b.quantization || vc.index.kind != next.index.kind) {
      update.rebuild[name] = next.index;
    }
    // A setting of the running index, as in Qdrant (where it starts no re-indexing either).
    if (next.max_indexing_threads != vc.max_indexing_threads) {
      update.indexing_threads[name] = next.max_indexing_threads;
    }
  }
  return update;
}

namespace {

json hnsw_json(const engine::VectorConfig& v) {
  // A flat index is Qdrant's m: 0 (no graph).
  return {{"m", v.index.kind == index::IndexKind::kFlat ? size_t{0} : v.index.hnsw.M},
          {"ef_construct", v.index.hnsw.ef_construction},
          {"full_scan_threshold", 10000},
          {"max_indexing_threads", v.max_indexing_threads},
          {"on_disk", false}};
}

json quantization_json(const index::HnswParams& h) {
  return h.quantization == index::Quantization::kSq8
             ? json{{"scalar", {{"type", "int8"}, {"always_ram", true}}}}
             : json();
}

}  // namespace

json collection_info_json(const engine::CollectionInfo& info) {
  const engine::CollectionConfig& c = info.config;
  // The collection-wide settings Qdrant shows are those of the first vector (the only one of an
  // unnamed collection); each named vector shows its own.
  const engine::VectorConfig first =
      c.vectors.empty() ? engine::VectorConfig{} : c.vectors.begin()->second;
  const index::HnswParams& h = first.index.hnsw;
  json vectors = json::object();
  for (const auto& [name, v] : c.vectors) {
    json params{{"size", v.dim}, {"distance", engine::distance_name(v.metric())}};
    if (c.named()) {
      params["hnsw_config"] = hnsw_json(v);
      const json q = quantization_json(v.index.hnsw);
      if (!q.is_null()) params["quantization_config"] = q;
      vectors[name] = params;
    } else {
      vectors = params;
    }
  }
  for (const auto& [name, m] : c.multivectors) {
    const json params{{"size", m.dim},
                      {"distance", engine::distance_name(m.metric)},
                      {"multivector_config", {{"comparator", "max_sim"}}}};
    if (c.named()) {
      vectors[name] = params;
    } else {
      vectors = params;
    }
  }
  size_t indexed = 0;
  for (const auto& [name, n] : info.vectors) indexed += n;
  json sparse = json::object();
  for (const auto& [name, v] : c.sparse_vectors) {
    sparse[name] = {{"modifier", engine::sparse_modifier_name(v.modifier)}};
  }
  json params{{"vectors", vectors},
              {"shard_number", 1},
              {"replication_factor", 1},
              {"write_consistency_factor", 1},
              {"on_disk_payload", false}};
  if (!sparse.empty()) params["sparse_vectors"] = sparse;
  const json config{{"params", params},
                    {"hnsw_config", hnsw_json(first)},
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
                    {"quantization_config", quantization_json(h)}};
  json payload_schema = json::object();
  for (const auto& [key, f] : info.payload_fields) {
    payload_schema[key] = {{"data_type", engine::payload_schema_name(f.schema)},
                           {"points", f.points}};
    if (f.schema == engine::PayloadSchema::kText) {  // Qdrant reports a text index's params
      payload_schema[key]["params"] = engine::text_index_params(f.text);
    } else if (f.schema == engine::PayloadSchema::kKeyword && !f.text.is_default()) {
      payload_schema[key]["params"] = engine::keyword_index_params(f.text);
    }
  }
  return {{"status", "green"},
          {"optimizer_status", "ok"},
          {"vectors_count", indexed},
          {"indexed_vectors_count", indexed},
          {"points_count", info.points},
          {"segments_count", 1},
          {"config", config},
          {"payload_schema", payload_schema}};
}

json index_status_json(const engine::IndexStatus& s) {
  json j{{"vector", s.vector},
         {"type", index::index_kind_name(s.served.kind)},
         {"state", s.state},
         {"progress", s.progress},
         {"params", engine::index_params_json(s.served)},
         {"max_indexing_threads", s.max_insert_threads}};
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

std::vector<engine::Engine::AliasAction> read_alias_actions(const json& body) {
  WP_THROW_IF_NOT(body.is_object() && body.contains("actions") && body["actions"].is_array(),
                  "actions: expected an array of create_alias, delete_alias and rename_alias");
  using Action = engine::Engine::AliasAction;
  std::vector<Action> actions;
  const json& list = body["actions"];
  for (size_t i = 0; i < list.size(); ++i) {
    const std::string at = "actions[" + std::to_string(i) + "]";
    const json& a = list[i];
    WP_THROW_IF_NOT(a.is_object() && a.size() == 1, at,
                    ": expected {\"create_alias\" | \"delete_alias\" | \"rename_alias\": {...}}");
    const std::string kind = a.begin().key();
    const json& args = a.begin().value();
    const std::string where = at + "." + engine::show_text(kind);
    WP_THROW_IF_NOT(args.is_object(), where, ": expected an object");
    auto name = [&](const char* key) {
      WP_THROW_IF_NOT(args.contains(key) && args[key].is_string(), where, ".", key,
                      ": expected a name");
      return args[key].get<std::string>();
    };
    if (kind == "create_alias") {
      actions.push_back({Action::Kind::kCreate, name("alias_name"), name("collection_name")});
    } else if (kind == "delete_alias") {
      actions.push_back({Action::Kind::kDelete, name("alias_name"), ""});
    } else if (kind == "rename_alias") {
      actions.push_back({Action::Kind::kRename, name("old_alias_name"), name("new_alias_name")});
    } else {
      throw UserError(where + ": unknown action (expected create_alias, delete_alias, " +
                      "rename_alias)");
    }
  }
  return actions;
}

json alias_list_json(const std::map<std::string, std::string>& aliases) {
  json list = json::array();
  for (const auto& [alias, target] : aliases) {
    list.push_back({{"alias_name", alias}, {"collection_name", target}});
  }
  return json{{"aliases", list}};
}

PayloadIndexBody read_payload_index_body(const json& body) {
  WP_THROW_IF_NOT(body.is_object(), "body: expected a JSON object");
  engine::check_fields(body, "", {"field_name", "field_schema"});
  WP_THROW_IF_NOT(body.contains("field_name") && body["field_name"].is_string(),
                  "field_name: expected a key path string such as \"city\" or \"a.b\"");
  engine::parse_json_path(body["field_name"], "field_name");
  WP_THROW_IF_NOT(body.contains("field_schema") && !body["field_schema"].is_null(),
                  "field_schema: missing (expected one of keyword, integer, float, bool, uuid)");
  PayloadIndexBody out;
  out.key = body["field_name"].get<std::string>();
  out.schema = engine::parse_payload_schema(body["field_schema"], "field_schema", &out.text);
  return out;
}

}  // namespace wp::http
