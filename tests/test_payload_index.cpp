// Payload indexes (issue 16): candidates from the index are a superset of what a filter holds
// for, so filtered counts, deletes, edits and searches answer exactly as a check of every point;
// kept through writes, deletes, payload edits and a restart.
#include <gtest/gtest.h>

#include <cstring>
#include <map>
#include <optional>
#include <random>
#include <set>

#include "engine/engine.h"
#include "engine/payload_index.h"
#include "test_util.h"

using nlohmann::json;
using wp::engine::Collection;
using wp::engine::CollectionConfig;
using wp::engine::Engine;
using wp::engine::Filter;
using wp::engine::IdList;
using wp::engine::PayloadSchema;
using wp::engine::PointId;
using wp::engine::PointWrite;
using wp::engine::SearchQuery;

namespace {
/// The points of `held` (payloads by id) holding a number at "x" within `b`, in order.
IdList points_within(const std::vector<json>& held, const wp::engine::RangeBounds& b) {
  IdList out;
  for (uint32_t i = 0; i < held.size(); ++i) {
    const json& p = held[i];
    if (!p.contains("x")) continue;
    for (const json& v : p["x"].is_array() ? p["x"] : json::array({p["x"]})) {
      if (v.is_number() && b.contains(v.get<double>())) {
        out.push_back(i);
        break;
      }
    }
  }
  return out;
}

/// Asks `index` for the points of a number at "x" within `b` and checks them, and its test of
/// each point where it gives one, against every payload of `held`.
void expect_range_holds(const wp::engine::FieldIndex& index, const std::vector<json>& held,
                        const wp::engine::RangeBounds& b, const std::string& what) {
  const IdList truth = points_within(held, b);
  const auto c = index.range(b);
  ASSERT_TRUE(c) << what;
  EXPECT_TRUE(c->exact) << what;
  if (c->test()) {
    for (uint32_t i = 0; i < held.size() + 10; ++i) {
      ASSERT_EQ(c->test()->contains(i), std::binary_search(truth.begin(), truth.end(), i))
          << what << ", point " << i;
    }
  }
  ASSERT_EQ(c->ids(), truth) << what;
}

/// put(id, payload): point `id` gets `payload` in `index` (its old one, held[id], removed first)
/// and in `held`, the payloads by id the checks read.
auto writer(wp::engine::FieldIndex& index, std::vector<json>& held) {
  return [&index, &held](uint32_t id, json payload) {
    if (id >= held.size()) held.resize(id + 1, json::object());
    index.remove(id, held[id]);
    held[id] = std::move(payload);
    index.add(id, held[id]);
  };
}

/// lo <= x < hi.
wp::engine::RangeBounds half_open(double lo, double hi) {
  wp::engine::RangeBounds b;
  b.has_gte = b.has_lt = true;
  b.gte = lo;
  b.lt = hi;
  return b;
}

const char* const kColors[] = {"red", "green", "blue", "cyan", "teal"};

/// A payload with values of the indexed kinds, and of other kinds at the same keys now and then
/// (they must not make an index miss a point, nor match one wrongly).
json random_payload(std::mt19937& rng) {
  std::uniform_int_distribution<int> pick(0, 99);
  json p = json::object();
  const int r = pick(rng);
  if (r < 80) {
    p["color"] = kColors[pick(rng) % 5];
  } else if (r < 90) {
    p["color"] = json::array({kColors[pick(rng) % 5], kColors[pick(rng) % 5]});
  } else if (r < 95) {
    p["color"] = pick(rng);  // not a string: no keyword index entry
  }
  if (pick(rng) < 90) p["n"] = pick(rng) % 50;
  if (pick(rng) < 10) p["n"] = 0.5 + pick(rng) % 50;                // a float at an integer key
  if (pick(rng) < 3) p["n"] = static_cast<double>(pick(rng) % 50);  // 7.0: match 7 skips it
  if (pick(rng) < 70) p["price"] = std::uniform_real_distribution<double>(0, 100)(rng);
  if (pick(rng) < 80) p["flag"] = pick(rng) % 2 == 0;
  if (pick(rng) < 50) p["shop"] = {{"city", kColors[pick(rng) % 3]}};
  // A datetime in May 2024 (three forms of RFC 3339), now and then something else.
  const int at = pick(rng);
  char day[64];
  std::snprintf(day, sizeof day,
                at % 3 == 0   ? "2024-05-%02dT%02d:00:00Z"
                : at % 3 == 1 ? "2024-05-%02dT%02d:30:00+02:00"
                              : "2024-05-%02d %02d:15:00",
                1 + pick(rng) % 28, pick(rng) % 24);
  if (at < 80) p["at"] = day;
  if (at >= 80 && at < 85) p["at"] = "yesterday";
  if (at >= 85 && at < 90) p["at"] = 20240501;
  // A title of words from a small vocabulary, mixed case and punctuation; sometimes a list.
  static const char* const kWords[] = {"Red", "fox", "JUMPS", "over", "lazy", "dog", "café", "42"};
  auto title = [&] {
    std::string t;
    for (int w = 0, n = 1 + pick(rng) % 4; w < n; ++w) {
      t += std::string(w ? (pick(rng) % 2 ? " " : ", ") : "") + kWords[pick(rng) % 8];
    }
    return t;
  };
  const int tt = pick(rng);
  if (tt < 75) p["title"] = title();
  if (tt >= 75 && tt < 85) p["title"] = json::array({title(), title()});
  if (tt >= 85 && tt < 90) p["title"] = 42;
  // A place: anywhere, often near the antimeridian or a pole; sometimes several, sometimes out
  // of range (kept as given: the conditions read them so), sometimes not a point.
  auto place = [&] {
    std::uniform_real_distribution<double> lon(-180, 180), lat(-90, 90), near(-3, 3);
    const int where = pick(rng) % 4;
    if (where == 0) return json{{"lon", 179 + near(rng) / 3}, {"lat", near(rng) * 10}};
    if (where == 1) return json{{"lon", lon(rng)}, {"lat", 88 + near(rng) / 1.5}};
    return json{{"lon", lon(rng)}, {"lat", lat(rng)}};
  };
  const int pl = pick(rng);
  if (pl < 70) p["loc"] = place();
  if (pl >= 70 && pl < 80) p["loc"] = json::array({place(), place()});
  if (pl >= 80 && pl < 83) p["loc"] = {{"lon", 190.5}, {"lat", 10}};
  if (pl >= 83 && pl < 86) p["loc"] = {{"lon", "east"}, {"lat", 10}};
  return p;
}

/// Filters over the indexed keys and others, mixing the clauses.
std::vector<json> filters() {
  return {
      {{"must", {{{"key", "color"}, {"match", {{"value", "red"}}}}}}},
      {{"must", {{{"key", "color"}, {"match", {{"any", {"blue", "teal"}}}}}}}},
      {{"must", {{{"key", "color"}, {"match", {{"value", 7}}}}}}},
      {{"must", {{{"key", "n"}, {"match", {{"value", 7}}}}}}},
      {{"must", {{{"key", "n"}, {"match", {{"any", {1, 2, 3, 49}}}}}}}},
      {{"must", {{{"key", "n"}, {"range", {{"gte", 10}, {"lt", 20}}}}}}},
      {{"must", {{{"key", "n"}, {"range", {{"gt", 10.25}, {"lte", 12.5}}}}}}},
      {{"must", {{{"key", "price"}, {"range", {{"lt", 5}}}}}}},
      {{"must", {{{"key", "flag"}, {"match", {{"value", true}}}}}}},
      {{"must", {{{"key", "shop.city"}, {"match", {{"value", "green"}}}}}}},
      {{"must",
        {{{"key", "color"}, {"match", {{"value", "red"}}}},
         {{"key", "n"}, {"range", {{"lt", 25}}}},
         {{"key", "flag"}, {"match", {{"value", false}}}}}}},
      {{"should",
        {{{"key", "color"}, {"match", {{"value", "red"}}}},
         {{"key", "n"}, {"match", {{"value", 3}}}}}}},
      {{"should",
        {{{"key", "color"}, {"match", {{"value", "red"}}}},
         {{"key", "unindexed"}, {"match", {{"value", 3}}}}}}},
      {{"must", {{{"key", "color"}, {"match", {{"value", "green"}}}}}},
       {"must_not", {{{"key", "n"}, {"range", {{"lt", 25}}}}}}},
      {{"must", {{{"key", "color"}, {"match", {{"except", {"red"}}}}}}}},
      {{"must", {{"must", {{{"key", "color"}, {"match", {{"value", "cyan"}}}}}}}}},
      {{"must", {{{"key", "at"}, {"range", {{"gte", "2024-05-10T00:00:00Z"}}}}}}},
      {{"must",
        {{{"key", "at"},
          {"range", {{"gt", "2024-05-03T12:00:00+00:00"}, {"lt", "2024-05-05T00:00:00Z"}}}}}}},
      {{"must", {{{"key", "title"}, {"match", {{"text", "fox"}}}}}}},
      {{"must", {{{"key", "title"}, {"match", {{"text", "lazy DOG!"}}}}}}},
      {{"must", {{{"key", "title"}, {"match", {{"text", "Café"}}}}}}},
      {{"must", {{{"key", "title"}, {"match", {{"text", "jumps 42 red"}}}}}}},
      {{"must", {{{"key", "title"}, {"match", {{"text", "cat"}}}}}}},
      {{"must", {{{"key", "title"}, {"match", {{"text", "  "}}}}}}},
      {{"must",
        {{{"key", "title"}, {"match", {{"text", "fox"}}}},
         {{"key", "at"}, {"range", {{"lt", "2024-05-15T00:00:00Z"}}}}}}},
      {{"must",
        {{{"key", "loc"},
          {"geo_radius", {{"center", {{"lon", -179.5}, {"lat", 0}}}, {"radius", 300000}}}}}}},
      {{"must",
        {{{"key", "loc"},
          {"geo_radius", {{"center", {{"lon", 10}, {"lat", 89}}}, {"radius", 250000}}}}}}},
      {{"must",
        {{{"key", "loc"},
          {"geo_radius", {{"center", {{"lon", 30}, {"lat", -20}}}, {"radius", 3000000}}}}}}},
      {{"must",
        {{{"key", "loc"},
          {"geo_radius", {{"center", {{"lon", 0}, {"lat", 0}}}, {"radius", 15000000}}}}}}},
      {{"must",
        {{{"key", "loc"},
          {"geo_bounding_box",
           {{"top_left", {{"lon", 178.5}, {"lat", 20}}},
            {"bottom_right", {{"lon", -179}, {"lat", -20}}}}}}}}},
      {{"must",
        {{{"key", "loc"},
          {"geo_bounding_box",
           {{"top_left", {{"lon", -40}, {"lat", 60}}},
            {"bottom_right", {{"lon", 40.5}, {"lat", -10.25}}}}}}}}},
      {{"must",
        {{{"key", "loc"},
          {"geo_polygon",
           {{"exterior",
             {{"points",
               {{{"lon", -60}, {"lat", -40}},
                {{"lon", 70}, {"lat", -30}},
                {{"lon", 0}, {"lat", 5}},
                {{"lon", 50}, {"lat", 60}},
                {{"lon", -60}, {"lat", -40}}}}}},
            {"interiors",
             {{{"points",
                {{{"lon", -10}, {"lat", -20}},
                 {{"lon", 10}, {"lat", -20}},
                 {{"lon", 0}, {"lat", -5}},
                 {{"lon", -10}, {"lat", -20}}}}}}}}}}}}},
  };
}

CollectionConfig config() {
  CollectionConfig c;
  c.vectors[""].dim = 8;
  c.vectors[""].index.metric = wp::index::Metric::kL2;
  c.vectors[""].index.hnsw.M = 8;
  return c;
}

void index_all(Collection& col) {
  col.create_payload_index("color", PayloadSchema::kKeyword);
  col.create_payload_index("n", PayloadSchema::kInteger);
  col.create_payload_index("price", PayloadSchema::kFloat);
  col.create_payload_index("flag", PayloadSchema::kBool);
  col.create_payload_index("shop.city", PayloadSchema::kKeyword);
  col.create_payload_index("at", PayloadSchema::kDatetime);
  col.create_payload_index("title", PayloadSchema::kText);
  col.create_payload_index("loc", PayloadSchema::kGeo);
}

/// Both collections answer every filter alike: count, and an exact filtered search.
void expect_same_answers(const Collection& plain, const Collection& indexed, std::mt19937& rng) {
  for (const json& f : filters()) {
    const Filter filter = Filter::parse(f);
    ASSERT_EQ(indexed.count(&filter), plain.count(&filter)) << f.dump();
    SearchQuery q;
    q.vector.resize(8);
    for (float& x : q.vector) x = std::uniform_real_distribution<float>(0, 1)(rng);
    q.limit = 20;
    q.exact = true;
    q.filter = &filter;
    const auto a = plain.search(q), b = indexed.search(q);
    ASSERT_EQ(a.size(), b.size()) << f.dump();
    for (size_t i = 0; i < a.size(); ++i) ASSERT_EQ(a[i].point.id, b[i].point.id) << f.dump();
  }
}

}  // namespace

TEST(PayloadIndex, LookupsAreSupersetsOfTheConditions) {
  wp::engine::FieldIndex kw("tags[]", PayloadSchema::kKeyword);
  kw.add(1, {{"tags", {"a", "b"}}});
  kw.add(4, {{"tags", {"b"}}});
  kw.add(2, {{"tags", "a"}});  // not an array: "tags[]" reaches nothing
  kw.add(3, {{"tags", {1, 2}}});
  EXPECT_EQ(kw.strings({"b"})->ids(), (IdList{1, 4}));
  EXPECT_EQ(kw.strings({"a", "b", "zz"})->ids(), (IdList{1, 4}));
  EXPECT_EQ(kw.points(), 2u);
  EXPECT_FALSE(kw.integers({1}));  // a keyword index serves no integer condition
  kw.remove(1, {{"tags", {"a", "b"}}});
  EXPECT_EQ(kw.strings({"a", "b"})->ids(), (IdList{4}));
  EXPECT_EQ(kw.points(), 1u);

  wp::engine::FieldIndex num("n", PayloadSchema::kInteger);
  for (uint32_t i = 0; i < 10; ++i) num.add(i, {{"n", i % 5}});
  num.add(20, {{"n", 2.5}});
  wp::engine::RangeBounds b;
  b.has_gt = true;
  b.gt = 2;
  b.has_lte = true;
  b.lte = 3;
  EXPECT_EQ(num.range(b)->ids(), (IdList{3, 8, 20}));
  EXPECT_EQ(num.integers({4, 0})->ids(), (IdList{0, 4, 5, 9}));
  EXPECT_TRUE(num.integers({4})->exact);
  EXPECT_TRUE(num.range(b)->exact);
  num.add(21, {{"n", 4.0}});  // a float: key 4 now holds a value that match 4 does not take
  EXPECT_EQ(num.integers({4})->ids(), (IdList{4, 9, 21}));
  EXPECT_FALSE(num.integers({4})->exact);

  wp::engine::FieldIndex when("t", PayloadSchema::kDatetime);
  when.add(1, {{"t", "2024-05-01T10:00:00Z"}});
  when.add(2, {{"t", "2024-05-01T12:00:00+02:00"}});  // 10:00 UTC, the same instant
  when.add(3, {{"t", {"2024-05-02T00:00:00Z", "not a date"}}});
  when.add(4, {{"t", 1714557600}});  // a number: not a datetime
  wp::engine::RangeBounds day;       // [2024-05-01T10:00Z, 2024-05-02T00:00Z)
  day.has_gte = true;
  day.gte = 1714557600.0 * 1e6;
  day.has_lt = true;
  day.lt = 1714608000.0 * 1e6;
  EXPECT_EQ(when.datetimes(day)->ids(), (IdList{1, 2}));
  EXPECT_EQ(when.points(), 3u);
  EXPECT_FALSE(when.range(day));  // numbers are not datetimes
  EXPECT_FALSE(num.datetimes(day));

  wp::engine::FieldIndex words("title", PayloadSchema::kText);
  words.add(1, {{"title", "The quick brown fox"}});
  words.add(2, {{"title", {"quick thinking", "brown bear"}}});
  words.add(3, {{"title", "FOX, quick!"}});
  EXPECT_EQ(words.text("Fox quick")->ids(), (IdList{1, 3}));
  EXPECT_EQ(words.text("brown, quick")->ids(), (IdList{1, 2}));  // 2 across its values
  EXPECT_FALSE(words.text("brown quick")->exact);
  EXPECT_EQ(words.text("wolf")->ids(), IdList{});
  EXPECT_EQ(words.text(" !")->ids(), IdList{});  // no word: nothing matches
  EXPECT_TRUE(words.text(" !")->exact);
  EXPECT_FALSE(words.strings({"fox"}));  // a text index is no keyword index
  words.remove(3, {{"title", "FOX, quick!"}});
  EXPECT_EQ(words.text("fox")->ids(), (IdList{1}));

  wp::engine::FieldIndex geo("loc", PayloadSchema::kGeo);
  geo.add(1, {{"loc", {{"lon", 179.9}, {"lat", 0.5}}}});
  geo.add(2, {{"loc", {{"lon", -179.9}, {"lat", 0.5}}}});
  geo.add(3, {{"loc", {{"lon", 13.4}, {"lat", 52.5}}}});  // Berlin
  geo.add(4, {{"loc", {{"lon", 200}, {"lat", 0}}}});      // out of range: in every lookup
  geo.add(5, {{"loc", {{"lon", 13.4}, {"lat", 89.9}}}});
  geo.add(6, {{"loc", "Berlin"}});
  EXPECT_EQ(geo.points(), 5u);
  // Across the antimeridian: the cells at both ends of the row.
  EXPECT_EQ(geo.geo({0, 1, 179.5, -179.5})->ids(), (IdList{1, 2, 4}));
  EXPECT_EQ(geo.geo({52, 53, 13, 14})->ids(), (IdList{3, 4}));
  EXPECT_EQ(geo.geo({89, 90, -180, 180})->ids(), (IdList{4, 5}));
  EXPECT_FALSE(geo.geo({52, 53, 13, 14})->exact);
  EXPECT_FALSE(geo.range(b));
  EXPECT_FALSE(num.geo({52, 53, 13, 14}));
  geo.remove(3, {{"loc", {{"lon", 13.4}, {"lat", 52.5}}}});
  EXPECT_EQ(geo.geo({52, 53, 13, 14})->ids(), (IdList{4}));

  wp::engine::FieldIndex flags("f", PayloadSchema::kBool);
  flags.add(5, {{"f", true}});
  flags.add(6, {{"f", {false, true}}});
  EXPECT_EQ(flags.boolean(true)->ids(), (IdList{5, 6}));
  EXPECT_EQ(flags.boolean(false)->ids(), (IdList{6}));
}

// A range over many values of a numeric index is given as a test of each point (its numbers
// kept by id) where a sample of the points finds many within it: the test and the list it makes
// hold exactly the points the postings hold, through points of several numbers, removals and
// replaced values; a range few points fall in is given as the postings' union. Over floats, over
// integers of many values (listed by a pass over the points) and of few (listed from postings).
TEST(PayloadIndex, ARangeManyPointsFallInIsATestOfEachPointAsExactAsThePostings) {
  for (const int values : {10000, 0, 40}) {  // 0: floats of 10,000 values
    const PayloadSchema schema = values ? PayloadSchema::kInteger : PayloadSchema::kFloat;
    wp::engine::FieldIndex idx("x", schema);
    std::mt19937 rng(5);
    std::uniform_int_distribution<int> value(0, values ? values - 1 : 9999);
    std::vector<json> held(6000);
    for (uint32_t i = 0; i < held.size(); ++i) {
      const int v = value(rng);
      held[i] = i % 10 == 3   ? json{{"x", {v, value(rng)}}}  // two numbers
                : i % 10 == 7 ? json{{"x", "none"}}           // no number
                              : json{{"x", schema == PayloadSchema::kFloat ? v / 7.0 : v}};
      idx.add(i, held[i]);
    }
    for (uint32_t i = 0; i < held.size(); i += 5) {  // removed, and some replaced
      idx.remove(i, held[i]);
      held[i] = i % 2 ? json{{"x", value(rng)}} : json::object();
      idx.add(i, held[i]);
    }
    for (const double hi : {5000.0, 9000.0, 100.0}) {
      wp::engine::RangeBounds b;
      b.has_gte = true;
      b.gte = 10;
      b.has_lt = true;
      b.lt = hi;
      const auto c = idx.range(b);
      ASSERT_TRUE(c);
      EXPECT_TRUE(c->exact);
      const IdList truth = points_within(held, b);
      // 1% of the points below 100, else many (floats below 100: 7%; of 40 values: 75%).
      EXPECT_EQ(c->test() == nullptr, hi == 100.0 && values == 10000) << hi;
      if (c->test()) {
        for (uint32_t i = 0; i < held.size() + 10; ++i) {
          ASSERT_EQ(c->test()->contains(i), std::binary_search(truth.begin(), truth.end(), i)) << i;
        }
        EXPECT_GT(c->test()->estimate, truth.size() / 2);
        EXPECT_LT(c->test()->estimate, truth.size() * 2);
      }
      EXPECT_EQ(c->ids(), truth) << hi;
    }
  }
}

// A range over a float index of about one value a point lists its points from the points in
// order of their numbers (FieldIndex::ordered_within): the run, the tree that new entries go
// into and the points of several numbers. Checked against every point's payload from narrow
// ranges (listed) to wide ones (tests; listed in order below a quarter of the points, by a pass
// above), each bound open or closed, through merges of the tree into the run, removals (out of
// the tree, or marked in the run), points given their number again or another, and a removal
// of most points (the run compacted); and built in bulk, as a collection builds an index.
TEST(PayloadIndex, RangesOverManyValuesListThePointsInOrderThroughWritesAndMerges) {
  wp::engine::FieldIndex idx("x", PayloadSchema::kFloat);
  std::mt19937 rng(9);
  std::uniform_int_distribution<int> value(-50000, 49999);
  std::vector<json> held;
  const auto put = writer(idx, held);
  const auto fresh = [&](uint32_t id) {
    const double v = value(rng) / 7.0;
    return id % 50 == 3   ? json{{"x", {v, value(rng) / 7.0}}}  // two numbers
           : id % 20 == 7 ? json{{"x", "none"}}                 // no number
           : id % 97 == 0 ? json{{"x", -0.0}}                   // -0 is 0
                          : json{{"x", v}};
  };
  const auto check = [&](const char* stage, const wp::engine::FieldIndex& index) {
    struct Case {
      double lo, hi;
      bool closed_lo, closed_hi, has_lo, has_hi;
    };
    for (const Case& k : {Case{0, 10, true, true, true, true},        // ~0.1%, 0 itself
                          Case{0, 10, false, false, true, true},      // without 0 and -0
                          Case{-100, 0, true, true, true, true},      // ~1%, -0 within
                          Case{1000, 1715, false, true, true, true},  // ~10%: tested, in order
                          Case{-3000, 500, true, false, true, true},  // ~50%: a pass
                          Case{0, 6000, true, true, false, true},     // from below
                          Case{7100, 0, true, true, true, false}}) {  // upwards
      wp::engine::RangeBounds b;
      if (k.has_lo) (k.closed_lo ? b.has_gte : b.has_gt) = true;
      if (k.has_lo) (k.closed_lo ? b.gte : b.gt) = k.lo;
      if (k.has_hi) (k.closed_hi ? b.has_lte : b.has_lt) = true;
      if (k.has_hi) (k.closed_hi ? b.lte : b.lt) = k.hi;
      expect_range_holds(index, held, b,
                         stage + (" " + std::to_string(k.lo)) + ".." + std::to_string(k.hi));
    }
  };
  for (uint32_t id = 0; id < 20000; ++id) put(id, fresh(id));  // merges at 4096, 8192, ...
  check("after the inserts", idx);
  for (uint32_t id = 0; id < 20000; id += 3) {  // removed; again with the same number or another
    const json same = held[id];
    put(id, json::object());
    put(id, id % 2 ? same : fresh(id));
  }
  check("after the points were given their numbers again", idx);
  for (uint32_t id = 20000; id < 26000; ++id) put(id, fresh(id));  // more, past a merge
  check("after more inserts", idx);
  for (uint32_t id = 0; id < 26000; ++id) {
    if (id % 5 != 0) put(id, json::object());  // four in five removed: the run compacted
  }
  check("after most points were removed", idx);
  for (uint32_t id = 0; id < 26000; id += 2) put(id, fresh(id));
  check("after the removed points came back", idx);
  // Built aside over the points as a collection builds it (begin_bulk: one sort at the end),
  // some removed and added again meanwhile.
  wp::engine::FieldIndex bulk("x", PayloadSchema::kFloat);
  bulk.begin_bulk();
  for (uint32_t id = 0; id < held.size(); ++id) bulk.add(id, held[id]);
  for (uint32_t id = 0; id < held.size(); id += 7) {
    bulk.remove(id, held[id]);
    if (id % 2) bulk.add(id, held[id]);
  }
  for (uint32_t id = 0; id < held.size(); id += 14) held[id] = json::object();
  bulk.end_bulk();
  check("built in bulk", bulk);
}

namespace {
/// Checks what `index` (an integer index of "x") gives of its numbers against every payload of
/// `held`: the walk in order both ways (order_by), from a number on and stopped early, every
/// posting (facets), and integer matches.
void expect_numbers_hold(const wp::engine::FieldIndex& index, const std::vector<json>& held,
                         const std::string& what) {
  using Run = std::pair<double, IdList>;
  std::map<double, IdList> truth;
  for (uint32_t i = 0; i < held.size(); ++i) {
    if (!held[i].contains("x")) continue;
    const json& x = held[i]["x"];
    for (const json& v : x.is_array() ? x : json::array({x})) {
      if (!v.is_number()) continue;
      IdList& ids = truth[v.get<double>()];
      if (ids.empty() || ids.back() != i) ids.push_back(i);
    }
  }
  ASSERT_GT(truth.size(), 3u) << what;
  const auto walk = [&](bool descending, std::optional<double> from, size_t most) {
    std::vector<Run> got;
    EXPECT_TRUE(index.for_each_number(descending, from, [&](double v, const IdList& ids) {
      got.push_back({v, ids});
      return got.size() < most;
    }));
    return got;
  };
  EXPECT_EQ(walk(false, std::nullopt, SIZE_MAX), std::vector<Run>(truth.begin(), truth.end()))
      << what << ": every number ascending";
  EXPECT_EQ(walk(true, std::nullopt, SIZE_MAX), std::vector<Run>(truth.rbegin(), truth.rend()))
      << what << ": every number descending";
  const double middle = std::next(truth.begin(), truth.size() / 2)->first;
  for (const double from : {middle, middle + 0.5}) {  // held, and between two held numbers
    const auto up = truth.lower_bound(from);
    std::vector<Run> want(up,
                          std::next(up, std::min<ptrdiff_t>(40, std::distance(up, truth.end()))));
    EXPECT_EQ(walk(false, from, 40), want) << what << ": 40 numbers from " << from;
    const auto down = std::make_reverse_iterator(truth.upper_bound(from));
    want.assign(down, std::next(down, std::min<ptrdiff_t>(40, std::distance(down, truth.rend()))));
    EXPECT_EQ(walk(true, from, 40), want) << what << ": 40 numbers down from " << from;
  }
  std::vector<std::pair<json, IdList>> postings, want_postings;
  index.for_each_posting([&](const json& v, const IdList& ids) { postings.push_back({v, ids}); });
  for (const auto& [v, ids] : truth) want_postings.push_back({json(static_cast<int64_t>(v)), ids});
  EXPECT_EQ(postings, want_postings) << what << ": postings";
  std::mt19937 rng(5);
  for (int k = 0; k < 30; ++k) {
    std::vector<int64_t> any;
    IdList want;
    for (int j = 0; j <= k % 3; ++j) {  // one value, two or three, now and then one none holds
      auto it = std::next(truth.begin(), static_cast<ptrdiff_t>(rng() % truth.size()));
      any.push_back(static_cast<int64_t>(it->first) + (j == 2));
      if (j < 2) want.insert(want.end(), it->second.begin(), it->second.end());
      if (j == 2 && truth.count(it->first + 1)) {
        const IdList& more = truth[it->first + 1];
        want.insert(want.end(), more.begin(), more.end());
      }
    }
    std::sort(want.begin(), want.end());
    want.erase(std::unique(want.begin(), want.end()), want.end());
    const auto c = index.integers(any);
    ASSERT_TRUE(c) << what;
    EXPECT_TRUE(c->exact) << what;
    EXPECT_EQ(c->ids(), want) << what << ": match of " << json(any).dump();
  }
}
}  // namespace

// An integer or float index of many values (about one a point, as prices or timestamps) keeps
// the points of one number in its order only, not also in a posting a value (a map node and a
// list: ~100 bytes a point); every lookup reads the order then, the points of several numbers
// still from their postings. Few values make the postings again.
TEST(PayloadIndex, ManyValuesKeepTheirPointsInOrderOnlyAndEveryLookupHolds) {
  wp::engine::FieldIndex idx("x", PayloadSchema::kInteger);
  std::mt19937 rng(17);
  std::uniform_int_distribution<int> value(-200000, 199999);
  std::vector<json> held;
  const auto put = writer(idx, held);
  const auto fresh = [&](uint32_t id, int values) {
    const auto v = [&] { return value(rng) % values; };
    return id % 40 == 3    ? json{{"x", {v(), v()}}}  // two numbers
           : id % 25 == 7  ? json{{"x", "none"}}      // no number
           : id % 101 == 9 ? json{{"x", {v(), v(), v()}}}
                           : json{{"x", v()}};
  };
  for (uint32_t id = 0; id < 8000; ++id) put(id, fresh(id, 200000));
  EXPECT_TRUE(idx.keeps_postings()) << "below kOrderOnly points";
  expect_numbers_hold(idx, held, "8,000 points");
  const uint32_t last = wp::engine::FieldIndex::kOrderOnly - 1;
  for (uint32_t id = 8000; id < last; ++id) put(id, fresh(id, 200000));
  EXPECT_TRUE(idx.keeps_postings());
  const size_t posted = idx.memory_bytes();
  put(last, fresh(last, 200000));
  EXPECT_FALSE(idx.keeps_postings()) << "16k points of ~16k values";
  EXPECT_LT(idx.memory_bytes() * 2, posted) << "the postings of the points of one number dropped";
  for (uint32_t id = last + 1; id < 40000; ++id) put(id, fresh(id, 200000));
  EXPECT_FALSE(idx.keeps_postings()) << "40,000 points of ~38,000 values";
  // 16 bytes of order and 8 of number a point (up to twice that in capacity), and the postings
  // and numbers of the 3.5% of points holding several.
  EXPECT_LT(idx.memory_bytes(), 64 * held.size());
  expect_numbers_hold(idx, held, "many values, in order only");
  expect_range_holds(idx, held, half_open(-1000, 1000), "many values, 0.5%");
  for (uint32_t id = 0; id < 40000; id += 3) {  // removed; added again with another number
    put(id, json::object());
    if (id % 2) put(id, fresh(id, 200000));
  }
  expect_numbers_hold(idx, held, "after removals");
  // 99 values: the postings come back at the first merge of the order that finds them few.
  for (uint32_t id = 0; id < 48200; ++id) put(id, fresh(id, 50));
  EXPECT_TRUE(idx.keeps_postings()) << "50 values";
  expect_numbers_hold(idx, held, "few values again");
  expect_range_holds(idx, held, half_open(-10, 10), "few values, 20%");
  // Built aside in bulk, as a collection builds it: into the order only, the postings made at
  // the end where values are few.
  for (const int values : {200000, 50}) {
    for (uint32_t id = 0; id < held.size(); ++id) held[id] = fresh(id, values);
    wp::engine::FieldIndex bulk("x", PayloadSchema::kInteger);
    bulk.begin_bulk();
    for (uint32_t id = 0; id < held.size(); ++id) bulk.add(id, held[id]);
    bulk.end_bulk();
    EXPECT_EQ(bulk.keeps_postings(), values == 50) << values << " values, in bulk";
    expect_numbers_hold(bulk, held, std::to_string(values) + " values, in bulk");
    expect_range_holds(bulk, held, half_open(-20, 20), std::to_string(values) + " values, bulk");
  }
}

// An integer index of few values of many points each drops the points' order (its ranges unite
// the postings; the order would cost 16 bytes a point), and makes it again from every point's
// number once the values are many; ranges hold throughout.
TEST(PayloadIndex, FewValuesDropThePointsOrderAndManyMakeItAgain) {
  wp::engine::FieldIndex idx("x", PayloadSchema::kInteger);
  std::vector<json> held;
  const auto add = [&](json payload) {
    held.push_back(std::move(payload));
    idx.add(static_cast<uint32_t>(held.size() - 1), held.back());
  };
  while (held.size() < 65535) add(json{{"x", held.size() % 100}});
  const size_t ordered = idx.memory_bytes();
  add(json{{"x", 7}});  // 64k points of 100 values
  EXPECT_LT(idx.memory_bytes() + 16 * 60000, ordered) << "the order of 100 values dropped";
  while (held.size() < 70000) add(json{{"x", held.size() % 100}});
  expect_range_holds(idx, held, half_open(10, 20), "100 values, 10%");
  expect_range_holds(idx, held, half_open(50, 51), "100 values, 1%");
  const size_t unordered = idx.memory_bytes();
  for (int v = 0; v < 2500; ++v) add(json{{"x", 1000 + 3 * v}});  // 2,600 values: 1 in 28
  EXPECT_GT(idx.memory_bytes(), unordered + 16 * 70000) << "the order made again";
  expect_range_holds(idx, held, half_open(1000, 1300), "2,600 values, 100 points");
  expect_range_holds(idx, held, half_open(10, 20), "2,600 values, 10%");
  for (uint32_t id = 70000; id < held.size(); id += 2) {
    idx.remove(id, held[id]);
    held[id] = json::object();
  }
  expect_range_holds(idx, held, half_open(1000, 2000), "after removals");
}

TEST(PayloadIndex, FilteredAnswersEqualACheckOfEveryPointThroughWritesAndARestart) {
  wp::test::TempDir tmp;
  std::mt19937 rng(7);
  std::uniform_real_distribution<float> u(0, 1);
  auto points = [&](size_t from, size_t n) {
    std::vector<PointWrite> pts(n);
    for (size_t i = 0; i < n; ++i) {
      pts[i].id = PointId::number(from + i);
      pts[i].vectors[""].resize(8);
      for (float& x : pts[i].vectors[""]) x = u(rng);
      pts[i].payload = random_payload(rng);
    }
    return pts;
  };
  {
    Engine eng(tmp.file("data"));
    eng.create_collection("plain", config());
    eng.create_collection("indexed", config());
    auto plain = eng.collection("plain"), indexed = eng.collection("indexed");
    auto both = [&](auto op) {
      op(*plain);
      op(*indexed);
    };
    const auto first = points(0, 1500);
    both([&](Collection& c) { c.upsert(first, false); });
    index_all(*indexed);  // built from the points there
    expect_same_answers(*plain, *indexed, rng);
    EXPECT_EQ(indexed->info().payload_fields.at("color").schema, PayloadSchema::kKeyword);
    EXPECT_GT(indexed->info().payload_fields.at("color").points, 1300u);

    // Writes after the index: new points, replaced payloads, deletes by id and by filter,
    // payload edits by filter (each keeps the index in step).
    const auto more = points(1000, 1000);  // 500 replace, 500 new
    both([&](Collection& c) { c.upsert(more, false); });
    std::vector<PointId> gone;
    for (uint64_t i = 0; i < 2000; i += 7) gone.push_back(PointId::number(i));
    both([&](Collection& c) { c.remove(gone, false); });
    const Filter teal =
        Filter::parse({{"must", {{{"key", "color"}, {"match", {{"value", "teal"}}}}}}});
    size_t removed[2];
    removed[0] = plain->remove_matching(teal, false);
    removed[1] = indexed->remove_matching(teal, false);
    EXPECT_EQ(removed[0], removed[1]);
    EXPECT_GT(removed[0], 0u);
    const Filter low = Filter::parse({{"must", {{{"key", "n"}, {"range", {{"lt", 5}}}}}}});
    size_t edited[2];
    edited[0] = plain->edit_payloads(
        nullptr, &low, [](json& p) { p["color"] = "cyan"; }, false);
    edited[1] = indexed->edit_payloads(
        nullptr, &low, [](json& p) { p["color"] = "cyan"; }, false);
    EXPECT_EQ(edited[0], edited[1]);
    EXPECT_GT(edited[0], 0u);
    expect_same_answers(*plain, *indexed, rng);
  }
  Engine eng(tmp.file("data"));  // the schema is stored; the indexes are built at open
  auto plain = eng.collection("plain"), indexed = eng.collection("indexed");
  EXPECT_EQ(indexed->config().payload_schema.size(), 8u);
  EXPECT_EQ(indexed->info().payload_fields.size(), 8u);
  EXPECT_EQ(indexed->info().payload_fields.at("loc").schema, PayloadSchema::kGeo);
  EXPECT_EQ(indexed->info().payload_fields.at("title").schema, PayloadSchema::kText);
  EXPECT_EQ(indexed->info().payload_fields.at("at").schema, PayloadSchema::kDatetime);
  expect_same_answers(*plain, *indexed, rng);
  indexed->delete_payload_index("price");
  EXPECT_THROW(indexed->delete_payload_index("price"), wp::NotFoundError);
  EXPECT_EQ(indexed->info().payload_fields.count("price"), 0u);
  expect_same_answers(*plain, *indexed, rng);
}

namespace {

using wp::engine::TextParams;

/// The test's own plain reading of Qdrant's tokenizers: `text` split as `p` says (white space is
/// Unicode's), ASCII lowercased when asked, the words kept or cut as an index (or, `query`, a
/// match.text) of `p` keeps them: for each word kept, in order, the tokens it is held as (a
/// prefix index: the word's prefixes) or looked for as.
std::vector<std::set<std::string>> plain_words(std::string text, const TextParams& p, bool query) {
  // Unicode's white space, and (the word tokenizer) the dashes, quotes and signs beyond ASCII
  // that split words, taken for spaces.
  std::vector<const char*> spaces{"\u0085", "\u00A0", "\u1680", "\u2000", "\u2005", "\u200A",
                                  "\u2028", "\u2029", "\u202F", "\u205F", "\u3000"};
  if (p.tokenizer != TextParams::Tokenizer::kWhitespace) {
    spaces.insert(spaces.end(), {"\u2013", "\u201C", "\u201D", "\u00BF", "\u00AB", "\u00BB"});
  }
  for (const char* space : spaces) {
    for (size_t at; (at = text.find(space)) != std::string::npos;) {
      text.replace(at, std::strlen(space), " ");
    }
  }
  std::vector<std::string> words(1);
  for (const char c : text) {
    const auto b = static_cast<unsigned char>(c);
    const bool splits = p.tokenizer == TextParams::Tokenizer::kWhitespace
                            ? std::isspace(b) != 0
                            : b < 0x80 && std::isalnum(b) == 0;
    if (splits) {
      words.emplace_back();
    } else {
      words.back() += p.lowercase && b < 0x80 ? static_cast<char>(std::tolower(b)) : c;
    }
  }
  // The characters of a word (UTF-8 letters count one each), and its first n of them.
  auto letters = [](const std::string& w) {
    std::vector<std::string> out;
    for (const char c : w) {
      if ((static_cast<unsigned char>(c) & 0xC0) == 0x80) {
        out.back() += c;
      } else {
        out.emplace_back(1, c);
      }
    }
    return out;
  };
  std::vector<std::set<std::string>> out;
  for (const std::string& w : words) {
    const std::vector<std::string> l = letters(w);
    const size_t n = l.size();
    if (n == 0 || n < p.min) continue;
    if (p.tokenizer != TextParams::Tokenizer::kPrefix) {
      if (n <= p.max) out.push_back({w});
      continue;
    }
    out.emplace_back();
    const size_t longest = std::min<size_t>(n, p.max);
    for (size_t k = query ? longest : std::max<size_t>(p.min, 1); k <= longest; ++k) {
      std::string prefix;
      for (size_t i = 0; i < k; ++i) prefix += l[i];
      out.back().insert(prefix);
    }
  }
  return out;
}

/// Whether a string value whose words are `have` matches a query whose words are `want`, both
/// as plain_words reads them: every word, one at least, or the phrase.
bool plain_match(const std::vector<std::set<std::string>>& have,
                 const std::vector<std::set<std::string>>& want, wp::engine::TextMatch how) {
  std::set<std::string> held, wanted;
  for (const auto& w : have) held.insert(w.begin(), w.end());
  for (const auto& w : want) wanted.insert(w.begin(), w.end());
  if (wanted.empty()) return false;
  switch (how) {
    case wp::engine::TextMatch::kAll:
      return std::includes(held.begin(), held.end(), wanted.begin(), wanted.end());
    case wp::engine::TextMatch::kAny:
      return std::find_first_of(held.begin(), held.end(), wanted.begin(), wanted.end()) !=
             held.end();
    case wp::engine::TextMatch::kPhrase:
      for (size_t at = 0; at + want.size() <= have.size(); ++at) {
        size_t i = 0;
        while (i < want.size() && have[at + i].count(*want[i].begin())) ++i;
        if (i == want.size()) return true;
      }
      return false;
  }
  return false;
}

/// A point that every text index of a key reads as `params` says.
class ReadAs final : public wp::engine::PointFacts {
 public:
  explicit ReadAs(TextParams params) : params_(params) {}
  bool holds(std::string_view) const override { return false; }
  const TextParams* text_params(std::string_view) const override { return &params_; }

 private:
  TextParams params_;
};

}  // namespace

// Every tokenizer with and without lowercasing and bounds, over random texts of mixed case,
// punctuation, UTF-8 letters and Unicode white space, for match.text, text_any and phrase: a
// text index's candidates (tested where they are not exact), a test of each point as the
// collection tells the filter how the key's index reads texts, and the test's own reading of
// Qdrant's tokenizers all find the same points.
TEST(PayloadIndex, TextIndexesOfEveryTokenizerAnswerAsATestOfEachPoint) {
  using T = TextParams::Tokenizer;
  const std::vector<std::string> vocabulary{"Fox",
                                            "fox",
                                            "FOXES",
                                            "fo",
                                            "f",
                                            "Мир",
                                            "мир",
                                            "Мирный",
                                            "a-b",
                                            "x.y",
                                            "hello",
                                            "Hell",
                                            "naïve",
                                            "co-op",
                                            "42",
                                            "\u201CFox\u201D",
                                            "\u00ABМир\u00BB",
                                            "\u00BFqué?"};
  const std::vector<std::string> separators{" ",      ", ", "\u00A0", "-",
                                            "\u3000", "\t", "! ",     "\u2013"};
  std::mt19937 rng(11);
  auto pick = [&](const std::vector<std::string>& from) { return from[rng() % from.size()]; };
  auto text = [&](size_t words) {
    std::string t = pick(vocabulary);
    for (size_t i = 1; i < words; ++i) t += pick(separators) + pick(vocabulary);
    return t;
  };
  std::vector<json> payloads;
  for (int i = 0; i < 300; ++i) {
    payloads.push_back(i % 5 == 0 ? json{{"t", {text(2), text(3)}}}
                                  : json{{"t", text(1 + rng() % 6)}});
  }
  size_t matched[3] = {0, 0, 0};
  for (const T tokenizer : {T::kWord, T::kWhitespace, T::kPrefix}) {
    for (const bool lowercase : {true, false}) {
      for (const auto& [min, max] :
           std::vector<std::pair<uint32_t, uint32_t>>{{0, UINT32_MAX}, {2, 4}, {3, UINT32_MAX}}) {
        const TextParams params{min, max, tokenizer, lowercase};
        const std::string at = std::to_string(static_cast<int>(tokenizer)) + "/" +
                               std::to_string(lowercase) + "/" + std::to_string(min) + ".." +
                               std::to_string(max);
        wp::engine::FieldIndex index("t", PayloadSchema::kText, params);
        for (uint32_t id = 0; id < payloads.size(); ++id) index.add(id, payloads[id]);
        const ReadAs facts(params);
        for (int q = 0; q < 60; ++q) {
          using wp::engine::TextMatch;
          const TextMatch how = q % 3 == 0   ? TextMatch::kAll
                                : q % 3 == 1 ? TextMatch::kAny
                                             : TextMatch::kPhrase;
          const char* kind = how == TextMatch::kAll   ? "text"
                             : how == TextMatch::kAny ? "text_any"
                                                      : "phrase";
          const std::string query = text(1 + rng() % (how == TextMatch::kPhrase ? 3 : 2));
          const Filter f = Filter::parse({{"must", {{{"key", "t"}, {"match", {{kind, query}}}}}}});
          const auto want = plain_words(query, params, true);
          std::vector<uint32_t> tested, expected;
          for (uint32_t id = 0; id < payloads.size(); ++id) {
            const PointId pid = PointId::number(id);
            if (f.matches(pid, payloads[id], &facts)) tested.push_back(id);
            const json& v = payloads[id]["t"];
            bool holds = false;
            for (const json& one : v.is_array() ? v : json::array({v})) {
              holds |= plain_match(plain_words(one, params, false), want, how);
            }
            if (holds) expected.push_back(id);
          }
          const std::string asked = at + " " + kind + " \"" + query + "\"";
          EXPECT_EQ(tested, expected) << asked;
          const auto candidates = index.text(query, how);
          ASSERT_TRUE(candidates) << asked;
          std::vector<uint32_t> listed;
          for (const uint32_t id : candidates->ids()) {
            if (candidates->exact || f.matches(PointId::number(id), payloads[id], &facts)) {
              listed.push_back(id);
            }
          }
          EXPECT_EQ(listed, expected) << asked;
          matched[static_cast<int>(how)] += expected.size();
        }
      }
    }
  }
  // With stopwords and a stemmer (the test has no reading of its own of those): the index's
  // candidates and a test of each point agree, and stems match across forms.
  TextParams stemmed;
  wp::engine::parse_payload_schema({{"type", "text"},
                                    {"stopwords", {{"languages", {"english"}}, {"custom", {"co"}}}},
                                    {"stemmer", {{"type", "snowball"}, {"language", "english"}}}},
                                   "field_schema", &stemmed);
  for (const T tokenizer : {T::kWord, T::kPrefix}) {
    stemmed.tokenizer = tokenizer;
    wp::engine::FieldIndex index("t", PayloadSchema::kText, stemmed);
    for (uint32_t id = 0; id < payloads.size(); ++id) index.add(id, payloads[id]);
    const ReadAs facts(stemmed);
    for (const std::string query : {"fox", "foxes hello", "co op", "FOX mir", "hell fo"}) {
      for (const char* kind : {"text", "text_any", "phrase"}) {
        const Filter f = Filter::parse({{"must", {{{"key", "t"}, {"match", {{kind, query}}}}}}});
        const wp::engine::TextMatch how = std::string(kind) == "text" ? wp::engine::TextMatch::kAll
                                          : std::string(kind) == "phrase"
                                              ? wp::engine::TextMatch::kPhrase
                                              : wp::engine::TextMatch::kAny;
        std::vector<uint32_t> tested, listed;
        for (uint32_t id = 0; id < payloads.size(); ++id) {
          if (f.matches(PointId::number(id), payloads[id], &facts)) tested.push_back(id);
        }
        const auto candidates = index.text(query, how);
        ASSERT_TRUE(candidates);
        for (const uint32_t id : candidates->ids()) {
          if (candidates->exact || f.matches(PointId::number(id), payloads[id], &facts)) {
            listed.push_back(id);
          }
        }
        EXPECT_EQ(listed, tested) << kind << " \"" << query << "\"";
        if (std::string(query) == "fox") {
          EXPECT_GT(tested.size(), 100u) << "\"Fox\", \"fox\" and \"FOXES\" are one stem";
        }
      }
    }
  }

  // The queries find points, not only none; phrases fewer.
  EXPECT_GT(matched[0], 300u);
  EXPECT_GT(matched[1], 1000u);
  EXPECT_GT(matched[2], 100u);
}

// A keyword index with Qdrant's prefix option lists exactly the points match.prefix holds for
// (a test of each point), through writes that replace and remove values (keys leave its order
// when their last point does); without the option it serves no prefix (each point is tested,
// as in Qdrant).
TEST(PayloadIndex, AKeywordIndexWithThePrefixOptionListsMatchPrefixExactly) {
  const std::vector<std::string> parts{"a", "b", "ab", "A", "-", "\u00E9", "Мир", "x"};
  std::mt19937 rng(17);
  auto word = [&] {
    std::string w;
    for (size_t n = rng() % 5; n > 0; --n) w += parts[rng() % parts.size()];
    return w;
  };
  auto payload = [&]() -> json {
    switch (rng() % 6) {
      case 0:
        return {{"k", {word(), word()}}};
      case 1:
        return {{"k", static_cast<int>(rng() % 10)}};
      case 2:
        return json::object();
      default:
        return {{"k", word()}};
    }
  };
  TextParams with_prefix;
  wp::engine::parse_payload_schema({{"type", "keyword"}, {"prefix", true}}, "field_schema",
                                   &with_prefix);
  ASSERT_TRUE(with_prefix.prefix);
  wp::engine::FieldIndex index("k", PayloadSchema::kKeyword, with_prefix);
  const wp::engine::FieldIndex plain("k", PayloadSchema::kKeyword);
  std::vector<json> held;
  auto put = writer(index, held);
  for (uint32_t id = 0; id < 400; ++id) put(id, payload());
  size_t found = 0;
  for (int round = 0; round < 3; ++round) {
    for (int q = 0; q < 80; ++q) {
      const std::string prefix = q == 0 ? "" : word();
      const Filter f = Filter::parse({{"must", {{{"key", "k"}, {"match", {{"prefix", prefix}}}}}}});
      IdList tested;
      for (uint32_t id = 0; id < held.size(); ++id) {
        if (f.matches(PointId::number(id), held[id])) tested.push_back(id);
      }
      const auto listed = index.prefix(prefix);
      ASSERT_TRUE(listed) << "\"" << prefix << "\"";
      EXPECT_TRUE(listed->exact);
      EXPECT_EQ(listed->ids(), tested) << "round " << round << ", \"" << prefix << "\"";
      EXPECT_FALSE(plain.prefix(prefix));
      found += tested.size();
    }
    // Replace a third of the points' values and remove a sixth.
    for (uint32_t id = 0; id < held.size(); ++id) {
      if (rng() % 3 == 0) put(id, rng() % 2 ? payload() : json::object());
    }
  }
  EXPECT_GT(found, 3000u);  // the prefixes find points, not only none
  // Every point's values removed: no key is left in the order.
  for (uint32_t id = 0; id < held.size(); ++id) put(id, json::object());
  EXPECT_TRUE(index.prefix("")->ids().empty());
}

TEST(PayloadIndex, FiltersNarrowOnlyThroughServedConditions) {
  wp::engine::PayloadIndexes ix;
  auto color = std::make_unique<wp::engine::FieldIndex>("color", PayloadSchema::kKeyword);
  auto n = std::make_unique<wp::engine::FieldIndex>("n", PayloadSchema::kInteger);
  const std::vector<json> payloads{{{"color", "red"}, {"n", 1}},
                                   {{"color", "blue"}, {"n", 2}},
                                   {{"color", "red"}, {"n", 3}},
                                   {{"color", "green"}, {"n", 1}}};
  for (uint32_t i = 0; i < payloads.size(); ++i) {
    color->add(i, payloads[i]);
    n->add(i, payloads[i]);
  }
  ix.install(std::move(color));
  ix.install(std::move(n));
  auto candidates = [&](const json& f) { return Filter::parse(f).candidates(ix); };
  const json red{{"key", "color"}, {"match", {{"value", "red"}}}};
  const json one{{"key", "n"}, {"match", {{"value", 1}}}};
  const json other{{"key", "size"}, {"match", {{"value", 1}}}};
  EXPECT_EQ(candidates({{"must", {red}}})->ids(), (IdList{0, 2}));
  EXPECT_EQ(candidates({{"must", {red, one}}})->ids(), (IdList{0}));
  EXPECT_EQ(candidates({{"must", {red, other}}})->ids(), (IdList{0, 2}));  // other is checked later
  EXPECT_TRUE(candidates({{"must", {red, one}}})->exact);
  EXPECT_FALSE(candidates({{"must", {red, other}}})->exact);
  EXPECT_FALSE(candidates({{"must", {red}}, {"must_not", {one}}})->exact);
  // Listing every match (count, scroll, deletes by filter), a must_not an index gives exactly
  // is taken out (0 has n 1); one no index serves is left to be tested; a search's lookups
  // above keep testing it.
  const wp::engine::ListingLookup listing(ix);
  auto listed = [&](const json& f) { return Filter::parse(f).candidates(listing); };
  EXPECT_EQ(listed({{"must", {red}}, {"must_not", {one}}})->ids(), (IdList{2}));
  EXPECT_TRUE(listed({{"must", {red}}, {"must_not", {one}}})->exact);
  EXPECT_EQ(listed({{"must", {red}}, {"must_not", {one, other}}})->ids(), (IdList{2}));
  EXPECT_FALSE(listed({{"must", {red}}, {"must_not", {one, other}}})->exact);
  EXPECT_EQ(listed({{"should", {red, one}}, {"must_not", {red}}})->ids(), (IdList{3}));
  EXPECT_FALSE(listed({{"must_not", {red}}}));
  // A group of must_not in a must is its parent's must_not (red and not 1).
  const json not_one{{"must_not", {one}}};
  EXPECT_EQ(listed({{"must", {red, not_one}}})->ids(), (IdList{2}));
  EXPECT_TRUE(listed({{"must", {red, not_one}}})->exact);
  EXPECT_EQ(listed({{"must", {red, {{"must", {{{"must_not", {one}}}}}}}}})->ids(), (IdList{2}));
  EXPECT_FALSE(candidates({{"must", {red, not_one}}})->exact);  // a search tests it
  EXPECT_EQ(candidates({{"must", {red, not_one}}})->ids(), (IdList{0, 2}));
  for (uint32_t i = 0; i < payloads.size(); ++i) {
    EXPECT_EQ(Filter::parse({{"must", {red, not_one}}}).matches(PointId::number(i), payloads[i]),
              i == 2);
  }
  // With a should the group is its own condition: (red and not 1) or 2 holds for 1 and 2.
  const json either{
      {"should",
       {{{"must", {red}}, {"must_not", {one}}}, {{"key", "n"}, {"match", {{"value", 2}}}}}}};
  EXPECT_EQ(listed({{"must", {either}}})->ids(), (IdList{1, 2}));
  EXPECT_TRUE(listed({{"must", {either}}})->exact);
  EXPECT_EQ(candidates({{"must", {either}}})->ids(), (IdList{0, 1, 2}));
  EXPECT_FALSE(candidates({{"must", {either}}})->exact);
  EXPECT_EQ(candidates({{"should", {red, one}}})->ids(), (IdList{0, 2, 3}));
  EXPECT_FALSE(candidates({{"should", {red, other}}}));  // other may hold anywhere
  EXPECT_FALSE(candidates({{"must_not", {red}}}));
  EXPECT_FALSE(candidates({{"must", {other}}}));
  EXPECT_EQ(candidates({{"must", {{{"must", {red}}}}}, {"should", {one}}})->ids(), (IdList{0}));
  ix.drop("color");
  EXPECT_EQ(candidates({{"must", {red, one}}})->ids(), (IdList{0, 3}));

  // match.text and datetime ranges narrow through their indexes, and only through theirs.
  auto title = std::make_unique<wp::engine::FieldIndex>("title", PayloadSchema::kText);
  auto at = std::make_unique<wp::engine::FieldIndex>("at", PayloadSchema::kDatetime);
  const std::vector<json> more{{{"title", "red fox"}, {"at", "2024-01-01T00:00:00Z"}},
                               {{"title", "Fox"}, {"at", "2024-06-01T00:00:00Z"}},
                               {{"title", "dog"}, {"at", "2024-06-02T00:00:00Z"}}};
  for (uint32_t i = 0; i < more.size(); ++i) {
    title->add(i, more[i]);
    at->add(i, more[i]);
  }
  ix.install(std::move(title));
  ix.install(std::move(at));
  const json fox{{"key", "title"}, {"match", {{"text", "FOX"}}}};
  const json june{{"key", "at"}, {"range", {{"gte", "2024-06-01T00:00:00Z"}}}};
  EXPECT_EQ(candidates({{"must", {fox}}})->ids(), (IdList{0, 1}));
  EXPECT_EQ(candidates({{"must", {june}}})->ids(), (IdList{1, 2}));
  EXPECT_EQ(candidates({{"must", {fox, june}}})->ids(), (IdList{1}));
  EXPECT_FALSE(candidates({{"must", {{{"key", "title"}, {"match", {{"value", "dog"}}}}}}}));
  EXPECT_FALSE(candidates({{"must", {{{"key", "at"}, {"range", {{"gte", 5}}}}}}}));

  // geo conditions narrow through a geo index to the cells they touch.
  auto loc = std::make_unique<wp::engine::FieldIndex>("loc", PayloadSchema::kGeo);
  loc->add(0, {{"loc", {{"lon", 2.35}, {"lat", 48.85}}}});  // Paris
  loc->add(1, {{"loc", {{"lon", 13.4}, {"lat", 52.52}}}});  // Berlin
  loc->add(2, {{"loc", {{"lon", -74.0}, {"lat", 40.7}}}});  // New York
  ix.install(std::move(loc));
  const json near_paris{
      {"key", "loc"},
      {"geo_radius", {{"center", {{"lon", 2.3}, {"lat", 48.8}}}, {"radius", 1000}}}};
  const json europe{
      {"key", "loc"},
      {"geo_bounding_box",
       {{"top_left", {{"lon", -10}, {"lat", 60}}}, {"bottom_right", {{"lon", 30}, {"lat", 35}}}}}};
  EXPECT_EQ(candidates({{"must", {near_paris}}})->ids(), (IdList{0}));
  EXPECT_EQ(candidates({{"must", {europe}}})->ids(), (IdList{0, 1}));
}

namespace {

/// 20,000 points of 8 dimensions, every third one removed, with a key that alternates with the
/// id ("half": a period the probes must not line up with), one ten percent hold ("tenth"), one
/// a point in a thousand holds ("rare") and a float ("x": a value a point); `indexed`: with
/// payload indexes on half, tenth and x.
std::shared_ptr<Collection> filter_collection(Engine& eng, bool indexed) {
  eng.create_collection("c", config());
  auto col = eng.collection("c");
  std::mt19937 rng(11);
  std::uniform_real_distribution<float> u(0, 1);
  std::mt19937 xrng(17);  // apart, so that the other values stay as they were drawn before x
  std::uniform_real_distribution<double> x(0, 1);
  std::vector<PointWrite> pts(20000);
  for (size_t i = 0; i < pts.size(); ++i) {
    pts[i].id = PointId::number(i);
    pts[i].vectors[""].resize(8);
    for (float& x : pts[i].vectors[""]) x = u(rng);
    pts[i].payload = {{"half", i % 2 ? "odd" : "even"},
                      {"tenth", u(rng) < 0.1f},
                      {"rare", i % 1000 == 0 ? "yes" : "no"},
                      {"x", x(xrng)}};
  }
  col->upsert(pts, false);
  if (indexed) {
    col->create_payload_index("half", PayloadSchema::kKeyword);
    col->create_payload_index("tenth", PayloadSchema::kBool);
    col->create_payload_index("x", PayloadSchema::kFloat);
  }
  std::vector<PointId> gone;
  for (size_t i = 0; i < pts.size(); i += 3) gone.push_back(PointId::number(i));
  col->remove(gone, false);
  return col;
}

struct FilteredRun {
  double recall = 0;  ///< of ef-64 searches against the exact filtered search
  uint64_t most_tests = 0, fewest_tests = UINT64_MAX;  ///< payloads a search tested
};

/// 30 searches (k 10, ef 64) with `fj`, each checked: 10 answers, each a live point the filter
/// holds for.
FilteredRun run_filtered(const Collection& col, const json& fj) {
  const Filter f = Filter::parse(fj);
  std::mt19937 rng(13);
  std::uniform_real_distribution<float> u(0, 1);
  FilteredRun r;
  size_t hits = 0, total = 0;
  for (size_t qi = 0; qi < 30; ++qi) {
    SearchQuery q;
    q.vector.resize(8);
    for (float& x : q.vector) x = u(rng);
    q.limit = 10;
    q.ef = 64;
    q.filter = &f;
    q.with_payload = true;
    const uint64_t before = col.filter_payload_tests();
    const auto got = col.search(q);
    const uint64_t tests = col.filter_payload_tests() - before;
    r.most_tests = std::max(r.most_tests, tests);
    r.fewest_tests = std::min(r.fewest_tests, tests);
    q.exact = true;
    const auto truth = col.search(q);
    EXPECT_EQ(got.size(), 10u) << fj.dump();
    EXPECT_EQ(truth.size(), 10u) << fj.dump();
    for (const auto& p : got) {
      EXPECT_TRUE(f.matches(p.point.id, p.point.payload)) << fj.dump();
      EXPECT_NE(p.point.id.num() % 3, 0u) << "a removed point answered";
      for (const auto& t : truth) hits += t.point.id == p.point.id;
    }
    total += truth.size();
  }
  r.recall = static_cast<double>(hits) / std::max<size_t>(total, 1);
  return r;
}

const json kEven = {{"must", {{{"key", "half"}, {"match", {{"value", "even"}}}}}}};
const json kTenth = {{"must", {{{"key", "tenth"}, {"match", {{"value", true}}}}}}};
const json kNotTenth = {{"must_not", {{{"key", "tenth"}, {"match", {{"value", true}}}}}}};
const json kRare = {{"must", {{{"key", "rare"}, {"match", {{"value", "yes"}}}}}}};  // 14 live
const json kLowX = {{"must", {{{"key", "x"}, {"range", {{"lt", 0.5}}}}}}};

}  // namespace

// A filter no payload index serves: when probes of the points find matches, the search tests
// the payloads of the points its walk reaches rather than every payload, and answers as the
// exact filtered search (recall floor); when they find none, the matches are listed by testing
// every payload, as before. Removed points are never answered either way.
TEST(PayloadIndex, AFilterNoIndexServesIsTestedAlongTheWalkWhenProbesFindMatches) {
  wp::test::TempDir tmp;
  Engine eng(tmp.file("data"));
  const auto col = filter_collection(eng, false);
  const size_t live = col->size();
  for (const json& fj : {kEven, kTenth, kNotTenth}) {
    const FilteredRun r = run_filtered(*col, fj);
    EXPECT_GE(r.recall, 0.95) << fj.dump();
    EXPECT_LT(r.most_tests, live / 10) << fj.dump();  // hundreds, not every payload
  }
  const FilteredRun rare = run_filtered(*col, kRare);
  EXPECT_GE(rare.recall, 0.95);
  EXPECT_GE(rare.fewest_tests, live);  // listed: every payload tested
  // 2% (about 270 live points): the probes find some, and the index scans (a walk would expand
  // ~3,200 vertices, testing ~4,000 payloads at random): the filter lists the matches testing
  // each payload once, in order, besides the probes' (at most 625), and the answer is exact.
  const json kLowX2 = {{"must", {{{"key", "x"}, {"range", {{"lt", 0.02}}}}}}};
  const FilteredRun low = run_filtered(*col, kLowX2);
  EXPECT_EQ(low.recall, 1.0);
  EXPECT_GE(low.fewest_tests, live);
  EXPECT_LE(low.most_tests, live + 625);
}

// Many matches a payload index lists exactly: the search tests the points its walk reaches
// against the postings (no payload is read) and answers as the exact filtered search.
TEST(PayloadIndex, ManyIndexedMatchesAreTestedAgainstThePostingsAsTheWalkReachesThem) {
  wp::test::TempDir tmp;
  Engine eng(tmp.file("data"));
  const auto col = filter_collection(eng, true);
  const json kNotInTenth = {{"must", {{{"key", "tenth"}, {"match", {{"value", false}}}}}}};
  // A range over a value a point (given as a test of each point's number), alone, beside a
  // list (kept by the test) and as one alternative of two (listed).
  const json low_x_in_tenth = {{"must", {kLowX, kTenth}}};
  const json low_x_or_even = {{"should", {kLowX, kEven}}};
  for (const json& fj : {kEven, kTenth, kNotInTenth, kLowX, low_x_in_tenth, low_x_or_even}) {
    const FilteredRun r = run_filtered(*col, fj);
    EXPECT_GE(r.recall, 0.95) << fj.dump();
    EXPECT_EQ(r.most_tests, 0u) << fj.dump();
    const Filter f = Filter::parse(fj);
    size_t holds = 0;  // count() against a check of every point
    Collection::Page page;
    do {
      page = col->scroll(nullptr, 10000, page.next, true, {});
      for (const auto& p : page.points) holds += f.matches(p.id, p.payload);
    } while (page.next);
    EXPECT_EQ(col->count(&f), holds) << fj.dump();
  }
  // A condition no index serves beside one that narrows: the points of the postings the walk
  // reaches have their payloads tested, not all 6,667 of the postings.
  for (const json& mixed :
       {json{{"must", {kEven, kNotTenth}}}, json{{"must", {kLowX, kNotTenth}}}}) {
    const FilteredRun r = run_filtered(*col, mixed);
    EXPECT_GE(r.recall, 0.95) << mixed.dump();
    EXPECT_GT(r.most_tests, 0u) << mixed.dump();
    EXPECT_LT(r.most_tests, col->size() / 20) << mixed.dump();
  }
}

// A payload index over a collection's points reads each packed payload in place (MsgValue), as
// it adds and as it removes: it holds exactly what the same index holds given JSON trees, for every
// schema, key path and value type (a float of integral value included: integer matches then
// check each point).
TEST(PayloadIndex, BuiltFromPackedPayloadsItHoldsWhatTreesGiveIt) {
  std::mt19937 rng(7);
  const json values[] = {"red",
                         "blue",
                         3,
                         -40000,
                         2.5,
                         7.0,
                         true,
                         false,
                         nullptr,
                         "2024-05-01T10:00:00Z",
                         "Quick brown fox",
                         "5c56c793-69f3-4fbf-87e6-c4bf54c28c26",
                         json{{"lon", 13.4}, {"lat", 52.5}},
                         json::array({"red", 3, 2.5}),
                         json::array({json{{"k", "blue"}}, json{{"k", 12}}})};
  std::vector<json> payloads;
  for (int i = 0; i < 500; ++i) {
    json p = json::object();
    for (const char* k : {"a", "b", "c"}) {
      if (rng() % 4) p[k] = values[rng() % std::size(values)];
    }
    payloads.push_back(std::move(p));
  }
  const auto postings = [](const wp::engine::FieldIndex& idx) {
    std::vector<std::pair<std::string, IdList>> out;
    idx.for_each_posting(
        [&](const json& v, const IdList& ids) { out.emplace_back(v.dump(), ids); });
    std::sort(out.begin(), out.end());
    return out;
  };
  size_t nonempty = 0;
  for (const PayloadSchema schema :
       {PayloadSchema::kKeyword, PayloadSchema::kInteger, PayloadSchema::kFloat,
        PayloadSchema::kBool, PayloadSchema::kUuid, PayloadSchema::kDatetime, PayloadSchema::kText,
        PayloadSchema::kGeo}) {
    for (const char* key : {"a", "b[]", "c[].k", "c[1]"}) {
      wp::engine::FieldIndex tree(key, schema), packed(key, schema);
      for (size_t i = 0; i < payloads.size(); ++i) {
        tree.add(static_cast<uint32_t>(i), payloads[i]);
        const wp::engine::PackedPayload bytes(payloads[i]);
        packed.add(static_cast<uint32_t>(i), wp::engine::MsgValue(bytes));
      }
      EXPECT_EQ(packed.points(), tree.points()) << key;
      EXPECT_EQ(postings(packed), postings(tree)) << key;
      const auto threes = packed.integers({3});  // an integer index only
      ASSERT_EQ(threes.has_value(), tree.integers({3}).has_value()) << key;
      if (threes) {
        EXPECT_EQ(threes->ids(), tree.integers({3})->ids()) << key;
      }
      nonempty += tree.points() > 0;
      // Removed alike: every other point, read back from its packed bytes.
      for (size_t i = 0; i < payloads.size(); i += 2) {
        tree.remove(static_cast<uint32_t>(i), payloads[i]);
        const wp::engine::PackedPayload bytes(payloads[i]);
        packed.remove(static_cast<uint32_t>(i), wp::engine::MsgValue(bytes));
      }
      EXPECT_EQ(packed.points(), tree.points()) << key;
      EXPECT_EQ(postings(packed), postings(tree)) << key;
    }
  }
  EXPECT_GE(nonempty, 16u);  // most schemas find values at most paths
}
