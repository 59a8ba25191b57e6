#pragma once
/**
 * @file learn_module.h
 * learn/ (LibTorch) as a module the executable loads when something needs it
 * (docs/architecture.md, "The learn module"): the `waypoint` binary links no LibTorch, so a
 * server that never trains holds none of it (an empty server: 18 MB resident instead of 160 MB).
 * Loading it runs its registrations: the commands `train-pruner` and `train-hash`, the builder of
 * index type "rl" (learned_index.h) and the tuner's strategy "controller" (tune_strategy.h).
 * Those lookups load it when what they look for is missing.
 */
#include <string>

namespace wp::engine {

/// The module's file; main sets it once, before anything runs. Unset (a test binary that links
/// learn/, or a build without LibTorch), nothing is ever loaded.
void set_learn_module(std::string path);

/// Loads the module once (later calls return at once). False when none is set; throws
/// InternalError, naming the file and the loader's message, when it is set but cannot be loaded.
bool load_learn_module();

}  // namespace wp::engine
