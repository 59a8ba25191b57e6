#include "engine/collection_config.h"

#include <cctype>
#include <cmath>

#include "engine/index_request.h"
#include "engine/json_value.h"
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
                  show_json(j));
  const std::string s = j.get<std::string>();
  if (s == "Cosine") return index::Metric::kCosine;
  if (s == "Euclid") return index::Metric::kL2;
  if (s == "Dot") return index::Metric::kInnerProduct;
  throw UserError(field + ": distance " + show_json(j) +
                  " is not supported; expected one of \"Cosine\", \"Euclid\", \"Dot\"");
}

void validate_collection_name(const std::string& name) {
  bool ok = !name.empty() && name.size() <= kMaxCollectionName && name.front() != '.';
  for (char c : name) {
    ok = ok && (std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-' || c == '.');
  }
  WP_THROW_IF_NOT(ok, "collection name ", show_json(name), " is invalid: use 1..",
                  kMaxCollectionName,
                  " letters, digits, '_', '-' or '.', not starting with '.' (reserved for the "
                  "server's own folders)");
}

// The stored form predates the index registry and is kept as it was, so that data folders of
// earlier versions open: {"size", "distance", "index_type", "hnsw": {m, ef_construct, ef,
// quantization}, "lsh": {...} (lsh), "graph": {"alpha"} (graph)}.
json CollectionConfig::to_stored() const {
  const index::IndexSpec& s = index;
  json j{{"size", dim},
         {"distance", distance_name(s.metric)},
         {"index_type", index::index_kind_name(s.kind)},
         {"hnsw",
          {{"m", s.hnsw.M},
           {"ef_construct", s.hnsw.ef_construction},
           {"ef", s.hnsw.ef_search},
           {"quantization", index::quantization_name(s.hnsw.quantization)}}}};
  if (s.kind == index::IndexKind::kLsh) {
    j["lsh"] = {
        {"bits", s.lsh.bits},     {"tables", s.lsh.tables},         {"key_bits", s.lsh.key_bits},
        {"probes", s.lsh.probes}, {"candidates", s.lsh.candidates}, {"seed", s.lsh.seed}};
  }
  if (s.kind == index::IndexKind::kGraph) j["graph"] = {{"alpha", float_json(s.graph.alpha)}};
  if (!payload_schema.empty()) {
    json p = json::object();
    for (const auto& [key, schema] : payload_schema) p[key] = payload_schema_name(schema);
    j["payload_schema"] = p;
  }
  return j;
}

namespace {

/// An unsigned integer of the stored form (a damaged one throws; a float or a negative number
/// would otherwise convert with undefined behaviour: found by fuzz_collection_config).
uint64_t stored_count(const json& j, const char* key) {
  const json& v = j.at(key);
  if (!v.is_number_unsigned())
    throw InternalError(std::string(key) + " is not an unsigned integer");
  return v.get<uint64_t>();
}

/// A finite float of the stored form.
float stored_float(const json& j, const char* key) {
  const json& v = j.at(key);
  if (!v.is_number() || !(std::abs(v.get<double>()) <= 3.4e38)) {
    throw InternalError(std::string(key) + " is not a finite 32-bit float");
  }
  return v.get<float>();
}

}  // namespace

CollectionConfig CollectionConfig::from_stored(const json& j) {
  try {
    CollectionConfig c;
    index::IndexSpec& s = c.index;
    c.dim = stored_count(j, "size");
    s.metric = parse_distance(j.at("distance"), "distance");
    s.kind = index::parse_index_kind(j.at("index_type").get<std::string>(), "index_type");
    const json& h = j.at("hnsw");
    s.hnsw.M = stored_count(h, "m");
    s.hnsw.ef_construction = stored_count(h, "ef_construct");
    s.hnsw.ef_search = stored_count(h, "ef");
    s.hnsw.quantization =
        index::parse_quantization(h.at("quantization").get<std::string>(), "quantization");
    if (j.contains("lsh")) {
      const json& l = j.at("lsh");
      s.lsh.bits = stored_count(l, "bits");
      s.lsh.tables = stored_count(l, "tables");
      s.lsh.key_bits = stored_count(l, "key_bits");
      s.lsh.probes = stored_count(l, "probes");
      s.lsh.candidates = stored_count(l, "candidates");
      s.lsh.seed = stored_count(l, "seed");
    }
    if (j.contains("graph")) s.graph.alpha = stored_float(j.at("graph"), "alpha");
    if (j.contains("payload_schema")) {
      for (const auto& [key, name] : j.at("payload_schema").items()) {
        c.payload_schema[key] = parse_payload_schema(name, "payload_schema");
      }
    }
    s.validate();
    return c;
  } catch (const std::exception& e) {
    throw InternalError(std::string("stored collection config is damaged: ") + e.what());
  }
}

}  // namespace wp::engine
