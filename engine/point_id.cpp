#include "engine/point_id.h"

#include <cctype>

#include "engine/json_value.h"
#include "index/error.h"

namespace wp::engine {

namespace {
bool is_uuid_text(std::string_view s) {
  if (s.size() != 36) return false;
  for (size_t i = 0; i < s.size(); ++i) {
    const bool dash = i == 8 || i == 13 || i == 18 || i == 23;
    if (dash ? s[i] != '-' : !std::isxdigit(static_cast<unsigned char>(s[i]))) return false;
  }
  return true;
}
}  // namespace

PointId PointId::number(uint64_t n) {
  PointId p;
  p.hi_ = n;
  return p;
}

PointId PointId::uuid(std::string_view s) {
  WP_THROW_IF_NOT(is_uuid_text(s), "point id '", s,
                  "' is not a UUID (expected 8-4-4-4-12 hexadecimal digits)");
  PointId p;
  p.is_uuid_ = true;
  int digits = 0;
  for (const char c : s) {
    if (c == '-') continue;
    const unsigned char u = static_cast<unsigned char>(std::tolower(static_cast<unsigned char>(c)));
    const uint64_t v = u <= '9' ? u - '0' : u - 'a' + 10;
    uint64_t& half = digits < 16 ? p.hi_ : p.lo_;
    half = (half << 4) | v;
    ++digits;
  }
  return p;
}

std::string PointId::uuid_string() const {
  if (!is_uuid_) return "";
  static const char kHex[] = "0123456789abcdef";
  std::string out;
  out.reserve(36);
  for (int i = 0; i < 32; ++i) {
    if (i == 8 || i == 12 || i == 16 || i == 20) out += '-';
    const uint64_t half = i < 16 ? hi_ : lo_;
    out += kHex[(half >> (4 * (15 - i % 16))) & 0xf];
  }
  return out;
}

PointId PointId::from_json(const nlohmann::json& j, const std::string& field) {
  if (j.is_number_unsigned()) return number(j.get<uint64_t>());
  if (j.is_number_integer()) {
    WP_THROW_IF_NOT(j.get<int64_t>() >= 0, field, ": point ids must be non-negative, got ",
                    show_json(j));
    return number(j.get<uint64_t>());
  }
  if (j.is_string()) {
    const std::string s = j.get<std::string>();
    WP_THROW_IF_NOT(is_uuid_text(s), field, ": ", show_json(j),
                    " is neither an unsigned integer nor a UUID");
    return uuid(s);
  }
  throw UserError(field + ": a point id must be an unsigned integer or a UUID string, got " +
                  show_json(j));
}

nlohmann::json PointId::to_json() const {
  return is_uuid_ ? nlohmann::json(uuid_string()) : nlohmann::json(hi_);
}

std::string PointId::key() const {
  if (is_uuid_) return "u" + uuid_string();
  std::string k(9, '\0');
  k[0] = 'n';
  for (int i = 0; i < 8; ++i) k[1 + i] = static_cast<char>((hi_ >> (56 - 8 * i)) & 0xff);
  return k;
}

PointId PointId::from_key(std::string_view k) {
  if (k.size() == 9 && k[0] == 'n') {
    uint64_t n = 0;
    for (int i = 0; i < 8; ++i) n = (n << 8) | static_cast<unsigned char>(k[1 + i]);
    return number(n);
  }
  WP_THROW_INTERNAL_IF_NOT(k.size() == 37 && k[0] == 'u', "malformed point key");
  return uuid(k.substr(1));
}

}  // namespace wp::engine
