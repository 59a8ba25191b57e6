// A waypoint built without LibTorch (WAYPOINT_WITH_TORCH=OFF) still knows learn/'s command names,
// so that asking for one says how to get it rather than "unknown command".
#include "engine/command/command.h"
#include "index/error.h"

namespace wp::cli {

namespace {

int needs_torch(Args&) {
  throw UserError("this build has no LibTorch: reconfigure with -DWAYPOINT_WITH_TORCH=ON");
}

const CommandRegistration kTrainPruner({"train-pruner", "(needs LibTorch)", 60, {}, &needs_torch});
const CommandRegistration kTrainHash({"train-hash", "(needs LibTorch)", 70, {}, &needs_torch});

}  // namespace

}  // namespace wp::cli
