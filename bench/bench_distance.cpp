// Distance kernels: ours (scalar, AVX2, AVX-512, chosen at run time) against FAISS's
// fvec_L2sqr / fvec_inner_product (Debian's FAISS is an SSE2 build), at the dimensions of our
// datasets; and MaxSim (multivectors: 32 query rows against a point's 32 rows) by our kernel,
// by our inner product called per pair (what multi_vector.cpp did first), and by FAISS's
// fvec_inner_products_ny (one query row against a point's rows) and a max. Items are row pairs.
// Run: build/bench/bench_distance
#include <benchmark/benchmark.h>
#include <faiss/utils/distances.h>

#include <algorithm>
#include <limits>
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

// MaxSim of a 32-row query against points of 32 rows (64 points, cycled).
constexpr size_t kRows = 32, kPoints = 64;

template <typename Fn>
void run_max_sim(benchmark::State& state, Fn fn) {
  const size_t d = state.range(0);
  const auto q = random_floats(kRows * d, 3), p = random_floats(kPoints * kRows * d, 4);
  size_t i = 0;
  for (auto _ : state) {
    benchmark::DoNotOptimize(fn(q.data(), p.data() + i * kRows * d, d));
    i = (i + 1) % kPoints;
  }
  state.SetItemsProcessed(state.iterations() * kRows * kRows);
}

void BM_MaxSim_Faiss(benchmark::State& s) {
  std::vector<float> sims(kRows);
  run_max_sim(s, [&](const float* q, const float* p, size_t d) {
    double sum = 0;
    for (size_t a = 0; a < kRows; ++a) {
      faiss::fvec_inner_products_ny(sims.data(), q + a * d, p, d, kRows);
      sum += *std::max_element(sims.begin(), sims.end());
    }
    return sum;
  });
}
void BM_MaxSim_PerPair(benchmark::State& s, Isa isa) {
  if (!wp::index::isa_supported(isa)) return s.SkipWithError("CPU lacks this instruction set");
  const auto ip = wp::index::kernels_for(isa).inner_product;
  run_max_sim(s, [&](const float* q, const float* p, size_t d) {
    double sum = 0;
    for (size_t a = 0; a < kRows; ++a) {
      float best = -std::numeric_limits<float>::infinity();
      for (size_t r = 0; r < kRows; ++r) best = std::max(best, ip(q + a * d, p + r * d, d));
      sum += best;
    }
    return sum;
  });
}
void BM_MaxSim_Ours(benchmark::State& s, Isa isa) {
  if (!wp::index::isa_supported(isa)) return s.SkipWithError("CPU lacks this instruction set");
  const auto max_sim = wp::index::kernels_for(isa).max_sim;
  run_max_sim(s, [&](const float* q, const float* p, size_t d) {
    return max_sim(q, kRows, p, kRows, d, false);
  });
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
BENCHMARK(BM_MaxSim_Faiss)->Arg(128);
BENCHMARK_CAPTURE(BM_MaxSim_PerPair, avx2, Isa::kAvx2)->Arg(128);
BENCHMARK_CAPTURE(BM_MaxSim_Ours, scalar, Isa::kScalar)->Arg(128);
BENCHMARK_CAPTURE(BM_MaxSim_Ours, avx2, Isa::kAvx2)->Arg(64)->Arg(96)->Arg(128);
BENCHMARK_CAPTURE(BM_MaxSim_Ours, avx512, Isa::kAvx512)->Arg(64)->Arg(96)->Arg(128);

}  // namespace

BENCHMARK_MAIN();
