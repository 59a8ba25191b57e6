// learn/'s extensions of the engine, linked into the executable with learn's commands: the
// tuner's controller RNN (strategy "controller") and the builder of index type "rl".
#include "learn/train_pruner.h"
#include "learn/tune_controller.h"

namespace wp::cli {

namespace {

/// Registered before main runs.
const bool kExtensions = [] {
  learn::register_tune_controller();
  learn::register_learned_indexes();
  return true;
}();

}  // namespace

}  // namespace wp::cli
