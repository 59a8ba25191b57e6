#include "engine/payload_index.h"

#include <algorithm>
#include <cmath>
#include <iterator>
#include <limits>

#include "engine/json_value.h"
#include "engine/word_rules.h"
#include "index/error.h"

namespace wp::engine {

using nlohmann::json;

namespace {

struct SchemaName {
  PayloadSchema schema;
  const char* name;
};
constexpr SchemaName kSchemas[] = {
    {PayloadSchema::kKeyword, "keyword"}, {PayloadSchema::kInteger, "integer"},
    {PayloadSchema::kFloat, "float"},     {PayloadSchema::kBool, "bool"},
    {PayloadSchema::kUuid, "uuid"},       {PayloadSchema::kDatetime, "datetime"},
    {PayloadSchema::kText, "text"},       {PayloadSchema::kGeo, "geo"}};
constexpr char kNames[] = "keyword, integer, float, bool, uuid, datetime, text, geo";

/// A text index's tokenizers by Qdrant's names.
struct TokenizerName {
  TextParams::Tokenizer tokenizer;
  const char* name;
};
constexpr TokenizerName kTokenizers[] = {{TextParams::Tokenizer::kWord, "word"},
                                         {TextParams::Tokenizer::kWhitespace, "whitespace"},
                                         {TextParams::Tokenizer::kPrefix, "prefix"}};
constexpr char kTokenizerNames[] = "\"word\", \"whitespace\", \"prefix\"";

const TextParams::Tokenizer* find_tokenizer(const std::string& name) {
  for (const TokenizerName& t : kTokenizers) {
    if (name == t.name) return &t.tokenizer;
  }
  return nullptr;
}

const char* tokenizer_name(TextParams::Tokenizer tokenizer) {
  for (const TokenizerName& t : kTokenizers) {
    if (tokenizer == t.tokenizer) return t.name;
  }
  return "?";
}

/// Geo cells: 1 degree of latitude (180 rows) by 1 degree of longitude (360 per row), keyed
/// row * 360 + column; kOddCell holds points outside the ranges.
constexpr int kGeoColumns = 360;
constexpr double kOddCell = -1;

int geo_row(double lat) {
  return std::clamp(static_cast<int>(std::floor(lat + 90)), 0, 179);
}
int geo_column(double lon) {
  return std::clamp(static_cast<int>(std::floor(lon + 180)), 0, kGeoColumns - 1);
}
double geo_cell(const GeoPoint& p) {
  if (!(p.lat >= -90 && p.lat <= 90 && p.lon >= -180 && p.lon <= 180)) return kOddCell;
  return geo_row(p.lat) * kGeoColumns + geo_column(p.lon);
}

void insert_id(IdList& list, uint32_t id) {
  if (list.empty() || list.back() < id) {
    list.push_back(id);  // the common case: ids are mostly added in increasing order
    return;
  }
  auto it = std::lower_bound(list.begin(), list.end(), id);
  if (it == list.end() || *it != id) list.insert(it, id);
}

/// Removes `id` from the list at `it`, and the entry when its list is left empty.
template <typename Map>
void erase_id(Map& map, const typename Map::key_type& key, uint32_t id) {
  auto it = map.find(key);
  if (it == map.end()) return;
  IdList& list = it->second;
  auto pos = std::lower_bound(list.begin(), list.end(), id);
  if (pos != list.end() && *pos == id) list.erase(pos);
  if (list.empty()) map.erase(it);
}

/// `ids` (below `end`, in any order, repeats allowed) sorted and unique: through a bitmap of the
/// ids, which costs O(ids + end / 64), unless they are so few that a sort costs less (10,000
/// ids of 1M: a sort took ~400 us).
IdList sorted_unique(IdList ids, size_t end) {
  if (ids.size() * 1024 < end) {
    std::sort(ids.begin(), ids.end());
    ids.erase(std::unique(ids.begin(), ids.end()), ids.end());
    return ids;
  }
  std::vector<uint64_t> bits(end / 64 + 1, 0);
  for (const uint32_t id : ids) bits[id / 64] |= uint64_t{1} << (id % 64);
  ids.clear();
  for (size_t w = 0; w < bits.size(); ++w) {
    for (uint64_t b = bits[w]; b; b &= b - 1) {
      ids.push_back(static_cast<uint32_t>(w * 64 + __builtin_ctzll(b)));
    }
  }
  return ids;
}

/// The union of sorted lists, sorted.
IdList unite_all(std::vector<const IdList*> lists) {
  size_t total = 0;
  uint32_t largest = 0;
  for (const IdList* l : lists) {
    total += l->size();
    if (!l->empty()) largest = std::max(largest, l->back());
  }
  IdList out;
  out.reserve(total);
  for (const IdList* l : lists) out.insert(out.end(), l->begin(), l->end());
  return sorted_unique(std::move(out), size_t{largest} + 1);
}

/// The union of `lists` as candidates: one list as it is, not copied.
Candidates of(std::vector<const IdList*> lists, bool exact) {
  if (lists.size() == 1) return Candidates::borrowed(*lists[0], exact);
  return Candidates(unite_all(std::move(lists)), exact);
}

}  // namespace

const char* payload_schema_name(PayloadSchema s) {
  for (const SchemaName& n : kSchemas) {
    if (n.schema == s) return n.name;
  }
  return "?";
}

PayloadSchema parse_payload_schema(const json& j, const std::string& field, TextParams* params) {
  const json* type = &j;
  if (j.is_object()) {
    WP_THROW_IF_NOT(j.contains("type"), field, ".type: missing (expected one of ", kNames, ")");
    type = &j["type"];
  }
  const std::string where = j.is_object() ? field + ".type" : field;
  WP_THROW_IF_NOT(type->is_string(), where, ": expected one of ", kNames, ", got ",
                  show_json(*type));
  const std::string& name = type->get_ref<const std::string&>();
  const SchemaName* found = std::find_if(std::begin(kSchemas), std::end(kSchemas),
                                         [&](const SchemaName& n) { return name == n.name; });
  WP_THROW_IF_NOT(found != std::end(kSchemas), where, ": unknown schema ", show_json(*type),
                  " (expected one of ", kNames, ")");
  const json options = j.is_object() ? j : json::object();
  TextParams read;  // a text index's, checked whole once every option is read
  json stopwords, stemmer;
  bool ascii_folding = false;
  for (const auto& [key, value] : options.items()) {
    const std::string at = field + "." + show_text(key);
    if (key == "type" || value.is_null()) continue;
    if (key == "is_tenant" || key == "on_disk" || key == "lookup" || key == "range" ||
        key == "is_principal") {
      WP_THROW_IF_NOT(value.is_boolean(), at, ": expected a bool, got ", show_json(value));
    } else if (found->schema == PayloadSchema::kKeyword && key == "prefix") {
      WP_THROW_IF_NOT(value.is_boolean(), at, ": expected a bool, got ", show_json(value));
      read.prefix = value.get<bool>();
    } else if (found->schema == PayloadSchema::kText && key == "tokenizer") {
      const TextParams::Tokenizer* tokenizer =
          value.is_string() ? find_tokenizer(value.get_ref<const std::string&>()) : nullptr;
      WP_THROW_IF_NOT(
          tokenizer, at, ": expected one of ", kTokenizerNames,
          value == "multilingual" ? " (the multilingual tokenizer is not supported)" : "", ", got ",
          show_json(value));
      read.tokenizer = *tokenizer;
    } else if (found->schema == PayloadSchema::kText && (key == "stopwords" || key == "stemmer")) {
      (key == "stopwords" ? stopwords : stemmer) = value;  // read once the case is known
    } else if (found->schema == PayloadSchema::kText &&
               (key == "lowercase" || key == "phrase_matching" || key == "ascii_folding")) {
      WP_THROW_IF_NOT(value.is_boolean(), at, ": expected a bool, got ", show_json(value));
      (key == "lowercase"         ? read.lowercase
       : key == "phrase_matching" ? read.phrase_matching
                                  : ascii_folding) = value.get<bool>();
    } else if (found->schema == PayloadSchema::kText &&
               (key == "min_token_len" || key == "max_token_len")) {
      WP_THROW_IF_NOT(value.is_number_unsigned() && value.get<uint64_t>() <= UINT32_MAX - 1, at,
                      ": expected a length of 0 or more characters, got ", show_json(value));
      (key == "min_token_len" ? read.min : read.max) = value.get<uint32_t>();
    } else {
      throw UserError(at + ": unknown option for a " + name +
                      " index (expected is_tenant, on_disk, lookup, range, is_principal" +
                      (found->schema == PayloadSchema::kText
                           ? ", tokenizer, lowercase, min_token_len, max_token_len, "
                             "phrase_matching, ascii_folding, stopwords, stemmer)"
                       : found->schema == PayloadSchema::kKeyword ? ", prefix)"
                                                                  : ")"));
    }
  }
  WP_THROW_IF_NOT(read.min <= read.max, field, ".min_token_len: ", read.min,
                  " is more than max_token_len ", read.max, " (no word would be kept)");
  // A word's prefixes take the square of its length: a prefix index holds those of up to
  // TextParams::kLongestPrefix characters (a longer word is held by those), and takes no more.
  if (read.tokenizer == TextParams::Tokenizer::kPrefix) {
    WP_THROW_IF_NOT(read.max == UINT32_MAX || read.max <= TextParams::kLongestPrefix, field,
                    ".max_token_len: a prefix index holds prefixes of at most ",
                    TextParams::kLongestPrefix, " characters, got ", read.max);
    WP_THROW_IF_NOT(read.min <= TextParams::kLongestPrefix, field,
                    ".min_token_len: a prefix index holds prefixes of at most ",
                    TextParams::kLongestPrefix, " characters, got ", read.min);
  }
  read.rules = WordRules::parse(stopwords, stemmer, read.lowercase, ascii_folding, field);
  if (params) *params = read;
  return found->schema;
}

json text_index_params(const TextParams& params) {
  json j{{"type", payload_schema_name(PayloadSchema::kText)},
         {"tokenizer", tokenizer_name(params.tokenizer)},
         {"lowercase", params.lowercase}};
  if (params.min != 0) j["min_token_len"] = params.min;
  if (params.max != UINT32_MAX) j["max_token_len"] = params.max;
  if (params.phrase_matching) j["phrase_matching"] = true;
  if (params.rules && params.rules->folds()) j["ascii_folding"] = true;
  if (params.rules && !params.rules->stopwords_json().is_null()) {
    j["stopwords"] = params.rules->stopwords_json();
  }
  if (params.rules && !params.rules->stemmer_json().is_null()) {
    j["stemmer"] = params.rules->stemmer_json();
  }
  return j;
}

json keyword_index_params(const TextParams& params) {
  json j{{"type", payload_schema_name(PayloadSchema::kKeyword)}};
  if (params.prefix) j["prefix"] = true;
  return j;
}

json payload_schema_json(PayloadSchema s, const TextParams& params) {
  if (params.is_default()) return payload_schema_name(s);
  if (s == PayloadSchema::kKeyword) return keyword_index_params(params);
  if (s != PayloadSchema::kText) return payload_schema_name(s);
  return text_index_params(params);
}

FieldIndex::FieldIndex(std::string key, PayloadSchema schema, TextParams params)
    : key_(std::move(key)),
      path_(parse_json_path(key_, "field_name")),
      schema_(schema),
      text_(params) {}

template <typename V, typename F>
void FieldIndex::for_each_value(const V& payload, const F& f) const {
  std::vector<std::string> strings;
  std::vector<double> numbers;
  bool bools[2] = {false, false};
  bool float_integral = false;
  auto take = [&](const V& v) {
    switch (schema_) {
      case PayloadSchema::kKeyword:
      case PayloadSchema::kUuid:
        if (v.is_string()) strings.emplace_back(v.string());
        break;
      case PayloadSchema::kInteger:
      case PayloadSchema::kFloat:
        if (v.is_number()) {
          numbers.push_back(v.number());
          if (v.is_number_float() && std::trunc(numbers.back()) == numbers.back()) {
            float_integral = true;
          }
        }
        break;
      case PayloadSchema::kBool:
        if (v.is_boolean()) bools[v.boolean()] = true;
        break;
      case PayloadSchema::kDatetime:
        if (v.is_string()) {
          const auto t = parse_datetime(v.string());
          if (t) numbers.push_back(static_cast<double>(*t));
        }
        break;
      case PayloadSchema::kGeo:
        if (const auto p = geo_point_in(v)) numbers.push_back(geo_cell(*p));
        break;
      case PayloadSchema::kText:
        if (v.is_string()) {
          for (std::string& w : text_tokens(v.string(), text_)) strings.push_back(std::move(w));
        }
        break;
    }
  };
  any_value_at(path_, payload, [&](const V& v) {
    if (v.is_array()) {
      v.any_element([&](const V& e) {
        take(e);
        return false;
      });
    } else {
      take(v);
    }
    return false;  // visit every value
  });
  std::sort(strings.begin(), strings.end());
  strings.erase(std::unique(strings.begin(), strings.end()), strings.end());
  std::sort(numbers.begin(), numbers.end());
  numbers.erase(std::unique(numbers.begin(), numbers.end()), numbers.end());
  f(strings, numbers, bools, float_integral);
}

void FieldIndex::add(uint32_t id, const json& payload) {
  add_values(id, JsonRef(payload));
}

void FieldIndex::add(uint32_t id, const MsgValue& payload) {
  add_values(id, payload);
}

template <typename V>
void FieldIndex::add_values(uint32_t id, const V& payload) {
  for_each_value(payload,
                 [&](const std::vector<std::string>& strings, const std::vector<double>& numbers,
                     const bool* bools, bool float_integral) {
                   inexact_integers_ = inexact_integers_ || float_integral;
                   for (const std::string& s : strings) {
                     const auto [it, fresh] = by_string_.try_emplace(s);
                     insert_id(it->second, id);
                     if (fresh && text_.prefix) ordered_keys_.emplace(it->first, &it->second);
                   }
                   const bool post = posted(numbers.size());
                   for (double x : numbers) {
                     if (post) insert_id(by_number_[x], id);
                     inexact_integers_ = inexact_integers_ || std::abs(x) > 9007199254740992.0;
                   }
                   for (int b = 0; b < 2; ++b) {
                     if (bools[b]) insert_id(by_bool_[b], id);
                   }
                   if (keeps_numbers() && !numbers.empty()) keep_numbers(id, numbers);
                   points_ += !strings.empty() || !numbers.empty() || bools[0] || bools[1];
                 });
}

void FieldIndex::remove(uint32_t id, const json& payload) {
  remove_values(id, JsonRef(payload));
}

void FieldIndex::remove(uint32_t id, const MsgValue& payload) {
  remove_values(id, payload);
}

template <typename V>
void FieldIndex::remove_values(uint32_t id, const V& payload) {
  for_each_value(payload, [&](const std::vector<std::string>& strings,
                              const std::vector<double>& numbers, const bool* bools, bool) {
    for (const std::string& s : strings) {
      if (text_.prefix) {  // out of the order before its key is freed
        const auto it = by_string_.find(s);
        if (it != by_string_.end() && it->second.size() == 1 && it->second[0] == id) {
          ordered_keys_.erase(std::string_view(it->first));
        }
      }
      erase_id(by_string_, s, id);
    }
    if (posted(numbers.size())) {
      for (double x : numbers) erase_id(by_number_, x, id);
    }
    for (int b = 0; b < 2; ++b) {
      if (!bools[b]) continue;
      auto pos = std::lower_bound(by_bool_[b].begin(), by_bool_[b].end(), id);
      if (pos != by_bool_[b].end() && *pos == id) by_bool_[b].erase(pos);
    }
    if (id < number_of_.size()) {
      const double before = number_of_[id];
      number_of_[id] = std::numeric_limits<double>::quiet_NaN();
      if (!std::isnan(before)) unorder_number(id, before);  // after: see keep_numbers
    }
    if (numbers.size() > 1) numbers_of_.erase(id);
    points_ -= !strings.empty() || !numbers.empty() || bools[0] || bools[1];
  });
}

size_t FieldIndex::memory_bytes() const {
  size_t n = sizeof(*this) + by_string_.bucket_count() * sizeof(void*);
  for (const auto& [s, list] : by_string_) {
    n += s.capacity() + sizeof(std::string) + sizeof(IdList) + 2 * sizeof(void*) +
         list.capacity() * sizeof(uint32_t);
  }
  n += ordered_keys_.size() * (sizeof(std::string_view) + 5 * sizeof(void*));
  for (const auto& [x, list] : by_number_) {
    n += sizeof(double) + sizeof(IdList) + 4 * sizeof(void*) + list.capacity() * sizeof(uint32_t);
  }
  n += (by_bool_[0].capacity() + by_bool_[1].capacity()) * sizeof(uint32_t);
  n += number_of_.capacity() * sizeof(double) + numbers_of_.bucket_count() * sizeof(void*);
  n += ordered_.capacity() * sizeof(NumberEntry) + ordered_dropped_.capacity() * sizeof(uint64_t) +
       recent_.size() * (sizeof(NumberEntry) + 4 * sizeof(void*));
  for (const auto& [id, numbers] : numbers_of_) {
    n += sizeof(uint32_t) + sizeof(numbers) + 2 * sizeof(void*) +
         numbers.capacity() * sizeof(double);
  }
  return n;
}

void FieldIndex::for_each_posting(const std::function<void(const json&, const IdList&)>& fn) const {
  for (const auto& [value, ids] : by_string_) fn(json(value), ids);
  walk_numbers(false, std::nullopt, [&](double x, const IdList& ids) {
    int64_t n = static_cast<int64_t>(x);
    const bool integral = std::trunc(x) == x && std::abs(x) < 9.2e18;
    fn(integral && schema_ == PayloadSchema::kInteger ? json(n) : json(x), ids);
    return true;
  });
  for (int b = 0; b < 2; ++b) {
    if (!by_bool_[b].empty()) fn(json(b == 1), by_bool_[b]);
  }
}

bool FieldIndex::for_each_number(bool descending, std::optional<double> from,
                                 const std::function<bool(double, const IdList&)>& fn) const {
  if (schema_ != PayloadSchema::kInteger && schema_ != PayloadSchema::kFloat) return false;
  return walk_numbers(descending, from, fn);
}

bool FieldIndex::walk_numbers(bool descending, std::optional<double> from,
                              const std::function<bool(double, const IdList&)>& fn) const {
  if (postings_) {
    if (!descending) {
      for (auto it = from ? by_number_.lower_bound(*from) : by_number_.begin();
           it != by_number_.end(); ++it) {
        if (!fn(it->first, it->second)) break;
      }
      return true;
    }
    for (auto it = from ? std::make_reverse_iterator(by_number_.upper_bound(*from))
                        : by_number_.rbegin();
         it != by_number_.rend(); ++it) {
      if (!fn(it->first, it->second)) break;
    }
    return true;
  }
  // Three sources in the same order: the run (its dropped entries skipped), the tree, and the
  // postings of the points of several numbers; each next number is the first of their heads.
  auto walk = [&](auto a, auto a_end, auto r, auto r_end, auto m, auto m_end, auto before) {
    IdList ids;
    for (;;) {
      while (a != a_end && dropped(*a)) ++a;
      std::optional<double> v;
      const auto take = [&](double x) {
        if (!v || before(x, *v)) v = x;
      };
      if (a != a_end) take(a->value);
      if (r != r_end) take(r->value);
      if (m != m_end) take(m->first);
      if (!v) return;
      ids.clear();
      for (; a != a_end && a->value == *v; ++a) {
        if (!dropped(*a)) ids.push_back(a->id);
      }
      for (; r != r_end && r->value == *v; ++r) ids.push_back(r->id);
      if (m != m_end && m->first == *v) {
        ids.insert(ids.end(), m->second.begin(), m->second.end());
        ++m;
      }
      std::sort(ids.begin(), ids.end());
      if (!fn(*v, ids)) return;
    }
  };
  if (!descending) {
    const NumberEntry lo{from.value_or(-std::numeric_limits<double>::infinity()), 0};
    walk(std::lower_bound(ordered_.begin(), ordered_.end(), lo), ordered_.end(),
         recent_.lower_bound(lo), recent_.end(),
         from ? by_number_.lower_bound(*from) : by_number_.begin(), by_number_.end(),
         std::less<double>());
  } else {
    const NumberEntry hi{from.value_or(std::numeric_limits<double>::infinity()),
                         std::numeric_limits<uint32_t>::max()};
    walk(std::make_reverse_iterator(std::upper_bound(ordered_.begin(), ordered_.end(), hi)),
         ordered_.rend(), std::make_reverse_iterator(recent_.upper_bound(hi)), recent_.rend(),
         from ? std::make_reverse_iterator(by_number_.upper_bound(*from)) : by_number_.rbegin(),
         by_number_.rend(), std::greater<double>());
  }
  return true;
}

std::optional<Candidates> FieldIndex::strings(const std::vector<std::string>& any) const {
  if (schema_ != PayloadSchema::kKeyword && schema_ != PayloadSchema::kUuid) return std::nullopt;
  std::vector<const IdList*> lists;
  for (const std::string& s : any) {
    auto it = by_string_.find(s);
    if (it != by_string_.end()) lists.push_back(&it->second);
  }
  return of(std::move(lists), true);
}

std::optional<Candidates> FieldIndex::prefix(const std::string& prefix) const {
  if (schema_ != PayloadSchema::kKeyword || !text_.prefix) return std::nullopt;
  std::vector<const IdList*> lists;
  for (auto it = ordered_keys_.lower_bound(prefix);
       it != ordered_keys_.end() && it->first.substr(0, prefix.size()) == prefix; ++it) {
    lists.push_back(it->second);
  }
  return of(std::move(lists), true);
}

std::optional<Candidates> FieldIndex::integers(const std::vector<int64_t>& any) const {
  if (schema_ != PayloadSchema::kInteger && schema_ != PayloadSchema::kFloat) return std::nullopt;
  std::vector<const IdList*> lists;
  std::vector<IdList> runs;  // the order's points of each value (!postings_)
  runs.reserve(any.size());  // lists point into it
  for (int64_t n : any) {
    const double x = static_cast<double>(n);
    auto it = by_number_.find(x);
    if (it != by_number_.end()) lists.push_back(&it->second);
    if (postings_) continue;
    RangeBounds just;
    just.has_gte = just.has_lte = true;
    just.gte = just.lte = x;
    runs.emplace_back();
    singles_within(just, runs.back());
    std::sort(runs.back().begin(), runs.back().end());
    lists.push_back(&runs.back());
  }
  if (!runs.empty()) return Candidates(unite_all(std::move(lists)), !inexact_integers_);
  return of(std::move(lists), !inexact_integers_);
}

std::optional<Candidates> FieldIndex::boolean(bool value) const {
  if (schema_ != PayloadSchema::kBool) return std::nullopt;
  return Candidates::borrowed(by_bool_[value], true);
}

std::optional<Candidates> FieldIndex::range(const RangeBounds& b) const {
  if (schema_ != PayloadSchema::kInteger && schema_ != PayloadSchema::kFloat) return std::nullopt;
  return numbers_within(b);
}

std::optional<Candidates> FieldIndex::datetimes(const RangeBounds& b) const {
  if (schema_ != PayloadSchema::kDatetime) return std::nullopt;
  return numbers_within(b);
}

std::optional<Candidates> FieldIndex::text(std::string_view query, TextMatch how) const {
  if (schema_ != PayloadSchema::kText) return std::nullopt;
  std::vector<const IdList*> lists;
  for (const std::string& t : query_tokens(query, text_)) {
    auto it = by_string_.find(t);
    if (it != by_string_.end()) {
      lists.push_back(&it->second);
    } else if (how != TextMatch::kAny) {
      return Candidates{{}, true};  // a word no point holds
    }
  }
  if (lists.empty()) return Candidates{{}, true};  // no word to look for (or held): nothing
  if (how == TextMatch::kAny) {
    // A point holding one of the words matches, in whichever of its values.
    IdList out;
    for (const IdList* l : lists) {
      IdList next;
      std::set_union(out.begin(), out.end(), l->begin(), l->end(), std::back_inserter(next));
      out = std::move(next);
    }
    return Candidates{std::move(out), true};
  }
  // The shortest list first: the intersection is at most as long.
  std::sort(lists.begin(), lists.end(),
            [](const IdList* a, const IdList* b) { return a->size() < b->size(); });
  IdList out = *lists[0];
  for (size_t i = 1; i < lists.size() && !out.empty(); ++i) {
    IdList next;
    std::set_intersection(out.begin(), out.end(), lists[i]->begin(), lists[i]->end(),
                          std::back_inserter(next));
    out = std::move(next);
  }
  // A point whose words are spread over an array's values is listed but does not match, nor one
  // whose words come in another order than a phrase's.
  return Candidates{std::move(out), false};
}

std::optional<Candidates> FieldIndex::geo(const GeoArea& a) const {
  if (schema_ != PayloadSchema::kGeo) return std::nullopt;
  std::vector<const IdList*> lists;
  if (auto odd = by_number_.find(kOddCell); odd != by_number_.end()) lists.push_back(&odd->second);
  // Columns: one interval, or two across the antimeridian.
  std::vector<std::pair<int, int>> columns;
  if (a.lon_lo <= a.lon_hi) {
    columns.push_back({geo_column(a.lon_lo), geo_column(a.lon_hi)});
  } else {
    columns.push_back({geo_column(a.lon_lo), kGeoColumns - 1});
    columns.push_back({0, geo_column(a.lon_hi)});
  }
  for (int row = geo_row(a.lat_lo); row <= geo_row(a.lat_hi); ++row) {
    for (const auto& [first, last] : columns) {
      const double lo = row * kGeoColumns + first, hi = row * kGeoColumns + last;
      for (auto it = by_number_.lower_bound(lo); it != by_number_.end() && it->first <= hi; ++it) {
        lists.push_back(&it->second);
      }
    }
  }
  return of(std::move(lists), false);
}

bool FieldIndex::keeps_numbers() const {
  return schema_ == PayloadSchema::kInteger || schema_ == PayloadSchema::kFloat ||
         schema_ == PayloadSchema::kDatetime;
}

namespace {
bool any_within(const std::vector<double>& numbers, const RangeBounds& b) {
  return std::any_of(numbers.begin(), numbers.end(), [&](double v) { return b.contains(v); });
}
}  // namespace

void FieldIndex::keep_numbers(uint32_t id, const std::vector<double>& numbers) {
  constexpr double kNone = std::numeric_limits<double>::quiet_NaN();
  if (number_of_.size() <= id) number_of_.resize(id + 1, kNone);
  const double before = number_of_[id];  // a number when added again without a removal
  number_of_[id] = numbers.size() == 1 ? numbers[0] : kNone;
  if (numbers.size() > 1) numbers_of_[id] = numbers;
  // After number_of_ holds what the point holds now: a merge these may start keeps the entries
  // of marked points that hold their number.
  if (!std::isnan(before)) unorder_number(id, before);
  if (numbers.size() == 1) order_number(id, numbers[0]);
  if (!bulk_) reconsider_order();
}

void FieldIndex::reconsider_order() {
  const size_t n = number_of_.size();
  // The postings of the points of one number back where values are few (each posting long:
  // listed from the order, a copy) or many points hold several numbers (each tested by a range
  // read in order).
  if (!postings_ && (n < kOrderOnly || distinct_ * 16 <= n || numbers_of_.size() * 8 > n)) {
    for (uint32_t id = 0; id < n; ++id) {
      if (!std::isnan(number_of_[id])) insert_id(by_number_[number_of_[id]], id);
    }
    postings_ = true;
  }
  const size_t values = postings_ ? by_number_.size() : distinct_;
  // Left out where values are many (one for four points or more): the order lists them at 16
  // bytes a point, a value's node and list cost ~100.
  if (postings_ && ordering_ && n >= kOrderOnly && values * 4 > n && numbers_of_.size() * 16 <= n) {
    for (auto it = by_number_.begin(); it != by_number_.end();) {
      IdList& ids = it->second;
      ids.erase(std::remove_if(ids.begin(), ids.end(),
                               [&](uint32_t id) { return !std::isnan(number_of_[id]); }),
                ids.end());
      if (ids.empty()) {
        it = by_number_.erase(it);
      } else {
        ids.shrink_to_fit();
        ++it;
      }
    }
    postings_ = false;
    distinct_ = values;
    return;
  }
  // A range over few values of many points each unites their postings (numbers_within) and
  // never reads the order (16 bytes a point): dropped where values are far fewer than that
  // switch asks (1 in 128 points, from 64k points on), made again from number_of_ (one sort)
  // where they are far more (1 in 32).
  if (postings_ && ordering_ && n >= 65536 && values * 128 <= n) {
    ordering_ = false;
    std::vector<NumberEntry>().swap(ordered_);  // its memory given back (= {} keeps it)
    recent_.clear();
    std::vector<uint64_t>().swap(ordered_dropped_);
    dropped_entries_ = 0;
  } else if (!ordering_ && values * 32 > n) {
    ordering_ = true;
    for (uint32_t id = 0; id < n; ++id) {
      if (!std::isnan(number_of_[id])) ordered_.push_back({number_of_[id], id});
    }
    std::sort(ordered_.begin(), ordered_.end());
  }
}

void FieldIndex::order_number(uint32_t id, double value) {
  if (!ordering_) return;
  if (bulk_) {  // sorted once, at end_bulk()
    ordered_.push_back({value, id});
    return;
  }
  recent_.insert({value, id});
  // 16 sqrt(n) entries (16,000 at 1M): a range reads the tree's node by node, a tenth of them
  // for a 10% range; a merge every 16 sqrt(n) points costs each ~sqrt(n) / 16 entries moved.
  const size_t most = std::max<size_t>(
      4096, static_cast<size_t>(16 * std::sqrt(static_cast<double>(ordered_.size()))));
  if (recent_.size() >= most) merge_ordered();
}

void FieldIndex::begin_bulk() {
  merge_ordered();
  bulk_ = true;
  // Numbers indexed in bulk go into the order only (not into both, which held ~118 bytes a point
  // for a float); end_bulk() makes their postings if values are few.
  if (points_ == 0 && keeps_numbers() && ordering_) postings_ = false;
}

void FieldIndex::end_bulk() {
  bulk_ = false;
  std::sort(ordered_.begin(), ordered_.end());
  merge_ordered();  // drops what was removed meanwhile, if anything
  ordered_.shrink_to_fit();
  reconsider_order();
}

void FieldIndex::unorder_number(uint32_t id, double value) {
  if (!ordering_) return;
  if (!bulk_ && recent_.erase({value, id})) return;
  if (ordered_dropped_.size() <= id / 64) ordered_dropped_.resize(id / 64 + 1, 0);
  ordered_dropped_[id / 64] |= uint64_t{1} << (id % 64);
  // Once half the run is dropped, a merge gives its memory back (a pass, as a merge costs).
  if (++dropped_entries_ * 2 > ordered_.size() && dropped_entries_ >= 4096) merge_ordered();
}

void FieldIndex::merge_ordered() {
  size_t n = 0;
  for (size_t i = 0; i < ordered_.size(); ++i) {
    if (!dropped(ordered_[i])) ordered_[n++] = ordered_[i];
  }
  // recent_ merged in from the back, into the room past the kept entries.
  ordered_.resize(n + recent_.size());
  size_t k = ordered_.size();
  for (auto r = recent_.rbegin(); r != recent_.rend(); ++r) {
    while (n > 0 && *r < ordered_[n - 1]) ordered_[--k] = ordered_[--n];
    ordered_[--k] = *r;
  }
  // A point dropped and given its number again has two entries, side by side now.
  ordered_.erase(std::unique(ordered_.begin(), ordered_.end(),
                             [](const NumberEntry& a, const NumberEntry& b) {
                               return a.id == b.id && a.value == b.value;
                             }),
                 ordered_.end());
  recent_.clear();
  ordered_dropped_.clear();
  dropped_entries_ = 0;
  distinct_ = 0;
  for (size_t i = 0; i < ordered_.size(); ++i) {
    distinct_ += i == 0 || ordered_[i].value != ordered_[i - 1].value;
  }
}

bool FieldIndex::dropped(const NumberEntry& e) const {
  const uint32_t id = e.id;
  return id / 64 < ordered_dropped_.size() && (ordered_dropped_[id / 64] >> (id % 64) & 1) &&
         !(number_of_[id] == e.value);
}

IdList FieldIndex::ordered_within(const RangeBounds& b) const {
  IdList out;
  singles_within(b, out);
  for (const auto& [id, numbers] : numbers_of_) {
    if (any_within(numbers, b)) out.push_back(id);
  }
  return sorted_unique(std::move(out), number_of_.size());
}

void FieldIndex::singles_within(const RangeBounds& b, IdList& out) const {
  const NumberEntry from{b.lowest(), 0};
  for (auto it = std::lower_bound(ordered_.begin(), ordered_.end(), from); it != ordered_.end();
       ++it) {
    if (b.past(it->value)) break;
    if (b.contains(it->value) && !dropped(*it)) out.push_back(it->id);
  }
  for (auto it = recent_.lower_bound(from); it != recent_.end() && !b.past(it->value); ++it) {
    if (b.contains(it->value)) out.push_back(it->id);
  }
}

bool FieldIndex::number_within(uint32_t id, const RangeBounds& b) const {
  if (id >= number_of_.size()) return false;
  const double x = number_of_[id];
  if (!std::isnan(x)) return b.contains(x);  // no payload number is NaN: NaN means none or some
  if (numbers_of_.empty()) return false;
  const auto it = numbers_of_.find(id);
  return it != numbers_of_.end() && any_within(it->second, b);
}

IdList FieldIndex::points_within(const RangeBounds& b) const {
  // One pass over the numbers by id (8 bytes a point), without a branch a point: half of them
  // within at random, a branch mispredicted every other point cost most of the pass.
  IdList out(number_of_.size());
  size_t n = 0;
  for (uint32_t id = 0; id < number_of_.size(); ++id) {
    out[n] = id;
    n += b.contains(number_of_[id]);  // NaN: none, or several (numbers_of_)
  }
  out.resize(n);
  for (const auto& [id, numbers] : numbers_of_) {
    if (any_within(numbers, b)) out.push_back(id);
  }
  std::sort(out.begin() + static_cast<std::ptrdiff_t>(n), out.end());
  std::inplace_merge(out.begin(), out.begin() + static_cast<std::ptrdiff_t>(n), out.end());
  return out;
}

Candidates FieldIndex::numbers_within(const RangeBounds& b) const {
  // The filter's range check reads every number as a double, as the index keys it: exact.
  // Few values of many points each (1000 integers at 1M points): their postings, O(matches) (one
  // value's borrowed, not copied). Otherwise the points in order of their numbers (ordered_),
  // O(matches) too where the postings of a float or a timestamp a point cost a map node a value
  // (1% of 1M points listed in 114-135 us against 1.5-2.2 ms, docs/hnsw.md), unless many points
  // hold several numbers (not in the order: each would be tested).
  const size_t n = number_of_.size();
  const bool few_values = postings_ && by_number_.size() * 64 <= n;
  // Without the postings of one-number points, the order is the only list of them.
  const bool in_order = !postings_ || (!few_values && ordering_ && numbers_of_.size() * 16 <= n);
  // Listing copies every matching id, which at 1M points and half of them matching cost several
  // times the search. Probes of the points' numbers (spread over the ids, at most 512, up to the
  // 16th within the range) tell such a range: it is then given as a test of each point.
  if (n >= 1024) {  // below, either costs microseconds
    size_t probes = 0, within = 0;
    for (; probes < 512 && within < 16; ++probes) {
      within += number_within(static_cast<uint32_t>(spread_probe(probes, n)), b);
    }
    if (within >= 16) {
      IdTest test;
      test.contains = [this, b](uint32_t id) { return number_within(id, b); };
      test.estimate = within * n / probes;
      // Listed (count, scroll, a should) in order below a quarter of the points (143 against
      // 355 us at 10% of 200k, 833 against 581 us at 50%), by a pass over every point's number
      // otherwise.
      test.list = [this, b, few_values, in_order, in_quarter = test.estimate * 4 < n] {
        if (few_values) return unite_all(lists_within(b));
        return in_order && in_quarter ? ordered_within(b) : points_within(b);
      };
      return Candidates::tested(std::move(test), true);
    }
  }
  return in_order ? Candidates(ordered_within(b), true) : of(lists_within(b), true);
}

std::vector<const IdList*> FieldIndex::lists_within(const RangeBounds& b) const {
  std::vector<const IdList*> lists;
  for (auto it = by_number_.lower_bound(b.lowest()); it != by_number_.end(); ++it) {
    if (b.past(it->first)) break;
    if (b.contains(it->first)) lists.push_back(&it->second);
  }
  return lists;
}

void PayloadIndexes::install(std::unique_ptr<FieldIndex> index) {
  const std::string key = index->key();
  fields_[key] = std::move(index);
}

bool PayloadIndexes::drop(const std::string& key) {
  return fields_.erase(key) > 0;
}

void PayloadIndexes::add(uint32_t id, const json& payload) {
  for (auto& [key, index] : fields_) index->add(id, payload);
}

void PayloadIndexes::remove(uint32_t id, const MsgValue& payload) {
  for (auto& [key, index] : fields_) index->remove(id, payload);
}

const FieldIndex* PayloadIndexes::find(const std::string& key) const {
  auto it = fields_.find(key);
  return it == fields_.end() ? nullptr : it->second.get();
}

std::optional<Candidates> PayloadIndexes::strings(const std::string& key,
                                                  const std::vector<std::string>& any) const {
  const FieldIndex* f = find(key);
  return f ? f->strings(any) : std::nullopt;
}

std::optional<Candidates> PayloadIndexes::integers(const std::string& key,
                                                   const std::vector<int64_t>& any) const {
  const FieldIndex* f = find(key);
  return f ? f->integers(any) : std::nullopt;
}

std::optional<Candidates> PayloadIndexes::boolean(const std::string& key, bool value) const {
  const FieldIndex* f = find(key);
  return f ? f->boolean(value) : std::nullopt;
}

std::optional<Candidates> PayloadIndexes::range(const std::string& key,
                                                const RangeBounds& b) const {
  const FieldIndex* f = find(key);
  return f ? f->range(b) : std::nullopt;
}

std::optional<Candidates> PayloadIndexes::datetimes(const std::string& key,
                                                    const RangeBounds& b) const {
  const FieldIndex* f = find(key);
  return f ? f->datetimes(b) : std::nullopt;
}

std::optional<Candidates> PayloadIndexes::geo(const std::string& key, const GeoArea& area) const {
  const FieldIndex* f = find(key);
  return f ? f->geo(area) : std::nullopt;
}

std::optional<Candidates> PayloadIndexes::prefix(const std::string& key,
                                                 const std::string& prefix) const {
  const FieldIndex* f = find(key);
  return f ? f->prefix(prefix) : std::nullopt;
}

std::optional<Candidates> PayloadIndexes::text(const std::string& key, std::string_view query,
                                               TextMatch how) const {
  const FieldIndex* f = find(key);
  return f ? f->text(query, how) : std::nullopt;
}

}  // namespace wp::engine
