// Handlers of /collections and /collections/{name}.
#include "http/api.h"
#include "http/request_parsing.h"
#include "index/error.h"

namespace wp::http {

using nlohmann::json;

json Api::list_collections(const Call&) {
  json list = json::array();
  for (const std::string& n : engine_.names()) list.push_back({{"name", n}});
  return json{{"collections", list}};
}

json Api::create_collection(const Call& c) {
  const json body = parse_body(*c.body);
  engine_.create_collection(c.path.at("name"), engine::CollectionConfig::from_qdrant(body));
  return true;
}

json Api::get_collection(const Call& c) {
  return engine_.collection(c.path.at("name"))->info();
}

json Api::delete_collection(const Call& c) {
  return engine_.delete_collection(c.path.at("name"));
}

json Api::collection_exists(const Call& c) {
  return json{{"exists", engine_.exists(c.path.at("name"))}};
}

json Api::put_index(const Call& c) {
  auto col = engine_.collection(c.path.at("name"));
  const json body = parse_body(*c.body);
  WP_THROW_IF_NOT(body.contains("type") && body["type"].is_string(),
                  "type: expected \"hnsw\", \"flat\", \"lsh\" or \"rl\"");
  const std::string type = body["type"];
  WP_THROW_IF_NOT(type == "hnsw" || type == "flat" || type == "lsh" || type == "rl", "type: \"",
                  type, "\" is not available; expected \"hnsw\", \"flat\", \"lsh\" or \"rl\"");
  // rl: the pruning agent's job (train-pruner) on the collection's own points.
  json learned = json::object();
  for (const auto& [key, value] : body.items()) {
    const bool common = key == "type" || key == "m" || key == "ef_construct" || key == "ef" ||
                        key == "quantization";
    const bool rl = key == "steps" || key == "max_minutes" || key == "target_recall";
    const bool lsh = key == "bits" || key == "tables" || key == "key_bits" || key == "probes" ||
                     key == "candidates";
    WP_THROW_IF_NOT(common || (rl && type == "rl") || (lsh && type == "lsh"), key,
                    type == "rl"    ? ": unknown index parameter (expected m, ef_construct, ef, "
                                      "quantization, steps, max_minutes, target_recall)"
                    : type == "lsh" ? ": unknown index parameter (expected bits, tables, key_bits, "
                                      "probes, candidates)"
                                    : ": unknown index parameter (expected m, ef_construct, ef, "
                                      "quantization)");
  }
  index::LshParams lsh = col->config().lsh;
  if (type == "lsh") {
    lsh.bits = get_count(body, "bits", "", lsh.bits, 1, 4096);
    lsh.tables = get_count(body, "tables", "", lsh.tables, 0, 64);
    lsh.key_bits = get_count(body, "key_bits", "", lsh.key_bits, 0, 32);
    lsh.probes = get_count(body, "probes", "", lsh.probes, 1, 4096);
    lsh.candidates = get_count(body, "candidates", "", lsh.candidates, 1, 100000);
  }
  if (type == "rl") {
    learned["steps"] = get_count(body, "steps", "", 200, 1, 100000);
    if (body.contains("max_minutes")) {
      WP_THROW_IF_NOT(body["max_minutes"].is_number() && body["max_minutes"].get<double>() > 0 &&
                          body["max_minutes"].get<double>() <= 24 * 60,
                      "max_minutes: expected a number in (0, 1440]");
      learned["max_minutes"] = body["max_minutes"].get<double>();
    }
    if (body.contains("target_recall")) {
      WP_THROW_IF_NOT(body["target_recall"].is_number() &&
                          body["target_recall"].get<double>() > 0 &&
                          body["target_recall"].get<double>() <= 1,
                      "target_recall: expected a number in (0, 1]");
      learned["target_recall"] = body["target_recall"].get<double>();
    }
  }
  index::HnswParams p = col->config().hnsw;
  p.M = get_count(body, "m", "", p.M, 2, 1024);
  p.ef_construction = get_count(body, "ef_construct", "", p.ef_construction, 4, 100000);
  p.ef_search = get_count(body, "ef", "", p.ef_search, 1, 100000);
  if (body.contains("quantization")) {
    WP_THROW_IF_NOT(body["quantization"].is_string(), "quantization: expected \"none\" or \"sq8\"");
    p.quantization = index::parse_quantization(body["quantization"], "quantization");
  }
  col->rebuild_index(type, p, learned, lsh);
  return get_index(c);
}

json Api::get_index(const Call& c) {
  const engine::IndexStatus s = engine_.collection(c.path.at("name"))->index_status();
  json j{{"type", s.type}, {"state", s.state}, {"progress", s.progress}, {"params", s.params}};
  if (!s.error.empty()) j["error"] = s.error;
  return j;
}

}  // namespace wp::http
