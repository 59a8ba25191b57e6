#pragma once
/**
 * @file http_connection.h
 * One outgoing HTTP/1.1 connection (Boost.Beast) whose every operation is bounded by a deadline
 * and can be abandoned: asynchronous operations run on the connection's own io_context until
 * they complete, the deadline passes, or `should_stop` (checked every 100 ms) says so. Used by
 * the etcd client (calls and the watch's stream) and by a cluster node calling its peers.
 * Transport errors throw TransportError.
 */
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

#include <chrono>
#include <functional>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

namespace wp::http {

class TransportError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

class Connection {
 public:
  using Parser = boost::beast::http::response_parser<boost::beast::http::string_body>;
  using StopFn = std::function<bool()>;

  Connection(std::string host, std::string port);

  bool open() const { return stream_.socket().is_open(); }
  void close();

  void connect(std::chrono::milliseconds timeout, const StopFn& should_stop = nullptr);
  /// Sends a request (JSON body unless `content_type` says otherwise; extra headers as name,
  /// value pairs) and reads the answer's header into `parser`.
  void send(boost::beast::http::verb method, const std::string& target, const std::string& body,
            Parser& parser, std::chrono::milliseconds timeout, const StopFn& should_stop = nullptr,
            const std::vector<std::pair<std::string, std::string>>& headers = {});
  /// Reads the rest of the answer.
  void read_body(Parser& parser, std::chrono::milliseconds timeout,
                 const StopFn& should_stop = nullptr);
  /// Reads whatever part of a streamed body arrives next.
  void read_some(Parser& parser, std::chrono::milliseconds timeout,
                 const StopFn& should_stop = nullptr);

 private:
  void run(const StopFn& should_stop);

  std::string host_, port_;
  boost::asio::io_context ioc_;
  boost::beast::tcp_stream stream_{ioc_};
  boost::beast::flat_buffer buffer_;
};

/// Splits "http://host:port" into host and port; throws std::invalid_argument naming what is
/// wrong (plain http only: loopback or a private network).
std::pair<std::string, std::string> parse_endpoint(const std::string& endpoint);

}  // namespace wp::http
