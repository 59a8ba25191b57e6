// Writes under /collections/{name}/points: upsert, delete, vectors, payload edits and the batch
// of them, each read into an engine::WriteOp by the one parser its route and the batch share.
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string_view>

#include "engine/json_path.h"
#include "engine/json_value.h"
#include "engine/payload_edit.h"
#include "http/api.h"
#include "http/plain_upsert.h"
#include "http/request_parsing.h"
#include "index/error.h"

namespace wp::http {

using nlohmann::json;

namespace {
/// How messages name the body an operation was read from: "body" for a route's own, else its
/// place in the batch ("operations[2].upsert").
std::string body_name(const std::string& where) {
  return where.empty() ? "body" : where.substr(0, where.size() - 1);
}

}  // namespace

std::vector<engine::PointWrite> read_upsert_points(const json& body, const std::string& where) {
  std::vector<engine::PointWrite> out;
  WP_THROW_IF_NOT(body.is_object(), body_name(where), ": expected an object");
  if (body.contains("points")) {
    const json& pts = body["points"];
    WP_THROW_IF_NOT(pts.is_array(), where, "points: expected an array, got ", pts.type_name());
    for (size_t i = 0; i < pts.size(); ++i) {
      const std::string at = where + "points[" + std::to_string(i) + "]";
      const json& p = pts[i];
      WP_THROW_IF_NOT(p.is_object(), at, ": expected an object");
      WP_THROW_IF_NOT(p.contains("id"), at, ".id: missing");
      WP_THROW_IF_NOT(p.contains("vector"), at, ".vector: missing");
      engine::PointWrite w;
      w.id = engine::PointId::from_json(p["id"], at + ".id");
      w.vectors = get_point_vectors(p["vector"], at + ".vector", &w.sparse, &w.multi);
      if (p.contains("payload")) w.payload = p["payload"];
      WP_THROW_IF_NOT(w.payload.is_object() || w.payload.is_null(), at,
                      ".payload: expected an object, got ", w.payload.type_name());
      out.push_back(std::move(w));
    }
    return out;
  }
  WP_THROW_IF_NOT(body.contains("batch"), body_name(where), ": expected \"points\" or \"batch\"");
  const json& b = body["batch"];
  WP_THROW_IF_NOT(b.is_object(), where, "batch: expected an object");
  WP_THROW_IF_NOT(b.contains("ids") && b.contains("vectors"), where,
                  "batch: needs \"ids\" and \"vectors\"");
  const std::vector<engine::PointId> ids = get_ids(b["ids"], where + "batch.ids");
  const json& vs = b["vectors"];
  // An array of vectors (the unnamed one per id), or by name an array of vectors per id each.
  const bool named = vs.is_object();
  if (named) {
    for (const auto& [name, list] : vs.items()) {
      WP_THROW_IF_NOT(list.is_array() && list.size() == ids.size(), where, "batch.vectors.", name,
                      ": expected an array of ", ids.size(), " vectors (one per id)");
    }
  } else {
    WP_THROW_IF_NOT(vs.is_array() && vs.size() == ids.size(), where,
                    "batch.vectors: expected an array of ", ids.size(),
                    " vectors (one per id), or named vectors {\"name\": [...]}");
  }
  const bool has_payloads = b.contains("payloads") && !b["payloads"].is_null();
  if (has_payloads) {
    WP_THROW_IF_NOT(b["payloads"].is_array() && b["payloads"].size() == ids.size(), where,
                    "batch.payloads: expected an array of ", ids.size(), " objects (one per id)");
  }
  for (size_t i = 0; i < ids.size(); ++i) {
    engine::PointWrite w;
    w.id = ids[i];
    if (named) {
      for (const auto& [name, list] : vs.items()) {
        const std::string at = where + "batch.vectors." + name + "[" + std::to_string(i) + "]";
        if (list[i].is_object()) {
          w.sparse[name] = get_sparse_vector(list[i], at);
        } else if (is_multi_json(list[i])) {
          w.multi[name] = get_multi_vector(list[i], at);
        } else {
          w.vectors[name] = get_vector(list[i], at);
        }
      }
    } else {
      const std::string at = where + "batch.vectors[" + std::to_string(i) + "]";
      if (is_multi_json(vs[i])) {
        w.multi[""] = get_multi_vector(vs[i], at);
      } else {
        w.vectors[""] = get_vector(vs[i], at);
      }
    }
    if (has_payloads) {
      w.payload = b["payloads"][i];
      WP_THROW_IF_NOT(w.payload.is_object() || w.payload.is_null(), where, "batch.payloads[", i,
                      "]: expected an object");
    }
    out.push_back(std::move(w));
  }
  return out;
}

namespace {

/// A write operation read from a request body, with the filter it points at.
struct ParsedWrite {
  engine::WriteOp op;
  std::unique_ptr<engine::Filter> filter;
};

using WriteReader = ParsedWrite (*)(const json& body, const std::string& where);

/// Qdrant's points selector of deletes and payload edits: "points" (ids) or "filter".
void read_selection(const json& body, const std::string& where, ParsedWrite& w) {
  const std::string self = body_name(where);
  WP_THROW_IF_NOT(body.is_object(), self, ": expected an object");
  const bool by_ids = body.contains("points") && !body["points"].is_null();
  const bool by_filter = body.contains("filter") && !body["filter"].is_null();
  WP_THROW_IF_NOT(by_ids || by_filter, self, ": expected \"points\" (ids) or \"filter\"");
  WP_THROW_IF_NOT(!(by_ids && by_filter), self,
                  ": expected \"points\" (ids) or \"filter\", not both");
  if (by_ids) {
    w.op.ids = get_ids(body["points"], where + "points");
  } else {
    w.filter =
        std::make_unique<engine::Filter>(engine::Filter::parse(body["filter"], where + "filter"));
    w.op.filter = w.filter.get();
  }
}

ParsedWrite read_upsert(const json& body, const std::string& where) {
  ParsedWrite w;
  w.op.where = where;
  w.op.points = read_upsert_points(body, where);
  return w;
}

ParsedWrite read_update_vectors(const json& body, const std::string& where) {
  ParsedWrite w;
  w.op.kind = engine::WriteOp::Kind::kUpdateVectors;
  w.op.where = where;
  WP_THROW_IF_NOT(body.is_object() && body.contains("points") && body["points"].is_array(), where,
                  "points: expected an array of {\"id\", \"vector\"}");
  const json& list = body["points"];
  for (size_t i = 0; i < list.size(); ++i) {
    const std::string at = where + "points[" + std::to_string(i) + "]";
    const json& p = list[i];
    WP_THROW_IF_NOT(p.is_object() && p.contains("id") && p.contains("vector"), at,
                    ": expected {\"id\", \"vector\"}");
    engine::PointWrite pw;
    pw.id = engine::PointId::from_json(p["id"], at + ".id");
    // The unnamed vector, or vectors by name ({"": [...]} is the unnamed one too).
    pw.vectors = get_point_vectors(p["vector"], at + ".vector", &pw.sparse, &pw.multi);
    w.op.points.push_back(std::move(pw));
  }
  return w;
}

ParsedWrite read_delete_vectors(const json& body, const std::string& where) {
  ParsedWrite w;
  w.op.kind = engine::WriteOp::Kind::kDeleteVectors;
  w.op.where = where;
  read_selection(body, where, w);
  WP_THROW_IF_NOT(body.contains("vector"), where, "vector: missing (the names of the vectors)");
  w.op.vector_names = engine::get_string_list(body["vector"], where + "vector");
  return w;
}

ParsedWrite read_delete(const json& body, const std::string& where) {
  ParsedWrite w;
  w.op.kind = engine::WriteOp::Kind::kDelete;
  w.op.where = where;
  read_selection(body, where, w);
  return w;
}

/// A payload edit's selection; the reader sets its `edit` from the rest of the body.
ParsedWrite read_edit_selection(const json& body, const std::string& where) {
  ParsedWrite w;
  w.op.kind = engine::WriteOp::Kind::kEditPayload;
  w.op.where = where;
  read_selection(body, where, w);
  return w;
}

/// The "payload" object of a set or overwrite body.
json payload_values(const json& body, const std::string& where) {
  WP_THROW_IF_NOT(body.contains("payload"), where, "payload: missing");
  const json& values = body["payload"];
  WP_THROW_IF_NOT(values.is_object(), where, "payload: expected an object, got ",
                  engine::show_json(values));
  return values;
}

ParsedWrite read_set_payload(const json& body, const std::string& where) {
  ParsedWrite w = read_edit_selection(body, where);
  json values = payload_values(body, where);
  std::optional<engine::JsonPath> key;
  if (body.contains("key") && !body["key"].is_null())
    key = engine::parse_json_path(body["key"], where + "key");
  w.op.edit = [values = std::move(values), key = std::move(key)](json& p) {
    engine::set_payload_values(p, values, key ? &*key : nullptr);
  };
  return w;
}

ParsedWrite read_overwrite_payload(const json& body, const std::string& where) {
  ParsedWrite w = read_edit_selection(body, where);
  w.op.edit = [values = payload_values(body, where)](json& p) { p = values; };
  return w;
}

ParsedWrite read_delete_payload(const json& body, const std::string& where) {
  ParsedWrite w = read_edit_selection(body, where);
  WP_THROW_IF_NOT(body.contains("keys"), where, "keys: missing");
  const json& keys = body["keys"];
  WP_THROW_IF_NOT(keys.is_array(), where, "keys: expected an array of key paths, got ",
                  engine::show_json(keys));
  std::vector<engine::JsonPath> paths;
  for (size_t i = 0; i < keys.size(); ++i) {
    paths.push_back(engine::parse_json_path(keys[i], where + "keys[" + std::to_string(i) + "]"));
  }
  w.op.edit = [paths = std::move(paths)](json& p) { engine::delete_payload_keys(p, paths); };
  return w;
}

ParsedWrite read_clear_payload(const json& body, const std::string& where) {
  ParsedWrite w = read_edit_selection(body, where);
  w.op.edit = [](json& p) { p = json::object(); };
  return w;
}

/// The write operations by their names in POST points/batch, each read as its own route's body
/// (the single routes read theirs through the same table).
const std::map<std::string, WriteReader>& batch_readers() {
  static const std::map<std::string, WriteReader> readers{
      {"upsert", read_upsert},
      {"delete", read_delete},
      {"update_vectors", read_update_vectors},
      {"delete_vectors", read_delete_vectors},
      {"set_payload", read_set_payload},
      {"overwrite_payload", read_overwrite_payload},
      {"delete_payload", read_delete_payload},
      {"clear_payload", read_clear_payload},
  };
  return readers;
}
}  // namespace

json Api::write_route(const Call& c, const char* operation) {
  auto col = engine_.collection(c.path.at("name"));
  const bool wait = wait_flag(c);
  ParsedWrite w;
  // An upsert of plain points is read without building nlohmann's DOM (http/plain_upsert.h).
  std::optional<std::vector<engine::PointWrite>> plain;
  if (options_.plain_answers && std::string_view(operation) == "upsert") {
    plain = read_plain_upsert(*c.body, options_.max_body_bytes);
  }
  if (plain) {
    w.op.points = std::move(*plain);
  } else {
    w = batch_readers().at(operation)(parse_body(*c.body), "");
  }
  col->apply_one(std::move(w.op), wait);  // w keeps the filter alive meanwhile
  return update_result(wait);
}

json Api::upsert_points(const Call& c) {
  return write_route(c, "upsert");
}

json Api::update_vectors(const Call& c) {
  return write_route(c, "update_vectors");
}

json Api::delete_vectors(const Call& c) {
  return write_route(c, "delete_vectors");
}

json Api::delete_points(const Call& c) {
  return write_route(c, "delete");
}

json Api::set_payload(const Call& c) {
  return write_route(c, "set_payload");
}

json Api::overwrite_payload(const Call& c) {
  return write_route(c, "overwrite_payload");
}

json Api::delete_payload(const Call& c) {
  return write_route(c, "delete_payload");
}

json Api::clear_payload(const Call& c) {
  return write_route(c, "clear_payload");
}

namespace {

/// The operations of a points/batch body, each read (and checked) before any is applied.
std::vector<ParsedWrite> read_operations(const json& body) {
  WP_THROW_IF_NOT(body.is_object() && body.contains("operations") && body["operations"].is_array(),
                  "operations: expected an array of {\"upsert\" | \"delete\" | ...: body}");
  const json& list = body["operations"];
  WP_THROW_IF_NOT(list.size() <= kMaxBatchOperations, "operations: at most ", kMaxBatchOperations,
                  " per request, got ", list.size());
  // Every operation is read before any is applied; the collection applies them as one write.
  std::vector<ParsedWrite> parsed;
  for (size_t i = 0; i < list.size(); ++i) {
    const std::string at = "operations[" + std::to_string(i) + "]";
    const json& op = list[i];
    WP_THROW_IF_NOT(op.is_object() && op.size() == 1, at,
                    ": expected one operation, such as {\"upsert\": {\"points\": [...]}}");
    const std::string kind = op.begin().key();
    auto reader = batch_readers().find(kind);
    if (reader == batch_readers().end()) {
      std::string names;
      for (const auto& [name, r] : batch_readers()) names += (names.empty() ? "" : ", ") + name;
      throw UserError(at + "." + kind + ": not an operation here (expected one of " + names + ")");
    }
    parsed.push_back(reader->second(op.begin().value(), at + "." + kind + "."));
  }
  return parsed;
}

std::vector<engine::WriteOp> ops_of(std::vector<ParsedWrite>& parsed) {
  std::vector<engine::WriteOp> ops;
  for (ParsedWrite& w : parsed) ops.push_back(std::move(w.op));
  return ops;
}

}  // namespace

json Api::batch_update(const Call& c) {
  auto col = engine_.collection(c.path.at("name"));
  const bool wait = wait_flag(c);
  std::vector<ParsedWrite> parsed = read_operations(parse_body(*c.body));
  col->apply(ops_of(parsed), wait);  // parsed keeps the filters alive meanwhile
  json results = json::array();
  for (size_t i = 0; i < parsed.size(); ++i) results.push_back(update_result(wait));
  return results;
}

void Api::apply_sequenced(const std::string& collection, const json& body, uint64_t sequence,
                          uint64_t term) {
  auto col = engine_.collection(collection);
  std::vector<ParsedWrite> parsed = read_operations(body);
  col->apply_sequenced(ops_of(parsed), sequence, term);  // parsed keeps the filters alive meanwhile
}

}  // namespace wp::http
