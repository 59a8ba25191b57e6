#include "engine/command/args.h"

#include <cerrno>
#include <cstdlib>
#include <sstream>

#include "index/error.h"

namespace wp::cli {

Args::Args(int argc, char** argv, int first, std::set<std::string> switches)
    : switches_(std::move(switches)) {
  for (int i = first; i < argc; ++i) {
    std::string a = argv[i];
    WP_THROW_IF_NOT(a.rfind("--", 0) == 0 && a.size() > 2, "unexpected argument '", a,
                    "' (options are --name value)");
    std::string name = a.substr(2), value;
    const size_t eq = name.find('=');
    if (eq != std::string::npos) {
      value = name.substr(eq + 1);
      name = name.substr(0, eq);
    } else if (switches_.count(name)) {
      value = "1";
    } else {
      WP_THROW_IF_NOT(i + 1 < argc, "option --", name, " needs a value");
      value = argv[++i];
    }
    WP_THROW_IF_NOT(values_.emplace(name, value).second, "option --", name, " given twice");
  }
}

bool Args::has(const std::string& name) const {
  used_.insert(name);
  return values_.count(name) != 0;
}

bool Args::flag(const std::string& name) {
  used_.insert(name);
  auto it = values_.find(name);
  return it != values_.end() && it->second != "0" && it->second != "false";
}

std::string Args::str(const std::string& name, const std::string& def) {
  used_.insert(name);
  auto it = values_.find(name);
  return it == values_.end() ? def : it->second;
}

std::string Args::required(const std::string& name) {
  used_.insert(name);
  auto it = values_.find(name);
  WP_THROW_IF_NOT(it != values_.end(), "missing required option --", name);
  return it->second;
}

namespace {
long long parse_int(const std::string& name, const std::string& v, long long lo, long long hi) {
  char* end = nullptr;
  errno = 0;
  const long long x = std::strtoll(v.c_str(), &end, 10);
  WP_THROW_IF_NOT(!v.empty() && *end == '\0' && errno == 0, "--", name,
                  " expects an integer, got '", v, "'");
  WP_THROW_IF_NOT(x >= lo && x <= hi, "--", name, " must be in ", lo, "..", hi, ", got ", x);
  return x;
}

std::vector<std::string> split(const std::string& s) {
  std::vector<std::string> out;
  std::stringstream ss(s);
  std::string item;
  while (std::getline(ss, item, ',')) {
    if (!item.empty()) out.push_back(item);
  }
  return out;
}
}  // namespace

long long Args::integer(const std::string& name, long long def, long long lo, long long hi) {
  if (!has(name)) return def;
  return parse_int(name, values_.at(name), lo, hi);
}

double Args::real(const std::string& name, double def, double lo, double hi) {
  if (!has(name)) return def;
  const std::string& v = values_.at(name);
  char* end = nullptr;
  const double x = std::strtod(v.c_str(), &end);
  WP_THROW_IF_NOT(!v.empty() && *end == '\0', "--", name, " expects a number, got '", v, "'");
  WP_THROW_IF_NOT(x >= lo && x <= hi, "--", name, " must be in [", lo, ", ", hi, "], got ", x);
  return x;
}

long long Args::integer(const index::ParamRange& range, long long def) {
  return integer(range.flag, def, static_cast<long long>(range.lo),
                 static_cast<long long>(range.hi));
}

double Args::real(const index::ParamRange& range, double def) {
  return real(range.flag, def, range.lo, range.hi);
}

std::vector<std::string> Args::list(const std::string& name, const std::string& def) {
  return split(str(name, def));
}

std::vector<long long> Args::int_list(const std::string& name, const std::string& def, long long lo,
                                      long long hi) {
  std::vector<long long> out;
  for (const std::string& s : list(name, def)) out.push_back(parse_int(name, s, lo, hi));
  WP_THROW_IF_NOT(!out.empty(), "--", name, " needs at least one value");
  return out;
}

void Args::finish() const {
  std::string unknown;
  for (const auto& kv : values_) {
    if (!used_.count(kv.first)) unknown += (unknown.empty() ? "--" : ", --") + kv.first;
  }
  WP_THROW_IF_NOT(unknown.empty(), "unknown option(s) for this command: ", unknown);
}

}  // namespace wp::cli
