#include "engine/packed_payload.h"

#include <cstring>

namespace wp::engine {

using nlohmann::json;

namespace {

/// A big-endian unsigned integer of `n` bytes at p.
uint64_t be(const uint8_t* p, size_t n) {
  uint64_t v = 0;
  for (size_t i = 0; i < n; ++i) v = (v << 8) | p[i];
  return v;
}

/// The head of the value at p: how many bytes it takes itself (header and scalar payload) and
/// how many values follow it as its elements. 0 bytes when the header is cut short or unknown.
struct Head {
  uint64_t bytes = 0;
  uint64_t children = 0;
};

Head head(const uint8_t* p, const uint8_t* end) {
  const size_t left = static_cast<size_t>(end - p);
  if (left == 0) return {};
  const uint8_t t = p[0];
  if (t <= 0x7f || t >= 0xe0) return {1, 0};                // fixint
  if (t >= 0x80 && t <= 0x8f) return {1, 2u * (t & 0x0f)};  // fixmap
  if (t >= 0x90 && t <= 0x9f) return {1, t & 0x0fu};        // fixarray
  if (t >= 0xa0 && t <= 0xbf) return {1u + (t & 0x1f), 0};  // fixstr
  // Headers with a length field of `n` bytes: the field, then `extra` bytes before the data.
  auto sized = [&](size_t n, size_t extra) -> Head {
    if (left < 1 + n) return {};
    return {1 + n + extra + be(p + 1, n), 0};
  };
  auto counted = [&](size_t n, uint64_t per) -> Head {
    if (left < 1 + n) return {};
    return {1 + n, per * be(p + 1, n)};
  };
  switch (t) {
    case 0xc0:  // nil
    case 0xc2:  // false
    case 0xc3:  // true
      return {1, 0};
    case 0xc4:
      return sized(1, 0);  // bin 8/16/32
    case 0xc5:
      return sized(2, 0);
    case 0xc6:
      return sized(4, 0);
    case 0xc7:
      return sized(1, 1);  // ext 8/16/32: length, type, data
    case 0xc8:
      return sized(2, 1);
    case 0xc9:
      return sized(4, 1);
    case 0xca:
      return {5, 0};  // float 32/64
    case 0xcb:
      return {9, 0};
    case 0xcc:
      return {2, 0};  // uint 8..64
    case 0xcd:
      return {3, 0};
    case 0xce:
      return {5, 0};
    case 0xcf:
      return {9, 0};
    case 0xd0:
      return {2, 0};  // int 8..64
    case 0xd1:
      return {3, 0};
    case 0xd2:
      return {5, 0};
    case 0xd3:
      return {9, 0};
    case 0xd4:
      return {3, 0};  // fixext 1..16: type and data
    case 0xd5:
      return {4, 0};
    case 0xd6:
      return {6, 0};
    case 0xd7:
      return {10, 0};
    case 0xd8:
      return {18, 0};
    case 0xd9:
      return sized(1, 0);  // str 8/16/32
    case 0xda:
      return sized(2, 0);
    case 0xdb:
      return sized(4, 0);
    case 0xdc:
      return counted(2, 1);  // array 16/32
    case 0xdd:
      return counted(4, 1);
    case 0xde:
      return counted(2, 2);  // map 16/32
    case 0xdf:
      return counted(4, 2);
    default:  // 0xc1: never used
      return {};
  }
}

}  // namespace

size_t detail::msgpack_value_size_walked(const uint8_t* p, const uint8_t* end) {
  const uint8_t* at = p;
  uint64_t pending = 1;  // values still to skip: no recursion, however deep the value
  while (pending > 0) {
    const Head h = head(at, end);
    if (h.bytes == 0 || h.bytes > static_cast<uint64_t>(end - at)) return 0;
    at += h.bytes;
    pending = pending - 1 + h.children;
    if (pending > static_cast<uint64_t>(end - at)) return 0;  // each value takes a byte at least
  }
  return static_cast<size_t>(at - p);
}

PackedPayload::PackedPayload() : bytes_(1, static_cast<char>(0x80)) {}

PackedPayload::PackedPayload(const json& payload) {
  const std::vector<uint8_t> b = json::to_msgpack(payload);
  bytes_.assign(reinterpret_cast<const char*>(b.data()), b.size());
}

PackedPayload PackedPayload::from_msgpack(std::string_view msgpack) {
  PackedPayload p;
  p.bytes_.assign(msgpack.data(), msgpack.size());
  return p;
}

json PackedPayload::unpack() const {
  const auto* p = reinterpret_cast<const uint8_t*>(bytes_.data());
  return json::from_msgpack(p, p + bytes_.size());
}

namespace {

bool is_int_tag(uint8_t t) {
  return t <= 0x7f || t >= 0xe0 || (t >= 0xcc && t <= 0xcf) || (t >= 0xd0 && t <= 0xd3);
}

}  // namespace

bool MsgValue::is_number() const {
  const uint8_t t = tag();
  return is_int_tag(t) || t == 0xca || t == 0xcb;
}

std::string_view MsgValue::long_string() const {
  const uint8_t t = tag();
  if (t < 0xd9 || t > 0xdb) return {};
  const Head h = head(p_, end_);
  const size_t header = t == 0xd9 ? 2 : t == 0xda ? 3 : 5;
  if (h.bytes < header || h.bytes > static_cast<uint64_t>(end_ - p_)) return {};
  return {reinterpret_cast<const char*>(p_ + header), static_cast<size_t>(h.bytes - header)};
}

bool MsgValue::as_int64(int64_t* out) const {
  const uint8_t t = tag();
  if (!is_int_tag(t)) return false;
  if (t <= 0x7f || t >= 0xe0) {  // fixint: the tag is the value
    *out = static_cast<int8_t>(t);
    return true;
  }
  const size_t n = size_t{1} << ((t - 0xcc) & 3);  // 1, 2, 4 or 8 bytes follow
  if (static_cast<size_t>(end_ - p_) < 1 + n) return false;
  const uint64_t u = be(p_ + 1, n);
  if (t <= 0xcf) {  // uint 8..64
    if (u > static_cast<uint64_t>(INT64_MAX)) return false;
    *out = static_cast<int64_t>(u);
    return true;
  }
  const unsigned shift = static_cast<unsigned>(64 - 8 * n);  // int 8..64: sign-extended
  *out = static_cast<int64_t>(u << shift) >> shift;
  return true;
}

double MsgValue::number() const {
  const uint8_t t = tag();
  if (t == 0xca || t == 0xcb) {
    const size_t n = t == 0xca ? 4 : 8;
    if (static_cast<size_t>(end_ - p_) < 1 + n) return 0;
    const uint64_t bits = be(p_ + 1, n);
    if (n == 4) {
      const auto b32 = static_cast<uint32_t>(bits);
      float f;
      std::memcpy(&f, &b32, sizeof f);
      return f;
    }
    double d;
    std::memcpy(&d, &bits, sizeof d);
    return d;
  }
  if (t >= 0xcc && t <= 0xcf) {  // may exceed int64
    const size_t n = size_t{1} << (t - 0xcc);
    return static_cast<size_t>(end_ - p_) < 1 + n ? 0 : static_cast<double>(be(p_ + 1, n));
  }
  int64_t i = 0;
  return as_int64(&i) ? static_cast<double>(i) : 0;
}

const uint8_t* MsgValue::first_child(size_t* children) const {
  if (!is_array() && !is_object()) return nullptr;
  const Head h = head(p_, end_);
  if (h.bytes == 0 || h.bytes > static_cast<uint64_t>(end_ - p_)) return nullptr;
  // Each child takes a byte at least: a count past the bytes left is malformed.
  if (h.children > static_cast<uint64_t>(end_ - p_) - h.bytes) return nullptr;
  *children = static_cast<size_t>(h.children);
  return p_ + h.bytes;
}

size_t MsgValue::size() const {
  size_t n = 0;
  if (!first_child(&n)) return 0;
  return is_object() ? n / 2 : n;
}

std::optional<MsgValue> MsgValue::member(std::string_view key) const {
  if (!is_object()) return std::nullopt;
  size_t n = 0;
  const uint8_t* at = first_child(&n);
  for (size_t i = 0; i + 1 < n && at; i += 2) {
    const size_t key_size = msgpack_value_size(at, end_);
    if (key_size == 0) return std::nullopt;
    const MsgValue name(at, at + key_size);
    at += key_size;
    const size_t value_size = msgpack_value_size(at, end_);
    if (value_size == 0) return std::nullopt;
    if (name.is_string() && same_text(name.string(), key)) return MsgValue(at, at + value_size);
    at += value_size;
  }
  return std::nullopt;
}

std::optional<MsgValue> MsgValue::element(size_t i) const {
  std::optional<MsgValue> out;
  size_t at = 0;
  any_element([&](const MsgValue& e) {
    if (at++ != i) return false;
    out = e;
    return true;
  });
  return out;
}

size_t PackedPayload::heap_bytes() const {
  return bytes_.capacity() > 15 ? bytes_.capacity() + 1 : 0;
}

}  // namespace wp::engine
