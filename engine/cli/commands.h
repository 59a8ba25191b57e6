#pragma once
/**
 * @file commands.h
 * The `waypoint` subcommands (DESIGN.md section 6). Each parses its options from Args, throws
 * wp::UserError on bad input, and returns the process exit code.
 */
#include "engine/cli/args.h"

namespace wp::cli {

int cmd_build(Args& args);
int cmd_search(Args& args);
int cmd_gt(Args& args);
int cmd_bench(Args& args);
int cmd_serve(Args& args);
int cmd_tune(Args& args);
/// Only in builds with WAYPOINT_WITH_TORCH.
int cmd_train_pruner(Args& args);
int cmd_train_hash(Args& args);

}  // namespace wp::cli
