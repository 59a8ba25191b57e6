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
  const engine::IndexRequest r = engine::IndexRequest::parse(
      parse_body(*c.body), col->config().hnsw, col->config().lsh, col->config().alpha);
  if (r.type == "auto") {
    col->auto_index(r.tune);
  } else {
    col->rebuild_index(r.type, r.hnsw, r.learned, r.lsh, r.alpha);
  }
  return get_index(c);
}

json Api::get_index(const Call& c) {
  const engine::IndexStatus s = engine_.collection(c.path.at("name"))->index_status();
  json j{{"type", s.type}, {"state", s.state}, {"progress", s.progress}, {"params", s.params}};
  if (!s.error.empty()) j["error"] = s.error;
  if (!s.tune.is_null()) j["tune"] = s.tune;
  return j;
}

}  // namespace wp::http
