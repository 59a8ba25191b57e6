#pragma once
/**
 * @file etcd_client.h
 * A small etcd v3 client over etcd's JSON gateway (Debian ships no C++ etcd client): key-value
 * reads and writes, transactions (the only way the cluster changes shared state), leases, and a
 * watch that streams the changes under a prefix. Keys and values are bytes (base64 on the wire);
 * revisions and lease ids are int64 (decimal strings on the wire).
 *
 * Calls block, one at a time per Client, over one keep-alive connection, each bounded by the
 * client's timeout; errors from etcd and the transport throw EtcdError. A call that failed on a
 * reused connection (etcd closed it while idle) is sent once more on a new one, so a write may in
 * rare cases be applied twice: every write the cluster makes is a put of a whole value or a
 * compare-and-swap, which a second application leaves as the first did, or refuses.
 */
#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "http/http_connection.h"

namespace wp::http::etcd {

using wp::http::parse_endpoint;

/// An error answered by etcd (`code` is its gRPC status code) or of the transport (code -1).
class EtcdError : public std::runtime_error {
 public:
  EtcdError(int code, const std::string& what) : std::runtime_error(what), code_(code) {}
  int code() const { return code_; }

 private:
  int code_;
};

struct KeyValue {
  std::string key;
  std::string value;
  int64_t create_revision = 0;
  int64_t mod_revision = 0;
  int64_t version = 0;  ///< writes since the key was created; 0: the key does not exist
  int64_t lease = 0;
};

/// Keys read at one revision of the store.
struct Range {
  std::vector<KeyValue> kvs;
  int64_t revision = 0;
};

/// One condition of a transaction, on one key.
struct Compare {
  enum class Target { kVersion, kCreate, kMod, kValue, kLease };
  enum class Result { kEqual, kGreater, kLess, kNotEqual };
  std::string key;
  Target target = Target::kVersion;
  Result result = Result::kEqual;
  int64_t number = 0;  ///< for every target but kValue
  std::string value;   ///< for kValue

  /// The key does not exist.
  static Compare missing(std::string key);
  /// The key was last written at `revision`.
  static Compare mod_revision(std::string key, int64_t revision);
  /// The key holds `value`.
  static Compare value_is(std::string key, std::string value);
};

/// One operation of a transaction's branch.
struct Op {
  enum class Kind { kPut, kDelete, kGet };
  Kind kind = Kind::kGet;
  std::string key;
  std::string value;
  int64_t lease = 0;

  static Op put(std::string key, std::string value, int64_t lease = 0);
  static Op erase(std::string key);
  static Op get(std::string key);
};

struct TxnResult {
  bool succeeded = false;  ///< every comparison held, and the success branch ran
  int64_t revision = 0;
  std::vector<Range> gets;  ///< one per kGet of the branch that ran, in order
};

/// A change of one key.
struct Event {
  enum class Type { kPut, kDelete };
  Type type = Type::kPut;
  KeyValue kv;  ///< a deleted key has only `key` and `mod_revision`
};

/// The first key after every key that starts with `prefix` (etcd's range_end).
std::string prefix_end(const std::string& prefix);

class Client {
 public:
  /// `endpoint`: "http://host:port" of one etcd member. Connects on the first call.
  explicit Client(const std::string& endpoint,
                  std::chrono::milliseconds timeout = std::chrono::seconds(5));
  ~Client();
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;

  Range get(const std::string& key);
  Range get_prefix(const std::string& prefix);
  /// Returns the revision of the write.
  int64_t put(const std::string& key, const std::string& value, int64_t lease = 0);
  /// Returns how many keys were deleted.
  int64_t erase(const std::string& key);
  int64_t erase_prefix(const std::string& prefix);
  TxnResult txn(const std::vector<Compare>& compare, const std::vector<Op>& success,
                const std::vector<Op>& failure = {});

  /// A new lease of `ttl_seconds`; returns its id.
  int64_t grant(int64_t ttl_seconds);
  /// Renews a lease; returns its TTL in seconds, or 0 when it has expired or never was.
  int64_t keep_alive(int64_t lease);
  /// Ends a lease at once: its keys are deleted.
  void revoke(int64_t lease);
  /// Drops the history before `revision` (a watch from before it must list again).
  void compact(int64_t revision);

  const std::string& endpoint() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

/// Streams the changes of every key under a prefix on a thread of its own, after a consistent
/// list: `on_list` gets every key under the prefix read at one revision, then `on_events` every
/// batch of changes after that revision, in order. When the watch cannot go on from where it
/// was (etcd compacted its history past it) the keys are listed again and `on_list` is called
/// again: a cache rebuilt from each list and kept by the events is always a state etcd had.
/// A transport error reconnects (backing off 100 ms to 2 s) from the revision after the last
/// one seen. Callbacks run on the watch's thread and must not throw.
class Watch {
 public:
  using ListFn = std::function<void(const Range&)>;
  using EventsFn = std::function<void(const std::vector<Event>&, int64_t revision)>;
  Watch(const std::string& endpoint, std::string prefix, ListFn on_list, EventsFn on_events);
  /// Stops the thread and waits for it.
  ~Watch();
  Watch(const Watch&) = delete;
  Watch& operator=(const Watch&) = delete;

  /// How many times the keys were listed (1 once started, +1 per compaction or lost stream
  /// that could not resume).
  uint64_t lists() const { return lists_; }
  /// The revision of the last list or event handed on (0 before the first list).
  int64_t revision() const { return revision_; }

 private:
  std::atomic<uint64_t> lists_{0};
  std::atomic<int64_t> revision_{0};
  struct Impl;
  std::unique_ptr<Impl> impl_;  // last: its thread writes the counters above
};

}  // namespace wp::http::etcd
