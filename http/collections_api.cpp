// Handlers of /collections and /collections/{name}.
#include "engine/index_request.h"
#include "engine/json_value.h"
#include "http/api.h"
#include "http/qdrant_wire.h"
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
  engine_.create_collection(c.path.at("name"), collection_config_from_qdrant(body));
  return true;
}

json Api::get_collection(const Call& c) {
  return collection_info_json(engine_.collection(c.path.at("name"))->info());
}

json Api::delete_collection(const Call& c) {
  return engine_.delete_collection(c.path.at("name"));
}

json Api::collection_exists(const Call& c) {
  return json{{"exists", engine_.exists(c.path.at("name"))}};
}

json Api::update_aliases(const Call& c) {
  engine_.update_aliases(read_alias_actions(parse_body(*c.body)));
  return true;
}

json Api::list_aliases(const Call&) {
  return alias_list_json(engine_.aliases());
}

json Api::collection_aliases(const Call& c) {
  const std::string& name = c.path.at("name");
  return alias_list_json(engine_.aliases(&name));
}

json Api::update_collection(const Call& c) {
  auto col = engine_.collection(c.path.at("name"));
  const json body = parse_body(*c.body);
  // Qdrant answers at once and re-indexes in the background; so does this (409 while a build
  // runs). The served kinds are kept: graph kinds are built with the HNSW parameters too.
  const QdrantCollectionUpdate update = qdrant_collection_update(body, col->config());
  col->rebuild_indexes(update.rebuild);  // first: refused (409) while a build runs
  col->set_max_indexing_threads(update.indexing_threads);
  col->set_sparse_modifiers(update.sparse_modifiers);
  return true;
}

json Api::create_payload_index(const Call& c) {
  auto col = engine_.collection(c.path.at("name"));
  const bool wait = wait_flag(c);
  const PayloadIndexBody index = read_payload_index_body(parse_body(*c.body));
  col->create_payload_index(index.key, index.schema, index.text);
  return update_result(wait);
}

json Api::delete_payload_index(const Call& c) {
  auto col = engine_.collection(c.path.at("name"));
  const bool wait = wait_flag(c);
  col->delete_payload_index(c.path.at("field_name"));
  return update_result(wait);
}

namespace {
/// The vector space a vector_index request is about: `?using=NAME` ("" by default: the unnamed
/// vector, or the first named one when the collection has no unnamed vector; "" again when it has
/// sparse vectors only, which the request then names as missing).
std::string vector_index_space(const Call& c, const engine::Collection& col) {
  if (auto it = c.query.find("using"); it != c.query.end()) return it->second;
  const auto& shapes = col.vector_shapes();
  return shapes.empty() ? std::string() : shapes.front().name;
}
}  // namespace

json Api::put_index(const Call& c) {
  auto col = engine_.collection(c.path.at("name"));
  const std::string vector = vector_index_space(c, *col);
  const engine::IndexRequest r =
      engine::IndexRequest::parse(parse_body(*c.body), col->config().vector(vector, "using").index);
  if (r.tune) {
    col->auto_index(r.auto_tune, vector);
  } else {
    col->rebuild_index(r.spec, r.learned, vector);
  }
  return get_index(c);
}

json Api::get_index(const Call& c) {
  auto col = engine_.collection(c.path.at("name"));
  return index_status_json(col->index_status(vector_index_space(c, *col)));
}

}  // namespace wp::http
