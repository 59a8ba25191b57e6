// End to end: the real `waypoint serve` binary on an ephemeral port, a real socket client.
#include <gtest/gtest.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>
#include <zlib.h>

#include <openssl/evp.h>
#include <boost/asio/connect.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <memory>
#include <random>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "http/client.h"
#include "server_process.h"
#include "test_util.h"

namespace net = boost::asio;
namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
using nlohmann::json;
using tcp = net::ip::tcp;

using wp::test::Client;
using wp::test::run_waypoint;
using wp::test::ServerProcess;

namespace {

/// A vector of its own for each id (no two ids share one, so a search for it has one answer).
std::vector<float> vector_of(uint64_t id) {
  std::mt19937_64 rng(id);
  std::uniform_real_distribution<float> u(0.0f, 10.0f);
  std::vector<float> v(8);
  for (float& x : v) x = u(rng);
  return v;
}

/// Creates collection `name` (8 dimensions, Euclid) holding points 0..19 at vector_of(id), through
/// any client with call(method, target, body); true when both are answered 200.
template <typename C>
bool make_twenty_points(C& c, const std::string& name) {
  const json config{{"vectors", {{"size", 8}, {"distance", "Euclid"}}}};
  if (c.call(bhttp::verb::put, "/collections/" + name, config).first != 200u) return false;
  json points = json::array();
  for (uint64_t id = 0; id < 20; ++id) points.push_back({{"id", id}, {"vector", vector_of(id)}});
  return c.call(bhttp::verb::put, "/collections/" + name + "/points?wait=true",
                {{"points", points}})
             .first == 200u;
}

json payload_of(uint64_t id) {
  return {{"id", id}, {"text", std::string(64 + id % 50, 'a' + id % 26)}};
}

/// Sends `request` on a fresh connection and returns everything the server sends back until it
/// closes (or 5 s pass).
std::string raw_exchange(uint16_t port, const std::string& request) {
  net::io_context ioc;
  tcp::socket sock(ioc);
  sock.connect(tcp::endpoint(net::ip::make_address("127.0.0.1"), port));
  boost::system::error_code ec;
  net::write(sock, net::buffer(request), ec);
  std::string out;
  std::array<char, 4096> buf;
  const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  while (std::chrono::steady_clock::now() < until) {
    const size_t n = sock.read_some(net::buffer(buf), ec);
    if (ec) break;
    out.append(buf.data(), n);
  }
  return out;
}

/// The status code of a raw HTTP answer (0 when there is none).
unsigned status_of(const std::string& answer) {
  return answer.rfind("HTTP/1.1 ", 0) == 0 ? std::stoul(answer.substr(9, 3)) : 0;
}

}  // namespace

// Four kill -9s, each after a random number of acknowledged batches while the writer keeps
// writing; every other batch is sent without `wait` (acknowledged once RocksDB has it in its WAL,
// unsynced: a process kill, unlike a power loss, cannot take it back). After the last restart every
// acknowledged point is stored whole and is found by a search for its own vector.
TEST(Server, AcknowledgedWritesSurviveKill9) {
  wp::test::TempDir tmp;
  const std::string data = tmp.file("data");
  std::mt19937 rng(1234);
  std::vector<uint64_t> acked_batches;  // a batch b holds ids 4b..4b+3; odd b are sent unwaited
  std::atomic<size_t> acked{0};
  uint64_t next_batch = 0;
  size_t unwaited = 0;
  for (int round = 0; round < 4; ++round) {
    ServerProcess server(data);
    {
      Client c(server.port());
      if (round == 0) {
        auto [st, j] = c.call(bhttp::verb::put, "/collections/crash",
                              {{"vectors", {{"size", 8}, {"distance", "Euclid"}}}});
        ASSERT_EQ(st, 200u) << j.dump();
      }
    }
    std::atomic<bool> stop{false};
    std::thread writer([&] {
      try {
        Client c(server.port());
        while (!stop) {
          json pts = json::array();
          for (uint64_t id = 4 * next_batch; id < 4 * next_batch + 4; ++id) {
            pts.push_back({{"id", id}, {"vector", vector_of(id)}, {"payload", payload_of(id)}});
          }
          const bool wait = next_batch % 2 == 0;
          auto [st, j] =
              c.call(bhttp::verb::put,
                     std::string("/collections/crash/points?wait=") + (wait ? "true" : "false"),
                     {{"points", pts}});
          if (st == 200 && j["result"]["status"] == (wait ? "completed" : "acknowledged")) {
            acked_batches.push_back(next_batch);
            unwaited += !wait;
            ++acked;
          }
          ++next_batch;
        }
      } catch (const std::exception&) {
        ++next_batch;  // the batch in flight when the server died: unknown outcome
      }
    });
    // Kill once this round has 5..40 more acknowledged batches (the writer goes on meanwhile).
    const size_t target = acked + 5 + rng() % 36;
    const auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(30);
    while (acked < target && std::chrono::steady_clock::now() < give_up) {
      std::this_thread::sleep_for(std::chrono::microseconds(200));
    }
    EXPECT_GE(acked.load(), target) << "round " << round << ": the server stopped acknowledging";
    EXPECT_EQ(server.kill_and_wait(SIGKILL), -SIGKILL);
    stop = true;
    writer.join();
  }
  ASSERT_GT(unwaited, 5u);
  ServerProcess server(data);
  Client c(server.port());
  json ids = json::array();
  for (uint64_t id = 0; id < 4 * next_batch; ++id) ids.push_back(id);
  auto [st, j] = c.call(bhttp::verb::post, "/collections/crash/points",
                        {{"ids", ids}, {"with_vector", true}, {"with_payload", true}});
  ASSERT_EQ(st, 200u);
  std::map<uint64_t, json> found;
  for (const json& p : j["result"]) found[p["id"].get<uint64_t>()] = p;
  for (uint64_t b : acked_batches) {
    for (uint64_t id = 4 * b; id < 4 * b + 4; ++id) {
      ASSERT_TRUE(found.count(id)) << "acknowledged point " << id << " lost";
    }
  }
  // Nothing is half-written: every stored point is exactly what was sent, and batches are whole.
  for (const auto& [id, p] : found) {
    const std::vector<float> want = vector_of(id);
    ASSERT_EQ(p["vector"].size(), want.size());
    for (size_t k = 0; k < want.size(); ++k) EXPECT_FLOAT_EQ(p["vector"][k].get<float>(), want[k]);
    EXPECT_EQ(p["payload"], payload_of(id));
    for (uint64_t other = id / 4 * 4; other < id / 4 * 4 + 4; ++other) {
      EXPECT_TRUE(found.count(other)) << "batch of " << id << " is partly stored";
    }
  }
  auto [cst, count] = c.call(bhttp::verb::post, "/collections/crash/points/count", json::object());
  EXPECT_EQ(count["result"]["count"].get<size_t>(), found.size());
  // The served index holds every stored point: each is the first answer for its own vector. An
  // exact search (a scan of the index's own vectors) so that the graph's approximation cannot
  // miss one: the question is what the index holds, not how well it is walked.
  size_t missed = 0;
  for (const auto& [id, p] : found) {
    auto [sst, r] =
        c.call(bhttp::verb::post, "/collections/crash/points/search",
               {{"vector", vector_of(id)}, {"limit", 1}, {"params", {{"exact", true}}}});
    ASSERT_EQ(sst, 200u) << r.dump();
    if (r["result"].empty() || r["result"][0]["id"] != id) {
      ++missed;
      ADD_FAILURE() << "search for point " << id << " answers " << r["result"].dump();
    }
  }
  EXPECT_EQ(missed, 0u) << "of " << found.size() << " stored points";
}

TEST(Server, ConcurrentSearchesAndUpsertsOverSockets) {
  wp::test::TempDir tmp;
  ServerProcess server(tmp.file("data"), "--threads 2");
  {
    Client c(server.port());
    ASSERT_EQ(c.call(bhttp::verb::put, "/collections/c",
                     {{"vectors", {{"size", 8}, {"distance", "Cosine"}}}})
                  .first,
              200u);
  }
  std::atomic<int> failures{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      Client c(server.port());
      for (int i = 0; i < 150; ++i) {
        const uint64_t id = t * 1000 + i;
        std::pair<unsigned, json> r;
        if (t < 2) {
          r = c.call(bhttp::verb::put, "/collections/c/points",
                     {{"points", {{{"id", id}, {"vector", vector_of(id + 1)}}}}});
        } else {
          r = c.call(bhttp::verb::post, "/collections/c/points/search",
                     {{"vector", vector_of(i + 1)}, {"limit", 5}});
        }
        if (r.first != 200) ++failures;
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(failures.load(), 0);
  Client c(server.port());
  EXPECT_EQ(c.call(bhttp::verb::post, "/collections/c/points/count", json::object())
                .second["result"]["count"],
            300);
}

TEST(Server, AWriteInFlightHoldsUpNoSearch) {
  // One connection thread: a write that waits on indexing runs on the server's pool, not on the
  // thread that serves the other connections, so searches of another collection are answered
  // meanwhile (those of the written collection wait for its index while a batch goes in).
  wp::test::TempDir tmp;
  ServerProcess server(tmp.file("data"), "--threads 1");
  Client c(server.port());
  for (const char* name : {"/collections/written", "/collections/searched"}) {
    ASSERT_EQ(c.call(bhttp::verb::put, name,
                     {{"vectors", {{"size", 64}, {"distance", "Euclid"}}},
                      {"hnsw_config", {{"m", 32}, {"ef_construct", 400}}}})
                  .first,
              200u);
  }
  std::mt19937 rng(17);
  std::normal_distribution<float> g;
  auto points = [&](uint64_t n) {
    json pts = json::array();
    for (uint64_t id = 0; id < n; ++id) {
      std::vector<float> v(64);
      for (float& x : v) x = g(rng);
      pts.push_back({{"id", id}, {"vector", v}});
    }
    return json{{"points", pts}};
  };
  ASSERT_EQ(c.call(bhttp::verb::put, "/collections/searched/points?wait=true", points(100)).first,
            200u);
  // Seconds of indexing at ef_construct 400 (a quarter of the points under a sanitizer, which
  // slows the write ten times: 45 s for all of them); the text made before the clock starts, so
  // that the request reaches the server at once.
  const uint64_t n = wp::test::kSanitized ? 5000 : 20000;
  const std::string big = points(n).dump();
  using Clock = std::chrono::steady_clock;
  unsigned write_status = 0;
  double write_seconds = 0;
  const auto t0 = Clock::now();
  std::thread writer([&] {
    wp::http::LoopbackClient w(server.port());
    write_status = w.call(bhttp::verb::put, "/collections/written/points?wait=true", big).first;
    write_seconds = std::chrono::duration<double>(Clock::now() - t0).count();
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(300));  // the server is on the write
  for (int i = 0; i < 5; ++i) {
    const auto r = c.call(bhttp::verb::post, "/collections/searched/points/search",
                          {{"vector", std::vector<float>(64, 0.1f * i)}, {"limit", 3}});
    EXPECT_EQ(r.first, 200u) << r.second;
  }
  const double searched = std::chrono::duration<double>(Clock::now() - t0).count();
  writer.join();
  EXPECT_EQ(write_status, 200u);
  // The searches end long before the write (measured: 0.30 s against 3.5 s; a server that ran
  // the write on the connection thread answered them just after it, at 3.53 s).
  EXPECT_LT(searched, write_seconds / 2) << "searches waited for the write";
  EXPECT_EQ(c.call(bhttp::verb::post, "/collections/written/points/count", json::object())
                .second["result"]["count"],
            n);
}

TEST(Server, SigtermShutsDownCleanlyAndKeepsData) {
  wp::test::TempDir tmp;
  {
    ServerProcess server(tmp.file("data"), "--api-key k1");
    Client c(server.port(), "k1");
    ASSERT_EQ(c.call(bhttp::verb::put, "/collections/c",
                     {{"vectors", {{"size", 8}, {"distance", "Dot"}}}})
                  .first,
              200u);
    ASSERT_EQ(c.call(bhttp::verb::put, "/collections/c/points",
                     {{"points", {{{"id", 5}, {"vector", vector_of(5)}}}}})
                  .first,
              200u);
    Client anonymous(server.port());
    EXPECT_EQ(anonymous.call(bhttp::verb::get, "/collections").first, 401u);
    EXPECT_EQ(anonymous.call(bhttp::verb::get, "/healthz").first, 200u);
    EXPECT_EQ(server.kill_and_wait(SIGTERM), 0);  // exits 0 even with an idle keep-alive open
  }
  EXPECT_TRUE(std::filesystem::exists(tmp.file("data") + "/collections/c/index.wpi"));
  ServerProcess server(tmp.file("data"), "--api-key k1");
  Client c(server.port(), "k1");
  auto [st, j] = c.call(bhttp::verb::get, "/collections/c/points/5");
  EXPECT_EQ(st, 200u);
  EXPECT_EQ(j["result"]["id"], 5);
}

namespace {
/// CPU seconds the process has used (user and system), from /proc/PID/stat.
double cpu_seconds(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  std::istringstream fields(text.substr(text.rfind(')') + 2));  // after "PID (comm) "
  std::string f;
  unsigned long long utime = 0, stime = 0;
  for (int i = 3; i <= 15 && fields >> f; ++i) {
    if (i == 14) utime = std::stoull(f);
    if (i == 15) stime = std::stoull(f);
  }
  return static_cast<double>(utime + stime) / static_cast<double>(sysconf(_SC_CLK_TCK));
}

/// CPU seconds the server uses over one second in which one connection asks a search every 20
/// ms (after `c` has made its collection).
double cpu_over_a_second_of_sparse_searches(const ServerProcess& server, Client& c) {
  const double before = cpu_seconds(server.pid());
  const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(1);
  while (std::chrono::steady_clock::now() < until) {
    const auto [st, j] = c.call(bhttp::verb::post, "/collections/c/points/search",
                                {{"vector", vector_of(3)}, {"limit", 1}});
    EXPECT_EQ(st, 200u) << j.dump();
    EXPECT_EQ(j["result"][0]["id"], 3);
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return cpu_seconds(server.pid()) - before;
}
}  // namespace

// --poll-us: a server thread looks for ready requests for that long after its last event before
// it sleeps. With requests 20 ms apart, 100 ms of polling keeps the connection's thread busy
// between them; 1 ms lets it sleep; and either way an idle server sleeps, and exits on SIGTERM.
TEST(Server, APollingThreadSleepsOnceItsPollingTimeHasPassed) {
  wp::test::TempDir tmp;
  std::map<int, double> busy;  // CPU seconds over the second of searches, by --poll-us
  for (const int poll_us : {100000, 1000}) {
    ServerProcess server(tmp.file("data" + std::to_string(poll_us)),
                         "--threads 2 --poll-us " + std::to_string(poll_us));
    Client c(server.port());
    ASSERT_TRUE(make_twenty_points(c, "c"));
    busy[poll_us] = cpu_over_a_second_of_sparse_searches(server, c);
    std::this_thread::sleep_for(std::chrono::milliseconds(300));  // past any polling
    const double before = cpu_seconds(server.pid());
    std::this_thread::sleep_for(std::chrono::seconds(1));
    EXPECT_LT(cpu_seconds(server.pid()) - before, 0.1) << "an idle server sleeps";
    EXPECT_EQ(server.kill_and_wait(SIGTERM), 0);
  }
  // Polling through the 20 ms between requests takes most of a core; 1 ms after each only what
  // the requests cost (under a sanitizer, a few milliseconds each).
  EXPECT_GT(busy[100000], 0.3) << "polling between requests 20 ms apart";
  EXPECT_LT(busy[1000] * 2, busy[100000]) << "asleep between requests 20 ms apart";
}

namespace {
/// A bare HTTP/1.1 connection that sends requests and reads answers apart, so that a test can
/// have many requests in the server at once; reads give up after 10 s.
class BareConnection {
 public:
  explicit BareConnection(uint16_t port) : sock_(ioc_) {
    sock_.connect(tcp::endpoint(net::ip::make_address("127.0.0.1"), port));
    sock_.set_option(tcp::no_delay(true));
    const timeval limit{10, 0};
    setsockopt(sock_.native_handle(), SOL_SOCKET, SO_RCVTIMEO, &limit, sizeof limit);
  }
  void send(const std::string& bytes) { net::write(sock_, net::buffer(bytes)); }
  /// The next answer's status and body ({0, ""} when none comes whole).
  std::pair<unsigned, std::string> answer() {
    size_t head_end;
    while ((head_end = in_.find("\r\n\r\n")) == std::string::npos) {
      if (!read_more()) return {0, ""};
    }
    const std::string head = in_.substr(0, head_end);
    const size_t at = head.find("Content-Length: ");
    if (at == std::string::npos) return {0, ""};
    const size_t length = std::stoul(head.substr(at + 16));
    while (in_.size() < head_end + 4 + length) {
      if (!read_more()) return {0, ""};
    }
    std::pair<unsigned, std::string> out{status_of(head), in_.substr(head_end + 4, length)};
    in_.erase(0, head_end + 4 + length);
    return out;
  }

 private:
  bool read_more() {
    std::array<char, 4096> buf;
    const ssize_t n = ::recv(sock_.native_handle(), buf.data(), buf.size(), 0);
    if (n <= 0) return false;
    in_.append(buf.data(), static_cast<size_t>(n));
    return true;
  }
  net::io_context ioc_;
  tcp::socket sock_;
  std::string in_;
};

std::string search_request(uint64_t id) {
  const std::string body = json{{"vector", vector_of(id)}, {"limit", 1}}.dump();
  return "POST /collections/c/points/search HTTP/1.1\r\nHost: x\r\nContent-Type: "
         "application/json\r\nContent-Length: " +
         std::to_string(body.size()) + "\r\n\r\n" + body;
}
}  // namespace

// A server thread serving several connections holds the answers of the requests it read together
// and sends them once those are answered (HeldAnswers in http/server.cpp). With every
// connection on one thread and all their requests sent before any answer is read, each
// connection still gets its own answers, in its order (two pipelined on one), none is held for
// good, and a request of another route among them (a scroll: the held answers go out before it)
// is answered too.
TEST(Server, AnswersSentTogetherReachTheirOwnConnections) {
  wp::test::TempDir tmp;
  ServerProcess server(tmp.file("data"), "--threads 1");
  {
    Client c(server.port());
    ASSERT_TRUE(make_twenty_points(c, "c"));
  }
  std::vector<std::unique_ptr<BareConnection>> connections;
  for (int i = 0; i < 12; ++i)
    connections.push_back(std::make_unique<BareConnection>(server.port()));
  const std::string scroll_body = json{{"limit", 3}}.dump();
  const std::string scroll =
      "POST /collections/c/points/scroll HTTP/1.1\r\nHost: x\r\nContent-Length: " +
      std::to_string(scroll_body.size()) + "\r\n\r\n" + scroll_body;
  for (uint64_t round = 0; round < 30; ++round) {
    const size_t scroller = round % connections.size();
    for (size_t i = 0; i < connections.size(); ++i) {
      const uint64_t id = (round + i) % 20;
      if (i == scroller) {
        connections[i]->send(scroll);
      } else if (i == 0) {
        connections[i]->send(search_request(id) + search_request((id + 7) % 20));  // pipelined
      } else {
        connections[i]->send(search_request(id));
      }
    }
    for (size_t i = 0; i < connections.size(); ++i) {
      const uint64_t id = (round + i) % 20;
      const auto [status, body] = connections[i]->answer();
      ASSERT_EQ(status, 200u) << "round " << round << ", connection " << i << ": " << body;
      const json result = json::parse(body)["result"];
      if (i == scroller) {
        ASSERT_EQ(result["points"].size(), 3u) << body;
        EXPECT_EQ(result["points"][0]["id"], 0) << body;
        continue;
      }
      EXPECT_EQ(result[0]["id"], id) << "round " << round << ", connection " << i;
      if (i == 0) {
        const auto [second_status, second] = connections[i]->answer();
        ASSERT_EQ(second_status, 200u) << second;
        EXPECT_EQ(json::parse(second)["result"][0]["id"], (id + 7) % 20) << "round " << round;
      }
    }
  }
}

namespace {
/// The cores this process may run on.
std::vector<int> allowed_cpus() {
  cpu_set_t allowed;
  std::vector<int> cpus;
  if (sched_getaffinity(0, sizeof allowed, &allowed) != 0) return cpus;
  for (int c = 0; c < CPU_SETSIZE; ++c) {
    if (CPU_ISSET(c, &allowed)) cpus.push_back(c);
  }
  return cpus;
}
/// Lets thread `tid` (0: the caller) run on `cpus` only.
bool pin(pid_t tid, const std::vector<int>& cpus) {
  cpu_set_t set;
  CPU_ZERO(&set);
  for (const int c : cpus) CPU_SET(c, &set);
  return sched_setaffinity(tid, sizeof set, &set) == 0;
}
/// The thread of process `pid` named `name` (-1: none).
pid_t thread_named(pid_t pid, const std::string& name) {
  for (const auto& task :
       std::filesystem::directory_iterator("/proc/" + std::to_string(pid) + "/task")) {
    std::ifstream comm(task.path() / "comm");
    std::string line;
    std::getline(comm, line);
    if (line == name) return std::stoi(task.path().filename().string());
  }
  return -1;
}
/// A counter or gauge in the text of GET /metrics (-1: not there).
double metric_in(const std::string& text, const std::string& name) {
  const size_t at = text.find("\n" + name + " ");
  return at == std::string::npos ? -1.0 : std::stod(text.substr(at + name.size() + 2));
}
/// A counter or gauge of GET /metrics, read on `c`.
double metric(BareConnection& c, const std::string& name) {
  c.send("GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n");
  return metric_in(c.answer().second, name);
}
/// A self-signed certificate for 127.0.0.1 and its key, made by the openssl command line.
void make_certificate(const std::string& cert, const std::string& key) {
  const std::string cmd =
      "openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=127.0.0.1 "
      "-addext subjectAltName=IP:127.0.0.1 -keyout " +
      key + " -out " + cert + " 2>/dev/null";
  ASSERT_EQ(std::system(cmd.c_str()), 0) << cmd;
}

/// A TLS client (OpenSSL through Beast) that trusts only `ca` and checks the server's name.
class TlsClient {
 public:
  TlsClient(uint16_t port, const std::string& ca)
      : ctx_(net::ssl::context::tls_client), stream_(ioc_, ctx_) {
    ctx_.load_verify_file(ca);
    stream_.set_verify_mode(net::ssl::verify_peer);
    stream_.set_verify_callback(net::ssl::rfc2818_verification("127.0.0.1"));
    beast::get_lowest_layer(stream_).connect(
        tcp::endpoint(net::ip::make_address("127.0.0.1"), port));
    stream_.handshake(net::ssl::stream_base::client);  // throws when verification fails
  }
  std::pair<unsigned, json> call(bhttp::verb method, const std::string& target,
                                 const json& body = nullptr) {
    bhttp::request<bhttp::string_body> req{method, target, 11};
    req.set(bhttp::field::host, "127.0.0.1");
    req.keep_alive(true);
    if (!body.is_null()) {
      req.set(bhttp::field::content_type, "application/json");
      req.body() = body.dump();
    }
    req.prepare_payload();
    bhttp::write(stream_, req);
    beast::flat_buffer buffer;
    bhttp::response<bhttp::string_body> res;
    bhttp::read(stream_, buffer, res);
    const std::string& text = res.body();
    return {res.result_int(), json::accept(text) ? json::parse(text) : json(text)};
  }

 private:
  net::io_context ioc_;
  net::ssl::context ctx_;
  beast::ssl_stream<beast::tcp_stream> stream_;
};

/// A connection as the steering tests use it: a search for point `id`'s vector (its status and
/// body), and a counter or gauge of GET /metrics.
struct TestConnection {
  std::function<std::pair<unsigned, std::string>(uint64_t id)> search;
  std::function<double(const std::string& name)> metric;
};

/// Runs `body` on a server of two threads holding collection "c" of twenty points, with
/// steering on (`steer` true), then on another with it off (--steer-connections); with `tls`,
/// the servers speak TLS. `open` makes a connection to it.
void with_and_without_steering(
    const std::function<void(ServerProcess&, bool steer,
                             const std::function<TestConnection()>& open)>& body,
    bool tls = false) {
  for (const bool steer : {true, false}) {
    SCOPED_TRACE(steer ? "steering" : "steering off");
    wp::test::TempDir tmp;
    const std::string cert = tmp.file("cert.pem"), key = tmp.file("key.pem");
    if (tls) make_certificate(cert, key);
    ServerProcess server(tmp.file("data"),
                         std::string("--threads 2 --steer-connections ") +
                             (steer ? "true" : "false") +
                             (tls ? " --tls-cert " + cert + " --tls-key " + key : ""));
    const uint16_t port = server.port();
    std::function<TestConnection()> open;
    if (tls) {
      TlsClient c(port, cert);
      ASSERT_TRUE(make_twenty_points(c, "c"));
      open = [port, cert] {
        const auto c = std::make_shared<TlsClient>(port, cert);
        return TestConnection{
            [c](uint64_t id) {
              const auto [status, j] = c->call(bhttp::verb::post, "/collections/c/points/search",
                                               {{"vector", vector_of(id)}, {"limit", 1}});
              return std::make_pair(status, j.dump());
            },
            [c](const std::string& name) {
              const json text = c->call(bhttp::verb::get, "/metrics").second;
              return metric_in(text.is_string() ? text.get<std::string>() : "", name);
            }};
      };
    } else {
      Client c(port);
      ASSERT_TRUE(make_twenty_points(c, "c"));
      open = [port] {
        const auto c = std::make_shared<BareConnection>(port);
        return TestConnection{[c](uint64_t id) {
                                c->send(search_request(id));
                                return c->answer();
                              },
                              [c](const std::string& name) { return metric(*c, name); }};
      };
    }
    body(server, steer, open);
  }
}
}  // namespace

// Connections follow the core their packets come from (ServerOptions::steer_connections). The
// server's two threads are held on two cores, and two client threads, one on each core, hold
// ten connections each, dealt by the server to its threads in turn (five on each). The
// connections of each client thread come to share the server thread on its core: the five
// misplaced on each side trade places (10 moves), the shares end even. A client on one core
// alone then moves none (all its connections want the same thread: moving them would part the
// shares). Every answer reaches its own connection throughout, a pipelined pair too; with
// steering off nothing moves.
TEST(Server, ConnectionsMoveToTheThreadOnTheCoreTheirPacketsComeFrom) {
  const std::vector<int> cpus = allowed_cpus();
  if (cpus.size() < 2) GTEST_SKIP() << "needs two cores";
  with_and_without_steering([&](ServerProcess& server, bool steer, const auto&) {
    // The first context runs on the server's main thread, the second on "wp-http-1".
    ASSERT_TRUE(pin(server.pid(), {cpus[0]}));
    const pid_t second = thread_named(server.pid(), "wp-http-1");
    ASSERT_GT(second, 0) << "no thread named wp-http-1";
    ASSERT_TRUE(pin(second, {cpus[1]}));
    // The setup connection's session ends once the server reads its close.
    std::this_thread::sleep_for(std::chrono::milliseconds(100));

    std::vector<std::unique_ptr<BareConnection>> connections;
    for (int i = 0; i < 20; ++i) {
      connections.push_back(std::make_unique<BareConnection>(server.port()));
    }
    // `rounds` rounds on connections [begin, end) from a thread on `cpu` (each connection's
    // requests read once a round, a steering check every 64); the first error, or "".
    const auto load = [&](size_t begin, size_t end, int cpu, int rounds) {
      std::string error;
      std::thread([&] {
        if (!pin(0, {cpu})) {
          error = "cannot pin the client";
          return;
        }
        for (int round = 0; round < rounds && error.empty(); ++round) {
          for (size_t i = begin; i < end; ++i) {
            const uint64_t id = (round + i) % 20;
            connections[i]->send(i == begin ? search_request(id) + search_request((id + 7) % 20)
                                            : search_request(id));
          }
          for (size_t i = begin; i < end && error.empty(); ++i) {
            const uint64_t id = (round + i) % 20;
            for (const uint64_t want : {id, (id + 7) % 20}) {
              const auto [status, body] = connections[i]->answer();
              if (status != 200u || json::parse(body)["result"][0]["id"] != want) {
                error = "round " + std::to_string(round) + ", connection " + std::to_string(i) +
                        ": " + std::to_string(status) + " " + body;
              }
              if (i != begin) break;
            }
          }
        }
      }).join();
      return error;
    };
    // The transport's counters, read on one of the connections (no connection added).
    const auto metric = [&](const std::string& name) { return ::metric(*connections[1], name); };
    std::string first, other;
    std::thread on_first([&] { first = load(0, 10, cpus[0], 600); });
    other = load(10, 20, cpus[1], 600);
    on_first.join();
    ASSERT_EQ(first, "");
    ASSERT_EQ(other, "");
    EXPECT_EQ(metric("waypoint_http_connections{thread=\"0\"}"), 10);
    EXPECT_EQ(metric("waypoint_http_connections{thread=\"1\"}"), 10);
    EXPECT_EQ(metric("waypoint_http_connections_moved_total"), steer ? 10 : 0);
    // One client thread on the first core: its connections on the second thread stay there.
    ASSERT_EQ(load(0, 20, cpus[0], 300), "");
    EXPECT_EQ(metric("waypoint_http_connections{thread=\"0\"}"), 10);
    EXPECT_EQ(metric("waypoint_http_connections_moved_total"), steer ? 10 : 0);
  });
}

namespace {
/// The cores a thread may run on, as /proc lists them.
std::string allowed_list(pid_t pid, pid_t tid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/task/" + std::to_string(tid) + "/status");
  for (std::string line; std::getline(in, line);) {
    if (line.rfind("Cpus_allowed_list:", 0) == 0) return line;
  }
  return "none";
}

/// A thread that serves one connection alone moves itself to the core the connection's packets
/// come from when no thread of the server is there (ServerOptions::steer_connections). Both
/// server threads read a request on the second core (so both were last seen there). A client
/// thread on the first core, which another thread keeps busy, then sends requests on one
/// connection, its thread put back on the second core after the first answer (and before each
/// try): the scheduler leaves a thread woken from a busy core on its own idle one, so only the
/// server moves it. It does, and leaves the thread free to run on the cores it could before;
/// with steering off it never moves. The connection itself never moves.
void lone_connection_follows(ServerProcess& server, bool steer,
                             const std::function<TestConnection()>& open,
                             const std::vector<int>& cpus);

/// lone_connection_follows over plain HTTP or TLS (skipped with fewer than two cores).
void lone_connection_follows_over(bool tls) {
  const std::vector<int> cpus = allowed_cpus();
  if (cpus.size() < 2) GTEST_SKIP() << "needs two cores";
  with_and_without_steering(
      [&](ServerProcess& server, bool steer, const auto& open) {
        lone_connection_follows(server, steer, open, cpus);
      },
      tls);
}

void lone_connection_follows(ServerProcess& server, bool steer,
                             const std::function<TestConnection()>& open,
                             const std::vector<int>& cpus) {
  const pid_t threads[2] = {server.pid(), thread_named(server.pid(), "wp-http-1")};
  ASSERT_GT(threads[1], 0) << "no thread named wp-http-1";
  const std::string allowed_before = allowed_list(server.pid(), threads[1]);
  for (const pid_t t : threads) ASSERT_TRUE(pin(t, {cpus[1]}));
  {
    // Dealt one to each thread in turn: each reads a request on the second core.
    const TestConnection a = open(), b = open();
    for (const TestConnection* c : {&a, &b}) ASSERT_EQ(c->search(3).first, 200u);
  }
  for (const pid_t t : threads) ASSERT_TRUE(pin(t, cpus));
  std::this_thread::sleep_for(std::chrono::milliseconds(100));  // their sessions end

  std::atomic<bool> stop{false};
  std::thread busy([&] {
    if (pin(0, {cpus[0]})) {
      while (!stop.load(std::memory_order_relaxed)) {
      }
    }
  });
  const TestConnection c = open();
  std::string error;
  pid_t serving = -1;
  double moved = -1;
  std::thread([&] {
    if (!pin(0, {cpus[0]})) {
      error = "cannot pin the client";
      return;
    }
    const double on_first = c.metric("waypoint_http_connections{thread=\"0\"}");
    if (on_first != 0 && on_first != 1) {
      error = "connections on the first thread: " + std::to_string(on_first);
      return;
    }
    serving = threads[on_first == 1 ? 0 : 1];
    // Busy neighbours (tests run beside this one) can make the scheduler itself bring the
    // thread over, leaving nothing to move: up to five tries of two steering checks each.
    for (int attempt = 0; attempt < 5 && moved < 1 && error.empty(); ++attempt) {
      if (!pin(serving, {cpus[1]}) || !pin(serving, cpus)) {
        error = "cannot move the serving thread";
        return;
      }
      for (int i = 0; i < 128 && error.empty(); ++i) {
        const auto [status, body] = c.search(i % 20);
        if (status != 200u || json::parse(body)["result"][0]["id"] != i % 20) {
          error = "request " + std::to_string(i) + ": " + std::to_string(status) + " " + body;
        }
      }
      moved = c.metric("waypoint_http_threads_moved_total");
    }
  }).join();
  stop = true;
  busy.join();
  ASSERT_EQ(error, "");
  EXPECT_EQ(c.metric("waypoint_http_connections_moved_total"), 0);
  if (steer) {
    EXPECT_GE(moved, 1);
  } else {
    EXPECT_EQ(moved, 0);
  }
  EXPECT_EQ(allowed_list(server.pid(), serving), allowed_before);
}
}  // namespace

TEST(Server, AThreadServingOneConnectionMovesToItsClientsCore) {
  lone_connection_follows_over(/*tls=*/false);
}

// The same over TLS: the connection cannot move (its TLS state would go with it), its thread can.
TEST(Server, AThreadServingOneTlsConnectionMovesToItsClientsCore) {
  lone_connection_follows_over(/*tls=*/true);
}

TEST(Server, OversizeBodiesAre413AndIdleConnectionsTimeOut) {
  wp::test::TempDir tmp;
  ServerProcess server(tmp.file("data"), "--max-body-mb 1 --idle-timeout 1");
  {
    Client c(server.port());
    ASSERT_EQ(c.call(bhttp::verb::put, "/collections/c",
                     {{"vectors", {{"size", 8}, {"distance", "Cosine"}}}})
                  .first,
              200u);
  }
  {
    Client c(server.port());
    json big{{"points", json::array()}, {"pad", std::string(2 << 20, 'x')}};
    auto [st, j] = c.call(bhttp::verb::put, "/collections/c/points", big);
    EXPECT_EQ(st, 413u);
    EXPECT_NE(j["status"]["error"].get<std::string>().find("too large"), std::string::npos);
  }
  Client idle(server.port());
  EXPECT_EQ(idle.call(bhttp::verb::get, "/healthz").first, 200u);
  std::this_thread::sleep_for(std::chrono::milliseconds(2500));
  // The server closed the idle connection: the next request on it fails.
  EXPECT_ANY_THROW(idle.call(bhttp::verb::get, "/healthz"));
  Client fresh(server.port());
  EXPECT_EQ(fresh.call(bhttp::verb::get, "/healthz").first, 200u);
}

// Issue 15, defect 9: malformed HTTP used to close the connection with no answer.
TEST(Server, MalformedRequestsGetTheirStatusBeforeTheConnectionCloses) {
  wp::test::TempDir tmp;
  ServerProcess server(tmp.file("data"));
  const uint16_t port = server.port();
  const std::string conflicting =
      "POST /collections HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n"
      "Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n";
  EXPECT_EQ(status_of(raw_exchange(port, conflicting)), 400u);
  EXPECT_EQ(status_of(raw_exchange(port, "NOT HTTP AT ALL\r\n\r\n")), 400u);
  const std::string big_header =
      "GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: " + std::string(100000, 'a') + "\r\n\r\n";
  EXPECT_EQ(status_of(raw_exchange(port, big_header)), 431u);
  const std::string long_url = "GET /" + std::string(100000, 'a') + " HTTP/1.1\r\nHost: x\r\n\r\n";
  const std::string answer = raw_exchange(port, long_url);
  EXPECT_EQ(status_of(answer), 414u);
  EXPECT_NE(answer.find("{\"status\":{\"error\""), std::string::npos) << answer;
  Client c(port);
  EXPECT_EQ(c.call(bhttp::verb::get, "/healthz").first, 200u);
}

// Issue 15, defect 4: when file descriptors ran out, the listener stopped accepting for good.
// Accept now backs off and resumes; beyond --max-connections a connection gets a 503.
TEST(Server, AcceptResumesAfterDescriptorsRunOutAndExtraConnectionsGet503) {
  wp::test::TempDir tmp;
  {
    ServerProcess server(tmp.file("data"), "--max-connections 100000", "prlimit --nofile=48:48");
    net::io_context ioc;
    std::vector<tcp::socket> held;
    for (int i = 0; i < 80; ++i) {  // far beyond what the server may open
      held.emplace_back(ioc);
      held.back().connect(tcp::endpoint(net::ip::make_address("127.0.0.1"), server.port()));
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
    for (auto& s : held) s.close();
    held.clear();
    // Within the longest back-off (1 s) the server accepts again.
    std::this_thread::sleep_for(std::chrono::milliseconds(1500));
    Client c(server.port());
    EXPECT_EQ(c.call(bhttp::verb::get, "/healthz").first, 200u);
  }
  ServerProcess server(tmp.file("data2"), "--max-connections 3");
  std::vector<std::unique_ptr<Client>> idle;
  for (int i = 0; i < 3; ++i) {
    idle.push_back(std::make_unique<Client>(server.port()));
    ASSERT_EQ(idle.back()->call(bhttp::verb::get, "/healthz").first, 200u);
  }
  const std::string answer =
      raw_exchange(server.port(), "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n");
  EXPECT_EQ(status_of(answer), 503u) << answer;
  idle.clear();
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  Client c(server.port());
  EXPECT_EQ(c.call(bhttp::verb::get, "/healthz").first, 200u);
}

// Issue 15, defect 7: the idle timeout counted from the request read and cut long answers. A
// client that keeps reading a 10 MB answer slowly for longer than the timeout gets all of it.
TEST(Server, ALongAnswerToAClientThatKeepsReadingIsNotCut) {
  wp::test::TempDir tmp;
  // 2 s under a sanitizer: there a 1 s timeout cut the answer at 9.2 of its 10 MB once in a full
  // ASan suite (the reading thread, among two heavy tests, stalled past it).
  const int idle = wp::test::kSanitized ? 2 : 1;
  ServerProcess server(tmp.file("data"), "--idle-timeout " + std::to_string(idle));
  {
    // The body is written out before the connection opens: building it may take longer than
    // the idle timeout (it did under TSan), and the server rightly closes a connection idle that
    // long.
    json points = json::array();
    for (uint64_t id = 0; id < 10000; ++id) {
      points.push_back(
          {{"id", id}, {"vector", vector_of(id)}, {"payload", {{"pad", std::string(1000, 'p')}}}});
    }
    const std::string upsert = json{{"points", points}}.dump();
    wp::http::LoopbackClient c(server.port());
    ASSERT_EQ(c.call(bhttp::verb::put, "/collections/c",
                     R"({"vectors": {"size": 8, "distance": "Euclid"}})")
                  .first,
              200u);
    ASSERT_EQ(c.call(bhttp::verb::put, "/collections/c/points?wait=true", upsert).first, 200u);
  }
  net::io_context ioc;
  tcp::socket sock(ioc);
  sock.open(tcp::v4());
  sock.set_option(net::socket_base::receive_buffer_size(32 * 1024));  // keep the window small
  sock.connect(tcp::endpoint(net::ip::make_address("127.0.0.1"), server.port()));
  const std::string body = R"({"limit": 10000, "with_payload": true})";
  const std::string request =
      "POST /collections/c/points/scroll HTTP/1.1\r\nHost: x\r\n"
      "Content-Type: application/json\r\nConnection: close\r\n"
      "Content-Length: " +
      std::to_string(body.size()) + "\r\n\r\n" + body;
  net::write(sock, net::buffer(request));
  std::string answer;
  std::array<char, 65536> buf;
  boost::system::error_code ec;
  const auto t0 = std::chrono::steady_clock::now();
  while (true) {
    const size_t n = sock.read_some(net::buffer(buf), ec);
    if (ec) break;
    answer.append(buf.data(), n);
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  EXPECT_GT(secs, idle + 0.5) << "the client must read for longer than the idle timeout";
  const size_t head_end = answer.find("\r\n\r\n");
  ASSERT_NE(head_end, std::string::npos);
  EXPECT_EQ(status_of(answer), 200u);
  const json j = json::parse(answer.substr(head_end + 4));
  EXPECT_EQ(j["result"]["points"].size(), 10000u);
}

// Issue 15, defect 6: bodies buffered by all connections had no cap (60 x 31 MiB took RSS from
// 157 MB to 2 GB). A request whose body would pass --max-bodies-mb is answered 503 unread.
TEST(Server, BodiesInFlightAreCappedWith503) {
  wp::test::TempDir tmp;
  ServerProcess server(tmp.file("data"), "--max-body-mb 1 --max-bodies-mb 1");
  net::io_context ioc;
  tcp::socket slow(ioc);
  slow.connect(tcp::endpoint(net::ip::make_address("127.0.0.1"), server.port()));
  // Holds 900 KB of the budget: its header is sent, its body only in part.
  const std::string header =
      "PUT /collections/c HTTP/1.1\r\nHost: x\r\nContent-Type: "
      "application/json\r\nContent-Length: 900000\r\n\r\n";
  net::write(slow, net::buffer(header + std::string(1000, ' ')));
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  const std::string body(500000, ' ');
  const std::string second =
      "PUT /collections/d HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Type: "
      "application/json\r\nContent-Length: 500000\r\n\r\n" +
      body;
  const std::string refused = raw_exchange(server.port(), second);
  EXPECT_EQ(status_of(refused), 503u) << refused.substr(0, 200);
  EXPECT_NE(refused.find("request bodies"), std::string::npos);
  // The slow request completes (a body of spaces is no JSON: 400), and its bytes are released.
  net::write(slow, net::buffer(std::string(899000, ' ')));
  std::array<char, 4096> buf;
  boost::system::error_code ec;
  const size_t n = slow.read_some(net::buffer(buf), ec);
  EXPECT_EQ(status_of(std::string(buf.data(), n)), 400u);
  EXPECT_EQ(status_of(raw_exchange(server.port(), second)), 400u);  // served now
}

// Issue 15, defect 9: HEAD answered 405. It is answered as GET without the body: the
// Content-Length of the body, and the next answer on the connection right after the headers.
TEST(Server, HeadGetsTheHeadersOfGet) {
  wp::test::TempDir tmp;
  ServerProcess server(tmp.file("data"));
  const std::string answer =
      raw_exchange(server.port(),
                   "HEAD /collections HTTP/1.1\r\nHost: x\r\n\r\n"
                   "GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
  EXPECT_EQ(status_of(answer), 200u) << answer;
  const size_t end = answer.find("\r\n\r\n");
  ASSERT_NE(end, std::string::npos);
  const std::string head = answer.substr(0, end);
  const size_t cl = head.find("Content-Length: ");
  ASSERT_NE(cl, std::string::npos) << head;
  EXPECT_GT(std::stoul(head.substr(cl + 16)), 0u) << head;
  EXPECT_EQ(answer.compare(end + 4, 12, "HTTP/1.1 200"), 0) << answer;
}

// The server writes its answers' status line and headers itself: each answer speaks the
// request's HTTP version, says what ends or keeps the connection where that version's default
// differs, and its Content-Length is its body's; answers to requests sent together come back in
// order, each whole.
TEST(Server, AnswersSpeakTheRequestsVersionAndKeepOrEndTheConnection) {
  wp::test::TempDir tmp;
  ServerProcess server(tmp.file("data"));
  struct Answer {
    std::string status_line, head, body;
  };
  // Splits answers sent back to back, each by its Content-Length (none read for the answers
  // `headless` names: those to HEAD requests).
  const auto split = [](const std::string& text, const std::vector<bool>& headless) {
    std::vector<Answer> out;
    size_t at = 0;
    while (at < text.size()) {
      const size_t end = text.find("\r\n\r\n", at);
      if (end == std::string::npos) break;
      Answer a;
      a.head = text.substr(at, end + 2 - at);
      a.status_line = a.head.substr(0, a.head.find("\r\n"));
      const size_t cl = a.head.find("Content-Length: ");
      if (cl == std::string::npos) break;
      const bool no_body = out.size() < headless.size() && headless[out.size()];
      a.body = no_body ? "" : text.substr(end + 4, std::stoul(a.head.substr(cl + 16)));
      at = end + 4 + a.body.size();
      out.push_back(a);
    }
    EXPECT_EQ(at, text.size()) << "bytes after the last whole answer: " << text;
    return out;
  };
  const auto has = [](const Answer& a, const std::string& line) {
    return a.head.find("\r\n" + line + "\r\n") != std::string::npos;
  };

  // HTTP/1.0 without keep-alive: an HTTP/1.0 answer, and the connection ends after it.
  const auto one = split(raw_exchange(server.port(), "GET /healthz HTTP/1.0\r\n\r\n"), {});
  ASSERT_EQ(one.size(), 1u);
  EXPECT_EQ(one[0].status_line, "HTTP/1.0 200 OK");
  EXPECT_FALSE(has(one[0], "Connection: keep-alive")) << one[0].head;
  EXPECT_TRUE(has(one[0], "Content-Type: text/plain; charset=utf-8")) << one[0].head;
  EXPECT_TRUE(has(one[0], "Server: waypoint")) << one[0].head;
  EXPECT_EQ(one[0].body, "healthz check passed");

  // HTTP/1.0 asking to keep the connection, then 1.1 by default, a 404, a HEAD (its body not sent),
  // and 1.1 asking to close: five answers in order on one connection, then its end.
  const auto five =
      split(raw_exchange(server.port(),
                         "GET /healthz HTTP/1.0\r\nConnection: keep-alive\r\n\r\n"
                         "GET /collections HTTP/1.1\r\nHost: x\r\n\r\n"
                         "GET /collections/absent HTTP/1.1\r\nHost: x\r\n\r\n"
                         "HEAD /healthz HTTP/1.1\r\nHost: x\r\n\r\n"
                         "GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"),
            {false, false, false, true, false});
  ASSERT_EQ(five.size(), 5u);
  EXPECT_EQ(five[0].status_line, "HTTP/1.0 200 OK");
  EXPECT_TRUE(has(five[0], "Connection: keep-alive")) << five[0].head;
  EXPECT_EQ(five[1].status_line, "HTTP/1.1 200 OK");
  EXPECT_FALSE(has(five[1], "Connection: close")) << five[1].head;
  EXPECT_TRUE(json::parse(five[1].body).contains("result")) << five[1].body;
  EXPECT_EQ(five[2].status_line, "HTTP/1.1 404 Not Found");
  EXPECT_NE(five[2].body.find("absent"), std::string::npos) << five[2].body;
  EXPECT_EQ(five[3].status_line, "HTTP/1.1 200 OK");
  EXPECT_TRUE(has(five[3], "Content-Length: 20")) << "HEAD names the length of GET's body";
  EXPECT_EQ(five[4].status_line, "HTTP/1.1 200 OK");
  EXPECT_TRUE(has(five[4], "Connection: close")) << five[4].head;
}

// The server reads the heads clients send most itself (http/request_head.h) and leaves the rest
// to Beast's parser: on one connection, a chunked body (Beast's), a simple request sent with it,
// a head cut in two by a pause (Beast's), a body in three pieces after a simple head (read into
// the request), and a last request with its body: each answered, in order, as one whole request.
TEST(Server, RequestsInPiecesAndChunkedBodiesAreReadWhole) {
  wp::test::TempDir tmp;
  ServerProcess server(tmp.file("data"));
  net::io_context ioc;
  tcp::socket sock(ioc);
  sock.connect(tcp::endpoint(net::ip::make_address("127.0.0.1"), server.port()));
  const auto send = [&](const std::string& text) {
    net::write(sock, net::buffer(text));
    std::this_thread::sleep_for(std::chrono::milliseconds(150));
  };
  const std::string points = R"({"points": [{"id": 7, "vector": [0.5, 2]}]})";
  const std::string search = R"({"vector": [1, 1], "limit": 1})";
  const auto chunk = [](const std::string& text) {
    std::ostringstream out;
    out << std::hex << text.size() << "\r\n" << text << "\r\n";
    return out.str();
  };
  send("PUT /collections/k HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n" +
       chunk(R"({"vectors": {"size")") + chunk(R"(: 2, "distance": "Dot"}})") + "0\r\n\r\n" +
       "GET /collections/k HTTP/1.1\r\nHost: x\r\n\r\n"
       "PUT /collections/k/points?wait=true HTTP/1.1\r\nHo");
  send("st: x\r\nContent-Length: " + std::to_string(points.size()) + "\r\n\r\n" + points);
  send("POST /collections/k/points/search HTTP/1.1\r\nHost: x\r\nContent-Length: " +
       std::to_string(search.size()) + "\r\nConnection: close\r\n\r\n" + search.substr(0, 5));
  send(search.substr(5, 10));
  send(search.substr(15));
  std::string answer;
  std::array<char, 4096> buf;
  boost::system::error_code ec;
  while (!ec) answer.append(buf.data(), sock.read_some(net::buffer(buf), ec));
  std::vector<std::string> bodies;
  for (size_t at = 0; (at = answer.find("HTTP/1.1 ", at)) != std::string::npos;) {
    const size_t end = answer.find("\r\n\r\n", at);
    ASSERT_NE(end, std::string::npos) << answer;
    EXPECT_EQ(status_of(answer.substr(at)), 200u) << answer.substr(at, end - at);
    const size_t cl = answer.find("Content-Length: ", at);
    const size_t length = std::stoul(answer.substr(cl + 16));
    bodies.push_back(answer.substr(end + 4, length));
    at = end + 4 + length;
  }
  ASSERT_EQ(bodies.size(), 4u) << answer;
  EXPECT_EQ(json::parse(bodies[0])["result"], true) << bodies[0];
  EXPECT_EQ(json::parse(bodies[1])["result"]["config"]["params"]["vectors"]["size"], 2)
      << bodies[1];
  EXPECT_EQ(json::parse(bodies[2])["result"]["status"], "completed") << bodies[2];
  const json hits = json::parse(bodies[3])["result"];
  ASSERT_EQ(hits.size(), 1u) << bodies[3];
  EXPECT_EQ(hits[0]["id"], 7);
  EXPECT_FLOAT_EQ(hits[0]["score"].get<float>(), 2.5f);
}

// A client that sends `Expect: 100-continue` (curl does for bodies over 1 MiB) waits for a 100
// (Continue) before its body: without one, curl waited a second on every large upsert. The head
// read in place and the one Beast reads (chunked) both get it; an HTTP/1.0 request, and one whose
// body is over the limit (a 413 at once), do not.
TEST(Server, ClientsThatExpect100ContinueGetItBeforeTheyShouldSendTheBody) {
  wp::test::TempDir tmp;
  ServerProcess server(tmp.file("data"), "--max-body-mb 1");
  net::io_context ioc;
  // What the server sends within `ms` milliseconds (all of it, if it closes sooner).
  const auto read_for = [](tcp::socket& sock, int ms) {
    std::string out;
    std::array<char, 4096> buf;
    const auto until = std::chrono::steady_clock::now() + std::chrono::milliseconds(ms);
    pollfd p{sock.native_handle(), POLLIN, 0};
    while (std::chrono::steady_clock::now() < until) {
      if (::poll(&p, 1, 20) <= 0) continue;
      const ssize_t n = ::recv(p.fd, buf.data(), buf.size(), 0);
      if (n <= 0) break;
      out.append(buf.data(), static_cast<size_t>(n));
    }
    return out;
  };
  const auto connect = [&] {
    tcp::socket sock(ioc);
    sock.connect(tcp::endpoint(net::ip::make_address("127.0.0.1"), server.port()));
    return sock;
  };
  const std::string body = R"({"vectors": {"size": 2, "distance": "Dot"}})";
  const std::string length = "Content-Length: " + std::to_string(body.size()) + "\r\n";
  const std::string kContinue = "HTTP/1.1 100 Continue\r\n\r\n";
  {  // read in place
    tcp::socket sock = connect();
    net::write(sock, net::buffer("PUT /collections/a HTTP/1.1\r\nHost: x\r\n" + length +
                                 "Expect: 100-continue\r\n\r\n"));
    EXPECT_EQ(read_for(sock, 2000), kContinue);
    net::write(sock, net::buffer(body));
    const std::string answer = read_for(sock, 2000);
    EXPECT_EQ(answer.rfind("HTTP/1.1 200 OK\r\n", 0), 0u) << answer;
  }
  {  // chunked: Beast's parser
    tcp::socket sock = connect();
    net::write(sock, net::buffer(std::string("PUT /collections/b HTTP/1.1\r\nHost: x\r\n"
                                             "Transfer-Encoding: chunked\r\n"
                                             "Expect: 100-Continue\r\n\r\n")));
    EXPECT_EQ(read_for(sock, 2000), kContinue);
    std::ostringstream chunked;
    chunked << std::hex << body.size() << "\r\n" << body << "\r\n0\r\n\r\n";
    net::write(sock, net::buffer(chunked.str()));
    const std::string answer = read_for(sock, 2000);
    EXPECT_EQ(answer.rfind("HTTP/1.1 200 OK\r\n", 0), 0u) << answer;
  }
  {  // HTTP/1.0: the expectation is ignored (RFC 9110, 10.1.1)
    tcp::socket sock = connect();
    net::write(sock, net::buffer("PUT /collections/c HTTP/1.0\r\n" + length +
                                 "Expect: 100-continue\r\n\r\n"));
    EXPECT_EQ(read_for(sock, 300), "");
    net::write(sock, net::buffer(body));
    const std::string answer = read_for(sock, 2000);
    EXPECT_EQ(answer.rfind("HTTP/1.0 200 OK\r\n", 0), 0u) << answer;
  }
  {  // over the body limit: the 413 is the answer, no 100 before it
    tcp::socket sock = connect();
    net::write(sock, net::buffer(std::string("PUT /collections/d/points HTTP/1.1\r\nHost: x\r\n"
                                             "Content-Length: 5000000\r\n"
                                             "Expect: 100-continue\r\n\r\n")));
    const std::string answer = read_for(sock, 2000);
    EXPECT_EQ(status_of(answer), 413u) << answer;
  }
  Client c(server.port());
  const auto [st, j] = c.call(bhttp::verb::get, "/collections");
  EXPECT_EQ(st, 200u);
  EXPECT_EQ(j["result"]["collections"].size(), 3u) << j.dump();
}

// Issue 15, security: TLS on the REST port (--tls-cert, --tls-key). A verifying TLS client is
// served (several requests on one connection); plain HTTP and a client that trusts another
// certificate get nothing; the server keeps serving.
TEST(Server, TlsServesVerifyingClientsOnly) {
  wp::test::TempDir tmp;
  make_certificate(tmp.file("cert.pem"), tmp.file("key.pem"));
  make_certificate(tmp.file("other.pem"), tmp.file("other-key.pem"));
  ServerProcess server(tmp.file("data"),
                       "--tls-cert " + tmp.file("cert.pem") + " --tls-key " + tmp.file("key.pem"));
  const uint16_t port = server.port();
  {
    TlsClient c(port, tmp.file("cert.pem"));
    EXPECT_TRUE(make_twenty_points(c, "t"));
    const auto [status, found] = c.call(bhttp::verb::post, "/collections/t/points/search",
                                        {{"vector", vector_of(7)}, {"limit", 1}});
    EXPECT_EQ(status, 200u);
    EXPECT_EQ(found["result"][0]["id"], 7);
  }
  EXPECT_EQ(status_of(raw_exchange(port, "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")), 0u);
  EXPECT_THROW(TlsClient(port, tmp.file("other.pem")), boost::system::system_error);
  TlsClient again(port, tmp.file("cert.pem"));
  EXPECT_EQ(again.call(bhttp::verb::get, "/collections/t").second["result"]["points_count"], 20);
}

// A key that is not the certificate's, or one of the two files alone, stops the server at start.
TEST(Server, TlsRefusesAKeyThatIsNotTheCertificates) {
  wp::test::TempDir tmp;
  make_certificate(tmp.file("cert.pem"), tmp.file("key.pem"));
  make_certificate(tmp.file("other.pem"), tmp.file("other-key.pem"));
  const std::string bin = WAYPOINT_BIN;
  const std::string data = " serve --port 0 --data " + tmp.file("data");
  EXPECT_NE(std::system((bin + data + " --tls-cert " + tmp.file("cert.pem") + " --tls-key " +
                         tmp.file("other-key.pem") + " 2>/dev/null")
                            .c_str()),
            0);
  EXPECT_NE(
      std::system((bin + data + " --tls-cert " + tmp.file("cert.pem") + " 2>/dev/null").c_str()),
      0);
}

// The idle timeout is kept by a sweep that ticks every eighth of it, not by a deadline per read
// and write: a connection that sends nothing, one that stops within its request's head or body,
// and a TLS connection that starts no handshake are each closed once it has passed; a client
// that keeps sending its body, a byte at a time for over three times the timeout, is answered.
TEST(Server, ConnectionsSilentForTheIdleTimeoutAreClosedAndSlowOnesAreNot) {
  wp::test::TempDir tmp;
  make_certificate(tmp.file("cert.pem"), tmp.file("key.pem"));
  ServerProcess plain(tmp.file("data"), "--idle-timeout 1");
  ServerProcess tls(tmp.file("tls-data"), "--idle-timeout 1 --tls-cert " + tmp.file("cert.pem") +
                                              " --tls-key " + tmp.file("key.pem"));
  net::io_context ioc;
  // Connects, sends `text`, and returns a thread that stores how long the server took to close.
  const auto watch = [&](uint16_t port, const std::string& text, double& closed_after) {
    auto sock = std::make_shared<tcp::socket>(ioc);
    sock->connect(tcp::endpoint(net::ip::make_address("127.0.0.1"), port));
    if (!text.empty()) net::write(*sock, net::buffer(text));
    const auto t0 = std::chrono::steady_clock::now();
    return std::thread([sock, t0, &closed_after] {
      // Read until the server closes, at most 8 s (a server that never closes fails the test
      // rather than hanging it): poll and recv on the descriptor, which Asio's blocking read
      // would retry without limit.
      closed_after = -1;
      std::array<char, 4096> buf;
      pollfd p{sock->native_handle(), POLLIN, 0};
      while (std::chrono::steady_clock::now() - t0 < std::chrono::seconds(8)) {
        if (::poll(&p, 1, 100) <= 0) continue;
        const ssize_t n = ::recv(p.fd, buf.data(), buf.size(), 0);
        if (n > 0) continue;
        if (n == 0 || errno == ECONNRESET) {
          closed_after =
              std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
        }
        break;
      }
    });
  };
  double silent = 0, in_head = 0, in_body = 0, no_handshake = 0;
  std::vector<std::thread> watchers;
  watchers.push_back(watch(plain.port(), "", silent));
  watchers.push_back(watch(plain.port(), "GET /healthz HTTP/1.1\r\nHost:", in_head));
  watchers.push_back(watch(plain.port(),
                           "POST /collections/c/points/search HTTP/1.1\r\nHost: x\r\n"
                           "Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{",
                           in_body));
  watchers.push_back(watch(tls.port(), "", no_handshake));

  // Meanwhile a request whose body comes a byte every 100 ms (3.7 s, the timeout 1 s) is
  // answered (a search of a collection that is not there: 404). (A head is read whole by one
  // read, as Beast's parser needs it: one that takes longer than the timeout is closed.)
  const std::string body = R"({"vector": [1, 2, 3, 4], "limit": 1})";
  tcp::socket slow(ioc);
  boost::system::error_code ec;
  slow.connect(tcp::endpoint(net::ip::make_address("127.0.0.1"), plain.port()), ec);
  net::write(slow,
             net::buffer("POST /collections/none/points/search HTTP/1.1\r\nHost: x\r\n"
                         "Connection: close\r\nContent-Type: application/json\r\n"
                         "Content-Length: " +
                         std::to_string(body.size()) + "\r\n\r\n"),
             ec);
  for (const char c : body) {
    net::write(slow, net::buffer(&c, 1), ec);
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  std::string answer;
  std::array<char, 4096> buf;
  while (!ec) answer.append(buf.data(), slow.read_some(net::buffer(buf), ec));
  EXPECT_EQ(status_of(answer), 404u) << answer;

  for (auto& w : watchers) w.join();
  for (const double after : {silent, in_head, in_body, no_handshake}) {
    EXPECT_GE(after, 0.95) << "closed before the idle timeout";
    EXPECT_LE(after, wp::test::kSanitized ? 6.0 : 3.0) << "-1: never closed";
  }
}

// Issue 20: what README's `waypoint serve` section promises, on the real binary.
namespace {

void write_file(const std::string& path, const std::string& text) {
  FILE* f = fopen(path.c_str(), "w");
  ASSERT_NE(f, nullptr) << path;
  fputs(text.c_str(), f);
  fclose(f);
}

/// Euclidean distance in double, the oracle for Euclid scores.
double euclid(const float* a, const float* b, size_t d) {
  return std::sqrt(wp::test::l2(a, b, d));
}

}  // namespace

// --host 127.0.0.1 given explicitly is served there; a host that is no IP address, or one this
// machine does not have, stops the server at start with a message naming it and a non-zero exit.
TEST(Server, ExplicitHostIsServedAndABadHostIsAStartupError) {
  wp::test::TempDir tmp;
  {
    ServerProcess server(tmp.file("data"), "--host 127.0.0.1");
    EXPECT_NE(server.startup().find("listening on http://127.0.0.1:"), std::string::npos)
        << server.startup();
    Client c(server.port());
    EXPECT_EQ(c.call(bhttp::verb::get, "/collections").first, 200u);
    EXPECT_EQ(server.kill_and_wait(SIGTERM), 0);
  }
  const std::string base = "serve --port 0 --data " + tmp.file("data") + " --host ";
  for (const std::string host : {"not-an-ip", "127.0.0.256", "localhost:80"}) {
    const auto [status, out] = run_waypoint(base + "'" + host + "'");
    EXPECT_NE(status, 0) << host << ": " << out;
    EXPECT_NE(status, 124) << host << ": the server started: " << out;
    EXPECT_NE(out.find("host: '" + host + "' is not an IP address"), std::string::npos)
        << host << ": " << out;
    EXPECT_EQ(out.find("listening on"), std::string::npos) << out;
  }
  // 192.0.2.1 (TEST-NET-1) is an address, but not this machine's: it cannot be bound (unless
  // the kernel allows binding foreign addresses).
  std::ifstream nonlocal("/proc/sys/net/ipv4/ip_nonlocal_bind");
  int allowed = 0;
  nonlocal >> allowed;
  if (!allowed) {
    const auto [status, out] = run_waypoint(base + "192.0.2.1");
    EXPECT_NE(status, 0) << out;
    EXPECT_NE(status, 124) << "the server started: " << out;
    EXPECT_NE(out.find("cannot listen on 192.0.2.1:0"), std::string::npos) << out;
  }
}

// --config FILE.json: data, host, port, api_key and max_body_mb from the file take effect;
// options on the command line win over the file's.
TEST(Server, ConfigFileSettingsTakeEffectAndTheCommandLineWins) {
  wp::test::TempDir tmp;
  const std::string config = tmp.file("server.json");
  write_file(config, json{{"data", tmp.file("from-file")},
                          {"host", "127.0.0.1"},
                          {"port", 0},
                          {"api_key", "file-key"},
                          {"max_body_mb", 1},
                          {"threads", 1}}
                         .dump());
  const json big{{"points", json::array()}, {"pad", std::string(2 << 20, 'x')}};
  {
    ServerProcess server(ServerProcess::Args{"--config " + config});
    EXPECT_NE(server.startup().find("api key required"), std::string::npos) << server.startup();
    Client anonymous(server.port());
    EXPECT_EQ(anonymous.call(bhttp::verb::get, "/collections").first, 401u);
    Client wrong(server.port(), "cli-key");
    EXPECT_EQ(wrong.call(bhttp::verb::get, "/collections").first, 403u);
    Client c(server.port(), "file-key");
    ASSERT_EQ(c.call(bhttp::verb::put, "/collections/c",
                     {{"vectors", {{"size", 8}, {"distance", "Euclid"}}}})
                  .first,
              200u);
    EXPECT_TRUE(std::filesystem::exists(tmp.file("from-file") + "/collections/c"));
    EXPECT_EQ(c.call(bhttp::verb::put, "/collections/c/points", big).first, 413u);  // 1 MiB
    EXPECT_EQ(server.kill_and_wait(SIGTERM), 0);
  }
  {
    // The command line's key and body limit win; the file's data folder is still used.
    ServerProcess server(
        ServerProcess::Args{"--config " + config + " --api-key cli-key --max-body-mb 4"});
    Client file_key(server.port(), "file-key");
    EXPECT_EQ(file_key.call(bhttp::verb::get, "/collections").first, 403u);
    Client c(server.port(), "cli-key");
    const auto [st, list] = c.call(bhttp::verb::get, "/collections");
    EXPECT_EQ(st, 200u);
    EXPECT_EQ(list["result"]["collections"].size(), 1u) << list.dump();
    EXPECT_NE(c.call(bhttp::verb::put, "/collections/c/points", big).first, 413u);
    EXPECT_EQ(server.kill_and_wait(SIGTERM), 0);
  }
  // A file that cannot be read or is not a JSON object stops the server at start, naming it.
  const std::string data = " --port 0 --data " + tmp.file("data");
  for (const auto& [text, mentions] : std::vector<std::pair<std::string, std::string>>{
           {"{\"port\": ", "is not valid JSON"}, {"[1, 2]", "expected a JSON object"}}) {
    write_file(tmp.file("bad.json"), text);
    const auto [status, out] = run_waypoint("serve --config " + tmp.file("bad.json") + data);
    EXPECT_EQ(status, 2) << text << ": " << out;
    EXPECT_NE(out.find(mentions), std::string::npos) << text << ": " << out;
  }
  const auto [status, out] = run_waypoint("serve --config " + tmp.file("none.json") + data);
  EXPECT_EQ(status, 2) << out;
  EXPECT_NE(out.find("--config: cannot read"), std::string::npos) << out;
}

// A value in --config is checked as the same option on the command line is: out of range or not
// a number, the server does not start and says which setting is wrong. (`--port 65536` is
// refused; the same port in the file used to wrap around to 0, an ephemeral port, and "abc" ended
// in "internal error: stoll".)
TEST(Server, ConfigFileValuesAreCheckedAsTheCommandLinesAre) {
  wp::test::TempDir tmp;
  const std::string data = tmp.file("data");
  {
    const auto [status, out] = run_waypoint("serve --port 65536 --data " + data, 10);
    EXPECT_EQ(status, 2) << out;
    EXPECT_NE(out.find("port"), std::string::npos) << out;
  }
  for (const json& bad :
       {json{{"port", 65536}}, json{{"port", "abc"}}, json{{"threads", 0}},
        json{{"max_body_mb", 0}}, json{{"idle_timeout", -5}}, json{{"prot", 1}},
        json{{"api_key", 7}}, json{{"indexing_threads", -1}}, json{{"indexing_threads", 1025}}}) {
    json config{{"data", data}, {"port", 0}};  // never the default port 6333
    config.update(bad);
    write_file(tmp.file("bad.json"), config.dump());
    const auto [status, out] = run_waypoint("serve --config " + tmp.file("bad.json"), 3);
    const std::string key = bad.begin().key();
    // Refused at start (exit 2, a UserError), naming the setting, never listening.
    EXPECT_TRUE(status == 2 && out.find(key) != std::string::npos &&
                out.find("listening on") == std::string::npos)
        << bad.dump() << " in --config: exit status " << status
        << " (124: still serving after 3 s), "
        << "output: " << out;
  }
}

// CORS as Qdrant answers it by default (actix-cors allowing any origin, method and header,
// outside the api-key check): a web page's preflight is answered 200 without a key, naming the
// origin, the methods and the headers asked for; every answer to a request with an Origin (a 401
// and a 413 too) names that origin, and only that request's answer; with `enable_cors` false
// (Qdrant's setting, here from a config file) a preflight is an OPTIONS request like any other.
namespace {

/// The bytes of one gzip member (zlib, as a client's decoder reads it); "" when it is not one.
std::string gunzip(const std::string& in) {
  z_stream zs{};
  if (inflateInit2(&zs, 15 + 16) != Z_OK) return "";
  zs.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(in.data()));
  zs.avail_in = static_cast<uInt>(in.size());
  std::string out;
  char buf[16384];
  int rc = Z_OK;
  while (rc == Z_OK) {
    zs.next_out = reinterpret_cast<Bytef*>(buf);
    zs.avail_out = sizeof buf;
    rc = inflate(&zs, Z_NO_FLUSH);
    out.append(buf, sizeof buf - zs.avail_out);
  }
  inflateEnd(&zs);
  return rc == Z_STREAM_END && zs.avail_in == 0 ? out : "";
}

}  // namespace

// Answers of 16 KiB or more are gzipped for a client that accepts gzip (Accept-Encoding, read in
// place and by Beast's parser alike), as Qdrant compresses them: Content-Encoding, Vary, the
// Content-Length of the compressed bytes, which inflate to the answer a client without the
// header gets. Smaller answers, clients that refuse gzip (q=0) and a server told
// --compress-min-bytes 0 answer as they are.
TEST(Server, LargeAnswersAreGzippedForClientsThatAcceptIt) {
  wp::test::TempDir tmp;
  ServerProcess server(tmp.file("data"));
  ServerProcess never(tmp.file("never"), "--compress-min-bytes 0");
  for (ServerProcess* s : {&server, &never}) {
    Client c(s->port());
    ASSERT_EQ(c.call(bhttp::verb::put, "/collections/c",
                     {{"vectors", {{"size", 8}, {"distance", "Euclid"}}}})
                  .first,
              200u);
    json points = json::array();
    for (uint64_t id = 0; id < 300; ++id) {
      points.push_back({{"id", id}, {"vector", vector_of(id)}, {"payload", payload_of(id)}});
    }
    ASSERT_EQ(
        c.call(bhttp::verb::put, "/collections/c/points?wait=true", {{"points", points}}).first,
        200u);
  }
  const std::string scroll_body = R"({"limit": 300, "with_payload": true, "with_vector": true})";
  const auto to_hex = [](size_t n) {
    char digits[20];
    return std::string(digits, static_cast<size_t>(std::snprintf(digits, sizeof digits, "%zx", n)));
  };
  const auto scroll = [&](uint16_t port, const std::string& fields, bool chunked) {
    const std::string framing =
        chunked
            ? "Transfer-Encoding: chunked\r\n\r\n" + to_hex(scroll_body.size()) + "\r\n" +
                  scroll_body + "\r\n0\r\n\r\n"
            : "Content-Length: " + std::to_string(scroll_body.size()) + "\r\n\r\n" + scroll_body;
    return raw_exchange(port, "POST /collections/c/points/scroll HTTP/1.1\r\nHost: x\r\n" + fields +
                                  "Content-Type: application/json\r\n" + "Connection: close\r\n" +
                                  framing);
  };
  const auto split = [](const std::string& answer) {
    const size_t end = answer.find("\r\n\r\n");
    return std::pair{answer.substr(0, end + 4), answer.substr(end + 4)};
  };
  const auto has = [](const std::string& head, const std::string& line) {
    return head.find("\r\n" + line + "\r\n") != std::string::npos;
  };
  const auto [plain_head, plain] = split(scroll(server.port(), "", false));
  ASSERT_EQ(status_of(plain_head), 200u) << plain_head;
  ASSERT_GT(plain.size(), 16384u);
  EXPECT_EQ(plain_head.find("Content-Encoding"), std::string::npos) << plain_head;
  EXPECT_TRUE(has(plain_head, "Vary: Accept-Encoding")) << plain_head;  // it could have been
  // The points as one answer: the `time` field aside, the same JSON.
  const auto points_of = [](const std::string& body) { return json::parse(body).at("result"); };
  for (const bool chunked : {false, true}) {
    for (const std::string accept : {"gzip", "br;q=1.0, gzip;q=0.8, *;q=0.1", "*", "GZIP"}) {
      const auto [head, body] =
          split(scroll(server.port(), "Accept-Encoding: " + accept + "\r\n", chunked));
      SCOPED_TRACE(accept + (chunked ? ", chunked" : ""));
      EXPECT_EQ(status_of(head), 200u) << head;
      EXPECT_TRUE(has(head, "Content-Encoding: gzip")) << head;
      EXPECT_TRUE(has(head, "Vary: Accept-Encoding")) << head;
      EXPECT_TRUE(has(head, "Content-Length: " + std::to_string(body.size()))) << head;
      EXPECT_LT(body.size(), plain.size() / 2);
      const std::string inflated = gunzip(body);
      ASSERT_FALSE(inflated.empty());
      EXPECT_EQ(points_of(inflated), points_of(plain));
    }
  }
  // Refused or not named: as it is.
  for (const std::string& fields : {std::string("Accept-Encoding: gzip;q=0, deflate\r\n"),
                                    std::string("Accept-Encoding: identity\r\n"),
                                    std::string("Accept-Encoding: *, gzip;q=0.000\r\n")}) {
    const auto [head, body] = split(scroll(server.port(), fields, false));
    EXPECT_EQ(head.find("Content-Encoding"), std::string::npos) << fields << head;
    EXPECT_TRUE(has(head, "Vary: Accept-Encoding")) << fields << head;
    EXPECT_EQ(points_of(body), points_of(plain)) << fields;
  }
  // A small answer, and a server that never compresses.
  const std::string small =
      raw_exchange(server.port(),
                   "GET /collections HTTP/1.1\r\nHost: x\r\nAccept-Encoding: gzip\r\n"
                   "Connection: close\r\n\r\n");
  EXPECT_EQ(status_of(small), 200u) << small;
  EXPECT_EQ(small.find("Content-Encoding"), std::string::npos) << small;
  EXPECT_EQ(small.find("Vary"), std::string::npos) << small;
  const auto [never_head, never_body] =
      split(scroll(never.port(), "Accept-Encoding: gzip\r\n", false));
  EXPECT_EQ(never_head.find("Content-Encoding"), std::string::npos) << never_head;
  EXPECT_EQ(never_head.find("Vary"), std::string::npos) << never_head;
  EXPECT_EQ(points_of(never_body), points_of(plain));
}

TEST(Server, WebPagesOfAnyOriginGetCorsAnswersAsFromQdrant) {
  wp::test::TempDir tmp;
  ServerProcess server(tmp.file("data"), "--api-key k --max-body-mb 1");
  const std::string origin = "Origin: http://localhost:3000\r\n";
  const std::string preflight_line = "OPTIONS /collections/c/points/search HTTP/1.1\r\nHost: x\r\n";
  const std::string asks =
      "Access-Control-Request-Method: POST\r\n"
      "Access-Control-Request-Headers: api-key, content-type\r\n";
  const auto head_of = [](const std::string& answer) {
    return answer.substr(0, answer.find("\r\n\r\n") + 4);
  };
  const auto has = [](const std::string& head, const std::string& line) {
    return head.find("\r\n" + line + "\r\n") != std::string::npos;
  };
  const std::string kAllowOrigin = "Access-Control-Allow-Origin: http://localhost:3000";
  for (const std::string& framing :
       {std::string(), std::string("Transfer-Encoding: chunked\r\n")}) {
    // Read in place, and by Beast's parser (a chunked body of nothing).
    const std::string answer = raw_exchange(
        server.port(), preflight_line + origin + asks + framing + "Connection: close\r\n\r\n" +
                           (framing.empty() ? "" : "0\r\n\r\n"));
    const std::string head = head_of(answer);
    EXPECT_EQ(status_of(answer), 200u) << answer;
    EXPECT_TRUE(has(head, kAllowOrigin)) << head;
    EXPECT_TRUE(
        has(head, "Access-Control-Allow-Methods: GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS"))
        << head;
    EXPECT_TRUE(has(head, "Access-Control-Allow-Headers: api-key, content-type")) << head;
    EXPECT_TRUE(has(head, "Content-Length: 0")) << head;
    EXPECT_EQ(answer.size(), head.size()) << "no body";
  }
  // Requests of the page: the origin in the answer, a key still needed; on one connection, a
  // request without an Origin after one with it gets none.
  const std::string answers =
      raw_exchange(server.port(), "GET /collections HTTP/1.1\r\nHost: x\r\n" + origin + "\r\n" +
                                      "GET /collections HTTP/1.1\r\nHost: x\r\napi-key: k\r\n" +
                                      origin + "\r\n" +
                                      "GET /collections HTTP/1.1\r\nHost: x\r\napi-key: k\r\n"
                                      "Connection: close\r\n\r\n");
  const size_t second = answers.find("HTTP/1.1", 1), third = answers.find("HTTP/1.1", second + 1);
  ASSERT_NE(third, std::string::npos) << answers;
  const std::string unauthorized = head_of(answers), ok = head_of(answers.substr(second)),
                    plain = head_of(answers.substr(third));
  EXPECT_EQ(status_of(unauthorized), 401u) << answers;
  EXPECT_TRUE(has(unauthorized, kAllowOrigin)) << unauthorized;
  EXPECT_EQ(status_of(ok), 200u) << ok;
  EXPECT_TRUE(has(ok, kAllowOrigin)) << ok;
  EXPECT_TRUE(has(ok, "Vary: Origin")) << ok;
  EXPECT_EQ(status_of(plain), 200u) << plain;
  EXPECT_EQ(plain.find("Access-Control"), std::string::npos) << plain;
  // Refused at its head (the body over the limit): still readable by the page.
  const std::string too_big = raw_exchange(
      server.port(), "PUT /collections/c/points HTTP/1.1\r\nHost: x\r\napi-key: k\r\n" + origin +
                         "Content-Length: 2000000\r\n\r\n");
  EXPECT_EQ(status_of(too_big), 413u) << too_big;
  EXPECT_TRUE(has(head_of(too_big), kAllowOrigin)) << too_big;
  // OPTIONS without Access-Control-Request-Method is no preflight: the API's answer.
  const std::string options = raw_exchange(
      server.port(), preflight_line + "api-key: k\r\n" + origin + "Connection: close\r\n\r\n");
  EXPECT_EQ(status_of(options), 405u) << options;
  EXPECT_TRUE(has(head_of(options), kAllowOrigin)) << options;

  const std::string config = tmp.file("server.json");
  write_file(config, json{{"data", tmp.file("off")}, {"port", 0}, {"enable_cors", false}}.dump());
  ServerProcess off(ServerProcess::Args{"--config " + config});
  const std::string refused =
      raw_exchange(off.port(), preflight_line + origin + asks + "Connection: close\r\n\r\n");
  EXPECT_EQ(status_of(refused), 405u) << refused;
  EXPECT_EQ(refused.find("Access-Control"), std::string::npos) << refused;
  const std::string get = raw_exchange(off.port(), "GET /collections HTTP/1.1\r\nHost: x\r\n" +
                                                       origin + "Connection: close\r\n\r\n");
  EXPECT_EQ(status_of(get), 200u) << get;
  EXPECT_EQ(get.find("Access-Control"), std::string::npos) << get;
}

// --demo DIR (the Quick start): the dataset becomes collection "demo" with every base vector,
// labels as payload {"label": n}, searchable with Euclidean scores; a restart with --demo again
// keeps it as it is.
TEST(Server, DemoLoadsTheDatasetAsACollection) {
  const auto ds = wp::test::load_test_data("digits");
  ASSERT_GT(ds.base.n, 0u);
  ASSERT_GE(ds.labels.n, ds.base.n);
  const size_t d = ds.base.d;
  wp::test::TempDir tmp;
  const std::string demo = "--demo " + wp::test::data_dir() + "/digits";
  for (int run = 0; run < 2; ++run) {
    SCOPED_TRACE(run == 0 ? "first start" : "restart");
    ServerProcess server(tmp.file("data"), demo);
    EXPECT_EQ(
        server.startup().find("loaded demo collection 'demo': " + std::to_string(ds.base.n) +
                              " points of dimension " + std::to_string(d)) != std::string::npos,
        run == 0)
        << server.startup();
    Client c(server.port());
    const auto [st, info] = c.call(bhttp::verb::get, "/collections/demo");
    ASSERT_EQ(st, 200u) << info.dump();
    EXPECT_EQ(info["result"]["points_count"], ds.base.n);
    EXPECT_EQ(info["result"]["config"]["params"]["vectors"]["size"], d);
    EXPECT_EQ(info["result"]["config"]["params"]["vectors"]["distance"], "Euclid");
    for (size_t qi = 0; qi < 3; ++qi) {
      const float* q = ds.query.row(qi);
      std::vector<double> truth;
      for (size_t i = 0; i < ds.base.n; ++i) truth.push_back(euclid(q, ds.base.row(i), d));
      std::vector<double> sorted = truth;
      std::sort(sorted.begin(), sorted.end());
      const auto [sst, found] = c.call(bhttp::verb::post, "/collections/demo/points/search",
                                       {{"vector", std::vector<float>(q, q + d)},
                                        {"limit", 10},
                                        {"with_payload", true},
                                        {"params", {{"exact", true}}}});
      ASSERT_EQ(sst, 200u) << found.dump();
      ASSERT_EQ(found["result"].size(), 10u);
      for (size_t r = 0; r < 10; ++r) {
        const json& h = found["result"][r];
        const size_t id = h["id"];
        ASSERT_LT(id, ds.base.n);
        // Ties are common (pixels are integers): the scores are the 10 smallest distances, each
        // the true distance of the point it names.
        EXPECT_NEAR(h["score"].get<double>(), sorted[r], 1e-4) << "rank " << r;
        EXPECT_NEAR(h["score"].get<double>(), truth[id], 1e-4) << "id " << id;
        EXPECT_EQ(h["payload"], json({{"label", ds.labels.row(id)[0]}})) << "id " << id;
      }
    }
    // A stored point is found first by its own vector.
    const auto [gst, self] = c.call(
        bhttp::verb::post, "/collections/demo/points/search",
        {{"vector", std::vector<float>(ds.base.row(123), ds.base.row(123) + d)}, {"limit", 1}});
    ASSERT_EQ(gst, 200u);
    EXPECT_EQ(self["result"][0]["score"], 0.0);
    EXPECT_EQ(server.kill_and_wait(SIGTERM), 0);
  }
}

// SIGINT, like SIGTERM, stops the server with exit status 0, and what was written (waited for
// or not) is there after a restart, with the index files saved.
TEST(Server, SigintShutsDownCleanlyAndKeepsData) {
  wp::test::TempDir tmp;
  {
    ServerProcess server(tmp.file("data"));
    Client c(server.port());
    ASSERT_EQ(c.call(bhttp::verb::put, "/collections/c",
                     {{"vectors", {{"size", 8}, {"distance", "Euclid"}}}})
                  .first,
              200u);
    for (uint64_t b = 0; b < 5; ++b) {
      json pts = json::array();
      for (uint64_t id = 10 * b; id < 10 * b + 10; ++id) {
        pts.push_back({{"id", id}, {"vector", vector_of(id)}, {"payload", payload_of(id)}});
      }
      ASSERT_EQ(c.call(bhttp::verb::put, "/collections/c/points?wait=false", {{"points", pts}})
                    .second["result"]["status"],
                "acknowledged");
    }
    EXPECT_EQ(server.kill_and_wait(SIGINT), 0);  // with the keep-alive connection still open
  }
  EXPECT_TRUE(std::filesystem::exists(tmp.file("data") + "/collections/c/index.wpi"));
  ServerProcess server(tmp.file("data"));
  Client c(server.port());
  EXPECT_EQ(
      c.call(bhttp::verb::post, "/collections/c/points/count", json::object()).second["result"],
      json({{"count", 50}}));
  json ids = json::array();
  for (uint64_t id = 0; id < 50; ++id) ids.push_back(id);
  const auto [st, got] = c.call(bhttp::verb::post, "/collections/c/points",
                                {{"ids", ids}, {"with_vector", true}, {"with_payload", true}});
  ASSERT_EQ(st, 200u);
  ASSERT_EQ(got["result"].size(), 50u);
  for (const json& p : got["result"]) {
    const uint64_t id = p["id"];
    EXPECT_EQ(p["payload"], payload_of(id));
    const std::vector<float> want = vector_of(id);
    for (size_t k = 0; k < want.size(); ++k) EXPECT_EQ(p["vector"][k].get<float>(), want[k]);
    const auto [sst, hit] =
        c.call(bhttp::verb::post, "/collections/c/points/search", {{"vector", want}, {"limit", 1}});
    EXPECT_EQ(hit["result"][0]["id"], id);
  }
}

// A request in flight when SIGTERM arrives is answered whole (README: "finishes in-flight
// requests"), and what it wrote is there after a restart. The request is a large upsert with
// wait=true, sent whole before the signal and not yet answered when it is sent.
TEST(Server, ARequestInFlightAtSigtermIsAnsweredAndKept) {
  wp::test::TempDir tmp;
  constexpr size_t kPoints = 20000, kDim = 16;
  const auto vectors = wp::test::random_matrix(kPoints, kDim, 2020);
  json pts = json::array();
  for (size_t i = 0; i < kPoints; ++i) {
    pts.push_back({{"id", i},
                   {"vector", std::vector<float>(vectors.row(i), vectors.row(i) + kDim)},
                   {"payload", {{"i", i}}}});
  }
  const std::string body = json{{"points", pts}}.dump();
  ServerProcess server(tmp.file("data"));
  {
    Client c(server.port());
    ASSERT_EQ(c.call(bhttp::verb::put, "/collections/big",
                     {{"vectors", {{"size", kDim}, {"distance", "Euclid"}}}})
                  .first,
              200u);
  }
  net::io_context ioc;
  tcp::socket sock(ioc);
  sock.connect(tcp::endpoint(net::ip::make_address("127.0.0.1"), server.port()));
  const std::string request =
      "PUT /collections/big/points?wait=true HTTP/1.1\r\nHost: x\r\n"
      "Content-Type: application/json\r\nConnection: close\r\nContent-Length: " +
      std::to_string(body.size()) + "\r\n\r\n" + body;
  net::write(sock, net::buffer(request));
  std::this_thread::sleep_for(std::chrono::milliseconds(50));  // the server has read it
  ASSERT_EQ(sock.available(), 0u) << "answered before the signal: make the upsert larger";
  const auto t0 = std::chrono::steady_clock::now();
  server.signal(SIGTERM);
  std::string answer;
  std::array<char, 4096> buf;
  boost::system::error_code ec;
  while (true) {
    const size_t n = sock.read_some(net::buffer(buf), ec);
    if (ec) break;
    answer.append(buf.data(), n);
  }
  const double after = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  EXPECT_EQ(server.wait(), 0);
  ASSERT_EQ(status_of(answer), 200u) << answer.substr(0, 300);
  const size_t head_end = answer.find("\r\n\r\n");
  ASSERT_NE(head_end, std::string::npos);
  const json j = json::parse(answer.substr(head_end + 4));
  EXPECT_EQ(j["result"]["status"], "completed") << j.dump();
  std::printf("answered %.3f s after SIGTERM\n", after);

  ServerProcess again(tmp.file("data"));
  Client c(again.port());
  EXPECT_EQ(c.call(bhttp::verb::post, "/collections/big/points/count", json::object())
                .second["result"]["count"],
            kPoints);
  for (const size_t id : {size_t{0}, kPoints / 2, kPoints - 1}) {
    const auto [st, p] = c.call(bhttp::verb::get, "/collections/big/points/" + std::to_string(id));
    ASSERT_EQ(st, 200u) << id;
    EXPECT_EQ(p["result"]["payload"], json({{"i", id}}));
    for (size_t k = 0; k < kDim; ++k) {
      EXPECT_EQ(p["result"]["vector"][k].get<float>(), vectors.row(id)[k]) << id;
    }
  }
}

// Issue 20: a collection store that RocksDB finds corrupt no longer stops start-up (one damaged
// collection took every other down with it): the server starts, says which store is damaged and
// how, serves the other collections, answers the damaged one's requests with a 500 that says
// why, and leaves its files as they were for whoever repairs them.
TEST(Server, ADamagedStoreIsReportedAndTheOtherCollectionsServe) {
  wp::test::TempDir tmp;
  const std::string data = tmp.file("data");
  {
    ServerProcess server(data);
    Client c(server.port());
    for (const char* name : {"/collections/c", "/collections/d"}) {
      ASSERT_EQ(c.call(bhttp::verb::put, name, {{"vectors", {{"size", 2}, {"distance", "Euclid"}}}})
                    .first,
                200u);
    }
    ASSERT_EQ(c.call(bhttp::verb::put, "/collections/d/points?wait=true",
                     {{"points", {{{"id", 1}, {"vector", {1, 2}}}}}})
                  .first,
              200u);
    ASSERT_EQ(server.kill_and_wait(SIGTERM), 0);
  }
  const std::string current = data + "/collections/c/store/CURRENT";
  ASSERT_TRUE(std::filesystem::exists(current));
  write_file(current, "garbage\n");
  ServerProcess server(data, "2>&1");
  const std::string& out = server.startup();
  EXPECT_NE(out.find("collection `c` could not be opened: cannot open point store"),
            std::string::npos)
      << out;
  EXPECT_NE(out.find("collections/c/store"), std::string::npos) << out;
  EXPECT_NE(out.find("Corruption"), std::string::npos) << out;
  Client c(server.port());
  const auto [status, answer] = c.call(bhttp::verb::get, "/collections/c");
  EXPECT_EQ(status, 500u) << answer;
  EXPECT_NE(answer.dump().find("could not be opened at start"), std::string::npos) << answer;
  EXPECT_EQ(c.call(bhttp::verb::get, "/collections/d/points/1").first, 200u);
  EXPECT_EQ(server.kill_and_wait(SIGTERM), 0);
  EXPECT_EQ(wp::test::read_file(current), "garbage\n");
}

namespace {
/// 1000 letters of id's own (incompressible, so that stores and snapshots are as large as them).
std::string pad_of(uint64_t id) {
  std::mt19937_64 rng(id);
  std::string s(1000, 'a');
  for (char& ch : s) ch = static_cast<char>('a' + rng() % 26);
  return s;
}

std::string sha256_hex(const std::string& bytes) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int n = 0;
  EVP_Digest(bytes.data(), bytes.size(), md, &n, EVP_sha256(), nullptr);
  std::string out;
  char h[3];
  for (unsigned i = 0; i < n; ++i) {
    std::snprintf(h, sizeof h, "%02x", md[i]);
    out += h;
  }
  return out;
}
}  // namespace

// Qdrant's storage snapshot: POST /snapshots on one server, its file given to a fresh one by
// --storage-snapshot, which serves every collection and alias before it listens; given again
// where they exist, the server refuses to start unless --force-snapshot, which puts them back.
TEST(Server, AStorageSnapshotMovesEveryCollectionAndAliasToAnotherServer) {
  wp::test::TempDir tmp;
  const std::string snaps = " --snapshots-dir " + tmp.file("snaps");
  std::string file, checksum;
  {
    ServerProcess first(tmp.file("a"), snaps);
    Client c(first.port());
    for (const char* name : {"/collections/one", "/collections/two"}) {
      ASSERT_EQ(c.call(bhttp::verb::put, name,
                       json::parse(R"({"vectors": {"size": 8, "distance": "Euclid"}})"))
                    .first,
                200u);
    }
    json points = json::array();
    for (uint64_t id = 0; id < 200; ++id) points.push_back({{"id", id}, {"vector", vector_of(id)}});
    ASSERT_EQ(
        c.call(bhttp::verb::put, "/collections/one/points?wait=true", {{"points", points}}).first,
        200u);
    ASSERT_EQ(c.call(bhttp::verb::post, "/collections/aliases",
                     json::parse(R"({"actions": [{"create_alias": {"collection_name": "one",
                                     "alias_name": "latest"}}]})"))
                  .first,
              200u);
    const auto [status, made] = c.call(bhttp::verb::post, "/snapshots?wait=true");
    ASSERT_EQ(status, 200u) << made;
    file = tmp.file("snaps/" + made["result"]["name"].get<std::string>());
    checksum = made["result"]["checksum"];
    const std::string answer =
        raw_exchange(first.port(), "GET /snapshots/" + made["result"]["name"].get<std::string>() +
                                       " HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    ASSERT_EQ(status_of(answer), 200u) << answer.substr(0, 300);
    EXPECT_EQ(sha256_hex(answer.substr(answer.find("\r\n\r\n") + 4)), checksum);
  }
  auto count = [](Client& c, const std::string& name) {
    const auto [status, body] =
        c.call(bhttp::verb::post, "/collections/" + name + "/points/count", json::object());
    return status == 200u ? body["result"]["count"].get<int>() : -1;
  };
  const std::string recover = " --storage-snapshot " + file;
  {
    ServerProcess second(tmp.file("b"), recover);
    EXPECT_NE(second.startup().find("recovered 2 collections from storage snapshot"),
              std::string::npos)
        << second.startup();
    Client c(second.port());
    EXPECT_EQ(count(c, "one"), 200);
    EXPECT_EQ(count(c, "latest"), 200);  // the alias came with it
    EXPECT_EQ(count(c, "two"), 0);
    ASSERT_EQ(c.call(bhttp::verb::post, "/collections/one/points/delete?wait=true",
                     {{"points", {1, 2, 3}}})
                  .first,
              200u);
    EXPECT_EQ(second.kill_and_wait(SIGTERM), 0);
  }
  const std::string base = "serve --port 0 --data " + tmp.file("b");
  const auto [refused, out] = run_waypoint(base + recover);
  EXPECT_NE(refused, 0) << out;
  EXPECT_NE(refused, 124) << "the server started: " << out;
  EXPECT_NE(out.find("collection `one` exists already; give --force-snapshot to replace it"),
            std::string::npos)
      << out;
  EXPECT_EQ(out.find("listening on"), std::string::npos) << out;
  const auto [alone, why] = run_waypoint(base + " --force-snapshot");
  EXPECT_NE(alone, 0) << why;
  EXPECT_NE(why.find("--force-snapshot needs --storage-snapshot FILE"), std::string::npos) << why;
  {
    ServerProcess forced(tmp.file("b"), recover + " --force-snapshot");
    Client c(forced.port());
    EXPECT_EQ(count(c, "one"), 200);  // the points deleted since are back
    EXPECT_EQ(count(c, "latest"), 200);
  }
}

// Qdrant's --snapshot PATH:NAME: collection snapshot files recovered as the collections named
// before the server listens, all or none; refused where one exists unless --force-snapshot.
TEST(Server, SnapshotFilesGivenAtStartBecomeTheCollectionsNamed) {
  wp::test::TempDir tmp;
  std::string file;
  {
    ServerProcess first(tmp.file("a"), "--snapshots-dir " + tmp.file("snaps"));
    Client c(first.port());
    ASSERT_TRUE(make_twenty_points(c, "c"));
    const auto [status, made] = c.call(bhttp::verb::post, "/collections/c/snapshots");
    ASSERT_EQ(status, 200u) << made;
    file = tmp.file("snaps/c/" + made["result"]["name"].get<std::string>());
  }
  // A damaged copy beside a good one: neither becomes a collection.
  const std::string bytes = wp::test::read_file(file);
  {
    std::ofstream(tmp.file("cut.snapshot"), std::ios::binary) << bytes.substr(0, bytes.size() / 2);
  }
  const std::string base = "serve --port 0 --data " + tmp.file("b");
  const auto [damaged, why] =
      run_waypoint(base + " --snapshot " + file + ":x," + tmp.file("cut.snapshot") + ":y");
  EXPECT_EQ(damaged, 2) << why;
  EXPECT_NE(why.find("cut.snapshot: snapshot is damaged"), std::string::npos) << why;
  const auto [bare, what] = run_waypoint(base + " --snapshot " + file);
  EXPECT_EQ(bare, 2) << what;
  EXPECT_NE(what.find("--snapshot: expected PATH:NAME"), std::string::npos) << what;
  auto count = [](Client& c, const std::string& name) {
    const auto [status, body] =
        c.call(bhttp::verb::post, "/collections/" + name + "/points/count", json::object());
    return status == 200u ? body["result"]["count"].get<int>() : -1;
  };
  {
    ServerProcess second(tmp.file("b"), "--snapshot " + file + ":x," + file + ":z");
    EXPECT_NE(second.startup().find("recovered 2 collections from --snapshot"), std::string::npos)
        << second.startup();
    Client c(second.port());
    EXPECT_EQ(count(c, "x"), 20);
    EXPECT_EQ(count(c, "z"), 20);
    EXPECT_EQ(count(c, "y"), -1);
    ASSERT_EQ(
        c.call(bhttp::verb::post, "/collections/x/points/delete?wait=true", {{"points", {1, 2}}})
            .first,
        200u);
  }
  const auto [again, out] = run_waypoint(base + " --snapshot " + file + ":x");
  EXPECT_EQ(again, 2) << out;
  EXPECT_NE(out.find("--snapshot: collection `x` exists already; give --force-snapshot"),
            std::string::npos)
      << out;
  ServerProcess forced(tmp.file("b"), "--snapshot " + file + ":x --force-snapshot");
  Client c(forced.port());
  EXPECT_EQ(count(c, "x"), 20);  // the points deleted since are back
}

// Snapshots over real sockets: the download is streamed from disk with the file's length (HEAD
// too); an upload may pass --max-body-mb up to --max-upload-mb, other bodies may not; the
// recovered collection survives a kill -9.
TEST(Server, SnapshotsDownloadAndUploadPastTheBodyLimitAndSurviveKill9) {
  wp::test::TempDir tmp;
  const std::string flags =
      "--max-body-mb 1 --max-upload-mb 64 --snapshots-dir " + tmp.file("snaps");
  auto server = std::make_unique<ServerProcess>(tmp.file("data"), flags);
  Client c(server->port());
  ASSERT_EQ(c.call(bhttp::verb::put, "/collections/c",
                   json::parse(R"({"vectors": {"size": 8, "distance": "Euclid"}})"))
                .first,
            200u);
  for (uint64_t b = 0; b < 6; ++b) {
    json points = json::array();
    for (uint64_t id = b * 500; id < (b + 1) * 500; ++id) {
      points.push_back({{"id", id}, {"vector", vector_of(id)}, {"payload", {{"pad", pad_of(id)}}}});
    }
    ASSERT_EQ(
        c.call(bhttp::verb::put, "/collections/c/points?wait=true", {{"points", points}}).first,
        200u);
  }
  const auto [st, made] = c.call(bhttp::verb::post, "/collections/c/snapshots");
  ASSERT_EQ(st, 200u) << made;
  const std::string name = made["result"]["name"];
  const uint64_t size = made["result"]["size"];
  ASSERT_GT(size, uint64_t{1} << 20) << "the snapshot must be larger than --max-body-mb";
  EXPECT_TRUE(std::filesystem::exists(tmp.file("snaps/c/" + name)));

  const std::string get =
      "GET /collections/c/snapshots/" + name + " HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
  const std::string answer = raw_exchange(server->port(), get);
  ASSERT_EQ(status_of(answer), 200u) << answer.substr(0, 300);
  const size_t end = answer.find("\r\n\r\n");
  const std::string head = answer.substr(0, end), file = answer.substr(end + 4);
  EXPECT_NE(head.find("Content-Type: application/octet-stream"), std::string::npos) << head;
  EXPECT_NE(head.find("Content-Length: " + std::to_string(size)), std::string::npos) << head;
  EXPECT_EQ(file.size(), size);
  EXPECT_EQ(sha256_hex(file), made["result"]["checksum"]);
  const std::string headed =
      raw_exchange(server->port(), "HEAD /collections/c/snapshots/" + name +
                                       " HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
  EXPECT_NE(headed.find("Content-Length: " + std::to_string(size)), std::string::npos) << headed;
  EXPECT_EQ(headed.size(), headed.find("\r\n\r\n") + 4) << "HEAD sends no body";

  auto post = [&](const std::string& target, const std::string& body, const std::string& type) {
    return raw_exchange(server->port(), "POST " + target +
                                            " HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
                                            "Content-Type: " +
                                            type + "\r\nContent-Length: " +
                                            std::to_string(body.size()) + "\r\n\r\n" + body);
  };
  const std::string form =
      "--BOUND\r\nContent-Disposition: form-data; name=\"snapshot\"; "
      "filename=\"s.snapshot\"\r\n\r\n" +
      file + "\r\n--BOUND--\r\n";
  const std::string uploaded =
      post("/collections/copy/snapshots/upload?priority=snapshot&checksum=" +
               made["result"]["checksum"].get<std::string>(),
           form, "multipart/form-data; boundary=BOUND");
  EXPECT_EQ(status_of(uploaded), 200u) << uploaded.substr(0, 400);
  EXPECT_EQ(status_of(post("/collections/c/points/search", form, "application/json")), 413u);
  EXPECT_EQ(c.call(bhttp::verb::post, "/collections/copy/points/count", json::object())
                .second["result"]["count"],
            3000);

  server->kill_and_wait(SIGKILL);
  server = std::make_unique<ServerProcess>(tmp.file("data"), flags);
  Client again(server->port());
  EXPECT_EQ(again.call(bhttp::verb::post, "/collections/copy/points/count", json::object())
                .second["result"]["count"],
            3000);
  const auto [s2, p] = again.call(bhttp::verb::get, "/collections/copy/points/2999");
  EXPECT_EQ(p["result"]["payload"]["pad"], pad_of(2999));
}
