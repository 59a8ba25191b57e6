#pragma once
/**
 * @file point_id.h
 * A Qdrant point id: an unsigned 64-bit integer or a UUID string.
 */
#include <cstdint>
#include <functional>
#include <string>

#include <nlohmann/json.hpp>

namespace wp::engine {

class PointId {
 public:
  PointId() = default;
  static PointId number(uint64_t n);
  /// `s` must be a UUID (36 characters, 8-4-4-4-12 hex digits); stored lower-case.
  static PointId uuid(const std::string& s);
  /// Parses a JSON id (non-negative integer or UUID string); throws UserError naming `field`.
  static PointId from_json(const nlohmann::json& j, const std::string& field);

  bool is_uuid() const { return is_uuid_; }
  uint64_t num() const { return num_; }
  const std::string& uuid_string() const { return uuid_; }

  /// The id as Qdrant returns it: a number or a UUID string.
  nlohmann::json to_json() const;
  /// A unique, order-preserving byte key: numbers sort before UUIDs, numbers by value.
  std::string key() const;
  /// Inverse of key(); throws InternalError on a malformed key.
  static PointId from_key(const std::string& k);

  bool operator==(const PointId& o) const {
    return is_uuid_ == o.is_uuid_ && num_ == o.num_ && uuid_ == o.uuid_;
  }
  bool operator!=(const PointId& o) const { return !(*this == o); }
  bool operator<(const PointId& o) const { return key() < o.key(); }

 private:
  bool is_uuid_ = false;
  uint64_t num_ = 0;
  std::string uuid_;
};

}  // namespace wp::engine

template <>
struct std::hash<wp::engine::PointId> {
  size_t operator()(const wp::engine::PointId& p) const {
    return p.is_uuid() ? std::hash<std::string>()(p.uuid_string()) : std::hash<uint64_t>()(p.num());
  }
};
