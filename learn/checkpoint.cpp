#include "learn/checkpoint.h"

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>

#include "index/error.h"

namespace wp::learn {

namespace {
constexpr char kMagic[] = "waypoint-checkpoint 1\n";
constexpr char kKind[] = "kind";
}  // namespace

CheckpointFields::CheckpointFields(const std::string& kind) {
  set(kKind, kind);
}

void CheckpointFields::set(const std::string& name, std::string bytes) {
  WP_THROW_INTERNAL_IF_NOT(!name.empty() && name.find_first_of(" \n") == std::string::npos,
                           "checkpoint field name '", name, "' is empty or has a space");
  fields_[name] = std::move(bytes);
}

void CheckpointFields::set_number(const std::string& name, double value) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.17g", value);  // 17 digits read back to the same double
  set(name, buf);
}

const std::string& CheckpointFields::get(const std::string& name) const {
  const auto it = fields_.find(name);
  WP_THROW_IF_NOT(it != fields_.end(), "checkpoint has no field '", name, "'");
  return it->second;
}

double CheckpointFields::number(const std::string& name) const {
  const std::string& text = get(name);
  char* end = nullptr;
  errno = 0;
  const double v = std::strtod(text.c_str(), &end);
  WP_THROW_IF_NOT(!text.empty() && *end == '\0' && errno == 0, "checkpoint field '", name,
                  "' is not a number: '", text, "'");
  return v;
}

std::string CheckpointFields::encode() const {
  std::string out = kMagic;
  for (const auto& [name, value] : fields_) {
    out += name + " " + std::to_string(value.size()) + "\n";
    out += value;
  }
  return out;
}

CheckpointFields CheckpointFields::decode(const std::string& bytes, const std::string& kind) {
  const std::string magic = kMagic;
  WP_THROW_IF_NOT(bytes.compare(0, magic.size(), magic) == 0,
                  "not a waypoint checkpoint (it should begin with '", magic.substr(0, 21), "')");
  CheckpointFields f;
  size_t at = magic.size();
  while (at < bytes.size()) {
    const size_t space = bytes.find(' ', at), newline = bytes.find('\n', at);
    WP_THROW_IF_NOT(space < newline && newline != std::string::npos,
                    "checkpoint is damaged: field header at byte ", at);
    const std::string name = bytes.substr(at, space - at);
    const std::string length = bytes.substr(space + 1, newline - space - 1);
    char* end = nullptr;
    const unsigned long long n = std::strtoull(length.c_str(), &end, 10);
    WP_THROW_IF_NOT(!length.empty() && *end == '\0' && n <= bytes.size() - newline - 1,
                    "checkpoint is damaged: field '", name, "' has length '", length, "'");
    f.fields_[name] = bytes.substr(newline + 1, n);
    at = newline + 1 + n;
  }
  WP_THROW_IF_NOT(f.get(kKind) == kind, "the checkpoint is of a ", f.get(kKind), " job, not of a ",
                  kind, " job");
  return f;
}

void write_file_atomically(const std::string& path, const std::string& bytes) {
  const std::string tmp = path + ".tmp";
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
    out.flush();
    WP_THROW_IF_NOT(out.good(), "cannot write '", tmp, "'");
  }
  WP_THROW_IF_NOT(std::rename(tmp.c_str(), path.c_str()) == 0, "cannot rename '", tmp, "' to '",
                  path, "'");
}

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  WP_THROW_IF_NOT(in.good(), "cannot read '", path, "'");
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

}  // namespace wp::learn
