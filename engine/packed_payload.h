#pragma once
/**
 * @file packed_payload.h
 * A payload held in memory as its MessagePack bytes rather than as a JSON tree: a point with a
 * few small keys costs about a tenth of the tree's bytes (measured at 1M points with 5 keys: 576
 * bytes per point as nlohmann trees). Filters and payload indexes read the bytes in place
 * (MsgValue), without building a tree; answers and payload edits unpack the whole.
 */
#include <algorithm>
#include <cstdint>
#include <cstring>
#include <optional>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

namespace wp::engine {

class PackedPayload {
 public:
  /// The empty object.
  PackedPayload();
  /// Packs `payload` (a JSON object).
  explicit PackedPayload(const nlohmann::json& payload);
  /// Holds `msgpack` as it is: bytes read already as one MessagePack value
  /// (PointStore::check_payload), as the point store keeps what the constructor above packs.
  static PackedPayload from_msgpack(std::string_view msgpack);

  /// The payload.
  nlohmann::json unpack() const;
  /// The bytes it holds on the heap beyond its own sizeof.
  size_t heap_bytes() const;
  const std::string& bytes() const { return bytes_; }

 private:
  std::string bytes_;
};

namespace detail {
/// msgpack_value_size for any value: arrays and maps walked (without recursion).
size_t msgpack_value_size_walked(const uint8_t* p, const uint8_t* end);
}  // namespace detail

/// The length of the one MessagePack value at [p, end), or 0 when it is cut short or malformed
/// (public for its test). The scalars payloads mostly hold (small integers, short strings,
/// floats, nil, booleans) are sized here inline: a filter skips every member before the one it
/// reads.
inline size_t msgpack_value_size(const uint8_t* p, const uint8_t* end) {
  if (p >= end) return 0;
  const uint8_t t = *p;
  size_t n = 0;
  if (t <= 0x7f || t >= 0xe0 || t == 0xc0 || t == 0xc2 || t == 0xc3) {
    n = 1;  // fixint, nil, false, true
  } else if (t >= 0xa0 && t <= 0xbf) {
    n = 1 + (t & 0x1fu);  // fixstr
  } else if (t == 0xcb || t == 0xca) {
    n = t == 0xcb ? 9 : 5;  // float 64/32
  } else {
    return detail::msgpack_value_size_walked(p, end);
  }
  return n <= static_cast<size_t>(end - p) ? n : 0;
}

/// a == b, comparing short strings (payload keys, keyword values) in place: through
/// std::string_view's == each equal-sized pair was a call of the C library's memcmp, ~10% of the
/// samples of a filter testing payloads one by one (Fashion-MNIST, a class: 1-5 byte strings).
inline bool same_text(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  const size_t head = std::min<size_t>(a.size(), 16);
  for (size_t i = 0; i < head; ++i) {
    if (a[i] != b[i]) return false;
  }
  return a.size() == head || std::memcmp(a.data() + head, b.data() + head, a.size() - head) == 0;
}

/**
 * One MessagePack value read in place: what a filter tests of a point's payload without
 * unpacking it into JSON (a tree of allocations per test). Its members answer as nlohmann::json's
 * of the same names do for the unpacked value (JsonRef in json_value.h is the same interface over
 * a tree, and key paths walk either: json_path.h). Bytes that are cut short or malformed read as
 * no value (nothing is read past `end`); a packed payload's bytes never are.
 */
class MsgValue {
 public:
  /// The value spanning [p, end) (a payload's bytes(); an element knows its own end).
  MsgValue(const uint8_t* p, const uint8_t* end) : p_(p), end_(end) {}
  explicit MsgValue(const PackedPayload& payload)
      : MsgValue(
            reinterpret_cast<const uint8_t*>(payload.bytes().data()),
            reinterpret_cast<const uint8_t*>(payload.bytes().data()) + payload.bytes().size()) {}

  /// The bytes it spans: the value's MessagePack encoding (json::from_msgpack reads it back).
  std::string_view bytes() const {
    return {reinterpret_cast<const char*>(p_), static_cast<size_t>(end_ - p_)};
  }

  bool is_null() const { return tag() == 0xc0; }
  bool is_boolean() const { return tag() == 0xc2 || tag() == 0xc3; }
  bool is_string() const {
    const uint8_t t = tag();
    return (t >= 0xa0 && t <= 0xbf) || (t >= 0xd9 && t <= 0xdb);
  }
  bool is_number() const;
  bool is_number_float() const { return tag() == 0xca || tag() == 0xcb; }
  bool is_array() const {
    const uint8_t t = tag();
    return (t >= 0x90 && t <= 0x9f) || t == 0xdc || t == 0xdd;
  }
  bool is_object() const {
    const uint8_t t = tag();
    return (t >= 0x80 && t <= 0x8f) || t == 0xde || t == 0xdf;
  }

  /// A boolean's value (false for anything else).
  bool boolean() const { return tag() == 0xc3; }
  /// A string's bytes (empty for anything else, or when cut short).
  std::string_view string() const {
    const uint8_t t = tag();
    if (t < 0xa0 || t > 0xbf) return long_string();
    const size_t n = t & 0x1fu;  // fixstr: up to 31 bytes
    if (n >= static_cast<size_t>(end_ - p_)) return {};
    return {reinterpret_cast<const char*>(p_ + 1), n};
  }
  /// Any number as a double (integers beyond 2^53 rounded, as nlohmann's get<double>); 0 for
  /// anything else.
  double number() const;
  /// An integer that fits int64 into *out, as json_as_int64 reads a tree (floats, 3.0 included,
  /// are not integers).
  bool as_int64(int64_t* out) const;
  /// The elements of an array, or members of a map; 0 for anything else.
  size_t size() const;
  bool empty() const { return size() == 0; }

  /// The member of a map named `key`; nullopt when there is none (or this is no map).
  std::optional<MsgValue> member(std::string_view key) const;
  /// Element `i` of an array; nullopt past its end (or when this is no array).
  std::optional<MsgValue> element(size_t i) const;
  /// Calls f(element) for an array's elements in order until one returns true; returns whether
  /// one did (false for anything but an array).
  template <typename F>
  bool any_element(const F& f) const {
    if (!is_array()) return false;
    size_t n = 0;
    const uint8_t* at = first_child(&n);
    for (size_t i = 0; i < n && at; ++i) {
      const size_t size = msgpack_value_size(at, end_);
      if (size == 0) return false;
      if (f(MsgValue(at, at + size))) return true;
      at += size;
    }
    return false;
  }

 private:
  uint8_t tag() const { return p_ < end_ ? *p_ : 0xc1; }  // 0xc1: never used, reads as nothing
  /// string() of a str 8/16/32.
  std::string_view long_string() const;
  /// An array's or map's first child and how many children follow (a map's: 2 per member);
  /// null for anything else or when cut short.
  const uint8_t* first_child(size_t* children) const;

  const uint8_t* p_;
  const uint8_t* end_;
};

}  // namespace wp::engine
