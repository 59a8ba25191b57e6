#pragma once
/**
 * @file distance.h
 * Float distance kernels with runtime CPU dispatch.
 *
 * Debian's FAISS is an SSE2-only build (docs/architecture.md, "Toolchain notes"), so the hot
 * kernels are our own: a scalar reference, AVX2+FMA, and AVX-512F, each in its own translation unit
 * compiled for its instruction set, and chosen once at start-up from what the CPU reports.
 * bench/bench_distance.cpp compares them with FAISS's fvec_L2sqr / fvec_inner_product.
 */
#include <cstddef>
#include <cstdint>

#include "index/metric.h"

namespace wp::index {

/// A distance kernel over two float vectors of dimension d.
using DistanceFn = float (*)(const float* a, const float* b, size_t d);

/// A kernel between a float vector q and d uint8 codes c (scalar quantization, see sq8.h).
using CodeDistanceFn = float (*)(const float* q, const uint8_t* c, size_t d);

/// out[i] = Hamming distance between the code q and codes[i] (n codes of `words` 64-bit words).
using HammingScanFn = void (*)(const uint64_t* q, const uint64_t* codes, size_t n, size_t words,
                               uint32_t* out);

/// MaxSim of the qn rows of q against the pn rows of p (d floats each): for each row of q its
/// highest inner product among p's rows (with `l2`: the highest negated squared L2 distance),
/// summed in double.
using MaxSimFn = double (*)(const float* q, size_t qn, const float* p, size_t pn, size_t d,
                            bool l2);

/// Instruction sets we have kernels for.
enum class Isa { kScalar, kAvx2, kAvx512 };

/// The kernels of one instruction set.
struct DistanceKernels {
  DistanceFn l2sqr;                 ///< sum (a_i - b_i)^2
  DistanceFn inner_product;         ///< sum a_i * b_i
  DistanceFn neg_inner_product;     ///< -sum a_i * b_i (a distance: smaller is closer)
  CodeDistanceFn l2sqr_u8;          ///< sum (q_i - c_i)^2
  CodeDistanceFn inner_product_u8;  ///< sum q_i * c_i
  HammingScanFn hamming_scan;       ///< popcount(q XOR c) over many codes (LSH)
  MaxSimFn max_sim;                 ///< multivectors' late interaction (multi_vector.h)
  Isa isa;
  const char* name;
};

/// True when this CPU can run kernels of `isa`.
bool isa_supported(Isa isa);

/// The instruction set used by default on this CPU (AVX2 when present; WAYPOINT_ISA=scalar, avx2
/// or avx512 picks another one the CPU supports).
Isa best_isa();

/// Kernels of the given instruction set; throws UserError when the CPU lacks it.
const DistanceKernels& kernels_for(Isa isa);

/// Kernels of best_isa(), chosen once.
const DistanceKernels& kernels();

/// Dimension from which AVX-512 kernels are preferred to AVX2 (when the CPU has both).
constexpr size_t kAvx512MinDim = 256;

/// The fastest kernels for vectors of dimension d (AVX-512 from kAvx512MinDim, else kernels()).
const DistanceKernels& kernels_for_dim(size_t d);

/// The distance an index of dimension d minimises for `metric`: l2sqr for kL2,
/// neg_inner_product otherwise.
DistanceFn distance_fn(Metric metric, size_t d);

/// Squared L2 distance with the best kernel.
inline float l2sqr(const float* a, const float* b, size_t d) {
  return kernels().l2sqr(a, b, d);
}

/// Inner product with the best kernel.
inline float inner_product(const float* a, const float* b, size_t d) {
  return kernels().inner_product(a, b, d);
}

/// Scales x (size d) to unit L2 norm in place and returns its original norm. A zero vector is
/// left as it is (its norm, 0, is returned) so that callers can reject it; so is a vector of unit
/// norm to float precision (normalising is idempotent: a vector read back from a cosine
/// collection and searched with scores exactly as its point does).
float normalize(float* x, size_t d);

/// True when all d values are finite (no NaN, no Inf).
bool all_finite(const float* x, size_t d);

/// The largest L2 norm a vector compared by l2 or ip may have: the square root of a quarter of
/// the largest float, so that ||a - b||^2 <= 2||a||^2 + 2||b||^2 and |a . b| stay finite 32-bit
/// floats (about 9.2e18). Cosine vectors are normalised first and have no such limit.
constexpr double kMaxVectorNorm = 9.2233715e18;

/// The L2 norm of x (size d), accumulated in double so that it neither overflows nor underflows
/// for any finite floats.
double exact_norm(const float* x, size_t d);

/**
 * Throws UserError("<what>: ...") unless x (size d) is a vector `metric` can compare: finite
 * values, and for l2 and ip a norm of at most kMaxVectorNorm, for cosine a nonzero direction.
 */
void check_vector(const float* x, size_t d, Metric metric, const std::string& what);

/// Converts an index-internal distance back to the user-facing score of `metric`:
/// squared L2 distance for kL2, the inner product (similarity) otherwise.
inline float score_from_distance(Metric metric, float distance) {
  return metric == Metric::kL2 ? distance : -distance;
}

namespace detail {
// Implemented in distance_<isa>.cpp; each translation unit is compiled for its instruction set
// and includes nothing but intrinsics, so no inline function compiled for AVX can leak into
// code that runs on a CPU without it.
float l2sqr_scalar(const float* a, const float* b, size_t d);
float ip_scalar(const float* a, const float* b, size_t d);
float neg_ip_scalar(const float* a, const float* b, size_t d);
float l2sqr_avx2(const float* a, const float* b, size_t d);
float ip_avx2(const float* a, const float* b, size_t d);
float neg_ip_avx2(const float* a, const float* b, size_t d);
float l2sqr_avx512(const float* a, const float* b, size_t d);
float ip_avx512(const float* a, const float* b, size_t d);
float neg_ip_avx512(const float* a, const float* b, size_t d);
float l2sqr_u8_scalar(const float* q, const uint8_t* c, size_t d);
float ip_u8_scalar(const float* q, const uint8_t* c, size_t d);
float l2sqr_u8_avx2(const float* q, const uint8_t* c, size_t d);
float ip_u8_avx2(const float* q, const uint8_t* c, size_t d);
float l2sqr_u8_avx512(const float* q, const uint8_t* c, size_t d);
float ip_u8_avx512(const float* q, const uint8_t* c, size_t d);
void hamming_scan_scalar(const uint64_t* q, const uint64_t* codes, size_t n, size_t words,
                         uint32_t* out);
void hamming_scan_avx2(const uint64_t* q, const uint64_t* codes, size_t n, size_t words,
                       uint32_t* out);
void hamming_scan_avx512(const uint64_t* q, const uint64_t* codes, size_t n, size_t words,
                         uint32_t* out);
double max_sim_scalar(const float* q, size_t qn, const float* p, size_t pn, size_t d, bool l2);
double max_sim_avx2(const float* q, size_t qn, const float* p, size_t pn, size_t d, bool l2);
double max_sim_avx512(const float* q, size_t qn, const float* p, size_t pn, size_t d, bool l2);
}  // namespace detail

}  // namespace wp::index
