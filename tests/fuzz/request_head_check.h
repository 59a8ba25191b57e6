#pragma once
// The server reads the request heads it can with read_simple_head (http/request_head.h) and the
// rest with Beast's parser; each head the first reads must read alike in the second.
// request_head_differs compares them (fuzz_request_head, test_request_head).
#include <boost/beast/http.hpp>

#include <limits>
#include <string>
#include <string_view>

#include "http/request_head.h"

namespace wp::test {

/// Empty when read_simple_head declines `bytes`, or reads them as Beast's request parser does
/// (with the server's limit on a head): the method, the target, the version, keep-alive, the
/// body's length (no chunked body), the head's size, and the fields the server reads (api-key,
/// Authorization, Content-Type, Origin, Access-Control-Request-Method and -Headers: the first of
/// each; waypoint-internal; Expect: 100-continue); else
/// what differs.
inline std::string request_head_differs(std::string_view bytes) {
  namespace bhttp = boost::beast::http;
  http::RequestHead head;
  if (!http::read_simple_head(bytes, head)) return "";
  bhttp::request_parser<bhttp::string_body> parser;
  parser.header_limit(16 * 1024);
  // A value, not boost::none: Beast 1.74 compares a length with an empty optional as larger.
  parser.body_limit(std::numeric_limits<uint64_t>::max());
  parser.eager(false);
  boost::beast::error_code ec;
  const size_t used = parser.put(boost::asio::buffer(bytes.data(), bytes.size()), ec);
  if (ec && ec != bhttp::error::need_more) return "Beast refuses the head: " + ec.message();
  if (!parser.is_header_done()) return "Beast has not read the whole head";
  const auto& req = parser.get();
  const auto field = [&](auto name) -> std::string {
    const auto it = req.find(name);
    return it == req.end() ? std::string() : std::string(it->value());
  };
  const auto same = [](std::string_view a, auto b) {
    return a == std::string_view(b.data(), b.size());
  };
  std::string out;
  const auto differ = [&out](const std::string& what) { out += what + "; "; };
  if (used != head.size)
    differ("head size " + std::to_string(head.size) + " against " + std::to_string(used));
  if (!same(head.method, req.method_string())) differ("method");
  if (!same(head.target, req.target())) differ("target");
  if (head.version != req.version()) differ("version");
  if (head.keep_alive != req.keep_alive()) differ("keep-alive");
  if (parser.chunked()) differ("Beast reads a chunked body");
  if (head.content_length != parser.content_length().value_or(0)) differ("Content-Length");
  if (std::string(head.api_key) != field("api-key")) differ("api-key");
  if (std::string(head.authorization) != field(bhttp::field::authorization)) {
    differ("Authorization");
  }
  if (std::string(head.content_type) != field(bhttp::field::content_type)) differ("Content-Type");
  if (std::string(head.origin) != field(bhttp::field::origin)) differ("Origin");
  if (std::string(head.cors_method) != field(bhttp::field::access_control_request_method)) {
    differ("Access-Control-Request-Method");
  }
  if (std::string(head.cors_headers) != field(bhttp::field::access_control_request_headers)) {
    differ("Access-Control-Request-Headers");
  }
  if (std::string(head.accept_encoding) != field(bhttp::field::accept_encoding)) {
    differ("Accept-Encoding");
  }
  if (head.internal != (req.find("waypoint-internal") != req.end())) differ("waypoint-internal");
  if (head.expect_continue != boost::beast::iequals(field(bhttp::field::expect), "100-continue")) {
    differ("Expect");
  }
  return out;
}

}  // namespace wp::test
