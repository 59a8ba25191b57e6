// AVX2 + FMA kernels. Compiled with -mavx2 -mfma; includes nothing but intrinsics (see distance.h).
#include <immintrin.h>

#include <cstddef>
#include <cstdint>

namespace wp::index::detail {

namespace {
inline float hsum256(__m256 v) {
  __m128 lo = _mm256_castps256_ps128(v);
  __m128 hi = _mm256_extractf128_ps(v, 1);
  lo = _mm_add_ps(lo, hi);
  __m128 sh = _mm_movehdup_ps(lo);
  lo = _mm_add_ps(lo, sh);
  sh = _mm_movehl_ps(sh, lo);
  lo = _mm_add_ss(lo, sh);
  return _mm_cvtss_f32(lo);
}
}  // namespace

float l2sqr_avx2(const float* a, const float* b, size_t d) {
  __m256 s0 = _mm256_setzero_ps(), s1 = _mm256_setzero_ps();
  size_t i = 0;
  for (; i + 16 <= d; i += 16) {
    __m256 t0 = _mm256_sub_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i));
    __m256 t1 = _mm256_sub_ps(_mm256_loadu_ps(a + i + 8), _mm256_loadu_ps(b + i + 8));
    s0 = _mm256_fmadd_ps(t0, t0, s0);
    s1 = _mm256_fmadd_ps(t1, t1, s1);
  }
  if (i + 8 <= d) {
    __m256 t0 = _mm256_sub_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i));
    s0 = _mm256_fmadd_ps(t0, t0, s0);
    i += 8;
  }
  float s = hsum256(_mm256_add_ps(s0, s1));
  for (; i < d; ++i) {
    float t = a[i] - b[i];
    s += t * t;
  }
  return s;
}

float ip_avx2(const float* a, const float* b, size_t d) {
  __m256 s0 = _mm256_setzero_ps(), s1 = _mm256_setzero_ps();
  size_t i = 0;
  for (; i + 16 <= d; i += 16) {
    s0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), s0);
    s1 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 8), _mm256_loadu_ps(b + i + 8), s1);
  }
  if (i + 8 <= d) {
    s0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), s0);
    i += 8;
  }
  float s = hsum256(_mm256_add_ps(s0, s1));
  for (; i < d; ++i) s += a[i] * b[i];
  return s;
}

float neg_ip_avx2(const float* a, const float* b, size_t d) {
  return -ip_avx2(a, b, d);
}

namespace {
// 8 uint8 codes widened to 8 floats.
inline __m256 load_u8x8(const uint8_t* c) {
  return _mm256_cvtepi32_ps(
      _mm256_cvtepu8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(c))));
}
}  // namespace

float l2sqr_u8_avx2(const float* q, const uint8_t* c, size_t d) {
  __m256 s0 = _mm256_setzero_ps(), s1 = _mm256_setzero_ps();
  size_t i = 0;
  for (; i + 16 <= d; i += 16) {
    const __m256 t0 = _mm256_sub_ps(_mm256_loadu_ps(q + i), load_u8x8(c + i));
    const __m256 t1 = _mm256_sub_ps(_mm256_loadu_ps(q + i + 8), load_u8x8(c + i + 8));
    s0 = _mm256_fmadd_ps(t0, t0, s0);
    s1 = _mm256_fmadd_ps(t1, t1, s1);
  }
  if (i + 8 <= d) {
    const __m256 t0 = _mm256_sub_ps(_mm256_loadu_ps(q + i), load_u8x8(c + i));
    s0 = _mm256_fmadd_ps(t0, t0, s0);
    i += 8;
  }
  float s = hsum256(_mm256_add_ps(s0, s1));
  for (; i < d; ++i) {
    const float t = q[i] - c[i];
    s += t * t;
  }
  return s;
}

float ip_u8_avx2(const float* q, const uint8_t* c, size_t d) {
  __m256 s0 = _mm256_setzero_ps(), s1 = _mm256_setzero_ps();
  size_t i = 0;
  for (; i + 16 <= d; i += 16) {
    s0 = _mm256_fmadd_ps(_mm256_loadu_ps(q + i), load_u8x8(c + i), s0);
    s1 = _mm256_fmadd_ps(_mm256_loadu_ps(q + i + 8), load_u8x8(c + i + 8), s1);
  }
  if (i + 8 <= d) {
    s0 = _mm256_fmadd_ps(_mm256_loadu_ps(q + i), load_u8x8(c + i), s0);
    i += 8;
  }
  float s = hsum256(_mm256_add_ps(s0, s1));
  for (; i < d; ++i) s += q[i] * c[i];
  return s;
}

}  // namespace wp::index::detail
