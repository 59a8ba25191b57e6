#pragma once
/**
 * @file client.h
 * A minimal blocking HTTP/1.1 client over one keep-alive connection to 127.0.0.1 (Boost.Beast),
 * for the end-to-end tests and the load generator. Header-only: include it only where Beast's
 * compile cost is wanted.
 */
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

#include <string>
#include <utility>
#include <vector>

namespace wp::http {

class LoopbackClient {
 public:
  /// Connects to 127.0.0.1:port (TCP_NODELAY); throws boost::system::system_error on failure.
  explicit LoopbackClient(uint16_t port, std::string api_key = "")
      : sock_(ioc_), key_(std::move(api_key)) {
    using boost::asio::ip::tcp;
    sock_.connect(tcp::endpoint(boost::asio::ip::make_address("127.0.0.1"), port));
    sock_.set_option(tcp::no_delay(true));
  }

  /// Sends one request with a JSON body (may be empty); returns status and body. Throws on a
  /// transport error. A server may answer before the whole body is sent (413) and close: the
  /// answer is read even when writing the body failed.
  std::pair<unsigned, std::string> call(
      boost::beast::http::verb method, const std::string& target, const std::string& body = "",
      const std::vector<std::pair<std::string, std::string>>& headers = {}) {
    namespace bhttp = boost::beast::http;
    bhttp::request<bhttp::string_body> req(method, target, 11);
    req.set(bhttp::field::host, "127.0.0.1");
    req.set(bhttp::field::content_type, "application/json");
    if (!key_.empty()) req.set("api-key", key_);
    for (const auto& [name, value] : headers) req.set(name, value);
    req.body() = body;
    req.prepare_payload();
    boost::beast::error_code write_ec;
    bhttp::write(sock_, req, write_ec);
    bhttp::response<bhttp::string_body> res;
    bhttp::read(sock_, buf_, res);
    return {res.result_int(), std::move(res.body())};
  }

 private:
  boost::asio::io_context ioc_;
  boost::asio::ip::tcp::socket sock_;
  boost::beast::flat_buffer buf_;
  std::string key_;
};

}  // namespace wp::http
