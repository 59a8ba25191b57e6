// AVX2 + FMA kernels. Compiled with -mavx2 -mfma; see distance.h and simd_reduce.h for why the
// traits live in an anonymous namespace.
#include <immintrin.h>

#include <cstddef>
#include <cstdint>

#include "index/simd_reduce.h"

namespace wp::index::detail {

namespace {
struct Avx2 {
  using V = __m256;
  static constexpr size_t W = 8;
  static V zero() { return _mm256_setzero_ps(); }
  static V load(const float* p) { return _mm256_loadu_ps(p); }
  static V load(const uint8_t* p) {
    return _mm256_cvtepi32_ps(
        _mm256_cvtepu8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(p))));
  }
  static V add(V a, V b) { return _mm256_add_ps(a, b); }
  static V sub(V a, V b) { return _mm256_sub_ps(a, b); }
  static V fmadd(V a, V b, V c) { return _mm256_fmadd_ps(a, b, c); }
  static float hsum(V v) {
    __m128 lo = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    __m128 sh = _mm_movehdup_ps(lo);
    lo = _mm_add_ps(lo, sh);
    sh = _mm_movehl_ps(sh, lo);
    return _mm_cvtss_f32(_mm_add_ss(lo, sh));
  }
};
}  // namespace

double max_sim_avx2(const float* q, size_t qn, const float* p, size_t pn, size_t d, bool l2) {
  return l2 ? simd_max_sim<Avx2, true>(q, qn, p, pn, d)
            : simd_max_sim<Avx2, false>(q, qn, p, pn, d);
}
float l2sqr_avx2(const float* a, const float* b, size_t d) {
  return simd_reduce<Avx2, true>(a, b, d);
}
float ip_avx2(const float* a, const float* b, size_t d) {
  return simd_reduce<Avx2, false>(a, b, d);
}
float neg_ip_avx2(const float* a, const float* b, size_t d) {
  return -simd_reduce<Avx2, false>(a, b, d);
}
float l2sqr_u8_avx2(const float* q, const uint8_t* c, size_t d) {
  return simd_reduce<Avx2, true>(q, c, d);
}
float ip_u8_avx2(const float* q, const uint8_t* c, size_t d) {
  return simd_reduce<Avx2, false>(q, c, d);
}

namespace {
#include "index/hamming_impl.h"
uint32_t popcount_hw(uint64_t x) {
  return static_cast<uint32_t>(_mm_popcnt_u64(x));
}
}  // namespace

void hamming_scan_avx2(const uint64_t* q, const uint64_t* codes, size_t n, size_t words,
                       uint32_t* out) {
  hamming_scan_impl(q, codes, n, words, out, popcount_hw);
}

}  // namespace wp::index::detail
