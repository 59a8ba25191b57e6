// The plain search path (http/plain_search.h): what it reads, what it leaves to the DOM path, and
// that its answers are the DOM path's answers, body for body.
#include <array>
#include <cctype>
#include <random>
#include <tuple>

#include "api_fixture.h"
#include "fuzz/plain_upsert_check.h"
#include "http/plain_search.h"
#include "http/plain_upsert.h"
#include "http/request_parsing.h"

namespace wp::test {
namespace {

using wp::http::PlainRoute;
using wp::http::read_plain_batch;
using wp::http::read_plain_search;

TEST(PlainSearch, ReadsEveryFieldOfThePlainForm) {
  const auto s = read_plain_search(
      R"( {"limit": 7, "vector": [1, -2.5, 3e2, 0.1, 12345678901234567890],
          "offset": 3, "params": {"exact": true, "hnsw_ef": 128}, "with_payload": true,
          "with_vector": false, "score_threshold": -0.25} )");
  ASSERT_TRUE(s.has_value());
  EXPECT_EQ(s->query.vector,
            (std::vector<float>{1, -2.5f, 300, 0.1f, static_cast<float>(12345678901234567890.0)}));
  EXPECT_EQ(s->query.limit, 7u);
  EXPECT_EQ(s->query.offset, 3u);
  EXPECT_EQ(s->query.ef, 128u);
  EXPECT_TRUE(s->query.exact);
  EXPECT_TRUE(s->with_payload);
  EXPECT_TRUE(s->query.with_payload);
  EXPECT_FALSE(s->with_vector);
  EXPECT_FALSE(s->query.with_vector.any());
  ASSERT_TRUE(s->query.score_threshold.has_value());
  EXPECT_EQ(*s->query.score_threshold, -0.25f);

  const auto least = read_plain_search(R"({"vector":[0.5],"limit":1})");
  ASSERT_TRUE(least.has_value());
  EXPECT_EQ(least->query.vector, std::vector<float>{0.5f});
  EXPECT_EQ(least->query.offset, 0u);
  EXPECT_EQ(least->query.ef, 0u);  // the collection's default
  EXPECT_FALSE(least->query.exact);
  EXPECT_FALSE(least->with_payload);
  EXPECT_FALSE(least->query.score_threshold.has_value());
  // Keys are compared unescaped, as the DOM path compares them.
  EXPECT_TRUE(read_plain_search(R"({"vec\u0074or":[1],"limit":1})").has_value());
  // null is an absent field (the limit's default is 10), as on the DOM path.
  const auto nulls = read_plain_search(
      R"({"vector":[1],"limit":null,"offset":null,"params":{"hnsw_ef":null,"exact":null},
          "with_payload":null,"with_vector":null,"score_threshold":null,"filter":null})");
  ASSERT_TRUE(nulls.has_value());
  EXPECT_EQ(nulls->query.limit, 10u);
  EXPECT_EQ(nulls->query.ef, 0u);
  EXPECT_FALSE(nulls->with_payload);
  EXPECT_FALSE(nulls->query.score_threshold.has_value());
}

TEST(PlainSearch, ReadsAFilterWithTheDomPathsParser) {
  const auto s = read_plain_search(
      R"({"vector":[1],"limit":1,"filter":{"must":[{"key":"color","match":{"value":"red"}}],)"
      R"("must_not":[{"key":"n","range":{"gte":2.5}}]}})");
  ASSERT_TRUE(s.has_value());
  ASSERT_TRUE(s->filter);
  EXPECT_EQ(s->query.filter, s->filter.get());
  // What it keeps: the DOM path's parser read the same filter (compared on answers below).
  EXPECT_FALSE(s->filter->empty());
  const auto none = read_plain_search(R"({"vector":[1],"limit":1,"filter":null})");
  ASSERT_TRUE(none.has_value());
  EXPECT_EQ(none->query.filter, nullptr);
  const auto empty = read_plain_search(R"({"vector":[1],"limit":1,"filter":{}})");
  ASSERT_TRUE(empty.has_value());
  EXPECT_TRUE(empty->filter && empty->filter->empty());
}

TEST(PlainSearch, ReadsTheQueryRoutesPlainForm) {
  const auto q = read_plain_search(
      R"({"query":[0.5,2],"using":"image","limit":4,"params":{"hnsw_ef":32},"with_payload":true,
          "prefetch":null,"lookup_from":null,"filter":null})",
      PlainRoute::kQuery);
  ASSERT_TRUE(q.has_value());
  EXPECT_EQ(q->query.vector, (std::vector<float>{0.5f, 2}));
  EXPECT_EQ(q->query.vector_name, "image");
  EXPECT_EQ(q->query.limit, 4u);
  EXPECT_EQ(q->query.ef, 32u);
  EXPECT_TRUE(q->with_payload);
  // The limit is optional on /points/query (10).
  const auto least = read_plain_search(R"({"query":[1]})", PlainRoute::kQuery);
  ASSERT_TRUE(least.has_value());
  EXPECT_EQ(least->query.limit, 10u);
  EXPECT_EQ(least->query.vector_name, "");
  // Each route's own key only.
  EXPECT_FALSE(read_plain_search(R"({"query":[1],"limit":1})", PlainRoute::kSearch));
  EXPECT_FALSE(read_plain_search(R"({"vector":[1],"limit":1})", PlainRoute::kQuery));
  EXPECT_FALSE(read_plain_search(R"({"vector":[1],"limit":1,"using":"a"})", PlainRoute::kSearch));
  for (const char* body :
       {R"({})", R"({"query":null})", R"({"query":{"nearest":[1]}})", R"({"query":7})",
        R"({"query":[1],"using":7})", R"({"query":[1],"prefetch":{"query":[1]}})",
        R"({"query":[1],"prefetch":[]})", R"({"query":[1],"lookup_from":{}})",
        R"({"query":[1],"filter":{"must":{"key":"k"}}})"}) {
    EXPECT_FALSE(read_plain_search(body, PlainRoute::kQuery)) << body;
  }
}

/// The edits of a mutant: a byte flipped (to one below 128), 1-3 bytes erased, up to `repeat`
/// bytes repeated, a digit for a digit (most such mutants stay plain), a token inserted.
enum class Edit { kFlip, kErase, kRepeat, kDigit, kToken };
using Edits = std::array<Edit, 4>;
constexpr Edits kFlipEraseRepeatToken = {Edit::kFlip, Edit::kErase, Edit::kRepeat, Edit::kToken};
constexpr Edits kEraseRepeatDigitToken = {Edit::kErase, Edit::kRepeat, Edit::kDigit, Edit::kToken};

/// `body` with 1-3 seeded edits of the kinds in `edits`.
std::string mutated(std::string body, std::mt19937& rng, const Edits& edits,
                    const std::vector<std::string>& tokens, size_t repeat) {
  const int count = 1 + static_cast<int>(rng() % 3);
  for (int e = 0; e < count && !body.empty(); ++e) {
    const size_t at = rng() % body.size();
    switch (edits[rng() % 4]) {
      case Edit::kFlip:
        body[at] = static_cast<char>(rng() % 128);
        break;
      case Edit::kErase:
        body.erase(at, 1 + rng() % 3);
        break;
      case Edit::kRepeat:
        body.insert(at, body.substr(at, 1 + rng() % repeat));
        break;
      case Edit::kDigit:
        if (std::isdigit(static_cast<unsigned char>(body[at]))) body[at] = '0' + rng() % 10;
        break;
      case Edit::kToken:
        body.insert(at, tokens[rng() % tokens.size()]);
    }
  }
  return body;
}

/// Bodies that are not the plain form, or are wrong: every one goes to the DOM path.
const std::vector<std::string>& not_plain() {
  static const std::vector<std::string> bodies = {
      "",
      "[]",
      "null",
      R"({"vector":[1]})",  // no limit (required on /points/search)
      R"({"limit":1})",
      R"({"vector":[],"limit":1})",
      R"({"vector":[1,"2"],"limit":1})",
      R"({"vector":[1,null],"limit":1})",
      R"({"vector":[1,[2]],"limit":1})",
      R"({"vector":[1e39],"limit":1})",  // beyond a 32-bit float
      R"({"vector":[1e400],"limit":1})",
      R"({"vector":{"name":"a","vector":[1]},"limit":1})",
      R"({"vector":[1],"limit":0})",
      R"({"vector":[1],"limit":10001})",
      R"({"vector":[1],"limit":-1})",
      R"({"vector":[1],"limit":2.0})",
      R"({"vector":[1],"limit":"2"})",
      R"({"vector":[1],"limit":18446744073709551616})",
      R"({"vector":[1],"limit":1,"offset":10001})",
      R"({"vector":[1],"limit":1,"params":{"hnsw_ef":0}})",
      R"({"vector":[1],"limit":1,"params":{"hnsw_ef":100001}})",
      R"({"vector":[1],"limit":1,"params":{"quantization":{"rescore":true}}})",
      R"({"vector":null,"limit":1})",
      R"({"vector":[1],"limit":1,"params":[]})",
      R"({"vector":[1],"limit":1,"params":{"exact":1}})",
      R"({"vector":[1],"limit":1,"params":{"exact":true,"exact":false}})",
      R"({"vector":[1],"limit":1,"with_payload":["a"]})",
      R"({"vector":[1],"limit":1,"with_payload":{"exclude":["a"]}})",
      R"({"vector":[1],"limit":1,"with_vector":["a"]})",
      R"({"vector":[1],"limit":1,"score_threshold":1e40})",
      R"({"vector":[1],"limit":1,"filter":[]})",
      R"({"vector":[1],"limit":1,"filter":{"should":7}})",
      R"({"vector":[1],"limit":1,"filter":{"must":[{"key":"n","range":{"gt":"a"}}]}})",
      R"({"vector":[1],"limit":1,"filter":{"must":[{"key":"n"}]}})",
      R"({"vector":[1],"limit":1,"filter":{"bogus":[]}})",
      R"({"vector":[1],"limit":1,"filter":{},"filter":null})",
      R"({"vector":[1],"limit":1,"using":""})",
      R"({"vector":[1],"limit":1,"limit":2})",  // the DOM keeps the last
      R"({"vector":[1],"limit":1} x)",
      R"({"vector":[1],"limit":1}{})",
      R"({"vector":[1],"limit":1)",
      R"({"vector":[1] "limit":1})",
      R"({"vector":[1],"limit":1,})",
      R"({"vector":[01],"limit":1})",
      R"({"vector":[1.],"limit":1})",
      R"({"vector":[NaN],"limit":1})",
      "{\"vector\":[1],\"limit\":1,\"with_payload\":true,\"\xff\":1}",
      std::string(R"({"vector":[1],"limit":1,"x":")") + std::string(1, '\0') + "\"}",
  };
  return bodies;
}

TEST(PlainSearch, LeavesEveryOtherBodyToTheDomPath) {
  for (const std::string& body : not_plain()) {
    EXPECT_FALSE(read_plain_search(body).has_value()) << body;
  }
  // A body beyond the reader's bound, however plain.
  std::string big = R"({"limit":1,"vector":[1)";
  while (big.size() <= wp::http::kMaxPlainSearchBody) big += ",1";
  big += "]}";
  EXPECT_FALSE(read_plain_search(big).has_value());
}

/// One engine, two Apis: the plain path on, and every body through the DOM.
class PlainAnswers : public ApiTest {
 protected:
  void SetUp() override {
    ApiTest::SetUp();
    wp::http::ApiOptions o;
    o.max_body_bytes = 1 << 20;
    o.plain_answers = false;
    dom_ = std::make_unique<Api>(*engine_, o);
    make_points();  // "c": 3-d Euclid, ids 1, 2 and a UUID, payloads
    ok("PUT", "/collections/cos", {{"vectors", {{"size", 2}, {"distance", "Cosine"}}}});
    json points = json::array();
    std::mt19937 rng(7);
    std::normal_distribution<float> g;
    for (int i = 0; i < 50; ++i) {
      points.push_back({{"id", i},
                        {"vector", {g(rng), g(rng)}},
                        {"payload", {{"name", "p\u00e9\"" + std::to_string(i)}, {"x", i * 0.5}}}});
    }
    ok("PUT", "/collections/cos/points?wait=true", {{"points", points}});
    // Named vectors: "a" 2-d Euclid, "b" 3-d Dot; point 2 has only "a".
    ok("PUT", "/collections/named",
       {{"vectors",
         {{"a", {{"size", 2}, {"distance", "Euclid"}}},
          {"b", {{"size", 3}, {"distance", "Dot"}}}}}});
    ok("PUT", "/collections/named/points?wait=true",
       {{"points",
         {{{"id", 1}, {"vector", {{"a", {1, 0}}, {"b", {1, 2, 3}}}}, {"payload", {{"k", 1}}}},
          {{"id", 2}, {"vector", {{"a", {0, 1}}}}},
          {{"id", 3}, {"vector", {{"a", {2, 2}}, {"b", {-1, 0, 1}}}}}}}});
  }

  /// Both Apis' answers to `body`: the same status, and the same JSON once "time" is dropped.
  void expect_same(const std::string& collection, const std::string& body,
                   PlainRoute route = PlainRoute::kSearch, bool batch = false) {
    const bool query = route == PlainRoute::kQuery;
    const std::string target = "/collections/" + collection +
                               (query ? "/points/query" : "/points/search") +
                               (batch ? "/batch" : "");
    const Response plain = api_->handle(Request{"POST", target, body, "", ""});
    const Response dom = dom_->handle(Request{"POST", target, body, "", ""});
    ASSERT_EQ(plain.status, dom.status)
        << body << "\nplain: " << plain.body << "\ndom: " << dom.body;
    json a = json::parse(plain.body), b = json::parse(dom.body);
    ASSERT_TRUE(a.contains("time") && a["time"].is_number_float()) << plain.body;
    a.erase("time");
    b.erase("time");
    EXPECT_EQ(a, b) << body;
    // A score is a float to the client on both paths ("score": 1.0, not 1).
    if (plain.status == 200 && !batch && read_plain_search(body, route)) {
      for (const json& hit : query ? a["result"]["points"] : a["result"]) {
        EXPECT_TRUE(hit["score"].is_number_float()) << plain.body;
      }
    }
    if (plain.status == 200 && batch && read_plain_batch(body, route, 1000)) {
      for (const json& answer : a["result"]) {
        for (const json& hit : query ? answer["points"] : answer) {
          EXPECT_TRUE(hit["score"].is_number_float()) << plain.body;
        }
      }
    }
  }

  std::unique_ptr<Api> dom_;
};

TEST_F(PlainAnswers, AreTheDomPathsAnswersBodyForBody) {
  const std::vector<std::string> plain_bodies = {
      R"({"vector":[0.1,0,0],"limit":3})",
      R"({"vector":[1,0,0],"limit":2,"with_payload":true})",
      R"({"vector":[1,0,0],"limit":3,"with_payload":true,"with_vector":true})",
      R"({"vector":[2,0,0],"limit":3,"offset":1,"params":{"hnsw_ef":5,"exact":true}})",
      R"({"vector":[2,0,0],"limit":3,"score_threshold":1.5})",
      R"({"vector":[0,0,0],"limit":10000,"with_vector":true})",
      R"({"vector":[1,0],"limit":3})",  // a wrong dimension: the search's own 400
      // Filters, read by the DOM path's parser: match, range (numbers written back by simdjson
      // as they were read), must_not, should, has_id with a UUID, nested, escapes in strings.
      R"({"vector":[0,0,0],"limit":3,"filter":{"must":[{"key":"color","match":{"value":"red"}}]}})",
      R"({"vector":[0,0,0],"limit":3,"with_payload":true,"filter":{"must_not":[{"key":"n",)"
      R"("range":{"gte":2.5e0,"lt":1E9}}]}})",
      R"({"vector":[0,0,0],"limit":3,"filter":{"should":[{"key":"n","match":{"value":2}},)"
      R"({"has_id":["5c56c793-69f3-4fbf-87e6-c4bf54c28c26"]}]}})",
      R"({"vector":[0,0,0],"limit":3,"filter":{"must":[{"key":"n","range":{"gt":0.9999999999999999}}]}})",
      R"({"vector":[0,0,0],"limit":3,"filter":{"must":[{"key":"color","match":{"any":["blue"]}}]}})",
      R"({"vector":[0,0,0],"limit":3,"filter":{"must":[{"must_not":[{"key":"color",)"
      R"("match":{"value":"red"}}]}]},"params":{"exact":true}})",
      R"({"vector":[0,0,0],"limit":3,"filter":{"must":[{"key":"n","match":{"value":-0}}]}})",
      R"({"vector":[0,0,0],"limit":3,"filter":{"must":[{"key":"n","range":{"lte":18446744073709551615}}]}})",
      R"({"vector":[0,0,0],"limit":3,"filter":{"must":[{"key":"nothing","match":{"value":1}}]}})",
      R"({"vector":[0,0,0],"limit":3,"filter":{}})",
  };
  for (const std::string& body : plain_bodies) {
    ASSERT_TRUE(read_plain_search(body).has_value()) << body;
    expect_same("c", body);
  }
  for (const std::string& body : not_plain()) expect_same("c", body);
  expect_same("missing", R"({"vector":[1,0,0],"limit":3})");
  expect_same("named", R"({"vector":[1,0],"limit":3})");  // which vector? the search's 400
  // Cosine: scores are similarities, ties and payloads with escapes.
  for (const char* body :
       {R"({"vector":[1,1],"limit":20,"with_payload":true})",
        R"({"vector":[-3,0.5],"limit":5,"with_vector":true,"score_threshold":0.2})",
        R"({"vector":[0,0],"limit":5})"}) {
    expect_same("cos", body);
  }
}

TEST_F(PlainAnswers, AreTheDomPathsAnswersOnTheQueryRoute) {
  const std::vector<std::pair<std::string, std::string>> bodies = {
      {"c", R"({"query":[0.1,0,0]})"},
      {"c", R"({"query":[1,0,0],"limit":2,"with_payload":true,"with_vector":true})"},
      {"c", R"({"query":[2,0,0],"limit":3,"offset":1,"params":{"exact":true},"prefetch":null})"},
      {"c", R"({"query":[2,0,0],"score_threshold":1.5,"using":null})"},
      {"c", R"({"query":[2,0,0],"using":"a"})"},  // an unnamed collection: `using` names none
      {"cos", R"({"query":[1,1],"limit":20,"with_payload":true,"lookup_from":null})"},
      {"named", R"({"query":[1,0],"using":"a","limit":3,"with_vector":true})"},
      {"named", R"({"query":[0,0,1],"using":"b","with_payload":true})"},
      {"named", R"({"query":[0,0,1],"using":"zz"})"},
      {"named", R"({"query":[0,0,1],"using":"a"})"},  // a wrong dimension for "a"
      {"named", R"({"query":[0,0]})"},
      {"missing", R"({"query":[1,0,0]})"},
  };
  for (const auto& [collection, body] : bodies) {
    ASSERT_TRUE(read_plain_search(body, PlainRoute::kQuery).has_value()) << body;
    expect_same(collection, body, PlainRoute::kQuery);
  }
  for (const std::string& body : not_plain()) expect_same("c", body, PlainRoute::kQuery);
  for (const char* body : {"", R"({})", R"({"query":null,"limit":2})",
                           R"({"query":{"nearest":[1,0,0]}})", R"({"query":2,"limit":1})"}) {
    expect_same("c", body, PlainRoute::kQuery);
  }
}

// A score is a float: both paths write the shortest text that reads back as that float, as
// Qdrant writes its f32 scores ("0.1", where the double it widens to reads "0.10000000149011612").
TEST_F(PlainAnswers, WriteAScoreAsTheShortestTextOfItsFloat) {
  // Dot on "b": point 1 is (1, 2, 3), point 3 (-1, 0, 1): scores 0.1f and -0.1f exactly.
  const std::string body = R"({"query":[0.1,0,0],"using":"b","limit":2})";
  ASSERT_TRUE(read_plain_search(body, PlainRoute::kQuery).has_value());
  const std::string target = "/collections/named/points/query";
  for (Api* api : {api_.get(), dom_.get()}) {
    const Response r = api->handle(Request{"POST", target, body, "", ""});
    ASSERT_EQ(r.status, 200u) << r.body;
    EXPECT_NE(r.body.find("\"score\":0.1,"), std::string::npos) << r.body;
    EXPECT_NE(r.body.find("\"score\":-0.1,"), std::string::npos) << r.body;
  }
  expect_same("named", body, PlainRoute::kQuery);

  std::string out;
  for (const float x : {0.1f, 58940.0f, -0.0f, 1e-7f, 3.4028235e38f, 16777216.0f}) {
    out.clear();
    wp::http::append_json_number(out, x);
    float back = 0;
    std::sscanf(out.c_str(), "%f", &back);
    EXPECT_EQ(back, x) << out;
    EXPECT_TRUE(out.find_first_of(".e") != std::string::npos) << out << ": a float stays one";
    EXPECT_EQ(static_cast<float>(wp::http::shortest_double(x)), x) << out;
    EXPECT_EQ(json(wp::http::shortest_double(x)), json::parse(out)) << out;
  }
  for (const char* text : {"0.1", "58940.0", "-0.0", "1e-07"}) {
    out.clear();
    wp::http::append_json_number(out, std::strtof(text, nullptr));
    EXPECT_EQ(out, text);
  }
  out.clear();
  wp::http::append_json_number(out, std::numeric_limits<float>::quiet_NaN());
  EXPECT_EQ(out, "null");
}

TEST_F(PlainAnswers, AgreeOnMutatedBodies) {
  // Seeded mutations of plain bodies (bytes flipped, dropped, repeated, tokens spliced in):
  // whichever path a mutant takes, both Apis answer it the same.
  const std::vector<std::string> seeds = {
      R"({"vector":[1,0.5,-2],"limit":3,"offset":1,"params":{"hnsw_ef":16,"exact":false},)"
      R"("with_payload":true,"with_vector":true,"score_threshold":9.5})",
      R"({"limit":2,"vector":[0,1e-3,2E1]})",
      R"({"vector":[1,0.5,-2],"limit":3,"filter":{"must":[{"key":"color","match":{"value":"red"}}],)"
      R"("should":[{"key":"n","range":{"gte":1.5}},{"has_id":[2]}]}})",
      R"({"query":[1,0.5,-2],"using":null,"limit":3,"params":{"hnsw_ef":16},"with_payload":true})",
      R"({"query":[0,1],"using":"a","prefetch":null,"filter":null,"with_vector":true})"};
  const std::vector<std::string> tokens = {"null", "true", "-", "1e99", "[", "]", "{",
                                           "}",    ",",    ":", "\"",   "0", ".", "\\u0000"};
  std::mt19937 rng(20261203);
  size_t plain = 0;
  for (int i = 0; i < 3000; ++i) {
    const std::string body =
        mutated(seeds[i % seeds.size()], rng, kFlipEraseRepeatToken, tokens, 8);
    const PlainRoute route = i % seeds.size() >= 3 ? PlainRoute::kQuery : PlainRoute::kSearch;
    if (read_plain_search(body, route)) ++plain;
    expect_same(i % 5 == 0 ? "cos" : i % 7 == 0 ? "named" : "c", body, route);
    if (HasFatalFailure()) return;
  }
  // Both kinds were exercised: some mutants still plain, most not.
  EXPECT_GT(plain, 30u);
  EXPECT_LT(plain, 2900u);
}

TEST(PlainSearch, ReadsBatchesOfPlainSearchesOnly) {
  const auto b = read_plain_batch(
      R"({"searches":[{"vector":[1,2],"limit":3},{"limit":1,"vector":[0.5],"offset":2}]})",
      PlainRoute::kSearch, 1000);
  ASSERT_TRUE(b.has_value());
  ASSERT_EQ(b->size(), 2u);
  EXPECT_EQ((*b)[0].query.vector, (std::vector<float>{1, 2}));
  EXPECT_EQ((*b)[0].query.limit, 3u);
  EXPECT_EQ((*b)[1].query.offset, 2u);
  const auto q = read_plain_batch(R"({"searches":[{"query":[1],"using":"a"},{"query":[2]}]})",
                                  PlainRoute::kQuery, 1000);
  ASSERT_TRUE(q.has_value());
  EXPECT_EQ((*q)[0].query.vector_name, "a");
  EXPECT_EQ((*q)[1].query.limit, 10u);  // the query route's default
  ASSERT_TRUE(read_plain_batch(R"({"searches":[]})", PlainRoute::kSearch, 1000).has_value());
  for (const char* body :
       {R"({"searches":[{"vector":[1],"limit":1},{"vector":[1]}]})",  // no limit in [1]
        R"({"searches":[{"vector":[1],"limit":1,"filter":{"must":7}}]})",
        R"({"searches":{"vector":[1],"limit":1}})", R"({"searches":[1]})", R"({"searches":null})",
        R"({"searches":[],"searches":[]})", R"({"searches":[],"timeout":3})", R"([])", R"({})",
        R"({"searches":[{"vector":[1],"limit":1}])"}) {
    EXPECT_FALSE(read_plain_batch(body, PlainRoute::kSearch, 1000).has_value()) << body;
  }
  // More searches than a batch may hold: the DOM path refuses them by name.
  EXPECT_FALSE(
      read_plain_batch(R"({"searches":[{"vector":[1],"limit":1},{"vector":[1],"limit":1}]})",
                       PlainRoute::kSearch, 1)
          .has_value());
}

TEST_F(PlainAnswers, AreTheDomPathsAnswersOnTheBatchRoutes) {
  // Over the answer's cap of 100,000 points together, not one by one: the batch's 400.
  std::string over_the_cap = R"({"searches":[)";
  for (int i = 0; i < 11; ++i)
    over_the_cap += (i ? "," : "") + std::string(R"({"vector":[0,0,0],"limit":10000})");
  over_the_cap += "]}";
  const std::vector<std::tuple<std::string, PlainRoute, std::string>> bodies = {
      {"c", PlainRoute::kSearch,
       R"({"searches":[{"vector":[0.1,0,0],"limit":3},{"vector":[2,0,0],"limit":2,)"
       R"("with_payload":true,"with_vector":true,"offset":1}]})"},
      {"c", PlainRoute::kSearch, R"({"searches":[]})"},
      {"c", PlainRoute::kSearch,  // a wrong dimension in the second: the DOM path's 400
       R"({"searches":[{"vector":[0.1,0,0],"limit":3},{"vector":[2,0],"limit":2}]})"},
      {"c", PlainRoute::kSearch, over_the_cap},
      {"cos", PlainRoute::kSearch,
       R"({"searches":[{"vector":[1,1],"limit":20,"with_payload":true},)"
       R"({"vector":[-3,0.5],"limit":5,"score_threshold":0.2}]})"},
      {"named", PlainRoute::kSearch, R"({"searches":[{"vector":[1,0],"limit":3}]})"},
      {"missing", PlainRoute::kSearch, R"({"searches":[{"vector":[1,0,0],"limit":3}]})"},
      {"c", PlainRoute::kQuery,
       R"({"searches":[{"query":[0.1,0,0]},{"query":[1,0,0],"limit":2,"with_payload":true}]})"},
      {"named", PlainRoute::kQuery,
       R"({"searches":[{"query":[1,0],"using":"a","limit":3},{"query":[0,0,1],"using":"b"}]})"},
      {"named", PlainRoute::kQuery,
       R"({"searches":[{"query":[1,0],"using":"a"},{"query":[0,0,1],"using":"zz"}]})"},
      {"named", PlainRoute::kQuery, R"({"searches":[{"query":[1,0]}]})"},
  };
  for (const auto& [collection, route, body] : bodies) {
    ASSERT_TRUE(read_plain_batch(body, route, 1000).has_value()) << body;
    expect_same(collection, body, route, true);
  }
  // Seeded mutants of plain batches take whichever path, and both Apis answer them alike.
  std::mt19937 rng(20261204);
  const std::vector<std::string> tokens = {"null", "true", "-", "1e99", "[", "]",       "{",
                                           "}",    ",",    ":", "\"",   "0", "searches"};
  size_t plain = 0;
  for (int i = 0; i < 1500; ++i) {
    const auto& [collection, route, seed] = bodies[i % bodies.size()];
    const std::string body = mutated(seed, rng, kEraseRepeatDigitToken, tokens, 12);
    if (read_plain_batch(body, route, 1000)) ++plain;
    expect_same(collection, body, route, true);
    if (HasFatalFailure()) return;
  }
  EXPECT_GT(plain, 20u);
  EXPECT_LT(plain, 1450u);
}

TEST_F(PlainAnswers, RefuseBodiesNestedDeeperThanTheDomPathDoes) {
  // A filter nested `n` times in {"must": [...]} around a condition: the body's depth is 2n + 3
  // with a match on a value and 2n + 4 with a match on a list. The DOM path refuses a body deeper
  // than 128 (check_json_depth); the plain reader did too only from 134, where the filter's own
  // parse refused it (a 200 where the DOM path gave a 400, from 129 to 133). simdjson counts a
  // value inside the innermost array as one more level: a body 128 deep with a number or a string
  // at the bottom (as every filter has) goes to the DOM path, which answers it.
  for (int n = 61; n <= 64; ++n) {
    for (const bool list : {false, true}) {
      std::string filter = list ? R"({"key":"color","match":{"any":["red"]}})"
                                : R"({"key":"n","match":{"value":1}})";
      for (int i = 0; i < n; ++i) filter = R"({"must":[)" + filter + "]}";
      const std::string body = R"({"vector":[0,0,0],"limit":3,"filter":)" + filter + "}";
      const int depth = 2 * n + (list ? 4 : 3);
      EXPECT_EQ(read_plain_search(body).has_value(), depth < 128) << depth;
      expect_same("c", body);
      EXPECT_EQ(call("POST", "/collections/c/points/search", body).status,
                depth <= 128 ? 200u : 400u);
    }
  }
}

/// Upsert bodies the plain reader takes, each read to the DOM path's points.
const std::vector<std::string>& plain_upserts() {
  static const std::vector<std::string> bodies = {
      R"({"points":[{"id":1,"vector":[0.5,-1,2e3],"payload":{"a":"x","n":-3,"u":7,"z":0,"f":1.5,)"
      R"("b":true,"nil":null,"arr":[1,"s",{"k":[]}]}},)"
      R"({"id":"5C56C793-69F3-4FBF-87E6-C4BF54C28C26","vector":[1,2,3]},)"
      R"({"vector":[0,0,0],"id":18446744073709551615,"payload":null}]})",
      R"({"points":[{"id":2,"vector":{"a":[1,2],"b":[[1,2,3],[4,5,6]],"":[7]}}]})",
      R"({"points":[{"id":3,"vector":[[1,2],[3,4],[5,6]],"payload":{}}]})",
      R"({"batch":{"ids":[1,2],"vectors":[[1,2],[3,4]],"payloads":[{"a":1},null]}})",
      R"({"batch":{"vectors":{"a":[[1,2],[3,4]],"m":[[[1]],[[2],[3]]]},)"
      R"("ids":[5,"5c56c793-69f3-4fbf-87e6-c4bf54c28c26"],"payloads":null}})",
      R"({"batch":{"ids":[7],"vectors":[[[1,2]]]}})",
      R"({"points":[]})",
      R"({"batch":{"ids":[],"vectors":[]}})",
      R"({"batch":{"ids":[1],"vectors":{}}})",
      R"({"points":[{"id":1,"vector":{}}]})",
      // A repeated payload key keeps its last value, as nlohmann's parser keeps it.
      R"({"points":[{"id":1,"vector":[1],"payload":{"a":1,"a":{"b":[2]},"c":{"d":1},"c":[]}}]})",
      R"({"points":[{"id":1,"vector":[1],"payload":{"k\u00e9":"\ud83d\ude00\n\u0000\/"}}]})",
      R"({"points":[{"id":1,"vector":[1e-50,-0.0,3.4028234663852886e38,1E2,12345678901234567890],)"
      R"("payload":{"big":18446744073709551615,"neg":-9223372036854775808,"e":1E2,"d":-0.0,)"
      R"("tiny":5e-324,"z":0,"x":[0,-1,1.0,-0.5,1e-400]}}]})",
      R"({"points":[{"id":-0,"vector":[-0]}]})",  // an id and a vector may be "-0"
      // Sparse vectors by name (sorted by index as they are read), beside dense ones.
      R"({"points":[{"id":1,"vector":{"s":{"values":[0.5,-2,3],"indices":[9,0,4294967295]},)"
      R"("d":[1,2],"e":{"indices":[],"values":[]}}}]})",
      R"({"batch":{"ids":[1,2],"vectors":{"s":[{"indices":[3,1],"values":[1,2]},)"
      R"({"indices":[7],"values":[1e-3]}],"d":[[1],[2]]}}})",
      R"({"points":[{"id":1,"vector":{"indices":[1],"values":[1]}}]})",  // two dense vectors
      " \n\t{ \"points\" : [ { \"id\" : 1 , \"vector\" : [ 1 , 2 ] } ] } \r\n",
  };
  return bodies;
}

TEST(PlainUpsert, ReadsBothShapesAsTheDomPathDoes) {
  for (const std::string& body : plain_upserts()) {
    ASSERT_TRUE(wp::http::read_plain_upsert(body, body.size()).has_value()) << body;
    EXPECT_EQ(plain_upsert_differs(body), "") << body;
  }
  // What the comparison compares, on the first body.
  const auto points = wp::http::read_plain_upsert(plain_upserts()[0], 1 << 20);
  ASSERT_TRUE(points && points->size() == 3);
  const wp::engine::PointWrite& p = (*points)[0];
  EXPECT_EQ(p.id, wp::engine::PointId::number(1));
  EXPECT_EQ(p.vectors.at(""), (std::vector<float>{0.5f, -1, 2000}));
  EXPECT_TRUE(p.payload["u"].is_number_unsigned());
  EXPECT_TRUE(p.payload["z"].is_number_unsigned());  // "0": unsigned, as nlohmann reads it
  EXPECT_TRUE(p.payload["n"].is_number_integer() && !p.payload["n"].is_number_unsigned());
  EXPECT_TRUE(p.payload["f"].is_number_float());
  EXPECT_EQ(p.payload["arr"], json::parse(R"([1,"s",{"k":[]}])"));
  EXPECT_EQ((*points)[1].id, wp::engine::PointId::uuid("5c56c793-69f3-4fbf-87e6-c4bf54c28c26"));
  EXPECT_TRUE((*points)[1].payload.is_object() && (*points)[1].payload.empty());  // absent
  EXPECT_TRUE((*points)[2].payload.is_null());
  const auto multi = wp::http::read_plain_upsert(plain_upserts()[1], 1 << 20);
  ASSERT_TRUE(multi && multi->size() == 1);
  EXPECT_EQ((*multi)[0].multi.at("b").dim, 3u);
  EXPECT_EQ((*multi)[0].multi.at("b").values, (std::vector<float>{1, 2, 3, 4, 5, 6}));
  EXPECT_EQ((*multi)[0].vectors.at(""), std::vector<float>{7});
  // The comparison tells types and bits apart.
  EXPECT_FALSE(same_json(json(0u), json(0)));
  EXPECT_FALSE(same_json(json(-0.0), json(0.0)));
  EXPECT_FALSE(same_floats({-0.0f}, {0.0f}));
}

TEST(PlainUpsert, LeavesEveryOtherBodyToTheDomPath) {
  std::vector<std::string> bodies = {
      "",
      "[]",
      "{}",
      R"({"points":[],"batch":{"ids":[],"vectors":[]}})",
      R"({"points":{}})",
      R"({"points":null})",
      R"({"points":[7]})",
      R"({"points":[{"id":1}]})",
      R"({"points":[{"vector":[1]}]})",
      R"({"points":[{"id":1,"vector":[1],"shard_key":"a"}]})",  // the DOM path reads it
      R"({"points":[{"id":1,"vector":[1]}],"wait":true})",
      R"({"points":[{"id":1,"id":2,"vector":[1]}]})",
      R"({"points":[{"id":1,"vector":[1],"vector":[2]}]})",
      R"({"points":[{"id":-1,"vector":[1]}]})",
      R"({"points":[{"id":1.0,"vector":[1]}]})",
      R"({"points":[{"id":"nope","vector":[1]}]})",
      R"({"points":[{"id":null,"vector":[1]}]})",
      R"({"points":[{"id":18446744073709551616,"vector":[1]}]})",
      R"({"points":[{"id":1,"vector":{"s":{"indices":[1],"values":[1],"x":1}}}]})",
      R"({"points":[{"id":1,"vector":{"s":{"indices":[1]}}}]})",
      R"({"points":[{"id":1,"vector":{"s":{"indices":[1],"values":[1],"values":[2]}}}]})",
      R"({"points":[{"id":1,"vector":{"s":{"indices":[1,2],"values":[1]}}}]})",
      R"({"points":[{"id":1,"vector":{"s":{"indices":[1,1],"values":[1,2]}}}]})",
      R"({"points":[{"id":1,"vector":{"s":{"indices":[1.0],"values":[1]}}}]})",
      R"({"points":[{"id":1,"vector":{"s":{"indices":[-1],"values":[1]}}}]})",
      R"({"points":[{"id":1,"vector":{"s":{"indices":[-0],"values":[1]}}}]})",  // signed: refused
      R"({"points":[{"id":1,"vector":{"s":{"indices":[4294967296],"values":[1]}}}]})",
      R"({"points":[{"id":1,"vector":{"s":{"indices":[1],"values":[1e39]}}}]})",
      R"({"points":[{"id":1,"vector":{"s":{"indices":1,"values":[1]}}}]})",
      R"({"points":[{"id":1,"vector":{"s":{"indices":[1],"values":[1]},"s":[1]}}]})",
      R"({"batch":{"ids":[1],"vectors":[{"indices":[1],"values":[1]}]}})",  // unnamed: not sparse
      R"({"points":[{"id":1,"vector":null}]})",
      R"({"points":[{"id":1,"vector":[]}]})",
      R"({"points":[{"id":1,"vector":[1,"2"]}]})",
      R"({"points":[{"id":1,"vector":[1,null]}]})",
      R"({"points":[{"id":1,"vector":[1e39]}]})",
      R"({"points":[{"id":1,"vector":[1e400]}]})",
      R"({"points":[{"id":1,"vector":[[1,2],[3]]}]})",
      R"({"points":[{"id":1,"vector":[[1],2]}]})",
      R"({"points":[{"id":1,"vector":[[]]}]})",
      R"({"points":[{"id":1,"vector":[[1],[]]}]})",
      R"({"points":[{"id":1,"vector":{"a":[1],"a":[2]}}]})",
      R"({"points":[{"id":1,"vector":{"a":[1],"a":[[2]]}}]})",
      R"({"points":[{"id":1,"vector":{"a":7}}]})",
      R"({"points":[{"id":1,"vector":[1],"payload":[]}]})",
      R"({"points":[{"id":1,"vector":[1],"payload":"a"}]})",
      R"({"points":[{"id":1,"vector":[1],"payload":{"z":-0}}]})",  // nlohmann: a signed 0
      R"({"points":[{"id":1,"vector":[1],"payload":{"z":[0, -0]}}]})",
      R"({"points":[{"id":1,"vector":[1],"payload":{"b":18446744073709551616}}]})",
      R"({"points":[{"id":1,"vector":[1],"payload":{"b":-9223372036854775809}}]})",
      R"({"points":[{"id":1,"vector":[1],"payload":{"b":1e400}}]})",
      R"({"batch":{"ids":[1],"vectors":[[1],[2]]}})",
      R"({"batch":{"ids":[1,2],"vectors":[[1]]}})",
      R"({"batch":{"ids":[1],"vectors":[[1]],"payloads":[{},{}]}})",
      R"({"batch":{"ids":[1],"vectors":[[1]],"payloads":[7]}})",
      R"({"batch":{"ids":[1],"vectors":[[1]],"payloads":{}}})",
      R"({"batch":{"ids":[1]}})",
      R"({"batch":{"vectors":[[1]]}})",
      R"({"batch":{"ids":[1],"vectors":{"a":[[1]],"a":[[2]]}}})",
      R"({"batch":{"ids":[1],"vectors":{"a":[[1],[2]]}}})",
      R"({"batch":{"ids":[1],"vectors":[[1]],"extra":1}})",
      R"({"batch":{"ids":[1],"ids":[2],"vectors":[[1]]}})",
      R"({"batch":[]})",
      R"({"points":[{"id":1,"vector":[1]}]} x)",
      R"({"points":[{"id":1,"vector":[1]}]}{})",
      R"({"points":[{"id":1,"vector":[1],}]})",
      "\xEF\xBB\xBF{\"points\":[{\"id\":1,\"vector\":[1]}]}",  // nlohmann skips a BOM
      R"({"points":[{"id":1,"vector":[1],"payload":{"s":"\ud800"}}]})",
      "{\"points\":[{\"id\":1,\"vector\":[1],\"payload\":{\"s\":\"\xff\"}}]}",
      std::string(R"({"points":[{"id":1,"vector":[1],"payload":{"s":")") + '\0' + "\"}}]}",
  };
  // A multivector of more than kMaxMultiValues values, and one row past it.
  std::string rows = "[0";
  for (size_t i = 1; i <= wp::engine::kMaxMultiValues; ++i) rows += ",0";
  bodies.push_back(R"({"points":[{"id":1,"vector":[)" + rows + "]]}]}");
  std::string row = "[0";
  for (size_t i = 1; i < 1024; ++i) row += ",0";
  row += "]";
  std::string many = R"({"points":[{"id":1,"vector":[)" + row;
  for (size_t r = 1; r <= wp::engine::kMaxMultiValues / 1024; ++r) many += "," + row;
  bodies.push_back(many + "]}]}");
  // A payload nested to 129 levels (the body's depth), and to 128 with a number at the bottom
  // (simdjson counts it as a level: the DOM path reads that one); 127 is read here.
  auto nested = [](int depth) {  // the root, "points", the point and the payload are 4
    std::string v = "1";
    for (int i = 4; i < depth; ++i) v = "[" + v + "]";
    return R"({"points":[{"id":1,"vector":[1],"payload":{"k":)" + v + "}}]}";
  };
  bodies.push_back(nested(129));
  bodies.push_back(nested(128));
  for (const std::string& body : bodies) {
    EXPECT_FALSE(wp::http::read_plain_upsert(body, body.size()).has_value()) << body.substr(0, 200);
  }
  EXPECT_TRUE(wp::http::read_plain_upsert(nested(127), 1 << 20).has_value());
  EXPECT_EQ(plain_upsert_differs(nested(127)), "");
  EXPECT_NO_THROW(wp::http::parse_body(nested(128)));
  EXPECT_THROW(wp::http::parse_body(nested(129)), UserError);
  // Nor a body longer than the bound, however plain; and a multivector of exactly the bound is.
  EXPECT_FALSE(wp::http::read_plain_upsert(plain_upserts()[0], plain_upserts()[0].size() - 1));
  std::string full = R"({"points":[{"id":1,"vector":[)" + row;
  for (size_t r = 1; r < wp::engine::kMaxMultiValues / 1024; ++r) full += "," + row;
  full += "]}]}";
  const auto at_bound = wp::http::read_plain_upsert(full, full.size());
  ASSERT_TRUE(at_bound.has_value());
  EXPECT_EQ((*at_bound)[0].multi.at("").values.size(), wp::engine::kMaxMultiValues);
}

TEST(PlainUpsert, ReadsMutatedBodiesAsTheDomPathDoesOrLeavesThem) {
  // Seeded mutants of the plain bodies: each one the plain reader takes, the DOM path takes too
  // and reads to the same points (types and bits), whichever edits made it.
  const std::vector<std::string> tokens = {
      "-0",   "0",      "-",    "1e99", "1E-400", "[",       "]",       "{",
      "}",    ",",      ":",    "\"",   "null",   "\\u0000", "\\ud800", "18446744073709551616",
      "-0.0", "\"a\":", "[[1]]"};
  std::mt19937 rng(20261208);
  size_t plain = 0;
  for (int i = 0; i < 6000; ++i) {
    const std::string& seed = plain_upserts()[i % plain_upserts().size()];
    const std::string body =
        mutated(seed, rng, i % 2 ? kFlipEraseRepeatToken : kEraseRepeatDigitToken, tokens, 12);
    if (wp::http::read_plain_upsert(body, body.size())) ++plain;
    ASSERT_EQ(plain_upsert_differs(body), "") << body;
  }
  EXPECT_GT(plain, 300u);
  EXPECT_LT(plain, 5700u);
}

TEST_F(PlainAnswers, UpsertsWriteWhatTheDomPathWrites) {
  // Two collections alike (a dense "a", a multivector "m", a sparse "s"), written by the plain Api
  // and the DOM one with the same bodies: the same answers, then the same points read back.
  const json config = {
      {"vectors",
       {{"a", {{"size", 2}, {"distance", "Euclid"}}},
        {"m",
         {{"size", 2}, {"distance", "Dot"}, {"multivector_config", {{"comparator", "max_sim"}}}}}}},
      {"sparse_vectors", {{"s", json::object()}}}};
  ok("PUT", "/collections/up_plain", config);
  ok("PUT", "/collections/up_dom", config);
  const std::vector<std::string> bodies = {
      R"({"points":[{"id":1,"vector":{"a":[1,2],"m":[[1,0],[0,1]]},"payload":{"k":"x","n":0}},)"
      R"({"id":"5c56c793-69f3-4fbf-87e6-c4bf54c28c26","vector":{"a":[0.1,-3e-2]},"payload":null}]})",
      R"({"batch":{"ids":[2,3],"vectors":{"a":[[3,4],[5,6]],"m":[[[1,1]],[[2,2],[3,3],[4,4]]]},)"
      R"("payloads":[{"t":[1,{"u":true}]},null]}})",
      R"({"points":[{"id":1,"vector":{"a":[9,9]},"payload":{"k":-0}}]})",  // the DOM path's
      R"({"points":[{"id":4,"vector":{"a":[1,2,3]}}]})",                   // a wrong dimension
      R"({"points":[{"id":4,"vector":{"m":[[1,2,3]]}}]})",
      R"({"points":[{"id":4,"vector":{"zz":[1,2]}}]})",                   // no such vector
      R"({"points":[{"id":4,"vector":{"a":[1,2],"m":[[1e38,1e38]]}}]})",  // a norm too large?
      R"({"points":[{"id":5,"vector":{"a":[1e-3,2],"s":{"indices":[8,2],"values":[0.5,1]}}}]})",
      R"({"points":[{"id":6,"vector":{"s":{"indices":[1],"values":[2]},"m":[[1,2]]}}]})",
      R"({"points":[{"id":7,"vector":{"a":{"indices":[1],"values":[2]}}}]})",  // a is dense
  };
  size_t plain = 0;
  for (const std::string& body : bodies) {
    if (wp::http::read_plain_upsert(body, body.size())) ++plain;
    const Response a =
        api_->handle(Request{"PUT", "/collections/up_plain/points?wait=true", body, "", ""});
    const Response b =
        dom_->handle(Request{"PUT", "/collections/up_dom/points?wait=true", body, "", ""});
    ASSERT_EQ(a.status, b.status) << body << "\nplain: " << a.body << "\ndom: " << b.body;
    json x = json::parse(a.body), y = json::parse(b.body);
    x.erase("time");
    y.erase("time");
    if (a.status == 200) {  // each Api numbers its own writes
      x["result"].erase("operation_id");
      y["result"].erase("operation_id");
    }
    EXPECT_EQ(x, y) << body;
  }
  EXPECT_EQ(plain, bodies.size() - 1);  // all but the "-0" payload
  const json scroll = {{"limit", 100}, {"with_payload", true}, {"with_vector", true}};
  const json a = ok("POST", "/collections/up_plain/points/scroll", scroll);
  const json b = ok("POST", "/collections/up_dom/points/scroll", scroll);
  EXPECT_EQ(a, b);
  EXPECT_EQ(a["points"].size(), 6u);
}

}  // namespace
}  // namespace wp::test
