// Qdrant payload filters: parsing (with exact error paths) and matching.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <iostream>
#include <limits>
#include <map>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "engine/filter.h"
#include "engine/json_value.h"
#include "engine/packed_payload.h"
#include "engine/payload_index.h"
#include "engine/word_rules.h"
#include "index/error.h"

using wp::engine::Filter;
using wp::engine::PointId;
using json = nlohmann::json;

namespace {

const char* const kUuid = "5c56c793-69f3-4fbf-87e6-c4bf54c28c26";

/// `f` on point `id` with `payload`, both as a JSON tree and as the packed bytes a collection
/// holds (read in place): the two must agree.
bool matches_both(const Filter& f, const PointId& id, const json& payload) {
  const bool tree = f.matches(id, payload);
  EXPECT_EQ(f.matches(id, wp::engine::PackedPayload(payload)), tree)
      << "packed and tree disagree on " << payload.dump();
  return tree;
}

/// Parses `filter` and checks it against point `id` with `payload`.
bool passes(const std::string& filter, const std::string& payload,
            const PointId& id = PointId::number(1)) {
  return matches_both(Filter::parse(json::parse(filter)), id, json::parse(payload));
}

/// The ids (1..n) of `points` that pass `filter`.
std::set<uint64_t> select(const std::string& filter, const std::vector<json>& points) {
  const Filter f = Filter::parse(json::parse(filter));
  std::set<uint64_t> out;
  for (size_t i = 0; i < points.size(); ++i) {
    if (matches_both(f, PointId::number(i + 1), points[i])) out.insert(i + 1);
  }
  return out;
}

/// The six points of Qdrant's filtering guide, ids 1..6.
std::vector<json> city_points() {
  return {
      json{{"city", "London"}, {"color", "green"}}, json{{"city", "London"}, {"color", "red"}},
      json{{"city", "London"}, {"color", "blue"}},  json{{"city", "Berlin"}, {"color", "red"}},
      json{{"city", "Moscow"}, {"color", "green"}}, json{{"city", "Moscow"}, {"color", "blue"}}};
}

}  // namespace

TEST(Filter, EmptyFilterMatchesEverything) {
  const Filter none;
  EXPECT_TRUE(none.empty());
  EXPECT_TRUE(none.matches(PointId::number(7), json::object()));
  for (const char* text : {"{}", "null", R"({"must": []})", R"({"should": [], "must_not": []})",
                           R"({"must": null})"}) {
    const Filter f = Filter::parse(json::parse(text));
    EXPECT_TRUE(f.empty()) << text;
    EXPECT_TRUE(f.matches(PointId::number(7), json{{"a", 1}})) << text;
  }
  EXPECT_FALSE(Filter::parse(json::parse(R"({"must": [{"has_id": [1]}]})")).empty());
}

TEST(Filter, MatchValueString) {
  const std::string f = R"({"must": [{"key": "city", "match": {"value": "London"}}]})";
  EXPECT_TRUE(passes(f, R"({"city": "London"})"));
  EXPECT_FALSE(passes(f, R"({"city": "Berlin"})"));
  EXPECT_FALSE(passes(f, R"({"city": "london"})"));
  EXPECT_FALSE(passes(f, R"({"town": "London"})"));
  EXPECT_FALSE(passes(f, R"({})"));
  EXPECT_FALSE(passes(f, R"({"city": null})"));
}

// match.prefix (Qdrant 1.19): a string value beginning with the prefix, byte by byte and case
// kept; an array's strings each; anything but a string never.
TEST(Filter, MatchPrefixComparesTheFirstBytesOfStrings) {
  const auto f = [](const std::string& prefix) {
    return json{{"must", {{{"key", "sku"}, {"match", {{"prefix", prefix}}}}}}}.dump();
  };
  EXPECT_TRUE(passes(f("AB"), R"({"sku": "AB-100"})"));
  EXPECT_TRUE(passes(f("AB-100"), R"({"sku": "AB-100"})"));  // the whole value
  EXPECT_FALSE(passes(f("AB-1000"), R"({"sku": "AB-100"})"));
  EXPECT_FALSE(passes(f("ab"), R"({"sku": "AB-100"})"));  // case kept
  EXPECT_FALSE(passes(f("B"), R"({"sku": "AB-100"})"));   // a prefix, not a substring
  EXPECT_TRUE(passes(f("AB"), R"({"sku": ["xy", "AB-2"]})"));
  EXPECT_FALSE(passes(f("AB"), R"({"sku": [["AB"]]})"));  // an array in an array is no string
  EXPECT_TRUE(passes(f(""), R"({"sku": ""})"));           // the empty prefix: any string
  EXPECT_FALSE(passes(f(""), R"({"sku": 5})"));
  EXPECT_FALSE(passes(f("1"), R"({"sku": 12})"));  // numbers are not strings
  EXPECT_FALSE(passes(f("t"), R"({"sku": true})"));
  EXPECT_FALSE(passes(f("{"), R"({"sku": {"a": 1}})"));
  EXPECT_FALSE(passes(f("AB"), R"({})"));
  EXPECT_TRUE(passes(f("Мир"), R"({"sku": "Мирный"})"));  // UTF-8 bytes
  const std::string long_value(40, 'x');  // past 16 bytes, on a packed payload as on a tree
  EXPECT_TRUE(passes(f(long_value.substr(0, 33)), json{{"sku", long_value}}.dump()));
  EXPECT_FALSE(passes(f(long_value.substr(0, 33) + "y"), json{{"sku", long_value}}.dump()));
  EXPECT_FALSE(passes(f("AB"), R"({"o": [{"sku": "ABC"}]})"));
  EXPECT_TRUE(passes(R"({"must": [{"key": "o[].sku", "match": {"prefix": "AB"}}]})",
                     R"({"o": [{"sku": "x"}, {"sku": "ABC"}]})"));
  EXPECT_TRUE(
      passes(R"({"must_not": [{"key": "sku", "match": {"prefix": "AB"}}]})", R"({"sku": "XY"})"));
}

// Qdrant's unindexed-field issue: each condition's key (a nested one in full) and the indexes
// that would serve it, inferred from the condition as Qdrant infers it.
TEST(Filter, IndexSuggestionsNameEachConditionsKeyAndTheIndexesThatServeIt) {
  const Filter f = Filter::parse(json::parse(R"({
    "must": [
      {"key": "city", "match": {"value": "London"}},
      {"key": "n", "match": {"value": 3}},
      {"key": "ok", "match": {"value": true}},
      {"key": "tags", "match": {"any": ["a", "b"]}},
      {"key": "ids", "match": {"except": [1, 2]}},
      {"key": "none", "match": {"any": []}},
      {"key": "body", "match": {"phrase": "quick fox"}},
      {"key": "sku", "match": {"prefix": "AB"}},
      {"key": "price", "range": {"gte": 1}},
      {"key": "at", "range": {"gte": "2024-01-01T00:00:00Z"}},
      {"key": "loc", "geo_radius": {"center": {"lon": 0, "lat": 0}, "radius": 10}},
      {"has_id": [1]},
      {"has_vector": "image"}
    ],
    "should": [{"is_empty": {"key": "a.\"b c\""}}, {"must_not": [{"key": "x[0].y", "values_count": {"gt": 1}}]}],
    "must_not": [{"nested": {"key": "diet", "filter": {"must": [{"key": "food", "match": {"text": "meat"}}]}}}]
  })"));
  std::vector<std::string> keys;
  std::map<std::string, json> schemas;
  for (const wp::engine::IndexSuggestion& s : f.index_suggestions()) {
    keys.push_back(s.key);
    schemas[s.key] = s.schemas;
  }
  EXPECT_EQ(keys,
            (std::vector<std::string>{"city", "n", "ok", "tags", "ids", "body", "sku", "price",
                                      "at", "loc", "a.\"b c\"", "x[0].y", "diet[].food"}));
  EXPECT_EQ(schemas["city"], json({"keyword"}));
  EXPECT_EQ(schemas["n"], json({"integer"}));
  EXPECT_EQ(schemas["ok"], json({"bool"}));
  EXPECT_EQ(schemas["tags"], json({"keyword"}));
  EXPECT_EQ(schemas["ids"], json({"integer"}));
  EXPECT_EQ(schemas["body"], json({"text"}));
  EXPECT_EQ(schemas["sku"], json::parse(R"([{"type": "keyword", "prefix": true}])"));
  EXPECT_EQ(schemas["price"], json({"float", "integer"}));
  EXPECT_EQ(schemas["at"], json({"datetime"}));
  EXPECT_EQ(schemas["loc"], json({"geo"}));
  EXPECT_EQ(schemas["x[0].y"].size(), 7u);  // any index
  EXPECT_EQ(schemas["diet[].food"], json({"text"}));
  EXPECT_TRUE(Filter().index_suggestions().empty());
}

// Keys and string values compared in place (short ones without a library call): equal only when
// every byte is, before, at and past the 16th, on a packed payload as on a tree.
TEST(Filter, MatchValueStringComparesEveryByteOfKeyAndValue) {
  EXPECT_TRUE(wp::engine::same_text("", ""));
  EXPECT_FALSE(wp::engine::same_text("a", ""));
  const std::string base = "abcdefghijklmnopqrstuvwxyz0123456789";  // 36 bytes
  for (size_t n : {1, 15, 16, 17, 36}) {
    const std::string a = base.substr(0, n);
    EXPECT_TRUE(wp::engine::same_text(a, std::string(a)));
    EXPECT_FALSE(wp::engine::same_text(a, base.substr(0, n - 1))) << n;
    for (size_t at : {size_t{0}, n / 2, n - 1}) {
      std::string b = a;
      b[at] = '#';
      EXPECT_FALSE(wp::engine::same_text(a, b)) << n << " bytes, differing at " << at;
    }
  }
  const json value = base;  // a long value, and a long key, differing past byte 16
  const std::string f = R"({"must": [{"key": "a_key_longer_than_sixteen", "match": {"value": )" +
                        value.dump() + "}}]}";
  EXPECT_TRUE(passes(f, R"({"a_key_longer_than_sixteen": )" + value.dump() + "}"));
  std::string other = base;
  other[30] = '!';
  EXPECT_FALSE(passes(f, R"({"a_key_longer_than_sixteen": )" + json(other).dump() + "}"));
  EXPECT_FALSE(passes(f, R"({"a_key_longer_than_sixteen_": )" + value.dump() + "}"));
  EXPECT_FALSE(passes(f, R"({"a_key_longer_than_sixteeN": )" + value.dump() + "}"));
}

// match.text: every word of the query among the words of a string value (case and punctuation
// ignored, any order); a word is a whole word, not a substring.
TEST(Filter, MatchTextTakesEveryWordOfTheQuery) {
  const std::string f = R"({"must": [{"key": "t", "match": {"text": "Hello, WORLD"}}]})";
  EXPECT_TRUE(passes(f, R"({"t": "hello world"})"));
  EXPECT_TRUE(passes(f, R"({"t": "World! Hello?"})"));
  EXPECT_TRUE(passes(f, R"({"t": "say hello to the world"})"));
  EXPECT_TRUE(passes(f, R"({"t": ["nothing", "the world says hello"]})"));
  EXPECT_FALSE(passes(f, R"({"t": "hello"})"));
  EXPECT_FALSE(passes(f, R"({"t": "hello worlds"})"));
  EXPECT_FALSE(passes(f, R"({"t": ["hello", "world"]})"));  // one value must hold them all
  EXPECT_FALSE(passes(f, R"({"t": 5})"));
  EXPECT_FALSE(passes(f, R"({})"));
  const std::string accents = R"({"must": [{"key": "t", "match": {"text": "café"}}]})";
  EXPECT_TRUE(passes(accents, R"({"t": "un café noir"})"));
  EXPECT_FALSE(passes(accents, R"({"t": "cafe"})"));
  EXPECT_EQ(wp::engine::text_tokens("A-b  a_B9 Ünï!"),
            (std::vector<std::string>{"a", "b", "b9", "Ünï"}));  // ASCII is lowercased
  EXPECT_TRUE(wp::engine::text_tokens(" ,.;").empty());
}

TEST(Filter, MatchValueIntegerAndBool) {
  const std::string count = R"({"must": [{"key": "count", "match": {"value": 3}}]})";
  EXPECT_TRUE(passes(count, R"({"count": 3})"));
  EXPECT_FALSE(passes(count, R"({"count": 4})"));
  const std::string negative = R"({"must": [{"key": "n", "match": {"value": -5}}]})";
  EXPECT_TRUE(passes(negative, R"({"n": -5})"));
  EXPECT_FALSE(passes(negative, R"({"n": 5})"));
  const std::string flag = R"({"must": [{"key": "ok", "match": {"value": true}}]})";
  EXPECT_TRUE(passes(flag, R"({"ok": true})"));
  EXPECT_FALSE(passes(flag, R"({"ok": false})"));
}

TEST(Filter, MatchValueDoesNotCoerceTypes) {
  EXPECT_FALSE(passes(R"({"must": [{"key": "a", "match": {"value": 1}}]})", R"({"a": "1"})"));
  EXPECT_FALSE(passes(R"({"must": [{"key": "a", "match": {"value": "1"}}]})", R"({"a": 1})"));
  EXPECT_FALSE(passes(R"({"must": [{"key": "a", "match": {"value": 3}}]})", R"({"a": 3.0})"));
  EXPECT_FALSE(passes(R"({"must": [{"key": "a", "match": {"value": true}}]})", R"({"a": 1})"));
  EXPECT_FALSE(passes(R"({"must": [{"key": "a", "match": {"value": 1}}]})", R"({"a": true})"));
  EXPECT_FALSE(passes(R"({"must": [{"key": "a", "match": {"value": "true"}}]})", R"({"a": true})"));
  // A payload integer beyond int64 equals no request integer.
  EXPECT_FALSE(passes(R"({"must": [{"key": "a", "match": {"value": 9223372036854775807}}]})",
                      R"({"a": 18446744073709551615})"));
  EXPECT_TRUE(passes(R"({"must": [{"key": "a", "match": {"value": 9223372036854775807}}]})",
                     R"({"a": 9223372036854775807})"));
}

TEST(Filter, MatchValueOnArrayPayload) {
  const std::string f = R"({"must": [{"key": "tags", "match": {"value": "b"}}]})";
  EXPECT_TRUE(passes(f, R"({"tags": ["a", "b"]})"));
  EXPECT_FALSE(passes(f, R"({"tags": ["a", "c"]})"));
  EXPECT_FALSE(passes(f, R"({"tags": []})"));
  EXPECT_FALSE(passes(f, R"({"tags": [["b"]]})"));  // arrays inside arrays are not flattened
  EXPECT_TRUE(passes(R"({"must": [{"key": "n", "match": {"value": 2}}]})", R"({"n": [1, 2, 3]})"));
}

TEST(Filter, MatchAny) {
  const std::string colors =
      R"({"must": [{"key": "color", "match": {"any": ["black", "yellow"]}}]})";
  EXPECT_TRUE(passes(colors, R"({"color": "black"})"));
  EXPECT_TRUE(passes(colors, R"({"color": "yellow"})"));
  EXPECT_FALSE(passes(colors, R"({"color": "red"})"));
  EXPECT_TRUE(passes(colors, R"({"color": ["black", "green"]})"));
  EXPECT_FALSE(passes(colors, R"({"color": ["red", "green"]})"));
  EXPECT_FALSE(passes(colors, R"({})"));
  EXPECT_FALSE(passes(colors, R"({"color": 1})"));

  const std::string ints = R"({"must": [{"key": "n", "match": {"any": [5, 1, 3]}}]})";
  EXPECT_TRUE(passes(ints, R"({"n": 3})"));
  EXPECT_FALSE(passes(ints, R"({"n": 2})"));
  EXPECT_FALSE(passes(ints, R"({"n": "3"})"));
  EXPECT_FALSE(passes(ints, R"({"n": 3.0})"));
  EXPECT_TRUE(passes(ints, R"({"n": [9, 5]})"));

  EXPECT_FALSE(passes(R"({"must": [{"key": "n", "match": {"any": []}}]})", R"({"n": "x"})"));
}

TEST(Filter, MatchExcept) {
  const std::string f = R"({"must": [{"key": "color", "match": {"except": ["black", "yellow"]}}]})";
  EXPECT_TRUE(passes(f, R"({"color": "red"})"));
  EXPECT_FALSE(passes(f, R"({"color": "black"})"));
  // Array payload: passes when some element is outside the list (Qdrant's guide).
  EXPECT_TRUE(passes(f, R"({"color": ["black", "green"]})"));
  EXPECT_FALSE(passes(f, R"({"color": ["black", "yellow"]})"));
  // No value: a missing key, null and [] never pass `except`.
  EXPECT_FALSE(passes(f, R"({})"));
  EXPECT_FALSE(passes(f, R"({"color": null})"));
  EXPECT_FALSE(passes(f, R"({"color": []})"));
  // A value of another type is not in the list, so it passes (as in Qdrant).
  EXPECT_TRUE(passes(f, R"({"color": 7})"));
  EXPECT_TRUE(passes(f, R"({"color": true})"));
  EXPECT_TRUE(passes(f, R"({"color": {"name": "black"}})"));

  const std::string ints = R"({"must": [{"key": "n", "match": {"except": [1, 2]}}]})";
  EXPECT_TRUE(passes(ints, R"({"n": 3})"));
  EXPECT_FALSE(passes(ints, R"({"n": 2})"));
  EXPECT_TRUE(passes(ints, R"({"n": 2.5})"));
  EXPECT_TRUE(passes(ints, R"({"n": "2"})"));
}

TEST(Filter, Range) {
  const std::string f = R"({"must": [{"key": "price", "range": {"gte": 10, "lt": 20}}]})";
  EXPECT_TRUE(passes(f, R"({"price": 10})"));
  EXPECT_TRUE(passes(f, R"({"price": 19.99})"));
  EXPECT_FALSE(passes(f, R"({"price": 20})"));
  EXPECT_FALSE(passes(f, R"({"price": 9.5})"));
  EXPECT_FALSE(passes(f, R"({"price": "15"})"));
  EXPECT_FALSE(passes(f, R"({"price": true})"));
  EXPECT_FALSE(passes(f, R"({"price": null})"));
  EXPECT_FALSE(passes(f, R"({})"));
  EXPECT_TRUE(passes(f, R"({"price": [1, 15, 100]})"));
  EXPECT_FALSE(passes(f, R"({"price": [1, 100]})"));

  const std::string open = R"({"must": [{"key": "x", "range": {"gt": 1.5, "lte": 3}}]})";
  EXPECT_FALSE(passes(open, R"({"x": 1.5})"));
  EXPECT_TRUE(passes(open, R"({"x": 1.5000001})"));
  EXPECT_TRUE(passes(open, R"({"x": 3})"));
  EXPECT_FALSE(passes(open, R"({"x": 3.0001})"));
  EXPECT_TRUE(passes(R"({"must": [{"key": "x", "range": {"lt": 0}}]})", R"({"x": -4})"));
  EXPECT_TRUE(passes(R"({"must": [{"key": "x", "range": {"gte": 1e19}}]})",
                     R"({"x": 18446744073709551615})"));
  // A null bound is an absent bound.
  EXPECT_TRUE(passes(R"({"must": [{"key": "x", "range": {"gt": null, "lt": 5}}]})", R"({"x": 1})"));
}

TEST(Filter, HasIdNumbersAndUuids) {
  const std::string f = std::string(R"({"must": [{"has_id": [1, 42, ")") + kUuid + R"("]}]})";
  EXPECT_TRUE(passes(f, "{}", PointId::number(42)));
  EXPECT_TRUE(passes(f, "{}", PointId::number(1)));
  EXPECT_FALSE(passes(f, "{}", PointId::number(2)));
  EXPECT_TRUE(passes(f, "{}", PointId::uuid(kUuid)));
  EXPECT_FALSE(passes(f, "{}", PointId::uuid("00000000-0000-0000-0000-000000000001")));
  // UUIDs compare case-insensitively (both sides are stored lower-case).
  EXPECT_TRUE(passes(R"({"must": [{"has_id": ["5C56C793-69F3-4FBF-87E6-C4BF54C28C26"]}]})", "{}",
                     PointId::uuid(kUuid)));
  EXPECT_FALSE(passes(R"({"must": [{"has_id": []}]})", "{}", PointId::number(1)));
  EXPECT_TRUE(passes(R"({"must_not": [{"has_id": [1, 2, 3]}]})", "{}", PointId::number(10)));
  EXPECT_FALSE(passes(R"({"must_not": [{"has_id": [1, 2, 3]}]})", "{}", PointId::number(2)));
}

/// A point's vectors, as a collection tells a filter which it holds, and how its text
/// indexes read texts (`text` for every key).
class Holding final : public wp::engine::PointFacts {
 public:
  explicit Holding(std::set<std::string> names, wp::engine::TextParams text = {})
      : names_(std::move(names)), text_(text) {}
  bool holds(std::string_view name) const override { return names_.count(std::string(name)); }
  const wp::engine::TextParams* text_params(std::string_view) const override { return &text_; }

 private:
  std::set<std::string> names_;
  wp::engine::TextParams text_;
};

namespace {

/// Whether match `kind` ("text", "text_any" or "phrase") of `query` on key "t" holds for a point
/// whose "t" is `value`, the key's text index reading texts as `params` (the JSON tree and the
/// packed payload must agree).
bool text_match(const char* kind, const wp::engine::TextParams& params, const std::string& query,
                const json& value) {
  const Filter f = Filter::parse(json{{"must", {{{"key", "t"}, {"match", {{kind, query}}}}}}});
  const Holding facts({}, params);
  const json payload{{"t", value}};
  const bool tree = f.matches(PointId::number(1), payload, &facts);
  EXPECT_EQ(f.matches(PointId::number(1), wp::engine::PackedPayload(payload), &facts), tree)
      << kind << " " << query;
  return tree;
}

}  // namespace

// Qdrant's tokenizers (lib/segment/src/index/field_index/full_text_index/tokenizers): what a
// text index of each holds for a text and looks for in a query, and what match.text then
// matches, tested point by point as a collection tells the filter how the key's index reads
// texts.
TEST(Filter, MatchTextReadsTextsAsTheKeysTextIndexDoes) {
  using wp::engine::query_tokens;
  using wp::engine::text_tokens;
  using wp::engine::TextParams;
  using Tokens = std::vector<std::string>;
  using T = TextParams::Tokenizer;
  const TextParams word{}, cased{0, UINT32_MAX, T::kWord, false};
  const TextParams spaced{0, UINT32_MAX, T::kWhitespace, true};
  const TextParams prefix{0, UINT32_MAX, T::kPrefix, true}, prefix_2_4{2, 4, T::kPrefix, true};
  // White space is Unicode's: a no-break space (U+00A0), an ideographic one (U+3000); an en
  // dash (U+2013) is none, but splits words as punctuation, as curly quotes do.
  const std::string text = "Hello, World!\u00A0foo-bar\u3000x\u2013y \t";
  EXPECT_EQ(text_tokens(text, spaced), (Tokens{"foo-bar", "hello,", "world!", "x\u2013y"}));
  EXPECT_EQ(text_tokens(text, word), (Tokens{"bar", "foo", "hello", "world", "x", "y"}));
  EXPECT_EQ(text_tokens("\u201CNaïve\u201D caf\u00E9\u2026 \u00BFqu\u00E9? 1\u00BD\u00B5m", word),
            (Tokens{"1\u00BD\u00B5m", "café", "naïve", "qué"}));
  EXPECT_EQ(text_tokens("fox\U0001F98Atail \xF0\x9F", word), (Tokens{"fox", "tail", "\xF0\x9F"}));
  EXPECT_EQ(text_tokens("Hello hello", cased), (Tokens{"Hello", "hello"}));
  EXPECT_EQ(text_tokens("Hello you", prefix),
            (Tokens{"h", "he", "hel", "hell", "hello", "y", "yo", "you"}));
  // Words of 2 characters or more, with their prefixes of 2 to 4 (Мир: 3 letters, 6 bytes).
  EXPECT_EQ(text_tokens("Hello a Мирный", prefix_2_4),
            (Tokens{"he", "hel", "hell", "Ми", "Мир", "Мирн"}));
  // A query's words are cut to 4 characters, not left out; one shorter than 2 is.
  EXPECT_EQ(query_tokens("Helloworld a yo", prefix_2_4), (Tokens{"hell", "yo"}));
  EXPECT_EQ(query_tokens("Helloworld a yo", TextParams{2, 4}), (Tokens{"yo"}));
  EXPECT_EQ(query_tokens("Hello, World", spaced), (Tokens{"hello,", "world"}));

  // match.text on a key whose index reads texts as `params`.
  const auto holds = [](const TextParams& params, const std::string& query, const json& value) {
    return text_match("text", params, query, value);
  };
  EXPECT_TRUE(holds(word, "fox", "The Fox"));
  EXPECT_FALSE(holds(cased, "fox", "The Fox"));
  EXPECT_TRUE(holds(cased, "Fox", "The Fox"));
  EXPECT_FALSE(holds(cased, "Fox the", "The Fox"));
  EXPECT_TRUE(holds(spaced, "FOO-bar", "foo-bar baz"));
  EXPECT_FALSE(holds(spaced, "foo", "foo-bar baz"));
  EXPECT_TRUE(holds(word, "foo", "foo-bar baz"));
  EXPECT_TRUE(holds(spaced, "baz", "foo-bar\u00A0baz"));
  EXPECT_FALSE(holds(spaced, "x", "x\u2013y"));
  EXPECT_TRUE(holds(word, "y x", "x\u2013y"));
  EXPECT_TRUE(holds(word, "fox", "\u201CFox\u201D"));
  EXPECT_TRUE(holds(prefix, "hel wor", "Hello world"));
  EXPECT_TRUE(holds(prefix, "hello world", "Hello world"));
  EXPECT_FALSE(holds(prefix, "help", "Hello world"));
  EXPECT_FALSE(holds(prefix, "ello", "Hello world"));  // a prefix, not a substring
  EXPECT_FALSE(holds(prefix, "hel wor", json::array({"Hello", "world"})));  // one value
  EXPECT_TRUE(holds(prefix_2_4, "hellish", "Hello"));                       // both cut to "hell"
  EXPECT_TRUE(holds(prefix_2_4, "a he", "Hello"));  // "a" is left out of the query
  EXPECT_FALSE(holds(prefix_2_4, "a", "a Hello"));  // and a query of no word matches none
  EXPECT_FALSE(holds(prefix_2_4, "h", "Hello"));
  EXPECT_TRUE(holds(prefix_2_4, "Мирные", "Мирный"));  // "Мирн" both
  EXPECT_FALSE(holds(TextParams{0, UINT32_MAX, T::kPrefix, false}, "hel", "Hello"));
  // A prefix index holds prefixes of up to 64 characters (a word's take the square of its
  // length), and cuts a query's words to as many.
  const std::string long_word(100, 'a');
  const std::vector<std::string> held = text_tokens(long_word, prefix);
  ASSERT_EQ(held.size(), 64u);
  EXPECT_EQ(held.back(), long_word.substr(0, 64));
  EXPECT_EQ(query_tokens(long_word + "b", prefix), (Tokens{long_word.substr(0, 64)}));
  EXPECT_TRUE(holds(prefix, long_word + "b", long_word + "c"));
  EXPECT_FALSE(holds(prefix, long_word.substr(0, 63) + "b", long_word));
  // text_any: one of the words; phrase: all of them, one after the other, in order.
  EXPECT_TRUE(text_match("text_any", word, "cat, FOX", "The Fox"));
  EXPECT_FALSE(text_match("text_any", word, "cat dog", "The Fox"));
  EXPECT_FALSE(text_match("text_any", word, "!?", "The Fox"));
  EXPECT_TRUE(text_match("text_any", prefix_2_4, "a ca th", "The Fox"));  // "a": too short
  EXPECT_TRUE(text_match("text_any", word, "dog fox", json::array({"a cat", "a fox"})));
  EXPECT_TRUE(text_match("phrase", word, "quick, brown", "The quick brown fox"));
  EXPECT_FALSE(text_match("phrase", word, "brown quick", "The quick brown fox"));
  EXPECT_FALSE(text_match("phrase", word, "quick fox", "The quick brown fox"));
  EXPECT_TRUE(text_match("phrase", word, "fox the", "the fox the end"));
  EXPECT_TRUE(text_match("phrase", word, "a a", "a b a a"));
  EXPECT_FALSE(text_match("phrase", word, "a a", "a b a"));
  EXPECT_FALSE(text_match("phrase", word, "quick brown", json::array({"The quick", "brown fox"})));
  EXPECT_TRUE(text_match("phrase", prefix, "qui bro", "The quick brown fox"));
  EXPECT_TRUE(text_match("phrase", spaced, "brown, fox", "The quick brown, fox"));
  EXPECT_FALSE(text_match("phrase", spaced, "brown fox", "The quick brown, fox"));
  // Words the index does not keep are not in the phrase's sequence, nor in the value's.
  EXPECT_TRUE(text_match("phrase", TextParams{3, UINT32_MAX}, "cat a dog", "cat of a dog"));
  EXPECT_FALSE(text_match("phrase", TextParams{3, UINT32_MAX}, "a of", "cat of a dog"));
  // A query of more than 64 words is compared as sorted words: the same answers.
  std::string many;
  for (int i = 0; i < 70; ++i) many += "w" + std::to_string(i) + "xyz ";
  EXPECT_TRUE(holds(prefix, many, many + "more"));
  EXPECT_TRUE(holds(prefix_2_4, many + "ab", many + "abc"));
  EXPECT_FALSE(holds(prefix_2_4, many + "abd", many + "abc"));
  EXPECT_TRUE(holds(spaced, many + "a-b", many + "a-b"));
  EXPECT_FALSE(holds(spaced, many + "a", many + "a-b"));
  EXPECT_TRUE(text_match("text_any", prefix_2_4, many + "zz", "zzz"));
  EXPECT_FALSE(text_match("text_any", prefix_2_4, many + "zz", "z"));
  EXPECT_TRUE(text_match("phrase", word, many + "end", "say " + many + "end"));
  EXPECT_FALSE(text_match("phrase", word, many + "end", many + "the end"));
}

// Qdrant's stopwords and Snowball stemmer (libstemmer's): words left out, each word held (and
// looked for) as its stem, as Qdrant's TokensProcessor: lowercase, stopword, stem, length.
TEST(Filter, MatchTextLeavesOutStopwordsAndComparesStems) {
  using wp::engine::TextParams;
  using Tokens = std::vector<std::string>;
  auto params_of = [](const json& schema) {
    TextParams p;
    wp::engine::parse_payload_schema(schema, "field_schema", &p);
    return p;
  };
  const json snowball{{"type", "snowball"}, {"language", "english"}};
  const TextParams english =
      params_of({{"type", "text"}, {"stopwords", "english"}, {"stemmer", snowball}});
  ASSERT_TRUE(english.rules);
  EXPECT_FALSE(english.is_default());
  EXPECT_EQ(wp::engine::text_tokens("The runners were Running quickly", english),
            (Tokens{"quick", "run", "runner"}));
  EXPECT_EQ(wp::engine::held_words("The runners were Running quickly", english, false),
            (Tokens{"runner", "run", "quick"}));
  const std::string runners = "The runners were running quickly";
  EXPECT_TRUE(text_match("text", english, "runs", runners));
  EXPECT_TRUE(text_match("text", english, "the RUNNER", runners));  // "the" is left out
  EXPECT_FALSE(text_match("text", english, "the", runners));        // and nothing is left
  EXPECT_FALSE(text_match("text", english, "walks", runners));
  EXPECT_TRUE(text_match("text_any", english, "walks quickly", runners));
  EXPECT_TRUE(text_match("phrase", english, "were running quick", "They were running quickly"));
  EXPECT_FALSE(text_match("phrase", english, "quick running", "They were running quickly"));
  EXPECT_FALSE(text_match("text", TextParams{}, "runs", runners));  // no stemmer: words as they are
  // Custom stopwords, compared as the index's words are: with lowercase false, case counts.
  const TextParams custom = params_of(
      {{"type", "text"}, {"lowercase", false}, {"stopwords", {{"custom", {"Foo", "bar"}}}}});
  EXPECT_EQ(wp::engine::text_tokens("Foo foo bar Bar", custom), (Tokens{"Bar", "foo"}));
  const TextParams custom_lower = params_of(
      {{"type", "text"}, {"stopwords", {{"languages", {"english"}}, {"custom", {"Foo"}}}}});
  EXPECT_EQ(wp::engine::text_tokens("Foo foo the Zed", custom_lower), (Tokens{"zed"}));
  // A prefix index's query keeps its stopwords: "the" may begin a longer word.
  const TextParams prefix =
      params_of({{"type", "text"}, {"tokenizer", "prefix"}, {"stopwords", "english"}});
  EXPECT_TRUE(text_match("text", prefix, "the", "theory"));
  EXPECT_FALSE(text_match("text", prefix, "the", "the cat"));
  // Bad stopwords and stemmers are refused, naming the field.
  for (const auto& [schema, mentions] : std::vector<std::pair<json, std::string>>{
           {{{"type", "text"}, {"stopwords", "french"}}, "field_schema.stopwords: only"},
           {{{"type", "text"}, {"stopwords", {{"languages", {"english", 3}}}}},
            "field_schema.stopwords.languages[1]"},
           {{{"type", "text"}, {"stopwords", {{"custom", "a"}}}},
            "field_schema.stopwords.custom: expected an array"},
           {{{"type", "text"}, {"stopwords", {{"words", {"a"}}}}},
            "field_schema.stopwords.words: unknown option"},
           {{{"type", "text"}, {"stemmer", "english"}}, "field_schema.stemmer: expected"},
           {{{"type", "text"}, {"stemmer", {{"type", "porter"}}}}, "field_schema.stemmer.type"},
           {{{"type", "text"}, {"stemmer", {{"type", "snowball"}, {"language", "klingon"}}}},
            "field_schema.stemmer.language: expected one of"},
           {{{"type", "text"}, {"stemmer", {{"type", "snowball"}}}},
            "field_schema.stemmer.language"},
       }) {
    try {
      params_of(schema);
      ADD_FAILURE() << "accepted " << schema.dump();
    } catch (const wp::UserError& e) {
      EXPECT_NE(std::string(e.what()).find(mentions), std::string::npos)
          << schema.dump() << " -> " << e.what();
    }
  }
  EXPECT_FALSE(params_of({{"type", "text"}, {"stemmer", {{"type", "none"}}}}).rules);

  // ascii_folding: Latin letters with marks, ligatures and fullwidth forms written as ASCII,
  // before lowercasing and the stopwords (Qdrant's order).
  EXPECT_EQ(wp::engine::fold_to_ascii("Ação Straße Œuvre Ｆｕｌｌ ĳ Łódź Việt ﬁ 東京"),
            "Acao Strasse OEuvre Full ij Lodz Viet ﬁ 東京");
  EXPECT_EQ(wp::engine::fold_to_ascii("\xC3 \xE2\x82"), "\xC3 \xE2\x82");  // cut short: kept
  const TextParams folded =
      params_of({{"type", "text"}, {"ascii_folding", true}, {"stopwords", {{"custom", {"cafe"}}}}});
  EXPECT_EQ(wp::engine::text_tokens("Crème Brûlée au Café", folded),
            (Tokens{"au", "brulee", "creme"}));
  EXPECT_TRUE(text_match("text", folded, "creme BRULEE", "Crème Brûlée"));
  EXPECT_TRUE(text_match("phrase", folded, "crème brûlée", "Crème Brûlée"));
  EXPECT_FALSE(text_match("text", folded, "café", "Crème au café"));  // a stopword, folded
  EXPECT_FALSE(text_match("text", TextParams{}, "creme", "Crème Brûlée"));
  EXPECT_EQ(wp::engine::payload_schema_json(wp::engine::PayloadSchema::kText, folded),
            json({{"type", "text"},
                  {"tokenizer", "word"},
                  {"lowercase", true},
                  {"ascii_folding", true},
                  {"stopwords", {{"custom", {"cafe"}}}}}));
}

TEST(Filter, HasVectorAsksWhichVectorsThePointHolds) {
  const PointId id = PointId::number(1);
  const json payload = {{"a", 1}};
  const Holding image({"image"}), both({"image", "text"}), unnamed({""});
  auto holds = [&](const std::string& filter, const Holding* vectors) {
    const Filter f = Filter::parse(json::parse(filter));
    const bool tree = f.matches(id, payload, vectors);
    EXPECT_EQ(f.matches(id, wp::engine::PackedPayload(payload), vectors), tree) << filter;
    return tree;
  };
  const std::string text = R"({"must": [{"has_vector": "text"}]})";
  EXPECT_FALSE(holds(text, &image));
  EXPECT_TRUE(holds(text, &both));
  EXPECT_FALSE(holds(text, nullptr));  // a point told of no vectors holds none
  EXPECT_TRUE(holds(R"({"must_not": [{"has_vector": "text"}]})", &image));
  EXPECT_TRUE(holds(R"({"must": {"has_vector": ""}})", &unnamed));
  EXPECT_FALSE(holds(R"({"must": {"has_vector": ""}})", &both));
  // Beside payload conditions and inside a nested filter object (not a nested condition).
  EXPECT_TRUE(holds(R"({"should": [{"has_vector": "audio"}, {"must": [{"has_vector": "image"},
                       {"key": "a", "match": {"value": 1}}]}]})",
                    &image));
  EXPECT_FALSE(
      holds(R"({"must": [{"has_vector": "image"}, {"key": "a", "match": {"value": 2}}]})", &image));
}

TEST(Filter, IsEmpty) {
  const std::string f = R"({"must": [{"is_empty": {"key": "tags"}}]})";
  EXPECT_TRUE(passes(f, R"({})"));
  EXPECT_TRUE(passes(f, R"({"tags": null})"));
  EXPECT_TRUE(passes(f, R"({"tags": []})"));
  EXPECT_FALSE(passes(f, R"({"tags": [null]})"));
  EXPECT_FALSE(passes(f, R"({"tags": ["a"]})"));
  EXPECT_FALSE(passes(f, R"({"tags": 0})"));
  EXPECT_FALSE(passes(f, R"({"tags": ""})"));
  EXPECT_FALSE(passes(f, R"({"tags": {}})"));
  // Several values: empty only when every one is.
  const std::string each = R"({"must": [{"is_empty": {"key": "a[].b"}}]})";
  EXPECT_TRUE(passes(each, R"({"a": [{"b": []}, {"b": null}, {"c": 1}]})"));
  EXPECT_FALSE(passes(each, R"({"a": [{"b": []}, {"b": 1}]})"));
}

TEST(Filter, IsNull) {
  const std::string f = R"({"must": [{"is_null": {"key": "tags"}}]})";
  EXPECT_TRUE(passes(f, R"({"tags": null})"));
  EXPECT_FALSE(passes(f, R"({})"));
  EXPECT_FALSE(passes(f, R"({"tags": []})"));
  EXPECT_FALSE(passes(f, R"({"tags": [null]})"));
  EXPECT_FALSE(passes(f, R"({"tags": 0})"));
  const std::string each = R"({"must": [{"is_null": {"key": "a[].b"}}]})";
  EXPECT_TRUE(passes(each, R"({"a": [{"b": 1}, {"b": null}]})"));
  EXPECT_FALSE(passes(each, R"({"a": [{"b": 1}, {"b": 2}]})"));
}

TEST(Filter, DottedPathsAndArrayWalking) {
  const json germany = json::parse(R"({"country": {"name": "Germany", "cities": [
      {"name": "Berlin", "population": 3.7, "sightseeing": ["Brandenburg Gate", "Reichstag"]},
      {"name": "Munich", "population": 1.5, "sightseeing": ["Marienplatz", "Olympiapark"]}]}})");
  const json japan = json::parse(R"({"country": {"name": "Japan", "cities": [
      {"name": "Tokyo", "population": 9.3, "sightseeing": ["Tokyo Tower", "Tokyo Skytree"]},
      {"name": "Osaka", "population": 2.7, "sightseeing": ["Osaka Castle"]}]}})");
  const std::vector<json> points = {germany, japan};

  EXPECT_EQ(
      select(R"({"should": [{"key": "country.name", "match": {"value": "Germany"}}]})", points),
      (std::set<uint64_t>{1}));
  EXPECT_EQ(select(R"({"should": [{"key": "country.cities[].population", "range": {"gte": 9.0}}]})",
                   points),
            (std::set<uint64_t>{2}));
  EXPECT_EQ(select(R"({"must": [{"key": "country.cities[].sightseeing",
                                 "match": {"value": "Osaka Castle"}}]})",
                   points),
            (std::set<uint64_t>{2}));
  EXPECT_EQ(select(R"({"must": [{"key": "country.cities[].sightseeing[]",
                                 "match": {"value": "Reichstag"}}]})",
                   points),
            (std::set<uint64_t>{1}));
  // Without "[]" a key does not descend into an array (Qdrant's JSON path rules).
  EXPECT_EQ(
      select(R"({"must": [{"key": "country.cities.name", "match": {"value": "Tokyo"}}]})", points),
      (std::set<uint64_t>{}));
  // An index picks one element.
  EXPECT_EQ(select(R"({"must": [{"key": "country.cities[1].name", "match": {"value": "Osaka"}}]})",
                   points),
            (std::set<uint64_t>{2}));
  EXPECT_EQ(select(R"({"must": [{"key": "country.cities[0].name", "match": {"value": "Osaka"}}]})",
                   points),
            (std::set<uint64_t>{}));
  EXPECT_EQ(select(R"({"must": [{"key": "country.cities[9].name", "match": {"value": "Osaka"}}]})",
                   points),
            (std::set<uint64_t>{}));
  // "[]" on a non-array and a key on a scalar yield nothing.
  EXPECT_FALSE(passes(R"({"must": [{"key": "a[]", "match": {"value": 1}}]})", R"({"a": 1})"));
  EXPECT_FALSE(passes(R"({"must": [{"key": "a.b", "match": {"value": 1}}]})", R"({"a": 1})"));
}

TEST(Filter, QuotedKeys) {
  // A key containing a dot is quoted; the unquoted form walks two objects instead.
  const std::string quoted = R"({"must": [{"key": "\"a.b\"", "match": {"value": 1}}]})";
  EXPECT_TRUE(passes(quoted, R"({"a.b": 1})"));
  EXPECT_FALSE(passes(quoted, R"({"a": {"b": 1}})"));
  const std::string dotted = R"({"must": [{"key": "a.b", "match": {"value": 1}}]})";
  EXPECT_TRUE(passes(dotted, R"({"a": {"b": 1}})"));
  EXPECT_FALSE(passes(dotted, R"({"a.b": 1})"));
  EXPECT_TRUE(passes(R"({"must": [{"key": "x.\"my key\"[]", "match": {"value": 2}}]})",
                     R"({"x": {"my key": [1, 2]}})"));
  EXPECT_TRUE(passes(R"({"must": [{"key": "größe", "match": {"value": 2}}]})", R"({"größe": 2})"));
}

TEST(Filter, MustShouldMustNotFromQdrantGuide) {
  const std::vector<json> points = city_points();
  EXPECT_EQ(select(R"({"must": [{"key": "city", "match": {"value": "London"}},
                                {"key": "color", "match": {"value": "red"}}]})",
                   points),
            (std::set<uint64_t>{2}));
  EXPECT_EQ(select(R"({"should": [{"key": "city", "match": {"value": "London"}},
                                  {"key": "color", "match": {"value": "red"}}]})",
                   points),
            (std::set<uint64_t>{1, 2, 3, 4}));
  EXPECT_EQ(select(R"({"must_not": [{"key": "city", "match": {"value": "London"}},
                                    {"key": "color", "match": {"value": "red"}}]})",
                   points),
            (std::set<uint64_t>{5, 6}));
  EXPECT_EQ(select(R"({"must": [{"key": "city", "match": {"value": "London"}}],
                       "must_not": [{"key": "color", "match": {"value": "red"}}]})",
                   points),
            (std::set<uint64_t>{1, 3}));
  EXPECT_EQ(select(R"({"must": [{"key": "city", "match": {"any": ["London", "Moscow"]}}],
                       "should": [{"key": "color", "match": {"value": "blue"}},
                                  {"key": "color", "match": {"value": "red"}}],
                       "must_not": [{"has_id": [3]}]})",
                   points),
            (std::set<uint64_t>{2, 6}));
}

TEST(Filter, NestedFilterConditions) {
  const std::vector<json> points = city_points();
  // NOT (London AND red)
  EXPECT_EQ(select(R"({"must_not": [{"must": [{"key": "city", "match": {"value": "London"}},
                                              {"key": "color", "match": {"value": "red"}}]}]})",
                   points),
            (std::set<uint64_t>{1, 3, 4, 5, 6}));
  // (London AND green) OR (Moscow AND blue)
  EXPECT_EQ(select(R"({"should": [
                         {"must": [{"key": "city", "match": {"value": "London"}},
                                   {"key": "color", "match": {"value": "green"}}]},
                         {"must": [{"key": "city", "match": {"value": "Moscow"}},
                                   {"key": "color", "match": {"value": "blue"}}]}]})",
                   points),
            (std::set<uint64_t>{1, 6}));
  // Three levels deep: NOT (red OR NOT London)  ==  London AND NOT red
  EXPECT_EQ(select(R"({"must_not": [{"should": [
                         {"key": "color", "match": {"value": "red"}},
                         {"must_not": [{"key": "city", "match": {"value": "London"}}]}]}]})",
                   points),
            (std::set<uint64_t>{1, 3}));
  // An empty nested filter holds.
  EXPECT_EQ(select(R"({"must": [{"must": []}]})", points), (std::set<uint64_t>{1, 2, 3, 4, 5, 6}));
}

TEST(Filter, SingleConditionObjectInsteadOfArray) {
  const std::vector<json> points = city_points();
  EXPECT_EQ(select(R"({"must": {"key": "city", "match": {"value": "Berlin"}}})", points),
            (std::set<uint64_t>{4}));
  EXPECT_EQ(select(R"({"must_not": {"key": "city", "match": {"value": "London"}}})", points),
            (std::set<uint64_t>{4, 5, 6}));
  EXPECT_EQ(select(R"({"should": {"has_id": [2, 5]}})", points), (std::set<uint64_t>{2, 5}));
}

TEST(Filter, MinShould) {
  const std::vector<json> points = city_points();
  EXPECT_EQ(select(R"({"min_should": {"min_count": 2, "conditions": [
                         {"key": "city", "match": {"value": "London"}},
                         {"key": "color", "match": {"value": "red"}},
                         {"has_id": [1, 4]}]}})",
                   points),
            (std::set<uint64_t>{1, 2, 4}));
  EXPECT_EQ(select(R"({"min_should": {"min_count": 0, "conditions": []}})", points),
            (std::set<uint64_t>{1, 2, 3, 4, 5, 6}));
  EXPECT_EQ(select(R"({"min_should": {"min_count": 1, "conditions": []}})", points),
            (std::set<uint64_t>{}));
}

TEST(Filter, NestedArrayCondition) {
  // Qdrant's `nested`: both conditions must hold for the same array element.
  const std::vector<json> points = {
      json::parse(
          R"({"diet": [{"food": "meat", "likes": false}, {"food": "leaves", "likes": true}]})"),
      json::parse(R"({"diet": [{"food": "meat", "likes": true}]})"),
      json::parse(R"({"diet": {"food": "meat", "likes": true}})")};
  const std::string nested = R"({"must": [{"nested": {"key": "diet", "filter": {"must": [
      {"key": "food", "match": {"value": "meat"}},
      {"key": "likes", "match": {"value": true}}]}}}]})";
  EXPECT_EQ(select(nested, points), (std::set<uint64_t>{2}));
  // The flat form matches each condition on any element, so point 1 passes too.
  EXPECT_EQ(select(R"({"must": [{"key": "diet[].food", "match": {"value": "meat"}},
                                {"key": "diet[].likes", "match": {"value": true}}]})",
                   points),
            (std::set<uint64_t>{1, 2}));
}

TEST(Filter, MovedFilterKeepsItsConditions) {
  Filter a = Filter::parse(json::parse(R"({"must": [{"has_id": [3]}]})"));
  Filter b = std::move(a);
  EXPECT_TRUE(b.matches(PointId::number(3), json::object()));
  EXPECT_FALSE(b.matches(PointId::number(4), json::object()));
  Filter c;
  c = std::move(b);
  EXPECT_FALSE(c.empty());
  EXPECT_FALSE(c.matches(PointId::number(4), json::object()));
}

TEST(Filter, WhereNamesTheRequestField) {
  try {
    Filter::parse(json::parse(R"({"must": [{"key": "a", "range": {"gt": "x"}}]})"),
                  "searches[2].filter");
    FAIL() << "expected wp::UserError";
  } catch (const wp::UserError& e) {
    EXPECT_NE(std::string(e.what()).find("searches[2].filter.must[0].range.gt"), std::string::npos)
        << e.what();
  }
}

TEST(Filter, MalformedFiltersNameTheField) {
  struct Case {
    const char* filter;
    const char* message;  ///< must occur in the error
  };
  const std::vector<Case> cases = {
      {R"(5)", "filter: expected a filter object"},
      {R"([])", "filter: expected a filter object"},
      {R"({"musts": []})", "filter.musts: unknown field"},
      {R"({"must": 3})", "filter.must: expected an array of conditions"},
      {R"({"must": "x"})", "filter.must: expected an array of conditions"},
      {R"({"should": [1]})", "filter.should[0]: expected a condition object"},
      {R"({"must": [{"has_id": [1]}, {"key": "a", "range": {"gt": "abc"}}]})",
       R"(filter.must[1].range.gt: expected an RFC 3339 datetime such as)"},
      {R"({"must": [{}]})", "filter.must[0]: a condition needs one of key+match, key+range"},
      {R"({"must": [{"foo": 1}]})", "filter.must[0]: a condition needs one of"},
      {R"({"must": [{"key": "a"}]})", "filter.must[0]: a condition needs one of"},
      {R"({"must": [{"key": 5, "match": {"value": 1}}]})",
       "filter.must[0].key: expected a key path"},
      {R"({"must": [{"key": "", "match": {"value": 1}}]})", "filter.must[0].key: invalid key path"},
      {R"({"must": [{"key": "a..b", "match": {"value": 1}}]})",
       "filter.must[0].key: invalid key path"},
      {R"({"must": [{"key": "a[x]", "match": {"value": 1}}]})",
       "filter.must[0].key: invalid key path"},
      {R"({"must": [{"key": "a[1", "match": {"value": 1}}]})",
       "filter.must[0].key: invalid key path"},
      {R"({"must": [{"key": "\"a", "match": {"value": 1}}]})", "unterminated quoted name"},
      {R"({"must": [{"key": "a b", "match": {"value": 1}}]})",
       "filter.must[0].key: invalid key path"},
      {R"({"must": [{"key": "a", "match": {"value": 1}, "range": {"gt": 1}}]})",
       "filter.must[0]: give either match or range"},
      {R"({"must": [{"key": "a", "match": {"value": 1}, "extra": 1}]})",
       "filter.must[0].extra: unsupported field"},
      {R"({"must": [{"key": "a", "match": {}}]})", "filter.must[0].match: expected one of value"},
      {R"({"must": [{"key": "a", "match": 1}]})", "filter.must[0].match: expected an object"},
      {R"({"must": [{"key": "a", "match": {"text": 5}}]})",
       "filter.must[0].match.text: expected a string"},
      {R"({"must": [{"key": "a", "match": {"prefix": 1}}]})",
       "filter.must[0].match.prefix: expected a string, got 1"},
      {R"({"must": [{"key": "a", "match": {"prefix": "x", "value": "x"}}]})",
       "filter.must[0].match: give exactly one of value, any, except, text, text_any, phrase or "
       "prefix"},
      {R"({"must": [{"key": "a", "match": {"prefixes": "x"}}]})",
       "filter.must[0].match.prefixes: unsupported match kind"},
      {R"({"must": [{"key": "a", "match": {"phrase": 3}}]})",
       "filter.must[0].match.phrase: expected a string"},
      {R"({"must": [{"key": "a", "match": {"text_any": ["x"]}}]})",
       "filter.must[0].match.text_any: expected a string"},
      {R"({"must": [{"key": "a", "match": {"value": 1, "any": [1]}}]})",
       "filter.must[0].match: give exactly one of value, any, except, text, text_any, phrase or "
       "prefix"},
      {R"({"must": [{"key": "a", "match": {"value": 1.5}}]})",
       "filter.must[0].match.value: expected a string, an integer or a bool, got 1.5"},
      {R"({"must": [{"key": "a", "match": {"value": null}}]})",
       "filter.must[0].match.value: expected a string, an integer or a bool"},
      {R"({"must": [{"key": "a", "match": {"value": [1]}}]})", "filter.must[0].match.value"},
      {R"({"must": [{"key": "a", "match": {"value": 18446744073709551615}}]})",
       "filter.must[0].match.value"},
      {R"({"must": [{"key": "a", "match": {"any": "red"}}]})",
       "filter.must[0].match.any: expected an array of strings or of integers"},
      {R"({"must": [{"key": "a", "match": {"any": ["red", 1]}}]})",
       "filter.must[0].match.any[1]: expected a string"},
      {R"({"must": [{"key": "a", "match": {"except": [1, "red"]}}]})",
       "filter.must[0].match.except[1]: expected an integer"},
      {R"({"must": [{"key": "a", "match": {"any": [true]}}]})",
       "filter.must[0].match.any[0]: expected an integer"},
      {R"({"must": [{"key": "a", "match": {"any": [1.5]}}]})", "filter.must[0].match.any[0]"},
      {R"({"must": [{"key": "a", "range": {}}]})",
       "filter.must[0].range: expected at least one of gt, gte, lt, lte"},
      {R"({"must": [{"key": "a", "range": {"gt": null}}]})",
       "filter.must[0].range: expected at least one of"},
      {R"({"must": [{"key": "a", "range": [1, 2]}]})", "filter.must[0].range: expected an object"},
      {R"({"must": [{"key": "a", "range": {"gt": 1, "between": 2}}]})",
       "filter.must[0].range.between: unknown bound"},
      {R"({"must": [{"key": "a", "range": {"gte": true}}]})",
       "filter.must[0].range.gte: expected a number or an RFC 3339 datetime, got true"},
      {R"({"must": [{"has_id": 5}]})", "filter.must[0].has_id: expected an array of point ids"},
      {R"({"must": [{"has_id": [1, -2]}]})", "filter.must[0].has_id[1]"},
      {R"({"must": [{"has_id": [1, "not-a-uuid"]}]})", "filter.must[0].has_id[1]"},
      {R"({"must": [{"has_id": [1.5]}]})", "filter.must[0].has_id[0]"},
      {R"({"must": [{"has_id": [1], "must": []}]})", "filter.must[0].must: unexpected field"},
      {R"({"must": [{"is_empty": "tags"}]})", "filter.must[0].is_empty: expected an object"},
      {R"({"must": [{"is_empty": {}}]})", "filter.must[0].is_empty.key: required"},
      {R"({"must": [{"is_empty": {"key": "a", "x": 1}}]})", "filter.must[0].is_empty.x"},
      {R"({"must": [{"is_null": {"key": 3}}]})", "filter.must[0].is_null.key: expected a key path"},
      {R"({"must": [{"must": [{"key": "a", "match": {"value": {}}}]}]})",
       "filter.must[0].must[0].match.value"},
      {R"({"should": [{"must_not": [{"is_null": {"key": "a..b"}}]}]})",
       "filter.should[0].must_not[0].is_null.key: invalid key path"},
      {R"({"must": [{"must": [], "oops": 1}]})", "filter.must[0].oops: unknown field"},
      {R"({"min_should": 3})", "filter.min_should: expected an object"},
      {R"({"min_should": {"conditions": []}})", "filter.min_should.min_count: required"},
      {R"({"min_should": {"min_count": 1}})", "filter.min_should.conditions: required"},
      {R"({"min_should": {"min_count": -1, "conditions": []}})",
       "filter.min_should.min_count: expected a non-negative integer"},
      {R"({"min_should": {"min_count": 1, "conditions": [{"key": "a"}]}})",
       "filter.min_should.conditions[0]: a condition needs one of"},
      {R"({"min_should": {"min_count": 1, "conditions": [], "x": 0}})",
       "filter.min_should.x: unknown field"},
      {R"({"must": [{"nested": {"key": "a"}}]})", "filter.must[0].nested.filter: required"},
      {R"({"must": [{"nested": {"key": "a", "filter": {"must": [{"has_id": [1]}]}}}]})",
       "filter.must[0].nested.filter.must[0].has_id: has_id is not supported inside a nested"},
      {R"({"must": [{"nested": {"key": "a", "filter": {"should": [{"has_vector": "v"}]}}}]})",
       "filter.must[0].nested.filter.should[0].has_vector: has_vector is not supported inside a "
       "nested"},
      {R"({"must": [{"has_vector": 5}]})",
       "filter.must[0].has_vector: expected a vector's name (a string), got 5"},
      {R"({"must": [{"has_vector": ["a"]}]})", "filter.must[0].has_vector: expected a vector's"},
      {R"({"must": [{"has_vector": "a", "key": "b"}]})", "filter.must[0]"},
      {R"({"must": [{"has_vector": "a", "is_null": {"key": "b"}}]})",
       "filter.must[0].is_null: unexpected field next to has_vector"},
      {R"({"must": [{"nested": {"key": "a", "filter": {"must": [{"key": "b", "range": {}}]}}}]})",
       "filter.must[0].nested.filter.must[0].range: expected at least one of"},
  };
  for (const Case& c : cases) {
    const json j = json::parse(c.filter);
    try {
      Filter::parse(j);
      ADD_FAILURE() << "accepted malformed filter " << c.filter;
    } catch (const wp::UserError& e) {
      EXPECT_NE(std::string(e.what()).find(c.message), std::string::npos)
          << "filter " << c.filter << "\n  error: " << e.what() << "\n  expected: " << c.message;
    } catch (const std::exception& e) {
      ADD_FAILURE() << "filter " << c.filter << " threw a non-UserError: " << e.what();
    }
  }
}

TEST(Filter, NonFiniteRangeBoundsAreRejected) {
  // json::parse refuses 1e400, but a filter built in code can carry inf or NaN.
  for (const double bad :
       {std::numeric_limits<double>::infinity(), -std::numeric_limits<double>::infinity(),
        std::numeric_limits<double>::quiet_NaN()}) {
    json f = json::parse(R"({"must": [{"key": "a", "range": {"gt": 0}}]})");
    f["must"][0]["range"]["lte"] = bad;
    try {
      Filter::parse(f);
      ADD_FAILURE() << "accepted a non-finite bound";
    } catch (const wp::UserError& e) {
      EXPECT_NE(std::string(e.what()).find("filter.must[0].range.lte: expected a finite number"),
                std::string::npos)
          << e.what();
    }
  }
}

TEST(Filter, DeepNestingIsRejectedNotCrashing) {
  json deep = json::object();
  for (int i = 0; i < 100000; ++i) {
    json outer = json::object();
    outer["must"] = json::array();
    outer["must"].push_back(std::move(deep));
    deep = std::move(outer);
  }
  EXPECT_THROW(Filter::parse(deep), wp::UserError);
  // A malformed condition whose offending value is deep: the message shows a bounded prefix.
  try {
    json bad = json::object();
    bad["bad"] = std::move(deep);
    json outer = json::object();
    outer["must"] = json::array();
    outer["must"].push_back(std::move(bad));
    Filter::parse(outer);
    FAIL() << "expected wp::UserError";
  } catch (const wp::UserError& e) {
    EXPECT_LT(std::string(e.what()).size(), 400u) << e.what();
  }
  std::string long_key = "a";
  for (int i = 0; i < 100000; ++i) long_key += "[]";
  EXPECT_THROW(Filter::parse(json::parse(R"({"must": [{"key": ")" + long_key +
                                         R"(", "match": {"value": 1}}]})")),
               wp::UserError);
}

/// A random JSON value built from filter-like pieces, so that parsing reaches deep branches.
json random_json(std::mt19937& rng, int depth) {
  static const std::vector<std::string> names = {
      "must",   "should", "must_not", "min_should", "conditions", "min_count",
      "key",    "match",  "range",    "value",      "any",        "except",
      "gt",     "lte",    "has_id",   "is_empty",   "is_null",    "nested",
      "filter", "a",      "a[].b",    "has_vector"};
  const int kind = static_cast<int>(rng() % (depth > 5 ? 6 : 8));
  switch (kind) {
    case 0:
      return nullptr;
    case 1:
      return static_cast<int64_t>(rng() % 7) - 2;
    case 2:
      return (rng() % 2) ? json(1.5) : json(true);
    case 3:
      return names[rng() % names.size()];
    case 4:
      return kUuid;
    case 5:
      return json(18446744073709551615ull);
    case 6: {
      json a = json::array();
      for (int n = static_cast<int>(rng() % 4); n > 0; --n)
        a.push_back(random_json(rng, depth + 1));
      return a;
    }
    default: {
      json o = json::object();
      for (int n = static_cast<int>(rng() % 4); n > 0; --n) {
        o[names[rng() % names.size()]] = random_json(rng, depth + 1);
      }
      return o;
    }
  }
}

TEST(Filter, RandomInputOnlyEverThrowsUserError) {
  std::mt19937 rng(12345);
  const json payloads[] = {json::object(),
                           json::parse(R"({"a": [{"b": 1}, {"b": null}], "key": "x"})")};
  int accepted = 0;
  for (int i = 0; i < 20000; ++i) {
    const json j = random_json(rng, 0);
    try {
      const Filter f = Filter::parse(j);
      ++accepted;
      for (const json& p : payloads) {
        matches_both(f, PointId::number(1), p);
        matches_both(f, PointId::uuid(kUuid), p);
      }
    } catch (const wp::UserError&) {
    } catch (const std::exception& e) {
      ADD_FAILURE() << "non-UserError for " << j.dump() << ": " << e.what();
      return;
    }
  }
  EXPECT_GT(accepted, 100);  // the generator reaches valid filters too, not only errors
}

// Issue 16: values_count, geo_radius, geo_bounding_box and datetime ranges (Qdrant's shapes).
TEST(Filter, ValuesCount) {
  const std::string two_plus = R"({"must":[{"key":"tags","values_count":{"gte":2}}]})";
  EXPECT_TRUE(passes(two_plus, R"({"tags":["a","b"]})"));
  EXPECT_FALSE(passes(two_plus, R"({"tags":["a"]})"));
  EXPECT_FALSE(passes(two_plus, R"({"tags":"a"})"));  // a single value counts one
  EXPECT_FALSE(passes(two_plus, R"({})"));
  EXPECT_TRUE(passes(R"({"must":[{"key":"tags","values_count":{"lt":1}}]})", R"({})"));
  EXPECT_TRUE(passes(R"({"must":[{"key":"a[].b","values_count":{"gt":2}}]})",
                     R"({"a":[{"b":[1,2]},{"b":3}]})"));
}

TEST(Filter, GeoRadiusAndBoundingBox) {
  // Berlin (13.405, 52.52); Potsdam is about 26.7 km away, Hamburg about 255 km.
  const std::string near_berlin =
      R"({"must":[{"key":"loc","geo_radius":{"center":{"lon":13.405,"lat":52.52},"radius":30000}}]})";
  EXPECT_TRUE(passes(near_berlin, R"({"loc":{"lon":13.0645,"lat":52.3906}})"));
  EXPECT_FALSE(passes(near_berlin, R"({"loc":{"lon":9.9937,"lat":53.5511}})"));
  EXPECT_TRUE(passes(near_berlin, R"({"loc":[{"lon":9.99,"lat":53.55},{"lon":13.4,"lat":52.5}]})"));
  EXPECT_FALSE(passes(near_berlin, R"({"loc":{"lon":"13.4","lat":52.5}})"));
  const std::string box =
      R"({"must":[{"key":"loc","geo_bounding_box":{"top_left":{"lon":13.0,"lat":53.0},"bottom_right":{"lon":14.0,"lat":52.0}}}]})";
  EXPECT_TRUE(passes(box, R"({"loc":{"lon":13.405,"lat":52.52}})"));
  EXPECT_FALSE(passes(box, R"({"loc":{"lon":9.99,"lat":53.55}})"));
  // A box across the antimeridian: 170 E .. 170 W.
  const std::string pacific =
      R"({"must":[{"key":"loc","geo_bounding_box":{"top_left":{"lon":170,"lat":10},"bottom_right":{"lon":-170,"lat":-10}}}]})";
  EXPECT_TRUE(passes(pacific, R"({"loc":{"lon":179.5,"lat":0}})"));
  EXPECT_TRUE(passes(pacific, R"({"loc":{"lon":-175,"lat":0}})"));
  EXPECT_FALSE(passes(pacific, R"({"loc":{"lon":0,"lat":0}})"));
}

// Qdrant's geo_polygon: inside the exterior ring, outside every hole, on no edge (the geo
// crate's Polygon::contains over lon and lat as plane coordinates).
TEST(Filter, GeoPolygonHoldsInsideTheExteriorAndOutsideItsHoles) {
  auto ring = [](std::vector<std::pair<double, double>> pts) {
    json points = json::array();
    for (const auto& [lon, lat] : pts) points.push_back({{"lon", lon}, {"lat", lat}});
    return json{{"points", points}};
  };
  auto polygon = [](const json& exterior, const json& interiors) {
    json body = {{"exterior", exterior}};
    if (!interiors.is_null()) body["interiors"] = interiors;
    return json{{"must", {{{"key", "loc"}, {"geo_polygon", body}}}}}.dump();
  };
  auto at = [](double lon, double lat) {
    return json{{"loc", {{"lon", lon}, {"lat", lat}}}}.dump();
  };
  const json square = ring({{0, 0}, {10, 0}, {10, 10}, {0, 10}, {0, 0}});
  const json hole = ring({{4, 4}, {6, 4}, {6, 6}, {4, 6}, {4, 4}});
  const std::string holed = polygon(square, json::array({hole}));
  EXPECT_TRUE(passes(holed, at(2, 2)));
  EXPECT_TRUE(passes(holed, at(9.999, 0.001)));
  EXPECT_FALSE(passes(holed, at(5, 5)));       // in the hole
  EXPECT_FALSE(passes(holed, at(4, 5)));       // on the hole's edge
  EXPECT_FALSE(passes(holed, at(10, 5)));      // on the exterior's edge
  EXPECT_FALSE(passes(holed, at(0, 0)));       // a vertex
  EXPECT_FALSE(passes(holed, at(11, 5)));      // outside
  EXPECT_FALSE(passes(holed, at(-0.001, 5)));  // outside, just
  EXPECT_TRUE(passes(polygon(square, nullptr), at(5, 5)));
  EXPECT_TRUE(passes(polygon(square, json::array()), at(5, 5)));
  // An array of points: any one inside.
  EXPECT_TRUE(passes(holed, R"({"loc": [{"lon": 50, "lat": 5}, {"lon": 1, "lat": 1}]})"));
  EXPECT_FALSE(passes(holed, R"({"loc": {"lon": 1, "lat": 1, "alt": 3}})"));  // not a geo point
  // A concave ring (an L): the notch is outside, its rays cross the ring twice more.
  const std::string ell =
      polygon(ring({{0, 0}, {6, 0}, {6, 2}, {2, 2}, {2, 6}, {0, 6}, {0, 0}}), nullptr);
  EXPECT_TRUE(passes(ell, at(1, 5)));
  EXPECT_TRUE(passes(ell, at(5, 1)));
  EXPECT_FALSE(passes(ell, at(4, 4)));
  EXPECT_FALSE(passes(ell, at(4, 2)));  // on the inner edge

  // Against a reference at random: a convex polygon (a regular 9-gon, counter-clockwise) holds
  // a point where it lies strictly left of every edge.
  std::vector<std::pair<double, double>> gon;
  for (int i = 0; i <= 9; ++i) {
    const double a = 2 * M_PI * (i % 9) / 9;
    gon.emplace_back(20 + 15 * std::cos(a), -10 + 15 * std::sin(a));
  }
  const Filter f = Filter::parse(json::parse(polygon(ring(gon), nullptr)));
  std::mt19937 rng(5);
  std::uniform_real_distribution<double> lon(0, 40), lat(-30, 10);
  int inside = 0;
  for (int n = 0; n < 2000; ++n) {
    const double x = lon(rng), y = lat(rng);
    bool want = true;
    for (size_t i = 0; i + 1 < gon.size(); ++i) {
      const auto [ax, ay] = gon[i];
      const auto [bx, by] = gon[i + 1];
      want = want && (bx - ax) * (y - ay) - (by - ay) * (x - ax) > 0;
    }
    inside += want;
    ASSERT_EQ(matches_both(f, PointId::number(1), json::parse(at(x, y))), want) << x << " " << y;
  }
  EXPECT_GT(inside, 500);
  EXPECT_LT(inside, 1500);
}

TEST(Filter, DatetimeRanges) {
  const std::string may =
      R"({"must":[{"key":"at","range":{"gte":"2024-05-01T00:00:00Z","lt":"2024-06-01"}}]})";
  EXPECT_TRUE(passes(may, R"({"at":"2024-05-01T00:00:00Z"})"));
  EXPECT_TRUE(passes(may, R"({"at":"2024-05-31 23:59:59.999"})"));
  EXPECT_TRUE(passes(may, R"({"at":"2024-06-01T01:30:00+02:00"})"));  // 2024-05-31T23:30Z
  EXPECT_FALSE(passes(may, R"({"at":"2024-06-01T00:00:00Z"})"));
  EXPECT_FALSE(passes(may, R"({"at":"2024-04-30T23:59:59-00:00"})"));
  EXPECT_FALSE(passes(may, R"({"at":"not a date"})"));
  EXPECT_FALSE(passes(may, R"({"at":1714521600})"));  // a number is not a datetime
  EXPECT_EQ(*wp::engine::parse_datetime("1970-01-01T00:00:01.5Z"), 1500000);
  EXPECT_EQ(*wp::engine::parse_datetime("2000-03-01"), 951868800LL * 1000000);
  for (const char* bad : {"2024-02-30", "2023-02-29", "2024-13-01", "2024-05-01T24:00",
                          "2024-05-01T10:00Zx", "2024-05-01T10:00:00.", "24-05-01"}) {
    EXPECT_FALSE(wp::engine::parse_datetime(bad)) << bad;
  }
  EXPECT_TRUE(wp::engine::parse_datetime("2024-02-29"));
}

TEST(Filter, NewConditionsNameTheFieldWhenMalformed) {
  const std::vector<std::pair<std::string, std::string>> cases{
      {R"({"must":[{"key":"t","values_count":{"most":1}}]})", "filter.must[0].values_count.most"},
      {R"({"must":[{"key":"t","values_count":{"gt":"2024-01-01"}}]})",
       "filter.must[0].values_count.gt"},
      {R"({"must":[{"key":"l","geo_radius":{"center":{"lon":200,"lat":0},"radius":1}}]})",
       "filter.must[0].geo_radius.center.lon"},
      {R"({"must":[{"key":"l","geo_radius":{"center":{"lon":0,"lat":0},"radius":-1}}]})",
       "filter.must[0].geo_radius.radius"},
      {R"({"must":[{"key":"l","geo_radius":{"center":{"lon":0,"lat":0}}}]})",
       "filter.must[0].geo_radius.radius"},
      {R"({"must":[{"key":"l","geo_bounding_box":{"top_left":{"lon":0,"lat":0},"bottom_right":{"lon":1,"lat":5}}}]})",
       "filter.must[0].geo_bounding_box"},
      {R"({"must":[{"key":"l","geo_bounding_box":{"top_left":{"lon":0,"lat":0}}}]})",
       "filter.must[0].geo_bounding_box.bottom_right"},
      {R"({"must":[{"key":"l","geo_polygon":{"exterior":{"points":[{"lon":0,"lat":0},{"lon":1,"lat":0},{"lon":0,"lat":0}]}}}]})",
       "filter.must[0].geo_polygon.exterior.points: a polygon's ring needs at least 4 points"},
      {R"({"must":[{"key":"l","geo_polygon":{"exterior":{"points":[{"lon":0,"lat":0},{"lon":1,"lat":0},{"lon":1,"lat":1},{"lon":0,"lat":1}]}}}]})",
       "filter.must[0].geo_polygon.exterior.points: the last point must be the first"},
      {R"({"must":[{"key":"l","geo_polygon":{"exterior":{"points":[{"lon":0,"lat":0},{"lon":1,"lat":0},{"lon":1,"lat":100},{"lon":0,"lat":0}]}}}]})",
       "filter.must[0].geo_polygon.exterior.points[2].lat"},
      {R"({"must":[{"key":"l","geo_polygon":{"interiors":[]}}]})",
       "filter.must[0].geo_polygon.exterior: required"},
      {R"({"must":[{"key":"l","geo_polygon":{"exterior":[]}}]})",
       "filter.must[0].geo_polygon.exterior: expected {\"points\""},
      {R"({"must":[{"key":"l","geo_polygon":{"exterior":{"points":[{"lon":0,"lat":0},{"lon":1,"lat":0},{"lon":1,"lat":1},{"lon":0,"lat":0}]},"interiors":[{"points":[]}]}}]})",
       "filter.must[0].geo_polygon.interiors[0].points: a polygon's ring needs at least 4"},
      {R"({"must":[{"key":"l","geo_polygon":{"exterior":{"points":[]},"holes":[]}}]})",
       "filter.must[0].geo_polygon.holes: unknown field"},
      {R"({"must":[{"key":"l","geo_polygon":{"exterior":{"points":[{"lon":0,"lat":0},{"lon":1,"lat":0},{"lon":1,"lat":1},{"lon":0,"lat":0}]},"interiors":{}}}]})",
       "filter.must[0].geo_polygon.interiors: expected an array of rings"},
      {R"({"must":[{"key":"at","range":{"gt":"yesterday"}}]})", "filter.must[0].range.gt"},
      {R"({"must":[{"key":"at","range":{"gt":"2024-01-01","lt":5}}]})", "filter.must[0].range"},
      {R"({"must":[{"key":"at","range":{"gt":1},"values_count":{"gt":1}}]})", "filter.must[0]"},
  };
  for (const auto& [filter, field] : cases) {
    try {
      Filter::parse(json::parse(filter));
      ADD_FAILURE() << "accepted " << filter;
    } catch (const wp::UserError& e) {
      EXPECT_NE(std::string(e.what()).find(field), std::string::npos)
          << filter << " -> " << e.what();
    }
  }
}

namespace {

/// A payload value for the packed reader: integers of every MessagePack width and sign, floats
/// that pack as float32 and as float64, strings of every length header, nulls, bools, arrays,
/// objects, geo points, datetimes.
json random_value(std::mt19937& rng, int depth) {
  static const json scalars[] = {0,
                                 7,
                                 127,
                                 128,
                                 255,
                                 256,
                                 40000,
                                 70000,
                                 3000000000u,
                                 1000000000000,
                                 std::numeric_limits<uint64_t>::max(),
                                 -1,
                                 -32,
                                 -33,
                                 -200,
                                 -40000,
                                 -3000000000LL,
                                 std::numeric_limits<int64_t>::min(),
                                 1.5,
                                 0.1,
                                 3.0,
                                 -2.25,
                                 1e300,
                                 "x",
                                 "red",
                                 "London",
                                 "",
                                 "2024-05-01T10:00:00Z",
                                 "the quick brown Fox",
                                 true,
                                 false,
                                 nullptr};
  const int kind = static_cast<int>(rng() % (depth >= 3 ? 4 : 7));
  if (kind <= 2) return scalars[rng() % std::size(scalars)];
  if (kind == 3) {
    const size_t lengths[] = {31, 32, 255, 256, 65535, 65536};
    return std::string(lengths[rng() % std::size(lengths)], static_cast<char>('a' + rng() % 3));
  }
  if (kind == 4) return json{{"lon", -180.0 + rng() % 360}, {"lat", -90.0 + rng() % 180}};
  if (kind == 5) {
    json a = json::array();
    for (size_t i = rng() % 20; i > 0; --i) a.push_back(random_value(rng, depth + 1));
    return a;
  }
  json o = json::object();
  for (size_t i = rng() % 18; i > 0; --i) {
    o[std::string(1, static_cast<char>('k' + rng() % 4))] = random_value(rng, depth + 1);
  }
  return o;
}

/// A valid filter over the keys random payloads have: every kind of condition, nested clauses.
json random_filter(std::mt19937& rng, int depth) {
  const char* keys[] = {"a", "b", "s", "k", "a[]", "a[1]", "o.k", "o.l[].k", "a[].m", "g"};
  const auto key = [&] { return keys[rng() % std::size(keys)]; };
  const json values[] = {7,
                         128,
                         40000,
                         -33,
                         -3000000000LL,
                         "x",
                         "red",
                         true,
                         false,
                         0,
                         std::string(32, 'a'),
                         std::string(256, 'b'),
                         std::string(65536, 'c')};
  json c;
  switch (rng() % (depth >= 2 ? 12 : 14)) {
    case 0:
      c = {{"key", key()}, {"match", {{"value", values[rng() % std::size(values)]}}}};
      break;
    case 1:
      c = {{"key", key()}, {"match", {{"any", {7, 128, -40000, 255}}}}};
      break;
    case 2:
      c = {{"key", key()}, {"match", {{"any", {"x", "red", ""}}}}};
      break;
    case 3:
      c = {{"key", key()}, {"match", {{"except", {"x", "London"}}}}};
      break;
    case 4:
      c = {{"key", key()}, {"range", {{"gte", -100}, {"lt", 1.6}}}};
      break;
    case 5:
      c = {{"key", key()}, {"range", {{"gt", 1e9}}}};
      break;
    case 6:
      c = {{"key", key()}, {"range", {{"gte", "2024-01-01"}}}};
      break;
    case 7:
      c = {{"key", key()}, {"values_count", {{"gte", 2}}}};
      break;
    case 8:
      c = {{"key", key()},
           {"geo_radius", {{"center", {{"lon", 10}, {"lat", 20}}}, {"radius", 5e6}}}};
      break;
    case 9:
      if (rng() % 2) {
        c = {{"key", key()},
             {"geo_bounding_box",
              {{"top_left", {{"lon", 100}, {"lat", 50}}},
               {"bottom_right", {{"lon", -100}, {"lat", -50}}}}}};
      } else {
        json ring = json::array();
        for (const auto& [lon, lat] : {std::pair<double, double>{-30, -30},
                                       {60, -20},
                                       {10, 0},
                                       {40, 70},
                                       {-20, 40},
                                       {-30, -30}}) {
          ring.push_back({{"lon", lon}, {"lat", lat}});
        }
        c = {{"key", key()}, {"geo_polygon", {{"exterior", {{"points", ring}}}}}};
      }
      break;
    case 10:
      c = {{rng() % 2 ? "is_empty" : "is_null", {{"key", key()}}}};
      break;
    case 11:
      c = {{"key", key()}, {"match", {{"text", rng() % 2 ? "quick fox" : "aaa"}}}};
      break;
    case 12:
      c = {{"nested",
            {{"key", rng() % 2 ? "a" : "o.l"}, {"filter", random_filter(rng, depth + 1)}}}};
      break;
    default:
      c = random_filter(rng, depth + 1);
      break;
  }
  const char* clauses[] = {"must", "should", "must_not"};
  json f = json::object();
  f[clauses[rng() % 3]] = json::array({c});
  if (rng() % 2) f[clauses[rng() % 3]].push_back(random_filter(rng, depth + 2));
  return f;
}

}  // namespace

// Filters read a collection's payloads in their packed bytes (MessagePack, read in place):
// every condition answers there as on the JSON tree, over values of every encoding width.
TEST(Filter, PackedPayloadsAnswerAsTheirJsonTrees) {
  std::mt19937 rng(2026);
  std::vector<json> payloads;
  for (int i = 0; i < 300; ++i) {
    json p = json::object();
    for (const char* k : {"a", "b", "s", "k", "o", "g"}) {
      if (rng() % 4) p[k] = random_value(rng, 0);
    }
    if (rng() % 3 == 0) p["o"] = {{"k", random_value(rng, 1)}, {"l", random_value(rng, 1)}};
    if (rng() % 3 == 0) p["g"] = {{"lon", 10.5}, {"lat", 20.25}};
    payloads.push_back(std::move(p));
  }
  std::vector<wp::engine::PackedPayload> packed(payloads.begin(), payloads.end());
  size_t pass = 0, fail = 0;
  for (int i = 0; i < 400; ++i) {
    const json text = random_filter(rng, 0);
    const Filter f = Filter::parse(text);
    for (size_t n = 0; n < payloads.size(); ++n) {
      const bool tree = f.matches(PointId::number(n), payloads[n]);
      ASSERT_EQ(f.matches(PointId::number(n), packed[n]), tree)
          << text.dump() << " on " << payloads[n].dump().substr(0, 2000);
      (tree ? pass : fail) += 1;
    }
  }
  // Neither answer dominates: the filters reach the values, one way and the other.
  std::cout << pass << " passed, " << fail << " failed\n";
  EXPECT_GT(pass, 20000u);
  EXPECT_GT(fail, 20000u);
}
