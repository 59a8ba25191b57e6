#include "http/cluster_node.h"

#include <ctime>

#include "engine/json_value.h"
#include "index/error.h"

namespace wp::http {

using nlohmann::json;
using Clock = std::chrono::steady_clock;

namespace {

constexpr uint64_t kMaxNodeId = (uint64_t{1} << 53) - 1;

/// What a node key holds.
std::string node_value(const ClusterOptions& o) {
  return json{{"id", o.node_id}, {"uri", o.advertise}, {"started", std::time(nullptr)}}.dump();
}

/// The renewal's safety margin: a node counts its lease as lost this long before it could
/// expire in etcd (clocks drift, and a renewal's answer may arrive late).
std::chrono::milliseconds margin(int64_t ttl) {
  return std::max(std::chrono::milliseconds(500), std::chrono::milliseconds(ttl * 1000 / 5));
}

}  // namespace

void validate(const ClusterOptions& o) {
  try {
    etcd::parse_endpoint(o.etcd);
  } catch (const std::invalid_argument& e) {
    throw UserError(std::string("--etcd: ") + e.what());
  }
  WP_THROW_IF_NOT(o.node_id >= 1 && o.node_id <= kMaxNodeId, "--node-id must be in 1..", kMaxNodeId,
                  ", got ", o.node_id);
  try {
    etcd::parse_endpoint(o.advertise);
  } catch (const std::invalid_argument& e) {
    throw UserError(std::string("--advertise: ") + e.what());
  }
  WP_THROW_IF_NOT(o.lease_ttl >= 2 && o.lease_ttl <= 3600, "--lease-ttl must be in 2..3600, got ",
                  o.lease_ttl);
  WP_THROW_IF_NOT(!o.prefix.empty() && o.prefix.back() == '/',
                  "cluster key prefix must end in '/'");
}

ClusterNode::ClusterNode(ClusterOptions options)
    : options_(std::move(options)),
      // A call waits at most a third of the lease (at least 1 s): a renewal that hangs on a
      // frozen etcd gives way to the next one in time.
      client_((validate(options_), options_.etcd),
              std::chrono::milliseconds(std::max<int64_t>(1000, options_.lease_ttl * 1000 / 3))) {
  try {
    join();
  } catch (const etcd::EtcdError& e) {
    throw UserError("--etcd: cannot join the cluster at " + options_.etcd + ": " + e.what());
  }
  const std::string nodes = options_.prefix;
  watch_ = std::make_unique<etcd::Watch>(
      options_.etcd, nodes,
      [this](const etcd::Range& r) {
        std::map<std::string, etcd::KeyValue> fresh;
        for (const etcd::KeyValue& kv : r.kvs) fresh[kv.key.substr(options_.prefix.size())] = kv;
        {
          std::lock_guard<std::mutex> lock(mu_);
          map_ = std::move(fresh);
          peers_.clear();
          for (const auto& [key, kv] : map_) note_peer(key, &kv.value);
          map_revision_ = r.revision;
        }
        map_cv_.notify_all();
        call_on_change();
      },
      [this](const std::vector<etcd::Event>& events, int64_t revision) {
        {
          std::lock_guard<std::mutex> lock(mu_);
          for (const etcd::Event& e : events) {
            const std::string key = e.kv.key.substr(options_.prefix.size());
            if (e.type == etcd::Event::Type::kDelete) {
              map_.erase(key);
              note_peer(key, nullptr);
            } else {
              map_[key] = e.kv;
              note_peer(key, &e.kv.value);
            }
          }
          map_revision_ = revision;
        }
        map_cv_.notify_all();
        call_on_change();
      });
  renewer_ = std::thread([this] { renew_loop(); });
  // Serve with a map: wait for the first list (it holds this node's own key).
  const auto until = Clock::now() + std::chrono::seconds(10);
  while (watch_->lists() == 0 && Clock::now() < until) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  if (watch_->lists() == 0) {
    leave();
    throw UserError("--etcd: joined, but could not read the cluster map from " + options_.etcd +
                    " within 10 s");
  }
}

ClusterNode::~ClusterNode() {
  leave();
}

void ClusterNode::leave() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  if (renewer_.joinable()) renewer_.join();
  watch_.reset();
  int64_t lease;
  {
    std::lock_guard<std::mutex> lock(mu_);
    lease = lease_;
    lease_ = 0;
  }
  if (lease != 0) {
    try {
      client_.revoke(lease);
    } catch (const std::exception&) {
      // etcd is gone: the lease expires by itself
    }
  }
}

std::string ClusterNode::node_key(uint64_t id) const {
  return options_.prefix + "nodes/" + std::to_string(id);
}

void ClusterNode::join() {
  const std::string key = node_key(options_.node_id);
  // The key is claimed where it is missing; one this node held before a restart (same URL) is
  // taken over in one step: moved to the new lease where it is as read, then its old lease ended
  // (holding nothing else). Revoking that lease first deleted the key meanwhile: the other nodes
  // saw this node leave and failed its shards over, for a restart within its lease (and under
  // load a failover that found no successor in time left a primary marked dead).
  etcd::Compare claim = etcd::Compare::missing(key);
  int64_t replaced = 0;  // the lease of the key taken over
  for (int attempt = 0;; ++attempt) {
    const auto sent = Clock::now();
    const auto sent_wall = std::chrono::system_clock::now();
    const int64_t lease = client_.grant(options_.lease_ttl);
    const etcd::TxnResult r = client_.txn(
        {claim}, {etcd::Op::put(key, node_value(options_), lease)}, {etcd::Op::get(key)});
    if (r.succeeded) {
      if (replaced != 0) client_.revoke(replaced);
      std::lock_guard<std::mutex> lock(mu_);
      lease_ = lease;
      renewed_ = sent;
      renewed_wall_ = sent_wall;
      last_error_.clear();
      ++joins_;
      return;
    }
    client_.revoke(lease);
    // The id is held (or changed since it was read): by this node before a restart, take over.
    const etcd::KeyValue held =
        r.gets.empty() || r.gets[0].kvs.empty() ? etcd::KeyValue{} : r.gets[0].kvs[0];
    if (held.key.empty() && attempt < 3) {  // gone between the compare and the read
      claim = etcd::Compare::missing(key);
      replaced = 0;
      continue;
    }
    const json value = json::parse(held.value, nullptr, false);
    const std::string uri = value.is_object() && value.contains("uri") && value["uri"].is_string()
                                ? value["uri"].get<std::string>()
                                : "an unknown URL";
    if (uri == options_.advertise && held.lease != 0 && attempt < 3) {
      claim = etcd::Compare::mod_revision(key, held.mod_revision);
      replaced = held.lease;
      continue;
    }
    throw UserError(
        "--node-id " + std::to_string(options_.node_id) + " is held by " +
        (held.lease == 0 ? "a key without a lease (" + key + ")" : "a live node at " + uri) +
        ": a node id is one process, and its lease ends within " +
        std::to_string(options_.lease_ttl) + " s of that process stopping");
  }
}

void ClusterNode::renew_loop() {
  const auto period = std::chrono::milliseconds(options_.lease_ttl * 1000 / 3);
  std::unique_lock<std::mutex> lock(mu_);
  while (!stopping_) {
    cv_.wait_for(lock, period, [&] { return stopping_; });
    if (stopping_) break;
    const int64_t lease = lease_;
    lock.unlock();
    std::string error;
    try {
      if (lease == 0) {
        join();
      } else {
        const auto sent = Clock::now();
        const auto sent_wall = std::chrono::system_clock::now();
        if (client_.keep_alive(lease) > 0) {
          lock.lock();
          if (lease_ == lease) {
            renewed_ = sent;
            renewed_wall_ = sent_wall;
            last_error_.clear();
          }
          lock.unlock();
        } else {
          error = "the lease expired in etcd";
          lock.lock();
          if (lease_ == lease) lease_ = 0;  // join again at the next turn
          lock.unlock();
        }
      }
    } catch (const std::exception& e) {
      error = e.what();
    }
    lock.lock();
    if (!error.empty()) last_error_ = error;
  }
}

bool ClusterNode::fenced() const {
  std::lock_guard<std::mutex> lock(mu_);
  return lease_ == 0 || Clock::now() >= renewed_ + std::chrono::seconds(options_.lease_ttl) -
                                            margin(options_.lease_ttl);
}

std::map<uint64_t, std::string> ClusterNode::peers() const {
  std::lock_guard<std::mutex> lock(mu_);
  return peers_;
}

void ClusterNode::note_peer(const std::string& key, const std::string* value) {
  if (key.compare(0, 6, "nodes/") != 0) return;
  uint64_t id = 0;
  if (key.size() > 6 && key.size() <= 22 &&
      key.find_first_not_of("0123456789", 6) == std::string::npos) {
    id = std::stoull(key.substr(6));
  }
  if (id == 0) return;  // not a node key this version wrote
  if (!value) {
    peers_.erase(id);
    return;
  }
  const json v = json::parse(*value, nullptr, false);
  if (v.is_object() && v.value("id", uint64_t{0}) == id && v.contains("uri") &&
      v["uri"].is_string()) {
    peers_[id] = v["uri"].get<std::string>();
  }
}

std::optional<etcd::KeyValue> ClusterNode::entry(const std::string& key) const {
  std::lock_guard<std::mutex> lock(mu_);
  const auto it = map_.find(key);
  if (it == map_.end()) return std::nullopt;
  return it->second;
}

std::vector<etcd::KeyValue> ClusterNode::entries(const std::string& prefix) const {
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<etcd::KeyValue> out;
  for (auto it = map_.lower_bound(prefix); it != map_.end(); ++it) {
    if (it->first.compare(0, prefix.size(), prefix) != 0) break;
    out.push_back(it->second);
    out.back().key = it->first;
  }
  return out;
}

bool ClusterNode::wait_for(int64_t revision, std::chrono::milliseconds limit) const {
  std::unique_lock<std::mutex> lock(mu_);
  return map_cv_.wait_for(lock, limit, [&] { return map_revision_ >= revision; });
}

void ClusterNode::on_change(std::function<void()> fn) {
  std::lock_guard<std::mutex> calling(on_change_mu_);  // waits out a call in progress
  on_change_ = std::move(fn);
}

void ClusterNode::call_on_change() {
  // Called under its own mutex, so that on_change(nullptr) returns only once no call of the old
  // function is running: a ClusterRouter destroyed its condition variable while the watch's
  // thread still notified it (TSan, a cluster node's `serve` shutting down in the suite).
  std::lock_guard<std::mutex> calling(on_change_mu_);
  if (on_change_) on_change_();
}

json ClusterNode::status() const {
  const bool is_fenced = fenced();
  json peers_json = json::object();
  for (const auto& [id, uri] : peers()) peers_json[std::to_string(id)] = {{"uri", uri}};
  std::string error;
  std::chrono::system_clock::time_point renewed;
  {
    std::lock_guard<std::mutex> lock(mu_);
    error = last_error_;
    renewed = renewed_wall_;
  }
  json thread = is_fenced ? json{{"consensus_thread_status", "stopped_with_err"},
                                 {"err", "lease lost, not acting as a primary" +
                                             (error.empty() ? std::string() : ": " + error)}}
                          : json{{"consensus_thread_status", "working"},
                                 {"last_update", engine::rfc3339(renewed)}};
  return {{"status", "enabled"},
          {"peer_id", options_.node_id},
          {"peers", peers_json},
          // No Raft here: etcd orders the cluster's changes; its revision stands for the commit.
          {"raft_info",
           {{"term", 0},
            {"commit", revision()},
            {"pending_operations", 0},
            {"leader", nullptr},
            {"role", nullptr},
            {"is_voter", false}}},
          {"consensus_thread_status", thread},
          {"message_send_failures", json::object()},
          {"etcd",
           {{"endpoint", options_.etcd},
            {"revision", revision()},
            {"lease_ttl", options_.lease_ttl},
            {"fenced", is_fenced},
            {"joins", joins()},
            {"map_lists", lists()}}}};
}

}  // namespace wp::http
