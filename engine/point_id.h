#pragma once
/**
 * @file point_id.h
 * A Qdrant point id: an unsigned 64-bit integer or a UUID string, held in 24 bytes (a UUID as its
 * 128 bits; its text is made when asked for). A collection keeps one a point.
 */
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "index/slot_table.h"

namespace wp::engine {

class PointId {
 public:
  PointId() = default;
  static PointId number(uint64_t n);
  /// `s` must be a UUID (36 characters, 8-4-4-4-12 hex digits); stored lower-case.
  static PointId uuid(std::string_view s);
  /// Parses a JSON id (non-negative integer or UUID string); throws UserError naming `field`.
  static PointId from_json(const nlohmann::json& j, const std::string& field);

  bool is_uuid() const { return is_uuid_; }
  /// The number (0 for a UUID).
  uint64_t num() const { return is_uuid_ ? 0 : hi_; }
  /// The UUID as text: 8-4-4-4-12 lower-case hexadecimal digits ("" for a number).
  std::string uuid_string() const;

  /// The id as Qdrant returns it: a number or a UUID string.
  nlohmann::json to_json() const;
  /// A unique, order-preserving byte key: numbers sort before UUIDs, numbers by value.
  std::string key() const;
  /// Inverse of key(); throws InternalError on a malformed key.
  static PointId from_key(std::string_view k);

  bool operator==(const PointId& o) const {
    return is_uuid_ == o.is_uuid_ && hi_ == o.hi_ && lo_ == o.lo_;
  }
  bool operator!=(const PointId& o) const { return !(*this == o); }
  /// The order of key(): numbers before UUIDs, numbers by value, UUIDs as their text sorts
  /// (fixed-width lower-case hexadecimal: by their 128 bits).
  bool operator<(const PointId& o) const {
    if (is_uuid_ != o.is_uuid_) return !is_uuid_;
    return hi_ != o.hi_ ? hi_ < o.hi_ : lo_ < o.lo_;
  }

  /// A well-mixed hash (a table probing by its low bits spreads sequential numbers too).
  size_t hash() const {
    return index::mix_hash(hi_ ^ (lo_ * 0x9e3779b97f4a7c15ULL) ^
                           (is_uuid_ ? 0x5851f42d4c957f2dULL : 0));
  }

 private:
  uint64_t hi_ = 0;  ///< the number, or a UUID's first 64 bits
  uint64_t lo_ = 0;  ///< a UUID's last 64 bits
  bool is_uuid_ = false;
};

}  // namespace wp::engine

template <>
struct std::hash<wp::engine::PointId> {
  size_t operator()(const wp::engine::PointId& p) const { return p.hash(); }
};
