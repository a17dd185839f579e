// Uniform random points from Philox4x32-10 (Salmon, Moraes, Dror and Shaw, "Parallel Random
// Numbers: As Easy as 1, 2, 3", SC 2011; the generator of Random123 and cuRAND), shared by the
// CPU and CUDA kernels and written out in torch by the reference (ops/reference.py,
// philox4x32_10), so that every implementation draws the same points.
//
// A counter-based generator: word j of the stream (mask n, stream s) under a 64-bit seed is word
// j % 4 of Philox4x32-10 of the counter (j / 4, n, s, 0) with the key (seed low 32 bits, seed high
// 32 bits). Any word can be computed on its own, so the kernels draw in parallel on every thread
// and the result does not depend on the thread count. Points take two consecutive words, (x, y),
// each turned into a float in [0, 1) from its 24 high bits.
#pragma once

#include <c10/macros/Macros.h>

#include <cstdint>

namespace mmseg_maskformer {
namespace ops {

constexpr uint32_t kPhiloxM0 = 0xD2511F53u, kPhiloxM1 = 0xCD9E8D57u;  // multipliers
constexpr uint32_t kPhiloxW0 = 0x9E3779B9u, kPhiloxW1 = 0xBB67AE85u;  // key increments
constexpr int kPhiloxRounds = 10;

// The streams of sample_uncertain_points: its candidates, and its uniform points.
constexpr uint32_t kCandidateStream = 0, kRandomPointStream = 1;

// Philox4x32-10 of the counter c (in place) under the key (k0, k1).
C10_HOST_DEVICE inline void philox4x32_10(uint32_t c[4], uint32_t k0, uint32_t k1) {
  for (int round = 0; round < kPhiloxRounds; ++round) {
    const uint64_t p0 = static_cast<uint64_t>(kPhiloxM0) * c[0];
    const uint64_t p1 = static_cast<uint64_t>(kPhiloxM1) * c[2];
    const uint32_t c0 = static_cast<uint32_t>(p1 >> 32) ^ c[1] ^ k0;
    const uint32_t c2 = static_cast<uint32_t>(p0 >> 32) ^ c[3] ^ k1;
    c[0] = c0;
    c[1] = static_cast<uint32_t>(p1);
    c[2] = c2;
    c[3] = static_cast<uint32_t>(p0);
    k0 += kPhiloxW0;
    k1 += kPhiloxW1;
  }
}

// A float in [0, 1) from the 24 high bits of a word: exactly representable, so every
// implementation gets the same value.
C10_HOST_DEVICE inline float uniform_from_bits(uint32_t bits) {
  return static_cast<float>(bits >> 8) * 5.9604644775390625e-08f;  // 2^-24
}

struct PhiloxKey {
  uint32_t k0, k1;
  C10_HOST_DEVICE explicit PhiloxKey(int64_t seed)
      : k0(static_cast<uint32_t>(static_cast<uint64_t>(seed))),
        k1(static_cast<uint32_t>(static_cast<uint64_t>(seed) >> 32)) {}
};

// The 4 words of counter `block` of the stream (mask, stream).
C10_HOST_DEVICE inline void philox_block(PhiloxKey key, uint32_t block, uint32_t mask,
                                         uint32_t stream, uint32_t words[4]) {
  words[0] = block;
  words[1] = mask;
  words[2] = stream;
  words[3] = 0;
  philox4x32_10(words, key.k0, key.k1);
}

// Words [first, first + count) of the stream (mask, stream) as floats in [0, 1), scalar.
C10_HOST_DEVICE inline void philox_uniform(PhiloxKey key, uint32_t mask, uint32_t stream,
                                           int64_t first, int64_t count, float* out) {
  int64_t j = first;
  const int64_t end = first + count;
  while (j < end) {
    uint32_t c[4];
    philox_block(key, static_cast<uint32_t>(j / 4), mask, stream, c);
    for (int64_t w = j % 4; w < 4 && j < end; ++w, ++j) *out++ = uniform_from_bits(c[w]);
  }
}

}  // namespace ops
}  // namespace mmseg_maskformer
