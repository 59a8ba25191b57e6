// waypoint_load: an HTTP load generator for `waypoint serve` on loopback. It uploads a dataset
// (upsert throughput with and without wait=true), then runs search load at several connection
// counts (one keep-alive connection per client thread) and reports QPS and p50/p99 latency next to
// the in-process QPS of the same index with the same parameters.
//
//   build/bench/waypoint_load --port 6333 --dataset tests/data/siftsmall
//       --connections 1,8,32,64 --seconds 5 [--ef 64] [--json] [--shards N --replication R]
//       [--batch 100] [--payload (3 keys a point)] [--ingest-only] [--route search|query]
//       [--client-threads N (N event-loop threads share the connections; default: a blocking
//        thread per connection)] [--client-spin (those threads poll, never sleeping)]
//       [--raw-client (bare HTTP/1.1 clients without Beast: a thread per connection, and with
//        --client-spin the reads of a single connection poll, never sleeping; with
//        --client-threads N, N threads each an epoll loop over its share, polling with
//        --client-spin)]
//       [--search-during-ingest (one connection searching while another upserts new points;
//        with --ingest-only, after the upload and without the search rows)]
//       [--paired-rounds R (after the rows: R rounds of the in-process reference, then the rows
//        again; each row's p50 and QPS over the same round's in-process p50 and 1-thread QPS,
//        medians and ranges: the goals' ratios, measured where the machine's drift cannot move
//        them)]
//       [--compare-port P2 [--rounds R] (a second server, loaded alike; the search rows of the two
//        alternated R times, the order swapped each round, and each row's QPS of P2 over P's;
//        no in-process reference: two binaries compared where the machine's speed drifts)]
// Traffic goes to 127.0.0.1 only.
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <omp.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <functional>
#include <iostream>
#include <map>
#include <memory>
#include <numeric>
#include <optional>
#include <thread>

#include "bench/runner/percentile.h"
#include "engine/collection_config.h"
#include "engine/command/args.h"
#include "http/client.h"
#include "index/dataset.h"
#include "index/error.h"
#include "index/hnsw_index.h"

namespace net = boost::asio;
namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
using tcp = net::ip::tcp;
using nlohmann::json;
using Clock = std::chrono::steady_clock;
using wp::bench::percentile;

namespace {

/// A bare HTTP/1.1 client (`--raw-client`): the request written as text and sent with one
/// `send`, the answer read by its Content-Length into a reused buffer; no Beast. It measures the
/// server with as little of the client's own work as a client can have (Beast's client added ~10
/// us a request here, docs/server.md). With `spin`, reads poll (MSG_DONTWAIT) without sleeping,
/// so that no answer costs the server's core the client thread's wake-up.
class RawClient {
 public:
  RawClient(uint16_t port, bool spin) : spin_(spin), buf_(64 << 10) {
    fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    WP_THROW_IF_NOT(fd_ >= 0, "socket: ", std::strerror(errno));
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (::connect(fd_, reinterpret_cast<const sockaddr*>(&a), sizeof a) != 0) {
      const int e = errno;
      ::close(fd_);
      WP_THROW_IF_NOT(false, "connect to 127.0.0.1:", port, ": ", std::strerror(e));
    }
    const int one = 1;
    ::setsockopt(fd_, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  }
  ~RawClient() { ::close(fd_); }
  RawClient(const RawClient&) = delete;
  RawClient& operator=(const RawClient&) = delete;

  int fd() const { return fd_; }

  /// Sends one request (a JSON body when not empty) and reads its answer; returns the status.
  unsigned call(std::string_view method, const std::string& target, const std::string& body) {
    send(method, target, body);
    while (!receive(true)) {
    }
    return status_;
  }

  /// Sends one request (a JSON body when not empty), whole.
  void send(std::string_view method, const std::string& target, const std::string& body) {
    req_.clear();
    req_.append(method.data(), method.size());
    req_ += ' ';
    req_ += target;
    req_ += " HTTP/1.1\r\nHost: 127.0.0.1\r\n";
    if (!body.empty()) {
      req_ += "Content-Type: application/json\r\nContent-Length: ";
      req_ += std::to_string(body.size());
      req_ += "\r\n";
    }
    req_ += "\r\n";
    req_ += body;
    for (size_t sent = 0; sent < req_.size();) {
      const ssize_t n = ::send(fd_, req_.data() + sent, req_.size() - sent, MSG_NOSIGNAL);
      if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) continue;
      WP_THROW_IF_NOT(n > 0, "send: ", std::strerror(errno));
      sent += static_cast<size_t>(n);
    }
    have_ = 0;
    need_ = std::string_view::npos;
    status_ = 0;
  }

  /// Reads what has come of the answer to the last request: true once it is whole (its status
  /// in status()). With `wait`, and no `spin`, the read sleeps until bytes come; else it returns
  /// false at once when none have.
  bool receive(bool wait) {
    while (have_ < need_) {
      if (have_ == buf_.size()) buf_.resize(buf_.size() * 2);
      const ssize_t n =
          ::recv(fd_, buf_.data() + have_, buf_.size() - have_, wait && !spin_ ? 0 : MSG_DONTWAIT);
      if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return false;
      WP_THROW_IF_NOT(n > 0, "recv: ", n == 0 ? "connection closed" : std::strerror(errno));
      have_ += static_cast<size_t>(n);
      if (need_ == std::string_view::npos) {
        const std::string_view got(buf_.data(), have_);
        const size_t end = got.find("\r\n\r\n");
        if (end == std::string_view::npos) continue;
        const std::string_view head = got.substr(0, end);
        WP_THROW_IF_NOT(head.size() > 12 && head.substr(0, 5) == "HTTP/", "not an HTTP answer");
        status_ = static_cast<unsigned>(std::atoi(std::string(head.substr(9, 3)).c_str()));
        need_ = end + 4 + content_length(head);
      }
    }
    WP_THROW_IF_NOT(have_ == need_, "bytes after an answer");
    return true;
  }

  unsigned status() const { return status_; }

 private:
  /// The Content-Length of an answer's head (names compared case-insensitively).
  static size_t content_length(std::string_view head) {
    const std::string_view name = "\r\ncontent-length:";
    for (size_t i = 0; i + name.size() <= head.size(); ++i) {
      if (strncasecmp(head.data() + i, name.data(), name.size()) != 0) continue;
      size_t j = i + name.size();
      while (j < head.size() && head[j] == ' ') ++j;
      return static_cast<size_t>(
          std::strtoull(std::string(head.substr(j, 20)).c_str(), nullptr, 10));
    }
    WP_THROW_IF_NOT(false, "an answer without Content-Length");
    return 0;
  }

  bool spin_;
  int fd_ = -1;
  std::string req_;
  std::vector<char> buf_;
  size_t have_ = 0, need_ = 0;  ///< bytes of the answer read, and its length once its head is
  unsigned status_ = 0;
};

/// How the search rows' connections are made: Beast's client (the default), or the bare one.
struct ClientKind {
  bool raw = false;
  bool spin = false;  ///< with `raw`: reads poll without sleeping
};

/// The load generator's connection: status only.
class Client {
 public:
  explicit Client(uint16_t port, ClientKind kind = {}) {
    if (kind.raw) {
      raw_.emplace(port, kind.spin);
    } else {
      beast_.emplace(port);
    }
  }
  unsigned call(bhttp::verb method, const std::string& target, const std::string& body) {
    if (raw_) {
      const auto m = bhttp::to_string(method);
      return raw_->call(std::string_view(m.data(), m.size()), target, body);
    }
    return beast_->call(method, target, body).first;
  }

 private:
  std::optional<wp::http::LoopbackClient> beast_;
  std::optional<RawClient> raw_;
};

std::string vector_json(const float* v, size_t d) {
  std::string s = "[";
  for (size_t i = 0; i < d; ++i) {
    s += (i ? "," : "") + std::to_string(v[i]);
  }
  return s + "]";
}

/// Point i's payload with `--payload`: three keys, a keyword, an integer and a short string, as
/// an application's metadata might be.
std::string payload_json(size_t i) {
  return ",\"payload\":{\"category\":\"c" + std::to_string(i % 20) +
         "\",\"price\":" + std::to_string((i * 7919) % 1000) + ",\"tag\":\"t" +
         std::to_string(i % 7) + "\"}";
}

/// Uploads base rows [begin, end) in batches (with payloads when `payload`), row i as point id
/// `id_offset + i`; returns points per second.
double upload(uint16_t port, const std::string& col, const wp::index::Matrix& base, size_t begin,
              size_t end, size_t batch, bool wait, bool payload, size_t id_offset = 0) {
  Client c(port);
  const auto t0 = Clock::now();
  for (size_t b = begin; b < end; b += batch) {
    std::string body = "{\"points\":[";
    for (size_t i = b; i < std::min(end, b + batch); ++i) {
      body += (i > b ? "," : "") + std::string("{\"id\":") + std::to_string(id_offset + i) +
              ",\"vector\":" + vector_json(base.row(i), base.d) + (payload ? payload_json(i) : "") +
              "}";
    }
    body += "]}";
    const unsigned st = c.call(
        bhttp::verb::put, "/collections/" + col + "/points" + (wait ? "?wait=true" : ""), body);
    WP_THROW_IF_NOT(st == 200, "upsert answered ", st);
  }
  return (end - begin) / std::chrono::duration<double>(Clock::now() - t0).count();
}

/// A fresh collection: M=16, ef_construct=100 (Qdrant's defaults), the dataset's metric.
/// `shards` 0: the server's default (one node: 1; a cluster: one per node).
void create_collection(uint16_t port, const std::string& col, size_t dim, wp::index::Metric metric,
                       size_t shards, size_t replication) {
  Client c(port);
  c.call(bhttp::verb::delete_, "/collections/" + col, "");
  json body{{"vectors", {{"size", dim}, {"distance", wp::engine::distance_name(metric)}}},
            {"hnsw_config", {{"m", 16}, {"ef_construct", 100}}}};
  if (shards) body["shard_number"] = shards;
  if (replication) body["replication_factor"] = replication;
  const unsigned st = c.call(bhttp::verb::put, "/collections/" + col, body.dump());
  WP_THROW_IF_NOT(st == 200, "create collection answered ", st);
}

/// Recall@k of the server's answers (ids are base rows) against the dataset's ground truth.
double http_recall(uint16_t port, const std::string& path, bool query,
                   const std::vector<std::string>& queries, const wp::index::IntMatrix& gt,
                   size_t k) {
  wp::http::LoopbackClient c(port);
  size_t hits = 0;
  for (size_t i = 0; i < queries.size(); ++i) {
    auto [st, text] = c.call(bhttp::verb::post, path, queries[i]);
    WP_THROW_IF_NOT(st == 200, "search answered ", st, ": ", text.substr(0, 200));
    const json r = json::parse(text);
    const int* truth = gt.row(i);
    for (const json& p : query ? r["result"]["points"] : r["result"]) {
      const int id = p["id"].get<int>();
      hits += std::count(truth, truth + k, id);
    }
  }
  return static_cast<double>(hits) / (queries.size() * k);
}

/// Points per second of single-point upserts with wait=true (the first 200 points again).
double single_point_upserts(uint16_t port, const std::string& col, const wp::index::Matrix& base) {
  Client c(port);
  const auto t0 = Clock::now();
  const size_t n = std::min<size_t>(200, base.n);
  for (size_t i = 0; i < n; ++i) {
    c.call(bhttp::verb::put, "/collections/" + col + "/points?wait=true",
           "{\"points\":[{\"id\":" + std::to_string(i) +
               ",\"vector\":" + vector_json(base.row(i), base.d) + "}]}");
  }
  return n / std::chrono::duration<double>(Clock::now() - t0).count();
}

/// The in-process reference: the same index parameters, queried directly for `seconds` on
/// `threads` threads; returns QPS.
double inprocess_qps(const wp::index::HnswIndex& idx, const wp::index::Matrix& queries, size_t k,
                     size_t ef, int threads, double seconds = 1.0) {
  wp::index::SearchParams sp;
  sp.ef = ef;
  size_t done = 0;
  const auto t0 = Clock::now();
  while (std::chrono::duration<double>(Clock::now() - t0).count() < seconds) {
#pragma omp parallel for num_threads(threads)
    for (int64_t i = 0; i < static_cast<int64_t>(queries.n); ++i) {
      wp::index::label_t l[1000];
      float d[1000];
      idx.search_one(queries.row(i), k, sp, l, d);
    }
    done += queries.n;
  }
  return done / std::chrono::duration<double>(Clock::now() - t0).count();
}

/// The in-process latency of one query on one thread (the same index and ef), p50 and p99 in
/// microseconds, through the query set in turn for `seconds` and at least twice: a p50 over a
/// few milliseconds moved with whatever the machine did in them (SIFT10K's 100 queries twice,
/// 5 ms, gave 22-37 us within one hour; a second of them holds ~40,000).
json inprocess_latency(const wp::index::HnswIndex& idx, const wp::index::Matrix& queries, size_t k,
                       size_t ef, double seconds) {
  wp::index::SearchParams sp;
  sp.ef = ef;
  std::vector<double> lat;
  wp::index::label_t l[1000];
  float d[1000];
  const auto t0 = Clock::now();
  for (int pass = 0; pass < 2 || std::chrono::duration<double>(Clock::now() - t0).count() < seconds;
       ++pass) {
    for (size_t i = 0; i < queries.n; ++i) {
      const auto a = Clock::now();
      idx.search_one(queries.row(i), k, sp, l, d);
      lat.push_back(std::chrono::duration<double, std::micro>(Clock::now() - a).count());
    }
  }
  return {{"p50_us", percentile(lat, 0.5)},
          {"p99_us", percentile(lat, 0.99)},
          {"searches", lat.size()}};
}

/// The goals' ratios measured where the machine's speed cannot move them (`--paired-rounds R`):
/// R rounds, each the in-process reference (latency, and QPS on one thread and on two: the
/// unpinned placement's goal is a share of the latter) for `seconds`, then each search row;
/// each row's p50 over the same round's in-process p50, and its QPS over the same round's
/// in-process QPS, as medians over the rounds with their ranges.
json paired_rounds(const wp::index::HnswIndex& idx, const wp::index::Matrix& queries, size_t k,
                   size_t ef, double seconds, size_t rounds, const std::vector<long long>& conns,
                   const std::function<json(long long)>& row) {
  std::map<long long, std::vector<double>> p50_ratio, qps_share, qps_share_2t;
  json out{{"rounds", json::array()}};
  for (size_t r = 0; r < rounds; ++r) {
    json round{{"inprocess_latency", inprocess_latency(idx, queries, k, ef, seconds)},
               {"inprocess_qps_1t", inprocess_qps(idx, queries, k, ef, 1, seconds)},
               {"inprocess_qps_2t", inprocess_qps(idx, queries, k, ef, 2, seconds)},
               {"search", json::array()}};
    for (long long n : conns) {
      json x = row(n);
      p50_ratio[n].push_back(x["p50_us"].get<double>() /
                             round["inprocess_latency"]["p50_us"].get<double>());
      qps_share[n].push_back(x["qps"].get<double>() / round["inprocess_qps_1t"].get<double>());
      qps_share_2t[n].push_back(x["qps"].get<double>() / round["inprocess_qps_2t"].get<double>());
      round["search"].push_back(std::move(x));
    }
    out["rounds"].push_back(std::move(round));
  }
  const auto summary = [](std::vector<double> v) {
    return json{{"median", percentile(v, 0.5)},
                {"min", *std::min_element(v.begin(), v.end())},
                {"max", *std::max_element(v.begin(), v.end())}};
  };
  out["ratios"] = json::array();
  for (long long n : conns) {
    out["ratios"].push_back({{"connections", n},
                             {"p50_over_inprocess_p50", summary(p50_ratio[n])},
                             {"qps_over_inprocess_qps_1t", summary(qps_share[n])},
                             {"qps_over_inprocess_qps_2t", summary(qps_share_2t[n])}});
  }
  return out;
}

/// The transport's floor: one connection asking GET /healthz (no body, no search) in a loop for
/// `seconds`; p50 and p99 round trip in microseconds.
json healthz_latency(uint16_t port, double seconds, ClientKind kind) {
  Client c(port, kind);
  std::vector<double> lat;
  const auto t0 = Clock::now();
  while (std::chrono::duration<double>(Clock::now() - t0).count() < seconds) {
    const auto a = Clock::now();
    const unsigned st = c.call(bhttp::verb::get, "/healthz", "");
    WP_THROW_IF_NOT(st == 200, "healthz answered ", st);
    lat.push_back(std::chrono::duration<double, std::micro>(Clock::now() - a).count());
  }
  return {{"p50_us", percentile(lat, 0.5)}, {"p99_us", percentile(lat, 0.99)}};
}

/// `connections` clients searching in a loop for `seconds` (POST `path`): QPS, p50, p99, errors.
json search_load(uint16_t port, const std::string& path, const std::vector<std::string>& queries,
                 long long connections, double seconds, ClientKind kind) {
  std::atomic<bool> stop{false};
  std::atomic<int> errors{0};
  std::vector<std::vector<double>> lat(connections);
  std::vector<std::thread> threads;
  const auto t0 = Clock::now();
  for (long long t = 0; t < connections; ++t) {
    threads.emplace_back([&, t] {
      try {
        // Polling reads for a lone connection only: more would take turns spinning on a core.
        Client c(port, ClientKind{kind.raw, kind.spin && connections == 1});
        size_t i = t;
        while (!stop) {
          const auto a = Clock::now();
          const unsigned st = c.call(bhttp::verb::post, path, queries[i++ % queries.size()]);
          lat[t].push_back(std::chrono::duration<double, std::micro>(Clock::now() - a).count());
          if (st != 200) ++errors;
        }
      } catch (const std::exception&) {
        ++errors;
      }
    });
  }
  std::this_thread::sleep_for(std::chrono::duration<double>(seconds));
  stop = true;
  for (auto& th : threads) th.join();
  const double secs = std::chrono::duration<double>(Clock::now() - t0).count();
  std::vector<double> all;
  for (auto& v : lat) all.insert(all.end(), v.begin(), v.end());
  return {{"connections", connections},
          {"qps", all.size() / secs},
          {"p50_us", percentile(all, 0.5)},
          {"p99_us", percentile(all, 0.99)},
          {"errors", errors.load()}};
}

/// How an event-loop load deals its connections to its threads (`--client-share`): in turn
/// (connection c to loop c % loops, the default) or in blocks (loop c * loops / connections). The
/// server deals the connections it accepts to its threads in turn too, so with as many loops as
/// server threads `interleaved` puts all of a loop's connections on one server thread and
/// `blocks` spreads each loop's over all of them (docs/server.md: on shared cores the first
/// lets each loop run beside the server thread that wakes it).
enum class ClientShare { kInterleaved, kBlocks };

const char* share_name(ClientShare share) {
  return share == ClientShare::kBlocks ? "blocks" : "interleaved";
}

size_t loop_of(long long c, long long connections, long long loops, ClientShare share) {
  return static_cast<size_t>(share == ClientShare::kBlocks ? c * loops / connections : c % loops);
}

/// What an event loop's connection keeps of its load: when its search in flight was sent, the
/// next query's index, its latencies and its errors.
struct LoopConnection {
  Clock::time_point sent;
  size_t next = 0;
  std::vector<double> lat;
  int errors = 0;
};

/// A search row of an event-loop load: QPS, p50 and p99 over every connection's latencies, and
/// their errors, after `secs` of it.
template <typename Conn>
json row_of(const std::vector<std::unique_ptr<Conn>>& conns, double secs) {
  std::vector<double> all;
  int errors = 0;
  for (const auto& c : conns) {
    all.insert(all.end(), c->lat.begin(), c->lat.end());
    errors += c->errors;
  }
  return {{"connections", conns.size()},
          {"qps", all.size() / secs},
          {"p50_us", percentile(all, 0.5)},
          {"p99_us", percentile(all, 0.99)},
          {"errors", errors}};
}

/// The same load from `threads` client threads, each running its share of the connections on an
/// event loop (Asio; each connection sends its next search when the answer to the last is read),
/// as an asynchronous application's client does; `search_load` gives each connection a thread
/// that blocks on it. On loopback the server's send runs the client's receive and, for a blocked
/// thread, its wake-up: an event loop that is busy needs no wake-up per answer. With `spin`
/// the loops poll without ever sleeping (each takes a core whole), so that no answer costs the
/// server's core a wake-up of the client: on loopback the server's cost closest to that of
/// answering a client on another machine, whose wake-ups that machine's cores pay.
json search_load_async(uint16_t port, const std::string& path,
                       const std::vector<std::string>& queries, long long connections,
                       long long threads, bool spin, ClientShare share, double seconds) {
  struct Conn : LoopConnection {
    explicit Conn(net::io_context& ioc) : sock(ioc) {}
    tcp::socket sock;
    beast::flat_buffer buf;
    bhttp::request<bhttp::string_body> req;
    bhttp::response<bhttp::string_body> res;
  };
  std::atomic<bool> stop{false};
  const long long loops = std::min(threads, connections);
  std::vector<std::unique_ptr<net::io_context>> contexts;
  std::vector<std::unique_ptr<Conn>> conns;
  for (long long t = 0; t < loops; ++t) contexts.push_back(std::make_unique<net::io_context>(1));
  for (long long c = 0; c < connections; ++c) {
    auto conn = std::make_unique<Conn>(*contexts[loop_of(c, connections, loops, share)]);
    conn->sock.connect(tcp::endpoint(net::ip::make_address("127.0.0.1"), port));
    conn->sock.set_option(tcp::no_delay(true));
    conn->next = static_cast<size_t>(c);
    conns.push_back(std::move(conn));
  }
  std::function<void(Conn&)> send = [&](Conn& c) {
    c.req = bhttp::request<bhttp::string_body>(bhttp::verb::post, path, 11);
    c.req.set(bhttp::field::host, "127.0.0.1");
    c.req.set(bhttp::field::content_type, "application/json");
    c.req.body() = queries[c.next++ % queries.size()];
    c.req.prepare_payload();
    c.sent = Clock::now();
    bhttp::async_write(c.sock, c.req, [&](beast::error_code ec, size_t) {
      if (ec) {
        ++c.errors;
        return;
      }
      c.res = {};
      bhttp::async_read(c.sock, c.buf, c.res, [&](beast::error_code ec, size_t) {
        if (ec) {
          ++c.errors;
          return;
        }
        c.lat.push_back(std::chrono::duration<double, std::micro>(Clock::now() - c.sent).count());
        if (c.res.result_int() != 200) ++c.errors;
        if (!stop) send(c);
      });
    });
  };
  for (auto& c : conns) send(*c);
  const auto t0 = Clock::now();
  std::vector<std::thread> runners;
  for (auto& ioc : contexts) {
    runners.emplace_back([&ioc, spin] {
      if (!spin) {
        ioc->run();
        return;
      }
      while (!ioc->stopped()) ioc->poll();  // epoll_wait with no timeout: never sleeps
    });
  }
  std::this_thread::sleep_for(std::chrono::duration<double>(seconds));
  stop = true;  // each connection stops after its answer in flight
  for (auto& th : runners) th.join();
  json row = row_of(conns, std::chrono::duration<double>(Clock::now() - t0).count());
  row["client_threads"] = loops;
  row["client_share"] = share_name(share);
  row["client_spin"] = spin;
  return row;
}

/// The bare clients' event loop (`--raw-client --client-threads N`): each of N threads holds its
/// share of the connections on one epoll set and sends a connection's next search when the
/// answer to its last is whole. With `spin` the threads ask epoll without waiting and never
/// sleep, so that no answer costs the server's core a wake-up of the client (on loopback the
/// sender runs the receiver's wake-up): of the load generators here, the one that leaves the
/// server's core the least work besides what a client on another machine costs it.
json search_load_raw_loops(uint16_t port, const std::string& path,
                           const std::vector<std::string>& queries, long long connections,
                           long long threads, bool spin, ClientShare share, double seconds) {
  struct Conn : LoopConnection {
    explicit Conn(uint16_t port) : client(port, false) {}
    RawClient client;
  };
  std::atomic<bool> stop{false};
  const long long loops = std::min(threads, connections);
  std::vector<std::unique_ptr<Conn>> conns;
  std::vector<std::vector<Conn*>> shares(loops);
  for (long long c = 0; c < connections; ++c) {
    conns.push_back(std::make_unique<Conn>(port));
    conns.back()->next = static_cast<size_t>(c);
    shares[loop_of(c, connections, loops, share)].push_back(conns.back().get());
  }
  const auto send = [&](Conn& c) {
    c.sent = Clock::now();
    c.client.send("POST", path, queries[c.next++ % queries.size()]);
  };
  std::vector<std::thread> runners;
  const auto t0 = Clock::now();
  for (auto& share : shares) {
    runners.emplace_back([&share, &stop, &send, spin] {
      const int ep = ::epoll_create1(0);
      size_t in_flight = 0;
      for (size_t i = 0; i < share.size(); ++i) {
        try {
          send(*share[i]);
        } catch (const std::exception&) {
          ++share[i]->errors;
          continue;
        }
        epoll_event ev{};
        ev.events = EPOLLIN;
        ev.data.u64 = i;
        ::epoll_ctl(ep, EPOLL_CTL_ADD, share[i]->client.fd(), &ev);
        ++in_flight;
      }
      std::vector<epoll_event> ready(share.size());
      while (in_flight > 0) {
        const int n =
            ::epoll_wait(ep, ready.data(), static_cast<int>(ready.size()), spin ? 0 : 100);
        for (int i = 0; i < n; ++i) {
          Conn& c = *share[ready[i].data.u64];
          bool done = stop;  // each connection stops after its answer in flight
          try {
            if (!c.client.receive(false)) continue;
            c.lat.push_back(
                std::chrono::duration<double, std::micro>(Clock::now() - c.sent).count());
            if (c.client.status() != 200) ++c.errors;
            if (!done) send(c);
          } catch (const std::exception&) {
            ++c.errors;
            done = true;
          }
          if (done) {
            ::epoll_ctl(ep, EPOLL_CTL_DEL, c.client.fd(), nullptr);
            --in_flight;
          }
        }
      }
      ::close(ep);
    });
  }
  std::this_thread::sleep_for(std::chrono::duration<double>(seconds));
  stop = true;
  for (auto& th : runners) th.join();
  json row = row_of(conns, std::chrono::duration<double>(Clock::now() - t0).count());
  row["client_threads"] = loops;
  row["client_share"] = share_name(share);
  row["client_spin"] = spin;
  row["raw_client"] = true;
  return row;
}

/// One connection searching in a loop while another upserts the base rows again under new ids
/// (batches of `batch`, wait=true): the search latency a user sees while the collection takes
/// writes (each batch goes into the index the searches read), and the ingest rate beside it.
json search_during_ingest(uint16_t port, const std::string& col, const std::string& path,
                          const std::vector<std::string>& queries, const wp::index::Matrix& base,
                          size_t batch) {
  std::atomic<bool> ingesting{true};
  std::vector<double> lat, sent_at;  // sent_at: seconds since the Unix epoch
  std::atomic<int> errors{0};
  std::thread searcher([&] {
    Client c(port);
    size_t i = 0;
    while (ingesting) {
      const auto a = Clock::now();
      sent_at.push_back(
          std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch())
              .count());
      const unsigned st = c.call(bhttp::verb::post, path, queries[i++ % queries.size()]);
      lat.push_back(std::chrono::duration<double, std::micro>(Clock::now() - a).count());
      if (st != 200) ++errors;
    }
  });
  const double rate = upload(port, col, base, 0, base.n, batch, true, false, base.n);
  ingesting = false;
  searcher.join();
  // The 20 slowest searches and when each was sent, to lay beside other traces of the machine
  // (docs/server.md: the slowest recur every ~0.5 s).
  std::vector<size_t> order(lat.size());
  std::iota(order.begin(), order.end(), 0);
  const size_t shown = std::min<size_t>(20, order.size());
  std::partial_sort(order.begin(), order.begin() + static_cast<std::ptrdiff_t>(shown), order.end(),
                    [&](size_t a, size_t b) { return lat[a] > lat[b]; });
  json slowest = json::array();
  for (size_t j = 0; j < shown; ++j) {
    slowest.push_back({{"sent_at_s", sent_at[order[j]]}, {"us", lat[order[j]]}});
  }
  return {{"upsert_points_per_s", rate},
          {"slowest", slowest},
          {"batch", batch},
          {"searches", lat.size()},
          {"p50_us", percentile(lat, 0.5)},
          {"p99_us", percentile(lat, 0.99)},
          {"p999_us", percentile(lat, 0.999)},
          {"max_us", lat.empty() ? 0.0 : *std::max_element(lat.begin(), lat.end())},
          {"errors", errors.load()}};
}

void print_report(const json& report, size_t ef) {
  std::printf(
      "%s: %zu points; upsert %.0f points/s (batches of %zu), %.0f with wait=true, "
      "%.0f single-point wait=true\n",
      report["dataset"].get<std::string>().c_str(), report["points"].get<size_t>(),
      report["upsert_points_per_s"].get<double>(), report["batch"].get<size_t>(),
      report["upsert_points_per_s_wait"].get<double>(),
      report["upsert_points_per_s_single_wait"].get<double>());
  std::printf("in-process (same index, ef=%zu): %.0f QPS on 1 thread, %.0f on 2\n", ef,
              report["inprocess_qps_1t"].get<double>(), report["inprocess_qps_2t"].get<double>());
  std::printf("in-process latency of one search on 1 thread: p50 %.1f us, p99 %.1f us\n",
              report["inprocess_latency"]["p50_us"].get<double>(),
              report["inprocess_latency"]["p99_us"].get<double>());
  std::printf("transport floor (GET /healthz, 1 connection): p50 %.1f us, p99 %.1f us\n",
              report["healthz_latency"]["p50_us"].get<double>(),
              report["healthz_latency"]["p99_us"].get<double>());
  std::printf("searches sent to %s\n", report["route"].get<std::string>().c_str());
  if (report.contains("http_recall_at_k")) {
    std::printf("recall@k through the server: %.4f\n", report["http_recall_at_k"].get<double>());
  }
  std::printf("%12s %10s %10s %10s %8s\n", "connections", "qps", "p50_us", "p99_us", "errors");
  for (const json& r : report["search"]) {
    std::printf("%12lld %10.0f %10.1f %10.1f %8d\n", r["connections"].get<long long>(),
                r["qps"].get<double>(), r["p50_us"].get<double>(), r["p99_us"].get<double>(),
                r["errors"].get<int>());
  }
  if (report.contains("paired")) {
    const json& p = report["paired"];
    std::printf("paired rounds (%zu): in-process p50", p["rounds"].size());
    for (const json& r : p["rounds"]) {
      std::printf(" %.1f", r["inprocess_latency"]["p50_us"].get<double>());
    }
    std::printf(" us, QPS on 1 thread");
    for (const json& r : p["rounds"]) std::printf(" %.0f", r["inprocess_qps_1t"].get<double>());
    std::printf(", on 2 threads");
    for (const json& r : p["rounds"]) std::printf(" %.0f", r["inprocess_qps_2t"].get<double>());
    std::printf("\n%12s %28s %28s %28s\n", "connections", "p50 / in-process p50",
                "QPS / in-process QPS (1t)", "QPS / in-process QPS (2t)");
    for (const json& r : p["ratios"]) {
      const json& a = r["p50_over_inprocess_p50"];
      const json& b = r["qps_over_inprocess_qps_1t"];
      const json& c = r["qps_over_inprocess_qps_2t"];
      std::printf("%12lld %12.2fx [%.2f, %.2f] %12.0f%% [%.0f, %.0f] %12.0f%% [%.0f, %.0f]\n",
                  r["connections"].get<long long>(), a["median"].get<double>(),
                  a["min"].get<double>(), a["max"].get<double>(), 100 * b["median"].get<double>(),
                  100 * b["min"].get<double>(), 100 * b["max"].get<double>(),
                  100 * c["median"].get<double>(), 100 * c["min"].get<double>(),
                  100 * c["max"].get<double>());
    }
  }
  if (report.contains("search_during_ingest")) {
    const json& r = report["search_during_ingest"];
    std::printf(
        "1 connection searching while another upserts %zu new points (batches of %zu, "
        "wait=true, %.0f points/s): %zu searches, p50 %.1f us, p99 %.1f us, p99.9 %.1f us, "
        "max %.1f us, "
        "%d errors\n",
        report["points"].get<size_t>(), r["batch"].get<size_t>(),
        r["upsert_points_per_s"].get<double>(), r["searches"].get<size_t>(),
        r["p50_us"].get<double>(), r["p99_us"].get<double>(), r["p999_us"].get<double>(),
        r["max_us"].get<double>(), r["errors"].get<int>());
  }
}

/// The search rows of two servers alternated: `rounds` times each connection count on both, the
/// order swapped each round (so that neither always runs first); each row tagged with its port
/// and round.
template <typename Row>
json compare_servers(uint16_t a, uint16_t b, const std::vector<long long>& conns, size_t rounds,
                     const Row& row) {
  json rows = json::array();
  for (size_t r = 0; r < rounds; ++r) {
    for (long long n : conns) {
      for (uint16_t p : r % 2 ? std::array<uint16_t, 2>{b, a} : std::array<uint16_t, 2>{a, b}) {
        json x = row(p, n);
        x["port"] = p;
        x["round"] = r;
        rows.push_back(std::move(x));
      }
    }
  }
  return rows;
}

/// For each connection count: each server's median QPS and p50 over the rounds, and the median
/// and range of the rounds' QPS ratios (b over a, the two rows of one round side by side).
void print_comparison(const json& rows, uint16_t a, uint16_t b) {
  std::map<long long, std::map<uint16_t, std::vector<json>>> by;
  for (const json& r : rows) by[r["connections"].get<long long>()][r["port"]].push_back(r);
  std::printf("%12s %14s %14s %12s %12s %22s\n", "connections", "QPS a (med)", "QPS b (med)",
              "p50 a us", "p50 b us", "QPS b/a: med [min,max]");
  const auto median = [](std::vector<double> v) { return percentile(v, 0.5); };
  for (const auto& [n, ports] : by) {
    std::vector<double> qa, qb, la, lb, ratio;
    const std::vector<json>& ra = ports.at(a);
    const std::vector<json>& rb = ports.at(b);
    for (size_t i = 0; i < std::min(ra.size(), rb.size()); ++i) {
      qa.push_back(ra[i]["qps"]);
      qb.push_back(rb[i]["qps"]);
      la.push_back(ra[i]["p50_us"]);
      lb.push_back(rb[i]["p50_us"]);
      ratio.push_back(qb.back() / qa.back());
    }
    std::printf("%12lld %14.0f %14.0f %12.1f %12.1f %10.3f [%.3f,%.3f]\n", n, median(qa),
                median(qb), median(la), median(lb), median(ratio),
                *std::min_element(ratio.begin(), ratio.end()),
                *std::max_element(ratio.begin(), ratio.end()));
  }
}

}  // namespace

int main(int argc, char** argv) {
  try {
    wp::cli::Args args(
        argc, argv, 1,
        {"json", "payload", "ingest-only", "search-during-ingest", "client-spin", "raw-client"});
    const uint16_t port = static_cast<uint16_t>(args.integer("port", 6333, 1, 65535));
    const std::string dataset = args.required("dataset");
    const std::string col = args.str("collection", "load");
    const auto conns = args.int_list("connections", "1,8,32,64", 1, 1024);
    const double seconds = args.real("seconds", 5, 0.1, 3600);
    const size_t ef = args.integer("ef", 64, 1, 100000);
    const size_t k = args.integer("k", 10, 1, 1000);
    const bool as_json = args.flag("json");
    const size_t shards = args.integer("shards", 0, 0, 1024);
    const size_t replication = args.integer("replication", 0, 0, 100);
    const size_t batch = args.integer("batch", 100, 1, 10000);
    const bool payload = args.flag("payload");
    // Only the upload (half without wait, half with): the ingest figures of a large set, before
    // the server's memory and restart are measured (bench/server_scale.sh).
    const bool ingest_only = args.flag("ingest-only");
    // After the search rows: one connection searching while another upserts the set again.
    const bool during_ingest = args.flag("search-during-ingest");
    // search: POST points/search {"vector": ...}; query: POST points/query {"query": ...}.
    const std::string route = args.str("route", "search");
    // 0: a client thread per connection, blocking on it; N: N threads, each an event loop over
    // its share of the connections (search_load_async).
    const long long client_threads = args.integer("client-threads", 0, 0, 1024);
    const bool client_spin = args.flag("client-spin");
    const std::string share_arg = args.str("client-share", share_name(ClientShare::kInterleaved));
    const ClientShare share = share_arg == share_name(ClientShare::kBlocks)
                                  ? ClientShare::kBlocks
                                  : ClientShare::kInterleaved;
    // The search rows' connections (and the /healthz floor's) without Beast (RawClient).
    const bool raw_client = args.flag("raw-client");
    const ClientKind kind{raw_client, raw_client && client_spin};
    const auto compare_port = static_cast<uint16_t>(args.integer("compare-port", 0, 0, 65535));
    const size_t rounds = args.integer("rounds", 5, 1, 1000);
    const size_t paired = args.integer("paired-rounds", 0, 0, 1000);
    WP_THROW_IF_NOT(!paired || (!compare_port && !ingest_only),
                    "--paired-rounds: the in-process reference is not measured with "
                    "--compare-port or --ingest-only");
    WP_THROW_IF_NOT(!client_spin || client_threads > 0 || raw_client,
                    "--client-spin needs --client-threads or --raw-client");
    WP_THROW_IF_NOT(share_arg == share_name(share),
                    "--client-share: expected interleaved or blocks, got ", share_arg);
    WP_THROW_IF_NOT(share == ClientShare::kInterleaved || client_threads > 0,
                    "--client-share needs --client-threads");
    WP_THROW_IF_NOT(route == "search" || route == "query",
                    "--route: expected search or query, got ", route);
    args.finish();

    const wp::index::Dataset ds = wp::index::load_dataset(dataset);
    std::vector<std::string> queries;
    for (size_t i = 0; i < ds.query.n; ++i) {
      queries.push_back("{\"" + std::string(route == "query" ? "query" : "vector") +
                        "\":" + vector_json(ds.query.row(i), ds.query.d) +
                        ",\"limit\":" + std::to_string(k) +
                        ",\"params\":{\"hnsw_ef\":" + std::to_string(ef) + "}}");
    }
    create_collection(port, col, ds.base.d, ds.metric, shards, replication);
    const size_t half = ds.base.n / 2;
    json report{{"dataset", ds.name},
                {"points", ds.base.n},
                {"batch", batch},
                {"payload_keys", payload ? 3 : 0},
                {"upsert_points_per_s", upload(port, col, ds.base, 0, half, batch, false, payload)},
                {"upsert_points_per_s_wait",
                 upload(port, col, ds.base, half, ds.base.n, batch, true, payload)}};
    const std::string path = "/collections/" + col + "/points/" + route;
    const auto search_row = [&](uint16_t p, long long n) {
      if (client_threads == 0) return search_load(p, path, queries, n, seconds, kind);
      return raw_client ? search_load_raw_loops(p, path, queries, n, client_threads, client_spin,
                                                share, seconds)
                        : search_load_async(p, path, queries, n, client_threads, client_spin, share,
                                            seconds);
    };
    if (compare_port) {
      create_collection(compare_port, col, ds.base.d, ds.metric, shards, replication);
      upload(compare_port, col, ds.base, 0, ds.base.n, batch, true, payload);
      report["compare"] = compare_servers(port, compare_port, conns, rounds, search_row);
      if (as_json) {
        std::cout << report.dump() << std::endl;
      } else {
        print_comparison(report["compare"], port, compare_port);
      }
      return 0;
    }
    if (ingest_only) {
      // With --search-during-ingest: that measurement too, without the search rows (at 1M the
      // in-process reference alone takes minutes to build).
      if (during_ingest) {
        report["search_during_ingest"] =
            search_during_ingest(port, col, path, queries, ds.base, batch);
      }
      std::cout << report.dump() << std::endl;
      return 0;
    }
    report["upsert_points_per_s_single_wait"] = single_point_upserts(port, col, ds.base);

    wp::index::HnswParams hp;
    hp.M = 16;
    hp.ef_construction = 100;
    wp::index::HnswIndex idx(ds.base.d, ds.metric, hp);
    std::vector<wp::index::label_t> ids(ds.base.n);
    std::iota(ids.begin(), ids.end(), 0);
    idx.add(wp::index::view(ds.base), ids.data());
    for (int threads : {1, 2}) {
      report["inprocess_qps_" + std::to_string(threads) + "t"] =
          inprocess_qps(idx, ds.query, k, ef, threads);
    }
    report["inprocess_latency"] = inprocess_latency(idx, ds.query, k, ef, 1.0);
    report["healthz_latency"] = healthz_latency(port, std::min(seconds, 2.0), kind);
    report["route"] = path;
    if (ds.groundtruth.n >= ds.query.n && ds.groundtruth.d >= k) {
      report["http_recall_at_k"] =
          http_recall(port, path, route == "query", queries, ds.groundtruth, k);
    }
    report["search"] = json::array();
    for (long long n : conns) report["search"].push_back(search_row(port, n));
    if (paired) {
      report["paired"] = paired_rounds(idx, ds.query, k, ef, seconds, paired, conns,
                                       [&](long long n) { return search_row(port, n); });
    }
    if (during_ingest) {
      report["search_during_ingest"] =
          search_during_ingest(port, col, path, queries, ds.base, batch);
    }
    if (as_json) {
      std::cout << report.dump() << std::endl;
    } else {
      print_report(report, ef);
    }
    return 0;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "waypoint_load: error: %s\n", e.what());
    return 2;
  }
}
