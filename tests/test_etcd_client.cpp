// The etcd v3 client (http/etcd_client.h) against a real etcd process: key-value reads and
// writes with any bytes, compare-and-swap transactions, lease expiry and renewal, watch events in
// order, a watch that lists again after etcd compacted past it, and errors.
#include <gtest/gtest.h>

#include <chrono>
#include <condition_variable>
#include <functional>
#include <map>
#include <mutex>
#include <thread>

#include "etcd_process.h"
#include "http/etcd_client.h"

using namespace wp::http::etcd;
using std::chrono::milliseconds;
using std::chrono::seconds;
using Clock = std::chrono::steady_clock;

using wp::test::eventually;

namespace {

class Etcd : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_TRUE(etcd_.ok()) << etcd_.why(); }
  wp::test::EtcdProcess etcd_;
};

/// A cache of every key under a prefix kept by a Watch, as ClusterNode keeps its map.
struct Cache {
  std::mutex mu;
  std::map<std::string, std::string> keys;
  std::vector<std::string> log;  // "list n" / "put k=v" / "delete k", in the order handed on
  int64_t last_revision = 0;
  bool out_of_order = false;

  Watch::ListFn on_list() {
    return [this](const Range& r) {
      std::lock_guard<std::mutex> lock(mu);
      keys.clear();
      for (const KeyValue& kv : r.kvs) keys[kv.key] = kv.value;
      log.push_back("list " + std::to_string(r.kvs.size()));
      last_revision = r.revision;
    };
  }
  Watch::EventsFn on_events() {
    return [this](const std::vector<Event>& events, int64_t revision) {
      std::lock_guard<std::mutex> lock(mu);
      for (const Event& e : events) {
        // One transaction's changes share its revision; otherwise revisions rise.
        if (e.kv.mod_revision < last_revision) out_of_order = true;
        last_revision = e.kv.mod_revision;
        if (e.type == Event::Type::kDelete) {
          keys.erase(e.kv.key);
          log.push_back("delete " + e.kv.key);
        } else {
          keys[e.kv.key] = e.kv.value;
          log.push_back("put " + e.kv.key + "=" + e.kv.value);
        }
      }
      if (revision != last_revision) out_of_order = true;
    };
  }
  std::map<std::string, std::string> snapshot() {
    std::lock_guard<std::mutex> lock(mu);
    return keys;
  }
};

}  // namespace

TEST(EtcdEndpoint, OnlyHttpHostAndPortAreAccepted) {
  EXPECT_EQ(parse_endpoint("http://127.0.0.1:2379"),
            std::make_pair(std::string("127.0.0.1"), std::string("2379")));
  EXPECT_EQ(parse_endpoint("http://etcd-0:2379/").first, "etcd-0");
  EXPECT_EQ(parse_endpoint("http://[::1]:2379").first, "::1");
  for (const char* bad : {"127.0.0.1:2379", "https://h:2379", "http://h", "http://h:0",
                          "http://h:65536", "http://h:23x9", "http://:2379", "http://h:2379/v3"}) {
    EXPECT_THROW(parse_endpoint(bad), std::invalid_argument) << bad;
  }
  EXPECT_EQ(prefix_end("/a/"), "/a0");
  EXPECT_EQ(prefix_end(std::string("a\xff", 2)), "b");
}

TEST_F(Etcd, KeysAndValuesAreBytesAndPrefixesSelectTheirKeys) {
  Client c(etcd_.endpoint());
  const std::string binary("v\0\xff\x01 end", 8);
  const int64_t r1 = c.put("/t/a", binary);
  const int64_t r2 = c.put("/t/b", "");
  c.put("/t0", "outside the prefix");
  c.put("/u/a", "other");
  EXPECT_GT(r2, r1);
  const Range one = c.get("/t/a");
  ASSERT_EQ(one.kvs.size(), 1u);
  EXPECT_EQ(one.kvs[0].value, binary);
  EXPECT_EQ(one.kvs[0].version, 1);
  EXPECT_EQ(one.kvs[0].mod_revision, r1);
  EXPECT_TRUE(c.get("/t/missing").kvs.empty());
  const Range all = c.get_prefix("/t/");
  ASSERT_EQ(all.kvs.size(), 2u);
  EXPECT_EQ(all.kvs[0].key, "/t/a");
  EXPECT_EQ(all.kvs[1].key, "/t/b");
  EXPECT_EQ(all.kvs[1].value, "");
  EXPECT_GE(all.revision, r2 + 2);
  EXPECT_EQ(c.erase_prefix("/t/"), 2);
  EXPECT_TRUE(c.get_prefix("/t/").kvs.empty());
  EXPECT_EQ(c.get("/t0").kvs.size(), 1u);
  EXPECT_EQ(c.erase("/u/a"), 1);
  EXPECT_EQ(c.erase("/u/a"), 0);
}

TEST_F(Etcd, TransactionsChangeAKeyOnlyFromTheStateTheyRead) {
  Client c(etcd_.endpoint());
  // Create only if missing: the second writer loses and reads the winner's value.
  TxnResult first = c.txn({Compare::missing("/map")}, {Op::put("/map", "epoch 1")});
  EXPECT_TRUE(first.succeeded);
  TxnResult second =
      c.txn({Compare::missing("/map")}, {Op::put("/map", "epoch 1 too")}, {Op::get("/map")});
  EXPECT_FALSE(second.succeeded);
  ASSERT_EQ(second.gets.size(), 1u);
  ASSERT_EQ(second.gets[0].kvs.size(), 1u);
  EXPECT_EQ(second.gets[0].kvs[0].value, "epoch 1");
  // Compare-and-swap on the revision read: a stale revision changes nothing.
  const int64_t read_at = second.gets[0].kvs[0].mod_revision;
  EXPECT_TRUE(
      c.txn({Compare::mod_revision("/map", read_at)}, {Op::put("/map", "epoch 2")}).succeeded);
  EXPECT_FALSE(
      c.txn({Compare::mod_revision("/map", read_at)}, {Op::put("/map", "epoch 2b")}).succeeded);
  EXPECT_EQ(c.get("/map").kvs[0].value, "epoch 2");
  // On the value, with several operations applied together.
  EXPECT_FALSE(c.txn({Compare::value_is("/map", "epoch 1")}, {Op::erase("/map")}).succeeded);
  const TxnResult both = c.txn({Compare::value_is("/map", "epoch 2")},
                               {Op::put("/map", "epoch 3"), Op::put("/log", "3"), Op::get("/log")});
  EXPECT_TRUE(both.succeeded);
  ASSERT_EQ(both.gets.size(), 1u);
  EXPECT_EQ(both.gets[0].kvs[0].value, "3");
  EXPECT_EQ(c.get("/map").kvs[0].value, "epoch 3");
}

TEST_F(Etcd, ALeaseKeepsItsKeysWhileRenewedAndDropsThemWhenItExpires) {
  Client c(etcd_.endpoint());
  const int64_t renewed = c.grant(2), left = c.grant(2), revoked = c.grant(60);
  c.put("/nodes/1", "renewed", renewed);
  c.put("/nodes/2", "left alone", left);
  c.put("/nodes/3", "revoked", revoked);
  EXPECT_EQ(c.get("/nodes/1").kvs.at(0).lease, renewed);
  c.revoke(revoked);
  EXPECT_TRUE(c.get("/nodes/3").kvs.empty()) << "revoking drops the keys at once";
  c.revoke(revoked);  // twice: no error
  // Renewed every 0.5 s for 4 s (twice its TTL): kept. The other expires meanwhile.
  const auto start = Clock::now();
  while (Clock::now() - start < seconds(4)) {
    EXPECT_GT(c.keep_alive(renewed), 0);
    std::this_thread::sleep_for(milliseconds(500));
  }
  EXPECT_EQ(c.get("/nodes/1").kvs.size(), 1u);
  EXPECT_TRUE(c.get("/nodes/2").kvs.empty()) << "a lease not renewed expires with its keys";
  EXPECT_EQ(c.keep_alive(left), 0) << "an expired lease cannot be renewed";
  // Left alone, the renewed one goes too, within its TTL (etcd checks leases every 500 ms).
  EXPECT_TRUE(eventually([&] { return c.get("/nodes/1").kvs.empty(); }, seconds(4)));
  // A key cannot be put under a lease that is gone: etcd's own error, with its code.
  try {
    c.put("/nodes/4", "x", left);
    ADD_FAILURE() << "a put under an expired lease was accepted";
  } catch (const EtcdError& e) {
    EXPECT_EQ(e.code(), 5) << e.what();  // NotFound
    EXPECT_NE(std::string(e.what()).find("lease not found"), std::string::npos) << e.what();
  }
}

TEST_F(Etcd, AWatchHandsOnTheListThenEveryChangeInOrder) {
  Client c(etcd_.endpoint());
  c.put("/w/before", "1");
  c.put("/x/outside", "1");
  Cache cache;
  Watch w(etcd_.endpoint(), "/w/", cache.on_list(), cache.on_events());
  ASSERT_TRUE(eventually([&] { return w.lists() == 1; }));
  EXPECT_EQ(cache.snapshot(), (std::map<std::string, std::string>{{"/w/before", "1"}}));
  for (int i = 0; i < 50; ++i) c.put("/w/k" + std::to_string(i % 5), std::to_string(i));
  c.erase("/w/before");
  c.put("/x/outside", "2");
  const TxnResult t = c.txn({}, {Op::put("/w/a", "txn"), Op::put("/w/b", "txn")});
  std::map<std::string, std::string> want;
  for (int i = 45; i < 50; ++i) want["/w/k" + std::to_string(i % 5)] = std::to_string(i);
  want["/w/a"] = want["/w/b"] = "txn";
  ASSERT_TRUE(eventually([&] { return w.revision() == t.revision; }))
      << w.revision() << " vs " << t.revision;
  EXPECT_EQ(cache.snapshot(), want);
  std::lock_guard<std::mutex> lock(cache.mu);
  EXPECT_FALSE(cache.out_of_order);
  ASSERT_EQ(cache.log.size(), 1u + 50 + 1 + 2) << "one list, then one entry per change";
  EXPECT_EQ(cache.log[1], "put /w/k0=0");
  EXPECT_EQ(cache.log[51], "delete /w/before");
  EXPECT_EQ(w.lists(), 1u);
}

// The watch's connection is cut (a proxy between it and etcd) while keys change and etcd
// compacts its history: the watch cannot resume where it was, lists again, and the cache equals
// etcd's keys. A cut without compaction resumes without listing and misses nothing.
TEST_F(Etcd, AWatchResumesAfterACutAndListsAgainWhenTheHistoryIsCompacted) {
  Client c(etcd_.endpoint());
  wp::test::TcpProxy proxy(etcd_.port());
  Cache cache;
  Watch w(proxy.endpoint(), "/c/", cache.on_list(), cache.on_events());
  ASSERT_TRUE(eventually([&] { return w.lists() == 1; }));
  c.put("/c/a", "1");
  ASSERT_TRUE(eventually([&] { return cache.snapshot().count("/c/a") == 1; }));

  proxy.cut();
  c.put("/c/b", "2");
  c.put("/c/a", "1b");
  std::this_thread::sleep_for(milliseconds(300));
  EXPECT_EQ(cache.snapshot().count("/c/b"), 0u) << "cut off: nothing arrives";
  proxy.mend();
  ASSERT_TRUE(eventually([&] { return cache.snapshot().count("/c/b") == 1; }));
  EXPECT_EQ(cache.snapshot().at("/c/a"), "1b");
  EXPECT_EQ(w.lists(), 1u) << "resumed from the revision after the last event";

  proxy.cut();
  c.erase("/c/a");
  c.put("/c/c", "3");
  const int64_t last = c.put("/c/d", "4");
  c.compact(last);
  proxy.mend();
  ASSERT_TRUE(eventually([&] { return w.lists() == 2; })) << "listed again after compaction";
  ASSERT_TRUE(eventually([&] { return w.revision() >= last; }));
  std::map<std::string, std::string> want;
  for (const KeyValue& kv : c.get_prefix("/c/").kvs) want[kv.key] = kv.value;
  EXPECT_EQ(cache.snapshot(), want);
  EXPECT_EQ(want.size(), 3u);
  // And it goes on watching.
  c.put("/c/e", "5");
  EXPECT_TRUE(eventually([&] { return cache.snapshot().count("/c/e") == 1; }));
}

TEST(EtcdUnreachable, CallsFailWithinTheTimeoutAndAWatchStopsAtOnce) {
  const uint16_t nobody = wp::test::free_port();
  Client c("http://127.0.0.1:" + std::to_string(nobody), milliseconds(500));
  const auto start = Clock::now();
  try {
    c.get("/k");
    ADD_FAILURE() << "no etcd, yet an answer";
  } catch (const EtcdError& e) {
    EXPECT_EQ(e.code(), -1);
    EXPECT_NE(std::string(e.what()).find("cannot connect"), std::string::npos) << e.what();
  }
  EXPECT_LT(Clock::now() - start, seconds(2));
  // A watch that never reaches etcd keeps trying in the background; destroying it returns soon.
  Cache cache;
  auto w = std::make_unique<Watch>("http://127.0.0.1:" + std::to_string(nobody), "/p/",
                                   cache.on_list(), cache.on_events());
  std::this_thread::sleep_for(milliseconds(300));
  const auto stop = Clock::now();
  w.reset();
  EXPECT_LT(Clock::now() - stop, seconds(3));
  EXPECT_TRUE(cache.log.empty());
}

// A frozen etcd (SIGSTOP) answers nothing: a call gives up at its timeout rather than hanging,
// and a watch stopped meanwhile returns without waiting for etcd.
TEST_F(Etcd, AFrozenEtcdTimesCallsOutAndDoesNotHoldAWatch) {
  Client c(etcd_.endpoint(), milliseconds(800));
  c.put("/f/a", "1");
  Cache cache;
  auto w = std::make_unique<Watch>(etcd_.endpoint(), "/f/", cache.on_list(), cache.on_events());
  ASSERT_TRUE(eventually([&] { return w->lists() == 1; }));
  etcd_.pause();
  const auto start = Clock::now();
  EXPECT_THROW(c.get("/f/a"), EtcdError);
  const auto took = Clock::now() - start;
  EXPECT_LT(took, seconds(3)) << "one retry at most on a reused connection";
  const auto stop = Clock::now();
  w.reset();
  EXPECT_LT(Clock::now() - stop, seconds(2));
  etcd_.resume();
  EXPECT_EQ(c.get("/f/a").kvs.at(0).value, "1") << "answers again once thawed";
}
