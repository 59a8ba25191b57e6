#pragma once
/**
 * @file api.h
 * The Qdrant-compatible REST API as a pure function of the request: Api::handle() takes a
 * method, target, headers and body and returns status and body, never throws, and knows nothing
 * of sockets (the Beast server in server.h calls it). Handlers are grouped by resource in
 * collections_api.cpp and points_api.cpp; routes are one table (routes.cpp) that also generates
 * /openapi.json.
 *
 * Answers: {"result": ..., "status": "ok", "time": seconds};
 * errors:  {"status": {"error": "..."}, "time": seconds} with 400 (bad input), 401/403 (api key),
 *          404 (unknown collection, point or route), 405, 409 (exists), 413 (body too large), 500.
 */
#include <atomic>
#include <chrono>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "engine/engine.h"
#include "http/issues.h"

namespace wp::http {

class ClusterNode;
class ClusterRouter;

struct Request {
  std::string method;  ///< "GET", "PUT", "POST", "DELETE"
  std::string target;  ///< path and query string, e.g. "/collections/a/points?wait=true"
  std::string body;
  std::string api_key;            ///< value of the `api-key` header, if any
  std::string authorization;      ///< value of the `Authorization` header, if any
  std::string content_type = "";  ///< value of the `Content-Type` header, if any
  /// A cluster node's call to a peer (the `waypoint-internal` header): collection routes are
  /// answered from this node's local collections, not routed across the cluster.
  bool internal = false;
};

struct Response {
  Response() = default;
  Response(unsigned s, std::string b, std::string type = "application/json", std::string f = "")
      : status(s), body(std::move(b)), content_type(std::move(type)), file(std::move(f)) {}
  unsigned status = 200;
  std::string body;
  std::string content_type = "application/json";
  /// When set, the answer is this file's bytes (a snapshot download), streamed by the server
  /// rather than held in `body`.
  std::string file;
};

struct ApiOptions {
  std::string api_key;  ///< empty: no key required
  /// Qdrant's read_only_api_key: a second key that may call only the routes that read (a write
  /// with it is a 403). Empty: none.
  std::string read_only_api_key;
  size_t max_body_bytes = 32 << 20;
  /// A snapshot upload's body may be this large (it is a whole collection); other bodies
  /// max_body_bytes.
  size_t max_upload_bytes = size_t{1} << 30;
  /// Whether the routes that have a plain form (a search body of a vector, a limit and simple
  /// options; an upsert of points with vectors and payloads) read it without building a JSON DOM;
  /// false sends every request through the DOM (the tests compare the two answers).
  bool plain_answers = true;
  /// A request that reads points under a filter and takes at least this long notes the keys its
  /// filter tests without an index that would serve them (GET /issues; Qdrant's
  /// UNINDEXED_FIELD, whose default this is). 0: every such request.
  double slow_query_seconds = 1.2;
};

/// Whether a request to `target` is a snapshot upload (its body limit is max_upload_bytes).
bool is_snapshot_upload(std::string_view method, std::string_view target);

/// Work one request may ask for (a 400 naming the field beyond them): searches in a batch, points
/// in an answer (a batch's limits and offsets added up), and vector values in an answer.
inline constexpr size_t kMaxBatchSearches = 1000;
inline constexpr size_t kMaxAnswerPoints = 100000;
inline constexpr size_t kMaxAnswerValues = size_t{1} << 24;
/// Operations in one POST points/batch: each is bounded by the body size, this bounds their count.
inline constexpr size_t kMaxBatchOperations = 1000;

/// What a route handler sees: path parameters, query parameters and the body.
struct Call {
  std::map<std::string, std::string> path;
  std::map<std::string, std::string> query;
  const std::string* body;
  std::string content_type;  ///< the request's Content-Type header
  bool internal = false;     ///< Request::internal
};

class Api {
 public:
  Api(engine::Engine& engine, ApiOptions options);

  struct Route;
  /// A request's path matched against the route table (resolve()): the server does it once a
  /// request, to choose where the request runs, and hands it to handle().
  struct Resolved {
    std::vector<std::string> parts;             ///< the path's segments, decoded
    std::map<std::string, std::string> params;  ///< the route's {params}
    const Route* route = nullptr;               ///< nullptr: no route has this method and path
    bool path_known = false;                    ///< some route has the path (a 405, not a 404)
  };
  /// The route `method` `target` names (HEAD as GET). Throws only for want of memory.
  static Resolved resolve(const std::string& method, const std::string& target);

  /// Answers one request; `resolved`, when given, is resolve() of its method and target (its
  /// params are moved out). Never throws.
  Response handle(const Request& req, Resolved* resolved = nullptr);

  /// Prometheus text exposition of the counters (also served at GET /metrics).
  std::string metrics_text() const;
  /// What the transport adds to metrics_text (its families, whole; the server's connections),
  /// or none. Set before requests are served and cleared after (not synchronised).
  void set_transport_metrics(std::function<std::string()> f) { transport_metrics_ = std::move(f); }

  const ApiOptions& options() const { return options_; }

  /// Serves `GET /cluster` from this node's membership (nullptr: not in a cluster). The node
  /// must outlive the Api's requests.
  void set_cluster(const ClusterNode* node) { cluster_ = node; }
  /// Routes the collection routes across the cluster (nullptr: answered locally). The router
  /// must outlive the Api's requests.
  void set_router(ClusterRouter* router) { router_ = router; }
  /// Whether collection routes go across a cluster (requests may then wait on other nodes).
  bool clustered() const { return router_ != nullptr; }

  /// A write's answer, Qdrant's UpdateResult: the next operation id, completed or acknowledged.
  nlohmann::json update_result(bool wait);
  /// The `wait` query parameter (true, false or empty; 400 otherwise).
  static bool wait_flag(const Call& c);

  /// Applies a points/batch body ({"operations": [...]}) to a local collection as the write
  /// numbered `sequence` of its shard (Collection::apply_sequenced).
  void apply_sequenced(const std::string& collection, const nlohmann::json& body, uint64_t sequence,
                       uint64_t term);

  /// Whether a route changes data (the read-only key may call only kRead routes).
  enum class Access { kUnset, kRead, kWrite };
  /// The access of a resolved request's route (kUnset when none matched): the server runs kWrite
  /// requests, which may wait on the disk or the index, off its connection threads.
  static Access access_of(const Resolved& r) { return r.route ? r.route->access : Access::kUnset; }

  /// How a route's result is sent: in Qdrant's envelope ({"result", "status", "time"}), as it is
  /// (`GET /`, the OpenAPI document), or as plain text (a string result: the health probes).
  /// A route answering kFile returns a file's path, sent as application/octet-stream.
  enum class Answer { kEnvelope, kBare, kText, kFile };

  /// A route: method, path pattern with {params}, OpenAPI summary, handler returning `result`,
  /// its access (every route states it; kUnset is refused to every key), how it answers, and
  /// whether it is open without a key (the probes and `GET /`, as in Qdrant).
  struct Route {
    const char* method;
    const char* pattern;
    const char* summary;
    nlohmann::json (Api::*handler)(const Call&);
    Access access = Access::kUnset;
    Answer answer = Answer::kEnvelope;
    bool open = false;
    /// The whole envelope written without a JSON DOM, for the bodies this reader knows (nullopt:
    /// `handler` answers). Its second argument gives the seconds since the request arrived.
    std::optional<std::string> (Api::*plain)(const Call&, const std::function<double()>&) = nullptr;
  };
  static const std::vector<Route>& routes();

 private:
  // collections_api.cpp
  nlohmann::json list_collections(const Call& c);
  nlohmann::json create_collection(const Call& c);
  nlohmann::json get_collection(const Call& c);
  nlohmann::json delete_collection(const Call& c);
  nlohmann::json collection_exists(const Call& c);
  nlohmann::json update_collection(const Call& c);
  nlohmann::json update_aliases(const Call& c);
  nlohmann::json list_aliases(const Call& c);
  nlohmann::json collection_aliases(const Call& c);
  nlohmann::json create_payload_index(const Call& c);
  nlohmann::json delete_payload_index(const Call& c);
  nlohmann::json put_index(const Call& c);
  nlohmann::json get_index(const Call& c);
  // snapshots_api.cpp
  nlohmann::json create_snapshot(const Call& c);
  nlohmann::json list_snapshots(const Call& c);
  nlohmann::json get_snapshot(const Call& c);
  nlohmann::json delete_snapshot(const Call& c);
  nlohmann::json recover_snapshot(const Call& c);
  nlohmann::json upload_snapshot(const Call& c);
  nlohmann::json create_full_snapshot(const Call& c);
  nlohmann::json list_full_snapshots(const Call& c);
  nlohmann::json get_full_snapshot(const Call& c);
  nlohmann::json delete_full_snapshot(const Call& c);
  // points_api.cpp
  nlohmann::json upsert_points(const Call& c);
  nlohmann::json delete_points(const Call& c);
  nlohmann::json update_vectors(const Call& c);
  nlohmann::json delete_vectors(const Call& c);
  nlohmann::json set_payload(const Call& c);
  nlohmann::json overwrite_payload(const Call& c);
  nlohmann::json delete_payload(const Call& c);
  nlohmann::json clear_payload(const Call& c);
  nlohmann::json batch_update(const Call& c);
  nlohmann::json get_point(const Call& c);
  nlohmann::json get_points(const Call& c);
  nlohmann::json count_points(const Call& c);
  nlohmann::json scroll_points(const Call& c);
  nlohmann::json search_points(const Call& c);
  std::optional<std::string> search_points_plain(const Call& c,
                                                 const std::function<double()>& seconds);
  nlohmann::json search_batch(const Call& c);
  std::optional<std::string> search_batch_plain(const Call& c,
                                                const std::function<double()>& seconds);
  nlohmann::json query_points(const Call& c);
  std::optional<std::string> query_points_plain(const Call& c,
                                                const std::function<double()>& seconds);
  nlohmann::json recommend_points(const Call& c);
  nlohmann::json recommend_batch(const Call& c);
  /// Qdrant's discovery routes, answered as the query they become (discover_as_query).
  nlohmann::json discover_points(const Call& c);
  nlohmann::json discover_batch(const Call& c);
  /// Qdrant's distance matrix (search/matrix/pairs, search/matrix/offsets).
  nlohmann::json search_matrix_pairs(const Call& c);
  nlohmann::json search_matrix_offsets(const Call& c);
  nlohmann::json query_batch(const Call& c);
  std::optional<std::string> query_batch_plain(const Call& c,
                                               const std::function<double()>& seconds);
  nlohmann::json query_groups(const Call& c);
  /// Qdrant's older group routes, answered as query/groups (groups_as_query).
  nlohmann::json search_groups(const Call& c);
  nlohmann::json recommend_groups(const Call& c);
  /// A query/groups body answered on the collection `name`.
  nlohmann::json groups(const std::string& name, const nlohmann::json& body);
  nlohmann::json facet(const Call& c);
  // api.cpp
  nlohmann::json root(const Call& c);
  nlohmann::json healthz(const Call& c);
  nlohmann::json readyz(const Call& c);
  nlohmann::json openapi(const Call& c);
  nlohmann::json cluster_status(const Call& c);
  nlohmann::json collection_cluster(const Call& c);
  nlohmann::json update_collection_cluster(const Call& c);
  nlohmann::json cluster_shard_write(const Call& c);
  nlohmann::json cluster_shard_apply(const Call& c);
  nlohmann::json cluster_shard_log(const Call& c);
  nlohmann::json cluster_shard_activate(const Call& c);
  nlohmann::json get_issues(const Call& c);
  nlohmann::json clear_issues(const Call& c);
  /// What a request answered with `status` after `secs` tells the issue board: a slow read under
  /// filters notes their unindexed keys; an index created or a collection deleted solves theirs.
  void note_issues(const Route& route, const Call& call, unsigned status, double secs);

  /// A single write route: its body read as the points/batch operation `operation`, applied.
  nlohmann::json write_route(const Call& c, const char* operation);
  /// handle() without its last catch.
  Response answer(const Request& req, Resolved* resolved);
  /// A 401 or 403 when an api key is configured and the request does not carry it (the
  /// liveness routes stay open); nullopt to go on.
  std::optional<Response> refuse_unauthorised(const Request& req, const Route* route,
                                              double secs) const;
  /// Runs the route's handler, mapping exceptions to status codes (exceptions never leave).
  Response call_handler(const Route& route, const Call& call,
                        const std::function<double()>& seconds);
  /// Counts a request: `route` is a route's pattern or one of the names answer() gives, all of
  /// static storage (the counters are keyed by the pointer, and sorted by name on output).
  void record(const char* route, unsigned status, double seconds);

  engine::Engine& engine_;
  ApiOptions options_;
  const ClusterNode* cluster_ = nullptr;
  ClusterRouter* router_ = nullptr;
  std::atomic<uint64_t> operation_id_{0};
  std::function<std::string()> transport_metrics_;
  IssueBoard issues_;

  mutable std::mutex metrics_mu_;
  std::map<std::pair<const char*, unsigned>, uint64_t> requests_;  ///< (route, status) -> count
  std::vector<uint64_t> latency_buckets_;                          ///< cumulative on output
  double latency_sum_ = 0;
  uint64_t latency_count_ = 0;
};

/// Latency histogram bucket bounds in seconds.
const std::vector<double>& latency_bounds();

}  // namespace wp::http
