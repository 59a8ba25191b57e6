#pragma once
/**
 * @file server.h
 * The HTTP/1.1 server (Boost.Beast), shaped like Beast's advanced server example: a listener
 * accepts, a session owns one connection (idle timeout, body limit, keep-alive), and every request
 * goes to the pure Api::handle(). run() serves on N threads until SIGINT/SIGTERM or stop(); it
 * then stops accepting, closes idle connections, lets in-flight requests finish, and returns.
 */
#include <chrono>
#include <cstdint>
#include <memory>
#include <string>

#include "http/api.h"

namespace wp::http {

struct ServerOptions {
  std::string host = "127.0.0.1";
  uint16_t port = 6333;  ///< 0: an ephemeral port (see Server::port())
  int threads = 2;
  /// A connection waiting this long for a request, or for the client to read its answer, is
  /// closed.
  std::chrono::seconds idle_timeout{60};
  /// Connections served at once; more are answered 503 and closed.
  size_t max_connections = 1024;
  /// Request bodies held at once by all connections (counted from each Content-Length before
  /// the body is read); a request that would pass it is answered 503 unread, unless it is the only
  /// one (so that one body up to the body limit is always served).
  size_t max_bodies_in_flight = size_t{256} << 20;
  /// How long each server thread keeps looking for ready connections after its last event
  /// before it sleeps (0: it sleeps at once). A request that comes meanwhile costs no wake-up:
  /// lower latency under steady traffic, for a core kept busy while it flows.
  std::chrono::microseconds poll{0};
  /// With more than one thread: at every 64th request of a connection, one whose packets arrive
  /// on a core where another server thread runs now (SO_INCOMING_CPU: the client's core on
  /// loopback, the receiving queue's core over a network) is handed to that thread, the shares
  /// kept even: to a thread serving fewer connections, or between equal shares in trade for one
  /// that wants the other way (Server::Impl::steer_target). A client thread whose connections end
  /// up on one server thread is woken by that thread alone, on its core, without an interrupt to
  /// the other (docs/server.md, "Connections follow their packets"). A thread that serves one
  /// connection alone, whose packets arrive on a core where no thread of the server is, moves
  /// itself there instead (its affinity narrowed to that core and restored at once, so the
  /// scheduler keeps it there while it may still run anywhere): the client's wake-ups then land
  /// on the core already running (Server::Impl::follow_alone).
  bool steer_connections = true;
  /// PEM files of the certificate chain and its private key: when both are set, every
  /// connection speaks TLS (1.2 or 1.3) on the port; when neither, plain HTTP.
  std::string tls_cert;
  std::string tls_key;
  /// Cross-origin requests from web pages (CORS, as Qdrant's `enable_cors`, on by default): a
  /// preflight (OPTIONS with Origin and Access-Control-Request-Method) is answered 200 before
  /// the API and its key check, allowing any origin, method and header; every answer to a
  /// request with an Origin names that origin in Access-Control-Allow-Origin. False: neither
  /// (a preflight goes to the API like any OPTIONS request).
  bool cors = true;
  /// Answers of at least this many bytes are gzipped for a client that accepts gzip
  /// (Accept-Encoding), as Qdrant compresses them; 0: never. Smaller answers go as they are
  /// (compressing a kilobyte costs more than it saves on any network that carries it in
  /// microseconds); snapshot downloads always go as they are.
  size_t compress_min_bytes = 16 * 1024;
};

/**
 * Limits glibc's malloc arenas to one per core (at least 2) unless MALLOC_ARENA_MAX is set, and
 * returns the limit (0 when it was left alone). glibc's default is 8 per core, and a server runs
 * many more threads than cores (its pool takes the writes): after 180 MB of multivector upserts
 * the memory they freed stayed resident, scattered over 16 arenas (98-107 MiB against 66 MiB with
 * 2 arenas; docs/server.md, "Upserts without the DOM"; at 1M dense points 845 B a point against
 * 827 B), while search QPS at 1 and 32 connections measured the same with 2. Call it first, before
 * threads allocate: arenas made before stay.
 */
unsigned limit_malloc_arenas();

class Server {
 public:
  Server(Api& api, ServerOptions options);
  ~Server();
  /// Binds and listens; throws UserError when the address cannot be bound.
  void listen();
  /// The bound port (after listen()).
  uint16_t port() const;
  /// Serves until a signal or stop(); returns once in-flight requests are answered.
  void run();
  /// Asks run() to return (thread-safe).
  void stop();

  struct Impl;

 private:
  std::unique_ptr<Impl> impl_;
};

}  // namespace wp::http
