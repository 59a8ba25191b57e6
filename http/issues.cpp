#include "http/issues.h"

#include <algorithm>

#include "engine/json_value.h"

namespace wp::http {

using nlohmann::json;

namespace {

std::string issue_id(const std::string& collection, const std::string& key) {
  return "UNINDEXED_FIELD/" + collection + "/" + key;
}

/// A schema's name: the string, or an object's "type".
std::string type_of(const json& schema) {
  if (schema.is_string()) return schema.get<std::string>();
  return schema.is_object() ? schema.value("type", std::string()) : std::string();
}

json solution(const std::string& collection, const std::string& key, const json& schema) {
  return {{"message", "Create an index on field '" + key + "' of schema " + schema.dump() +
                          " in collection '" + collection +
                          "'. Check the documentation for more details: "
                          "https://qdrant.tech/documentation/concepts/indexing/#payload-index"},
          {"action",
           {{"method", "PUT"},
            {"uri", "/collections/" + collection + "/index"},
            {"headers", {{"content-type", "application/json"}}},
            {"body", {{"field_name", key}, {"field_schema", schema}}}}}};
}

}  // namespace

bool index_serves(const json& have, const json& want) {
  if (type_of(have) != type_of(want)) return false;
  // A prefix match needs the keyword index's prefix option.
  const bool wants_prefix = want.is_object() && want.value("prefix", false);
  return !wants_prefix || (have.is_object() && have.value("prefix", false));
}

void IssueBoard::unindexed(const std::string& collection,
                           const std::vector<engine::IndexSuggestion>& suggestions,
                           const std::map<std::string, json>& indexed) {
  std::map<std::string, std::vector<json>> needed;  // key -> schemas, each once
  for (const engine::IndexSuggestion& s : suggestions) {
    const auto have = indexed.find(s.key);
    if (have != indexed.end() &&
        std::any_of(s.schemas.begin(), s.schemas.end(),
                    [&](const json& want) { return index_serves(have->second, want); })) {
      continue;
    }
    std::vector<json>& schemas = needed[s.key];
    for (const json& want : s.schemas) {
      if (std::find(schemas.begin(), schemas.end(), want) == schemas.end()) {
        schemas.push_back(want);
      }
    }
  }
  if (needed.empty()) return;
  const std::string now = engine::rfc3339(std::chrono::system_clock::now());
  std::lock_guard<std::mutex> g(mu_);
  for (const auto& [key, schemas] : needed) {
    json fix;
    if (schemas.size() == 1) {
      fix = {{"immediate", solution(collection, key, schemas[0])}};
    } else {
      fix = {{"immediate_choice", json::array()}};
      for (const json& s : schemas) fix["immediate_choice"].push_back(solution(collection, key, s));
    }
    const std::string id = issue_id(collection, key);
    json record{
        {"id", id},
        {"description", "Unindexed field '" + key +
                            "' might be slowing queries down in collection '" + collection + "'"},
        {"solution", std::move(fix)},
        {"timestamp", now},
        {"related_collection", collection}};
    const auto it = issues_.find(id);
    if (it != issues_.end()) {  // noted again: its time and its solution as they are now
      it->second.record = std::move(record);
      continue;
    }
    if (issues_.size() >= kMaxIssues) {
      const auto oldest = std::min_element(
          issues_.begin(), issues_.end(),
          [](const auto& a, const auto& b) { return a.second.order < b.second.order; });
      issues_.erase(oldest);
    }
    issues_.emplace(id, Issue{noted_++, std::move(record)});
  }
}

void IssueBoard::solve_field(const std::string& collection, const std::string& key) {
  std::lock_guard<std::mutex> g(mu_);
  issues_.erase(issue_id(collection, key));
}

void IssueBoard::solve_collection(const std::string& collection) {
  std::lock_guard<std::mutex> g(mu_);
  for (auto it = issues_.begin(); it != issues_.end();) {
    it = it->second.record["related_collection"] == collection ? issues_.erase(it) : std::next(it);
  }
}

void IssueBoard::clear() {
  std::lock_guard<std::mutex> g(mu_);
  issues_.clear();
}

json IssueBoard::report() const {
  std::lock_guard<std::mutex> g(mu_);
  std::vector<const Issue*> in_order;
  for (const auto& [id, issue] : issues_) in_order.push_back(&issue);
  std::sort(in_order.begin(), in_order.end(),
            [](const Issue* a, const Issue* b) { return a->order < b->order; });
  json list = json::array();
  for (const Issue* i : in_order) list.push_back(i->record);
  return {{"issues", list}};
}

}  // namespace wp::http
