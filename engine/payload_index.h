#pragma once
/**
 * @file payload_index.h
 * Payload indexes (Qdrant's `PUT /collections/{name}/index {"field_name", "field_schema"}`): for
 * one key path, the points by value, so that a filter's conditions on indexed keys give their
 * candidate points in O(matches) instead of a check of every point (Filter::candidates).
 *
 * Values are read at the key exactly as filters read them (json_path.h; an array's elements one
 * by one), so a lookup is always a superset of what the condition holds for:
 *  - keyword, uuid: string values (match value / any on strings);
 *  - integer, float: every number, keyed as a double (match on integers, range); an integer
 *    beyond 2^53 shares its key with its neighbours, which only widens the candidates;
 *  - bool: true and false;
 *  - datetime: RFC 3339 strings, keyed by microseconds since the epoch (range with datetimes);
 *  - text: the words of strings (text_tokens in filter.h; match.text);
 *  - geo: {"lon", "lat"} points by their 1-degree cell of latitude and longitude (keyed as a
 *    number: a row of cells is a range of keys); points outside -90..90 / -180..180 share one
 *    key that every geo lookup includes (the conditions read them as given).
 * Values of other types at an indexed key are left out (the conditions on them are then served
 * by no index of this key and checked point by point). Posting lists are sorted internal ids
 * (uint32); a point's old values are found from its old payload when it changes.
 */
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <unordered_map>
#include <vector>

#include <nlohmann/json.hpp>

#include "engine/filter.h"
#include "engine/json_path.h"

namespace wp::engine {

enum class PayloadSchema : uint8_t {
  kKeyword,
  kInteger,
  kFloat,
  kBool,
  kUuid,
  kDatetime,
  kText,
  kGeo
};

/// Qdrant's name of a schema ("keyword", "integer", "float", "bool", "uuid", "datetime",
/// "text", "geo").
const char* payload_schema_name(PayloadSchema s);
/**
 * Qdrant's field_schema: a name or {"type": name, ...} (its storage options is_tenant, on_disk,
 * lookup, range and is_principal are accepted as booleans; they change nothing here; a text
 * index takes how it reads texts into `params` when given: its tokenizer ("word", "whitespace"
 * or "prefix"), lowercase, min_token_len and max_token_len, the lengths of the words it keeps,
 * and phrase_matching, kept and reported).
 * @throws wp::UserError naming `field` for an unknown type or a bad option.
 */
PayloadSchema parse_payload_schema(const nlohmann::json& j, const std::string& field,
                                   TextParams* params = nullptr);
/// A text index's params as Qdrant reports them: {"type": "text", "tokenizer", "lowercase"} and
/// the bounds given ("min_token_len", "max_token_len").
nlohmann::json text_index_params(const TextParams& params);
/// A keyword index's params as Qdrant reports them: {"type": "keyword"} and "prefix" when set.
nlohmann::json keyword_index_params(const TextParams& params);
/// A field_schema as it is stored: the schema's name, or a text index's params when they are not
/// the default ones.
nlohmann::json payload_schema_json(PayloadSchema s, const TextParams& params);

/// The index of one key.
class FieldIndex {
 public:
  /// A text index holds the words text_tokens reads with `params` (match.text reads a point's
  /// text and a query's as the index does).
  FieldIndex(std::string key, PayloadSchema schema, TextParams params = {});
  /// Not copied: ordered_keys_ points into by_string_ (moving the maps keeps their nodes).
  FieldIndex(const FieldIndex&) = delete;
  FieldIndex& operator=(const FieldIndex&) = delete;
  FieldIndex(FieldIndex&&) = default;
  FieldIndex& operator=(FieldIndex&&) = default;

  PayloadSchema schema() const { return schema_; }
  const TextParams& text_params() const { return text_; }
  const std::string& key() const { return key_; }

  /// Adds (removes) the point's values read from `payload`, a JSON tree or a point's packed
  /// bytes read in place (an index built over a collection's points unpacks none).
  void add(uint32_t id, const nlohmann::json& payload);
  void add(uint32_t id, const MsgValue& payload);
  void remove(uint32_t id, const nlohmann::json& payload);
  void remove(uint32_t id, const MsgValue& payload);

  /// Between these two, add() and remove() keep the points' order of their numbers unsorted,
  /// sorted once at end_bulk(): for an index built over a collection's points before anything
  /// reads it (one sort instead of a tree insert a point). Ranges are not asked meanwhile.
  void begin_bulk();
  void end_bulk();

  /// Points with at least one indexed value.
  size_t points() const { return points_; }
  size_t memory_bytes() const;

  /// Calls fn(value, ids) for each distinct indexed value (JSON: a string, a number, a bool).
  void for_each_posting(const std::function<void(const nlohmann::json&, const IdList&)>& fn) const;

  /// Numbers (integer, float) in order, from `from` on when given (inclusive), descending when
  /// asked: fn(value, ids) until it returns false. False for an index of another schema.
  bool for_each_number(bool descending, std::optional<double> from,
                       const std::function<bool(double, const IdList&)>& fn) const;

  std::optional<Candidates> strings(const std::vector<std::string>& any) const;
  /// A keyword index with the prefix option: the points of every key that begins with `prefix`
  /// (exact); nullopt for any other index.
  std::optional<Candidates> prefix(const std::string& prefix) const;
  std::optional<Candidates> integers(const std::vector<int64_t>& any) const;
  std::optional<Candidates> boolean(bool value) const;
  std::optional<Candidates> range(const RangeBounds& b) const;
  std::optional<Candidates> datetimes(const RangeBounds& b) const;
  /// Points holding every word of `query` (query_tokens; in one value or across an array's
  /// values: a superset), one of them at least (TextMatch::kAny: exact), or every one for a
  /// phrase (a superset: their order is not held).
  std::optional<Candidates> text(std::string_view query, TextMatch how = TextMatch::kAll) const;
  /// Points in the cells `area` touches (a superset: each is checked).
  std::optional<Candidates> geo(const GeoArea& area) const;

 private:
  /// The points of the keyed numbers within `b` (integer, float and datetime indexes): their
  /// postings united, or a test of each point's numbers where a sample finds many.
  Candidates numbers_within(const RangeBounds& b) const;
  /// The postings of the numbers within `b`.
  std::vector<const IdList*> lists_within(const RangeBounds& b) const;
  /// Every point holding a number within `b`, from number_of_ and numbers_of_.
  IdList points_within(const RangeBounds& b) const;
  /// Whether point `id` holds a number within `b` (read from number_of_).
  bool number_within(uint32_t id, const RangeBounds& b) const;
  /// Every point holding a number within `b`, from ordered_, recent_ and numbers_of_.
  IdList ordered_within(const RangeBounds& b) const;
  /// Appends the points of one number holding a number within `b` (ordered_ and recent_), in
  /// order of their numbers (not of their ids).
  void singles_within(const RangeBounds& b, IdList& out) const;
  /// fn(value, ids) for each indexed number from `from` on (inclusive), ascending or descending,
  /// until it returns false: by_number_'s postings, or, where it holds only the points of several
  /// numbers (!postings_), those merged with the order's runs of equal numbers.
  bool walk_numbers(bool descending, std::optional<double> from,
                    const std::function<bool(double, const IdList&)>& fn) const;
  /// Enters point id's one number into recent_ (merged into ordered_ when it fills).
  void order_number(uint32_t id, double value);
  /// Point id no longer holds `value` as its one number: out of recent_, or marked in ordered_.
  void unorder_number(uint32_t id, double value);
  /// recent_ merged into ordered_, the dropped entries left out and the marks cleared.
  void merge_ordered();
  /// Drops the order, or makes it again, as the number of distinct values asks (ordering_); and
  /// the postings of the points of one number (postings_), which the order then serves.
  void reconsider_order();
  /// Whether by_number_ lists a point holding `count` numbers (postings_ is false only for
  /// indexes that keep numbers: every geo cell is posted).
  bool posted(size_t count) const { return postings_ || count != 1; }
  /// Integer, float and datetime indexes keep each point's numbers by id.
  bool keeps_numbers() const;
  /// Keeps `numbers` (sorted, unique, not empty) as point id's (number_of_, numbers_of_).
  void keep_numbers(uint32_t id, const std::vector<double>& numbers);
  /// Calls f(value) for each indexed value at the key (each distinct value once); V is a view
  /// of the payload (JsonRef, MsgValue).
  template <typename V, typename F>
  void for_each_value(const V& payload, const F& f) const;
  template <typename V>
  void add_values(uint32_t id, const V& payload);
  template <typename V>
  void remove_values(uint32_t id, const V& payload);

  std::string key_;
  JsonPath path_;
  PayloadSchema schema_;
  TextParams text_;  ///< a text index's
  size_t points_ = 0;
  /// Some number indexed (now or before) is a float of integral value or an integer beyond 2^53:
  /// an integer match may then share its key with values it does not hold for.
  bool inexact_integers_ = false;
  std::unordered_map<std::string, IdList> by_string_;  ///< keyword, uuid; text: by word
  /// A keyword index with the prefix option: by_string_'s keys in order (views of them) and
  /// their postings, so that match.prefix finds the keys it begins by one search.
  std::map<std::string_view, const IdList*> ordered_keys_;
  /// Integer, float, datetime, geo cell. Where numbers are many (a value for every four points
  /// or more, from kOrderOnly points on) the points of one number are left out (postings_
  /// false): the order lists them, at 16 bytes a point where a node and a list a value cost
  /// ~100 (a float index of 1M points: ~91 -> 24 bytes a point, docs/hnsw.md).
  std::map<double, IdList> by_number_;
  IdList by_bool_[2];  ///< bool: false, true
  /// Integer, float, datetime: each point's number by internal id, NaN where it has none or
  /// several (those in numbers_of_). A range over many values tests the points a search reaches
  /// here in nanoseconds instead of uniting the postings of every value within it.
  std::vector<double> number_of_;
  std::unordered_map<uint32_t, std::vector<double>> numbers_of_;
  /// A point's one number and the point, ordered by number, then point.
  struct NumberEntry {
    double value;
    uint32_t id;
    bool operator<(const NumberEntry& o) const {
      return value < o.value || (value == o.value && id < o.id);
    }
  };
  /// Integer, float, datetime: the points of one number (number_of_) in order of their numbers,
  /// so that a range lists its points by two binary searches and a contiguous read however many
  /// distinct values it spans (about one a point for floats and timestamps, where uniting a
  /// posting a value walked the map's nodes one by one). A large sorted run (ordered_) and a
  /// tree new entries go into (recent_, merged into the run when it holds 16 sqrt(n), 4096 at
  /// least). A point
  /// that drops its number leaves recent_ at once; in ordered_ its entry stays until the next
  /// merge, the point marked in ordered_dropped_ (a bit a point: a range reads the mark of each
  /// entry it passes, and the number of a marked point only).
  std::vector<NumberEntry> ordered_;
  std::set<NumberEntry> recent_;
  /// An ordered_ entry of a marked point that holds another number now (or none).
  bool dropped(const NumberEntry& e) const;
  std::vector<uint64_t> ordered_dropped_;
  size_t dropped_entries_ = 0;  ///< ordered_ entries whose points are marked
  bool bulk_ = false;           ///< between begin_bulk() and end_bulk()
  bool ordering_ = true;        ///< false: ordered_ and recent_ kept empty (few values)
  bool postings_ = true;        ///< false: by_number_ holds the points of several numbers only
  size_t distinct_ = 0;         ///< distinct numbers in ordered_ at its last merge

 public:
  /// The fewest points (ids) from which the postings of one-number points may be left out.
  static constexpr size_t kOrderOnly = 16384;
  /// False where by_number_ holds only the points of several numbers (tests read it).
  bool keeps_postings() const { return postings_; }
};

/// Every payload index of a collection, as the IndexLookup filters ask.
class PayloadIndexes : public IndexLookup {
 public:
  /// Adds `index` (built from the live points), replacing the one of its key.
  void install(std::unique_ptr<FieldIndex> index);
  /// Drops the index of `key`; false when there is none.
  bool drop(const std::string& key);

  void add(uint32_t id, const nlohmann::json& payload);
  /// Removes a point's values read from its packed payload (nothing unpacked).
  void remove(uint32_t id, const MsgValue& payload);

  const std::map<std::string, std::unique_ptr<FieldIndex>>& fields() const { return fields_; }
  /// The index of `key`, or null.
  const FieldIndex* find(const std::string& key) const;
  bool empty() const { return fields_.empty(); }

  std::optional<Candidates> strings(const std::string& key,
                                    const std::vector<std::string>& any) const override;
  std::optional<Candidates> integers(const std::string& key,
                                     const std::vector<int64_t>& any) const override;
  std::optional<Candidates> boolean(const std::string& key, bool value) const override;
  std::optional<Candidates> range(const std::string& key, const RangeBounds& b) const override;
  std::optional<Candidates> datetimes(const std::string& key, const RangeBounds& b) const override;
  std::optional<Candidates> prefix(const std::string& key,
                                   const std::string& prefix) const override;
  std::optional<Candidates> text(const std::string& key, std::string_view query,
                                 TextMatch how) const override;
  std::optional<Candidates> geo(const std::string& key, const GeoArea& area) const override;

 private:
  std::map<std::string, std::unique_ptr<FieldIndex>> fields_;
};

}  // namespace wp::engine
