#pragma once
/**
 * @file tune.h
 * `waypoint tune` and `PUT /collections/{name}/index {"type":"auto"}`: choose an index
 * configuration that reaches a recall target at the highest QPS. The parts: the search space
 * (tune_space.h), the environment that builds and measures and the reward (tune_environment.h),
 * the strategies and the lockstep runner (tune_strategy.h), and the collection's tuning procedure
 * (auto_tune.h). Torch-free: engine/ and http/ use it; learn/ adds the controller RNN.
 */
#include "engine/auto_tune.h"
#include "engine/tune_environment.h"
#include "engine/tune_space.h"
#include "engine/tune_strategy.h"
