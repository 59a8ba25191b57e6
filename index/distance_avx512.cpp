// AVX-512F kernels. Compiled with -mavx512f; includes nothing but intrinsics (see distance.h).
// The tail (d not a multiple of 16) uses a masked load, so no scalar loop is needed.
// GCC 12's AVX-512 intrinsics initialise their pass-through operands with _mm*_undefined_*(),
// which -Wuninitialized reports from inside the compiler's own header (GCC bug 105593, fixed in
// GCC 13). The warning is silenced for this translation unit only.
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include <immintrin.h>

#include <cstddef>
#include <cstdint>

namespace wp::index::detail {

namespace {
// Horizontal sum of the 16 lanes.
inline float hsum512(__m512 v) {
  const __m512 hi = _mm512_shuffle_f32x4(v, v, _MM_SHUFFLE(3, 2, 3, 2));
  __m256 h = _mm256_add_ps(_mm512_castps512_ps256(v), _mm512_castps512_ps256(hi));
  __m128 x = _mm_add_ps(_mm256_castps256_ps128(h), _mm256_extractf128_ps(h, 1));
  x = _mm_add_ps(x, _mm_movehl_ps(x, x));
  x = _mm_add_ss(x, _mm_movehdup_ps(x));
  return _mm_cvtss_f32(x);
}
}  // namespace

float l2sqr_avx512(const float* a, const float* b, size_t d) {
  __m512 s0 = _mm512_setzero_ps(), s1 = _mm512_setzero_ps();
  size_t i = 0;
  for (; i + 32 <= d; i += 32) {
    __m512 t0 = _mm512_sub_ps(_mm512_loadu_ps(a + i), _mm512_loadu_ps(b + i));
    __m512 t1 = _mm512_sub_ps(_mm512_loadu_ps(a + i + 16), _mm512_loadu_ps(b + i + 16));
    s0 = _mm512_fmadd_ps(t0, t0, s0);
    s1 = _mm512_fmadd_ps(t1, t1, s1);
  }
  if (i + 16 <= d) {
    __m512 t0 = _mm512_sub_ps(_mm512_loadu_ps(a + i), _mm512_loadu_ps(b + i));
    s0 = _mm512_fmadd_ps(t0, t0, s0);
    i += 16;
  }
  if (i < d) {
    __mmask16 m = static_cast<__mmask16>((1u << (d - i)) - 1u);
    __m512 t0 = _mm512_sub_ps(_mm512_maskz_loadu_ps(m, a + i), _mm512_maskz_loadu_ps(m, b + i));
    s1 = _mm512_fmadd_ps(t0, t0, s1);
  }
  return hsum512(_mm512_add_ps(s0, s1));
}

float ip_avx512(const float* a, const float* b, size_t d) {
  __m512 s0 = _mm512_setzero_ps(), s1 = _mm512_setzero_ps();
  size_t i = 0;
  for (; i + 32 <= d; i += 32) {
    s0 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i), _mm512_loadu_ps(b + i), s0);
    s1 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i + 16), _mm512_loadu_ps(b + i + 16), s1);
  }
  if (i + 16 <= d) {
    s0 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i), _mm512_loadu_ps(b + i), s0);
    i += 16;
  }
  if (i < d) {
    __mmask16 m = static_cast<__mmask16>((1u << (d - i)) - 1u);
    s1 = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(m, a + i), _mm512_maskz_loadu_ps(m, b + i), s1);
  }
  return hsum512(_mm512_add_ps(s0, s1));
}

float neg_ip_avx512(const float* a, const float* b, size_t d) {
  return -ip_avx512(a, b, d);
}

namespace {
// 16 uint8 codes widened to 16 floats.
inline __m512 load_u8x16(const uint8_t* c) {
  return _mm512_cvtepi32_ps(
      _mm512_cvtepu8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(c))));
}
}  // namespace

float l2sqr_u8_avx512(const float* q, const uint8_t* c, size_t d) {
  __m512 s0 = _mm512_setzero_ps(), s1 = _mm512_setzero_ps();
  size_t i = 0;
  for (; i + 32 <= d; i += 32) {
    const __m512 t0 = _mm512_sub_ps(_mm512_loadu_ps(q + i), load_u8x16(c + i));
    const __m512 t1 = _mm512_sub_ps(_mm512_loadu_ps(q + i + 16), load_u8x16(c + i + 16));
    s0 = _mm512_fmadd_ps(t0, t0, s0);
    s1 = _mm512_fmadd_ps(t1, t1, s1);
  }
  if (i + 16 <= d) {
    const __m512 t0 = _mm512_sub_ps(_mm512_loadu_ps(q + i), load_u8x16(c + i));
    s0 = _mm512_fmadd_ps(t0, t0, s0);
    i += 16;
  }
  float s = hsum512(_mm512_add_ps(s0, s1));
  for (; i < d; ++i) {
    const float t = q[i] - c[i];
    s += t * t;
  }
  return s;
}

float ip_u8_avx512(const float* q, const uint8_t* c, size_t d) {
  __m512 s0 = _mm512_setzero_ps(), s1 = _mm512_setzero_ps();
  size_t i = 0;
  for (; i + 32 <= d; i += 32) {
    s0 = _mm512_fmadd_ps(_mm512_loadu_ps(q + i), load_u8x16(c + i), s0);
    s1 = _mm512_fmadd_ps(_mm512_loadu_ps(q + i + 16), load_u8x16(c + i + 16), s1);
  }
  if (i + 16 <= d) {
    s0 = _mm512_fmadd_ps(_mm512_loadu_ps(q + i), load_u8x16(c + i), s0);
    i += 16;
  }
  float s = hsum512(_mm512_add_ps(s0, s1));
  for (; i < d; ++i) s += q[i] * c[i];
  return s;
}

}  // namespace wp::index::detail
