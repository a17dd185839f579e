// Vectorised CPU kernels: at::vec::Vectorized compiled for AVX2 + FMA, picked at run time.
//
// The extension is built for the baseline ISA, where at::vec falls back to scalar loops, and
// ATen's own vectorised kernels are not callable from here. So, as ATen does with its kernels,
// code between MMSEG_VEC_BEGIN and MMSEG_VEC_END is compiled for AVX2 + FMA (with at::vec in its
// AVX2 flavour, aten_vec_avx2.h) and must only run when vectorized_cpu() is true; the callers
// keep a portable scalar kernel for the other case. Code there that works on vectors must be
// compiled there too, or be inlined into such code: see the note at the top of kernel_math.h.
#pragma once

#include <ATen/Version.h>
#include <c10/macros/Macros.h>

#include <algorithm>
#include <cstdint>
#include <string>
#include <type_traits>

#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#define MMSEG_MASKFORMER_VEC 1
#include "aten_vec_avx2.h"
#else
#define MMSEG_MASKFORMER_VEC 0
#endif

namespace mmseg_maskformer {
namespace ops {

// Follows ATen's choice of kernels (AVX2 needs FMA there too), so ATEN_CPU_CAPABILITY=default
// also selects the portable kernels of this extension.
inline bool vectorized_cpu() {
#if MMSEG_MASKFORMER_VEC
  static const bool supported = [] {
    const std::string capability = at::get_cpu_capability();
    return capability == "AVX2" || capability == "AVX512";
  }();
  return supported;
#else
  return false;
#endif
}

#if MMSEG_MASKFORMER_VEC
MMSEG_VEC_BEGIN

template <typename T>
using Vec = at::vec::Vectorized<T>;

// 2^k for integer lanes k in [-126, 127], built in the exponent field.
C10_ALWAYS_INLINE __m256 power_of_two(__m256i k) {
  return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_add_epi32(k, _mm256_set1_epi32(127)), 23));
}

// exp on (-inf, 0] for float vectors (see kernel_math.h), inline: SLEEF's expf is an out-of-line
// call, around which the compiler spills every live vector register of the loss loops, and that
// costs more than the exp itself. Cody-Waite reduction x = n ln2 + r, |r| <= ln2 / 2, then
// Cephes' degree-7 polynomial for exp(r) (within 1.3 ulp of exp on the whole range, measured on
// every float), scaled by 2^n as two factors 2^(n/2) so that results down to the smallest
// subnormal come out right. x is clamped at -104, where exp already rounds to 0; NaN passes
// through (max returns its second operand for NaN).
template <>
inline Vec<float> m_exp_nonpositive(const Vec<float>& x) {
  const __m256 clamped = _mm256_max_ps(_mm256_set1_ps(-104.f), x);
  const __m256 n = _mm256_round_ps(_mm256_mul_ps(clamped, _mm256_set1_ps(1.44269504088896341f)),
                                   _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  // ln2 in two parts; n * 0.693359375 (9 significant bits) is exact for these |n| <= 150.
  __m256 r = _mm256_fnmadd_ps(n, _mm256_set1_ps(0.693359375f), clamped);
  r = _mm256_fnmadd_ps(n, _mm256_set1_ps(-2.12194440e-4f), r);
  __m256 poly = _mm256_set1_ps(1.9875691500e-4f);
  for (const float c : {1.3981999507e-3f, 8.3334519073e-3f, 4.1665795894e-2f, 1.6666665459e-1f,
                        5.0000001201e-1f}) {
    poly = _mm256_fmadd_ps(poly, r, _mm256_set1_ps(c));
  }
  poly = _mm256_fmadd_ps(poly, _mm256_mul_ps(r, r), _mm256_add_ps(r, _mm256_set1_ps(1.f)));
  const __m256i n_int = _mm256_cvtps_epi32(n);
  const __m256i half = _mm256_srai_epi32(n_int, 1);
  return _mm256_mul_ps(_mm256_mul_ps(poly, power_of_two(half)),
                       power_of_two(_mm256_sub_epi32(n_int, half)));
}

// log1p on [0, 1] for float vectors (see kernel_math.h), inline and several times cheaper than
// SLEEF's full-range log1p, which otherwise dominates the loss kernels: log1p(e) = 2 atanh(z)
// with z = e / (2 + e) in [0, 1/3], whose series 2z (1 + z^2/3 + ... + z^12/13) is cut off
// below 2e-8 relative; rounding leaves it within 2.5e-7 relative.
template <>
inline Vec<float> m_log1p_unit(const Vec<float>& e) {
  const Vec<float> z = e / (Vec<float>(2) + e);
  const Vec<float> z2 = z * z;
  Vec<float> series(1.f / 13);
  for (const float c : {1.f / 11, 1.f / 9, 1.f / 7, 1.f / 5, 1.f / 3, 1.f}) {
    series = at::vec::fmadd(series, z2, Vec<float>(c));
  }
  return Vec<float>(2) * z * series;
}

// Row loops: f(i, count) for whole vectors (count is then the constant Vec::size(), which lets
// loadu and store skip their masking), then once for the count < Vec::size() lanes left, which
// loadu(ptr, count) reads as zeros and store(ptr, count) leaves unwritten.
template <typename T, typename F>
inline void for_each_vec(int64_t n, F&& f) {
  using Full = std::integral_constant<int64_t, Vec<T>::size()>;
  int64_t i = 0;
  for (; i + Full::value <= n; i += Full::value) f(i, Full{});
  if (i < n) f(i, n - i);
}

// Lanes summed in a fixed order, in double.
template <typename T>
inline double sum_lanes(const Vec<T>& v) {
  T lanes[Vec<T>::size()];
  v.store(lanes);
  double sum = 0;
  for (int64_t i = 0; i < Vec<T>::size(); ++i) sum += lanes[i];
  return sum;
}

// n elements at src (stride in elements) as a contiguous T row: src itself when it already is
// one, else converted into buffer.
template <typename T, typename S>
inline const T* row_as(const S* src, int64_t stride, int64_t n, T* buffer) {
  if constexpr (std::is_same_v<S, T>) {
    if (stride == 1) return src;
  }
  if (stride == 1) {
    for (int64_t i = 0; i < n; ++i) buffer[i] = static_cast<T>(src[i]);
  } else {
    for (int64_t i = 0; i < n; ++i) buffer[i] = static_cast<T>(src[i * stride]);
  }
  return buffer;
}

MMSEG_VEC_END
#endif

}  // namespace ops
}  // namespace mmseg_maskformer
