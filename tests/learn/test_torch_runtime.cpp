#include <gtest/gtest.h>
#include <omp.h>

#include "index/error.h"
#include "learn/torch_runtime.h"

// LibTorch must not leave OpenMP at half the cores (docs/architecture.md, "Toolchain notes").
TEST(TorchRuntime, RestoresThreadCountsAfterFirstTorchUse) {
  const int cores = omp_get_num_procs();
  const auto info = wp::learn::init_torch(0, 7);
  EXPECT_EQ(info.openmp_threads, cores);
  EXPECT_EQ(info.torch_threads, cores);
  EXPECT_FALSE(info.version.empty());
  int seen = 0;
#pragma omp parallel
  {
#pragma omp single
    seen = omp_get_num_threads();
  }
  EXPECT_EQ(seen, cores);
  const auto one = wp::learn::init_torch(1, 7);
  EXPECT_EQ(one.openmp_threads, 1);
  EXPECT_EQ(one.torch_threads, 1);
  EXPECT_THROW(wp::learn::init_torch(-1, 7), wp::UserError);
}
