#include "engine/command/command.h"

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <exception>
#include <map>

#include "index/error.h"

namespace wp::cli {

namespace {

/// The table, by name. A function-local static, so that registrations from any translation unit's
/// static initialisers find it constructed.
std::map<std::string, Command>& table() {
  static std::map<std::string, Command> t;
  return t;
}

std::string help_text() {
  std::string s =
      "waypoint: a vector search engine whose indexes are learned\n\n"
      "usage: waypoint <command> [options]\n\ncommands:\n";
  for (const Command& c : commands()) {
    std::string name = c.name;
    name.resize(std::max<size_t>(name.size() + 1, 8), ' ');
    s += "  " + name + c.usage + "\n";
  }
  s += "  help\n\n"
       "Vector files: .fvecs .bvecs .fbin .u8bin (ground truth: .ivecs). A dataset folder holds\n"
       "base.fvecs, query.fvecs and groundtruth.ivecs.\n";
  return s;
}

}  // namespace

void register_command(Command command) {
  WP_THROW_INTERNAL_IF_NOT(command.run, "command '", command.name, "' has no run function");
  const std::string name = command.name;
  WP_THROW_INTERNAL_IF_NOT(table().emplace(name, std::move(command)).second, "command '", name,
                           "' is registered twice");
}

std::vector<Command> commands() {
  std::vector<Command> out;
  for (const auto& kv : table()) out.push_back(kv.second);
  std::stable_sort(out.begin(), out.end(),
                   [](const Command& a, const Command& b) { return a.order < b.order; });
  return out;
}

int run_main(int argc, char** argv, bool (*load_modules)()) {
  // A module that cannot be loaded leaves its commands out of the help, and says why.
  auto load = [&] {
    try {
      if (load_modules) load_modules();
    } catch (const std::exception& e) {
      std::fprintf(stderr, "waypoint: %s\n", e.what());
    }
  };
  if (argc < 2 || !std::strcmp(argv[1], "--help") || !std::strcmp(argv[1], "help")) {
    load();
    std::fputs(help_text().c_str(), argc < 2 ? stderr : stdout);
    return argc < 2 ? 2 : 0;
  }
  const std::string name = argv[1];
  auto it = table().find(name);
  if (it == table().end()) {
    load();
    it = table().find(name);
  }
  if (it == table().end()) {
    std::fprintf(stderr, "waypoint: unknown command '%s'\n\n%s", name.c_str(), help_text().c_str());
    return 2;
  }
  for (int i = 2; i < argc; ++i) {
    if (!std::strcmp(argv[i], "--help") || !std::strcmp(argv[i], "-h")) {
      std::printf("usage: waypoint %s %s\n", name.c_str(), it->second.usage.c_str());
      return 0;
    }
  }
  try {
    Args args(argc, argv, 2, it->second.switches);
    return it->second.run(args);
  } catch (const UserError& e) {
    std::fprintf(stderr, "waypoint %s: error: %s\n", name.c_str(), e.what());
    return 2;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "waypoint %s: internal error: %s\n", name.c_str(), e.what());
    return 1;
  }
}

}  // namespace wp::cli
