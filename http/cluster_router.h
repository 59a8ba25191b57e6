#pragma once
/**
 * @file cluster_router.h
 * The collection routes of a cluster node (`serve --cluster`; docs/cluster.md). A collection is
 * a shard map in etcd (shard_map.h) and, on each node, one local collection per shard replica
 * the node holds. Any node answers any request:
 *
 * - **Create / delete** change the map by compare-and-swap; every node's reconciler creates or
 *   drops its local shard collections to match.
 * - **Writes** are split by shard (a point's shard is the hash of its id; an operation selecting
 *   by filter goes to every shard) and sent to each shard's primary. The primary orders the
 *   shard's writes (sequence numbers, stored atomically with each write), applies one durably,
 *   forwards it to the other replicas, and answers once `write_consistency_factor` replicas hold
 *   it and every active replica that failed to take it has been marked dead in etcd first (so a
 *   replica still active holds every acknowledged write). A write carrying a stale epoch is
 *   refused; replicas take each sequence once, so a retried write changes nothing twice.
 * - **Reads** go to one active replica per shard (this node's own first; the next one when a
 *   replica fails), each asked for `limit + offset`, merged by score (by id for scroll), and the
 *   offset applied once. A shard without an answering active replica is a 503 naming it.
 *
 * Node-to-node calls are the public routes on a local shard collection, marked internal (the
 * `waypoint-internal` header, with the api key), and two internal routes for the write path.
 */
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "engine/engine.h"
#include "http/etcd_client.h"
#include "http/shard_map.h"

namespace wp::http {

class Api;
class ClusterNode;
class Connection;
struct Call;
struct Ranked;

class ClusterRouter {
 public:
  ClusterRouter(engine::Engine& engine, ClusterNode& node, Api& api, std::string api_key);
  /// Stops the reconciler.
  ~ClusterRouter();
  ClusterRouter(const ClusterRouter&) = delete;
  ClusterRouter& operator=(const ClusterRouter&) = delete;

  /// Whether the route (method and pattern of Api's table) is answered by the router when a
  /// request is not internal: every collection route.
  static bool serves(const std::string& method, const std::string& pattern);
  /// Answers a collection route across the cluster (Api maps the exceptions to statuses).
  nlohmann::json call(const std::string& method, const std::string& pattern, const Call& c);

  /// POST /waypoint/cluster/collections/{name}/shards/{shard}/write: a shard's primary orders,
  /// applies and replicates one write ({"uid", "epoch", "operations"}).
  nlohmann::json primary_write(const Call& c);
  /// POST /waypoint/cluster/collections/{name}/shards/{shard}/apply: a replica applies the write
  /// the primary numbered `seq` ({"uid", "epoch", "seq", "operations"}), once.
  nlohmann::json replica_apply(const Call& c);

  /// GET /waypoint/cluster/collections/{name}/shards/{shard}/log?uid&after&term: the writes of
  /// a shard after `after` from this node's log, or {"gone": true} when the log no longer
  /// reaches back that far, or {"diverged": true} when this node's write `after` is not the
  /// asker's (another term): then the asker copies a snapshot.
  nlohmann::json shard_log(const Call& c);
  /// POST /waypoint/cluster/collections/{name}/shards/{shard}/activate: the primary turns a
  /// syncing replica active when it holds every write the primary holds ({"uid", "node", "seq",
  /// "term"}; 409 while it does not).
  nlohmann::json activate(const Call& c);

  /// How the lists of every shard are merged: by score, best first (high or low), by order
  /// value (ascending or descending), by id, or at random (a random sample's lists: each point
  /// once, shuffled, from the first: the offset is not applied, as Qdrant ignores it there).
  enum class Merge { kHighFirst, kLowFirst, kValueAsc, kValueDesc, kId, kRandom };
  /// What a body holds at its top level: a query's fields, or a recommendation's or a
  /// discovery's examples (the recommend and discover routes).
  enum class Body { kQuery, kRecommend, kDiscover };

  /// Qdrant's GET /collections/{name}/cluster.
  nlohmann::json collection_cluster(const std::string& name);

  /// Brings the local shard collections in line with the map (also run by the reconciler).
  void reconcile();

 private:
  struct Answer {
    unsigned status = 0;
    nlohmann::json body;
  };
  /// Sends a request to a node (this one in-process); throws TransportError when it cannot be
  /// reached.
  Answer forward(uint64_t node, const std::string& method, const std::string& target,
                 const nlohmann::json& body,
                 std::chrono::milliseconds timeout = std::chrono::seconds(30));
  /// A read of one shard from its active replicas, this node's first, the next on failure.
  Answer read_shard(const cluster::CollectionMap& m, uint32_t shard, const std::string& method,
                    const std::string& path, const nlohmann::json& body);
  /// read_shard() on every shard at once; throws on the first shard that fails.
  std::vector<nlohmann::json> read_all(const cluster::CollectionMap& m, const std::string& method,
                                       const std::string& path,
                                       const std::vector<nlohmann::json>& bodies);

  std::optional<cluster::CollectionMap> find(const std::string& name) const;
  /// find() or NotFoundError in Qdrant's words.
  cluster::CollectionMap need(const std::string& name) const;
  /// Changes a collection's map by compare-and-swap on etcd's latest value (again when another
  /// change came first), then waits for this node's map to show it. `change` returns false when
  /// there is nothing to do. Returns false when the collection is gone.
  bool update_map(const std::string& name,
                  const std::function<bool(cluster::CollectionMap&)>& change);

  /// POST /collections/{name}/cluster: move_shard, replicate_shard, drop_replica, and the
  /// waypoint extension rebalance.
  nlohmann::json operate(const std::string& name, const Call& c);
  nlohmann::json create(const std::string& name, const Call& c);
  nlohmann::json remove(const std::string& name);
  nlohmann::json list() const;
  /// The cluster's aliases (one etcd key, a JSON object alias -> collection): every one, or
  /// those of `collection`.
  std::map<std::string, std::string> aliases(const std::string* collection = nullptr) const;
  static std::map<std::string, std::string> alias_table(const std::string& text);
  /// The alias table as etcd holds it now, its key, and the comparison that holds while no one
  /// changes it (for a transaction that depends on the table).
  struct AliasRead {
    std::string key;
    std::map<std::string, std::string> table;
    etcd::Compare unchanged;
  };
  AliasRead read_aliases();
  /// POST /collections/aliases: the actions applied to the table by compare-and-swap, checked
  /// as one node checks them.
  nlohmann::json update_aliases(const Call& c);
  nlohmann::json info(const std::string& name);
  /// PATCH /collections/{name}: checked, kept in the map (a replica made later applies it),
  /// then applied by every replica.
  nlohmann::json update_collection(const std::string& name, const Call& c);
  /// `call(node, local name)` on every replica of every shard of `m`: a replica that cannot be
  /// reached is skipped unless it is active (a dead one applies the map when it comes back); an
  /// answer other than 200 is thrown, naming the shard.
  void on_every_replica(const cluster::CollectionMap& m,
                        const std::function<Answer(uint64_t, const std::string&)>& call);
  /// PATCH /collections/{local} on a node, again while it answers 409 (a build runs), 30 s at
  /// most.
  Answer patch_local(uint64_t node, const std::string& local, const nlohmann::json& body);
  nlohmann::json write(const std::string& pattern, const Call& c);
  nlohmann::json search(const std::string& pattern, const Call& c);
  /// `requests` of one route (a batch route when `batch`) on every shard, each asked for
  /// `limit + offset` points from 0; each request's lists merged as `how` says, offset once.
  std::vector<nlohmann::json> fan_out(const cluster::CollectionMap& m, const std::string& path,
                                      std::vector<nlohmann::json> requests,
                                      const std::vector<Merge>& how, bool batch);
  /// The query family (cluster_query.cpp): points/query, query/batch, query/groups,
  /// points/recommend, recommend/batch, search/groups, recommend/groups, points/discover,
  /// discover/batch.
  nlohmann::json query(const std::string& pattern, const Call& c);
  /// Qdrant's distance matrix (search/matrix/pairs and .../offsets): the sample drawn from every
  /// shard ({"sample": "random"} with the vectors), merged at random, the matrix computed here
  /// with one node's code (query_parts.h).
  nlohmann::json matrix(const std::string& pattern, const Call& c);
  /// One query request (checked, its point ids resolved) answered across the shards.
  nlohmann::json query_answer(const cluster::CollectionMap& m, const nlohmann::json& request);
  /// The ranked list of a query node under the filters around it (`outer`): a fusion of its
  /// prefetches fused here from lists merged from every shard, else as every shard answers it.
  Ranked ranked(const cluster::CollectionMap& m, const nlohmann::json& node,
                const nlohmann::json& outer, const std::string& where);
  /// A query node with MMR (its ids resolved) under `filter`: the nearest candidates merged
  /// from every shard with their vectors, chosen here with one node's mmr_select.
  Ranked mmr_ranked(const cluster::CollectionMap& m, const nlohmann::json& node,
                    const nlohmann::json& filter, const std::string& where);
  /// Replaces the point ids a request uses as vectors (query by id, nearest, recommendation and
  /// discovery examples) by their vectors read from the shards, of its collection or of the one
  /// its lookup_from names (then taken out of the request); the ids of its own collection are
  /// left out of the answer by a filter at its root, as one node leaves them out.
  void resolve_ids(const cluster::CollectionMap& m, nlohmann::json& request,
                   const std::string& where, Body body);
  /// The map of collection `name`, or of the collection the alias `name` names (NotFoundError).
  cluster::CollectionMap need_or_alias(const std::string& name) const;
  /// POST /collections/{name}/points with a body: records in the order asked.
  nlohmann::json retrieve_ids(const cluster::CollectionMap& m, const nlohmann::json& body);
  /// PUT /collections/{name}/index and DELETE .../index/{field_name}: on every replica.
  nlohmann::json payload_index(const std::string& method, const Call& c);
  nlohmann::json retrieve(const Call& c);
  nlohmann::json get_point(const Call& c);
  nlohmann::json count(const Call& c);
  nlohmann::json scroll(const Call& c);
  nlohmann::json facet(const Call& c);

  /// Marks the replicas of nodes that left the cluster dead and gives each shard whose primary
  /// left the most up-to-date active replica as primary (a new epoch each).
  void fail_over(const cluster::CollectionMap& m, const std::map<uint64_t, std::string>& peers);
  /// Brings this node's dead or syncing replica of shard `s` up to its primary (log, else a
  /// snapshot), then asks the primary to turn it active.
  void catch_up(const std::string& name, uint32_t s);
  /// Copies the primary's shard over this node's (a snapshot of it, recovered here).
  void copy_snapshot(const cluster::CollectionMap& m, uint32_t s, uint64_t primary);
  /// Applies one numbered write to this node's replica of shard `s` (its mutex held).
  void apply_numbered(const cluster::CollectionMap& m, uint32_t s, uint64_t seq, uint64_t term,
                      const nlohmann::json& operations);
  /// An internal call on one shard ({"uid", ...} body): its shard's order held, then the map
  /// read (so that changes made while holding it are seen), the uid checked against it.
  struct ShardCall {
    cluster::CollectionMap m;
    uint32_t s = 0;
    nlohmann::json body;
    std::unique_lock<std::mutex> order;
  };
  ShardCall shard_call(const Call& c);
  /// The shard number in the path, checked against the map.
  static uint32_t shard_param(const Call& c, const cluster::CollectionMap& m);

  /// The local collection of a shard this node holds, created from the map when missing.
  std::shared_ptr<engine::Collection> ensure_local(const cluster::CollectionMap& m, uint32_t s);
  /// The mutex that orders one local shard's writes.
  std::mutex& shard_mutex(const std::string& local);

  engine::Engine& engine_;
  ClusterNode& node_;
  Api& api_;
  std::string api_key_;
  etcd::Client etcd_;

  std::mutex pool_mu_;
  std::map<std::string, std::vector<std::unique_ptr<Connection>>> pool_;  ///< url -> idle

  std::mutex local_mu_;  ///< creating and dropping local shard collections
  std::mutex shards_mu_;
  std::map<std::string, std::unique_ptr<std::mutex>> shard_mutexes_;

  /// The writes each local shard took, newest last, within bounds (kept by primaries and
  /// replicas alike, so that a promoted replica can serve a catch-up).
  struct LogEntry {
    uint64_t seq, term;
    nlohmann::json operations;
    size_t bytes;
  };
  struct ShardLog {
    std::deque<LogEntry> entries;
    size_t bytes = 0;
  };
  std::mutex logs_mu_;
  std::map<std::string, ShardLog> logs_;

  std::mutex reconcile_mu_;
  std::condition_variable reconcile_cv_;
  bool reconcile_due_ = true;
  bool stopping_ = false;
  std::thread reconciler_;
};

}  // namespace wp::http
