#pragma once
/**
 * @file hamming_impl.h
 * The Hamming scan shared by the distance_<isa>.cpp translation units, each instantiating it with
 * its own popcount (a SWAR count for the scalar build, the POPCNT instruction for AVX2/AVX-512).
 * Include it inside an anonymous namespace only (see simd_reduce.h): every ISA gets its own copy.
 */
#include <cstddef>
#include <cstdint>

/**
 * out[i] = number of differing bits between q and codes[i] (words 64-bit words each), for n codes
 * stored one after another. Common code sizes (1, 2, 4, 8 words) get unrolled loops.
 */
template <typename Popcount>
void hamming_scan_impl(const uint64_t* q, const uint64_t* codes, size_t n, size_t words,
                       uint32_t* out, Popcount pop) {
  switch (words) {
    case 1:
      for (size_t i = 0; i < n; ++i) out[i] = pop(q[0] ^ codes[i]);
      return;
    case 2:
      for (size_t i = 0; i < n; ++i, codes += 2) {
        out[i] = pop(q[0] ^ codes[0]) + pop(q[1] ^ codes[1]);
      }
      return;
    case 4:
      for (size_t i = 0; i < n; ++i, codes += 4) {
        out[i] = pop(q[0] ^ codes[0]) + pop(q[1] ^ codes[1]) + pop(q[2] ^ codes[2]) +
                 pop(q[3] ^ codes[3]);
      }
      return;
    default:
      for (size_t i = 0; i < n; ++i, codes += words) {
        uint32_t s0 = 0, s1 = 0;
        size_t w = 0;
        for (; w + 2 <= words; w += 2) {
          s0 += pop(q[w] ^ codes[w]);
          s1 += pop(q[w + 1] ^ codes[w + 1]);
        }
        if (w < words) s0 += pop(q[w] ^ codes[w]);
        out[i] = s0 + s1;
      }
  }
}
