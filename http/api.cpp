#include "http/api.h"

#include <strings.h>

#include <algorithm>
#include <filesystem>
#include <sstream>

#include "engine/json_value.h"
#include "http/cluster_node.h"
#include "http/cluster_router.h"
#include "http/request_parsing.h"
#include "index/error.h"

namespace wp::http {

using nlohmann::json;
using Clock = std::chrono::steady_clock;

namespace {

std::string url_decode(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '%' && i + 2 < s.size() && std::isxdigit(static_cast<unsigned char>(s[i + 1])) &&
        std::isxdigit(static_cast<unsigned char>(s[i + 2]))) {
      out += static_cast<char>(std::stoi(std::string(s.substr(i + 1, 2)), nullptr, 16));
      i += 2;
    } else {
      out += s[i] == '+' ? ' ' : s[i];
    }
  }
  return out;
}

/// A path's segments, each decoded (empty segments dropped: "/a//b/" is {"a", "b"}).
std::vector<std::string> split_path(std::string_view path) {
  std::vector<std::string> parts;
  parts.reserve(8);
  size_t begin = 0;
  while (begin < path.size()) {
    size_t end = path.find('/', begin);
    if (end == std::string_view::npos) end = path.size();
    const std::string_view seg = path.substr(begin, end - begin);
    if (!seg.empty()) {
      // Most segments have nothing to decode: copied as they are.
      if (seg.find_first_of("%+") == std::string_view::npos) {
        parts.emplace_back(seg);
      } else {
        parts.push_back(url_decode(seg));
      }
    }
    begin = end + 1;
  }
  return parts;
}

std::map<std::string, std::string> parse_query(const std::string& q) {
  std::map<std::string, std::string> out;
  std::stringstream ss(q);
  std::string item;
  while (std::getline(ss, item, '&')) {
    if (item.empty()) continue;
    const size_t eq = item.find('=');
    out[url_decode(item.substr(0, eq))] =
        eq == std::string::npos ? "" : url_decode(item.substr(eq + 1));
  }
  return out;
}

/// A segment of a route's pattern: a literal, or a {param} (`text` is then the param's name).
struct PatternSegment {
  std::string text;
  bool param = false;
};

std::vector<PatternSegment> split_pattern(std::string_view pattern) {
  std::vector<PatternSegment> out;
  for (std::string& part : split_path(pattern)) {
    const bool param = part.size() > 2 && part.front() == '{' && part.back() == '}';
    out.push_back({param ? part.substr(1, part.size() - 2) : std::move(part), param});
  }
  return out;
}

/// Whether `parts` match a split pattern such as {"collections", "{name}", "points"} (nothing
/// allocated: every request tries the routes in turn). From the last segment, where the routes
/// of one length mostly differ ("search", "query", "scroll"...).
bool match(const std::vector<PatternSegment>& pat, const std::vector<std::string>& parts) {
  if (pat.size() != parts.size()) return false;
  for (size_t i = pat.size(); i-- > 0;) {
    if (!pat[i].param && pat[i].text != parts[i]) return false;
  }
  return true;
}

/// The {params} of a pattern that matched.
std::map<std::string, std::string> path_params(const std::vector<PatternSegment>& pat,
                                               const std::vector<std::string>& parts) {
  std::map<std::string, std::string> p;
  for (size_t i = 0; i < pat.size(); ++i) {
    if (pat[i].param) p.emplace(pat[i].text, parts[i]);
  }
  return p;
}

Response error_response(unsigned status, const std::string& message, double secs) {
  return {status, json_text(json{{"status", {{"error", message}}}, {"time", secs}})};
}

}  // namespace

const std::vector<double>& latency_bounds() {
  static const std::vector<double> b{0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025,
                                     0.05,   0.1,   0.25,   0.5,   1,    2.5};
  return b;
}

Api::Api(engine::Engine& engine, ApiOptions options)
    : engine_(engine), options_(std::move(options)), latency_buckets_(latency_bounds().size(), 0) {}

const std::vector<Api::Route>& Api::routes() {
  static const std::vector<Route> r{
      {"GET", "/", "Server name and version ({\"title\", \"version\"}, no envelope)", &Api::root,
       Access::kRead, Answer::kBare, true},
      {"GET", "/healthz", "Liveness: 200 when the server answers (text)", &Api::healthz,
       Access::kRead, Answer::kText, true},
      {"GET", "/livez", "Liveness: 200 when the server answers (text)", &Api::healthz,
       Access::kRead, Answer::kText, true},
      {"GET", "/readyz", "Readiness: 200 once every collection is loaded (text)", &Api::readyz,
       Access::kRead, Answer::kText, true},
      {"GET", "/openapi.json", "This OpenAPI document", &Api::openapi, Access::kRead,
       Answer::kBare},
      {"GET", "/issues",
       "Issues the server noticed (Qdrant's: UNINDEXED_FIELD, a key a slow filtered read tests "
       "without an index that would serve it, with the index request that would)",
       &Api::get_issues, Access::kRead},
      {"DELETE", "/issues", "Clears the issues", &Api::clear_issues, Access::kWrite},
      {"GET", "/cluster",
       "The cluster as this node sees it (Qdrant's ClusterStatus; {\"status\": \"disabled\"} "
       "without --cluster; `etcd` adds the coordination state)",
       &Api::cluster_status, Access::kRead},
      {"POST", "/waypoint/cluster/collections/{name}/shards/{shard}/write",
       "Cluster internal: a shard's primary orders, applies and replicates a write",
       &Api::cluster_shard_write, Access::kWrite},
      {"POST", "/waypoint/cluster/collections/{name}/shards/{shard}/apply",
       "Cluster internal: a replica applies its primary's numbered write once",
       &Api::cluster_shard_apply, Access::kWrite},
      {"GET", "/waypoint/cluster/collections/{name}/shards/{shard}/log",
       "Cluster internal: a shard's writes after ?after (for a replica catching up)",
       &Api::cluster_shard_log, Access::kRead},
      {"POST", "/waypoint/cluster/collections/{name}/shards/{shard}/activate",
       "Cluster internal: the primary turns a caught-up replica active",
       &Api::cluster_shard_activate, Access::kWrite},
      {"GET", "/collections", "List collections", &Api::list_collections, Access::kRead},
      {"POST", "/collections/aliases",
       "Create, delete and rename aliases ({\"actions\": [...]}), all or none; every collection "
       "route accepts an alias",
       &Api::update_aliases, Access::kWrite},
      {"GET", "/aliases", "Every alias and its collection", &Api::list_aliases, Access::kRead},
      {"GET", "/collections/{name}/aliases", "The aliases of a collection",
       &Api::collection_aliases, Access::kRead},
      {"PUT", "/collections/{name}", "Create a collection", &Api::create_collection,
       Access::kWrite},
      {"GET", "/collections/{name}", "Collection info", &Api::get_collection, Access::kRead},
      {"PATCH", "/collections/{name}",
       "Update hnsw_config, quantization_config (scalar int8), optimizers_config: the vector "
       "index is rebuilt in the background when its parameters change",
       &Api::update_collection, Access::kWrite},
      {"DELETE", "/collections/{name}", "Delete a collection", &Api::delete_collection,
       Access::kWrite},
      {"GET", "/collections/{name}/cluster",
       "Where the collection's shards are (Qdrant's CollectionClusterInfo)",
       &Api::collection_cluster, Access::kRead},
      {"POST", "/collections/{name}/cluster",
       "Cluster operations: move_shard, replicate_shard, drop_replica; rebalance (waypoint)",
       &Api::update_collection_cluster, Access::kWrite},
      {"GET", "/collections/{name}/exists", "Whether a collection exists", &Api::collection_exists,
       Access::kRead},
      {"PUT", "/collections/{name}/index",
       "Create a payload index ({\"field_name\", \"field_schema\": keyword|integer|float|bool|"
       "uuid|datetime|text|geo}): filters on that key find their candidates from it",
       &Api::create_payload_index, Access::kWrite},
      {"DELETE", "/collections/{name}/index/{field_name}", "Delete a payload index",
       &Api::delete_payload_index, Access::kWrite},
      {"PUT", "/waypoint/collections/{name}/vector_index",
       "Rebuild the index in the background ({\"type\": \"hnsw\"|\"flat\", \"m\", "
       "\"ef_construct\", "
       "\"ef\", \"quantization\": \"none\"|\"sq8\"}) and swap it in when ready",
       &Api::put_index, Access::kWrite},
      {"GET", "/waypoint/collections/{name}/vector_index",
       "Index type, parameters, build state and progress", &Api::get_index, Access::kRead},
      {"PUT", "/collections/{name}/points", "Upsert points (?wait=true syncs to disk first)",
       &Api::upsert_points, Access::kWrite},
      {"POST", "/collections/{name}/points", "Retrieve points by id", &Api::get_points,
       Access::kRead},
      {"GET", "/collections/{name}/points/{id}", "Retrieve one point", &Api::get_point,
       Access::kRead},
      {"POST", "/collections/{name}/points/delete", "Delete points by id or filter",
       &Api::delete_points, Access::kWrite},
      {"PUT", "/collections/{name}/points/vectors",
       "New vectors for existing points ({\"points\": [{\"id\", \"vector\"}]}; payloads kept)",
       &Api::update_vectors, Access::kWrite},
      {"POST", "/collections/{name}/points/vectors/delete",
       "Remove named vectors from points ({\"points\" | \"filter\", \"vector\": [names]})",
       &Api::delete_vectors, Access::kWrite},
      {"POST", "/collections/{name}/points/payload",
       "Set payload values (merged; at \"key\" when given) of points by id or filter",
       &Api::set_payload, Access::kWrite},
      {"PUT", "/collections/{name}/points/payload",
       "Overwrite the whole payload of points by id or filter", &Api::overwrite_payload,
       Access::kWrite},
      {"POST", "/collections/{name}/points/payload/delete",
       "Delete payload keys (key paths) of points by id or filter", &Api::delete_payload,
       Access::kWrite},
      {"POST", "/collections/{name}/points/payload/clear",
       "Remove the whole payload of points by id or filter", &Api::clear_payload, Access::kWrite},
      {"POST", "/collections/{name}/points/batch",
       "Operations applied in order as one write, all or nothing ({\"operations\": [{\"upsert\" | "
       "\"delete\" | \"update_vectors\" | \"delete_vectors\" | \"set_payload\" | "
       "\"overwrite_payload\" | "
       "\"delete_payload\" | \"clear_payload\": body of that route}])",
       &Api::batch_update, Access::kWrite},
      {"POST", "/collections/{name}/points/count", "Count points matching a filter",
       &Api::count_points, Access::kRead},
      {"POST", "/collections/{name}/points/scroll", "Page through points in id order",
       &Api::scroll_points, Access::kRead},
      {"POST", "/collections/{name}/points/search", "k nearest neighbours of a vector",
       &Api::search_points, Access::kRead, Answer::kEnvelope, false, &Api::search_points_plain},
      {"POST", "/collections/{name}/points/search/batch", "Several searches at once",
       &Api::search_batch, Access::kRead, Answer::kEnvelope, false, &Api::search_batch_plain},
      {"POST", "/collections/{name}/points/query", "Universal query (nearest vector or id)",
       &Api::query_points, Access::kRead, Answer::kEnvelope, false, &Api::query_points_plain},
      {"POST", "/collections/{name}/points/query/groups",
       "Universal query grouped by a payload key ({\"group_by\", \"group_size\", \"limit\": "
       "groups})",
       &Api::query_groups, Access::kRead},
      {"POST", "/collections/{name}/points/search/groups",
       "Search grouped by a payload key (a search body with \"group_by\", \"group_size\"; "
       "\"limit\": groups)",
       &Api::search_groups, Access::kRead},
      {"POST", "/collections/{name}/points/recommend/groups",
       "Recommendation grouped by a payload key (a recommend body with \"group_by\", "
       "\"group_size\"; \"limit\": groups)",
       &Api::recommend_groups, Access::kRead},
      {"POST", "/collections/{name}/points/recommend",
       "Nearest to the average of positive examples, away from negative ones (ids or vectors)",
       &Api::recommend_points, Access::kRead},
      {"POST", "/collections/{name}/points/recommend/batch", "Several recommendations at once",
       &Api::recommend_batch, Access::kRead},
      {"POST", "/collections/{name}/points/discover",
       "Discovery: the points on the positive side of context pairs (positive and negative "
       "examples, ids or vectors), nearest a target when given",
       &Api::discover_points, Access::kRead},
      {"POST", "/collections/{name}/points/discover/batch", "Several discoveries at once",
       &Api::discover_batch, Access::kRead},
      {"POST", "/collections/{name}/points/search/matrix/pairs",
       "Distance matrix: `sample` points drawn at random under `filter`, each with its `limit` "
       "nearest among them ({\"pairs\": [{\"a\", \"b\", \"score\"}]})",
       &Api::search_matrix_pairs, Access::kRead},
      {"POST", "/collections/{name}/points/search/matrix/offsets",
       "Distance matrix as offsets into the sampled ids ({\"offsets_row\", \"offsets_col\", "
       "\"scores\", \"ids\"})",
       &Api::search_matrix_offsets, Access::kRead},
      {"POST", "/collections/{name}/facet",
       "Counts of the values at an indexed key ({\"key\", \"filter\", \"limit\"}), most first",
       &Api::facet, Access::kRead},
      {"POST", "/collections/{name}/snapshots",
       "Snapshot the collection into one file (store checkpoint, index, config; SHA-256 "
       "checksum)",
       &Api::create_snapshot, Access::kWrite},
      {"GET", "/collections/{name}/snapshots", "The collection's snapshots, oldest first",
       &Api::list_snapshots, Access::kRead},
      {"GET", "/collections/{name}/snapshots/{snapshot_name}", "Download a snapshot file",
       &Api::get_snapshot, Access::kRead, Answer::kFile},
      {"DELETE", "/collections/{name}/snapshots/{snapshot_name}", "Delete a snapshot file",
       &Api::delete_snapshot, Access::kWrite},
      {"PUT", "/collections/{name}/snapshots/recover",
       "Replace (or create) the collection from a snapshot ({\"location\": "
       "\"file:///...\"} under the snapshots folder, \"checksum\": SHA-256)",
       &Api::recover_snapshot, Access::kWrite},
      {"POST", "/collections/{name}/snapshots/upload",
       "Replace (or create) the collection from an uploaded snapshot (multipart/form-data, part "
       "`snapshot`; ?checksum=SHA-256)",
       &Api::upload_snapshot, Access::kWrite},
      {"POST", "/snapshots",
       "Snapshot every collection and alias into one file (a storage snapshot; recovered by "
       "`waypoint serve --storage-snapshot FILE`)",
       &Api::create_full_snapshot, Access::kWrite},
      {"GET", "/snapshots", "The storage snapshots, oldest first", &Api::list_full_snapshots,
       Access::kRead},
      {"GET", "/snapshots/{snapshot_name}", "Download a storage snapshot file",
       &Api::get_full_snapshot, Access::kRead, Answer::kFile},
      {"DELETE", "/snapshots/{snapshot_name}", "Delete a storage snapshot file",
       &Api::delete_full_snapshot, Access::kWrite},
      {"POST", "/collections/{name}/points/query/batch",
       "Several universal queries at once ({\"searches\": [...]}; each answers {\"points\"})",
       &Api::query_batch, Access::kRead, Answer::kEnvelope, false, &Api::query_batch_plain},
  };
  return r;
}

namespace {
/// The route a request's path and method name; `path_known` says whether any route has the path
/// (a 405 rather than a 404). The path's {params} go to `params` when it is given.
const Api::Route* find_route(const std::string& method, const std::vector<std::string>& parts,
                             std::map<std::string, std::string>* params, bool& path_known) {
  // The route patterns, split once, and the routes of each number of segments in the table's
  // order (a request tries only those of its own length).
  struct Patterns {
    std::vector<std::vector<PatternSegment>> split;
    std::vector<std::vector<size_t>> by_length;
  };
  static const Patterns patterns = [] {
    Patterns p;
    for (size_t i = 0; i < Api::routes().size(); ++i) {
      p.split.push_back(split_pattern(Api::routes()[i].pattern));
      const size_t n = p.split.back().size();
      if (p.by_length.size() <= n) p.by_length.resize(n + 1);
      p.by_length[n].push_back(i);
    }
    return p;
  }();
  path_known = false;
  if (parts.size() >= patterns.by_length.size()) return nullptr;
  for (const size_t i : patterns.by_length[parts.size()]) {
    const Api::Route& r = Api::routes()[i];
    if (!match(patterns.split[i], parts)) continue;
    path_known = true;
    if (method == r.method) {
      if (params) *params = path_params(patterns.split[i], parts);
      return &r;
    }
  }
  return nullptr;
}
}  // namespace

namespace {
/// Whether a presented key equals the expected one, in time that depends only on the expected
/// key's length (never on where the two first differ), so that timing tells nothing of the key.
bool same_key(const std::string& given, const std::string& expected) {
  if (expected.empty()) return false;
  unsigned char diff = given.size() == expected.size() ? 0 : 1;
  for (size_t i = 0; i < expected.size(); ++i) {
    const unsigned char g = i < given.size() ? static_cast<unsigned char>(given[i]) : 0;
    diff |= static_cast<unsigned char>(g ^ static_cast<unsigned char>(expected[i]));
  }
  // Keep the compiler from ending the loop early on a difference.
  volatile unsigned char result = diff;
  return result == 0;
}

/// The token of an `Authorization: Bearer TOKEN` header (the scheme is case-insensitive, RFC
/// 7235); empty when the header is something else.
std::string bearer_token(const std::string& authorization) {
  if (authorization.size() <= 7 || strncasecmp(authorization.c_str(), "Bearer ", 7) != 0) return {};
  return authorization.substr(7);
}
}  // namespace

std::optional<Response> Api::refuse_unauthorised(const Request& req, const Route* route,
                                                 double secs) const {
  const bool open = route && route->open;
  if ((options_.api_key.empty() && options_.read_only_api_key.empty()) || open) {
    return std::nullopt;
  }
  if (req.api_key.empty() && req.authorization.empty()) {
    return error_response(401, "Must provide an API key or an Authorization bearer token", secs);
  }
  const std::string token = bearer_token(req.authorization);
  // Both keys are always compared, each against both places a client may give one (four
  // comparisons, none skipped), so that timing does not tell which one a client came close to.
  const bool full_header = same_key(req.api_key, options_.api_key);
  const bool full_bearer = same_key(token, options_.api_key);
  const bool read_only_header = same_key(req.api_key, options_.read_only_api_key);
  const bool read_only_bearer = same_key(token, options_.read_only_api_key);
  const bool full = full_header || full_bearer;
  const bool read_only = read_only_header || read_only_bearer;
  if (full) return std::nullopt;
  if (!read_only) return error_response(403, "Invalid api-key", secs);
  // The read-only key: routes that read, and the text of /metrics.
  if (!route || route->access == Access::kRead) return std::nullopt;
  return error_response(403,
                        "Forbidden: the read-only api key may not call " +
                            engine::show_text(req.method) + " " + route->pattern,
                        secs);
}

Response Api::call_handler(const Route& route, const Call& call,
                           const std::function<double()>& seconds) {
  try {
    const bool routed =
        router_ && !call.internal && ClusterRouter::serves(route.method, route.pattern);
    if (route.plain && options_.plain_answers && !routed) {
      if (std::optional<std::string> body = (this->*(route.plain))(call, seconds)) {
        return {200, std::move(*body)};
      }
    }
    json result =
        routed ? router_->call(route.method, route.pattern, call) : (this->*(route.handler))(call);
    switch (route.answer) {
      case Answer::kBare:
        return {200, json_text(result)};
      case Answer::kText:
        return {200, result.get<std::string>(), "text/plain; charset=utf-8"};
      case Answer::kFile:
        return {200, "", "application/octet-stream", result.get<std::string>()};
      case Answer::kEnvelope:
        break;
    }
    return {200,
            json_text(json{{"result", std::move(result)}, {"status", "ok"}, {"time", seconds()}})};
  } catch (const NotFoundError& e) {
    return error_response(404, std::string("Not found: ") + e.what(), seconds());
  } catch (const ConflictError& e) {
    return error_response(409, std::string("Wrong input: ") + e.what(), seconds());
  } catch (const TooLargeError& e) {
    return error_response(413, e.what(), seconds());
  } catch (const UserError& e) {
    return error_response(400, std::string("Wrong input: ") + e.what(), seconds());
  } catch (const json::exception& e) {
    return error_response(400, std::string("Wrong input: ") + e.what(), seconds());
  } catch (const UnavailableError& e) {
    return error_response(503, std::string("Service unavailable: ") + e.what(), seconds());
  } catch (const std::filesystem::filesystem_error& e) {
    // Its message names paths on the server: answer with the error alone.
    return error_response(500, "Service internal error: " + e.code().message(), seconds());
  } catch (const std::exception& e) {
    return error_response(500, "Service internal error: " + engine::show_text(e.what(), 300),
                          seconds());
  }
}

Api::Resolved Api::resolve(const std::string& method, const std::string& target) {
  Resolved r;
  r.parts = split_path(std::string_view(target).substr(0, target.find('?')));
  // HEAD is answered as GET would be (the server sends the headers only; RFC 9110 9.3.2).
  r.route = find_route(method == "HEAD" ? "GET" : method, r.parts, &r.params, r.path_known);
  return r;
}

Response Api::answer(const Request& req, Resolved* given) {
  const auto t0 = Clock::now();
  const std::function<double()> seconds = [&] {
    return std::chrono::duration<double>(Clock::now() - t0).count();
  };
  Resolved own;
  if (!given) own = resolve(req.method, req.target);
  Resolved& resolved = given ? *given : own;
  const std::vector<std::string>& parts = resolved.parts;
  const Route* route = resolved.route;
  const bool path_known = resolved.path_known;
  const size_t qpos = req.target.find('?');
  Call call;
  call.path = std::move(resolved.params);
  call.body = &req.body;
  call.content_type = req.content_type;
  call.internal = req.internal;
  if (qpos != std::string::npos) call.query = parse_query(req.target.substr(qpos + 1));
  // /metrics is served here rather than through the table: its answer is text, not JSON.
  const bool metrics =
      parts.size() == 1 && parts[0] == "metrics" && (req.method == "GET" || req.method == "HEAD");
  const char* route_name = route ? route->pattern : metrics ? "/metrics" : "unmatched";

  Response resp;
  if (auto refused = refuse_unauthorised(req, route, seconds())) {
    resp = *refused;
  } else if (metrics) {
    resp = {200, metrics_text(), "text/plain; version=0.0.4"};
  } else if (!route) {
    resp = path_known ? error_response(405, "Method " + req.method + " not allowed here", seconds())
                      : error_response(404,
                                       "Not found: no route for " + engine::show_text(req.method) +
                                           " " + engine::show_text(req.target.substr(0, qpos)),
                                       seconds());
  } else if (const size_t limit = route->handler == &Api::upload_snapshot
                                      ? options_.max_upload_bytes
                                      : options_.max_body_bytes;
             req.body.size() > limit) {
    resp = error_response(413,
                          "Payload too large: body of " + std::to_string(req.body.size()) +
                              " bytes exceeds the limit of " + std::to_string(limit),
                          seconds());
  } else {
    resp = call_handler(*route, call, seconds);
    note_issues(*route, call, resp.status, seconds());
  }
  record(route_name, resp.status, seconds());
  return resp;
}

bool is_snapshot_upload(std::string_view method, std::string_view target) {
  // Read on every request's header by the server: no allocation, no decoding (an encoded path
  // only keeps the ordinary limit).
  const std::string_view path = target.substr(0, target.find('?'));
  const std::string_view head = "/collections/", tail = "/snapshots/upload";
  if (method != "POST" || path.size() <= head.size() + tail.size() ||
      path.substr(0, head.size()) != head || path.substr(path.size() - tail.size()) != tail) {
    return false;
  }
  const std::string_view name = path.substr(head.size(), path.size() - head.size() - tail.size());
  return name.find('/') == std::string_view::npos;
}

Response Api::handle(const Request& req, Resolved* resolved) {
  // Every failure inside a handler is mapped to its status by call_handler; this is the last
  // line for anything else (building an answer included), so that no request ends the process.
  try {
    return answer(req, resolved);
  } catch (const std::exception& e) {
    return error_response(500, "Service internal error: " + engine::show_text(e.what(), 300), 0);
  } catch (...) {
    return error_response(500, "Service internal error", 0);
  }
}

void Api::record(const char* route, unsigned status, double secs) {
  std::lock_guard<std::mutex> g(metrics_mu_);
  ++requests_[{route, status}];
  const auto& b = latency_bounds();
  for (size_t i = 0; i < b.size(); ++i) {
    if (secs <= b[i]) {
      ++latency_buckets_[i];
      break;
    }
  }
  latency_sum_ += secs;
  ++latency_count_;
}

std::string Api::metrics_text() const {
  std::ostringstream os;
  {
    std::lock_guard<std::mutex> g(metrics_mu_);
    os << "# HELP waypoint_requests_total HTTP requests by route and status code.\n"
       << "# TYPE waypoint_requests_total counter\n";
    // By route name and status (the map's keys are the names' addresses).
    std::vector<std::pair<std::pair<std::string_view, unsigned>, uint64_t>> counts;
    for (const auto& [key, n] : requests_) counts.push_back({{key.first, key.second}, n});
    std::sort(counts.begin(), counts.end());
    for (const auto& [key, n] : counts) {
      os << "waypoint_requests_total{route=\"" << key.first << "\",code=\"" << key.second << "\"} "
         << n << "\n";
    }
    os << "# HELP waypoint_request_duration_seconds Time to answer a request.\n"
       << "# TYPE waypoint_request_duration_seconds histogram\n";
    uint64_t cumulative = 0;
    for (size_t i = 0; i < latency_bounds().size(); ++i) {
      cumulative += latency_buckets_[i];
      os << "waypoint_request_duration_seconds_bucket{le=\"" << latency_bounds()[i] << "\"} "
         << cumulative << "\n";
    }
    os << "waypoint_request_duration_seconds_bucket{le=\"+Inf\"} " << latency_count_ << "\n"
       << "waypoint_request_duration_seconds_sum " << latency_sum_ << "\n"
       << "waypoint_request_duration_seconds_count " << latency_count_ << "\n";
  }
  std::ostringstream points, progress, memory, tests;
  for (const std::string& name : engine_.names()) {
    try {
      auto col = engine_.collection(name);
      points << "waypoint_points{collection=\"" << name << "\"} " << col->size() << "\n";
      // A collection of sparse vectors alone has no index to build.
      const auto& shapes = col->vector_shapes();
      progress << "waypoint_index_build_progress{collection=\"" << name << "\"} "
               << (shapes.empty() ? 1.0 : col->index_status(shapes.front().name).progress) << "\n";
      const engine::MemoryUse m = col->memory();
      auto part = [&](const std::string& what, size_t bytes) {
        memory << "waypoint_memory_bytes{collection=\"" << name << "\",part=\"" << what << "\"} "
               << bytes << "\n";
      };
      for (const auto& [vector, bytes] : m.vectors) {
        part(vector.empty() ? "index" : "index:" + vector, bytes);
      }
      part("payloads", m.payloads);
      part("payload_indexes", m.payload_indexes);
      part("points", m.points);
      tests << "waypoint_filter_payload_tests_total{collection=\"" << name << "\"} "
            << col->filter_payload_tests() << "\n";
    } catch (const NotFoundError&) {
      // deleted meanwhile
    } catch (const InternalError&) {
      // did not open at start: nothing to measure
    }
  }
  os << "# HELP waypoint_points Points stored per collection.\n# TYPE waypoint_points gauge\n"
     << points.str()
     << "# HELP waypoint_index_build_progress Progress of the running index build (1: none).\n"
     << "# TYPE waypoint_index_build_progress gauge\n"
     << progress.str()
     << "# HELP waypoint_memory_bytes Estimated memory of a collection by part (index: vectors, "
        "codes and graph of a vector space; payloads held for filters; payload indexes; per-point "
        "tables).\n# TYPE waypoint_memory_bytes gauge\n"
     << memory.str()
     << "# HELP waypoint_filter_payload_tests_total Payloads filters have tested one by one (a "
        "filter on a key without a payload index tests many).\n"
     << "# TYPE waypoint_filter_payload_tests_total counter\n"
     << tests.str();
  if (transport_metrics_) os << transport_metrics_();
  return os.str();
}

json Api::root(const Call&) {
  return json{{"title", "waypoint - a Qdrant-compatible vector search engine"},
              {"version", "0.1.0"}};
}

// Qdrant's probe answers, word for word: health checkers match on them.
json Api::healthz(const Call&) {
  return "healthz check passed";
}

// Collections are loaded before the server listens, so a server that answers is ready.
json Api::readyz(const Call&) {
  return "all shards are ready";
}

json Api::get_issues(const Call&) {
  return issues_.report();
}

json Api::clear_issues(const Call&) {
  issues_.clear();
  return true;
}

namespace {

/// Appends the index suggestions of every "filter" object in `j` (a request body: its filter,
/// its searches' and prefetches' filters, ...), those that parse.
void filter_suggestions(const json& j, std::vector<engine::IndexSuggestion>& out) {
  if (j.is_array()) {
    for (const json& e : j) filter_suggestions(e, out);
    return;
  }
  if (!j.is_object()) return;
  for (const auto& [name, value] : j.items()) {
    if (name == "filter" && value.is_object()) {
      try {
        for (engine::IndexSuggestion& s : engine::Filter::parse(value).index_suggestions()) {
          out.push_back(std::move(s));
        }
      } catch (const UserError&) {  // not a filter this route reads
      }
    } else {
      filter_suggestions(value, out);
    }
  }
}

}  // namespace

void Api::note_issues(const Route& route, const Call& call, unsigned status, double secs) {
  const auto name = call.path.find("name");
  if (status != 200 || name == call.path.end()) return;
  try {
    if (route.handler == &Api::delete_collection) {
      issues_.solve_collection(name->second);
      return;
    }
    const bool creates_index = route.handler == &Api::create_payload_index;
    if (!creates_index && (secs < options_.slow_query_seconds || route.access != Access::kRead ||
                           call.body->empty())) {
      return;
    }
    const json body = json::parse(*call.body, nullptr, false);
    if (body.is_discarded()) return;
    const auto col = engine_.collection(name->second);  // an alias names its collection
    if (creates_index) {
      if (body.contains("field_name") && body["field_name"].is_string()) {
        issues_.solve_field(col->name(), body["field_name"]);
      }
      return;
    }
    std::vector<engine::IndexSuggestion> suggestions;
    filter_suggestions(body, suggestions);
    if (suggestions.empty()) return;
    const engine::CollectionConfig config = col->config();
    std::map<std::string, json> indexed;
    for (const auto& [key, schema] : config.payload_schema) {
      const auto params = config.text_params.find(key);
      indexed[key] = engine::payload_schema_json(
          schema, params == config.text_params.end() ? engine::TextParams{} : params->second);
    }
    issues_.unindexed(col->name(), suggestions, indexed);
  } catch (const std::exception&) {  // no such collection here (a cluster's): nothing to note
  }
}

json Api::cluster_status(const Call&) {
  if (!cluster_) return {{"status", "disabled"}};
  return cluster_->status();
}

json Api::collection_cluster(const Call& c) {
  // A single node (or an internal call for a local collection): one shard, here.
  const auto col = engine_.collection(c.path.at("name"));
  return {{"peer_id", cluster_ ? cluster_->id() : 0},
          {"shard_count", 1},
          {"local_shards", json::array({{{"shard_id", 0},
                                         {"points_count", col->size()},
                                         {"state", "Active"},
                                         {"applied_sequence", col->applied_sequence()},
                                         {"applied_term", col->applied_term()}}})},
          {"remote_shards", json::array()},
          {"shard_transfers", json::array()}};
}

json Api::update_collection_cluster(const Call& c) {
  engine_.collection(c.path.at("name"));  // 404 first
  throw UserError("cluster operations need a cluster (waypoint serve --cluster)");
}

json Api::cluster_shard_write(const Call& c) {
  if (!router_) throw NotFoundError("this node is not in a cluster");
  return router_->primary_write(c);
}

json Api::cluster_shard_apply(const Call& c) {
  if (!router_) throw NotFoundError("this node is not in a cluster");
  return router_->replica_apply(c);
}

json Api::cluster_shard_log(const Call& c) {
  if (!router_) throw NotFoundError("this node is not in a cluster");
  return router_->shard_log(c);
}

json Api::cluster_shard_activate(const Call& c) {
  if (!router_) throw NotFoundError("this node is not in a cluster");
  return router_->activate(c);
}

json Api::openapi(const Call&) {
  json paths = json::object();
  for (const Route& r : routes()) {
    std::string method = r.method;
    for (char& ch : method) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
    json op{{"summary", r.summary}, {"responses", {{"200", {{"description", "ok"}}}}}};
    json params = json::array();
    for (const std::string& part : split_path(r.pattern)) {
      if (part.front() == '{') {
        params.push_back({{"name", part.substr(1, part.size() - 2)},
                          {"in", "path"},
                          {"required", true},
                          {"schema", {{"type", "string"}}}});
      }
    }
    if (!params.empty()) op["parameters"] = params;
    paths[r.pattern][method] = op;
  }
  paths["/metrics"]["get"] = {{"summary", "Prometheus metrics (text)"},
                              {"responses", {{"200", {{"description", "ok"}}}}}};
  return json{{"openapi", "3.0.3"},
              {"info", {{"title", "waypoint"}, {"version", "0.1.0"}}},
              {"paths", paths}};
}

bool Api::wait_flag(const Call& c) {
  auto it = c.query.find("wait");
  if (it == c.query.end()) return false;
  WP_THROW_IF_NOT(it->second == "true" || it->second == "false" || it->second.empty(),
                  "wait: expected true or false, got '", engine::show_text(it->second), "'");
  return it->second != "false";
}

json Api::update_result(bool wait) {
  return json{{"operation_id", operation_id_++}, {"status", wait ? "completed" : "acknowledged"}};
}

}  // namespace wp::http
