#include "engine/collection_config.h"

#include <cctype>

#include "index/error.h"

namespace wp::engine {

using nlohmann::json;

const char* distance_name(index::Metric m) {
  switch (m) {
    case index::Metric::kL2:
      return "Euclid";
    case index::Metric::kInnerProduct:
      return "Dot";
    case index::Metric::kCosine:
      return "Cosine";
  }
  return "?";
}

index::Metric parse_distance(const json& j, const std::string& field) {
  WP_THROW_IF_NOT(j.is_string(), field, ": expected one of \"Cosine\", \"Euclid\", \"Dot\", got ",
                  j.dump());
  const std::string s = j.get<std::string>();
  if (s == "Cosine") return index::Metric::kCosine;
  if (s == "Euclid") return index::Metric::kL2;
  if (s == "Dot") return index::Metric::kInnerProduct;
  throw UserError(field + ": distance \"" + s +
                  "\" is not supported; expected one of \"Cosine\", \"Euclid\", \"Dot\"");
}

void validate_collection_name(const std::string& name) {
  bool ok = !name.empty() && name.size() <= 255 && name != "." && name != "..";
  for (char c : name) {
    ok = ok && (std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-' || c == '.');
  }
  WP_THROW_IF_NOT(ok, "collection name '", name,
                  "' is invalid: use 1..255 letters, digits, '_', '-' or '.'");
}

namespace {
size_t get_size(const json& obj, const char* key, const std::string& where, size_t lo, size_t hi,
                size_t def) {
  if (!obj.contains(key) || obj[key].is_null()) return def;
  const json& v = obj[key];
  WP_THROW_IF_NOT(v.is_number_integer() || v.is_number_unsigned(), where, ".", key,
                  ": expected an integer, got ", v.dump());
  const int64_t x = v.get<int64_t>();
  WP_THROW_IF_NOT(x >= static_cast<int64_t>(lo) && x <= static_cast<int64_t>(hi), where, ".", key,
                  ": expected ", lo, "..", hi, ", got ", x);
  return static_cast<size_t>(x);
}
}  // namespace

CollectionConfig CollectionConfig::from_qdrant(const json& body) {
  WP_THROW_IF_NOT(body.is_object(), "body: expected a JSON object");
  WP_THROW_IF_NOT(body.contains("vectors"),
                  "vectors: missing (expected {\"size\": N, \"distance\": "
                  "\"Cosine\"|\"Euclid\"|\"Dot\"})");
  const json& v = body["vectors"];
  WP_THROW_IF_NOT(v.is_object(), "vectors: expected an object, got ", v.dump());
  WP_THROW_IF_NOT(v.contains("size"), "vectors.size: missing; named vectors are not supported yet");
  CollectionConfig c;
  c.dim = get_size(v, "size", "vectors", 1, 65536, 0);
  WP_THROW_IF_NOT(v.contains("distance"), "vectors.distance: missing");
  c.metric = parse_distance(v["distance"], "vectors.distance");
  // Qdrant's defaults: m = 16, ef_construct = 100.
  c.hnsw.M = 16;
  c.hnsw.ef_construction = 100;
  if (body.contains("hnsw_config") && !body["hnsw_config"].is_null()) {
    const json& h = body["hnsw_config"];
    WP_THROW_IF_NOT(h.is_object(), "hnsw_config: expected an object, got ", h.dump());
    c.hnsw.M = get_size(h, "m", "hnsw_config", 2, 1024, c.hnsw.M);
    c.hnsw.ef_construction = get_size(h, "ef_construct", "hnsw_config", 4, 100000, 100);
    c.hnsw.ef_search = get_size(h, "ef", "hnsw_config", 1, 100000, c.hnsw.ef_search);
  }
  c.hnsw.validate();
  return c;
}

json CollectionConfig::to_stored() const {
  json j{{"size", dim},
         {"distance", distance_name(metric)},
         {"index_type", index_type},
         {"hnsw",
          {{"m", hnsw.M},
           {"ef_construct", hnsw.ef_construction},
           {"ef", hnsw.ef_search},
           {"quantization", index::quantization_name(hnsw.quantization)}}}};
  if (index_type == "lsh") j["lsh"] = lsh_params_json(lsh);
  if (index_type == "graph") j["graph"] = {{"alpha", alpha}};
  return j;
}

json index_params_json(const CollectionConfig& c) {
  if (c.index_type == "lsh") return lsh_params_json(c.lsh);
  json j = c.to_stored()["hnsw"];
  if (c.index_type == "graph") j["alpha"] = c.alpha;
  return j;
}

json lsh_params_json(const index::LshParams& p) {
  return {{"bits", p.bits},     {"tables", p.tables},         {"key_bits", p.key_bits},
          {"probes", p.probes}, {"candidates", p.candidates}, {"seed", p.seed}};
}

CollectionConfig CollectionConfig::from_stored(const json& j) {
  try {
    CollectionConfig c;
    c.dim = j.at("size").get<size_t>();
    c.metric = parse_distance(j.at("distance"), "distance");
    c.index_type = j.at("index_type").get<std::string>();
    const json& h = j.at("hnsw");
    c.hnsw.M = h.at("m").get<size_t>();
    c.hnsw.ef_construction = h.at("ef_construct").get<size_t>();
    c.hnsw.ef_search = h.at("ef").get<size_t>();
    c.hnsw.quantization = index::parse_quantization(h.at("quantization").get<std::string>(), "q");
    c.hnsw.validate();
    if (j.contains("lsh")) {
      const json& l = j.at("lsh");
      c.lsh.bits = l.at("bits").get<size_t>();
      c.lsh.tables = l.at("tables").get<size_t>();
      c.lsh.key_bits = l.at("key_bits").get<size_t>();
      c.lsh.probes = l.at("probes").get<size_t>();
      c.lsh.candidates = l.at("candidates").get<size_t>();
      c.lsh.seed = l.at("seed").get<uint64_t>();
      c.lsh.validate();
    }
    if (j.contains("graph")) {
      c.alpha = j.at("graph").at("alpha").get<double>();
      WP_THROW_IF_NOT(c.alpha >= 1 && c.alpha <= 10, "graph.alpha out of range");
    }
    return c;
  } catch (const std::exception& e) {
    throw InternalError(std::string("stored collection config is damaged: ") + e.what());
  }
}

json CollectionConfig::to_qdrant() const {
  return {{"params",
           {{"vectors", {{"size", dim}, {"distance", distance_name(metric)}}},
            {"shard_number", 1},
            {"replication_factor", 1},
            {"write_consistency_factor", 1},
            {"on_disk_payload", false}}},
          {"hnsw_config",
           {{"m", hnsw.M},
            {"ef_construct", hnsw.ef_construction},
            {"full_scan_threshold", 10000},
            {"max_indexing_threads", 0},
            {"on_disk", false}}},
          {"optimizer_config",
           {{"deleted_threshold", hnsw.consolidate_fraction},
            {"vacuum_min_vector_number", 1000},
            {"default_segment_number", 1},
            {"max_segment_size", nullptr},
            {"memmap_threshold", nullptr},
            {"indexing_threshold", 0},
            {"flush_interval_sec", 0},
            {"max_optimization_threads", nullptr}}},
          {"wal_config", {{"wal_capacity_mb", 0}, {"wal_segments_ahead", 0}}},
          {"quantization_config", nullptr}};
}

}  // namespace wp::engine
