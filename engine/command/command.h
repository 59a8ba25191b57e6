#pragma once
/**
 * @file command.h
 * The command table of the `waypoint` executable (docs/architecture.md, "The command table").
 *
 * Every module brings its own subcommands: engine/cli `build`, `search`, `gt`, `tune` and
 * `version`; http/cli `serve`; learn/cli `train-pruner` and `train-hash`; bench/cli `bench`. Each
 * command file registers its commands here through a static CommandRegistration, and is compiled
 * into an OBJECT library that only the executable links, so a command is in the binary exactly
 * when its module is built (WAYPOINT_WITH_TORCH=OFF leaves learn's out) and no module includes a
 * higher one's headers: `main` knows the table only. learn's commands are in the learn module,
 * which registers them when it is loaded (run_main's `load_modules`).
 */
#include <set>
#include <string>
#include <vector>

#include "engine/command/args.h"

namespace wp::cli {

/// One subcommand.
struct Command {
  std::string name;   ///< "build"
  std::string usage;  ///< its options, as printed under the name by `waypoint help`
  /// Position in the help text (smaller first); ties by name.
  int order = 100;
  /// The command's `--switches` (options without a value), so that Args can tell them from
  /// options that take one.
  std::set<std::string> switches;
  /// Parses its options from `args` (reading every one it accepts, then calling
  /// args.finish()), does its work and returns the exit code; throws UserError for bad input.
  int (*run)(Args& args) = nullptr;
};

/// Adds `command` to the table; throws InternalError when the name is taken.
void register_command(Command command);

/// Registers a command at static-initialisation time: one per command, at namespace scope in
/// the command's file.
struct CommandRegistration {
  explicit CommandRegistration(Command command) { register_command(std::move(command)); }
};

/// Every registered command, in help order.
std::vector<Command> commands();

/**
 * The `waypoint` entry point: `waypoint <command> [options]`, `waypoint help`. Dispatches
 * through the table; a UserError exits with status 2 and its message, any other exception with
 * status 1. `load_modules`, when given, loads the modules whose commands register on loading
 * (learn's, engine/learn_module.h): called before the help is printed and when a command is not
 * in the table.
 */
int run_main(int argc, char** argv, bool (*load_modules)() = nullptr);

}  // namespace wp::cli
