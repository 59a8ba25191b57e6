#include "http/http_connection.h"

#include <boost/asio/connect.hpp>

namespace wp::http {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
using tcp = net::ip::tcp;

Connection::Connection(std::string host, std::string port)
    : host_(std::move(host)), port_(std::move(port)) {}

void Connection::close() {
  beast::error_code ignored;
  stream_.socket().shutdown(tcp::socket::shutdown_both, ignored);
  stream_.close();
  buffer_.clear();
}

void Connection::connect(std::chrono::milliseconds timeout, const StopFn& should_stop) {
  beast::error_code ec;
  const auto endpoints = tcp::resolver(ioc_).resolve(host_, port_, ec);
  if (ec) throw TransportError("cannot resolve " + host_ + ": " + ec.message());
  stream_.expires_after(timeout);
  stream_.async_connect(endpoints, [&](beast::error_code e, const tcp::endpoint&) { ec = e; });
  run(should_stop);
  if (ec) {
    close();
    throw TransportError("cannot connect to " + host_ + ":" + port_ + ": " + ec.message());
  }
  stream_.socket().set_option(tcp::no_delay(true), ec);
}

void Connection::send(bhttp::verb method, const std::string& target, const std::string& body,
                      Parser& parser, std::chrono::milliseconds timeout, const StopFn& should_stop,
                      const std::vector<std::pair<std::string, std::string>>& headers) {
  bhttp::request<bhttp::string_body> req(method, target, 11);
  req.set(bhttp::field::host, host_ + ":" + port_);
  req.set(bhttp::field::content_type, "application/json");
  for (const auto& [name, value] : headers) req.set(name, value);
  req.body() = body;
  req.prepare_payload();
  beast::error_code ec;
  bool done = false;
  stream_.expires_after(timeout);
  bhttp::async_write(stream_, req, [&](beast::error_code e, size_t) {
    ec = e;
    if (ec) {
      done = true;
      return;
    }
    bhttp::async_read_header(stream_, buffer_, parser, [&](beast::error_code e2, size_t) {
      ec = e2;
      done = true;
    });
  });
  run(should_stop);
  if (!done && !ec) ec = net::error::operation_aborted;
  if (ec) throw TransportError(target + ": " + ec.message());
}

void Connection::read_body(Parser& parser, std::chrono::milliseconds timeout,
                           const StopFn& should_stop) {
  beast::error_code ec;
  stream_.expires_after(timeout);
  bhttp::async_read(stream_, buffer_, parser, [&](beast::error_code e, size_t) { ec = e; });
  run(should_stop);
  if (ec) throw TransportError("reading an answer: " + ec.message());
}

void Connection::read_some(Parser& parser, std::chrono::milliseconds timeout,
                           const StopFn& should_stop) {
  beast::error_code ec;
  stream_.expires_after(timeout);
  bhttp::async_read_some(stream_, buffer_, parser, [&](beast::error_code e, size_t) { ec = e; });
  run(should_stop);
  if (ec) throw TransportError("stream: " + ec.message());
}

void Connection::run(const StopFn& should_stop) {
  ioc_.restart();
  while (!ioc_.stopped()) {
    ioc_.run_for(std::chrono::milliseconds(100));
    if (should_stop && should_stop() && !ioc_.stopped()) {
      stream_.cancel();
      ioc_.restart();
      ioc_.run();
      close();
      throw TransportError("stopped");
    }
  }
}

std::pair<std::string, std::string> parse_endpoint(const std::string& endpoint) {
  const std::string scheme = "http://";
  if (endpoint.compare(0, scheme.size(), scheme) != 0) {
    throw std::invalid_argument("expected http://HOST:PORT, got '" + endpoint + "'");
  }
  std::string rest = endpoint.substr(scheme.size());
  if (!rest.empty() && rest.back() == '/') rest.pop_back();
  const size_t colon = rest.rfind(':');
  if (colon == std::string::npos || colon == 0 || rest.find('/') != std::string::npos) {
    throw std::invalid_argument("expected http://HOST:PORT, got '" + endpoint + "'");
  }
  const std::string port = rest.substr(colon + 1);
  const bool digits = !port.empty() && port.size() <= 5 &&
                      port.find_first_not_of("0123456789") == std::string::npos;
  if (!digits || std::stoi(port) == 0 || std::stoi(port) > 65535) {
    throw std::invalid_argument("port of '" + endpoint + "' must be in 1..65535");
  }
  std::string host = rest.substr(0, colon);
  if (host.size() > 2 && host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2);
  }
  return {host, port};
}

}  // namespace wp::http
