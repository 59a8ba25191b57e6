#include "http/cluster_router.h"

#include <algorithm>
#include <future>
#include <random>
#include <set>

#include "engine/collection_config.h"
#include "engine/json_fields.h"
#include "engine/json_value.h"
#include "http/api.h"
#include "http/cluster_node.h"
#include "http/http_connection.h"
#include "http/qdrant_wire.h"
#include "http/request_parsing.h"
#include "index/error.h"

namespace wp::http {

using cluster::CollectionMap;
using cluster::ReplicaState;
using cluster::Shard;
using nlohmann::json;
namespace bhttp = boost::beast::http;

namespace {

constexpr char kCollectionsKey[] = "collections/";
constexpr size_t kMaxShards = 1024;
/// Points of one answer a coordinator merges: as the single-node limit on an answer.
constexpr size_t kMaxMerged = kMaxAnswerPoints;

std::string random_uid() {
  std::random_device rd;
  std::mt19937_64 rng((uint64_t{rd()} << 32) ^ rd());
  char buf[17];
  std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(rng()));
  return buf;
}

/// The message of an error answer, without the status word the Api put before it.
std::string message_of(const json& body) {
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
[[noreturn]] void rethrow(unsigned status, const json& body, const std::string& context) {
  const std::string m = context + message_of(body);
  if (status == 404) throw NotFoundError(m);
  if (status == 409) throw ConflictError(m);
  if (status == 413) throw TooLargeError(m);
  if (status >= 400 && status < 500) throw UserError(m);
  if (status == 503) throw UnavailableError(m);
  throw InternalError(m);
}

/// The `result` of a successful answer, else the error thrown.
json result_of(unsigned status, json body, const std::string& context) {
  if (status != 200) rethrow(status, body, context);
  return std::move(body["result"]);
}

/// Orders scored points best first: by score (ascending distance for Euclid), then id.
void sort_scored(std::vector<json>& points, bool ascending) {
  std::stable_sort(points.begin(), points.end(), [&](const json& a, const json& b) {
    const double sa = a.value("score", 0.0), sb = b.value("score", 0.0);
    if (sa != sb) return ascending ? sa < sb : sa > sb;
    return a.at("id").dump() < b.at("id").dump();
  });
}

/// The merged page of scored lists: sorted, `offset` skipped, at most `limit`.
json merge_scored(const std::vector<json>& lists, bool ascending, size_t offset, size_t limit) {
  std::vector<json> all;
  for (const json& l : lists) {
    if (!l.is_array()) continue;
    for (const json& p : l) all.push_back(p);
  }
  sort_scored(all, ascending);
  json out = json::array();
  for (size_t i = offset; i < all.size() && out.size() < limit; ++i) out.push_back(all[i]);
  return out;
}

/// A search request rewritten for one shard: `limit + offset` points from offset 0. Returns
/// the original limit and offset (defaults when absent; the shard checks bad values).
std::pair<size_t, size_t> widen(json& request, size_t default_limit) {
  size_t limit = default_limit, offset = 0;
  if (request.contains("limit") && request["limit"].is_number_unsigned()) {
    limit = request["limit"].get<size_t>();
  }
  if (request.contains("offset") && request["offset"].is_number_unsigned()) {
    offset = request["offset"].get<size_t>();
  }
  if (limit <= kMaxMerged && offset <= kMaxMerged) {
    request["limit"] = limit + offset;
    if (request.contains("offset")) request["offset"] = 0;
  }
  return {limit, offset};
}

/// The scroll order of ids: the engine's (PointId::key()).
std::string id_key(const json& id) {
  return engine::PointId::from_json(id, "id").key();
}

/// Renames an operation's fields in a shard's error back to the request's: op k of the shard's
/// batch is op `ops[k]` of the request, its points[j] the request's `points[k][j]`.
std::string restore_fields(const std::string& m, const std::vector<size_t>& ops,
                           const std::vector<std::vector<size_t>>& points, bool single) {
  // An index in brackets at `at` (after `open`), or npos.
  auto index_at = [&](const std::string& text, size_t at, size_t& end) -> size_t {
    end = text.find(']', at);
    if (end == std::string::npos || end == at || end - at > 9) return std::string::npos;
    const std::string digits = text.substr(at, end - at);
    if (digits.find_first_not_of("0123456789") != std::string::npos) return std::string::npos;
    return std::stoul(digits);
  };
  const std::string head = "operations[";
  if (m.compare(0, head.size(), head) != 0) return m;
  size_t close;
  const size_t k = index_at(m, head.size(), close);
  if (k == std::string::npos || k >= ops.size() || close + 1 >= m.size() || m[close + 1] != '.') {
    return m;
  }
  const size_t dot = m.find('.', close + 2);
  if (dot == std::string::npos) return m;
  const std::string kind = m.substr(close + 2, dot - close - 2);
  std::string rest = m.substr(dot + 1);
  for (const std::string field : {"points[", "batch.ids[", "batch.vectors[", "batch.payloads["}) {
    if (rest.compare(0, field.size(), field) != 0) continue;
    size_t end;
    const size_t j = index_at(rest, field.size(), end);
    if (j != std::string::npos && j < points[k].size()) {
      rest = field + std::to_string(points[k][j]) + rest.substr(end);
    }
    break;
  }
  return (single ? "" : "operations[" + std::to_string(ops[k]) + "]." + kind + ".") + rest;
}

}  // namespace

// ---------------------------------------------------------------------------------------------

ClusterRouter::ClusterRouter(engine::Engine& engine, ClusterNode& node, Api& api,
                             std::string api_key)
    : engine_(engine),
      node_(node),
      api_(api),
      api_key_(std::move(api_key)),
      etcd_(node.options().etcd) {
  node_.on_change([this] {
    {
      std::lock_guard<std::mutex> lock(reconcile_mu_);
      reconcile_due_ = true;
    }
    reconcile_cv_.notify_all();
  });
  reconciler_ = std::thread([this] {
    std::unique_lock<std::mutex> lock(reconcile_mu_);
    while (!stopping_) {
      reconcile_cv_.wait_for(lock, std::chrono::seconds(2),
                             [&] { return stopping_ || reconcile_due_; });
      if (stopping_) break;
      reconcile_due_ = false;
      lock.unlock();
      try {
        reconcile();
      } catch (const std::exception& e) {
        std::fprintf(stderr, "waypoint: cluster reconcile: %s\n", e.what());
      }
      lock.lock();
    }
  });
}

ClusterRouter::~ClusterRouter() {
  node_.on_change(nullptr);
  {
    std::lock_guard<std::mutex> lock(reconcile_mu_);
    stopping_ = true;
  }
  reconcile_cv_.notify_all();
  reconciler_.join();
}

bool ClusterRouter::serves(const std::string& method, const std::string& pattern) {
  (void)method;
  return pattern == "/collections" || pattern == "/aliases" ||
         pattern.compare(0, 13, "/collections/") == 0;
}

json ClusterRouter::call(const std::string& method, const std::string& pattern, const Call& c) {
  const std::string route = method + " " + pattern;
  if (route == "GET /collections") return list();
  const auto name_it = c.path.find("name");
  WP_THROW_IF_NOT(name_it != c.path.end(), route,
                  " is not served on a cluster yet (aliases need a cluster-wide table)");
  const std::string& name = name_it->second;
  if (route == "PUT /collections/{name}") return create(name, c);
  if (route == "DELETE /collections/{name}") return remove(name);
  if (route == "GET /collections/{name}") return info(name);
  if (route == "GET /collections/{name}/exists") return json{{"exists", find(name).has_value()}};
  if (route == "GET /collections/{name}/cluster") return collection_cluster(name);
  if (route == "POST /collections/{name}/cluster") return operate(name, c);
  static const std::set<std::string> writes{"PUT /collections/{name}/points",
                                            "POST /collections/{name}/points/delete",
                                            "PUT /collections/{name}/points/vectors",
                                            "POST /collections/{name}/points/vectors/delete",
                                            "POST /collections/{name}/points/payload",
                                            "PUT /collections/{name}/points/payload",
                                            "POST /collections/{name}/points/payload/delete",
                                            "POST /collections/{name}/points/payload/clear",
                                            "POST /collections/{name}/points/batch"};
  if (writes.count(route)) return write(pattern + " " + method, c);
  if (route == "POST /collections/{name}/points/search" ||
      route == "POST /collections/{name}/points/search/batch" ||
      route == "POST /collections/{name}/points/query" ||
      route == "POST /collections/{name}/points/query/batch") {
    return search(pattern, c);
  }
  if (route == "PUT /collections/{name}/index" ||
      route == "DELETE /collections/{name}/index/{field_name}") {
    return payload_index(method, c);
  }
  if (route == "POST /collections/{name}/points") return retrieve(c);
  if (route == "GET /collections/{name}/points/{id}") return get_point(c);
  if (route == "POST /collections/{name}/points/count") return count(c);
  if (route == "POST /collections/{name}/points/scroll") return scroll(c);
  need(name);  // a 404 first for a collection that does not exist
  throw UserError(route + " is not served on a sharded collection yet");
}

// ---------------------------------------------------------------------------------------------
// Transport

ClusterRouter::Answer ClusterRouter::forward(uint64_t node, const std::string& method,
                                             const std::string& target, const json& body,
                                             std::chrono::milliseconds timeout) {
  const std::string text = body.is_null() ? "" : body.dump();
  if (node == node_.id()) {
    Request r;
    r.method = method;
    r.target = target;
    r.body = text;
    r.api_key = api_key_;
    r.internal = true;
    const Response resp = api_.handle(r);
    json parsed = json::parse(resp.body, nullptr, false);
    return {resp.status, parsed.is_discarded() ? json(resp.body) : std::move(parsed)};
  }
  const auto peers = node_.peers();
  const auto peer = peers.find(node);
  if (peer == peers.end()) {
    throw TransportError("node " + std::to_string(node) + " is not in the cluster now");
  }
  const std::string& url = peer->second;
  for (int attempt = 0;; ++attempt) {
    std::unique_ptr<Connection> conn;
    {
      std::lock_guard<std::mutex> lock(pool_mu_);
      auto& idle = pool_[url];
      if (!idle.empty()) {
        conn = std::move(idle.back());
        idle.pop_back();
      }
    }
    const bool reused = conn != nullptr;
    if (!conn) {
      const auto [host, port] = parse_endpoint(url);
      conn = std::make_unique<Connection>(host, port);
    }
    try {
      if (!conn->open()) conn->connect(std::chrono::seconds(2));
      Connection::Parser parser;
      parser.body_limit(size_t{1} << 30);
      std::vector<std::pair<std::string, std::string>> headers{{"waypoint-internal", "1"}};
      if (!api_key_.empty()) headers.emplace_back("api-key", api_key_);
      conn->send(bhttp::string_to_verb(method), target, text, parser, timeout, nullptr, headers);
      conn->read_body(parser, timeout);
      const auto& res = parser.get();
      Answer a;
      a.status = res.result_int();
      a.body = json::parse(res.body(), nullptr, false);
      if (a.body.is_discarded()) a.body = json(res.body());
      if (res.keep_alive()) {
        std::lock_guard<std::mutex> lock(pool_mu_);
        pool_[url].push_back(std::move(conn));
      }
      return a;
    } catch (const TransportError& e) {
      if (!reused || attempt > 0) {
        throw TransportError("node " + std::to_string(node) + " (" + url + "): " + e.what());
      }
    }
  }
}

ClusterRouter::Answer ClusterRouter::read_shard(const CollectionMap& m, uint32_t s,
                                                const std::string& method, const std::string& path,
                                                const json& body) {
  const Shard& shard = m.shards.at(s);
  std::vector<uint64_t> order;
  const auto self = shard.replicas.find(node_.id());
  if (self != shard.replicas.end() && self->second == ReplicaState::kActive) {
    order.push_back(node_.id());
  }
  for (const auto& [node, state] : shard.replicas) {
    if (state == ReplicaState::kActive && node != node_.id()) order.push_back(node);
  }
  std::string failures;
  for (uint64_t node : order) {
    try {
      Answer a = forward(node, method, "/collections/" + m.local_name(s) + path, body);
      if (a.status < 500) return a;
      failures += "; node " + std::to_string(node) + ": " + message_of(a.body);
    } catch (const TransportError& e) {
      failures += std::string("; ") + e.what();
    }
  }
  throw UnavailableError("shard " + std::to_string(s) + " of collection `" + m.name +
                         "` has no active replica that answers" +
                         (order.empty() ? " (none is active)" : failures));
}

std::vector<json> ClusterRouter::read_all(const CollectionMap& m, const std::string& method,
                                          const std::string& path,
                                          const std::vector<json>& bodies) {
  // Shards another node serves are asked at once, each on a thread of its own; those this node
  // holds (an active replica here) are read on this thread meanwhile.
  auto local = [&](uint32_t s) {
    const auto it = m.shards[s].replicas.find(node_.id());
    return it != m.shards[s].replicas.end() && it->second == ReplicaState::kActive;
  };
  auto read = [&, this](uint32_t s) {
    return read_shard(m, s, method, path, bodies.size() == 1 ? bodies[0] : bodies[s]);
  };
  std::vector<std::future<Answer>> futures(m.shard_number);
  for (uint32_t s = 0; s < m.shard_number; ++s) {
    if (!local(s)) futures[s] = std::async(std::launch::async, read, s);
  }
  std::vector<json> out(m.shard_number);
  std::exception_ptr first;
  for (uint32_t s = 0; s < m.shard_number; ++s) {
    try {
      Answer a = local(s) ? read(s) : futures[s].get();
      out[s] = result_of(a.status, std::move(a.body), "");
    } catch (...) {
      if (!first) first = std::current_exception();
    }
  }
  if (first) std::rethrow_exception(first);
  return out;
}

// ---------------------------------------------------------------------------------------------
// The map

std::optional<CollectionMap> ClusterRouter::find(const std::string& name) const {
  const auto kv = node_.entry(kCollectionsKey + name);
  if (!kv) return std::nullopt;
  CollectionMap m = CollectionMap::from_json(name, json::parse(kv->value, nullptr, false));
  m.revision = kv->mod_revision;
  return m;
}

CollectionMap ClusterRouter::need(const std::string& name) const {
  auto m = find(name);
  if (!m) throw NotFoundError("Collection `" + engine::show_text(name) + "` doesn't exist!");
  return std::move(*m);
}

bool ClusterRouter::update_map(const std::string& name,
                               const std::function<bool(CollectionMap&)>& change) {
  const std::string key = node_.options().prefix + kCollectionsKey + name;
  for (int attempt = 0; attempt < 20; ++attempt) {
    const etcd::Range r = etcd_.get(key);
    if (r.kvs.empty()) return false;
    CollectionMap m = CollectionMap::from_json(name, json::parse(r.kvs[0].value, nullptr, false));
    if (!change(m)) return true;
    const etcd::TxnResult t = etcd_.txn({etcd::Compare::mod_revision(key, r.kvs[0].mod_revision)},
                                        {etcd::Op::put(key, m.to_json().dump())});
    if (t.succeeded) {
      node_.wait_for(t.revision, std::chrono::seconds(5));
      return true;
    }
  }
  throw UnavailableError("collection `" + name + "`: its shard map changed 20 times meanwhile");
}

// ---------------------------------------------------------------------------------------------
// Collections

json ClusterRouter::create(const std::string& name, const Call& c) {
  engine::validate_collection_name(name);
  WP_THROW_IF_NOT(name.size() + 24 <= engine::kMaxCollectionName, "collection name ",
                  engine::show_json(name), " is too long for a cluster: at most ",
                  engine::kMaxCollectionName - 24, " characters");
  json config = parse_body(*c.body);
  WP_THROW_IF_NOT(config.is_object(), "body: expected a JSON object");
  const std::map<uint64_t, std::string> peers = node_.peers();
  std::vector<uint64_t> nodes;
  for (const auto& [id, url] : peers) nodes.push_back(id);
  CollectionMap m;
  m.name = name;
  m.uid = random_uid();
  m.shard_number = static_cast<uint32_t>(
      engine::get_count(config, "shard_number", "", nodes.size(), 1, kMaxShards));
  m.replication_factor =
      static_cast<uint32_t>(engine::get_count(config, "replication_factor", "", 1, 1, 1000));
  m.write_consistency_factor =
      static_cast<uint32_t>(engine::get_count(config, "write_consistency_factor", "", 1, 1, 1000));
  WP_THROW_IF_NOT(m.replication_factor <= nodes.size(),
                  "replication_factor: ", m.replication_factor, " is more than the ", nodes.size(),
                  " live nodes of the cluster");
  WP_THROW_IF_NOT(m.write_consistency_factor <= m.replication_factor,
                  "write_consistency_factor: ", m.write_consistency_factor,
                  " is more than replication_factor ", m.replication_factor);
  if (config.contains("sharding_method") && !config["sharding_method"].is_null()) {
    WP_THROW_IF_NOT(config["sharding_method"] == "auto",
                    "sharding_method: only \"auto\" is served (shards by point id)");
  }
  for (const char* k :
       {"shard_number", "replication_factor", "write_consistency_factor", "sharding_method"}) {
    config.erase(k);
  }
  collection_config_from_qdrant(config);  // checks the rest, naming the field
  m.config = config;
  m.shards = cluster::place(m.shard_number, m.replication_factor, nodes);

  const std::string key = node_.options().prefix + kCollectionsKey + name;
  const etcd::TxnResult t =
      etcd_.txn({etcd::Compare::missing(key)}, {etcd::Op::put(key, m.to_json().dump())});
  if (!t.succeeded) {
    throw ConflictError("collection `" + engine::show_text(name) + "` already exists");
  }
  node_.wait_for(t.revision, std::chrono::seconds(5));
  // Answer once every replica has its shard, so that the first write finds them.
  const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(15);
  for (uint32_t s = 0; s < m.shard_number; ++s) {
    for (const auto& [replica, state] : m.shards[s].replicas) {
      while (true) {
        try {
          if (forward(replica, "GET", "/collections/" + m.local_name(s), nullptr).status == 200) {
            break;
          }
        } catch (const TransportError&) {
        }
        if (std::chrono::steady_clock::now() > until) {
          throw UnavailableError("collection `" + name + "` is created, but node " +
                                 std::to_string(replica) + " has not made shard " +
                                 std::to_string(s) + " within 15 s");
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
      }
    }
  }
  return true;
}

json ClusterRouter::remove(const std::string& name) {
  const std::string key = node_.options().prefix + kCollectionsKey + name;
  const etcd::Range r = etcd_.get(key);
  if (r.kvs.empty()) return false;
  const etcd::TxnResult t =
      etcd_.txn({etcd::Compare::mod_revision(key, r.kvs[0].mod_revision)}, {etcd::Op::erase(key)});
  if (!t.succeeded) return remove(name);  // changed meanwhile: read it again
  node_.wait_for(t.revision, std::chrono::seconds(5));
  reconcile();
  return true;
}

json ClusterRouter::list() const {
  json out = json::array();
  for (const etcd::KeyValue& kv : node_.entries(kCollectionsKey)) {
    out.push_back({{"name", kv.key.substr(std::strlen(kCollectionsKey))}});
  }
  return json{{"collections", out}};
}

json ClusterRouter::info(const std::string& name) {
  const CollectionMap m = need(name);
  const std::vector<json> shards = read_all(m, "GET", "", {json()});
  json out = shards[0];
  size_t points = 0, vectors = 0, indexed = 0;
  for (const json& s : shards) {
    points += s.value("points_count", size_t{0});
    vectors += s.value("vectors_count", size_t{0});
    indexed += s.value("indexed_vectors_count", size_t{0});
  }
  out["points_count"] = points;
  if (out.contains("vectors_count")) out["vectors_count"] = vectors;
  if (out.contains("indexed_vectors_count")) out["indexed_vectors_count"] = indexed;
  bool degraded = false;
  for (const Shard& s : m.shards) {
    for (const auto& [node, state] : s.replicas) degraded |= state != ReplicaState::kActive;
  }
  if (degraded && out.value("status", "") == "green") out["status"] = "yellow";
  json& params = out["config"]["params"];
  params["shard_number"] = m.shard_number;
  params["replication_factor"] = m.replication_factor;
  params["write_consistency_factor"] = m.write_consistency_factor;
  return out;
}

json ClusterRouter::collection_cluster(const std::string& name) {
  const CollectionMap m = need(name);
  json local = json::array(), remote = json::array();
  for (uint32_t s = 0; s < m.shard_number; ++s) {
    for (const auto& [node, state] : m.shards[s].replicas) {
      if (node == node_.id()) {
        const auto col =
            engine_.exists(m.local_name(s)) ? engine_.collection(m.local_name(s)) : nullptr;
        local.push_back({{"shard_id", s},
                         {"collection", m.local_name(s)},
                         {"points_count", col ? col->size() : 0},
                         {"state", cluster::state_name(state)},
                         {"primary", m.shards[s].primary == node},
                         {"epoch", m.shards[s].epoch},
                         {"applied_sequence", col ? col->applied_sequence() : 0}});
      } else {
        remote.push_back({{"shard_id", s},
                          {"peer_id", node},
                          {"state", cluster::state_name(state)},
                          {"primary", m.shards[s].primary == node}});
      }
    }
  }
  json transfers = json::array();
  for (uint32_t s = 0; s < m.shard_number; ++s) {
    for (const auto& [node, state] : m.shards[s].replicas) {
      if (state != ReplicaState::kSyncing) continue;
      const auto move = m.shards[s].moves.find(node);
      transfers.push_back({{"shard_id", s},
                           {"from", m.shards[s].primary},
                           {"to", node},
                           {"sync", move == m.shards[s].moves.end()},
                           {"method", "stream_records"}});
    }
  }
  return {{"peer_id", node_.id()},
          {"shard_count", m.shard_number},
          {"local_shards", local},
          {"remote_shards", remote},
          {"shard_transfers", transfers}};
}

std::shared_ptr<engine::Collection> ClusterRouter::ensure_local(const CollectionMap& m,
                                                                uint32_t s) {
  const std::string local = m.local_name(s);
  std::lock_guard<std::mutex> lock(local_mu_);
  if (!engine_.exists(local)) {
    json config = m.config;
    const json indexes = config.value("waypoint_payload_indexes", json::object());
    config.erase("waypoint_payload_indexes");
    engine_.create_collection(local, collection_config_from_qdrant(config));
    for (const auto& [field, body] : indexes.items()) {
      Request r;
      r.method = "PUT";
      r.target = "/collections/" + local + "/index";
      r.body = body.dump();
      r.api_key = api_key_;
      r.internal = true;
      api_.handle(r);
    }
  }
  return engine_.collection(local);
}

std::mutex& ClusterRouter::shard_mutex(const std::string& local) {
  std::lock_guard<std::mutex> lock(shards_mu_);
  auto& m = shard_mutexes_[local];
  if (!m) m = std::make_unique<std::mutex>();
  return *m;
}

void ClusterRouter::reconcile() {
  std::map<std::string, std::pair<CollectionMap, uint32_t>> wanted;  // local name -> map, shard
  std::set<std::string> uids;
  for (const etcd::KeyValue& kv : node_.entries(kCollectionsKey)) {
    const std::string name = kv.key.substr(std::strlen(kCollectionsKey));
    CollectionMap m;
    try {
      m = CollectionMap::from_json(name, json::parse(kv.value, nullptr, false));
    } catch (const std::exception& e) {
      std::fprintf(stderr, "waypoint: cluster: %s\n", e.what());
      continue;
    }
    uids.insert(m.uid);
    for (uint32_t s = 0; s < m.shard_number; ++s) {
      if (m.shards[s].replicas.count(node_.id()))
        wanted.emplace(m.local_name(s), std::make_pair(m, s));
    }
  }
  for (const auto& [local, which] : wanted) {
    if (engine_.exists(local)) continue;
    try {
      ensure_local(which.first, which.second);
    } catch (const std::exception& e) {
      std::fprintf(stderr, "waypoint: cluster: cannot create shard %s: %s\n", local.c_str(),
                   e.what());
    }
  }
  // Nodes that left: their replicas dead, their shards a new primary. Not while this node's
  // own lease is in doubt (its view of who left may be what is stale).
  if (!node_.fenced()) {
    const auto peers = node_.peers();
    for (const auto& kv : node_.entries(kCollectionsKey)) {
      try {
        fail_over(CollectionMap::from_json(kv.key.substr(std::strlen(kCollectionsKey)),
                                           json::parse(kv.value, nullptr, false)),
                  peers);
      } catch (const std::exception& e) {
        std::fprintf(stderr, "waypoint: cluster: failover: %s\n", e.what());
      }
    }
  }
  // This node's replicas that missed writes catch up.
  for (const auto& [local, which] : wanted) {
    const Shard& sh = which.first.shards[which.second];
    if (sh.replicas.at(node_.id()) == ReplicaState::kActive) continue;
    try {
      catch_up(which.first.name, which.second);
    } catch (const std::exception& e) {
      std::fprintf(stderr, "waypoint: cluster: catching up %s: %s\n", local.c_str(), e.what());
    }
  }
  // Shards of collections deleted from the map, or no longer held by this node.
  for (const std::string& local : engine_.names()) {
    std::string uid;
    uint32_t s;
    if (!cluster::parse_local_name(local, uid, s) || wanted.count(local)) continue;
    std::lock_guard<std::mutex> lock(local_mu_);
    engine_.delete_collection(local);
  }
}

// ---------------------------------------------------------------------------------------------
// Writes

json ClusterRouter::write(const std::string& route, const Call& c) {
  const std::string& name = c.path.at("name");
  CollectionMap m = need(name);
  const json body = parse_body(*c.body);
  static const std::map<std::string, std::string> kOperation{
      {"/collections/{name}/points PUT", "upsert"},
      {"/collections/{name}/points/delete POST", "delete"},
      {"/collections/{name}/points/vectors PUT", "update_vectors"},
      {"/collections/{name}/points/vectors/delete POST", "delete_vectors"},
      {"/collections/{name}/points/payload POST", "set_payload"},
      {"/collections/{name}/points/payload PUT", "overwrite_payload"},
      {"/collections/{name}/points/payload/delete POST", "delete_payload"},
      {"/collections/{name}/points/payload/clear POST", "clear_payload"}};
  const auto single = kOperation.find(route);
  json ops = json::array();
  if (single != kOperation.end()) {
    ops.push_back({{single->second, body}});
  } else {
    WP_THROW_IF_NOT(
        body.is_object() && body.contains("operations") && body["operations"].is_array(),
        "operations: expected an array of {\"upsert\" | \"delete\" | ...: body}");
    ops = body["operations"];
    WP_THROW_IF_NOT(ops.size() <= kMaxBatchOperations, "operations: at most ", kMaxBatchOperations,
                    " per request, got ", ops.size());
  }
  // Vectors of the wrong size are refused here, before any shard writes anything: the split
  // below would otherwise let the shards without the bad point apply their part.
  json plain = m.config;
  plain.erase("waypoint_payload_indexes");
  const engine::CollectionConfig config = collection_config_from_qdrant(plain);
  auto check_vector = [&](const json& v, const std::string& name, const std::string& field) {
    const auto it = config.vectors.find(name);
    if (it == config.vectors.end() || !v.is_array()) return;  // the shard names what is wrong
    WP_THROW_IF_NOT(v.size() == it->second.dim, field, ": expected dimension ", it->second.dim,
                    ", got ", v.size());
  };
  auto check_vectors = [&](const json& v, const std::string& field) {
    if (v.is_array()) {
      check_vector(v, "", field);
    } else if (v.is_object()) {
      for (const auto& [name, one] : v.items()) check_vector(one, name, field + "." + name);
    }
  };
  // Split every operation by shard, remembering where each part came from.
  struct Part {
    json ops = json::array();
    std::vector<size_t> op_index;
    std::vector<std::vector<size_t>> point_index;
  };
  std::vector<Part> parts(m.shard_number);
  for (size_t i = 0; i < ops.size(); ++i) {
    const std::string at =
        single != kOperation.end() ? "" : "operations[" + std::to_string(i) + "]";
    const json& op = ops[i];
    WP_THROW_IF_NOT(op.is_object() && op.size() == 1, at.empty() ? "body" : at,
                    ": expected one operation, such as {\"upsert\": {\"points\": [...]}}");
    const std::string kind = op.begin().key();
    const json& ob = op.begin().value();
    const std::string where = at.empty() ? "" : at + "." + kind + ".";
    std::vector<json> split(m.shard_number);
    std::vector<std::vector<size_t>> index(m.shard_number);
    if (ob.is_object() && ob.contains("points") && ob["points"].is_array()) {
      const json& points = ob["points"];
      for (size_t j = 0; j < points.size(); ++j) {
        const bool object = points[j].is_object();
        const std::string field =
            where + "points[" + std::to_string(j) + "]" + (object ? ".id" : "");
        WP_THROW_IF_NOT(!object || points[j].contains("id"), field, ": missing");
        const uint32_t s =
            m.shard_of(engine::PointId::from_json(object ? points[j]["id"] : points[j], field));
        if (split[s].is_null()) {
          split[s] = ob;
          split[s]["points"] = json::array();
        }
        if (object && points[j].contains("vector") &&
            (kind == "upsert" || kind == "update_vectors")) {
          check_vectors(points[j]["vector"], where + "points[" + std::to_string(j) + "].vector");
        }
        split[s]["points"].push_back(points[j]);
        index[s].push_back(j);
      }
    } else if (ob.is_object() && ob.contains("batch") && ob["batch"].is_object()) {
      const json& b = ob["batch"];
      WP_THROW_IF_NOT(b.contains("ids") && b["ids"].is_array(), where,
                      "batch.ids: expected an array");
      const json& ids = b["ids"];
      for (size_t j = 0; j < ids.size(); ++j) {
        const uint32_t s = m.shard_of(
            engine::PointId::from_json(ids[j], where + "batch.ids[" + std::to_string(j) + "]"));
        if (split[s].is_null()) {
          split[s] = ob;
          json& sb = split[s]["batch"];
          sb["ids"] = json::array();
          if (sb.contains("payloads") && sb["payloads"].is_array()) sb["payloads"] = json::array();
          if (sb.contains("vectors") && sb["vectors"].is_array()) sb["vectors"] = json::array();
          if (sb.contains("vectors") && sb["vectors"].is_object()) {
            for (auto& [vname, list] : sb["vectors"].items()) list = json::array();
          }
        }
        json& sb = split[s]["batch"];
        sb["ids"].push_back(ids[j]);
        auto take = [&](const json& from, json& to) {
          if (from.is_array() && to.is_array() && j < from.size()) to.push_back(from[j]);
        };
        if (b.contains("payloads")) take(b["payloads"], sb["payloads"]);
        if (b.contains("vectors") && b["vectors"].is_array() && j < b["vectors"].size()) {
          check_vector(b["vectors"][j], "", where + "batch.vectors[" + std::to_string(j) + "]");
        }
        if (b.contains("vectors") && b["vectors"].is_array()) take(b["vectors"], sb["vectors"]);
        if (b.contains("vectors") && b["vectors"].is_object()) {
          for (const auto& [vname, list] : b["vectors"].items()) take(list, sb["vectors"][vname]);
        }
        index[s].push_back(j);
      }
    } else {
      // By filter (or malformed, which every shard refuses alike): every shard.
      for (uint32_t s = 0; s < m.shard_number; ++s) split[s] = ob;
    }
    for (uint32_t s = 0; s < m.shard_number; ++s) {
      if (split[s].is_null()) continue;
      parts[s].ops.push_back({{kind, std::move(split[s])}});
      parts[s].op_index.push_back(i);
      parts[s].point_index.push_back(std::move(index[s]));
    }
  }
  // To every shard's primary at once; a stale epoch (the map moved on) is retried on the new map.
  std::vector<std::future<void>> futures;
  for (uint32_t s = 0; s < m.shard_number; ++s) {
    if (parts[s].ops.empty()) continue;
    futures.push_back(std::async(std::launch::async, [&, s] {
      const Part& p = parts[s];
      CollectionMap current = m;
      // A primary that does not answer may be dead: its shard gets a new primary once its
      // lease runs out. Until then (and a little longer) the write is sent again.
      const auto give_up =
          std::chrono::steady_clock::now() + std::chrono::seconds(node_.options().lease_ttl + 5);
      for (int attempt = 0;; ++attempt) {
        const Shard& shard = current.shards[s];
        Answer a;
        bool unreachable = false;
        try {
          a = forward(
              shard.primary, "POST",
              "/waypoint/cluster/collections/" + name + "/shards/" + std::to_string(s) + "/write",
              {{"uid", current.uid}, {"epoch", shard.epoch}, {"operations", p.ops}});
        } catch (const TransportError& e) {
          unreachable = true;
          a.status = 503;
          a.body = {{"status", {{"error", e.what()}}}};
        }
        if (a.status == 200) return;
        // 409: the map moved on (a new epoch or primary) and this node's copy had not yet.
        if ((a.status == 409 || unreachable) && std::chrono::steady_clock::now() < give_up) {
          std::this_thread::sleep_for(std::chrono::milliseconds(std::min(50 * (attempt + 1), 500)));
          current = need(name);
          WP_THROW_IF_NOT(current.uid == m.uid, "collection `", name,
                          "` was deleted and created again meanwhile");
          continue;
        }
        const std::string context =
            a.status >= 500 ? "shard " + std::to_string(s) + " of collection `" + name + "`: " : "";
        json body = a.body;
        if (body.is_object() && body.contains("status") && body["status"].is_object()) {
          body["status"]["error"] = restore_fields(message_of(body), p.op_index, p.point_index,
                                                   single != kOperation.end());
        }
        rethrow(a.status, body, context);
      }
    }));
  }
  std::exception_ptr first;
  for (auto& f : futures) {
    try {
      f.get();
    } catch (...) {
      if (!first) first = std::current_exception();
    }
  }
  if (first) std::rethrow_exception(first);
  const bool wait = c.query.count("wait") && c.query.at("wait") == "true";
  auto result = [&] {
    return json{{"operation_id", operation_id_++}, {"status", wait ? "completed" : "acknowledged"}};
  };
  if (single != kOperation.end()) return result();
  json results = json::array();
  for (size_t i = 0; i < ops.size(); ++i) results.push_back(result());
  return results;
}

uint32_t ClusterRouter::shard_param(const Call& c, const CollectionMap& m) {
  const std::string& text = c.path.at("shard");
  WP_THROW_IF_NOT(!text.empty() && text.size() <= 6 &&
                      text.find_first_not_of("0123456789") == std::string::npos &&
                      std::stoul(text) < m.shard_number,
                  "shard: expected 0..", m.shard_number - 1, ", got '", engine::show_text(text),
                  "'");
  return static_cast<uint32_t>(std::stoul(text));
}

void ClusterRouter::apply_numbered(const CollectionMap& m, uint32_t s, uint64_t seq, uint64_t term,
                                   const json& operations) {
  const std::string local = m.local_name(s);
  api_.apply_sequenced(local, json{{"operations", operations}}, seq, term);
  constexpr size_t kMaxEntries = 100000, kMaxBytes = size_t{64} << 20;
  const size_t bytes = operations.dump().size();
  std::lock_guard<std::mutex> lock(logs_mu_);
  ShardLog& log = logs_[local];
  if (!log.entries.empty() && log.entries.back().seq + 1 != seq) {
    log.entries.clear();  // not contiguous (a snapshot came between): start again
    log.bytes = 0;
  }
  log.entries.push_back({seq, term, operations, bytes});
  log.bytes += bytes;
  while (log.entries.size() > kMaxEntries || log.bytes > kMaxBytes) {
    log.bytes -= log.entries.front().bytes;
    log.entries.pop_front();
  }
}

json ClusterRouter::primary_write(const Call& c) {
  const std::string& name = c.path.at("name");
  const CollectionMap seen = need(name);
  const json body = parse_body(*c.body);
  WP_THROW_IF_NOT(body.is_object() && body.value("uid", "") == seen.uid,
                  "uid: this write is for another collection of the name `", name, "`");
  const uint32_t s = shard_param(c, seen);
  // The shard's order first, then the map: a change made while holding it (a replica marked
  // dead, a move completed and the primary handed over) is seen here.
  std::lock_guard<std::mutex> order(shard_mutex(seen.local_name(s)));
  const CollectionMap m = need(name);
  WP_THROW_IF_NOT(m.uid == seen.uid, "collection `", name, "` was deleted and created again");
  const Shard& shard = m.shards[s];
  const uint64_t epoch = engine::get_count(body, "epoch", "", 0, 0, UINT64_MAX);
  if (shard.primary != node_.id()) {
    throw ConflictError("node " + std::to_string(node_.id()) + " is not the primary of shard " +
                        std::to_string(s) + " (node " + std::to_string(shard.primary) +
                        " is, at epoch " + std::to_string(shard.epoch) + ")");
  }
  if (epoch != shard.epoch) {
    throw ConflictError("epoch: the write carries epoch " + std::to_string(epoch) + ", shard " +
                        std::to_string(s) + " is at epoch " + std::to_string(shard.epoch));
  }
  if (node_.fenced()) {
    throw UnavailableError("node " + std::to_string(node_.id()) +
                           " cannot renew its etcd lease: it does not act as a primary now");
  }
  const auto local = ensure_local(m, s);
  const uint64_t seq = local->applied_sequence() + 1, prev_term = local->applied_term();
  const json& operations = body.at("operations");
  apply_numbered(m, s, seq, shard.epoch, operations);

  // To the other replicas; a dead one is not sent to (it catches up on its own).
  std::vector<std::pair<uint64_t, std::future<unsigned>>> sent;
  for (const auto& [replica, state] : shard.replicas) {
    if (replica == node_.id() || state == ReplicaState::kDead) continue;
    const uint64_t to = replica;  // (clang 14 does not capture structured bindings)
    sent.emplace_back(to, std::async(std::launch::async, [&, to] {
                        try {
                          return forward(to, "POST",
                                         "/waypoint/cluster/collections/" + name + "/shards/" +
                                             std::to_string(s) + "/apply",
                                         {{"uid", m.uid},
                                          {"epoch", shard.epoch},
                                          {"seq", seq},
                                          {"prev_term", prev_term},
                                          {"operations", operations}},
                                         std::chrono::seconds(10))
                              .status;
                        } catch (const TransportError&) {
                          return 503u;
                        }
                      }));
  }
  size_t acks = 1;
  std::vector<uint64_t> failed;
  for (auto& [replica, f] : sent) {
    const bool ok = f.get() == 200;
    const bool active = shard.replicas.at(replica) == ReplicaState::kActive;
    if (ok && active) ++acks;
    if (!ok && active) failed.push_back(replica);
  }
  if (!failed.empty()) {
    // Before answering: an active replica must hold every acknowledged write.
    const bool marked = update_map(name, [&](CollectionMap& fresh) {
      if (fresh.uid != m.uid) return false;
      Shard& sh = fresh.shards[s];
      bool changed = false;
      for (uint64_t r : failed) {
        auto it = sh.replicas.find(r);
        if (it != sh.replicas.end() && it->second == ReplicaState::kActive) {
          it->second = ReplicaState::kDead;
          changed = true;
        }
      }
      if (changed) ++sh.epoch;
      return changed;
    });
    WP_THROW_IF_NOT(marked, "collection `", name, "` was deleted meanwhile");
  }
  if (acks < m.write_consistency_factor) {
    throw UnavailableError(
        "write_consistency_factor " + std::to_string(m.write_consistency_factor) + ": only " +
        std::to_string(acks) + " replica(s) of shard " + std::to_string(s) + " hold the write");
  }
  return {{"seq", seq}, {"acks", acks}};
}

json ClusterRouter::replica_apply(const Call& c) {
  const std::string& name = c.path.at("name");
  const CollectionMap seen = need(name);
  const json body = parse_body(*c.body);
  WP_THROW_IF_NOT(body.is_object() && body.value("uid", "") == seen.uid,
                  "uid: this write is for another collection of the name `", name, "`");
  const uint32_t s = shard_param(c, seen);
  std::lock_guard<std::mutex> order(shard_mutex(seen.local_name(s)));
  const CollectionMap m = need(name);
  WP_THROW_IF_NOT(m.uid == seen.uid, "collection `", name, "` was deleted and created again");
  const uint64_t epoch = engine::get_count(body, "epoch", "", 0, 0, UINT64_MAX);
  const uint64_t seq = engine::get_count(body, "seq", "", 0, 1, UINT64_MAX);
  const uint64_t prev_term = engine::get_count(body, "prev_term", "", 0, 0, UINT64_MAX);
  if (epoch < m.shards[s].epoch) {
    throw ConflictError("epoch: the write carries epoch " + std::to_string(epoch) + ", shard " +
                        std::to_string(s) + " is at epoch " + std::to_string(m.shards[s].epoch));
  }
  const auto local = ensure_local(m, s);
  const uint64_t applied = local->applied_sequence();
  if (seq <= applied) return {{"seq", applied}};  // already holds it
  if (seq != applied + 1 || local->applied_term() != prev_term) {
    throw ConflictError("seq: this replica holds shard " + std::to_string(s) + " up to " +
                        std::to_string(applied) + " (term " +
                        std::to_string(local->applied_term()) + "), and the write is " +
                        std::to_string(seq) + " after term " + std::to_string(prev_term));
  }
  apply_numbered(m, s, seq, epoch, body.at("operations"));
  return {{"seq", seq}};
}

json ClusterRouter::shard_log(const Call& c) {
  const CollectionMap m = need(c.path.at("name"));
  const uint32_t s = shard_param(c, m);
  auto param = [&](const char* key) -> uint64_t {
    const auto it = c.query.find(key);
    WP_THROW_IF_NOT(it != c.query.end() && !it->second.empty() && it->second.size() <= 20 &&
                        it->second.find_first_not_of("0123456789") == std::string::npos,
                    key, ": expected an integer");
    return std::stoull(it->second);
  };
  WP_THROW_IF_NOT(c.query.count("uid") && c.query.at("uid") == m.uid, "uid: not this collection's");
  const uint64_t after = param("after"), term = param("term");
  std::lock_guard<std::mutex> order(shard_mutex(m.local_name(s)));
  WP_THROW_IF_NOT(engine_.exists(m.local_name(s)), "shard ", s, " is not held here");
  const auto local = engine_.collection(m.local_name(s));
  const uint64_t applied = local->applied_sequence();
  if (after > applied) return {{"diverged", true}, {"last", applied}};
  if (after == applied) {
    return after == 0 || term == local->applied_term()
               ? json{{"last", applied}, {"entries", json::array()}}
               : json{{"diverged", true}, {"last", applied}};
  }
  std::lock_guard<std::mutex> lock(logs_mu_);
  const ShardLog& log = logs_[m.local_name(s)];
  const uint64_t first = log.entries.empty() ? applied + 1 : log.entries.front().seq;
  // The entry `after` itself is needed to check its term (none for after == 0).
  if (after == 0 ? first != 1 : first > after) return {{"gone", true}, {"last", applied}};
  json entries = json::array();
  size_t bytes = 0;
  for (const LogEntry& e : log.entries) {
    if (e.seq == after && e.term != term) return {{"diverged", true}, {"last", applied}};
    if (e.seq <= after) continue;
    entries.push_back({{"seq", e.seq}, {"term", e.term}, {"operations", e.operations}});
    bytes += e.bytes;
    if (entries.size() >= 1000 || bytes >= (size_t{16} << 20)) break;
  }
  return {{"last", applied}, {"entries", entries}};
}

json ClusterRouter::activate(const Call& c) {
  const std::string& name = c.path.at("name");
  const CollectionMap m = need(name);
  const json body = parse_body(*c.body);
  WP_THROW_IF_NOT(body.is_object() && body.value("uid", "") == m.uid, "uid: not this collection's");
  const uint32_t s = shard_param(c, m);
  const uint64_t replica = engine::get_count(body, "node", "", 0, 1, UINT64_MAX);
  const uint64_t seq = engine::get_count(body, "seq", "", 0, 0, UINT64_MAX);
  const uint64_t term = engine::get_count(body, "term", "", 0, 0, UINT64_MAX);
  WP_THROW_IF_NOT(m.shards[s].primary == node_.id(), "node ", node_.id(),
                  " is not the primary of shard ", s);
  // Holding the shard's order: no write can come between the check and the change.
  std::lock_guard<std::mutex> order(shard_mutex(m.local_name(s)));
  const auto local = ensure_local(m, s);
  if (seq != local->applied_sequence() || term != local->applied_term()) {
    throw ConflictError("seq: the primary holds shard " + std::to_string(s) + " up to " +
                        std::to_string(local->applied_sequence()) + ", the replica " +
                        std::to_string(seq));
  }
  const bool done = update_map(name, [&](CollectionMap& fresh) {
    if (fresh.uid != m.uid) return false;
    Shard& sh = fresh.shards[s];
    auto it = sh.replicas.find(replica);
    if (it == sh.replicas.end() || it->second != ReplicaState::kSyncing ||
        sh.primary != node_.id()) {
      throw ConflictError("replica " + std::to_string(replica) + " of shard " + std::to_string(s) +
                          " is not syncing from this primary");
    }
    it->second = ReplicaState::kActive;
    // A move completes: the replica it replaces goes (and hands the primary over).
    if (const auto move = sh.moves.find(replica); move != sh.moves.end()) {
      sh.replicas.erase(move->second);
      if (sh.primary == move->second) sh.primary = replica;
      sh.moves.erase(move);
    }
    ++sh.epoch;
    return true;
  });
  WP_THROW_IF_NOT(done, "collection `", name, "` was deleted meanwhile");
  return true;
}

json ClusterRouter::operate(const std::string& name, const Call& c) {
  const CollectionMap m = need(name);
  const json body = parse_body(*c.body);
  WP_THROW_IF_NOT(body.is_object() && body.size() == 1,
                  "body: expected one of {\"move_shard\" | \"replicate_shard\" | "
                  "\"drop_replica\" | \"rebalance\": {...}}");
  const std::string op = body.begin().key();
  const json& args = body.begin().value();
  WP_THROW_IF_NOT(args.is_object(), op, ": expected an object");
  const auto peers = node_.peers();
  auto shard_arg = [&]() {
    return static_cast<uint32_t>(engine::get_count(args, "shard_id", op, 0, 0, m.shard_number - 1));
  };
  auto peer_arg = [&](const char* key) {
    WP_THROW_IF_NOT(args.contains(key), op, ".", key, ": missing");
    const uint64_t id = engine::get_count(args, key, op, 0, 1, UINT64_MAX);
    WP_THROW_IF_NOT(
        peers.count(id), op, ".", key, ": node ", id, " is not in the cluster (nodes: ",
        [&] {
          std::string list;
          for (const auto& [p, url] : peers) list += (list.empty() ? "" : ", ") + std::to_string(p);
          return list;
        }(),
        ")");
    return id;
  };
  if (op == "move_shard" || op == "replicate_shard") {
    engine::check_fields(args, op, {"shard_id", "from_peer_id", "to_peer_id", "method"});
    const uint32_t s = shard_arg();
    const uint64_t from = peer_arg("from_peer_id"), to = peer_arg("to_peer_id");
    const bool move = op == "move_shard";
    const bool ok = update_map(name, [&](CollectionMap& fresh) {
      if (fresh.uid != m.uid) return false;
      Shard& sh = fresh.shards[s];
      WP_THROW_IF_NOT(sh.replicas.count(from), op, ".from_peer_id: node ", from,
                      " holds no replica of shard ", s);
      WP_THROW_IF_NOT(!sh.replicas.count(to), op, ".to_peer_id: node ", to,
                      " already holds a replica of shard ", s);
      sh.replicas[to] = ReplicaState::kSyncing;  // it copies from the primary, then turns active
      if (move) sh.moves[to] = from;
      ++sh.epoch;
      return true;
    });
    WP_THROW_IF_NOT(ok, "collection `", name, "` was deleted meanwhile");
    return true;
  }
  if (op == "drop_replica") {
    engine::check_fields(args, op, {"shard_id", "peer_id"});
    const uint32_t s = shard_arg();
    WP_THROW_IF_NOT(args.contains("peer_id"), op, ".peer_id: missing");
    const uint64_t peer = engine::get_count(args, "peer_id", op, 0, 1, UINT64_MAX);
    const bool ok = update_map(name, [&](CollectionMap& fresh) {
      if (fresh.uid != m.uid) return false;
      Shard& sh = fresh.shards[s];
      WP_THROW_IF_NOT(sh.replicas.count(peer), op, ".peer_id: node ", peer,
                      " holds no replica of shard ", s);
      uint64_t other = 0;
      for (const auto& [r, state] : sh.replicas) {
        if (r != peer && state == ReplicaState::kActive && peers.count(r)) other = r;
      }
      WP_THROW_IF_NOT(other != 0 || sh.replicas.at(peer) != ReplicaState::kActive, op, ": node ",
                      peer, " holds the last active replica of shard ", s);
      sh.replicas.erase(peer);
      sh.moves.erase(peer);
      for (auto it = sh.moves.begin(); it != sh.moves.end();) {
        it = it->second == peer ? sh.moves.erase(it) : std::next(it);
      }
      if (sh.primary == peer) sh.primary = other;
      ++sh.epoch;
      return true;
    });
    WP_THROW_IF_NOT(ok, "collection `", name, "` was deleted meanwhile");
    return true;
  }
  if (op == "rebalance") {
    // A waypoint extension: moves replicas from the nodes holding the most to those holding the
    // fewest, at most one move per shard at a time, until the counts differ by one at most.
    engine::check_fields(args, op, {});
    size_t moves = 0;
    const bool ok = update_map(name, [&](CollectionMap& fresh) {
      if (fresh.uid != m.uid) return false;
      moves = 0;
      std::map<uint64_t, size_t> load;
      for (const auto& [p, url] : peers) load[p] = 0;
      for (const Shard& sh : fresh.shards) {
        for (const auto& [r, state] : sh.replicas) {
          if (!sh.moves.count(r) && load.count(r)) ++load[r];
        }
      }
      for (uint32_t s = 0; s < fresh.shard_number; ++s) {
        Shard& sh = fresh.shards[s];
        if (!sh.moves.empty()) continue;
        auto most = std::max_element(load.begin(), load.end(), [&](const auto& a, const auto& b) {
          return (sh.replicas.count(a.first) ? a.second : 0) <
                 (sh.replicas.count(b.first) ? b.second : 0);
        });
        auto least = load.end();
        for (auto it = load.begin(); it != load.end(); ++it) {
          if (!sh.replicas.count(it->first) &&
              (least == load.end() || it->second < least->second)) {
            least = it;
          }
        }
        if (most == load.end() || least == load.end() || !sh.replicas.count(most->first) ||
            most->second <= least->second + 1) {
          continue;
        }
        sh.replicas[least->first] = ReplicaState::kSyncing;
        sh.moves[least->first] = most->first;
        ++sh.epoch;
        --most->second;
        ++least->second;
        ++moves;
      }
      return moves > 0;
    });
    WP_THROW_IF_NOT(ok, "collection `", name, "` was deleted meanwhile");
    return json{{"moves", moves}};
  }
  throw UserError(op +
                  ": not a cluster operation (expected move_shard, replicate_shard, "
                  "drop_replica or rebalance)");
}

void ClusterRouter::fail_over(const CollectionMap& seen,
                              const std::map<uint64_t, std::string>& peers) {
  bool needed = false;
  for (const Shard& sh : seen.shards) {
    needed |= !peers.count(sh.primary);
    for (const auto& [r, state] : sh.replicas) {
      needed |= state != ReplicaState::kDead && !peers.count(r);
    }
  }
  if (!needed) return;
  update_map(seen.name, [&](CollectionMap& m) {
    if (m.uid != seen.uid) return false;
    bool changed = false;
    for (uint32_t s = 0; s < m.shard_number; ++s) {
      Shard& sh = m.shards[s];
      bool bump = false;
      for (auto& [r, state] : sh.replicas) {
        if (state != ReplicaState::kDead && !peers.count(r)) {
          state = ReplicaState::kDead;
          bump = true;
        }
      }
      if (!peers.count(sh.primary)) {
        // The most up-to-date active replica that answers. Every active one holds every
        // acknowledged write; the most up-to-date also keeps what was not yet acknowledged.
        uint64_t best = 0, best_seq = 0;
        for (const auto& [r, state] : sh.replicas) {
          if (state != ReplicaState::kActive) continue;
          try {
            const Answer a = forward(r, "GET", "/collections/" + m.local_name(s) + "/cluster",
                                     nullptr, std::chrono::seconds(2));
            if (a.status != 200) continue;
            const uint64_t seq =
                a.body["result"]["local_shards"][0].value("applied_sequence", uint64_t{0});
            if (best == 0 || seq > best_seq) {
              best = r;
              best_seq = seq;
            }
          } catch (const std::exception&) {
          }
        }
        if (best != 0) {
          sh.primary = best;
          bump = true;
        }
      }
      if (bump) {
        ++sh.epoch;
        changed = true;
      }
    }
    return changed;
  });
}

void ClusterRouter::copy_snapshot(const CollectionMap& m, uint32_t s, uint64_t primary) {
  const std::string local = m.local_name(s);
  const Answer made =
      forward(primary, "POST", "/collections/" + local + "/snapshots", json::object());
  const json info =
      result_of(made.status, made.body, "snapshot of shard " + std::to_string(s) + ": ");
  const std::string file = info.at("name");
  // The file's bytes: a plain GET on the primary (its answer is the file, not JSON).
  const auto peers = node_.peers();
  WP_THROW_IF_NOT(peers.count(primary), "node ", primary, " left the cluster");
  const auto [host, port] = parse_endpoint(peers.at(primary));
  Connection conn(host, port);
  conn.connect(std::chrono::seconds(2));
  Connection::Parser parser;
  parser.body_limit(size_t{64} << 30);
  std::vector<std::pair<std::string, std::string>> headers{{"waypoint-internal", "1"}};
  if (!api_key_.empty()) headers.emplace_back("api-key", api_key_);
  conn.send(bhttp::verb::get, "/collections/" + local + "/snapshots/" + file, "", parser,
            std::chrono::minutes(10), nullptr, headers);
  conn.read_body(parser, std::chrono::minutes(10));
  WP_THROW_IF_NOT(parser.get().result_int() == 200, "snapshot download: HTTP ",
                  parser.get().result_int());
  {
    std::lock_guard<std::mutex> order(shard_mutex(local));
    engine_.recover_snapshot_bytes(local, parser.get().body(), "");
    std::lock_guard<std::mutex> lock(logs_mu_);
    logs_.erase(local);
  }
  try {
    forward(primary, "DELETE", "/collections/" + local + "/snapshots/" + file, nullptr);
  } catch (const std::exception&) {
  }
}

void ClusterRouter::catch_up(const std::string& name, uint32_t s) {
  for (int round = 0; round < 10000; ++round) {
    {
      std::lock_guard<std::mutex> lock(reconcile_mu_);
      if (stopping_) return;
    }
    const auto found = find(name);
    if (!found) return;
    const CollectionMap& m = *found;
    const Shard& sh = m.shards.at(s);
    const auto me = sh.replicas.find(node_.id());
    if (me == sh.replicas.end() || me->second == ReplicaState::kActive ||
        sh.primary == node_.id() || !node_.peers().count(sh.primary) || node_.fenced()) {
      return;
    }
    if (me->second == ReplicaState::kDead) {
      // Syncing first: the primary then sends new writes here as well.
      update_map(name, [&](CollectionMap& fresh) {
        if (fresh.uid != m.uid) return false;
        auto it = fresh.shards[s].replicas.find(node_.id());
        if (it == fresh.shards[s].replicas.end() || it->second != ReplicaState::kDead) return false;
        it->second = ReplicaState::kSyncing;
        ++fresh.shards[s].epoch;
        return true;
      });
      continue;
    }
    uint64_t applied, term;
    {
      // Not held past here: a snapshot's recovery waits for every holder to let go.
      const auto local = ensure_local(m, s);
      applied = local->applied_sequence();
      term = local->applied_term();
    }
    const Answer a =
        forward(sh.primary, "GET",
                "/waypoint/cluster/collections/" + name + "/shards/" + std::to_string(s) +
                    "/log?uid=" + m.uid + "&after=" + std::to_string(applied) +
                    "&term=" + std::to_string(term),
                nullptr);
    const json log = result_of(a.status, a.body, "catching up shard " + std::to_string(s) + ": ");
    if (log.value("gone", false) || log.value("diverged", false)) {
      copy_snapshot(m, s, sh.primary);
      continue;
    }
    const json& entries = log.at("entries");
    if (entries.empty()) {
      const Answer done = forward(
          sh.primary, "POST",
          "/waypoint/cluster/collections/" + name + "/shards/" + std::to_string(s) + "/activate",
          {{"uid", m.uid}, {"node", node_.id()}, {"seq", applied}, {"term", term}});
      if (done.status == 200) return;
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
      continue;
    }
    std::lock_guard<std::mutex> order(shard_mutex(m.local_name(s)));
    for (const json& e : entries) {
      const uint64_t seq = e.at("seq");
      const auto now = engine_.collection(m.local_name(s));
      if (seq <= now->applied_sequence()) continue;  // a forwarded write came first
      if (seq != now->applied_sequence() + 1) break;
      apply_numbered(m, s, seq, e.at("term"), e.at("operations"));
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Reads

json ClusterRouter::search(const std::string& pattern, const Call& c) {
  const CollectionMap m = need(c.path.at("name"));
  json body = parse_body(*c.body);
  const std::string path = pattern.substr(std::strlen("/collections/{name}"));
  const bool query = path.rfind("/points/query", 0) == 0;
  const bool batch = path.size() > 6 && path.compare(path.size() - 6, 6, "/batch") == 0;
  auto direction = [&](const json& request) {
    std::string vector_name;
    if (query && request.contains("using") && request["using"].is_string()) {
      vector_name = request["using"];
    } else if (!query && request.contains("vector") && request["vector"].is_object() &&
               request["vector"].contains("name") && request["vector"]["name"].is_string()) {
      vector_name = request["vector"]["name"];
    }
    try {
      return m.distance(vector_name) == "Euclid";
    } catch (const std::exception&) {
      return false;  // the shards refuse an unknown name
    }
  };
  auto check_query = [&](const json& request, const std::string& at) {
    if (!query) return;
    WP_THROW_IF_NOT(!request.contains("prefetch"), at, "prefetch: not served on a sharded ",
                    "collection yet (fusion needs every shard's candidates)");
    if (!request.contains("query")) return;
    const json& q = request["query"];
    WP_THROW_IF_NOT(q.is_array() || (q.is_object() && q.contains("nearest") && q.size() == 1 &&
                                     q["nearest"].is_array()),
                    at,
                    "query: on a sharded collection a vector or {\"nearest\": vector} is "
                    "served yet");
  };
  std::vector<json> requests;
  std::vector<std::pair<size_t, size_t>> pages;
  if (batch) {
    WP_THROW_IF_NOT(body.is_object() && body.contains("searches") && body["searches"].is_array(),
                    "searches: expected an array");
    for (size_t i = 0; i < body["searches"].size(); ++i) {
      json& r = body["searches"][i];
      check_query(r, "searches[" + std::to_string(i) + "].");
      requests.push_back(r);
      pages.push_back(widen(r, 10));
    }
  } else {
    WP_THROW_IF_NOT(body.is_object(), "body: expected a JSON object");
    check_query(body, "");
    requests.push_back(body);
    pages.push_back(widen(body, 10));
  }
  const std::vector<json> shards = read_all(m, "POST", path, {body});
  auto points_of = [&](const json& result) {
    return query ? result.value("points", json::array()) : result;
  };
  auto merged = [&](size_t i, const std::vector<json>& lists) {
    const json page = merge_scored(lists, direction(requests[i]), pages[i].second, pages[i].first);
    return query ? json{{"points", page}} : page;
  };
  if (!batch) {
    std::vector<json> lists;
    for (const json& r : shards) lists.push_back(points_of(r));
    return merged(0, lists);
  }
  json out = json::array();
  for (size_t i = 0; i < requests.size(); ++i) {
    std::vector<json> lists;
    for (const json& r : shards) lists.push_back(points_of(r.at(i)));
    out.push_back(merged(i, lists));
  }
  return out;
}

json ClusterRouter::payload_index(const std::string& method, const Call& c) {
  const std::string& name = c.path.at("name");
  const CollectionMap m = need(name);
  const bool create = method == "PUT";
  const json body = create ? parse_body(*c.body) : json();
  const std::string field =
      create ? (body.is_object() && body.contains("field_name") && body["field_name"].is_string()
                    ? body["field_name"].get<std::string>()
                    : std::string())
             : c.path.at("field_name");
  // Kept in the map, so that a replica made later (a move, a new replica) makes it too.
  update_map(name, [&](CollectionMap& fresh) {
    if (fresh.uid != m.uid || field.empty()) return false;
    json& kept = fresh.config["waypoint_payload_indexes"];
    if (!kept.is_object()) kept = json::object();
    if (create) {
      kept[field] = body;
    } else {
      kept.erase(field);
    }
    return true;
  });
  const std::string path = create ? "/index" : "/index/" + c.path.at("field_name");
  for (uint32_t s = 0; s < m.shard_number; ++s) {
    for (const auto& [replica, state] : m.shards[s].replicas) {
      Answer a;
      try {
        a = forward(replica, method, "/collections/" + m.local_name(s) + path, body);
      } catch (const TransportError& e) {
        if (state == ReplicaState::kActive) throw UnavailableError(e.what());
        continue;  // a dead replica makes it from the map when it comes back
      }
      if (a.status != 200) rethrow(a.status, a.body, "");
    }
  }
  return json{{"operation_id", operation_id_++}, {"status", "completed"}};
}

json ClusterRouter::retrieve(const Call& c) {
  const CollectionMap m = need(c.path.at("name"));
  const json body = parse_body(*c.body);
  WP_THROW_IF_NOT(body.is_object() && body.contains("ids") && body["ids"].is_array(),
                  "ids: expected an array of point ids");
  std::vector<json> bodies(m.shard_number, body);
  for (json& b : bodies) b["ids"] = json::array();
  for (size_t j = 0; j < body["ids"].size(); ++j) {
    const json& id = body["ids"][j];
    bodies[m.shard_of(engine::PointId::from_json(id, "ids[" + std::to_string(j) + "]"))]["ids"]
        .push_back(id);
  }
  // In the order the request named them, as one node answers.
  std::map<std::string, size_t> position;
  for (size_t j = body["ids"].size(); j-- > 0;) position[id_key(body["ids"][j])] = j;
  std::vector<std::pair<size_t, json>> found;
  for (const json& r : read_all(m, "POST", "/points", bodies)) {
    for (const json& p : r) found.emplace_back(position[id_key(p.at("id"))], p);
  }
  std::stable_sort(found.begin(), found.end(),
                   [](const auto& a, const auto& b) { return a.first < b.first; });
  json out = json::array();
  for (auto& [pos, p] : found) out.push_back(std::move(p));
  return out;
}

json ClusterRouter::get_point(const Call& c) {
  const CollectionMap m = need(c.path.at("name"));
  const std::string& raw = c.path.at("id");
  json id = raw;
  if (!raw.empty() && raw.find_first_not_of("0123456789") == std::string::npos && raw.size() < 20) {
    id = std::stoull(raw);
  }
  const uint32_t s = m.shard_of(engine::PointId::from_json(id, "id"));
  Answer a = read_shard(m, s, "GET", "/points/" + raw, nullptr);
  return result_of(a.status, std::move(a.body), "");
}

json ClusterRouter::count(const Call& c) {
  const CollectionMap m = need(c.path.at("name"));
  const json body = parse_body(*c.body, true);
  size_t total = 0;
  for (const json& r : read_all(m, "POST", "/points/count", {body})) total += r.value("count", 0);
  return {{"count", total}};
}

json ClusterRouter::scroll(const Call& c) {
  const CollectionMap m = need(c.path.at("name"));
  json body = parse_body(*c.body, true);
  if (body.is_null()) body = json::object();
  WP_THROW_IF_NOT(body.is_object(), "body: expected a JSON object");
  WP_THROW_IF_NOT(!body.contains("order_by") || body["order_by"].is_null(),
                  "order_by: not served on a sharded collection yet");
  size_t limit = 10;
  if (body.contains("limit") && body["limit"].is_number_unsigned()) limit = body["limit"];
  if (limit < kMaxMerged) body["limit"] = limit + 1;
  std::vector<json> all;
  for (const json& r : read_all(m, "POST", "/points/scroll", {body})) {
    for (const json& p : r.value("points", json::array())) all.push_back(p);
  }
  std::vector<std::pair<std::string, size_t>> keys;
  for (size_t i = 0; i < all.size(); ++i) keys.emplace_back(id_key(all[i].at("id")), i);
  std::sort(keys.begin(), keys.end());
  json points = json::array();
  for (size_t i = 0; i < keys.size() && i < limit; ++i) points.push_back(all[keys[i].second]);
  const json next = keys.size() > limit ? all[keys[limit].second].at("id") : json();
  return {{"points", points}, {"next_page_offset", next}};
}

}  // namespace wp::http
