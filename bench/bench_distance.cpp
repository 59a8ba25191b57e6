// Distance kernels: ours (scalar, AVX2, AVX-512, chosen at run time) against FAISS's
// fvec_L2sqr / fvec_inner_product (Debian's FAISS is an SSE2 build), at the dimensions of our
// datasets. Run: build/bench/bench_distance
#include <benchmark/benchmark.h>
#include <faiss/utils/distances.h>

#include <random>
#include <vector>

#include "index/distance.h"

namespace {

using wp::index::Isa;

std::vector<float> random_floats(size_t n, unsigned seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> g;
  std::vector<float> v(n);
  for (float& x : v) x = g(rng);
  return v;
}

// Many vector pairs so the working set is not a single cache line.
constexpr size_t kPairs = 256;

template <typename Fn>
void run(benchmark::State& state, Fn fn) {
  const size_t d = state.range(0);
  const auto a = random_floats(kPairs * d, 1), b = random_floats(kPairs * d, 2);
  size_t i = 0;
  for (auto _ : state) {
    benchmark::DoNotOptimize(fn(a.data() + i * d, b.data() + i * d, d));
    i = (i + 1) % kPairs;
  }
  state.SetItemsProcessed(state.iterations());
}

void BM_L2_Faiss(benchmark::State& s) {
  run(s, faiss::fvec_L2sqr);
}
void BM_IP_Faiss(benchmark::State& s) {
  run(s, faiss::fvec_inner_product);
}

void BM_L2_Ours(benchmark::State& s, Isa isa) {
  if (!wp::index::isa_supported(isa)) return s.SkipWithError("CPU lacks this instruction set");
  run(s, wp::index::kernels_for(isa).l2sqr);
}
void BM_IP_Ours(benchmark::State& s, Isa isa) {
  if (!wp::index::isa_supported(isa)) return s.SkipWithError("CPU lacks this instruction set");
  run(s, wp::index::kernels_for(isa).inner_product);
}

#define DIMS ->Arg(64)->Arg(128)->Arg(784)->Arg(960)
BENCHMARK(BM_L2_Faiss) DIMS;
BENCHMARK_CAPTURE(BM_L2_Ours, scalar, Isa::kScalar) DIMS;
BENCHMARK_CAPTURE(BM_L2_Ours, avx2, Isa::kAvx2) DIMS;
BENCHMARK_CAPTURE(BM_L2_Ours, avx512, Isa::kAvx512) DIMS;
BENCHMARK(BM_IP_Faiss) DIMS;
BENCHMARK_CAPTURE(BM_IP_Ours, scalar, Isa::kScalar) DIMS;
BENCHMARK_CAPTURE(BM_IP_Ours, avx2, Isa::kAvx2) DIMS;
BENCHMARK_CAPTURE(BM_IP_Ours, avx512, Isa::kAvx512) DIMS;

}  // namespace

BENCHMARK_MAIN();
