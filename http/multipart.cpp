#include "http/multipart.h"

#include <algorithm>
#include <cctype>

#include "engine/json_value.h"
#include "index/error.h"

namespace wp::http {

namespace {

/// `s` in lower case (header names and parameter names are case-insensitive).
std::string lower(std::string_view s) {
  std::string out(s);
  std::transform(out.begin(), out.end(), out.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return out;
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

/// The value of parameter `name` in a header value such as `form-data; name="snapshot"` (quoted
/// or not); empty when absent.
std::string parameter(std::string_view header, std::string_view name) {
  size_t pos = header.find(';');
  while (pos != std::string_view::npos) {
    std::string_view rest = header.substr(pos + 1);
    const size_t next = rest.find(';');
    std::string_view item = trim(rest.substr(0, next));
    const size_t eq = item.find('=');
    if (eq != std::string_view::npos && lower(trim(item.substr(0, eq))) == name) {
      std::string_view v = trim(item.substr(eq + 1));
      if (v.size() >= 2 && v.front() == '"' && v.back() == '"') v = v.substr(1, v.size() - 2);
      return std::string(v);
    }
    pos = next == std::string_view::npos ? next : pos + 1 + next;
  }
  return "";
}

}  // namespace

std::string_view multipart_field(std::string_view body, std::string_view content_type,
                                 std::string_view field) {
  const std::string type = lower(trim(content_type.substr(0, content_type.find(';'))));
  WP_THROW_IF_NOT(type == "multipart/form-data", "Content-Type ",
                  engine::show_json(std::string(content_type)),
                  ": expected multipart/form-data with the file in the part named `", field, "`");
  const std::string boundary = parameter(content_type, "boundary");
  WP_THROW_IF_NOT(!boundary.empty() && boundary.size() <= 200, "Content-Type: multipart/form-data ",
                  "needs a boundary parameter of 1..200 characters");
  const std::string delimiter = "--" + boundary;
  // The body: a preamble, then parts each opened by CRLF + delimiter (the first delimiter may
  // start the body), closed by delimiter + "--".
  size_t at = body.compare(0, delimiter.size(), delimiter) == 0 ? 0 : body.find("\r\n" + delimiter);
  WP_THROW_IF_NOT(at != std::string_view::npos, "body: no multipart boundary ",
                  engine::show_json(boundary), " in it");
  if (at != 0) at += 2;
  for (;;) {
    at += delimiter.size();
    WP_THROW_IF_NOT(body.size() - at >= 2,
                    "body: a multipart body ends without its closing "
                    "boundary (truncated?)");
    if (body.substr(at, 2) == "--") break;  // the closing delimiter
    // Transport padding, then CRLF, then the part's headers up to an empty line.
    while (at < body.size() && (body[at] == ' ' || body[at] == '\t')) ++at;
    WP_THROW_IF_NOT(body.substr(at, 2) == "\r\n",
                    "body: a multipart boundary is not followed by "
                    "CRLF");
    at += 2;
    const size_t headers_end = body.find("\r\n\r\n", at);
    const bool no_headers = body.substr(at, 2) == "\r\n";
    WP_THROW_IF_NOT(no_headers || headers_end != std::string_view::npos,
                    "body: a multipart part's headers never end");
    std::string_view headers = no_headers ? std::string_view() : body.substr(at, headers_end - at);
    const size_t content_begin = no_headers ? at + 2 : headers_end + 4;
    const size_t next = body.find("\r\n" + delimiter, content_begin);
    WP_THROW_IF_NOT(next != std::string_view::npos,
                    "body: a multipart part has no closing "
                    "boundary (truncated?)");
    std::string name;
    while (!headers.empty()) {
      const size_t eol = headers.find("\r\n");
      const std::string_view line = headers.substr(0, eol);
      headers = eol == std::string_view::npos ? std::string_view() : headers.substr(eol + 2);
      const size_t colon = line.find(':');
      if (colon == std::string_view::npos) continue;
      if (lower(trim(line.substr(0, colon))) == "content-disposition") {
        name = parameter(line.substr(colon + 1), "name");
      }
    }
    if (name == field) return body.substr(content_begin, next - content_begin);
    at = next + 2;
  }
  throw UserError("body: the multipart body has no part named `" + std::string(field) + "`");
}

}  // namespace wp::http
