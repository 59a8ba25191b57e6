#pragma once
/**
 * @file request_head.h
 * The heads of HTTP/1.1 requests the server reads itself, and of the answers it writes.
 *
 * The server's reader of the request heads clients send most, in one pass and without an
 * allocation: a request line of a token method, a target that begins with '/', and HTTP/1.1 or
 * HTTP/1.0; header fields of plain text, with at most one Content-Length of digits (no body
 * without one), one Connection of `close` or `keep-alive` and one Expect of `100-continue`. It
 * declines everything else (an incomplete head, one over the limit, a chunked body, folded
 * lines, an Upgrade, a malformed line...), and the server then reads that request with Beast's
 * parser as before, which gives the odd and the malformed their answers (400, 414, 431). A head
 * it reads, it reads as Beast's parser does: tests/fuzz/request_head_check.h compares the two on
 * every head it takes (fuzz_request_head, test_request_head).
 */
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace wp::http {

/// A request head, as views into the bytes it was read from.
struct RequestHead {
  std::string_view method;
  std::string_view target;
  unsigned version = 11;        ///< 10 or 11 (HTTP/1.0, HTTP/1.1), as Beast counts it
  bool keep_alive = true;       ///< the version's default, or what Connection says
  uint64_t content_length = 0;  ///< 0 when the head has no Content-Length
  /// The first field of each name (compared without case), empty when none.
  std::string_view api_key, authorization, content_type;
  /// CORS (the Fetch standard): the page's origin, and in a preflight the method and the headers
  /// the page's request will carry. The first field of each, empty when none.
  std::string_view origin, cors_method, cors_headers;
  /// The codings the client accepts for the answer (the first Accept-Encoding field; empty:
  /// none named).
  std::string_view accept_encoding;
  bool internal = false;  ///< a `waypoint-internal` field
  /// `Expect: 100-continue` (in any case): the client waits for a 100 (Continue) before it
  /// sends the body. Any other expectation is declined.
  bool expect_continue = false;
  size_t size = 0;  ///< bytes of the head, its last empty line included
};

/// The largest head read_simple_head reads (half the server's limit on a head, so that every
/// head it takes is one that Beast's parser would take whole).
inline constexpr size_t kSimpleHeadLimit = 8 * 1024;

/// Reads the head at the start of `bytes` into `head`; false (head unspecified) when the bytes
/// hold no whole head within kSimpleHeadLimit or the head is not of the simple form above.
bool read_simple_head(std::string_view bytes, RequestHead& head);

/// Appends an answer's status line and headers to `out`: HTTP/1.x (`version` 10 or 11), the
/// status and its reason, Server, Content-Type (none when empty) and Content-Length, then what ends
/// or keeps the connection where the version's default differs (`Connection: close` for 1.1,
/// `Connection: keep-alive` for 1.0), then `extra` (whole header lines), then the blank line.
void append_head(std::string& out, unsigned status, unsigned version, std::string_view content_type,
                 uint64_t content_length, bool keep_alive, std::string_view extra);

/// Whether an Accept-Encoding value accepts gzip (RFC 9110 12.5.3): `gzip` or `x-gzip` listed,
/// or `*` without gzip, with a weight other than q=0 (case ignored).
bool accepts_gzip(std::string_view accept_encoding);

/// Whether a field's value may be written back in an answer's head as it is: no control
/// character but a tab.
bool plain_field_value(std::string_view v);

/// CORS (the Fetch standard), allowing any origin, method and header as Qdrant does by default.
/// A preflight: an OPTIONS request with an Origin and an Access-Control-Request-Method; the page
/// waits for its answer before it sends the request it means.
bool is_cors_preflight(std::string_view method, std::string_view origin,
                       std::string_view cors_method);
/// The headers of a preflight's answer (whole lines): the origin allowed, every method the API
/// answers, the headers asked for (Access-Control-Request-Headers, echoed: `*` would not cover
/// Authorization), for an hour, and Vary on the three fields. Nothing when a value holds a
/// control character (none reaches here through either reader; a header must not carry one).
void append_cors_preflight(std::string& out, std::string_view origin, std::string_view headers);
/// The headers of any other answer to a request with an Origin (whole lines): that origin
/// allowed, and Vary: Origin (the answer differs by it, for caches). Nothing when it is empty or
/// holds a control character.
void append_cors(std::string& out, std::string_view origin);

}  // namespace wp::http
