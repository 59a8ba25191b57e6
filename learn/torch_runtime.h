#pragma once
/**
 * @file torch_runtime.h
 * Process-wide LibTorch set-up that every learn/ job runs first. Plain header: callers need not
 * include <torch/torch.h>.
 *
 * LibTorch's first use sets the process-wide OpenMP thread count to half the CPUs
 * (docs/architecture.md, "Toolchain notes"): on a 2-core machine that silently makes our parallel
 * HNSW build and FAISS single-threaded. init_torch() triggers that first use itself, then sets both
 * LibTorch's intra-op pool and OpenMP back to the requested count.
 */
#include <cstdint>
#include <string>

namespace wp::learn {

struct TorchRuntimeInfo {
  int torch_threads;    ///< torch::get_num_threads() after set-up
  int openmp_threads;   ///< omp_get_max_threads() after set-up
  std::string version;  ///< LibTorch version string
};

/**
 * Initialises LibTorch, seeds its generator and restores the thread counts.
 * @param threads intra-op and OpenMP threads; 0 means all cores
 * @param seed    seed of torch's default generator (fixed seeds make training reproducible)
 */
TorchRuntimeInfo init_torch(int threads, uint64_t seed);

}  // namespace wp::learn
