// Collection snapshots: create, list, download, delete, recover from a file under the snapshots
// folder or from an upload (Qdrant's /collections/{name}/snapshots routes); storage snapshots
// of every collection: create, list, download, delete (Qdrant's /snapshots routes).
#include "engine/json_fields.h"
#include "engine/json_value.h"
#include "http/api.h"
#include "http/multipart.h"
#include "http/request_parsing.h"
#include "index/error.h"

namespace wp::http {

using nlohmann::json;

namespace {

json describe(const engine::Engine::SnapshotInfo& s) {
  return json{{"name", s.name},
              {"creation_time", s.creation_time},
              {"size", s.size},
              {"checksum", s.checksum.empty() ? json() : json(s.checksum)}};
}

/// Qdrant's `priority` (snapshot, replica or no_sync): one node has no other replica, so each
/// means the same here (the snapshot's data replaces the collection), but a wrong value is
/// refused as Qdrant refuses it. `where` names the field.
void check_priority(const json& value, const std::string& where) {
  if (value.is_null()) return;
  WP_THROW_IF_NOT(
      value.is_string() && (value == "snapshot" || value == "replica" || value == "no_sync"), where,
      ": expected one of snapshot, replica, no_sync, got ", engine::show_json(value));
}

}  // namespace

json Api::create_snapshot(const Call& c) {
  wait_flag(c);  // checked; the snapshot is always complete when this answers
  return describe(engine_.create_snapshot(c.path.at("name")));
}

json Api::list_snapshots(const Call& c) {
  json out = json::array();
  for (const auto& s : engine_.list_snapshots(c.path.at("name"))) out.push_back(describe(s));
  return out;
}

json Api::get_snapshot(const Call& c) {
  return engine_.snapshot_file(c.path.at("name"), c.path.at("snapshot_name"));
}

json Api::delete_snapshot(const Call& c) {
  wait_flag(c);
  engine_.delete_snapshot(c.path.at("name"), c.path.at("snapshot_name"));
  return true;
}

json Api::recover_snapshot(const Call& c) {
  wait_flag(c);
  const json body = parse_body(*c.body);
  engine::check_fields(body, "", {"location", "priority", "checksum", "api_key"});
  WP_THROW_IF_NOT(body.contains("location") && body["location"].is_string(),
                  "location: expected the snapshot's URL, file:///path/under/the/snapshots/folder");
  check_priority(body.value("priority", json()), "priority");
  engine_.recover_snapshot_location(c.path.at("name"), body["location"],
                                    engine::get_string(body, "checksum", "", ""));
  return true;
}

json Api::upload_snapshot(const Call& c) {
  wait_flag(c);
  for (const auto& [key, value] : c.query) {
    WP_THROW_IF_NOT(key == "wait" || key == "priority" || key == "checksum", "query parameter ",
                    engine::show_text(key), ": unknown (expected wait, priority, checksum)");
  }
  if (auto p = c.query.find("priority"); p != c.query.end()) check_priority(p->second, "priority");
  const std::string_view file = multipart_field(*c.body, c.content_type, "snapshot");
  const auto checksum = c.query.find("checksum");
  engine_.recover_snapshot_bytes(c.path.at("name"), file,
                                 checksum == c.query.end() ? "" : checksum->second);
  return true;
}

json Api::create_full_snapshot(const Call& c) {
  wait_flag(c);  // checked; the snapshot is always complete when this answers
  return describe(engine_.create_full_snapshot());
}

json Api::list_full_snapshots(const Call&) {
  json out = json::array();
  for (const auto& s : engine_.list_full_snapshots()) out.push_back(describe(s));
  return out;
}

json Api::get_full_snapshot(const Call& c) {
  return engine_.full_snapshot_file(c.path.at("snapshot_name"));
}

json Api::delete_full_snapshot(const Call& c) {
  wait_flag(c);
  engine_.delete_full_snapshot(c.path.at("snapshot_name"));
  return true;
}

}  // namespace wp::http
