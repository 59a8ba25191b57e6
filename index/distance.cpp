#include "index/distance.h"

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <limits>

#include "index/error.h"

namespace wp::index {

namespace {
constexpr DistanceKernels kScalar{
    detail::l2sqr_scalar,    detail::ip_scalar,    detail::neg_ip_scalar,
    detail::l2sqr_u8_scalar, detail::ip_u8_scalar, detail::hamming_scan_scalar,
    detail::max_sim_scalar,  Isa::kScalar,         "scalar"};
#ifdef WAYPOINT_X86_KERNELS
constexpr DistanceKernels kAvx2{
    detail::l2sqr_avx2,    detail::ip_avx2,    detail::neg_ip_avx2,
    detail::l2sqr_u8_avx2, detail::ip_u8_avx2, detail::hamming_scan_avx2,
    detail::max_sim_avx2,  Isa::kAvx2,         "avx2"};
constexpr DistanceKernels kAvx512{
    detail::l2sqr_avx512,    detail::ip_avx512,    detail::neg_ip_avx512,
    detail::l2sqr_u8_avx512, detail::ip_u8_avx512, detail::hamming_scan_avx512,
    detail::max_sim_avx512,  Isa::kAvx512,         "avx512"};
#endif

// WAYPOINT_ISA=scalar|avx2|avx512 forces an instruction set the CPU supports (benches, tests of
// the fallbacks); returns false when unset or unsupported.
bool forced_isa(Isa* out) {
  const char* env = std::getenv("WAYPOINT_ISA");
  if (!env) return false;
  for (Isa isa : {Isa::kScalar, Isa::kAvx2, Isa::kAvx512}) {
    const char* name = isa == Isa::kScalar ? "scalar" : isa == Isa::kAvx2 ? "avx2" : "avx512";
    if (std::strcmp(env, name) == 0 && isa_supported(isa)) {
      *out = isa;
      return true;
    }
  }
  return false;
}

Isa detect_best() {
  Isa forced;
  if (forced_isa(&forced)) return forced;
  if (const char* env = std::getenv("WAYPOINT_ISA")) {  // set, but not to a set this CPU runs
    std::fprintf(stderr,
                 "waypoint: WAYPOINT_ISA=%s is not a kernel set this CPU runs (scalar, avx2, "
                 "avx512 where supported); using the best one\n",
                 env);
  }
  if (isa_supported(Isa::kAvx2)) return Isa::kAvx2;
  if (isa_supported(Isa::kAvx512)) return Isa::kAvx512;
  return Isa::kScalar;
}
}  // namespace

bool isa_supported(Isa isa) {
  switch (isa) {
    case Isa::kScalar:
      return true;
#ifdef WAYPOINT_X86_KERNELS
    case Isa::kAvx2:
      return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") &&
             __builtin_cpu_supports("popcnt");
    case Isa::kAvx512:
      return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("popcnt");
#else
    case Isa::kAvx2:
    case Isa::kAvx512:
      return false;  // built without the x86 kernels
#endif
  }
  return false;
}

Isa best_isa() {
  static const Isa best = detect_best();
  return best;
}

const DistanceKernels& kernels_for(Isa isa) {
  WP_THROW_IF_NOT(isa_supported(isa), "this CPU does not support the requested kernel set");
#ifdef WAYPOINT_X86_KERNELS
  switch (isa) {
    case Isa::kAvx2:
      return kAvx2;
    case Isa::kAvx512:
      return kAvx512;
    case Isa::kScalar:
      break;
  }
#endif
  return kScalar;
}

const DistanceKernels& kernels() {
  static const DistanceKernels& k = kernels_for(best_isa());
  return k;
}

const DistanceKernels& kernels_for_dim(size_t d) {
  // On the Zen 4 machines we run on, AVX-512 executes as two 256-bit halves: below a few hundred
  // dimensions AVX2 is as fast or faster (bench_distance d=128: 5.8 ns vs 7.4 ns), above it the
  // halved instruction count wins (HNSW on Fashion-MNIST, d=784: 16.6k vs 12.1k QPS at ef=16).
  static const int forced = [] {
    Isa isa;
    return forced_isa(&isa) ? static_cast<int>(isa) : -1;
  }();  // the environment is read once
  if (forced >= 0) return kernels_for(static_cast<Isa>(forced));
  if (d >= kAvx512MinDim && isa_supported(Isa::kAvx512)) return kernels_for(Isa::kAvx512);
  return kernels();
}

DistanceFn distance_fn(Metric metric, size_t d) {
  const DistanceKernels& k = kernels_for_dim(d);
  return metric == Metric::kL2 ? k.l2sqr : k.neg_inner_product;
}

float normalize(float* x, size_t d) {
  float norm = std::sqrt(kernels().inner_product(x, x, d));
  if (!(norm > 0 && std::isfinite(norm) && norm >= 1e-18f)) {
    // The float sum of squares overflowed (values beyond ~1e19) or underflowed: the slow path
    // in double keeps the direction ([3e38, 3e38] is (1, 1) / sqrt(2), not zero).
    const double exact = exact_norm(x, d);
    if (exact > 0) {
      for (size_t i = 0; i < d; ++i) x[i] = static_cast<float>(x[i] / exact);
    }
    return static_cast<float>(exact);
  }
  if (std::abs(norm - 1.0f) <= 2 * std::numeric_limits<float>::epsilon()) return norm;
  const float inv = 1.0f / norm;
  for (size_t i = 0; i < d; ++i) x[i] *= inv;
  return norm;
}

double exact_norm(const float* x, size_t d) {
  double s = 0;
  for (size_t i = 0; i < d; ++i) s += static_cast<double>(x[i]) * x[i];
  return std::sqrt(s);
}

void check_vector(const float* x, size_t d, Metric metric, const std::string& what) {
  // One pass: the sum of squares in double is finite exactly when every value is (a float's
  // square is below 1.2e77, so no sum of finite ones overflows).
  const double norm = exact_norm(x, d);
  WP_THROW_IF_NOT(std::isfinite(norm), what,
                  ": only finite numbers are accepted (no NaN or Infinity)");
  if (metric == Metric::kCosine) {
    WP_THROW_IF_NOT(norm > 0, what, ": the zero vector has no cosine direction");
  } else {
    WP_THROW_IF_NOT(norm <= kMaxVectorNorm, what, ": its norm ", norm, " exceeds ", kMaxVectorNorm,
                    ", beyond which distances overflow 32-bit floats (scale the vectors down)");
  }
}

bool all_finite(const float* x, size_t d) {
  for (size_t i = 0; i < d; ++i) {
    if (!std::isfinite(x[i])) return false;
  }
  return true;
}

}  // namespace wp::index
