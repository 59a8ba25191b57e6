#include "http/request_head.h"

#include <ostream>  // before Beast's status.hpp, which uses std::ostream without it

#include <boost/beast/http/status.hpp>

#include <algorithm>
#include <array>
#include <charconv>

namespace wp::http {
namespace {

/// RFC 9110's tchar: the characters of a method and of a field's name.
constexpr std::array<bool, 256> kToken = [] {
  std::array<bool, 256> t{};
  for (int c = '0'; c <= '9'; ++c) t[c] = true;
  for (int c = 'a'; c <= 'z'; ++c) t[c] = true;
  for (int c = 'A'; c <= 'Z'; ++c) t[c] = true;
  for (const char c : std::string_view("!#$%&'*+-.^_`|~")) t[static_cast<unsigned char>(c)] = true;
  return t;
}();

/// What a field's value may hold: visible characters, space, tab and obs-text (as Beast).
constexpr std::array<bool, 256> kValue = [] {
  std::array<bool, 256> t{};
  t['\t'] = true;
  for (int c = 0x20; c < 0x7f; ++c) t[c] = true;
  for (int c = 0x80; c < 0x100; ++c) t[c] = true;
  return t;
}();

bool token(char c) {
  return kToken[static_cast<unsigned char>(c)];
}

/// Whether `name` is `lower` (lower case) in any case.
bool is(std::string_view name, std::string_view lower) {
  if (name.size() != lower.size()) return false;
  for (size_t i = 0; i < name.size(); ++i) {
    const char c = name[i];
    if ((c >= 'A' && c <= 'Z' ? static_cast<char>(c + ('a' - 'A')) : c) != lower[i]) return false;
  }
  return true;
}

/// A Content-Length's value: 1 to 19 digits (anything else is Beast's to read or refuse).
bool read_length(std::string_view v, uint64_t& out) {
  if (v.empty() || v.size() > 19) return false;
  uint64_t n = 0;
  for (const char c : v) {
    if (c < '0' || c > '9') return false;
    n = n * 10 + static_cast<uint64_t>(c - '0');
  }
  out = n;
  return true;
}

}  // namespace

bool read_simple_head(std::string_view bytes, RequestHead& head) {
  const size_t end = bytes.substr(0, kSimpleHeadLimit).find("\r\n\r\n");
  if (end == std::string_view::npos) return false;
  head = RequestHead{};
  head.size = end + 4;
  const char* p = bytes.data();
  // Each line of the head ends in CRLF; `last` is the end of the last one's.
  const char* const last = bytes.data() + end + 2;

  // The request line: method SP target SP HTTP/1.x CRLF.
  const char* q = p;
  while (token(*q)) ++q;
  if (q == p || *q != ' ') return false;
  head.method = std::string_view(p, static_cast<size_t>(q - p));
  p = ++q;
  if (*p != '/') return false;  // origin-form only
  while (*q > ' ' && *q < 0x7f) ++q;
  if (*q != ' ') return false;
  head.target = std::string_view(p, static_cast<size_t>(q - p));
  p = q + 1;
  if (last - p < 10 || std::string_view(p, 7) != "HTTP/1." || (p[7] != '0' && p[7] != '1') ||
      p[8] != '\r' || p[9] != '\n') {
    return false;
  }
  head.version = p[7] == '1' ? 11 : 10;
  p += 10;

  // The fields: name ":" OWS value OWS CRLF.
  bool has_length = false, has_connection = false, close = false, keep_alive = false;
  bool has_key = false, has_authorization = false, has_type = false, has_expect = false;
  bool has_origin = false, has_cors_method = false, has_cors_headers = false;
  bool has_accept_encoding = false;
  while (p < last) {
    q = p;
    while (token(*q)) ++q;
    if (q == p || *q != ':') return false;
    const std::string_view name(p, static_cast<size_t>(q - p));
    ++q;
    while (*q == ' ' || *q == '\t') ++q;
    const char* const value_begin = q;
    while (kValue[static_cast<unsigned char>(*q)]) ++q;
    if (q[0] != '\r' || q[1] != '\n') return false;
    const char* value_end = q;
    while (value_end > value_begin && (value_end[-1] == ' ' || value_end[-1] == '\t')) --value_end;
    p = q + 2;  // a line folded onto this one (it begins with a space or a tab) has no name
    const std::string_view value(value_begin, static_cast<size_t>(value_end - value_begin));
    switch (name.size()) {
      case 6:
        if (is(name, "expect")) {
          if (has_expect || !is(value, "100-continue")) return false;
          has_expect = head.expect_continue = true;
        }
        if (is(name, "origin") && !has_origin) head.origin = value, has_origin = true;
        break;
      case 7:
        if (is(name, "api-key") && !has_key) head.api_key = value, has_key = true;
        if (is(name, "upgrade")) return false;
        break;
      case 10:
        if (is(name, "connection")) {
          if (has_connection) return false;
          has_connection = true;
          close = is(value, "close");
          keep_alive = is(value, "keep-alive");
          if (!close && !keep_alive) return false;
        }
        break;
      case 12:
        if (is(name, "content-type") && !has_type) head.content_type = value, has_type = true;
        break;
      case 13:
        if (is(name, "authorization") && !has_authorization) {
          head.authorization = value, has_authorization = true;
        }
        break;
      case 14:
        if (is(name, "content-length")) {
          if (has_length || !read_length(value, head.content_length)) return false;
          has_length = true;
        }
        break;
      case 15:
        if (is(name, "accept-encoding") && !has_accept_encoding) {
          head.accept_encoding = value, has_accept_encoding = true;
        }
        break;
      case 16:
        if (is(name, "proxy-connection")) return false;
        break;
      case 17:
        if (is(name, "transfer-encoding")) return false;
        if (is(name, "waypoint-internal")) head.internal = true;
        break;
      case 29:
        if (is(name, "access-control-request-method") && !has_cors_method) {
          head.cors_method = value, has_cors_method = true;
        }
        break;
      case 30:
        if (is(name, "access-control-request-headers") && !has_cors_headers) {
          head.cors_headers = value, has_cors_headers = true;
        }
        break;
      default:
        break;
    }
  }
  head.keep_alive = head.version == 11 ? !close : keep_alive;
  return true;
}

void append_head(std::string& out, unsigned status, unsigned version, std::string_view content_type,
                 uint64_t content_length, bool keep_alive, std::string_view extra) {
  char digits[24];
  const auto number = [&](uint64_t v) {
    out.append(digits, std::to_chars(digits, digits + sizeof digits, v).ptr);
  };
  out += "HTTP/";
  number(version / 10);
  out += '.';
  number(version % 10);
  out += ' ';
  number(status);
  out += ' ';
  namespace bhttp = boost::beast::http;
  const auto reason = bhttp::obsolete_reason(static_cast<bhttp::status>(status));
  out.append(reason.data(), reason.size());
  out += "\r\nServer: waypoint\r\n";
  if (!content_type.empty()) {
    out += "Content-Type: ";
    out += content_type;
    out += "\r\n";
  }
  out += "Content-Length: ";
  number(content_length);
  out += "\r\n";
  if (version >= 11 && !keep_alive) out += "Connection: close\r\n";
  if (version < 11 && keep_alive) out += "Connection: keep-alive\r\n";
  out += extra;
  out += "\r\n";
}

bool plain_field_value(std::string_view v) {
  for (const char c : v) {
    const auto u = static_cast<unsigned char>(c);
    if ((u < 0x20 && u != '\t') || u == 0x7f) return false;
  }
  return true;
}

bool accepts_gzip(std::string_view accept_encoding) {
  // Neither gzip nor `*` named (Python's http.client sends `identity` on every request): no.
  if (std::none_of(accept_encoding.begin(), accept_encoding.end(),
                   [](char c) { return c == 'g' || c == 'G' || c == '*'; })) {
    return false;
  }
  // Each element: a coding, then parameters after ';' (a weight q=...), elements split by ','.
  auto trim = [](std::string_view v) {
    while (!v.empty() && (v.front() == ' ' || v.front() == '\t')) v.remove_prefix(1);
    while (!v.empty() && (v.back() == ' ' || v.back() == '\t')) v.remove_suffix(1);
    return v;
  };
  // A weight of zero: "q=0", "q=0.", "q=0.0"... (at most three decimals, RFC 9110 12.4.2).
  auto refused = [&](std::string_view params) {
    while (!params.empty()) {
      const size_t semi = params.find(';');
      const std::string_view param = trim(params.substr(0, semi));
      params = semi == std::string_view::npos ? std::string_view() : params.substr(semi + 1);
      if (param.size() < 2 || !is(param.substr(0, 2), "q=")) continue;
      const std::string_view w = param.substr(2);
      return !w.empty() && w[0] == '0' && w.find_first_not_of("0.", 1) == std::string_view::npos;
    }
    return false;
  };
  int gzip = -1, any = -1;  // -1 not listed, 0 refused, 1 accepted
  while (!accept_encoding.empty()) {
    const size_t comma = accept_encoding.find(',');
    const std::string_view element = accept_encoding.substr(0, comma);
    accept_encoding =
        comma == std::string_view::npos ? std::string_view() : accept_encoding.substr(comma + 1);
    const size_t semi = element.find(';');
    const std::string_view coding = trim(element.substr(0, semi));
    const bool ok = !(semi != std::string_view::npos && refused(element.substr(semi + 1)));
    if (is(coding, "gzip") || is(coding, "x-gzip")) {
      gzip = gzip == 0 ? 0 : ok;
    } else if (coding == "*") {
      any = any == 0 ? 0 : ok;
    }
  }
  return gzip >= 0 ? gzip == 1 : any == 1;
}

bool is_cors_preflight(std::string_view method, std::string_view origin,
                       std::string_view cors_method) {
  return method == "OPTIONS" && !origin.empty() && !cors_method.empty();
}

void append_cors_preflight(std::string& out, std::string_view origin, std::string_view headers) {
  if (!plain_field_value(origin) || !plain_field_value(headers)) return;
  out += "Access-Control-Allow-Origin: ";
  out += origin;
  out += "\r\nAccess-Control-Allow-Methods: GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS\r\n";
  if (!headers.empty()) {
    out += "Access-Control-Allow-Headers: ";
    out += headers;
    out += "\r\n";
  }
  out +=
      "Access-Control-Max-Age: 3600\r\n"
      "Vary: Origin, Access-Control-Request-Method, Access-Control-Request-Headers\r\n";
}

void append_cors(std::string& out, std::string_view origin) {
  if (origin.empty() || !plain_field_value(origin)) return;
  out += "Access-Control-Allow-Origin: ";
  out += origin;
  out += "\r\nVary: Origin\r\n";
}

}  // namespace wp::http
