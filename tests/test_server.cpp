// End to end: the real `waypoint serve` binary on an ephemeral port, a real socket client.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <boost/asio/connect.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <nlohmann/json.hpp>

#include <array>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <random>
#include <thread>
#include <vector>

#include "http/client.h"
#include "test_util.h"

namespace net = boost::asio;
namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
using nlohmann::json;
using tcp = net::ip::tcp;

namespace {

/// `waypoint serve` in a child process; its port is read from the "listening on" line.
class ServerProcess {
 public:
  /// `launcher` runs before the binary (e.g. "prlimit --nofile=64:64").
  explicit ServerProcess(const std::string& data, const std::string& extra = "",
                         const std::string& launcher = "") {
    int fds[2];
    EXPECT_EQ(pipe(fds), 0);
    pid_ = fork();
    if (pid_ == 0) {
      dup2(fds[1], STDOUT_FILENO);
      close(fds[0]);
      const std::string cmd =
          "exec " + launcher + " " + WAYPOINT_BIN + " serve --port 0 --data " + data + " " + extra;
      execl("/bin/sh", "sh", "-c", cmd.c_str(), nullptr);
      _exit(127);
    }
    close(fds[1]);
    out_ = fdopen(fds[0], "r");
    char line[512];
    while (fgets(line, sizeof line, out_)) {
      // "listening on http://127.0.0.1:PORT" (https:// with TLS).
      const char* at = strstr(line, "://127.0.0.1:");
      if (strstr(line, "listening on ") && at) {
        port_ = static_cast<uint16_t>(atoi(at + strlen("://127.0.0.1:")));
        break;
      }
    }
    EXPECT_NE(port_, 0) << "server did not start";
  }
  ~ServerProcess() {
    if (pid_ > 0) kill_and_wait(SIGKILL);
    if (out_) fclose(out_);
  }
  uint16_t port() const { return port_; }
  /// Sends `sig` and returns the exit status (or -signal).
  int kill_and_wait(int sig) {
    if (pid_ <= 0) return 0;
    kill(pid_, sig);
    int status = 0;
    waitpid(pid_, &status, 0);
    pid_ = -1;
    return WIFEXITED(status) ? WEXITSTATUS(status) : -WTERMSIG(status);
  }

 private:
  pid_t pid_ = -1;
  FILE* out_ = nullptr;
  uint16_t port_ = 0;
};

/// A keep-alive client whose answers are parsed as JSON (a plain-text answer, such as a health
/// probe's, as a JSON string); throws on any transport error.
class Client {
 public:
  explicit Client(uint16_t port, std::string api_key = "") : c_(port, std::move(api_key)) {}
  std::pair<unsigned, json> call(bhttp::verb method, const std::string& target,
                                 const json& body = nullptr) {
    auto [status, text] = c_.call(method, target, body.is_null() ? "" : body.dump());
    return {status, json::accept(text) ? json::parse(text) : json(text)};
  }

 private:
  wp::http::LoopbackClient c_;
};

/// A vector of its own for each id (no two ids share one, so a search for it has one answer).
std::vector<float> vector_of(uint64_t id) {
  std::mt19937_64 rng(id);
  std::uniform_real_distribution<float> u(0.0f, 10.0f);
  std::vector<float> v(8);
  for (float& x : v) x = u(rng);
  return v;
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
  // The served index holds every stored point: each is the first answer for its own vector.
  size_t missed = 0;
  for (const auto& [id, p] : found) {
    auto [sst, r] = c.call(bhttp::verb::post, "/collections/crash/points/search",
                           {{"vector", vector_of(id)}, {"limit", 1}});
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
  ServerProcess server(tmp.file("data"), "--idle-timeout 1");
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
  EXPECT_GT(secs, 1.5) << "the client must read for longer than the idle timeout";
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

namespace {

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

}  // namespace

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
    EXPECT_EQ(c.call(bhttp::verb::put, "/collections/t",
                     {{"vectors", {{"size", 8}, {"distance", "Euclid"}}}})
                  .first,
              200u);
    json points = json::array();
    for (uint64_t id = 0; id < 20; ++id) points.push_back({{"id", id}, {"vector", vector_of(id)}});
    EXPECT_EQ(
        c.call(bhttp::verb::put, "/collections/t/points?wait=true", {{"points", points}}).first,
        200u);
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
