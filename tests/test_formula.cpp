// Qdrant's formula query (engine/formula.h): parsing with exact error paths, and each expression
// evaluated as Qdrant evaluates it.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <cmath>
#include <map>
#include <optional>
#include <string>

#include "engine/formula.h"
#include "index/error.h"

using wp::engine::Filter;
using wp::engine::Formula;
using json = nlohmann::json;

namespace {

/// A point with `payload`, its score `scores[i]` in prefetch i (none where absent), conditions
/// tested against its payload as a filter tests it.
struct TestPoint {
  json payload = json::object();
  std::map<size_t, float> scores;
  wp::engine::PointId id = wp::engine::PointId::number(7);
  mutable wp::engine::PackedPayload packed;

  Formula::Point view() const {
    packed = wp::engine::PackedPayload(payload);
    Formula::Point p;
    p.prefetch_score = [this](size_t i) -> std::optional<float> {
      const auto it = scores.find(i);
      if (it == scores.end()) return std::nullopt;
      return it->second;
    };
    p.payload = &packed;
    p.holds = [this](const Filter& f) { return f.matches(id, payload); };
    p.id = &id;
    return p;
  }
};

float score(const json& formula, const TestPoint& p, const json& defaults = nullptr) {
  return Formula::parse(formula, defaults, "query").score(p.view());
}

/// The message of the UserError that parsing `formula` (or scoring it on `p`) throws.
std::string error_of(const json& formula, const json& defaults = nullptr,
                     const TestPoint& p = TestPoint{}) {
  try {
    Formula::parse(formula, defaults, "query").score(p.view());
  } catch (const wp::UserError& e) {
    return e.what();
  }
  return "no error";
}

}  // namespace

TEST(Formula, ScoresPayloadNumbersAndConditionsAsQdrantReadsThem) {
  TestPoint p;
  p.payload = {{"price", 12.5}, {"one", {4}},      {"two", {1, 2}},
               {"tag", "a"},    {"n", {{"x", 3}}}, {"list", {{{"v", 1}}, {{"v", 2}}}}};
  p.scores = {{0, 0.75f}, {2, 2.0f}};
  EXPECT_FLOAT_EQ(score(3, p), 3);
  EXPECT_FLOAT_EQ(score("$score", p), 0.75f);
  EXPECT_FLOAT_EQ(score("$score[0]", p), 0.75f);
  EXPECT_FLOAT_EQ(score("$score[2]", p), 2);
  EXPECT_FLOAT_EQ(score("$score[1]", p), 0);  // not in that prefetch: 0
  EXPECT_FLOAT_EQ(score("$score[1]", p, {{"$score[1]", 0.25}}), 0.25f);
  EXPECT_FLOAT_EQ(score("price", p), 12.5f);
  EXPECT_FLOAT_EQ(score("one", p), 4);  // an array of one is its element
  EXPECT_FLOAT_EQ(score("n.x", p), 3);
  EXPECT_FLOAT_EQ(score("list[1].v", p), 2);
  EXPECT_FLOAT_EQ(score("missing", p, {{"missing", -2}}), -2);
  EXPECT_FLOAT_EQ(score("a.\"b\"", p, {{"a.b", 6}}), 6);  // the same path spelled otherwise
  EXPECT_FLOAT_EQ(score({{"key", "tag"}, {"match", {{"value", "a"}}}}, p), 1);
  EXPECT_FLOAT_EQ(score({{"key", "tag"}, {"match", {{"value", "b"}}}}, p), 0);
  EXPECT_FLOAT_EQ(score({{"must_not", {{{"key", "tag"}, {"match", {{"value", "b"}}}}}}}, p), 1);
  EXPECT_FLOAT_EQ(score({{"has_id", {7}}}, p), 1);
  EXPECT_FLOAT_EQ(score({{"is_empty", {{"key", "missing"}}}}, p), 1);
  EXPECT_FLOAT_EQ(score({{"sum", {"$score", "price", {{"neg", 2}}}}}, p), 11.25f);
  EXPECT_FLOAT_EQ(score({{"mult", {"$score", "price"}}}, p), 9.375f);
  EXPECT_FLOAT_EQ(score({{"sum", json::array()}}, p), 0);
  EXPECT_FLOAT_EQ(score({{"mult", json::array()}}, p), 1);
  EXPECT_FLOAT_EQ(score({{"abs", {{"neg", "price"}}}}, p), 12.5f);
  EXPECT_FLOAT_EQ(score({{"div", {{"left", "price"}, {"right", 5}}}}, p), 2.5f);
  EXPECT_FLOAT_EQ(score({{"sqrt", 16}}, p), 4);
  EXPECT_FLOAT_EQ(score({{"pow", {{"base", 2}, {"exponent", "one"}}}}, p), 16);
  EXPECT_FLOAT_EQ(score({{"exp", 1}}, p), static_cast<float>(std::exp(1.0)));
  EXPECT_FLOAT_EQ(score({{"log10", 1000}}, p), 3);
  EXPECT_FLOAT_EQ(score({{"ln", {{"exp", 2}}}}, p), 2);
  // A constant is a 32-bit float widened, as Qdrant reads it: 0.1 + 0.2 in floats.
  EXPECT_EQ(score({{"sum", {0.1, 0.2}}}, p), static_cast<float>(double(0.1f) + double(0.2f)));
}

TEST(Formula, StopsWhereQdrantStopsAndFailsWhereItFails) {
  TestPoint p;
  p.payload = {{"price", 12.5}, {"two", {1, 2}}, {"text", "x"}, {"nothing", nullptr}};
  // A product stops at a factor 0, a quotient with numerator 0 is 0: the rest is not evaluated
  // (a missing value there is no error).
  EXPECT_FLOAT_EQ(score({{"mult", {0, "missing"}}}, p), 0);
  EXPECT_FLOAT_EQ(score({{"div", {{"left", 0}, {"right", "missing"}}}}, p), 0);
  EXPECT_FLOAT_EQ(score({{"div", {{"left", 1}, {"right", 0}, {"by_zero_default", 9}}}}, p), 9);
  EXPECT_NE(error_of({{"mult", {"missing", 0}}}, nullptr, p).find("no number at \"missing\""),
            std::string::npos);
  EXPECT_EQ(error_of("missing", nullptr, p),
            "query.formula: no number at \"missing\" for point 7, in its payload or in defaults");
  EXPECT_EQ(error_of("two", nullptr, p),
            "query.formula: expected a number at \"two\" for point 7, got [1,2]");
  EXPECT_EQ(error_of("text", nullptr, p),
            "query.formula: expected a number at \"text\" for point 7, got \"x\"");
  EXPECT_EQ(error_of("nothing", {{"nothing", 1}}, p),  // a null value is a value: no default
            "query.formula: expected a number at \"nothing\" for point 7, got null");
  EXPECT_EQ(error_of({{"div", {{"left", 1}, {"right", 0}}}}, nullptr, p),
            "query.formula: 1.0 / 0.0 is not a finite number (point 7)");
  EXPECT_EQ(error_of({{"sqrt", -4}}, nullptr, p),
            "query.formula: sqrt(-4.0) is not a finite number (point 7)");
  EXPECT_EQ(error_of({{"ln", 0}}, nullptr, p),
            "query.formula: ln(0.0) is not a finite number (point 7)");
  EXPECT_EQ(error_of({{"log10", -1}}, nullptr, p),
            "query.formula: log10(-1.0) is not a finite number (point 7)");
  EXPECT_EQ(error_of({{"exp", 1000}}, nullptr, p),
            "query.formula: exp(1000.0) is not a finite number (point 7)");
  EXPECT_EQ(error_of({{"pow", {{"base", -8}, {"exponent", 0.5}}}}, nullptr, p),
            "query.formula: pow(-8.0, 0.5) is not a finite number (point 7)");
  // Finite in double precision, not as the 32-bit float a score is.
  EXPECT_NE(error_of({{"mult", {1e30, 1e30}}}, nullptr, p).find("as a 32-bit float"),
            std::string::npos);
}

TEST(Formula, DecaysAreOneAtTheTargetAndTheMidpointAtTheScale) {
  TestPoint p;
  p.payload = {{"x", 13}};
  for (const char* kind : {"lin_decay", "exp_decay", "gauss_decay"}) {
    SCOPED_TRACE(kind);
    EXPECT_FLOAT_EQ(score({{kind, {{"x", 10}, {"target", 10}, {"scale", 3}}}}, p), 1);
    EXPECT_FLOAT_EQ(score({{kind, {{"x", "x"}, {"target", 10}, {"scale", 3}}}}, p), 0.5f);
    EXPECT_FLOAT_EQ(score({{kind, {{"x", 7}, {"target", 10}, {"scale", 3}, {"midpoint", 0.2}}}}, p),
                    0.2f);
    EXPECT_FLOAT_EQ(score({{kind, {{"x", -1}}}}, p), 0.5f);  // target 0, scale 1, midpoint 0.5
  }
  // Between: linear falls in a line (to 0 and no lower), exponential by |d|, gaussian by d^2.
  EXPECT_FLOAT_EQ(score({{"lin_decay", {{"x", 2}, {"scale", 4}}}}, p), 0.75f);
  EXPECT_FLOAT_EQ(score({{"lin_decay", {{"x", 100}, {"scale", 4}}}}, p), 0);
  EXPECT_FLOAT_EQ(score({{"exp_decay", {{"x", 8}, {"scale", 4}}}}, p), 0.25f);
  EXPECT_FLOAT_EQ(score({{"gauss_decay", {{"x", 8}, {"scale", 4}}}}, p), 0.0625f);
  EXPECT_EQ(error_of({{"exp_decay", {{"x", 1}, {"midpoint", 1}}}}),
            "query.formula.exp_decay.midpoint: expected a number strictly between 0 and 1, got 1");
  EXPECT_EQ(error_of({{"lin_decay", {{"x", 1}, {"midpoint", 1.5}}}}),
            "query.formula.lin_decay.midpoint: expected a number in 0..1 for lin_decay, got 1.5");
  EXPECT_EQ(error_of({{"gauss_decay", {{"x", 1}, {"scale", 0}}}}),
            "query.formula.gauss_decay.scale: expected a number > 0, got 0");
  EXPECT_EQ(error_of({{"gauss_decay", {{"scale", 1}}}}), "query.formula.gauss_decay.x: missing");
}

TEST(Formula, GeoDistancesAndDatetimesReadTheirKeys) {
  TestPoint p;
  p.payload = {{"loc", {{"lon", 2.3522}, {"lat", 48.8566}}},
               {"at", "2025-01-02T00:00:00Z"},
               {"bad", "yesterday"}};
  const json origin{{"lon", -0.1276}, {"lat", 51.5072}};  // London to Paris: about 343.9 km
  const float d = score({{"geo_distance", {{"origin", origin}, {"to", "loc"}}}}, p);
  EXPECT_NEAR(d, 343.9e3, 1e3);
  EXPECT_FLOAT_EQ(
      score({{"geo_distance", {{"origin", origin}, {"to", "none"}}}}, p, {{"none", origin}}), 0);
  EXPECT_FLOAT_EQ(score({{"datetime", "2025-01-01T00:00:00Z"}}, p), 1735689600.0f);
  EXPECT_FLOAT_EQ(
      score({{"sum", {{{"datetime_key", "at"}}, {{"neg", {{"datetime", "2025-01-01"}}}}}}}, p),
      86400);
  EXPECT_FLOAT_EQ(score({{"datetime_key", "none"}}, p, {{"none", "1970-01-01T00:01:00Z"}}), 60);
  EXPECT_EQ(error_of({{"datetime_key", "bad"}}, nullptr, p),
            "query.formula: expected a datetime at \"bad\" for point 7, got \"yesterday\"");
  EXPECT_EQ(error_of({{"geo_distance", {{"origin", origin}, {"to", "at"}}}}, nullptr, p),
            "query.formula: expected a geo point at \"at\" for point 7, got "
            "\"2025-01-02T00:00:00Z\"");
  EXPECT_EQ(error_of({{"datetime", "soon"}}),
            "query.formula.datetime: expected an RFC 3339 datetime, got \"soon\"");
  EXPECT_EQ(error_of({{"geo_distance", {{"origin", {{"lon", 200}, {"lat", 0}}}, {"to", "loc"}}}}),
            "query.formula.geo_distance.origin.lon: expected a number in -180..180");
}

TEST(Formula, MalformedFormulasNameTheField) {
  EXPECT_EQ(error_of("$scores"),
            "query.formula: unknown variable \"$scores\"; the reserved ones are \"$score\" and "
            "\"$score[i]\"");
  EXPECT_EQ(error_of({{"sum", {1, "$score[x]"}}}),
            "query.formula.sum[1]: unknown variable \"$score[x]\"; the reserved ones are "
            "\"$score\" and \"$score[i]\"");
  EXPECT_NE(error_of({{"sum", {1, "a..b"}}}).find("query.formula.sum[1]: invalid key path"),
            std::string::npos);
  EXPECT_EQ(error_of({{"mult", 3}}), "query.formula.mult: expected an array of expressions, got 3");
  EXPECT_EQ(error_of({{"div", {{"left", 1}}}}), "query.formula.div.right: missing");
  EXPECT_EQ(error_of({{"div", {{"left", 1}, {"right", 2}, {"by_zero_default", "x"}}}}),
            "query.formula.div.by_zero_default: expected a finite number, got \"x\"");
  EXPECT_NE(error_of({{"pow", {{"base", 1}, {"exponent", 2}, {"power", 3}}}})
                .find("query.formula.pow.power: unknown field"),
            std::string::npos);
  EXPECT_EQ(error_of(json::array({1})),
            "query.formula: expected a number, a variable (\"$score\", \"$score[i]\" or a payload "
            "key), a condition or an expression object such as {\"sum\": [...]}, got [1]");
  EXPECT_EQ(error_of(1e300), "query.formula: expected a finite number (32-bit float), got 1e+300");
  // An object that is no expression is read as a condition, and named as one.
  EXPECT_NE(error_of({{"sum", {{{"summ", {1}}}}}}).find("query.formula.sum[0]: a condition needs"),
            std::string::npos);
  EXPECT_NE(error_of({{"key", "a"}, {"match", {{"valu", 1}}}}).find("query.formula.match"),
            std::string::npos);
  EXPECT_EQ(error_of(1, {{"$bad", 1}}),
            "query.defaults.$bad: unknown variable; the reserved ones are \"$score\" and "
            "\"$score[i]\"");
  EXPECT_EQ(error_of(1, json::array()),
            "query.defaults: expected an object of variables and their values, got []");
  // Bounded: nodes and depth.
  json wide = json::array();
  for (int i = 0; i < 300; ++i) wide.push_back(i);
  EXPECT_EQ(error_of({{"sum", wide}}),
            "query.formula.sum[255]: a formula has at most 256 expressions");
  json deep = 1;
  for (int i = 0; i < 40; ++i) deep = {{"neg", deep}};
  EXPECT_NE(error_of(deep).find("a formula nests at most 32 levels deep"), std::string::npos);
}
