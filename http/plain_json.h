#pragma once
/**
 * @file plain_json.h
 * What the plain readers (plain_search.h, plain_upsert.h) share: a body parsed by simdjson's DOM
 * parser into its tape (a flat array of tokens) rather than into nlohmann's tree of allocated
 * nodes, and readers of its values that give the values the DOM path's readers give (a float as
 * get_vector reads one, a count as get_count) or false, never an error: a body they cannot read
 * takes the DOM path, which answers it or names the field that is wrong.
 */
#include <cstddef>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include <simdjson.h>

namespace wp::http::plain {

namespace sj = simdjson;

/// Bodies up to this size are parsed into a tape each thread keeps (no allocation per request).
inline constexpr size_t kKeptTape = size_t{1} << 18;
/// A longer body takes one of the larger tapes the process keeps between requests (at most this
/// many, each as large as the largest body it has read; a new one when none is free), and gives it
/// back with its PlainJson. A fresh tape of a few megabytes faults in each page it writes: on the
/// VMs measured, a 9 MB upsert body took about twice as long to parse into a fresh tape as into a
/// kept one. release_large_tapes() frees the kept ones.
inline constexpr size_t kKeptLargeTapes = 2;

/// Frees the large tapes kept between requests (the server calls it once writes pause, with
/// malloc_trim).
void release_large_tapes();

struct LargeTape;

/// One parsed body; its elements stay valid while it lives and the thread parses no other body
/// up to kKeptTape bytes.
class PlainJson {
 public:
  PlainJson();
  ~PlainJson();
  PlainJson(const PlainJson&) = delete;
  PlainJson& operator=(const PlainJson&) = delete;

  /// Parses `body`. False for malformed JSON, for a body longer than `max_bytes`, and for a body
  /// nested deeper than kMaxJsonDepth, as the DOM path's check_json_depth refuses it, or as deep
  /// with a number, string, boolean or null in its deepest array or object (simdjson counts that
  /// value as a level: such a body takes the DOM path, which reads it).
  bool parse(std::string_view body, size_t max_bytes);
  sj::dom::element root() const { return root_; }

 private:
  std::unique_ptr<LargeTape> large_;  ///< the tape of a body longer than kKeptTape
  sj::dom::element root_;
};

/// An unsigned integer in lo..hi (the DOM path's get_count), or false.
bool read_count(sj::dom::element v, size_t lo, size_t hi, size_t& out);

bool read_bool(sj::dom::element v, bool& out);

/// A number as a finite 32-bit float (the DOM path's get_vector and get_optional_float).
bool read_float(sj::dom::element v, float& out);

/// A non-empty array of numbers, each a finite 32-bit float (the DOM path's get_vector), appended
/// to `out`; `size` is the array's length.
bool append_vector(sj::dom::element v, std::vector<float>& out, size_t* size = nullptr);

/// Fields seen so far, one bit each: a repeated field takes the DOM path (which keeps the last).
class Seen {
 public:
  bool first(unsigned bit) {
    const bool was = bits_ & (1u << bit);
    bits_ |= 1u << bit;
    return !was;
  }
  bool has(unsigned bit) const { return bits_ & (1u << bit); }

 private:
  unsigned bits_ = 0;
};

}  // namespace wp::http::plain
