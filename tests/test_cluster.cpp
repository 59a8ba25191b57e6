// `waypoint serve --cluster` (issue 17) end to end: real waypoint processes and a real etcd on
// loopback. Membership: nodes see each other in GET /cluster, a killed node leaves the map
// within its lease, a stopped one at once; a node that cannot renew its lease says it is fenced
// and joins again; node ids are one process each; bad flags are refused naming the flag.
#include <gtest/gtest.h>

#include <chrono>
#include <fstream>
#include <functional>
#include <thread>

#include "etcd_process.h"
#include "server_process.h"
#include "test_util.h"

using nlohmann::json;
using wp::test::Client;
using wp::test::run_waypoint;
using wp::test::ServerProcess;
using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;
using std::chrono::seconds;
namespace bhttp = boost::beast::http;

namespace {

class Cluster : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_TRUE(etcd_.ok()) << etcd_.why(); }

  /// A node with its own data folder; `extra` is added to its command line.
  std::unique_ptr<ServerProcess> node(int id, const std::string& extra = "--lease-ttl 2") {
    return std::make_unique<ServerProcess>(
        dir_.file("node" + std::to_string(id)),
        "--cluster --etcd " + etcd_.endpoint() + " --node-id " + std::to_string(id) + " " + extra);
  }

  static json cluster_of(const ServerProcess& s) {
    Client c(s.port());
    auto [status, body] = c.call(bhttp::verb::get, "/cluster");
    EXPECT_EQ(status, 200u) << body.dump();
    return body["result"];
  }

  wp::test::EtcdProcess etcd_;
  wp::test::TempDir dir_;
};

/// Waits up to `limit` for `done` (checked every 50 ms); returns whether it came.
bool eventually(const std::function<bool()>& done, milliseconds limit = seconds(10)) {
  const auto until = Clock::now() + limit;
  while (Clock::now() < until) {
    if (done()) return true;
    std::this_thread::sleep_for(milliseconds(50));
  }
  return done();
}

std::string url_of(const ServerProcess& s) {
  return "http://127.0.0.1:" + std::to_string(s.port());
}

}  // namespace

TEST_F(Cluster, NodesSeeEachOtherAndAKilledNodeLeavesWithinItsLease) {
  auto n1 = node(1), n2 = node(2), n3 = node(3);
  const json want_peers{
      {"1", {{"uri", url_of(*n1)}}}, {"2", {{"uri", url_of(*n2)}}}, {"3", {{"uri", url_of(*n3)}}}};
  for (const ServerProcess* n : {n1.get(), n2.get(), n3.get()}) {
    ASSERT_TRUE(eventually([&] { return cluster_of(*n)["peers"] == want_peers; }))
        << cluster_of(*n).dump();
  }
  const json s = cluster_of(*n2);
  EXPECT_EQ(s["status"], "enabled");
  EXPECT_EQ(s["peer_id"], 2);
  EXPECT_EQ(s["consensus_thread_status"]["consensus_thread_status"], "working");
  EXPECT_EQ(s["etcd"]["fenced"], false);
  EXPECT_EQ(s["etcd"]["endpoint"], etcd_.endpoint());
  EXPECT_GT(s["raft_info"]["commit"].get<int64_t>(), 0);

  // kill -9: the node's key goes when its lease (2 s) runs out, and every node's map follows.
  const auto killed = Clock::now();
  n2->kill_and_wait(SIGKILL);
  ASSERT_TRUE(eventually([&] { return !cluster_of(*n1)["peers"].contains("2"); }, seconds(5)));
  const double gone_s = std::chrono::duration<double>(Clock::now() - killed).count();
  std::printf("a killed node left the map after %.2f s (lease TTL 2 s)\n", gone_s);
  EXPECT_LE(gone_s, 2 + 1.5);
  EXPECT_TRUE(eventually([&] { return !cluster_of(*n3)["peers"].contains("2"); }, seconds(1)));

  // A node stopped by a signal revokes its lease as it leaves: gone at once.
  const auto stopped = Clock::now();
  EXPECT_EQ(n3->kill_and_wait(SIGTERM), 0);
  ASSERT_TRUE(eventually([&] { return !cluster_of(*n1)["peers"].contains("3"); }, seconds(5)));
  EXPECT_LT(Clock::now() - stopped, milliseconds(1500));
  EXPECT_EQ(cluster_of(*n1)["peers"], (json{{"1", {{"uri", url_of(*n1)}}}}));
}

TEST_F(Cluster, ANodeThatCannotRenewItsLeaseIsFencedAndJoinsAgain) {
  auto n1 = node(1);
  ASSERT_TRUE(eventually([&] { return cluster_of(*n1)["peers"].contains("1"); }));
  EXPECT_EQ(cluster_of(*n1)["etcd"]["fenced"], false);
  // etcd frozen for 3 s: no renewal answers. Within TTL 2 s less its margin the node fences.
  etcd_.pause();
  const auto frozen = Clock::now();
  ASSERT_TRUE(eventually([&] { return cluster_of(*n1)["etcd"]["fenced"] == true; }, seconds(3)));
  const double fenced_after = std::chrono::duration<double>(Clock::now() - frozen).count();
  EXPECT_LE(fenced_after, 2.0) << "fenced no later than the lease could expire";
  const json s = cluster_of(*n1);
  EXPECT_EQ(s["consensus_thread_status"]["consensus_thread_status"], "stopped_with_err");
  EXPECT_NE(s["consensus_thread_status"]["err"].get<std::string>().find("lease lost"),
            std::string::npos);
  std::this_thread::sleep_for(seconds(3) - (Clock::now() - frozen));
  etcd_.resume();
  // Thawed: the node renews or, its lease expired, joins again with a new one.
  ASSERT_TRUE(eventually([&] { return cluster_of(*n1)["etcd"]["fenced"] == false; }, seconds(8)))
      << cluster_of(*n1).dump();
  EXPECT_TRUE(eventually([&] { return cluster_of(*n1)["peers"].contains("1"); }));
  std::printf("joins after a 3 s freeze: %d\n", cluster_of(*n1)["etcd"]["joins"].get<int>());
}

TEST_F(Cluster, ANodeIdIsOneProcessAndARestartAtTheSameUrlTakesItOver) {
  const uint16_t port = wp::test::free_port();
  const std::string url = "http://127.0.0.1:" + std::to_string(port);
  auto n1 = std::make_unique<ServerProcess>(
      ServerProcess::Args{"--port " + std::to_string(port) + " --data " + dir_.file("a") +
                          " --cluster --etcd " + etcd_.endpoint() + " --node-id 7 --lease-ttl 30"});
  // Another process asking for id 7 while the first holds it: refused, naming the holder.
  const auto [status, out] = run_waypoint("serve --port 0 --data " + dir_.file("b") +
                                          " --cluster --etcd " + etcd_.endpoint() + " --node-id 7");
  EXPECT_EQ(status, 2) << out;
  EXPECT_NE(out.find("--node-id 7 is held by a live node at " + url), std::string::npos) << out;
  // kill -9 and a restart on the same URL within the 30 s lease: takes its key over at once.
  n1->kill_and_wait(SIGKILL);
  const auto restarted = Clock::now();
  auto again = std::make_unique<ServerProcess>(
      ServerProcess::Args{"--port " + std::to_string(port) + " --data " + dir_.file("a") +
                          " --cluster --etcd " + etcd_.endpoint() + " --node-id 7 --lease-ttl 30"});
  ASSERT_EQ(again->port(), port);
  EXPECT_LT(Clock::now() - restarted, seconds(10));
  EXPECT_EQ(cluster_of(*again)["peers"], (json{{"7", {{"uri", url}}}}));
}

TEST_F(Cluster, BadClusterFlagsAreRefusedNamingTheFlag) {
  const std::string data = " --port 0 --data " + dir_.file("d");
  const std::string etcd = " --etcd " + etcd_.endpoint();
  const std::vector<std::pair<std::string, std::string>> cases{
      {"--cluster --node-id 1", "--cluster needs --etcd"},
      {"--cluster" + etcd, "--cluster needs --node-id"},
      {"--cluster --node-id 0" + etcd, "--node-id must be in 1.."},
      {"--cluster --node-id abc" + etcd, "--node-id must be an integer"},
      {"--cluster --node-id 99999999999999999" + etcd, "--node-id must be"},
      {"--cluster --node-id 1 --etcd ftp://127.0.0.1:2379", "--etcd: expected http://HOST:PORT"},
      {"--cluster --node-id 1 --etcd http://127.0.0.1:1", "--etcd: cannot join the cluster"},
      {"--cluster --node-id 1 --lease-ttl 1" + etcd, "--lease-ttl must be in 2..3600"},
      {"--cluster --node-id 1 --advertise 127.0.0.1:80" + etcd, "--advertise: expected http://"},
      {"--cluster --node-id 1 --host 0.0.0.0" + etcd, "needs --advertise"},
      {"--node-id 1" + etcd, "need --cluster"},
  };
  for (const auto& [flags, message] : cases) {
    const auto [status, out] = run_waypoint("serve" + data + " " + flags, 30);
    EXPECT_EQ(status, 2) << flags << "\n" << out;
    EXPECT_NE(out.find(message), std::string::npos) << flags << "\n" << out;
  }
  // The same settings from a --config file.
  const std::string config = dir_.file("c.json");
  {
    std::ofstream f(config);
    f << json{{"cluster", true}, {"etcd", etcd_.endpoint()}, {"node_id", 4}, {"lease_ttl", 3}}
             .dump();
  }
  ServerProcess from_file(dir_.file("e"), "--config " + config);
  const json s = cluster_of(from_file);
  EXPECT_EQ(s["peer_id"], 4);
  EXPECT_EQ(s["etcd"]["lease_ttl"], 3);
  // Without --cluster: Qdrant's answer for a single node.
  ServerProcess single(dir_.file("f"));
  EXPECT_EQ(cluster_of(single), (json{{"status", "disabled"}}));
}
