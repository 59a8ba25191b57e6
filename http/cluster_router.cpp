// ClusterRouter: dispatch, transport between nodes, the shard map, collections, the reconciler.
#include "http/cluster_router.h"

#include <algorithm>
#include <cstring>
#include <future>
#include <random>
#include <set>

#include "http/cluster_router_detail.h"

namespace wp::http {

namespace {

std::string random_uid() {
  std::random_device rd;
  std::mt19937_64 rng((uint64_t{rd()} << 32) ^ rd());
  char buf[17];
  std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(rng()));
  return buf;
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
  // Storage snapshots too: one node's engine holds shards, which its snapshot would not make a
  // cluster's (refused below, as not served on a cluster).
  return pattern == "/collections" || pattern == "/aliases" ||
         pattern.compare(0, 13, "/collections/") == 0 || pattern.compare(0, 10, "/snapshots") == 0;
}

json ClusterRouter::call(const std::string& method, const std::string& pattern, const Call& c) {
  const std::string route = method + " " + pattern;
  if (route == "GET /collections") return list();
  if (route == "POST /collections/aliases") return update_aliases(c);
  if (route == "GET /aliases") return alias_list_json(aliases());
  const auto name_it = c.path.find("name");
  WP_THROW_IF_NOT(name_it != c.path.end(), route, " is not served on a cluster yet");
  const std::string& name = name_it->second;
  if (route == "PUT /collections/{name}") return create(name, c);
  if (route == "DELETE /collections/{name}") return remove(name);
  if (route == "GET /collections/{name}/exists") return json{{"exists", find(name).has_value()}};
  if (route == "GET /collections/{name}/aliases") {
    need(name);
    return alias_list_json(aliases(&name));
  }
  // Every other route takes an alias for its collection, as one node does.
  if (!find(name)) {
    const auto table = aliases();
    const auto alias = table.find(name);
    if (alias != table.end() && find(alias->second)) {  // once: an alias names a collection
      Call resolved = c;
      resolved.path["name"] = alias->second;
      return call(method, pattern, resolved);
    }
  }
  if (route == "GET /collections/{name}") return info(name);
  if (route == "PATCH /collections/{name}") return update_collection(name, c);
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
      route == "POST /collections/{name}/points/search/batch") {
    return search(pattern, c);
  }
  if (route == "POST /collections/{name}/points/query" ||
      route == "POST /collections/{name}/points/query/batch" ||
      route == "POST /collections/{name}/points/query/groups" ||
      route == "POST /collections/{name}/points/search/groups" ||
      route == "POST /collections/{name}/points/recommend/groups" ||
      route == "POST /collections/{name}/points/recommend" ||
      route == "POST /collections/{name}/points/recommend/batch" ||
      route == "POST /collections/{name}/points/discover" ||
      route == "POST /collections/{name}/points/discover/batch") {
    return query(pattern, c);
  }
  if (route == "POST /collections/{name}/points/search/matrix/pairs" ||
      route == "POST /collections/{name}/points/search/matrix/offsets") {
    return matrix(pattern, c);
  }
  if (route == "PUT /collections/{name}/index" ||
      route == "DELETE /collections/{name}/index/{field_name}") {
    return payload_index(method, c);
  }
  if (route == "POST /collections/{name}/points") return retrieve(c);
  if (route == "GET /collections/{name}/points/{id}") return get_point(c);
  if (route == "POST /collections/{name}/points/count") return count(c);
  if (route == "POST /collections/{name}/points/scroll") return scroll(c);
  if (route == "POST /collections/{name}/facet") return facet(c);
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
  etcd::TxnResult t;
  for (int attempt = 0;; ++attempt) {  // no collection of that name, and no alias either
    const AliasRead a = read_aliases();
    if (a.table.count(name)) {
      throw ConflictError("`" + engine::show_text(name) + "` is already an alias of collection `" +
                          a.table.at(name) + "`");
    }
    t = etcd_.txn({etcd::Compare::missing(key), a.unchanged},
                  {etcd::Op::put(key, m.to_json().dump())});
    if (t.succeeded) break;
    if (attempt == 20 || !etcd_.get(key).kvs.empty()) {
      throw ConflictError("collection `" + engine::show_text(name) + "` already exists");
    }
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
  // The collection and its aliases go in one transaction.
  std::vector<etcd::Compare> compares{etcd::Compare::mod_revision(key, r.kvs[0].mod_revision)};
  std::vector<etcd::Op> ops{etcd::Op::erase(key)};
  AliasRead a = read_aliases();
  const size_t before = a.table.size();
  for (auto it = a.table.begin(); it != a.table.end();) {
    it = it->second == name ? a.table.erase(it) : std::next(it);
  }
  if (a.table.size() != before) {
    compares.push_back(a.unchanged);
    ops.push_back(etcd::Op::put(a.key, json(a.table).dump()));
  }
  const etcd::TxnResult t = etcd_.txn(compares, ops);
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
    engine_.create_collection(local, collection_config_from_qdrant(m.config));
    for (const auto& [field, body] : m.payload_indexes.items()) {
      forward(node_.id(), "PUT", "/collections/" + local + "/index", body);
    }
    if (!m.update.empty()) patch_local(node_.id(), local, m.update);
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

}  // namespace wp::http
