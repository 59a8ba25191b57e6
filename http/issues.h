#pragma once
/**
 * @file issues.h
 * Qdrant's issues API (GET and DELETE /issues): what the server noticed that slows requests,
 * each with the request that would mend it. One kind, Qdrant's UNINDEXED_FIELD: a request that
 * read points under a filter took at least the slow-query time (`serve --slow-query-seconds`,
 * 1.2 s as Qdrant's default), and a key its filter tests has no payload index that would serve
 * the condition: the issue names the key and offers PUT /collections/{name}/index with the
 * field_schema (or the choice of those) that would. Creating an index on the key solves it, as
 * does deleting the collection; DELETE /issues clears them all.
 */
#include <chrono>
#include <map>
#include <mutex>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "engine/filter.h"

namespace wp::http {

class IssueBoard {
 public:
  /// Issues held at most (the oldest make room): each is a key of a collection.
  static constexpr size_t kMaxIssues = 1024;

  /// Notes each key of `suggestions` whose condition none of `indexed` (the collection's payload
  /// indexes: key -> its field_schema as stored, payload_schema_json) would serve.
  void unindexed(const std::string& collection,
                 const std::vector<engine::IndexSuggestion>& suggestions,
                 const std::map<std::string, nlohmann::json>& indexed);
  /// An index was created on `key`: its issue, if any, is solved.
  void solve_field(const std::string& collection, const std::string& key);
  /// The collection is gone: its issues are solved.
  void solve_collection(const std::string& collection);
  void clear();
  /// {"issues": [...]}, Qdrant's IssuesReport, oldest first.
  nlohmann::json report() const;

 private:
  struct Issue {
    uint64_t order;  ///< when first noted
    nlohmann::json record;
  };
  mutable std::mutex mu_;
  std::map<std::string, Issue> issues_;  ///< by id
  uint64_t noted_ = 0;
};

/// Whether an index of field_schema `have` (as stored) serves a condition needing `want`.
bool index_serves(const nlohmann::json& have, const nlohmann::json& want);

}  // namespace wp::http
