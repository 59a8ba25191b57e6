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
  const json body = parse_body(*c.body);
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
  engine_.update_aliases(actions);
  return true;
}

namespace {
json alias_list(const std::map<std::string, std::string>& aliases) {
  json list = json::array();
  for (const auto& [alias, target] : aliases) {
    list.push_back({{"alias_name", alias}, {"collection_name", target}});
  }
  return json{{"aliases", list}};
}
}  // namespace

json Api::list_aliases(const Call&) {
  return alias_list(engine_.aliases());
}

json Api::collection_aliases(const Call& c) {
  const std::string& name = c.path.at("name");
  return alias_list(engine_.aliases(&name));
}

json Api::update_collection(const Call& c) {
  auto col = engine_.collection(c.path.at("name"));
  const json body = parse_body(*c.body);
  WP_THROW_IF_NOT(body.is_object(), "body: expected a JSON object");
  for (const auto& [key, value] : body.items()) {
    WP_THROW_IF_NOT(key == "hnsw_config" || key == "quantization_config" ||
                        key == "optimizers_config" || key == "vectors",
                    engine::show_text(key),
                    ": not supported by waypoint's collection update (expected hnsw_config, "
                    "quantization_config, optimizers_config, vectors)");
  }
  // Qdrant answers at once and re-indexes in the background; so does this (409 while a build
  // runs). The served kinds are kept: graph kinds are built with the HNSW parameters too.
  col->rebuild_indexes(qdrant_index_changes(body, col->config()));
  return true;
}

json Api::create_payload_index(const Call& c) {
  auto col = engine_.collection(c.path.at("name"));
  const bool wait = wait_flag(c);
  const json body = parse_body(*c.body);
  WP_THROW_IF_NOT(body.is_object(), "body: expected a JSON object");
  engine::check_fields(body, "", {"field_name", "field_schema"});
  WP_THROW_IF_NOT(body.contains("field_name") && body["field_name"].is_string(),
                  "field_name: expected a key path string such as \"city\" or \"a.b\"");
  const std::string key = body["field_name"];
  engine::parse_json_path(body["field_name"], "field_name");
  WP_THROW_IF_NOT(body.contains("field_schema") && !body["field_schema"].is_null(),
                  "field_schema: missing (expected one of keyword, integer, float, bool, uuid)");
  col->create_payload_index(key,
                            engine::parse_payload_schema(body["field_schema"], "field_schema"));
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
/// vector, or the first named one when the collection has no unnamed vector).
std::string vector_index_space(const Call& c, const engine::Collection& col) {
  if (auto it = c.query.find("using"); it != c.query.end()) return it->second;
  return col.vector_shapes().front().name;
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
