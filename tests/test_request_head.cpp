// The server's reader of simple request heads (http/request_head.h): what it reads, what it
// leaves to Beast's parser, and that whatever it reads, Beast's parser reads alike; and the
// server's first step, its limit on malloc arenas.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdlib>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "fuzz/request_head_check.h"
#include "http/request_head.h"
#include "http/server.h"
#include "test_util.h"

using wp::http::read_simple_head;
using wp::http::RequestHead;
using wp::test::request_head_differs;

namespace {

const std::string kSearch =
    "POST /collections/c/points/search?timeout=3 HTTP/1.1\r\nHost: 127.0.0.1:6333\r\n"
    "User-Agent: python-httpx/0.27.0\r\nAccept: */*\r\nAccept-Encoding: gzip, deflate\r\n"
    "accept-encoding: br\r\nCONNECTION: Keep-Alive\r\n"
    "content-length: 37\r\nContent-Type:application/json \t\r\nApi-Key: k1\r\napi-key: k2\r\n"
    "Authorization: Bearer t\r\nWaypoint-Internal:\r\nExpect: 100-Continue\r\n"
    "Origin: http://localhost:3000\r\norigin: http://other\r\n"
    "Access-Control-Request-Method: PUT\r\nACCESS-CONTROL-REQUEST-HEADERS: api-key, x-a\r\n\r\n"
    "{\"vector\": [1, 2, 3, 4], \"limit\": 1}";

}  // namespace

TEST(RequestHead, ReadsTheHeadsClientsSendAsBeastDoes) {
  RequestHead h;
  ASSERT_TRUE(read_simple_head(kSearch, h));
  EXPECT_EQ(h.method, "POST");
  EXPECT_EQ(h.target, "/collections/c/points/search?timeout=3");
  EXPECT_EQ(h.version, 11u);
  EXPECT_TRUE(h.keep_alive);
  EXPECT_EQ(h.content_length, 37u);
  EXPECT_EQ(h.content_type, "application/json");  // no space or tab around it
  EXPECT_EQ(h.api_key, "k1");                     // the first of two
  EXPECT_EQ(h.authorization, "Bearer t");
  EXPECT_TRUE(h.internal);
  EXPECT_TRUE(h.expect_continue);
  EXPECT_EQ(h.origin, "http://localhost:3000");  // the first of two
  EXPECT_EQ(h.cors_method, "PUT");
  EXPECT_EQ(h.cors_headers, "api-key, x-a");
  EXPECT_EQ(h.accept_encoding, "gzip, deflate");  // the first of two
  EXPECT_EQ(h.size, kSearch.find("\r\n\r\n") + 4);
  EXPECT_EQ(request_head_differs(kSearch), "");

  const std::vector<std::pair<std::string, bool>> keep_alive = {
      {"GET /healthz HTTP/1.0\r\n\r\n", false},
      {"GET /healthz HTTP/1.0\r\nConnection: keep-alive\r\n\r\n", true},
      {"GET /healthz HTTP/1.1\r\n\r\n", true},
      {"GET /healthz HTTP/1.1\r\nConnection: CLOSE\r\n\r\n", false},
      {"GET /healthz HTTP/1.1\r\nConnection: keep-alive\r\n\r\n", true}};
  for (const auto& [text, alive] : keep_alive) {
    ASSERT_TRUE(read_simple_head(text, h)) << text;
    EXPECT_EQ(h.keep_alive, alive) << text;
    EXPECT_EQ(h.content_length, 0u) << text;
    EXPECT_FALSE(h.expect_continue) << text;
    EXPECT_EQ(request_head_differs(text), "") << text;
  }
  // Another request after the head (pipelined) is not part of it.
  const std::string two = "GET /a HTTP/1.1\r\nHost: x\r\n\r\nGET /b HTTP/1.1\r\n\r\n";
  ASSERT_TRUE(read_simple_head(two, h));
  EXPECT_EQ(h.target, "/a");
  EXPECT_EQ(h.size, two.find("GET /b"));
}

TEST(RequestHead, LeavesEverythingElseToBeastsParser) {
  const std::string line = "POST /c HTTP/1.1\r\n";
  for (const std::string& text : std::vector<std::string>{
           "",                                                                       // nothing yet
           "GET /healthz HTTP/1.1\r\nHost: x\r\n",                                   // not whole
           "GET /healthz HTTP/1.1\r\nHost: " + std::string(9000, 'a') + "\r\n\r\n",  // long
           "GET http://x/healthz HTTP/1.1\r\n\r\n",  // absolute form
           "GET /a b HTTP/1.1\r\n\r\n",              // a space in the target
           "GET /\xc3\xa9 HTTP/1.1\r\n\r\n",         // obs-text in the target
           "GET /healthz HTTP/2.0\r\n\r\n",
           "GET /healthz HTTP/1.1 \r\n\r\n",
           "GET  /healthz HTTP/1.1\r\n\r\n",
           "G(T /healthz HTTP/1.1\r\n\r\n",
           "GET /healthz HTTP/1.1\nHost: x\r\n\r\n",              // a bare LF
           line + "Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n",  // chunked
           line + "Content-Length: 5\r\nContent-Length: 5\r\n\r\nhello",
           line + "Content-Length: 5, 5\r\n\r\nhello",
           line + "Content-Length: +5\r\n\r\nhello",
           line + "Content-Length: 99999999999999999999\r\n\r\n",
           line + "Connection: keep-alive, Upgrade\r\nUpgrade: h2c\r\n\r\n",
           line + "Upgrade: websocket\r\n\r\n",
           line + "Proxy-Connection: close\r\n\r\n",
           line + "Connection: close\r\nConnection: close\r\n\r\n",
           line + "Expect: 200-ok\r\n\r\n",
           line + "Expect: 100-continue\r\nExpect: 100-continue\r\n\r\n",
           line + "X-Folded: a\r\n b\r\n\r\n",  // obs-fold
           line + "X-Bad: a\x01"
                  "b\r\n\r\n",  // a control character
           line + "X-Bad: a\rb\r\n\r\n",
           line + "X Bad: a\r\n\r\n",
           line + ": a\r\n\r\n"}) {
    RequestHead h;
    EXPECT_FALSE(read_simple_head(text, h)) << text;
  }
}

// A fuzzer's pass in small, every build: the heads above and the search cut short, each byte
// changed at random, bytes inserted and removed; whatever read_simple_head reads, Beast's parser
// must read alike. (fuzz_request_head does the same for as long as scripts/fuzz.sh runs it.)
TEST(RequestHead, WhateverItReadsBeastReadsAlike) {
  std::mt19937 rng(7);
  const std::string alphabet = " \t\r\n:,/?-aAzZ09\x7f\x80\xff\x01";
  size_t read = 0;
  for (int i = 0; i < 40000; ++i) {
    std::string text = kSearch;
    const int edits = 1 + static_cast<int>(rng() % 4);
    for (int e = 0; e < edits && !text.empty(); ++e) {
      const size_t at = rng() % text.size();
      const char c = rng() % 2 ? alphabet[rng() % alphabet.size()] : static_cast<char>(rng());
      switch (rng() % 4) {
        case 0:
          text[at] = c;
          break;
        case 1:
          text.insert(text.begin() + static_cast<long>(at), c);
          break;
        case 2:
          text.erase(at, 1 + rng() % 8);
          break;
        default:
          text.resize(at);
          break;
      }
    }
    RequestHead h;
    read += read_simple_head(text, h);
    ASSERT_EQ(request_head_differs(text), "") << testing::PrintToString(text);
  }
  EXPECT_GT(read, 4000u) << "the mutants should not all be declined";
}

// The CORS headers the server writes: the origin named, the headers asked for echoed, and never
// a value holding a control character (a header cannot carry one).
TEST(RequestHead, CorsHeadersNameTheOriginAndNeverWriteAControlCharacter) {
  EXPECT_TRUE(wp::http::is_cors_preflight("OPTIONS", "http://a", "PUT"));
  EXPECT_FALSE(wp::http::is_cors_preflight("OPTIONS", "http://a", ""));
  EXPECT_FALSE(wp::http::is_cors_preflight("OPTIONS", "", "PUT"));
  EXPECT_FALSE(wp::http::is_cors_preflight("POST", "http://a", "PUT"));
  std::string out;
  wp::http::append_cors(out, "http://localhost:3000");
  EXPECT_EQ(out, "Access-Control-Allow-Origin: http://localhost:3000\r\nVary: Origin\r\n");
  out.clear();
  wp::http::append_cors_preflight(out, "http://a", "api-key, content-type");
  EXPECT_EQ(out,
            "Access-Control-Allow-Origin: http://a\r\n"
            "Access-Control-Allow-Methods: GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS\r\n"
            "Access-Control-Allow-Headers: api-key, content-type\r\n"
            "Access-Control-Max-Age: 3600\r\n"
            "Vary: Origin, Access-Control-Request-Method, Access-Control-Request-Headers\r\n");
  for (const std::string& bad : {std::string("http://a\r\nSet-Cookie: x"), std::string("a\nb"),
                                 std::string("a\0b", 3), std::string("a\x7f")}) {
    out.clear();
    wp::http::append_cors(out, bad);
    wp::http::append_cors_preflight(out, bad, "");
    wp::http::append_cors_preflight(out, "http://a", bad);
    EXPECT_EQ(out, "") << testing::PrintToString(bad);
    EXPECT_FALSE(wp::http::plain_field_value(bad));
  }
  EXPECT_TRUE(wp::http::plain_field_value("a\tb \x80\xff"));
}

// Accept-Encoding as RFC 9110 reads it: gzip (or x-gzip) listed with a weight above 0, or `*`
// where gzip is not listed; case and spaces ignored; q=0 refuses, in any spelling of 0.
TEST(RequestHead, AcceptsGzipAsTheWeightsSay) {
  for (const char* yes :
       {"gzip", "GZip", "x-gzip", "gzip, deflate, br", "br;q=1.0, gzip;q=0.8", " gzip ; q=0.001",
        "*", "*;q=0.5", "deflate, *", "gzip;level=9", "gzip;Q=1"}) {
    EXPECT_TRUE(wp::http::accepts_gzip(yes)) << yes;
  }
  for (const char* no :
       {"", "identity", "deflate, br", "gzip;q=0", "gzip; q=0.000", "gzip;q=0.", "*;q=0",
        "*, gzip;q=0", "gzip;q=0, *", "gzipx", "gzip2;q=1", "gzip, gzip;q=0"}) {
    EXPECT_FALSE(wp::http::accepts_gzip(no)) << no;
  }
}

TEST(ServerSetup, LimitsMallocArenasToOnePerCoreUnlessTheUserSetsThem) {
  // The server's first step (http::limit_malloc_arenas): glibc's arenas limited to one per core,
  // at least 2; a MALLOC_ARENA_MAX in the environment is the user's and is left alone.
  const char* had = std::getenv("MALLOC_ARENA_MAX");
  const std::string saved = had ? had : "";
  ::unsetenv("MALLOC_ARENA_MAX");
  // Under a sanitizer malloc is the sanitizer's, which takes no glibc options: nothing is set.
  EXPECT_EQ(wp::http::limit_malloc_arenas(),
            wp::test::kSanitized ? 0u : std::max(2u, std::thread::hardware_concurrency()));
  ::setenv("MALLOC_ARENA_MAX", "4", 1);
  EXPECT_EQ(wp::http::limit_malloc_arenas(), 0u);
  if (had) {
    ::setenv("MALLOC_ARENA_MAX", saved.c_str(), 1);
  } else {
    ::unsetenv("MALLOC_ARENA_MAX");
  }
}
