#include "learn/torch_runtime.h"

#include <omp.h>
#include <torch/torch.h>

#include "index/error.h"

namespace wp::learn {

TorchRuntimeInfo init_torch(int threads, uint64_t seed) {
  WP_THROW_IF_NOT(threads >= 0 && threads <= 1024, "threads must be in 0..1024, got ", threads);
  const int n = threads > 0 ? threads : omp_get_num_procs();
  // The first tensor operation initialises LibTorch's thread pools (and lowers OpenMP's count).
  (void)torch::ones({1}).sum().item<float>();
  torch::manual_seed(seed);
  torch::set_num_threads(n);
  omp_set_num_threads(n);
  return {torch::get_num_threads(), omp_get_max_threads(), TORCH_VERSION};
}

}  // namespace wp::learn
