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

}  // namespace wp::http
