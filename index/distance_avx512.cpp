// AVX-512F kernels. Compiled with -mavx512f; see distance.h and simd_reduce.h for why the traits
// live in an anonymous namespace.
//
// GCC 12's AVX-512 intrinsics initialise their pass-through operands with _mm*_undefined_*(),
// which -Wuninitialized reports from inside the compiler's own header (GCC bug 105593, fixed in
// GCC 13). The warning is silenced for this translation unit only.
#pragma GCC diagnostic ignored "-Wuninitialized"
#if !defined(__clang__)  // a GCC warning: clang warns of an unknown group
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif
#include <immintrin.h>

#include <cstddef>
#include <cstdint>

#include "index/simd_reduce.h"

namespace wp::index::detail {

namespace {
struct Avx512 {
  using V = __m512;
  static constexpr size_t W = 16;
  static V zero() { return _mm512_setzero_ps(); }
  static V load(const float* p) { return _mm512_loadu_ps(p); }
  static V load(const uint8_t* p) {
    return _mm512_cvtepi32_ps(
        _mm512_cvtepu8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p))));
  }
  static V add(V a, V b) { return _mm512_add_ps(a, b); }
  static V sub(V a, V b) { return _mm512_sub_ps(a, b); }
  static V fmadd(V a, V b, V c) { return _mm512_fmadd_ps(a, b, c); }
  static float hsum(V v) {
    const __m512 hi = _mm512_shuffle_f32x4(v, v, _MM_SHUFFLE(3, 2, 3, 2));
    const __m256 h = _mm256_add_ps(_mm512_castps512_ps256(v), _mm512_castps512_ps256(hi));
    __m128 x = _mm_add_ps(_mm256_castps256_ps128(h), _mm256_extractf128_ps(h, 1));
    x = _mm_add_ps(x, _mm_movehl_ps(x, x));
    x = _mm_add_ss(x, _mm_movehdup_ps(x));
    return _mm_cvtss_f32(x);
  }
};
}  // namespace

double max_sim_avx512(const float* q, size_t qn, const float* p, size_t pn, size_t d, bool l2) {
  return l2 ? simd_max_sim<Avx512, true>(q, qn, p, pn, d)
            : simd_max_sim<Avx512, false>(q, qn, p, pn, d);
}
float l2sqr_avx512(const float* a, const float* b, size_t d) {
  return simd_reduce<Avx512, true>(a, b, d);
}
float ip_avx512(const float* a, const float* b, size_t d) {
  return simd_reduce<Avx512, false>(a, b, d);
}
float neg_ip_avx512(const float* a, const float* b, size_t d) {
  return -simd_reduce<Avx512, false>(a, b, d);
}
float l2sqr_u8_avx512(const float* q, const uint8_t* c, size_t d) {
  return simd_reduce<Avx512, true>(q, c, d);
}
float ip_u8_avx512(const float* q, const uint8_t* c, size_t d) {
  return simd_reduce<Avx512, false>(q, c, d);
}

namespace {
#include "index/hamming_impl.h"
uint32_t popcount_hw(uint64_t x) {
  return static_cast<uint32_t>(_mm_popcnt_u64(x));
}
}  // namespace

void hamming_scan_avx512(const uint64_t* q, const uint64_t* codes, size_t n, size_t words,
                         uint32_t* out) {
  hamming_scan_impl(q, codes, n, words, out, popcount_hw);
}

}  // namespace wp::index::detail
