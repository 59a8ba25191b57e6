/**
 * @file filter.cpp
 * Qdrant payload filters compiled into a tree of condition nodes.
 *
 * Semantics follow Qdrant's condition checker (lib/segment/src/payload_storage/
 * condition_checker.rs and query_checker.rs); a key path resolves to zero or more values as
 * json_path.h describes:
 *  - match / range hold when any resolved value satisfies them; a resolved array is searched one
 *    level deep (an array inside that array is not flattened); no value at all never matches, not
 *    even `except`;
 *  - match.value compares without coercion: strings to strings, integers to integral payload
 *    numbers (3.0 is not 3), bools to bools; range compares any payload number as a double;
 *  - is_empty holds when every resolved value is null or [] (so also when the key is missing);
 *    is_null holds when some resolved value is null itself ([null] is not null);
 *  - Qdrant's `nested` condition ({"nested": {"key": "a", "filter": {...}}}) holds when one object
 *    element of array a passes the whole inner filter.
 * One deliberate difference: an empty `should` is no constraint, as filter.h documents (Qdrant
 * matches nothing there, qdrant/qdrant issue #554, closed as wontfix).
 * Key paths are split at parse time and lists are sorted, so matches() never allocates.
 */
#include "engine/filter.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <iterator>
#include <string_view>
#include <utility>

#include "engine/json_path.h"
#include "engine/json_value.h"
#include "engine/word_rules.h"
#include "index/error.h"

namespace wp::engine {

using json = nlohmann::json;

/// One node of the compiled condition tree; leaves are conditions, inner nodes are filters.
/// Both overloads of matches() answer alike: a payload as a JSON tree or as its packed bytes,
/// read in place (NodeOf writes both from one template).
struct Filter::Node {
  /// What a node tests of a point besides its payload: its id, and what its collection says of
  /// it (null: no vector, and no text index bounding words).
  struct Point {
    const PointId& id;
    const PointFacts* facts;
  };
  virtual ~Node() = default;
  /// True when the point passes this node; `payload` is the object key paths start from.
  virtual bool matches(const Point& p, const JsonRef& payload) const = 0;
  virtual bool matches(const Point& p, const MsgValue& payload) const = 0;
  /// A superset of the points this node holds for, from payload indexes (Filter::candidates);
  /// nullopt when no index narrows it.
  virtual std::optional<Candidates> candidates(const IndexLookup&) const { return std::nullopt; }
  /// Appends the indexes that would serve this node's conditions (Filter::index_suggestions),
  /// their keys after `prefix` (a nested condition's path, "a[].").
  virtual void suggest(const std::string& /*prefix*/, std::vector<IndexSuggestion>& /*out*/) const {
  }
};

namespace {

using NodePtr = std::unique_ptr<Filter::Node>;
using Point = Filter::Node::Point;

/// A node whose test is one template, `Derived::test(point, payload)`, over either view of a
/// payload (JsonRef, MsgValue): both virtual overloads of matches() call it.
template <typename Derived>
class NodeOf : public Filter::Node {
 public:
  bool matches(const Point& p, const JsonRef& payload) const final {
    return static_cast<const Derived&>(*this).test(p, payload);
  }
  bool matches(const Point& p, const MsgValue& payload) const final {
    return static_cast<const Derived&>(*this).test(p, payload);
  }
};

/// Deeper filters are rejected: they are never meant, and parse/match recurse once per level.
constexpr int kMaxDepth = 64;
/// The most points a geo_polygon's rings hold in all: a payload test walks every edge.
constexpr size_t kMaxPolygonPoints = 16384;

/// "where[i]": the place of element i of the array at `where`, for error messages.
std::string at_index(const std::string& where, size_t i) {
  return where + "[" + std::to_string(i) + "]";
}

/// The schemas any index would serve a condition with (values_count, is_empty, is_null).
std::vector<json> any_index() {
  return {"keyword", "integer", "float", "bool", "geo", "text", "datetime"};
}

// ---------------------------------------------------------------------------------------------
// Condition nodes

IdList intersect(const IdList& a, const IdList& b) {
  IdList out;
  std::set_intersection(a.begin(), a.end(), b.begin(), b.end(), std::back_inserter(out));
  return out;
}

/// The ids of both `a` and `b`, exact as `a` is (its caller sets that): a list is kept by the
/// other's test when that one is given by a test, and two tests make one.
Candidates intersect(const Candidates& a, const Candidates& b) {
  const IdTest* ta = a.test();
  const IdTest* tb = b.test();
  if (ta && tb) {
    IdTest both;
    both.contains = [x = ta->contains, y = tb->contains](uint32_t id) { return x(id) && y(id); };
    both.list = [list = ta->list, y = tb->contains] {
      IdList out = list();
      out.erase(std::remove_if(out.begin(), out.end(), [&](uint32_t id) { return !y(id); }),
                out.end());
      return out;
    };
    both.estimate = std::min(ta->estimate, tb->estimate);
    return Candidates::tested(std::move(both), a.exact);
  }
  if (ta || tb) {
    const IdTest& t = ta ? *ta : *tb;
    IdList out;
    for (const uint32_t id : (ta ? b : a).ids()) {
      if (t.contains(id)) out.push_back(id);
    }
    return Candidates(std::move(out), a.exact);
  }
  return Candidates(intersect(a.ids(), b.ids()), a.exact);
}

/// The points of `a` not among `b`'s (a must_not whose condition `b` gives exactly), listed.
Candidates subtract(const Candidates& a, const Candidates& b) {
  IdList out;
  if (const IdTest* tb = b.test()) {
    for (const uint32_t id : a.ids()) {
      if (!tb->contains(id)) out.push_back(id);
    }
  } else {
    std::set_difference(a.ids().begin(), a.ids().end(), b.ids().begin(), b.ids().end(),
                        std::back_inserter(out));
  }
  return Candidates(std::move(out), a.exact);
}

IdList unite(const IdList& a, const IdList& b) {
  IdList out;
  std::set_union(a.begin(), a.end(), b.begin(), b.end(), std::back_inserter(out));
  return out;
}

/// A condition on the values at one key path: `Derived::check(value)` on one value (an array
/// value's elements are passed one by one).
template <typename Derived>
class FieldNode : public NodeOf<Derived> {
 public:
  FieldNode(JsonPath path, std::string key) : path_(std::move(path)), key_(std::move(key)) {}

  template <typename V>
  bool test(const Point&, const V& payload) const {
    const auto& self = static_cast<const Derived&>(*this);
    return any_checked(payload, [&](const V& v) { return self.check(v); });
  }

  void suggest(const std::string& prefix, std::vector<IndexSuggestion>& out) const override {
    std::vector<json> schemas = static_cast<const Derived&>(*this).schemas();
    if (!schemas.empty()) out.push_back({prefix + key_, std::move(schemas)});
  }

 protected:
  /// Whether `check` holds for a value at the key (or an element of an array there).
  template <typename V, typename C>
  bool any_checked(const V& payload, const C& check) const {
    return any_value_at(path_, payload, [&](const V& v) {
      if (!v.is_array()) return check(v);
      return v.any_element([&](const V& e) { return check(e); });
    });
  }

  /// The key as the request gave it: payload indexes are named by it.
  const std::string& key() const { return key_; }

 private:
  JsonPath path_;
  std::string key_;
};

/// match.value: equality with one string, integer or bool, without type coercion.
class MatchValueNode : public FieldNode<MatchValueNode> {
 public:
  std::vector<json> schemas() const {
    return {type_ == Type::kString ? "keyword" : type_ == Type::kBool ? "bool" : "integer"};
  }
  enum class Type : uint8_t { kString, kInteger, kBool };
  MatchValueNode(JsonPath path, std::string key, const json& value)
      : FieldNode(std::move(path), std::move(key)) {
    if (value.is_string()) {
      type_ = Type::kString;
      str_ = value.get<std::string>();
    } else if (value.is_boolean()) {
      type_ = Type::kBool;
      bool_ = value.get<bool>();
    } else {
      type_ = Type::kInteger;
      json_as_int64(value, &int_);
    }
  }

  template <typename V>
  bool check(const V& v) const {
    switch (type_) {
      case Type::kString:
        return v.is_string() && same_text(v.string(), str_);
      case Type::kBool:
        return v.is_boolean() && v.boolean() == bool_;
      case Type::kInteger: {
        int64_t n = 0;
        return v.as_int64(&n) && n == int_;
      }
    }
    return false;
  }

  std::optional<Candidates> candidates(const IndexLookup& ix) const override {
    switch (type_) {
      case Type::kString:
        return ix.strings(key(), {str_});
      case Type::kBool:
        return ix.boolean(key(), bool_);
      case Type::kInteger:
        return ix.integers(key(), {int_});
    }
    return std::nullopt;
  }

 private:
  Type type_ = Type::kString;
  std::string str_;
  int64_t int_ = 0;
  bool bool_ = false;
};

/// match.prefix (Qdrant 1.19): a string value that begins with the prefix, byte by byte (case
/// kept, as match.value compares).
class MatchPrefixNode : public FieldNode<MatchPrefixNode> {
 public:
  std::vector<json> schemas() const { return {{{"type", "keyword"}, {"prefix", true}}}; }
  MatchPrefixNode(JsonPath path, std::string key, std::string prefix)
      : FieldNode(std::move(path), std::move(key)), prefix_(std::move(prefix)) {}

  template <typename V>
  bool check(const V& v) const {
    if (!v.is_string()) return false;
    const std::string_view s = v.string();
    return s.size() >= prefix_.size() && s.compare(0, prefix_.size(), prefix_) == 0;
  }

  std::optional<Candidates> candidates(const IndexLookup& ix) const override {
    return ix.prefix(key(), prefix_);
  }

 private:
  std::string prefix_;
};

/// A sorted list of strings or of integers, as given to match.any / match.except.
struct ValueSet {
  bool integers = false;  ///< true: `ints` holds the list; false: `strings` does
  std::vector<std::string> strings;
  std::vector<int64_t> ints;

  /// The index a match of the list needs: none for an empty list (it holds for no point, or
  /// excepts none, whatever the values).
  std::vector<json> schemas() const {
    if (strings.empty() && ints.empty()) return {};
    return {integers ? "integer" : "keyword"};
  }
  /// 1: `v` is of the list's type and in it; 0: of the list's type and not in it; -1: otherwise.
  template <typename V>
  int lookup(const V& v) const {
    if (integers) {
      int64_t n = 0;
      if (!v.as_int64(&n)) return -1;
      return std::binary_search(ints.begin(), ints.end(), n) ? 1 : 0;
    }
    if (!v.is_string()) return -1;
    return std::binary_search(strings.begin(), strings.end(), v.string()) ? 1 : 0;
  }
};

/// match.any: the value is one of the listed strings or integers.
class MatchAnyNode : public FieldNode<MatchAnyNode> {
 public:
  std::vector<json> schemas() const { return set_.schemas(); }
  MatchAnyNode(JsonPath path, std::string key, ValueSet set)
      : FieldNode(std::move(path), std::move(key)), set_(std::move(set)) {}
  std::optional<Candidates> candidates(const IndexLookup& ix) const override {
    return set_.integers ? ix.integers(key(), set_.ints) : ix.strings(key(), set_.strings);
  }

  template <typename V>
  bool check(const V& v) const {
    return set_.lookup(v) == 1;
  }

 private:
  ValueSet set_;
};

/// match.except: the value is present, not null and not one of the listed values. Values of
/// another type (a bool, an object, a float against integers) pass, as in Qdrant.
class MatchExceptNode : public FieldNode<MatchExceptNode> {
 public:
  std::vector<json> schemas() const { return set_.schemas(); }
  MatchExceptNode(JsonPath path, std::string key, ValueSet set)
      : FieldNode(std::move(path), std::move(key)), set_(std::move(set)) {}

  template <typename V>
  bool check(const V& v) const {
    return !v.is_null() && set_.lookup(v) != 1;
  }

 private:
  ValueSet set_;
};

/// range: a payload number within every given bound.
class RangeNode : public FieldNode<RangeNode> {
 public:
  std::vector<json> schemas() const { return {"float", "integer"}; }
  RangeNode(JsonPath path, std::string key, RangeBounds b)
      : FieldNode(std::move(path), std::move(key)), b_(b) {}
  std::optional<Candidates> candidates(const IndexLookup& ix) const override {
    return ix.range(key(), b_);
  }

  template <typename V>
  bool check(const V& v) const {
    return v.is_number() && b_.contains(v.number());
  }

 private:
  RangeBounds b_;
};

/// range with datetime bounds: a payload string in RFC 3339 within every given bound.
class DatetimeRangeNode : public FieldNode<DatetimeRangeNode> {
 public:
  std::vector<json> schemas() const { return {"datetime"}; }
  DatetimeRangeNode(JsonPath path, std::string key, RangeBounds b)
      : FieldNode(std::move(path), std::move(key)), b_(b) {}
  std::optional<Candidates> candidates(const IndexLookup& ix) const override {
    return ix.datetimes(key(), b_);
  }

  template <typename V>
  bool check(const V& v) const {
    if (!v.is_string()) return false;
    const std::optional<int64_t> t = parse_datetime(v.string());
    return t && b_.contains(static_cast<double>(*t));
  }

 private:
  RangeBounds b_;  ///< microseconds since the epoch
};

/// Unicode's White_Space beyond ASCII (as Rust's split_whitespace reads it).
bool is_wide_space(uint32_t c) {
  return c == 0x85 || c == 0xA0 || c == 0x1680 || (c >= 0x2000 && c <= 0x200A) || c == 0x2028 ||
         c == 0x2029 || c == 0x202F || c == 0x205F || c == 0x3000;
}

/// A character beyond ASCII that is neither a letter nor a digit and that the word tokenizer
/// splits at (Qdrant's splits at every one, by Unicode's tables; these are the ones common in
/// text): the C1 controls, white space, the punctuation and signs of Latin-1 (¡ « » ¿ × ÷ ...;
/// not ª µ º, the superscript digits or the fractions), the whole General Punctuation block
/// (dashes, curly quotes, …, zero-width and direction marks), the ideographic space, comma and
/// full stop, and the emoji and pictographs of U+1F000 to U+1FAFF.
bool is_wide_break(uint32_t c) {
  if (c < 0x80) return false;  // not a character utf8_character_at reads
  if (c <= 0xBF) {
    return c <= 0x9F || c == 0xBF ||
           (c < 0xBC && c != 0xAA && c != 0xB2 && c != 0xB3 && c != 0xB5 && c != 0xB9 && c != 0xBA);
  }
  return c == 0xD7 || c == 0xF7 || is_wide_space(c) || (c >= 0x2000 && c <= 0x206F) ||
         (c >= 0x3000 && c <= 0x3002) || (c >= 0x1F000 && c <= 0x1FAFF);
}

/// Calls fn(token) for each maximal run of characters in `text` that `breaks` does not split
/// at. `breaks(c)` is asked of each ASCII byte c and `wide(cp)` of each character of two to four
/// bytes (its code point); every other byte belongs to a token.
template <typename Ascii, typename Wide, typename F>
void for_each_run(std::string_view text, const Ascii& breaks, const Wide& wide, const F& fn) {
  size_t start = 0;
  for (size_t i = 0; i < text.size();) {
    const auto c = static_cast<unsigned char>(text[i]);
    size_t bytes = 1;
    const bool split = c < 0x80 ? breaks(c) : wide(utf8_character_at(text, i, &bytes));
    if (split) {
      if (i > start) fn(text.substr(start, i - start));
      start = i + bytes;
    }
    i += bytes;
  }
  if (start < text.size()) fn(text.substr(start));
}

/// Calls fn(word) for each word of `text` as the word tokenizer reads it, before lowercasing:
/// maximal runs of ASCII letters and digits and of the characters beyond ASCII that
/// is_wide_break does not split at.
template <typename F>
void for_each_word(std::string_view text, const F& fn) {
  for_each_run(
      text, [](unsigned char c) { return std::isalnum(c) == 0; }, is_wide_break, fn);
}

/// Calls fn(token) for each maximal run of anything but white space in `text`.
template <typename F>
void for_each_spaced(std::string_view text, const F& fn) {
  for_each_run(
      text, [](unsigned char c) { return std::isspace(c) != 0; }, is_wide_space, fn);
}

/// Calls fn(token) for each token of `text` as `tokenizer` splits it, before lowercasing (the
/// prefix tokenizer splits as the word one).
template <typename F>
void for_each_token(std::string_view text, TextParams::Tokenizer tokenizer, const F& fn) {
  if (tokenizer == TextParams::Tokenizer::kWhitespace) {
    for_each_spaced(text, fn);
  } else {
    for_each_word(text, fn);
  }
}

/// `token` with its ASCII letters lowercased when `lowercase`.
std::string cased(std::string_view token, bool lowercase) {
  return lowercase ? ascii_lowercased(token) : std::string(token);
}

/// Whether `word` (its ASCII letters lowercased when `lowercase`) is `token`.
bool same_word(std::string_view word, std::string_view token, bool lowercase) {
  if (word.size() != token.size()) return false;
  for (size_t i = 0; i < word.size(); ++i) {
    const auto c = static_cast<unsigned char>(word[i]);
    if ((lowercase && c < 0x80 ? static_cast<char>(std::tolower(c)) : word[i]) != token[i]) {
      return false;
    }
  }
  return true;
}

/// The number of bytes of the first `n` characters of `token` (all of it when shorter).
size_t first_characters(std::string_view token, uint32_t n) {
  uint32_t seen = 0;
  for (size_t i = 0; i < token.size(); ++i) {
    if ((static_cast<unsigned char>(token[i]) & 0xC0) == 0x80) continue;
    if (seen++ == n) return i;
  }
  return token.size();
}

/// Sorts `tokens` and drops those met before.
std::vector<std::string> sorted_once(std::vector<std::string> tokens) {
  std::sort(tokens.begin(), tokens.end());
  tokens.erase(std::unique(tokens.begin(), tokens.end()), tokens.end());
  return tokens;
}

/// match.text: a string value holding every word of the query (Qdrant's semantics with a
/// full-text index, here with or without one, so that an index never changes an answer);
/// match.text_any: one of them at least; match.phrase: all of them one after another, in the
/// query's order. Both the value and the query are read as the collection's text index of the key
/// reads them (its tokenizer, lowercase, min_token_len and max_token_len: query_tokens and
/// text_tokens; the default TextParams without one); a query left with no word matches nothing,
/// as Qdrant's index answers it.
class MatchTextNode : public FieldNode<MatchTextNode> {
 public:
  std::vector<json> schemas() const { return {"text"}; }
  MatchTextNode(JsonPath path, std::string key, std::string query, TextMatch how)
      : FieldNode(std::move(path), std::move(key)), query_(std::move(query)), how_(how) {
    for (const bool spaced : {false, true}) {
      for (const bool lowercase : {false, true}) {
        std::vector<std::string>& words = words_[spaced][lowercase];
        for_each_token(query_,
                       spaced ? TextParams::Tokenizer::kWhitespace : TextParams::Tokenizer::kWord,
                       [&](std::string_view w) { words.push_back(cased(w, lowercase)); });
        if (how_ != TextMatch::kPhrase) words = sorted_once(std::move(words));
      }
    }
  }
  std::optional<Candidates> candidates(const IndexLookup& ix) const override {
    return ix.text(key(), query_, how_);
  }

  /// Runs once per point a filter checks: the value's words are compared as they are read, with
  /// nothing allocated but a phrase's words (an index with stopwords or a stemmer, and a query
  /// of more than 64 words, take the slower comparison of the words as the index holds them).
  template <typename V>
  bool test(const Point& p, const V& payload) const {
    static const TextParams kDefault;
    const TextParams* given = p.facts ? p.facts->text_params(key()) : nullptr;
    const TextParams& params = given ? *given : kDefault;
    const bool prefix = params.tokenizer == TextParams::Tokenizer::kPrefix;
    const std::vector<std::string>& words =
        words_[params.tokenizer == TextParams::Tokenizer::kWhitespace][params.lowercase];
    if (params.rules || (how_ != TextMatch::kPhrase && words.size() > 64)) {
      return test_held_words(payload, params);
    }
    // Whether the query's word i, which the index would look for, begins the value's word `w`
    // (a prefix index, the query's word cut to max_token_len) or is it.
    const auto kept = [&](std::string_view word) {
      return prefix ? TextParams{params.min}.keeps(word) : params.keeps(word);
    };
    const auto same = [&](std::string_view w, const std::string& word) {
      const size_t cut = prefix ? first_characters(word, params.longest_prefix()) : word.size();
      return same_word(prefix ? w.substr(0, cut) : w, std::string_view(word.data(), cut),
                       params.lowercase);
    };
    if (how_ == TextMatch::kPhrase) {
      std::vector<const std::string*> phrase;
      for (const std::string& word : words) {
        if (kept(word)) phrase.push_back(&word);
      }
      return !phrase.empty() && any_checked(payload, [&](const V& v) {
        if (!v.is_string()) return false;
        // The value's words that the index holds, in order; the phrase among them.
        std::vector<std::string_view> held;
        for_each_token(v.string(), params.tokenizer, [&](std::string_view w) {
          if (kept(w)) held.push_back(w);
        });
        for (size_t at = 0; at + phrase.size() <= held.size(); ++at) {
          size_t i = 0;
          while (i < phrase.size() && same(held[at + i], *phrase[i])) ++i;
          if (i == phrase.size()) return true;
        }
        return false;
      });
    }
    const bool any = how_ == TextMatch::kAny;
    uint64_t want = 0;
    for (size_t i = 0; i < words.size(); ++i) {
      if (kept(words[i])) want |= uint64_t{1} << i;
    }
    return want != 0 && any_checked(payload, [&](const V& v) {
             if (!v.is_string()) return false;
             uint64_t seen = 0;
             for_each_token(v.string(), params.tokenizer, [&](std::string_view w) {
               for (size_t i = 0; i < words.size(); ++i) {
                 if ((want >> i & 1) && same(w, words[i])) seen |= uint64_t{1} << i;
               }
             });
             return any ? (seen & want) != 0 : (seen & want) == want;
           });
  }

  /// test() by the words a text index of `params` holds and a query looks for (held_words),
  /// compared as they come: a prefix index's word holds the query's words it begins.
  template <typename V>
  bool test_held_words(const V& payload, const TextParams& params) const {
    const bool prefix = params.tokenizer == TextParams::Tokenizer::kPrefix;
    const auto holds = [&](const std::string& held, const std::string& word) {
      return prefix ? held.compare(0, word.size(), word) == 0 : held == word;
    };
    if (how_ == TextMatch::kPhrase) {
      const std::vector<std::string> phrase = held_words(query_, params, true);
      return !phrase.empty() && any_checked(payload, [&](const V& v) {
        if (!v.is_string()) return false;
        const std::vector<std::string> held = held_words(v.string(), params, false);
        for (size_t at = 0; at + phrase.size() <= held.size(); ++at) {
          size_t i = 0;
          while (i < phrase.size() && holds(held[at + i], phrase[i])) ++i;
          if (i == phrase.size()) return true;
        }
        return false;
      });
    }
    const std::vector<std::string> want = query_tokens(query_, params);
    return !want.empty() && any_checked(payload, [&](const V& v) {
      if (!v.is_string()) return false;
      std::vector<bool> seen(want.size());
      size_t found = 0;
      for (const std::string& w : held_words(v.string(), params, false)) {
        for (size_t i = 0; i < want.size(); ++i) {
          if (seen[i] || !holds(w, want[i])) continue;
          if (how_ == TextMatch::kAny || ++found == want.size()) return true;
          seen[i] = true;
        }
      }
      return false;
    });
  }

 private:
  std::string query_;
  TextMatch how_;
  /// The query's words split as by the word tokenizer ([0]) or at white space ([1]), as they are
  /// ([.][0]) or lowercased ([.][1]); each sorted, once (a phrase's in their order, as many times
  /// as they come).
  std::vector<std::string> words_[2][2];
};

/// values_count: the number of values at the key (an array's elements; a single value counts
/// one) within the bounds.
class ValuesCountNode : public NodeOf<ValuesCountNode> {
 public:
  void suggest(const std::string& prefix, std::vector<IndexSuggestion>& out) const override {
    out.push_back({prefix + json_path_text(path_), any_index()});
  }
  ValuesCountNode(JsonPath path, RangeBounds b) : path_(std::move(path)), b_(b) {}
  template <typename V>
  bool test(const Point&, const V& payload) const {
    size_t n = 0;
    any_value_at(path_, payload, [&](const V& v) {
      n += v.is_array() ? v.size() : v.is_null() ? 0 : 1;
      return false;
    });
    return b_.contains(static_cast<double>(n));
  }

 private:
  JsonPath path_;
  RangeBounds b_;
};

constexpr double kEarthRadiusM = 6371008.8, kPi = 3.14159265358979323846, kRad = kPi / 180;

/// geo_radius: a geo point at the key within `radius` meters of the center.
class GeoRadiusNode : public FieldNode<GeoRadiusNode> {
 public:
  std::vector<json> schemas() const { return {"geo"}; }
  GeoRadiusNode(JsonPath path, std::string key, GeoPoint center, double radius)
      : FieldNode(std::move(path), std::move(key)), center_(center), radius_(radius) {}
  /// The circle's bounding box, a little wider than exact: latitudes within the angular radius;
  /// longitudes within asin(sin(r) / cos(lat)), or all when the circle reaches a pole.
  std::optional<Candidates> candidates(const IndexLookup& ix) const override {
    constexpr double kSlack = 1e-6;                // degrees: rounding must not leave a point out
    const double angle = radius_ / kEarthRadiusM;  // radians
    GeoArea a;
    a.lat_lo = center_.lat - angle / kRad - kSlack;
    a.lat_hi = center_.lat + angle / kRad + kSlack;
    if (a.lat_lo > -90 && a.lat_hi < 90) {
      const double s = std::sin(angle) / std::cos(center_.lat * kRad);
      const double dlon = s >= 1 ? 180 : std::asin(s) / kRad + kSlack;
      if (dlon < 180) {
        a.lon_lo = center_.lon - dlon;
        a.lon_hi = center_.lon + dlon;
        if (a.lon_lo < -180) a.lon_lo += 360;
        if (a.lon_hi > 180) a.lon_hi -= 360;
      }
    }
    a.lat_lo = std::max(a.lat_lo, -90.0);
    a.lat_hi = std::min(a.lat_hi, 90.0);
    return ix.geo(key(), a);
  }

  template <typename V>
  bool check(const V& v) const {
    const std::optional<GeoPoint> p = geo_point_in(v);
    return p && geo_distance_m(center_, *p) <= radius_;
  }

 private:
  GeoPoint center_;
  double radius_;
};

/// geo_bounding_box: a geo point at the key inside the box (a box may cross the antimeridian:
/// top_left.lon > bottom_right.lon).
class GeoBoxNode : public FieldNode<GeoBoxNode> {
 public:
  std::vector<json> schemas() const { return {"geo"}; }
  GeoBoxNode(JsonPath path, std::string key, GeoPoint top_left, GeoPoint bottom_right)
      : FieldNode(std::move(path), std::move(key)), tl_(top_left), br_(bottom_right) {}
  std::optional<Candidates> candidates(const IndexLookup& ix) const override {
    return ix.geo(key(), GeoArea{br_.lat, tl_.lat, tl_.lon, br_.lon});
  }

  template <typename V>
  bool check(const V& v) const {
    const std::optional<GeoPoint> p = geo_point_in(v);
    if (!p || p->lat > tl_.lat || p->lat < br_.lat) return false;
    return tl_.lon <= br_.lon ? p->lon >= tl_.lon && p->lon <= br_.lon
                              : p->lon >= tl_.lon || p->lon <= br_.lon;
  }

 private:
  GeoPoint tl_, br_;
};

/// Where `p` lies against the closed ring `ring` (first point = last) in the plane of longitude
/// and latitude: -1 outside, 0 on an edge, 1 inside (the crossing number of a ray towards +lon).
int ring_side(const std::vector<GeoPoint>& ring, const GeoPoint& p) {
  bool inside = false;
  for (size_t i = 0; i + 1 < ring.size(); ++i) {
    const GeoPoint& a = ring[i];
    const GeoPoint& b = ring[i + 1];
    const double cross = (b.lon - a.lon) * (p.lat - a.lat) - (b.lat - a.lat) * (p.lon - a.lon);
    if (cross == 0 && p.lon >= std::min(a.lon, b.lon) && p.lon <= std::max(a.lon, b.lon) &&
        p.lat >= std::min(a.lat, b.lat) && p.lat <= std::max(a.lat, b.lat)) {
      return 0;
    }
    if ((a.lat > p.lat) != (b.lat > p.lat)) {
      const double lon = a.lon + (p.lat - a.lat) * (b.lon - a.lon) / (b.lat - a.lat);
      if (p.lon < lon) inside = !inside;
    }
  }
  return inside ? 1 : -1;
}

/// geo_polygon: a geo point at the key inside the exterior ring and outside every interior one,
/// on no edge: Qdrant's (the geo crate's Polygon::contains, lon and lat as plane coordinates).
class GeoPolygonNode : public FieldNode<GeoPolygonNode> {
 public:
  std::vector<json> schemas() const { return {"geo"}; }
  GeoPolygonNode(JsonPath path, std::string key, std::vector<GeoPoint> exterior,
                 std::vector<std::vector<GeoPoint>> interiors)
      : FieldNode(std::move(path), std::move(key)),
        exterior_(std::move(exterior)),
        interiors_(std::move(interiors)) {
    area_ = GeoArea{90, -90, 180, -180};
    for (const GeoPoint& p : exterior_) {
      area_.lat_lo = std::min(area_.lat_lo, p.lat);
      area_.lat_hi = std::max(area_.lat_hi, p.lat);
      area_.lon_lo = std::min(area_.lon_lo, p.lon);
      area_.lon_hi = std::max(area_.lon_hi, p.lon);
    }
  }
  /// The exterior ring's bounding box.
  std::optional<Candidates> candidates(const IndexLookup& ix) const override {
    return ix.geo(key(), area_);
  }

  template <typename V>
  bool check(const V& v) const {
    const std::optional<GeoPoint> p = geo_point_in(v);
    if (!p || p->lat < area_.lat_lo || p->lat > area_.lat_hi || p->lon < area_.lon_lo ||
        p->lon > area_.lon_hi || ring_side(exterior_, *p) != 1) {
      return false;
    }
    for (const std::vector<GeoPoint>& hole : interiors_) {
      if (ring_side(hole, *p) != -1) return false;
    }
    return true;
  }

 private:
  std::vector<GeoPoint> exterior_;
  std::vector<std::vector<GeoPoint>> interiors_;
  GeoArea area_;
};

/// is_empty: every value at the key is null or [] (vacuously true when the key is missing).
class IsEmptyNode : public NodeOf<IsEmptyNode> {
 public:
  void suggest(const std::string& prefix, std::vector<IndexSuggestion>& out) const override {
    out.push_back({prefix + json_path_text(path_), any_index()});
  }
  explicit IsEmptyNode(JsonPath path) : path_(std::move(path)) {}
  template <typename V>
  bool test(const Point&, const V& payload) const {
    return !any_value_at(path_, payload,
                         [](const V& v) { return !(v.is_null() || (v.is_array() && v.empty())); });
  }

 private:
  JsonPath path_;
};

/// is_null: some value at the key is null itself.
class IsNullNode : public NodeOf<IsNullNode> {
 public:
  void suggest(const std::string& prefix, std::vector<IndexSuggestion>& out) const override {
    out.push_back({prefix + json_path_text(path_), any_index()});
  }
  explicit IsNullNode(JsonPath path) : path_(std::move(path)) {}
  template <typename V>
  bool test(const Point&, const V& payload) const {
    return any_value_at(path_, payload, [](const V& v) { return v.is_null(); });
  }

 private:
  JsonPath path_;
};

/// has_id: the point id is one of the listed ids.
class HasIdNode : public NodeOf<HasIdNode> {
 public:
  explicit HasIdNode(std::vector<PointId> ids) : ids_(std::move(ids)) {
    std::sort(ids_.begin(), ids_.end());
  }
  template <typename V>
  bool test(const Point& p, const V&) const {
    return std::binary_search(ids_.begin(), ids_.end(), p.id);
  }

 private:
  std::vector<PointId> ids_;
};

/// has_vector: the point holds the named vector (Qdrant's: an unknown name holds for none).
class HasVectorNode : public NodeOf<HasVectorNode> {
 public:
  explicit HasVectorNode(std::string name) : name_(std::move(name)) {}
  template <typename V>
  bool test(const Point& p, const V&) const {
    return p.facts && p.facts->holds(name_);
  }

 private:
  std::string name_;
};

/// A filter: all of `must`, one of `should` (when given), `min_count` of `min_should`, none of
/// `must_not`.
class ClauseNode : public NodeOf<ClauseNode> {
 public:
  std::vector<NodePtr> must, should, must_not, min_should;
  bool has_min_should = false;
  size_t min_count = 0;

  bool empty() const {
    return must.empty() && should.empty() && must_not.empty() && !has_min_should;
  }

  void suggest(const std::string& prefix, std::vector<IndexSuggestion>& out) const override {
    for (const auto* list : {&must, &should, &must_not, &min_should}) {
      for (const NodePtr& n : *list) n->suggest(prefix, out);
    }
  }

  template <typename V>
  bool test(const Point& p, const V& payload) const {
    for (const NodePtr& n : must) {
      if (!n->matches(p, payload)) return false;
    }
    for (const NodePtr& n : must_not) {
      if (n->matches(p, payload)) return false;
    }
    if (!should.empty()) {
      bool any = false;
      for (const NodePtr& n : should) {
        if (n->matches(p, payload)) {
          any = true;
          break;
        }
      }
      if (!any) return false;
    }
    if (has_min_should && min_count > 0) {
      size_t hits = 0;
      for (const NodePtr& n : min_should) {
        if (n->matches(p, payload) && ++hits >= min_count) break;
      }
      if (hits < min_count) return false;
    }
    return true;
  }

  std::optional<Candidates> candidates(const IndexLookup& ix) const override {
    std::optional<Candidates> out;
    bool exact = !has_min_should;
    for (const NodePtr& n : must) {
      std::optional<Candidates> c = n->candidates(ix);
      if (!c) {
        exact = false;  // checked point by point
        continue;
      }
      exact = exact && c->exact;
      if (out) {
        *out = intersect(*out, *c);
      } else {
        out = std::move(c);
      }
      if (!out->test() && out->ids().empty()) {
        out->exact = true;  // nothing can match
        return out;
      }
    }
    if (!should.empty()) {
      std::optional<Candidates> any = Candidates{};
      bool any_exact = true;
      for (const NodePtr& n : should) {
        std::optional<Candidates> c = n->candidates(ix);
        if (!c) {
          any.reset();  // one unserved alternative may hold anywhere
          break;
        }
        any_exact = any_exact && c->exact;
        *any = Candidates(unite(any->ids(), c->ids()), any->exact);
      }
      if (any) {
        exact = exact && any_exact;
        if (out) {
          *out = intersect(*out, *any);
        } else {
          out = std::move(any);
        }
      } else {
        exact = false;
      }
    }
    // A must_not is tested on each candidate, unless every match is being listed and an index
    // gives its points exactly: then they are taken out (ListingLookup). Without candidates from
    // must or should there is nothing to take them from (all other points would be listed).
    for (const NodePtr& n : must_not) {
      std::optional<Candidates> c = out && ix.listing() ? n->candidates(ix) : std::nullopt;
      if (!c || !c->exact) {
        exact = false;
        continue;
      }
      *out = subtract(*out, *c);
    }
    if (out) out->exact = exact;
    return out;
  }
};

/// nested: some object element of the array at the key passes the inner filter, evaluated with
/// that element as the payload (Qdrant's `nested` condition). Without the point's facts: its
/// keys are the element's (a text index of the same name at the top names another field), and
/// has_vector is refused there.
class NestedNode : public NodeOf<NestedNode> {
 public:
  void suggest(const std::string& prefix, std::vector<IndexSuggestion>& out) const override {
    filter_->suggest(prefix + json_path_text(path_) + ".", out);
  }
  NestedNode(JsonPath path, NodePtr filter) : path_(std::move(path)), filter_(std::move(filter)) {}
  template <typename V>
  bool test(const Point& p, const V& payload) const {
    const Point element{p.id, nullptr};
    return any_value_at(path_, payload,
                        [&](const V& v) { return v.is_object() && filter_->matches(element, v); });
  }

 private:
  JsonPath path_;  ///< ends with "[]"
  NodePtr filter_;
};

// ---------------------------------------------------------------------------------------------
// Parser

class Parser {
 public:
  /// Parses a filter object at `where`; `in_nested` forbids has_id and has_vector (no ids or
  /// vectors inside a payload).
  std::unique_ptr<ClauseNode> parse_filter(const json& j, const std::string& where, int depth,
                                           bool in_nested) {
    WP_THROW_IF_NOT(depth <= kMaxDepth, where, ": filters nested more than ", kMaxDepth,
                    " levels deep");
    WP_THROW_IF_NOT(j.is_object(), where,
                    ": expected a filter object with must, should, must_not or min_should, got ",
                    show_json(j));
    auto node = std::make_unique<ClauseNode>();
    for (const auto& [name, value] : j.items()) {
      const std::string field = where + "." + name;
      if (name == "must") {
        parse_clause(value, field, depth, in_nested, &node->must);
      } else if (name == "should") {
        parse_clause(value, field, depth, in_nested, &node->should);
      } else if (name == "must_not") {
        parse_clause(value, field, depth, in_nested, &node->must_not);
      } else if (name == "min_should") {
        parse_min_should(value, field, depth, in_nested, node.get());
      } else {
        throw UserError(field + ": unknown field; a filter accepts must, should, must_not and " +
                        "min_should");
      }
    }
    // A group in `must` without should or min_should holds where all its must and none of its
    // must_not do, as its parent's own: they join the parent's, so that `must: [A, {must_not:
    // [B]}]` narrows as A and not B does (a listing takes B's postings out of A's).
    std::vector<NodePtr> must;
    for (NodePtr& n : node->must) {
      auto* group = dynamic_cast<ClauseNode*>(n.get());
      if (!group || !group->should.empty() || group->has_min_should) {
        must.push_back(std::move(n));
        continue;
      }
      for (NodePtr& m : group->must) must.push_back(std::move(m));
      for (NodePtr& m : group->must_not) node->must_not.push_back(std::move(m));
    }
    node->must = std::move(must);
    return node;
  }

  /// A filter of the one condition `j` at `where`.
  std::unique_ptr<ClauseNode> parse_one(const json& j, const std::string& where) {
    auto node = std::make_unique<ClauseNode>();
    node->must.push_back(parse_condition(j, where, 0, /*in_nested=*/false));
    return node;
  }

 private:
  /// must / should / must_not: an array of conditions, one condition object, or null.
  void parse_clause(const json& j, const std::string& where, int depth, bool in_nested,
                    std::vector<NodePtr>* out) {
    if (j.is_null()) return;
    if (j.is_object()) {
      out->push_back(parse_condition(j, where, depth, in_nested));
      return;
    }
    WP_THROW_IF_NOT(j.is_array(), where,
                    ": expected an array of conditions or a single condition object, got ",
                    show_json(j));
    for (size_t i = 0; i < j.size(); ++i) {
      out->push_back(parse_condition(j[i], at_index(where, i), depth, in_nested));
    }
  }

  /// min_should: {"conditions": [...], "min_count": n}.
  void parse_min_should(const json& j, const std::string& where, int depth, bool in_nested,
                        ClauseNode* node) {
    if (j.is_null()) return;
    WP_THROW_IF_NOT(j.is_object(), where,
                    ": expected an object {\"conditions\": [...], \"min_count\": n}, got ",
                    show_json(j));
    bool has_conditions = false, has_count = false;
    for (const auto& [name, value] : j.items()) {
      const std::string field = where + "." + name;
      if (name == "conditions") {
        WP_THROW_IF_NOT(!value.is_null(), field,
                        ": expected an array of conditions or a single condition object, got null");
        parse_clause(value, field, depth, in_nested, &node->min_should);
        has_conditions = true;
      } else if (name == "min_count") {
        int64_t n = -1;
        WP_THROW_IF_NOT(json_as_int64(value, &n) && n >= 0, field,
                        ": expected a non-negative integer, got ", show_json(value));
        node->min_count = static_cast<size_t>(n);
        has_count = true;
      } else {
        throw UserError(field + ": unknown field; min_should accepts conditions and min_count");
      }
    }
    WP_THROW_IF_NOT(has_conditions, where, ".conditions: required (an array of conditions)");
    WP_THROW_IF_NOT(has_count, where, ".min_count: required (a non-negative integer)");
    node->has_min_should = true;
  }

  NodePtr parse_condition(const json& j, const std::string& where, int depth, bool in_nested) {
    WP_THROW_IF_NOT(j.is_object(), where, ": expected a condition object, got ", show_json(j));
    static const char* const kNeeds =
        ": a condition needs one of key+match, key+range, has_id, has_vector, is_empty, is_null, "
        "nested, or a nested filter (must/should/must_not/min_should), got ";

    if (j.contains("key")) return parse_field_condition(j, where);
    for (const std::string_view single :
         {"has_id", "has_vector", "is_empty", "is_null", "nested"}) {
      const auto it = j.find(single);
      if (it == j.end()) continue;
      for (const auto& [name, value] : j.items()) {
        WP_THROW_IF_NOT(name == single, where, ".", name, ": unexpected field next to ", single,
                        "; give each condition its own object");
      }
      const std::string field = where + "." + std::string(single);
      if (single == "has_id") return parse_has_id(*it, field, in_nested);
      if (single == "has_vector") return parse_has_vector(*it, field, in_nested);
      if (single == "nested") return parse_nested(*it, field, depth);
      JsonPath path = parse_key_object(*it, field);
      if (single == "is_empty") return std::make_unique<IsEmptyNode>(std::move(path));
      return std::make_unique<IsNullNode>(std::move(path));
    }
    for (const char* clause : {"must", "should", "must_not", "min_should"}) {
      if (j.contains(clause)) return parse_filter(j, where, depth + 1, in_nested);
    }
    throw UserError(where + kNeeds + show_json(j));
  }

  /// {"key": ..., one of "match", "range", "values_count", "geo_radius", "geo_bounding_box"}.
  NodePtr parse_field_condition(const json& j, const std::string& where) {
    static const char* const kKinds[] = {
        "match", "range", "values_count", "geo_radius", "geo_bounding_box", "geo_polygon"};
    const char* kind = nullptr;
    for (auto it = j.begin(); it != j.end(); ++it) {
      const std::string& name = it.key();
      if (name == "key") continue;
      const char* const* k = std::find_if(std::begin(kKinds), std::end(kKinds),
                                          [&name](const char* c) { return name == c; });
      if (k == std::end(kKinds)) {
        throw UserError(where + "." + name +
                        ": unsupported field in a field condition; expected key with match, "
                        "range, values_count, geo_radius, geo_bounding_box or geo_polygon");
      }
      WP_THROW_IF_NOT(!kind, where, ": give either ", kind, " or ", name,
                      " in one condition, not both (put two conditions in must)");
      kind = *k;
    }
    JsonPath path = parse_json_path(j["key"], where + ".key");
    WP_THROW_IF_NOT(kind, where,
                    ": a condition needs one of key+match, key+range, has_id, has_vector, "
                    "is_empty, is_null, nested, or a nested filter; key ",
                    show_json(j["key"]), " has neither match nor range");
    std::string key = j["key"].get<std::string>();
    const json& body = j[kind];
    const std::string at = where + "." + kind;
    if (kind == std::string("range")) return parse_range(body, at, std::move(path), std::move(key));
    if (kind == std::string("match")) return parse_match(body, at, std::move(path), std::move(key));
    if (kind == std::string("values_count")) {
      return std::make_unique<ValuesCountNode>(std::move(path), parse_bounds(body, at, false));
    }
    if (kind == std::string("geo_radius")) {
      WP_THROW_IF_NOT(body.is_object(), at,
                      ": expected {\"center\": {\"lon\", \"lat\"}, \"radius\"}");
      for (const auto& [name, value] : body.items()) {
        WP_THROW_IF_NOT(name == "center" || name == "radius", at, ".", name,
                        ": unknown field; expected center and radius");
      }
      const GeoPoint center =
          parse_geo(body.contains("center") ? body["center"] : json(), at + ".center");
      WP_THROW_IF_NOT(body.contains("radius") && body["radius"].is_number() &&
                          std::isfinite(body["radius"].get<double>()) &&
                          body["radius"].get<double>() >= 0,
                      at, ".radius: expected a non-negative number of meters");
      return std::make_unique<GeoRadiusNode>(std::move(path), std::move(key), center,
                                             body["radius"].get<double>());
    }
    if (kind == std::string("geo_polygon"))
      return parse_geo_polygon(body, at, std::move(path), key);
    WP_THROW_IF_NOT(body.is_object(), at,
                    ": expected {\"top_left\": {\"lon\", \"lat\"}, \"bottom_right\": {...}}");
    for (const auto& [name, value] : body.items()) {
      WP_THROW_IF_NOT(name == "top_left" || name == "bottom_right", at, ".", name,
                      ": unknown field; expected top_left and bottom_right");
    }
    const GeoPoint tl =
        parse_geo(body.contains("top_left") ? body["top_left"] : json(), at + ".top_left");
    const GeoPoint br = parse_geo(body.contains("bottom_right") ? body["bottom_right"] : json(),
                                  at + ".bottom_right");
    WP_THROW_IF_NOT(tl.lat >= br.lat, at, ": top_left.lat must not be below bottom_right.lat");
    return std::make_unique<GeoBoxNode>(std::move(path), std::move(key), tl, br);
  }

  /// {"exterior": ring, "interiors": [ring, ...] or null}, a ring {"points": [at least 4 geo
  /// points, the last the first]}; at most kMaxPolygonPoints points in all (each point tested
  /// walks every edge).
  NodePtr parse_geo_polygon(const json& j, const std::string& where, JsonPath path,
                            std::string key) {
    WP_THROW_IF_NOT(j.is_object(), where,
                    ": expected {\"exterior\": {\"points\": [...]}, \"interiors\": [...]}, got ",
                    show_json(j));
    for (const auto& [name, value] : j.items()) {
      WP_THROW_IF_NOT(name == "exterior" || name == "interiors", where, ".", name,
                      ": unknown field; expected exterior and interiors");
    }
    WP_THROW_IF_NOT(j.contains("exterior"), where, ".exterior: required (a ring of points)");
    size_t total = 0;
    std::vector<GeoPoint> exterior = parse_ring(j["exterior"], where + ".exterior", total);
    std::vector<std::vector<GeoPoint>> interiors;
    if (j.contains("interiors") && !j["interiors"].is_null()) {
      const json& rings = j["interiors"];
      WP_THROW_IF_NOT(rings.is_array(), where, ".interiors: expected an array of rings, got ",
                      show_json(rings));
      for (size_t i = 0; i < rings.size(); ++i) {
        interiors.push_back(parse_ring(rings[i], at_index(where + ".interiors", i), total));
      }
    }
    return std::make_unique<GeoPolygonNode>(std::move(path), std::move(key), std::move(exterior),
                                            std::move(interiors));
  }

  std::vector<GeoPoint> parse_ring(const json& j, const std::string& where, size_t& total) {
    WP_THROW_IF_NOT(j.is_object() && j.size() == 1 && j.contains("points"), where,
                    ": expected {\"points\": [{\"lon\", \"lat\"}, ...]}, got ", show_json(j));
    const json& points = j["points"];
    WP_THROW_IF_NOT(points.is_array(), where, ".points: expected an array of geo points, got ",
                    show_json(points));
    WP_THROW_IF_NOT(points.size() >= 4, where,
                    ".points: a polygon's ring needs at least 4 points (the last the first), got ",
                    points.size());
    total += points.size();
    WP_THROW_IF_NOT(total <= kMaxPolygonPoints, where, ".points: a polygon has at most ",
                    kMaxPolygonPoints, " points in all");
    std::vector<GeoPoint> ring;
    ring.reserve(points.size());
    for (size_t i = 0; i < points.size(); ++i) {
      ring.push_back(parse_geo(points[i], at_index(where + ".points", i)));
    }
    constexpr double kEpsilon = std::numeric_limits<double>::epsilon();  // as Qdrant compares
    WP_THROW_IF_NOT(std::abs(ring.front().lon - ring.back().lon) <= kEpsilon &&
                        std::abs(ring.front().lat - ring.back().lat) <= kEpsilon,
                    where, ".points: the last point must be the first, to close the ring");
    return ring;
  }

  GeoPoint parse_geo(const json& j, const std::string& where) { return parse_geo_point(j, where); }

  NodePtr parse_match(const json& j, const std::string& where, JsonPath path, std::string key) {
    static constexpr char kKinds[] = "value, any, except, text, text_any, phrase or prefix";
    WP_THROW_IF_NOT(j.is_object(), where, ": expected an object with one of ", kKinds, ", got ",
                    show_json(j));
    WP_THROW_IF_NOT(!j.empty(), where, ": expected one of ", kKinds, ", got {}");
    for (const auto& [name, value] : j.items()) {
      WP_THROW_IF_NOT(name == "value" || name == "any" || name == "except" || name == "text" ||
                          name == "text_any" || name == "phrase" || name == "prefix",
                      where, ".", name, ": unsupported match kind; expected one of ", kKinds);
    }
    WP_THROW_IF_NOT(j.size() == 1, where, ": give exactly one of ", kKinds, ", got ", show_json(j));
    for (const auto& [name, how] : {std::pair<const char*, TextMatch>{"text", TextMatch::kAll},
                                    {"text_any", TextMatch::kAny},
                                    {"phrase", TextMatch::kPhrase}}) {
      if (!j.contains(name)) continue;
      WP_THROW_IF_NOT(j[name].is_string(), where, ".", name, ": expected a string, got ",
                      show_json(j[name]));
      return std::make_unique<MatchTextNode>(std::move(path), std::move(key),
                                             j[name].get<std::string>(), how);
    }
    if (j.contains("prefix")) {
      WP_THROW_IF_NOT(j["prefix"].is_string(), where, ".prefix: expected a string, got ",
                      show_json(j["prefix"]));
      return std::make_unique<MatchPrefixNode>(std::move(path), std::move(key),
                                               j["prefix"].get<std::string>());
    }
    if (j.contains("value")) {
      const json& v = j["value"];
      int64_t n = 0;
      WP_THROW_IF_NOT(v.is_string() || v.is_boolean() || json_as_int64(v, &n), where,
                      ".value: expected a string, an integer or a bool, got ", show_json(v));
      return std::make_unique<MatchValueNode>(std::move(path), std::move(key), v);
    }
    if (j.contains("any")) {
      return std::make_unique<MatchAnyNode>(std::move(path), std::move(key),
                                            parse_value_set(j["any"], where + ".any"));
    }
    return std::make_unique<MatchExceptNode>(std::move(path), std::move(key),
                                             parse_value_set(j["except"], where + ".except"));
  }

  /// An array of strings or an array of integers (an empty array is allowed).
  ValueSet parse_value_set(const json& j, const std::string& where) {
    WP_THROW_IF_NOT(j.is_array(), where, ": expected an array of strings or of integers, got ",
                    show_json(j));
    ValueSet set;
    set.integers = !j.empty() && !j[0].is_string();
    for (size_t i = 0; i < j.size(); ++i) {
      const json& e = j[i];
      if (set.integers) {
        int64_t n = 0;
        WP_THROW_IF_NOT(json_as_int64(e, &n), at_index(where, i),
                        ": expected an integer (the list must be all strings or all integers), "
                        "got ",
                        show_json(e));
        set.ints.push_back(n);
      } else {
        WP_THROW_IF_NOT(e.is_string(), at_index(where, i),
                        ": expected a string (the list must be all strings or all integers), got ",
                        show_json(e));
        set.strings.push_back(e.get<std::string>());
      }
    }
    std::sort(set.strings.begin(), set.strings.end());
    std::sort(set.ints.begin(), set.ints.end());
    return set;
  }

  /// {"gt", "gte", "lt", "lte"} (any subset, at least one): numbers, or RFC 3339 datetimes when
  /// `datetimes` allows (as microseconds since the epoch); `*is_datetime` says which were given.
  RangeBounds parse_bounds(const json& j, const std::string& where, bool datetimes,
                           bool* is_datetime = nullptr) {
    WP_THROW_IF_NOT(j.is_object(), where,
                    ": expected an object with some of gt, gte, lt, lte, got ", show_json(j));
    RangeBounds b;
    int kinds = 0;  // 1: numbers, 2: datetimes
    for (const auto& [name, value] : j.items()) {
      const std::string field = where + "." + name;
      std::pair<bool*, double*> slot;
      if (name == "gt") {
        slot = {&b.has_gt, &b.gt};
      } else if (name == "gte") {
        slot = {&b.has_gte, &b.gte};
      } else if (name == "lt") {
        slot = {&b.has_lt, &b.lt};
      } else if (name == "lte") {
        slot = {&b.has_lte, &b.lte};
      } else {
        throw UserError(field + ": unknown bound; expected gt, gte, lt or lte");
      }
      if (value.is_null()) continue;  // an absent bound, as serde reads Option::None
      double x = 0;
      if (datetimes && value.is_string()) {
        const std::optional<int64_t> t = parse_datetime(value.get_ref<const std::string&>());
        WP_THROW_IF_NOT(t, field, ": expected an RFC 3339 datetime such as ",
                        "\"2024-05-01T10:00:00Z\", got ", show_json(value));
        x = static_cast<double>(*t);
        kinds |= 2;
      } else {
        WP_THROW_IF_NOT(value.is_number(), field, ": expected a number",
                        datetimes ? " or an RFC 3339 datetime" : "", ", got ", show_json(value));
        x = value.get<double>();
        WP_THROW_IF_NOT(std::isfinite(x), field, ": expected a finite number, got ",
                        show_json(value));
        kinds |= 1;
      }
      *slot.first = true;
      *slot.second = x;
    }
    WP_THROW_IF_NOT(b.has_gt || b.has_gte || b.has_lt || b.has_lte, where,
                    ": expected at least one of gt, gte, lt, lte, got ", show_json(j));
    WP_THROW_IF_NOT(kinds != 3, where, ": give all bounds as numbers or all as datetimes");
    if (is_datetime) *is_datetime = kinds == 2;
    return b;
  }

  NodePtr parse_range(const json& j, const std::string& where, JsonPath path, std::string key) {
    bool datetime = false;
    const RangeBounds b = parse_bounds(j, where, true, &datetime);
    if (datetime) return std::make_unique<DatetimeRangeNode>(std::move(path), std::move(key), b);
    return std::make_unique<RangeNode>(std::move(path), std::move(key), b);
  }

  NodePtr parse_has_id(const json& j, const std::string& where, bool in_nested) {
    WP_THROW_IF_NOT(!in_nested, where,
                    ": has_id is not supported inside a nested condition (array elements have no "
                    "ids)");
    WP_THROW_IF_NOT(j.is_array(), where, ": expected an array of point ids, got ", show_json(j));
    std::vector<PointId> ids;
    for (size_t i = 0; i < j.size(); ++i)
      ids.push_back(PointId::from_json(j[i], at_index(where, i)));
    return std::make_unique<HasIdNode>(std::move(ids));
  }

  /// A vector's name: "" names the unnamed vector.
  NodePtr parse_has_vector(const json& j, const std::string& where, bool in_nested) {
    WP_THROW_IF_NOT(!in_nested, where,
                    ": has_vector is not supported inside a nested condition (array elements "
                    "have no vectors)");
    WP_THROW_IF_NOT(j.is_string(), where, ": expected a vector's name (a string), got ",
                    show_json(j));
    return std::make_unique<HasVectorNode>(j.get<std::string>());
  }

  /// {"key": "..."}, the body of is_empty and is_null.
  JsonPath parse_key_object(const json& j, const std::string& where) {
    WP_THROW_IF_NOT(j.is_object(), where, ": expected an object {\"key\": \"...\"}, got ",
                    show_json(j));
    for (const auto& [name, value] : j.items()) {
      WP_THROW_IF_NOT(name == "key", where, ".", name, ": unknown field; expected only key");
    }
    WP_THROW_IF_NOT(j.contains("key"), where, ".key: required (a key path string)");
    return parse_json_path(j["key"], where + ".key");
  }

  /// {"key": "...", "filter": {...}}: the filter applies to each object element of the array.
  NodePtr parse_nested(const json& j, const std::string& where, int depth) {
    WP_THROW_IF_NOT(j.is_object(), where,
                    ": expected an object {\"key\": \"...\", \"filter\": {...}}, got ",
                    show_json(j));
    for (const auto& [name, value] : j.items()) {
      WP_THROW_IF_NOT(name == "key" || name == "filter", where, ".", name,
                      ": unknown field; nested accepts key and filter");
    }
    WP_THROW_IF_NOT(j.contains("key"), where, ".key: required (a key path string)");
    WP_THROW_IF_NOT(j.contains("filter"), where, ".filter: required (a filter object)");
    JsonPath path = parse_json_path(j["key"], where + ".key");
    if (path.back().kind != JsonPathStep::Kind::kEach) {
      JsonPathStep each;
      each.kind = JsonPathStep::Kind::kEach;
      path.push_back(std::move(each));
    }
    return std::make_unique<NestedNode>(std::move(path),
                                        parse_filter(j["filter"], where + ".filter", depth + 1,
                                                     /*in_nested=*/true));
  }
};

}  // namespace

Filter::Filter() = default;
Filter::~Filter() = default;
Filter::Filter(Filter&&) noexcept = default;
Filter& Filter::operator=(Filter&&) noexcept = default;

Filter Filter::parse(const json& j, const std::string& where) {
  Filter f;
  if (j.is_null()) return f;
  Parser parser;
  std::unique_ptr<ClauseNode> root = parser.parse_filter(j, where, 0, /*in_nested=*/false);
  if (!root->empty()) f.root_ = std::move(root);
  return f;
}

Filter Filter::parse_condition(const json& j, const std::string& where) {
  Filter f;
  f.root_ = Parser().parse_one(j, where);
  return f;
}

bool Filter::matches(const PointId& id, const PackedPayload& payload,
                     const PointFacts* facts) const {
  if (!root_) return true;
  return root_->matches(Node::Point{id, facts}, MsgValue(payload));
}

bool Filter::matches(const PointId& id, const json& payload, const PointFacts* facts) const {
  return !root_ || root_->matches(Node::Point{id, facts}, JsonRef(payload));
}

bool Filter::empty() const {
  return !root_;
}

std::vector<IndexSuggestion> Filter::index_suggestions() const {
  std::vector<IndexSuggestion> out;
  if (root_) root_->suggest("", out);
  return out;
}

bool TextParams::keeps(std::string_view token) const {
  size_t characters = 0;
  for (const char c : token) characters += (static_cast<unsigned char>(c) & 0xC0) != 0x80;
  return characters >= min && characters <= max;
}

std::vector<std::string> held_words(std::string_view text, const TextParams& params, bool query) {
  const bool prefix = params.tokenizer == TextParams::Tokenizer::kPrefix;
  const WordRules* rules = params.rules.get();
  std::vector<std::string> out;
  for_each_token(text, params.tokenizer, [&](std::string_view w) {
    std::string word =
        cased(rules && rules->folds() ? fold_to_ascii(w) : std::string(w), params.lowercase);
    if (rules) {
      // Qdrant's PrefixTokenizer::tokenize_query leaves no stopword out: the query may be the
      // beginning of a longer word.
      if (!(prefix && query) && rules->is_stopword(word)) return;
      word = rules->stem(std::move(word));
    }
    if (!prefix) {
      if (params.keeps(word)) out.push_back(std::move(word));
      return;
    }
    if (!TextParams{params.min}.keeps(word)) return;  // no word this short is held
    if (query) word.resize(first_characters(word, params.longest_prefix()));
    out.push_back(std::move(word));
  });
  return out;
}

std::vector<std::string> text_tokens(std::string_view text, const TextParams& params) {
  std::vector<std::string> words = held_words(text, params, false);
  if (params.tokenizer != TextParams::Tokenizer::kPrefix) return sorted_once(std::move(words));
  // Qdrant's PrefixTokenizer::tokenize: each word held with its prefixes of min_token_len (1 at
  // least) to max_token_len characters (here at most TextParams::kLongestPrefix), the whole word
  // among them when it is no longer.
  std::vector<std::string> out;
  for (const std::string& word : words) {
    for (uint32_t n = std::max<uint32_t>(params.min, 1); n <= params.longest_prefix(); ++n) {
      const size_t bytes = first_characters(word, n);
      out.push_back(word.substr(0, bytes));
      if (bytes == word.size()) break;
    }
  }
  return sorted_once(std::move(out));
}

std::vector<std::string> query_tokens(std::string_view text, const TextParams& params) {
  return sorted_once(held_words(text, params, true));
}

std::optional<Candidates> Filter::candidates(const IndexLookup& indexes) const {
  if (!root_) return std::nullopt;
  return root_->candidates(indexes);
}

double geo_distance_m(const GeoPoint& a, const GeoPoint& b) {
  const double dlat = (b.lat - a.lat) * kRad, dlon = (b.lon - a.lon) * kRad;
  const double h =
      std::sin(dlat / 2) * std::sin(dlat / 2) +
      std::cos(a.lat * kRad) * std::cos(b.lat * kRad) * std::sin(dlon / 2) * std::sin(dlon / 2);
  return 2 * kEarthRadiusM * std::asin(std::min(1.0, std::sqrt(h)));
}

GeoPoint parse_geo_point(const json& j, const std::string& where) {
  WP_THROW_IF_NOT(j.is_object() && j.size() == 2 && j.contains("lon") && j.contains("lat"), where,
                  ": expected {\"lon\": degrees, \"lat\": degrees}, got ", show_json(j));
  WP_THROW_IF_NOT(j["lon"].is_number() && std::abs(j["lon"].get<double>()) <= 180, where,
                  ".lon: expected a number in -180..180");
  WP_THROW_IF_NOT(j["lat"].is_number() && std::abs(j["lat"].get<double>()) <= 90, where,
                  ".lat: expected a number in -90..90");
  return {j["lon"].get<double>(), j["lat"].get<double>()};
}

}  // namespace wp::engine
