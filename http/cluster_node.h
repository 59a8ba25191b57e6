#pragma once
/**
 * @file cluster_node.h
 * One waypoint process as a member of a cluster coordinated by etcd (`serve --cluster`).
 *
 * Membership: the node holds the key `<prefix>nodes/<id>` (its id and the URL other nodes reach
 * it at) under a lease of `lease_ttl` seconds and renews the lease every third of it. A node
 * that cannot show a renewal younger than the lease's TTL (less a safety margin) is *fenced*: its
 * lease may have expired in etcd, and other nodes may already have taken over its shards, so it
 * must not act as a primary until it has joined again (a new lease, its key claimed again).
 *
 * The cluster map: every key under the prefix, read once and kept current by a watch (listed
 * again whenever etcd has compacted past the watch), so that reads of the map never wait for
 * etcd.
 */
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "http/etcd_client.h"

namespace wp::http {

struct ClusterOptions {
  std::string etcd;                   ///< "http://host:port" of an etcd member
  uint64_t node_id = 0;               ///< 1 .. 2^53 - 1 (Qdrant's peer ids are integers)
  std::string advertise;              ///< "http://host:port" other nodes reach this one at
  int64_t lease_ttl = 10;             ///< seconds, 2 .. 3600
  std::string prefix = "/waypoint/";  ///< every key the cluster keeps in etcd starts with it
};

/// Checks the options, naming the flag (--node-id, --lease-ttl, --etcd, --advertise) of what is
/// wrong; throws UserError.
void validate(const ClusterOptions& o);

class ClusterNode {
 public:
  /// Joins: grants a lease, claims the node's key, starts renewing and watching. Throws UserError
  /// when etcd cannot be reached or another live node holds the id (a node restarted at the same
  /// URL takes its old key over at once).
  explicit ClusterNode(ClusterOptions options);
  /// Leaves: stops renewing and revokes the lease, so the others see the node go at once.
  ~ClusterNode();
  ClusterNode(const ClusterNode&) = delete;
  ClusterNode& operator=(const ClusterNode&) = delete;

  uint64_t id() const { return options_.node_id; }
  const ClusterOptions& options() const { return options_; }

  /// Whether the node must not act as a primary now (see the file comment).
  bool fenced() const;
  /// The live nodes as the cluster map has them: id -> URL.
  std::map<uint64_t, std::string> peers() const;
  /// One key of the map (after the prefix), with the revision it was last written at.
  std::optional<etcd::KeyValue> entry(const std::string& key) const;
  /// The keys of the map under `prefix` (after the cluster prefix).
  std::vector<etcd::KeyValue> entries(const std::string& prefix) const;
  /// Waits until the map has reached etcd's `revision` (a write of this node's own, say), at
  /// most `limit`; returns whether it has.
  bool wait_for(int64_t revision, std::chrono::milliseconds limit) const;
  /// Calls `fn` (on the watch's thread) after every change of the map. Set it before traffic.
  /// Returns once no call of the function set before is running: after on_change(nullptr), what
  /// that function used may go.
  void on_change(std::function<void()> fn);
  /// The revision of etcd the map was last brought to.
  int64_t revision() const { return watch_ ? watch_->revision() : 0; }
  /// How many times the node has joined (1 + each rejoin after a lost lease).
  uint64_t joins() const { return joins_; }
  /// How many times the map was listed (1 + each compaction the watch could not follow).
  uint64_t lists() const { return watch_ ? watch_->lists() : 0; }

  /// Qdrant's `GET /cluster` result for this node.
  nlohmann::json status() const;

 private:
  std::string node_key(uint64_t id) const;
  /// Grants a lease and claims the node key under it; throws EtcdError or UserError.
  void join();
  void renew_loop();
  /// Keeps peers_ in step with one key of the map (`value` null: deleted); mu_ held.
  void note_peer(const std::string& key, const std::string* value);
  /// Stops renewing and watching and revokes the lease (the destructor; also a failed join).
  void leave();
  /// Calls on_change_ if set, under on_change_mu_ (the watch's thread).
  void call_on_change();

  ClusterOptions options_;
  etcd::Client client_;

  mutable std::mutex mu_;  // guards what follows until the thread
  std::map<std::string, etcd::KeyValue> map_;
  std::map<uint64_t, std::string> peers_;  ///< the node keys of map_, read: id -> URL
  int64_t map_revision_ = 0;
  mutable std::condition_variable map_cv_;
  int64_t lease_ = 0;
  /// When the last renewal that succeeded was sent (a lease lives at least TTL after it).
  std::chrono::steady_clock::time_point renewed_{};
  std::chrono::system_clock::time_point renewed_wall_{};
  std::string last_error_;
  std::atomic<uint64_t> joins_{0};
  bool stopping_ = false;
  std::condition_variable cv_;

  std::mutex on_change_mu_;  ///< held while on_change_ is called or replaced
  std::function<void()> on_change_;

  std::unique_ptr<etcd::Watch> watch_;
  std::thread renewer_;
};

}  // namespace wp::http
