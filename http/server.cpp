#include "http/server.h"

#include <boost/asio/dispatch.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/strand.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

#include <array>
#include <atomic>
#include <map>
#include <mutex>
#include <thread>
#include <vector>

#include "index/error.h"

namespace wp::http {

namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
namespace net = boost::asio;
using tcp = net::ip::tcp;

class Session;

struct Server::Impl {
  Api& api;
  ServerOptions options;
  net::io_context ioc;
  tcp::acceptor acceptor;
  net::signal_set signals;
  std::atomic<bool> stopping{false};
  std::mutex sessions_mu;
  std::map<uint64_t, std::weak_ptr<Session>> sessions;
  uint64_t next_session = 0;

  Impl(Api& a, ServerOptions o)
      : api(a),
        options(std::move(o)),
        ioc(options.threads),
        acceptor(net::make_strand(ioc)),
        signals(ioc, SIGINT, SIGTERM) {}

  void accept();
  void shutdown();
};

/// One connection: read a request, answer it, repeat while keep-alive.
class Session : public std::enable_shared_from_this<Session> {
 public:
  Session(tcp::socket&& socket, Server::Impl& server, uint64_t id)
      : stream_(std::move(socket)), server_(server), id_(id) {}

  ~Session() {
    std::lock_guard<std::mutex> g(server_.sessions_mu);
    server_.sessions.erase(id_);
  }

  void start() {
    net::dispatch(stream_.get_executor(),
                  beast::bind_front_handler(&Session::read, shared_from_this()));
  }

  /// Closes the connection if it is waiting for a request (called on shutdown).
  void close_if_idle() {
    net::post(stream_.get_executor(), [self = shared_from_this()] {
      if (!self->busy_) {
        beast::error_code ec;
        self->stream_.socket().shutdown(tcp::socket::shutdown_both, ec);
        self->stream_.close();
      }
    });
  }

 private:
  void read() {
    busy_ = false;
    if (server_.stopping) return close();
    parser_.emplace();
    parser_->body_limit(server_.api.options().max_body_bytes);
    stream_.expires_after(server_.options.idle_timeout);
    bhttp::async_read(stream_, buffer_, *parser_,
                      beast::bind_front_handler(&Session::on_read, shared_from_this()));
  }

  void on_read(beast::error_code ec, std::size_t) {
    busy_ = true;
    if (ec == bhttp::error::end_of_stream) return close();
    if (ec == bhttp::error::body_limit) {
      Response r{
          413,
          nlohmann::json{
              {"status",
               {{"error", "Payload too large: the body exceeds " +
                              std::to_string(server_.api.options().max_body_bytes) + " bytes"}}},
              {"time", 0}}
              .dump()};
      drain_after_write_ = true;
      return write(std::move(r), false, 11);
    }
    if (ec) return close();  // timeout, reset, malformed request line
    bhttp::request<bhttp::string_body> req = parser_->release();
    Request r;
    r.method = std::string(req.method_string());
    r.target = std::string(req.target());
    r.body = std::move(req.body());
    if (auto it = req.find("api-key"); it != req.end()) r.api_key = std::string(it->value());
    if (auto it = req.find(bhttp::field::authorization); it != req.end()) {
      r.authorization = std::string(it->value());
    }
    write(server_.api.handle(r), req.keep_alive(), req.version());
  }

  void write(Response r, bool keep_alive, unsigned version) {
    auto res = std::make_shared<bhttp::response<bhttp::string_body>>(
        static_cast<bhttp::status>(r.status), version);
    res->set(bhttp::field::server, "waypoint");
    res->set(bhttp::field::content_type, r.content_type);
    res->keep_alive(keep_alive && !server_.stopping);
    res->body() = std::move(r.body);
    res->prepare_payload();
    bhttp::async_write(stream_, *res,
                       [self = shared_from_this(), res](beast::error_code ec, std::size_t) {
                         if (!ec && self->drain_after_write_) return self->drain();
                         if (ec || !res->keep_alive()) return self->close();
                         self->read();
                       });
  }

  /// Lingering close after an early answer (413): stop sending, read and discard what the client
  /// is still sending for up to a second, then close. Closing at once with unread input would
  /// reset the connection and could destroy the answer before the client reads it.
  void drain() {
    beast::error_code ec;
    stream_.socket().shutdown(tcp::socket::shutdown_send, ec);
    stream_.expires_after(std::chrono::seconds(1));
    stream_.async_read_some(net::buffer(scratch_),
                            [self = shared_from_this()](beast::error_code e, std::size_t) {
                              if (e) return self->stream_.close();
                              self->drain();
                            });
  }

  void close() {
    beast::error_code ec;
    stream_.socket().shutdown(tcp::socket::shutdown_send, ec);
  }

  beast::tcp_stream stream_;
  beast::flat_buffer buffer_;
  std::optional<bhttp::request_parser<bhttp::string_body>> parser_;
  Server::Impl& server_;
  uint64_t id_;
  bool busy_ = false;
  bool drain_after_write_ = false;
  std::array<char, 16384> scratch_;
};

void Server::Impl::accept() {
  acceptor.async_accept(net::make_strand(ioc), [this](beast::error_code ec, tcp::socket socket) {
    if (ec) return;  // the acceptor was closed
    uint64_t id;
    {
      std::lock_guard<std::mutex> g(sessions_mu);
      id = next_session++;
    }
    // Small request/response pairs: without TCP_NODELAY, Nagle's algorithm and delayed ACKs add
    // tens of microseconds to every answer.
    beast::error_code nodelay_ec;
    socket.set_option(tcp::no_delay(true), nodelay_ec);
    auto session = std::make_shared<Session>(std::move(socket), *this, id);
    {
      std::lock_guard<std::mutex> g(sessions_mu);
      sessions[id] = session;
    }
    session->start();
    if (!stopping) accept();
  });
}

void Server::Impl::shutdown() {
  if (stopping.exchange(true)) return;
  beast::error_code ec;
  signals.cancel(ec);
  net::post(acceptor.get_executor(), [this] {
    beast::error_code ignored;
    acceptor.close(ignored);
  });
  // Sessions are collected first and closed outside the lock: dropping the last reference runs
  // ~Session, which takes the same lock.
  std::vector<std::shared_ptr<Session>> live;
  {
    std::lock_guard<std::mutex> g(sessions_mu);
    for (auto& kv : sessions) {
      if (auto s = kv.second.lock()) live.push_back(std::move(s));
    }
  }
  for (auto& s : live) s->close_if_idle();
}

Server::Server(Api& api, ServerOptions options)
    : impl_(std::make_unique<Impl>(api, std::move(options))) {
  WP_THROW_IF_NOT(impl_->options.threads >= 1 && impl_->options.threads <= 1024,
                  "threads must be in 1..1024, got ", impl_->options.threads);
}

Server::~Server() = default;

void Server::listen() {
  beast::error_code ec;
  const auto address = net::ip::make_address(impl_->options.host, ec);
  WP_THROW_IF_NOT(!ec, "host: '", impl_->options.host, "' is not an IP address");
  const tcp::endpoint endpoint(address, impl_->options.port);
  auto& a = impl_->acceptor;
  a.open(endpoint.protocol(), ec);
  if (!ec) a.set_option(net::socket_base::reuse_address(true), ec);
  if (!ec) a.bind(endpoint, ec);
  if (!ec) a.listen(net::socket_base::max_listen_connections, ec);
  WP_THROW_IF_NOT(!ec, "cannot listen on ", impl_->options.host, ":", impl_->options.port, ": ",
                  ec.message());
}

uint16_t Server::port() const {
  return impl_->acceptor.local_endpoint().port();
}

void Server::run() {
  impl_->signals.async_wait([this](beast::error_code ec, int) {
    if (!ec) impl_->shutdown();
  });
  impl_->accept();
  std::vector<std::thread> threads;
  for (int i = 1; i < impl_->options.threads; ++i)
    threads.emplace_back([this] { impl_->ioc.run(); });
  impl_->ioc.run();
  for (auto& t : threads) t.join();
}

void Server::stop() {
  net::post(impl_->ioc, [this] { impl_->shutdown(); });
}

}  // namespace wp::http
