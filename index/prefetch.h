#pragma once
/**
 * @file prefetch.h
 * Portable cache prefetch and spin-wait hints for the graph walkers. GCC and Clang provide
 * __builtin_prefetch on every target (on x86-64 it is the same PREFETCHT0 as _mm_prefetch with
 * _MM_HINT_T0); the pause hint is PAUSE on x86, YIELD on ARM, and nothing elsewhere.
 */
#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#endif

namespace wp::index {

/// Asks for the cache line holding `p` to be loaded into every cache level (a read, high
/// temporal locality): the next neighbour's vector while the current one's distance is computed.
inline void prefetch(const void* p) {
  __builtin_prefetch(p, 0, 3);
}

/// A hint that the caller spins on a lock: saves power and lets the other hyperthread run.
inline void cpu_relax() {
#if defined(__x86_64__) || defined(__i386__)
  _mm_pause();
#elif defined(__aarch64__) || defined(__arm__)
  __asm__ __volatile__("yield");
#endif
}

}  // namespace wp::index
