#pragma once
/**
 * @file filter.h
 * Qdrant filters over point payloads: `must` / `should` / `must_not` clauses of conditions.
 *
 * Supported conditions (Qdrant's JSON shapes):
 *  - field match:  {"key": "city", "match": {"value": "London"}}      (string, integer or bool)
 *                  {"key": "color", "match": {"any": ["red", "green"]}}
 *                  {"key": "color", "match": {"except": ["red"]}}
 *  - range:        {"key": "price", "range": {"gt": 1, "gte": 1, "lt": 9, "lte": 9}} (any subset)
 *                  {"key": "at", "range": {"gte": "2024-05-01T00:00:00Z"}}   (RFC 3339 datetimes)
 *  - values_count: {"key": "tags", "values_count": {"gte": 2}}    (an array counts its elements)
 *  - geo_radius:   {"key": "loc", "geo_radius": {"center": {"lon", "lat"}, "radius": meters}}
 *  - geo_bounding_box: {"key": "loc", "geo_bounding_box": {"top_left": {...}, "bottom_right":
 * {...}}}
 *  - geo_polygon:  {"key": "loc", "geo_polygon": {"exterior": {"points": [{lon, lat}, ...]},
 *                  "interiors": [{"points": [...]}]}}  (rings closed, >= 4 points; inside the
 *                  exterior, outside every interior, on no edge)
 *  - has_id:       {"has_id": [1, 2, "5c56c793-69f3-4fbf-87e6-c4bf54c28c26"]}
 *  - is_empty:     {"is_empty": {"key": "tags"}}    (missing, null or [])
 *  - is_null:      {"is_null": {"key": "tags"}}     (present and null)
 *  - has_vector:   {"has_vector": "image"}          (the point holds that named vector; "" the
 *                                                    unnamed one; an unknown name: no point)
 *  - nested filter: a condition may itself be a filter object {"must": [...], ...}
 * Keys are paths with dots ("address.city"); "a[].b" walks every element of array a.
 * When the payload value is an array, a match or range condition holds if any element satisfies it.
 * A filter holds when every `must` condition holds, at least one `should` condition holds (if any
 * are given), and no `must_not` condition holds. An empty filter {} matches everything.
 */
#include <algorithm>
#include <cstdint>
#include <functional>
#include <limits>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>
#include <string_view>

#include "engine/packed_payload.h"
#include "engine/point_id.h"

namespace wp::engine {

/// The bounds of a range condition (any subset of gt, gte, lt, lte).
struct RangeBounds {
  bool has_gt = false, has_gte = false, has_lt = false, has_lte = false;
  double gt = 0, gte = 0, lt = 0, lte = 0;
  /// Without a branch (& and |, not && and ||): a scan of numbers half of which fall within
  /// mispredicts none. False for NaN.
  bool contains(double x) const {
    return (!has_gt | (x > gt)) & (!has_gte | (x >= gte)) & (!has_lt | (x < lt)) &
           (!has_lte | (x <= lte));
  }
  /// Where a walk of numbers in order starts: the lower bound (-infinity without one); the
  /// numbers from it on that contains() refuses are those of an open bound.
  double lowest() const {
    if (has_gt && has_gte) return std::max(gt, gte);
    if (has_gt || has_gte) return has_gt ? gt : gte;
    return -std::numeric_limits<double>::infinity();
  }
  /// Whether `x` and every number above it are out of the range (a walk in order stops there).
  bool past(double x) const { return (has_lt && x >= lt) || (has_lte && x > lte); }
};

/// A point on the earth ({"lon", "lat"} in degrees).
struct GeoPoint {
  double lon = 0, lat = 0;
};
/// A payload value that is a geo point ({"lon": number, "lat": number} and nothing else), or
/// nullopt; V is a view of the value (JsonRef, MsgValue).
template <typename V>
std::optional<GeoPoint> geo_point_in(const V& v) {
  if (!v.is_object() || v.size() != 2) return std::nullopt;
  const std::optional<V> lon = v.member("lon"), lat = v.member("lat");
  if (!lon || !lat || !lon->is_number() || !lat->is_number()) return std::nullopt;
  return GeoPoint{lon->number(), lat->number()};
}

/// Great-circle distance in meters (haversine, mean earth radius), as Qdrant measures it.
double geo_distance_m(const GeoPoint& a, const GeoPoint& b);
/// A request's geo point, {"lon": -180..180, "lat": -90..90}; UserError naming `where` otherwise.
GeoPoint parse_geo_point(const nlohmann::json& j, const std::string& where);

/// The bounding box of a geo condition, in degrees: latitudes lat_lo..lat_hi within -90..90,
/// longitudes lon_lo..lon_hi within -180..180 (lon_lo > lon_hi: across the antimeridian).
struct GeoArea {
  double lat_lo = -90, lat_hi = 90, lon_lo = -180, lon_hi = 180;
};

/// Internal ids, sorted and unique.
using IdList = std::vector<uint32_t>;

/// The j-th of a sequence of probes of [0, n), spread by a multiplicative hash so that no period
/// in the ids (every other point) lines up with them: for estimates from a sample of the points.
inline uint64_t spread_probe(uint64_t j, uint64_t n) {
  return (j * 0x9E3779B97F4A7C15ull + 0x632BE59BD9B4E019ull) % n;
}

/// Ids given as a test of each rather than as a list: a range over many values of a numeric
/// index, whose postings cost more to unite (a copy of every matching id) than the search that
/// wants them, while its index tests one id in a few nanoseconds from its column of values.
struct IdTest {
  std::function<bool(uint32_t)> contains;
  std::function<IdList()> list;  ///< every id that passes, sorted, when a caller needs them all
  size_t estimate = 0;           ///< how many pass, estimated from a sample
};

/// Points from payload indexes: exactly the points a condition holds for (`exact`: no check of
/// each is needed), or a superset of them; as a list, or as a test of each id (IdTest).
class Candidates {
 public:
  Candidates() = default;
  Candidates(IdList ids, bool exact) : exact(exact), owned_(std::move(ids)) {}
  /// A payload index's own list, not copied (half a million postings took longer to copy than
  /// the search): valid while the payload indexes do not change, under the collection's lock.
  static Candidates borrowed(const IdList& list, bool exact) {
    Candidates c({}, exact);
    c.list_ = &list;
    return c;
  }
  /// Ids given by a test (valid, like a borrowed list, under the collection's lock).
  static Candidates tested(IdTest test, bool exact) {
    Candidates c({}, exact);
    c.test_ = std::make_shared<const IdTest>(std::move(test));
    return c;
  }
  /// The test when the ids are given by one, else null: ask it before ids(), which lists them.
  const IdTest* test() const { return test_.get(); }
  /// The ids, sorted and unique (listed by the test, once, when given by one).
  const IdList& ids() const {
    if (test_ && !listed_) {
      owned_ = test_->list();
      listed_ = true;
    }
    return list_ ? *list_ : owned_;
  }

  bool exact = false;

 private:
  mutable IdList owned_;
  const IdList* list_ = nullptr;
  std::shared_ptr<const IdTest> test_;
  mutable bool listed_ = false;
};

/// What a text condition asks of a string's words: every word of the query (match.text), one of
/// them at least (match.text_any), or all of them one after another in the query's order
/// (match.phrase).
enum class TextMatch : uint8_t { kAll, kAny, kPhrase };

/**
 * What payload indexes offer a filter (engine/payload_index.h implements it). Each lookup gives
 * the points with a value at `key` (the condition's key text) that may satisfy the condition: a
 * superset of the points it holds for, which the filter then checks one by one; nullopt when no
 * index serves that key for that kind of condition.
 */
class IndexLookup {
 public:
  virtual ~IndexLookup() = default;
  /// A string value among `any` (match.value, match.any).
  virtual std::optional<Candidates> strings(const std::string& key,
                                            const std::vector<std::string>& any) const = 0;
  /// An integer value among `any`.
  virtual std::optional<Candidates> integers(const std::string& key,
                                             const std::vector<int64_t>& any) const = 0;
  virtual std::optional<Candidates> boolean(const std::string& key, bool value) const = 0;
  /// A number within `b`.
  virtual std::optional<Candidates> range(const std::string& key, const RangeBounds& b) const = 0;
  /// An RFC 3339 datetime within `b` (microseconds since the epoch).
  virtual std::optional<Candidates> datetimes(const std::string& key,
                                              const RangeBounds& b) const = 0;
  /// A geo point that may lie in `area` (geo_radius, geo_bounding_box).
  virtual std::optional<Candidates> geo(const std::string& key, const GeoArea& area) const = 0;
  /// A string that begins with `prefix`, byte by byte (match.prefix).
  virtual std::optional<Candidates> prefix(const std::string& key,
                                           const std::string& prefix) const = 0;
  /// A text holding every word of `query` (match.text), one of them (text_any) or all of them
  /// (phrase: a superset, the order is not known), as the key's text index reads both
  /// (query_tokens).
  virtual std::optional<Candidates> text(const std::string& key, std::string_view query,
                                         TextMatch how) const = 0;
  /// True when the caller lists every match (ListingLookup).
  virtual bool listing() const { return false; }
};

/// The lookups of `of` for a caller that lists every match (count, scroll, deletes and edits
/// by filter): a must_not the indexes serve exactly is then taken out of the candidates at once
/// (a sorted difference; 0.5 ms against 7.3 ms of payload tests for 90k matches at 200k points),
/// where a search tests it on each point it reaches (cheaper than the difference at each
/// search: docs/hnsw.md).
class ListingLookup final : public IndexLookup {
 public:
  explicit ListingLookup(const IndexLookup& of) : of_(of) {}
  std::optional<Candidates> strings(const std::string& key,
                                    const std::vector<std::string>& any) const override {
    return of_.strings(key, any);
  }
  std::optional<Candidates> integers(const std::string& key,
                                     const std::vector<int64_t>& any) const override {
    return of_.integers(key, any);
  }
  std::optional<Candidates> boolean(const std::string& key, bool value) const override {
    return of_.boolean(key, value);
  }
  std::optional<Candidates> range(const std::string& key, const RangeBounds& b) const override {
    return of_.range(key, b);
  }
  std::optional<Candidates> datetimes(const std::string& key, const RangeBounds& b) const override {
    return of_.datetimes(key, b);
  }
  std::optional<Candidates> geo(const std::string& key, const GeoArea& area) const override {
    return of_.geo(key, area);
  }
  std::optional<Candidates> prefix(const std::string& key,
                                   const std::string& prefix) const override {
    return of_.prefix(key, prefix);
  }
  std::optional<Candidates> text(const std::string& key, std::string_view query,
                                 TextMatch how) const override {
    return of_.text(key, query, how);
  }
  bool listing() const override { return true; }

 private:
  const IndexLookup& of_;
};

class WordRules;  // engine/word_rules.h

/**
 * How a text index reads texts (Qdrant's TextIndexParams): the lengths of the words it keeps
 * (min_token_len and max_token_len, in characters: a UTF-8 letter counts one), the tokenizer that
 * splits a text into words, and whether ASCII letters are lowercased. The default is how
 * match.text reads a text on a key without a text index: words, lowercased, every length.
 */
struct TextParams {
  enum class Tokenizer : uint8_t {
    kWord,        ///< maximal runs of letters and digits: any character beyond ASCII but the
                  ///< white space, punctuation and emoji that Qdrant's splits at too
    kWhitespace,  ///< maximal runs of anything but white space (Unicode's White_Space)
    kPrefix,      ///< words, each held with its prefixes of min_token_len (1 at least) to
                  ///< longest_prefix() characters; a query's words are cut to as many
  };
  TextParams(uint32_t min_token_len = 0, uint32_t max_token_len = UINT32_MAX,
             Tokenizer split = Tokenizer::kWord, bool lowercased = true)
      : min(min_token_len), max(max_token_len), tokenizer(split), lowercase(lowercased) {}

  uint32_t min;
  uint32_t max;
  Tokenizer tokenizer;
  bool lowercase;
  /// Qdrant's phrase_matching, kept and reported: a phrase is matched with or without it here
  /// (a test of the candidates' words in order, where Qdrant's index keeps their positions).
  bool phrase_matching = false;
  /// The stopwords and the stemmer (nullptr: none).
  std::shared_ptr<const WordRules> rules;
  /// Not a text index's: a keyword index's `prefix` option (Qdrant 1.19). The index then keeps
  /// its keys in order and lists the points of match.prefix; without it a prefix is tested on
  /// every point, as in Qdrant. Kept here so that it is stored, reported and restored with the
  /// index as a text index's params are.
  bool prefix = false;

  /// The longest prefix a prefix index holds (a word's prefixes take the square of its length):
  /// max_token_len up to this, this without one.
  static constexpr uint32_t kLongestPrefix = 64;
  uint32_t longest_prefix() const { return max < kLongestPrefix ? max : kLongestPrefix; }

  bool is_default() const {
    return min == 0 && max == UINT32_MAX && tokenizer == Tokenizer::kWord && lowercase &&
           !phrase_matching && !rules && !prefix;
  }
  /// Whether `token` (its characters counted) lies within the bounds.
  bool keeps(std::string_view token) const;
};

/// The words a text index of `params` holds for `text`, sorted, each once (Qdrant's tokenizers:
/// `word` splits at every character that is not a letter or a digit (beyond ASCII: white space,
/// Latin-1's and General Punctuation's signs, emoji; other scripts' punctuation is read as
/// letters), `whitespace` at white space, `prefix` as `word` and holds each word's prefixes too;
/// then, as Qdrant's TokensProcessor, each word lowercased (ASCII letters), left out if a
/// stopword, stemmed, and kept if of min_token_len to max_token_len characters). The default
/// params give the words match.text reads without an index.
std::vector<std::string> text_tokens(std::string_view text, const TextParams& params = {});

/// The words match.text looks for in a text index of `params`, sorted, each once: a text's words
/// as text_tokens reads them, except that a prefix index cuts a query's words to
/// longest_prefix() characters rather than leaving them out, leaves no stopword out (Qdrant's
/// PrefixTokenizer::tokenize_query) and holds no prefixes of them. None left: the query matches
/// nothing.
std::vector<std::string> query_tokens(std::string_view text, const TextParams& params = {});

/// The words of `text` that a text index of `params` holds (or, `query`, that a query looks
/// for), in their order, each as often as it comes: text_tokens' and query_tokens' words before
/// a prefix index's prefixes are added and before they are sorted (a phrase compares these).
std::vector<std::string> held_words(std::string_view text, const TextParams& params, bool query);

/// What the collection says of one point besides its id and payload: which named vectors it
/// holds, asked by has_vector conditions by name ("" names the unnamed vector of a collection
/// without names), and how its collection's text index of a key reads texts (match.text reads
/// the point's text and the query's as that index does). The collection answers for its points.
class PointFacts {
 public:
  virtual bool holds(std::string_view name) const = 0;
  /// How the text index of `key` reads texts; nullptr without one (the default TextParams).
  virtual const TextParams* text_params(std::string_view key) const = 0;

 protected:
  ~PointFacts() = default;
};

/// The payload indexes that would serve a condition on `key` (Qdrant's unindexed-field issue):
/// field_schema bodies of PUT /collections/{name}/index, any one of which would.
struct IndexSuggestion {
  std::string key;  ///< the key path as requests write it (a nested condition's in full)
  std::vector<nlohmann::json> schemas;
};

class Filter {
 public:
  /// Matches everything.
  Filter();
  ~Filter();
  Filter(Filter&&) noexcept;
  Filter& operator=(Filter&&) noexcept;

  /**
   * Compiles a Qdrant filter object.
   * @param j      the filter JSON (must be an object; null is treated as the empty filter)
   * @param where  path of `j` in the request, used in error messages ("filter",
   * "searches[2].filter") Throws wp::UserError with a message naming the exact field and what was
   * expected, e.g. "filter.must[1].range.gt: expected a number, got \"abc\"".
   */
  static Filter parse(const nlohmann::json& j, const std::string& where = "filter");
  /// A filter of one condition (an object of the kinds above, a nested filter among them), at
  /// `where`; the same errors.
  static Filter parse_condition(const nlohmann::json& j, const std::string& where);

  /// True when a point with `id`, `payload` (a JSON object, possibly empty) and what `facts`
  /// says of it passes (without `facts` it holds no vector: has_vector never holds; and
  /// match.text reads texts with the default TextParams).
  bool matches(const PointId& id, const nlohmann::json& payload,
               const PointFacts* facts = nullptr) const;
  /// The same for a packed payload, read in place (nothing unpacked, nothing allocated).
  bool matches(const PointId& id, const PackedPayload& payload,
               const PointFacts* facts = nullptr) const;

  /// True for a filter without any condition.
  bool empty() const;

  /// For each condition on a payload key, in order (a key may come more than once), the indexes
  /// that would serve it, as Qdrant infers them: a match of strings a keyword index, of integers
  /// an integer one, of a bool a bool one; text, text_any and phrase a text index; prefix a
  /// keyword index with the prefix option; a range of numbers a float or integer index, of
  /// datetimes a datetime one; a geo condition a geo index; values_count, is_empty and is_null any
  /// index. A match.any or match.except of no values needs none.
  std::vector<IndexSuggestion> index_suggestions() const;

  /**
   * The points the filter may hold for, from payload indexes: `must` conditions served by an
   * index intersect their lists, `should` conditions narrow only when every one is served (the
   * union), `must_not` and `min_should` never narrow. nullopt when nothing narrows (every point
   * must be checked). The result is a superset: check each point with matches().
   */
  std::optional<Candidates> candidates(const IndexLookup& indexes) const;

  struct Node;  ///< implementation detail (a condition tree)

 private:
  std::unique_ptr<Node> root_;
};

}  // namespace wp::engine
