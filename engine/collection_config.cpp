#include "engine/collection_config.h"

#include <cctype>
#include <cmath>

#include "engine/index_request.h"
#include "engine/json_fields.h"
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

CollectionConfig CollectionConfig::single(size_t dim, const index::IndexSpec& index) {
  CollectionConfig c;
  c.vectors[""] = VectorConfig{dim, index};
  return c;
}

std::string no_vector_named(const std::string& name) {
  return "Not existing vector name error: " + name;
}

const VectorConfig& CollectionConfig::vector(const std::string& name,
                                             const std::string& field) const {
  auto it = vectors.find(name);
  if (it == vectors.end()) {
    std::string known;
    for (const auto& [n, v] : vectors) known += (known.empty() ? "" : ", ") + show_json(json(n));
    for (const auto& [n, v] : sparse_vectors) {
      known += (known.empty() ? "" : ", ") + show_json(json(n)) + " (sparse)";
    }
    for (const auto& [n, v] : multivectors) {
      known += (known.empty() ? "" : ", ") + show_json(json(n)) + " (multivector)";
    }
    throw UserError(field + ": " + no_vector_named(name) + " (the collection's vectors: " + known +
                    ")");
  }
  return it->second;
}

void validate_vector_name(const std::string& name, const std::string& field) {
  bool ok = !name.empty() && name.size() <= kMaxVectorName;
  for (const char c : name) ok = ok && static_cast<unsigned char>(c) >= 0x20 && c != 0x7f;
  WP_THROW_IF_NOT(ok, field, ": vector name ", show_json(json(name)), " is invalid: use 1..",
                  kMaxVectorName, " bytes without control characters");
}

namespace {

// The stored form of one space predates the index registry and is kept as it was, so that data
// folders of earlier versions open: {"size", "distance", "index_type", "hnsw": {m, ef_construct,
// ef, quantization[, max_indexing_threads]}, "lsh": {...} (lsh), "graph": {"alpha"} (graph)}
// (max_indexing_threads only when set: a folder without it reads as 0). A collection of named
// vectors stores {"vectors": {name: that form}}; an unnamed one, that form itself.
json space_to_stored(const VectorConfig& v) {
  const index::IndexSpec& s = v.index;
  json j{{"size", v.dim},
         {"distance", distance_name(s.metric)},
         {"index_type", index::index_kind_name(s.kind)},
         {"hnsw",
          {{"m", s.hnsw.M},
           {"ef_construct", s.hnsw.ef_construction},
           {"ef", s.hnsw.ef_search},
           {"quantization", index::quantization_name(s.hnsw.quantization)}}}};
  if (v.max_indexing_threads) j["hnsw"]["max_indexing_threads"] = v.max_indexing_threads;
  if (s.kind == index::IndexKind::kLsh) {
    j["lsh"] = {
        {"bits", s.lsh.bits},     {"tables", s.lsh.tables},         {"key_bits", s.lsh.key_bits},
        {"probes", s.lsh.probes}, {"candidates", s.lsh.candidates}, {"seed", s.lsh.seed}};
  }
  if (s.kind == index::IndexKind::kGraph) j["graph"] = {{"alpha", float_json(s.graph.alpha)}};
  return j;
}

}  // namespace

json CollectionConfig::to_stored() const {
  json j;
  if (named() || vectors.empty()) {
    j["vectors"] = json::object();
    for (const auto& [name, v] : vectors) j["vectors"][name] = space_to_stored(v);
  } else {
    j = space_to_stored(vectors.at(""));
  }
  if (!multivectors.empty()) {
    json& multi = j["multivectors"] = json::object();
    for (const auto& [name, v] : multivectors) {
      multi[name] = {{"size", v.dim}, {"distance", distance_name(v.metric)}};
    }
  }
  if (!sparse_vectors.empty()) {
    json& sparse = j["sparse_vectors"] = json::object();
    for (const auto& [name, v] : sparse_vectors) {
      sparse[name] = {{"modifier", sparse_modifier_name(v.modifier)}};
    }
  }
  if (!payload_schema.empty()) {
    json p = json::object();
    for (const auto& [key, schema] : payload_schema) {
      const auto params = text_params.find(key);
      p[key] =
          payload_schema_json(schema, params == text_params.end() ? TextParams{} : params->second);
    }
    j["payload_schema"] = p;
  }
  return j;
}

namespace {

/// A finite float of the stored form.
float stored_float(const json& j, const char* key) {
  const json& v = j.at(key);
  if (!v.is_number() || !(std::abs(v.get<double>()) <= 3.4e38)) {
    throw InternalError(std::string(key) + " is not a finite 32-bit float");
  }
  return v.get<float>();
}

}  // namespace

namespace {

VectorConfig space_from_stored(const json& j) {
  VectorConfig v;
  index::IndexSpec& s = v.index;
  v.dim = stored_count(j, "size");
  s.metric = parse_distance(j.at("distance"), "distance");
  s.kind = index::parse_index_kind(j.at("index_type").get<std::string>(), "index_type");
  const json& h = j.at("hnsw");
  s.hnsw.M = stored_count(h, "m");
  s.hnsw.ef_construction = stored_count(h, "ef_construct");
  s.hnsw.ef_search = stored_count(h, "ef");
  s.hnsw.quantization =
      index::parse_quantization(h.at("quantization").get<std::string>(), "quantization");
  if (h.contains("max_indexing_threads")) {
    v.max_indexing_threads = stored_count(h, "max_indexing_threads", 65536);
  }
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
  WP_THROW_INTERNAL_IF_NOT(v.dim >= 1 && v.dim <= 65536, "size out of range");
  s.validate();
  return v;
}

}  // namespace

CollectionConfig CollectionConfig::from_stored(const json& j) {
  try {
    CollectionConfig c;
    if (j.contains("vectors")) {
      const json& named = j.at("vectors");
      WP_THROW_INTERNAL_IF_NOT(
          named.is_object() &&
              (!named.empty() || j.contains("sparse_vectors") || j.contains("multivectors")),
          "vectors is not an object");
      for (const auto& [name, v] : named.items()) {
        validate_vector_name(name, "vectors");
        c.vectors[name] = space_from_stored(v);
      }
    } else {
      c.vectors[""] = space_from_stored(j);
    }
    if (j.contains("sparse_vectors")) {
      const json& sparse = j.at("sparse_vectors");
      WP_THROW_INTERNAL_IF_NOT(sparse.is_object() && !sparse.empty(),
                               "sparse_vectors is not an object");
      for (const auto& [name, v] : sparse.items()) {
        validate_vector_name(name, "sparse_vectors");
        WP_THROW_INTERNAL_IF_NOT(!c.vectors.count(name), "sparse vector ", name,
                                 " is also a dense one");
        const std::string modifier = v.at("modifier").get<std::string>();
        WP_THROW_INTERNAL_IF_NOT(modifier == "none" || modifier == "idf", "sparse modifier ",
                                 modifier);
        c.sparse_vectors[name].modifier =
            modifier == "idf" ? SparseModifier::kIdf : SparseModifier::kNone;
      }
    }
    if (j.contains("multivectors")) {
      const json& multi = j.at("multivectors");
      WP_THROW_INTERNAL_IF_NOT(multi.is_object() && !multi.empty(),
                               "multivectors is not an object");
      for (const auto& [name, v] : multi.items()) {
        // "" alone is the unnamed multivector of a collection without dense vectors.
        if (!(name.empty() && multi.size() == 1 && c.vectors.empty())) {
          validate_vector_name(name, "multivectors");
        }
        WP_THROW_INTERNAL_IF_NOT(!c.vectors.count(name) && !c.sparse_vectors.count(name),
                                 "multivector ", name, " is also another vector");
        MultiVectorConfig& m = c.multivectors[name];
        m.dim = stored_count(v, "size");
        WP_THROW_INTERNAL_IF_NOT(m.dim >= 1 && m.dim <= 65536, "size out of range");
        m.metric = parse_distance(v.at("distance"), "distance");
      }
    }
    if (j.contains("payload_schema")) {
      for (const auto& [key, name] : j.at("payload_schema").items()) {
        TextParams params;
        c.payload_schema[key] = parse_payload_schema(name, "payload_schema", &params);
        if (!params.is_default()) c.text_params[key] = params;
      }
    }
    return c;
  } catch (const std::exception& e) {
    throw InternalError(std::string("stored collection config is damaged: ") + e.what());
  }
}

}  // namespace wp::engine
