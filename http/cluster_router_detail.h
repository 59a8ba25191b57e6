#pragma once
// What the files of ClusterRouter share (cluster_router.cpp: transport, the map, collections and
// the reconciler; cluster_settings.cpp: aliases, PATCH, payload indexes; cluster_writes.cpp;
// cluster_reads.cpp; cluster_query.cpp; cluster_repair.cpp): constants and the readers of a
// node's answer.
#include <nlohmann/json.hpp>

#include <string>

#include <boost/beast/http.hpp>

#include "engine/collection_config.h"
#include "engine/json_fields.h"
#include "engine/json_value.h"
#include "engine/point_id.h"
#include "http/api.h"
#include "http/cluster_node.h"
#include "http/cluster_router.h"
#include "http/http_connection.h"
#include "http/qdrant_wire.h"
#include "http/request_parsing.h"
#include "http/shard_map.h"
#include "index/error.h"

namespace wp::http::cluster_detail {

using nlohmann::json;

inline constexpr char kCollectionsKey[] = "collections/";
inline constexpr char kAliasesKey[] = "aliases";
inline constexpr size_t kMaxShards = 1024;
/// Points of one answer a coordinator merges: as the single-node limit on an answer.
inline constexpr size_t kMaxMerged = kMaxAnswerPoints;

/// The message of an error answer, without the status word the Api put before it.
inline std::string message_of(const json& body) {
  std::string m;
  if (body.is_object() && body.contains("status") && body["status"].is_object()) {
    m = body["status"].value("error", std::string());
  }
  if (m.empty()) m = body.dump().substr(0, 300);
  for (const char* prefix :
       {"Wrong input: ", "Not found: ", "Service unavailable: ", "Service internal error: "}) {
    const std::string p = prefix;
    if (m.compare(0, p.size(), p) == 0) return m.substr(p.size());
  }
  return m;
}

/// Throws what a node's error answer says, as the exception its status stands for.
[[noreturn]] inline void rethrow(unsigned status, const json& body, const std::string& context) {
  const std::string m = context + message_of(body);
  if (status == 404) throw NotFoundError(m);
  if (status == 409) throw ConflictError(m);
  if (status == 413) throw TooLargeError(m);
  if (status >= 400 && status < 500) throw UserError(m);
  if (status == 503) throw UnavailableError(m);
  throw InternalError(m);
}

/// The `result` of a successful answer, else the error thrown.
inline json result_of(unsigned status, json body, const std::string& context) {
  if (status != 200) rethrow(status, body, context);
  return std::move(body["result"]);
}

/// The scroll order of ids: the engine's (PointId::key()).
inline std::string id_key(const json& id) {
  return engine::PointId::from_json(id, "id").key();
}

/// The merge of an order_by (a key: ascending; {"direction": "desc"}: descending).
inline ClusterRouter::Merge order_merge(const json& order_by) {
  const bool desc =
      order_by.is_object() && order_by.contains("direction") && order_by["direction"] == "desc";
  return desc ? ClusterRouter::Merge::kValueDesc : ClusterRouter::Merge::kValueAsc;
}

/// The merge of scores in vector space `vector_name` (Euclid: lowest first).
inline ClusterRouter::Merge by_score(const cluster::CollectionMap& m,
                                     const std::string& vector_name) {
  try {
    return m.distance(vector_name) == "Euclid" && !m.multivector(vector_name)
               ? ClusterRouter::Merge::kLowFirst
               : ClusterRouter::Merge::kHighFirst;
  } catch (const std::exception&) {
    return ClusterRouter::Merge::kHighFirst;  // the shards refuse an unknown name
  }
}

}  // namespace wp::http::cluster_detail

namespace wp::http {

// The names every part of the router uses (this header is included by its .cpp files only).
using cluster::CollectionMap;
using cluster::ReplicaState;
using cluster::Shard;
using nlohmann::json;
using namespace cluster_detail;
namespace bhttp = boost::beast::http;

}  // namespace wp::http
