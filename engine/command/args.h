#pragma once
/**
 * @file args.h
 * A small command-line parser for the `waypoint` subcommands: `--name value` options and
 * `--flag` switches. Every option a command reads must be declared by reading it; finish()
 * rejects any option given that no one read, so a typo is an error, not a silent default.
 */
#include <map>
#include <set>
#include <string>
#include <vector>

#include "index/param_range.h"

namespace wp::cli {

class Args {
 public:
  /// Parses argv[first..argc). Switches (`--quiet`) must be named in `switches`.
  Args(int argc, char** argv, int first, std::set<std::string> switches);

  bool has(const std::string& name) const;
  bool flag(const std::string& name);
  std::string str(const std::string& name, const std::string& def);
  std::string required(const std::string& name);
  long long integer(const std::string& name, long long def, long long lo, long long hi);
  double real(const std::string& name, double def, double lo, double hi);
  /// The parameter `range` from its flag (--range.flag), within its one range.
  long long integer(const index::ParamRange& range, long long def);
  double real(const index::ParamRange& range, double def);
  /// Comma-separated list, e.g. "--ef 10,20,40".
  std::vector<std::string> list(const std::string& name, const std::string& def);
  std::vector<long long> int_list(const std::string& name, const std::string& def, long long lo,
                                  long long hi);

  /// Throws UserError naming every option that was given but never read.
  void finish() const;

 private:
  std::map<std::string, std::string> values_;
  std::set<std::string> switches_;
  mutable std::set<std::string> used_;
};

}  // namespace wp::cli
