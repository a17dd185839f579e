#include <ATen/Parallel.h>
#include <torch/library.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <type_traits>
#include <utility>
#include <vector>

#include "../ops.h"
#include "../philox.h"
#include "vectorized.h"

namespace mmseg_maskformer {
namespace ops {
namespace {

int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }

// Whether every corner offset y * sy + x * sx of a (height, width) plane fits in int32, as the
// vectorised kernels store them (for their gathers); larger planes take the portable kernels.
bool offsets_fit_int32(int64_t height, int64_t width, int64_t sy, int64_t sx) {
  return height * sy + width * sx <= std::numeric_limits<int32_t>::max();
}

// The portable kernels, for CPUs without AVX2 (vectorized_cpu()), float64 and large planes.

// One task per point: its corners and weights are computed once for all channels.
template <typename scalar_t>
void sample_points(const at::Tensor& src, const at::Tensor& coords, bool align_corners,
                   at::Tensor& output) {
  using acc_t = sample_acc_t<scalar_t>;
  using out_t = sample_out_t<scalar_t>;
  const int64_t batch = src.size(0), channels = src.size(1);
  const int64_t height = src.size(2), width = src.size(3);
  const int64_t num_points = coords.size(1);
  const scalar_t* in = src.const_data_ptr<scalar_t>();
  const acc_t* xy = coords.const_data_ptr<acc_t>();
  out_t* out = output.mutable_data_ptr<out_t>();
  const int64_t sn = src.stride(0), sc = src.stride(1), sy = src.stride(2), sx = src.stride(3);
  const int64_t grain = std::max<int64_t>(1, 4096 / channels);
  at::parallel_for(0, batch * num_points, grain, [&](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i) {
      const int64_t n = i / num_points, p = i % num_points;
      const GridCorners<acc_t> g(xy[2 * i], xy[2 * i + 1], height, width, align_corners);
      for (int64_t c = 0; c < channels; ++c) {
        out[(n * channels + c) * num_points + p] =
            static_cast<out_t>(g.sample(in + n * sn + c * sc, sy, sx, height, width));
      }
    }
  });
}

// Adds weight * grad of each point to its corners in one contiguous (height, width) plane.
template <typename acc_t, typename scalar_t>
void scatter_points(const acc_t* xy, const scalar_t* grad, int64_t grad_stride,
                    int64_t num_points, int64_t height, int64_t width, bool align_corners,
                    acc_t* plane) {
  for (int64_t p = 0; p < num_points; ++p) {
    const acc_t g = static_cast<acc_t>(grad[p * grad_stride]);
    GridCorners<acc_t>(xy[2 * p], xy[2 * p + 1], height, width, align_corners)
        .for_each_corner(height, width, [&](int64_t y, int64_t x, acc_t weight) {
          plane[y * width + x] += weight * g;
        });
  }
}

#if MMSEG_MASKFORMER_VEC
MMSEG_VEC_BEGIN

// The vectorised kernels (see vectorized.h) compute GridCorners for Vec<float>::size() points at a
// time: plane offsets y * sy + x * sx as int32 (-1 for a corner outside the image, which zero
// padding drops) and weights, corners in GridCorners' order (00, 01, 10, 11) and with its
// formulas, so they sample exactly what the portable kernels sample.
using VecF = Vec<float>;
using VecI = Vec<int32_t>;
constexpr int64_t kLanes = VecF::size();

struct CornerLanes {
  int32_t offset[4][kLanes];
  float weight[4][kLanes];
};

// Corners of count <= kLanes points at xy (x, y interleaved); lanes past count are points (0, 0).
inline void corner_lanes(const float* xy, int64_t count, int64_t height, int64_t width,
                         int64_t sy, int64_t sx, bool align_corners, CornerLanes& out) {
  const VecF first = VecF::loadu(xy, std::min(2 * count, kLanes));
  const VecF second = 2 * count > kLanes ? VecF::loadu(xy + kLanes, 2 * count - kLanes) : VecF(0);
  const auto [px, py] = at::vec::deinterleave2(first, second);
  const auto unnormalize = [&](const VecF& p, int64_t size) {
    const VecF coord = VecF(2) * p - VecF(1);
    return align_corners ? (coord + VecF(1)) / VecF(2) * VecF(static_cast<float>(size - 1))
                         : ((coord + VecF(1)) * VecF(static_cast<float>(size)) - VecF(1)) / VecF(2);
  };
  const VecF ix = unnormalize(px, width), iy = unnormalize(py, height);
  const VecF fx = ix.floor(), fy = iy.floor();
  const VecF wx0 = fx + VecF(1) - ix, wx1 = ix - fx;
  const VecF wy0 = fy + VecF(1) - iy, wy1 = iy - fy;
  // Out-of-range and NaN coordinates convert to INT32_MIN, which the bounds tests reject.
  const VecI x0 = at::vec::convert_to_int_of_same_size(fx);
  const VecI y0 = at::vec::convert_to_int_of_same_size(fy);
  const VecI x1 = x0 + VecI(1), y1 = y0 + VecI(1);
  const auto inside = [](const VecI& i, int64_t size) {
    return (i > VecI(-1)) & (VecI(static_cast<int32_t>(size)) > i);
  };
  const VecI in_x0 = inside(x0, width), in_x1 = inside(x1, width);
  const VecI in_y0 = inside(y0, height), in_y1 = inside(y1, height);
  const VecI o00 = y0 * VecI(static_cast<int32_t>(sy)) + x0 * VecI(static_cast<int32_t>(sx));
  const VecI o01 = o00 + VecI(static_cast<int32_t>(sx));
  const VecI o10 = o00 + VecI(static_cast<int32_t>(sy));
  const VecI o11 = o10 + VecI(static_cast<int32_t>(sx));
  const VecI none(-1);
  VecI::blendv(none, o00, in_y0 & in_x0).store(out.offset[0]);
  VecI::blendv(none, o01, in_y0 & in_x1).store(out.offset[1]);
  VecI::blendv(none, o10, in_y1 & in_x0).store(out.offset[2]);
  VecI::blendv(none, o11, in_y1 & in_x1).store(out.offset[3]);
  (wx0 * wy0).store(out.weight[0]);
  (wx1 * wy0).store(out.weight[1]);
  (wx0 * wy1).store(out.weight[2]);
  (wx1 * wy1).store(out.weight[3]);
}

// The values at one corner of the lanes, 0 where it is outside the image.
template <typename scalar_t>
inline VecF corner_values(const scalar_t* plane, const int32_t* offset) {
  if constexpr (std::is_same_v<scalar_t, float>) {
    const VecI o = VecI::loadu(offset);
    VecF inside = at::vec::cast<float>(o > VecI(-1));
    return at::vec::mask_gather<sizeof(float)>(VecF(0), plane, o, inside);
  } else {
    // No gather instruction for these types: lanes are loaded one by one, without branches
    // (outside corners read element 0, then are zeroed).
    const VecI o = VecI::loadu(offset);
    const VecI inside = o > VecI(-1);
    __at_align__ int32_t index[kLanes];
    (o & inside).store(index);
    __at_align__ float values[kLanes];
    for (int64_t l = 0; l < kLanes; ++l) values[l] = static_cast<float>(plane[index[l]]);
    return VecF::blendv(VecF(0), VecF::loadu(values), at::vec::cast<float>(inside));
  }
}

// Tasks are (sample, chunk of points): the corners of a chunk are computed once into a buffer,
// then every channel is sampled at them, a channel plane at a time so that it stays in cache.
// Chunks are as large as the thread count allows (up to kMaxChunk points): each one reads every
// channel plane once.
constexpr int64_t kMinChunk = 1024;
constexpr int64_t kMaxChunk = 16384;

template <typename scalar_t>
void sample_points_vec(const at::Tensor& src, const at::Tensor& coords, bool align_corners,
                       at::Tensor& output) {
  using out_t = sample_out_t<scalar_t>;
  const int64_t batch = src.size(0), channels = src.size(1);
  const int64_t height = src.size(2), width = src.size(3);
  const int64_t num_points = coords.size(1);
  const scalar_t* in = src.const_data_ptr<scalar_t>();
  const float* xy = coords.const_data_ptr<float>();
  out_t* out = output.mutable_data_ptr<out_t>();
  const int64_t sn = src.stride(0), sc = src.stride(1), sy = src.stride(2), sx = src.stride(3);
  const int64_t chunks_wanted = std::max<int64_t>(
      1, std::min(ceil_div(at::get_num_threads(), batch), ceil_div(num_points, kMinChunk)));
  const int64_t chunk =
      std::min(kMaxChunk, kLanes * ceil_div(ceil_div(num_points, chunks_wanted), kLanes));
  const int64_t chunks = ceil_div(num_points, chunk);
  at::parallel_for(0, batch * chunks, 1, [&](int64_t begin, int64_t end) {
    std::vector<CornerLanes> corners(chunk / kLanes);
    for (int64_t task = begin; task < end; ++task) {
      const int64_t n = task / chunks, first = task % chunks * chunk;
      const int64_t count = std::min(chunk, num_points - first);
      const int64_t blocks = ceil_div(count, kLanes);
      for (int64_t b = 0; b < blocks; ++b) {
        corner_lanes(xy + 2 * (n * num_points + first + b * kLanes),
                     std::min(kLanes, count - b * kLanes), height, width, sy, sx, align_corners,
                     corners[b]);
      }
      for (int64_t c = 0; c < channels; ++c) {
        const scalar_t* plane = in + n * sn + c * sc;
        out_t* row = out + (n * channels + c) * num_points + first;
        for (int64_t b = 0; b < blocks; ++b) {
          const CornerLanes& g = corners[b];
          const VecF value = VecF::loadu(g.weight[0]) * corner_values(plane, g.offset[0]) +
                             VecF::loadu(g.weight[1]) * corner_values(plane, g.offset[1]) +
                             VecF::loadu(g.weight[2]) * corner_values(plane, g.offset[2]) +
                             VecF::loadu(g.weight[3]) * corner_values(plane, g.offset[3]);
          const int64_t lanes = std::min(kLanes, count - b * kLanes);
          if constexpr (std::is_same_v<out_t, float>) {
            value.store(row + b * kLanes, lanes);
          } else {
            __at_align__ float values[kLanes];
            value.store(values);
            for (int64_t l = 0; l < lanes; ++l) row[b * kLanes + l] = static_cast<out_t>(values[l]);
          }
        }
      }
    }
  });
}

// scatter_points with the corners computed kLanes points at a time.
template <typename scalar_t>
void scatter_points_vec(const float* xy, const scalar_t* grad, int64_t grad_stride,
                        int64_t num_points, int64_t height, int64_t width, bool align_corners,
                        float* plane) {
  CornerLanes g;
  for (int64_t first = 0; first < num_points; first += kLanes) {
    const int64_t lanes = std::min(kLanes, num_points - first);
    corner_lanes(xy + 2 * first, lanes, height, width, width, 1, align_corners, g);
    for (int64_t l = 0; l < lanes; ++l) {
      const float value = static_cast<float>(grad[(first + l) * grad_stride]);
      for (int k = 0; k < 4; ++k) {
        if (g.offset[k][l] >= 0) plane[g.offset[k][l]] += g.weight[k][l] * value;
      }
    }
  }
}

// Philox4x32-10 (philox.h) of 8 counters (first + i, mask, stream, 0) at a time, the lanes of the
// vectors holding word 0, 1, 2 and 3 of each counter. _mm256_mul_epu32 multiplies the even
// 32-bit lanes into 64-bit products, so the odd lanes take a second multiply.
C10_ALWAYS_INLINE void mulhilo8(__m256i a, __m256i m, __m256i& lo, __m256i& hi) {
  const __m256i even = _mm256_mul_epu32(a, m);
  const __m256i odd = _mm256_mul_epu32(_mm256_srli_epi64(a, 32), m);
  lo = _mm256_blend_epi32(even, _mm256_slli_epi64(odd, 32), 0xAA);
  hi = _mm256_blend_epi32(_mm256_srli_epi64(even, 32), odd, 0xAA);
}

// Words [0, count) of the stream (mask, stream) as floats, what philox_uniform writes.
inline void philox_uniform_vec(PhiloxKey key, uint32_t mask, uint32_t stream, int64_t count,
                               float* out) {
  const __m256i m0 = _mm256_set1_epi32(static_cast<int32_t>(kPhiloxM0));
  const __m256i m1 = _mm256_set1_epi32(static_cast<int32_t>(kPhiloxM1));
  __m256i k0[kPhiloxRounds], k1[kPhiloxRounds];
  for (int round = 0; round < kPhiloxRounds; ++round) {
    k0[round] = _mm256_set1_epi32(static_cast<int32_t>(key.k0 + round * kPhiloxW0));
    k1[round] = _mm256_set1_epi32(static_cast<int32_t>(key.k1 + round * kPhiloxW1));
  }
  const __m256i lane = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
  const __m256 scale = _mm256_set1_ps(5.9604644775390625e-08f);  // 2^-24
  const int64_t vector_words = count / 32 * 32;
  for (int64_t j = 0; j < vector_words; j += 32) {
    __m256i c0 = _mm256_add_epi32(_mm256_set1_epi32(static_cast<int32_t>(j / 4)), lane);
    __m256i c1 = _mm256_set1_epi32(static_cast<int32_t>(mask));
    __m256i c2 = _mm256_set1_epi32(static_cast<int32_t>(stream));
    __m256i c3 = _mm256_setzero_si256();
    for (int round = 0; round < kPhiloxRounds; ++round) {
      __m256i lo0, hi0, lo1, hi1;
      mulhilo8(c0, m0, lo0, hi0);
      mulhilo8(c2, m1, lo1, hi1);
      c0 = _mm256_xor_si256(_mm256_xor_si256(hi1, c1), k0[round]);
      c1 = lo1;
      c2 = _mm256_xor_si256(_mm256_xor_si256(hi0, c3), k1[round]);
      c3 = lo0;
    }
    // Transposed to counter order: words 0-3 of counter 0, then of counter 1, ...
    const __m256i t0 = _mm256_unpacklo_epi32(c0, c1), t1 = _mm256_unpackhi_epi32(c0, c1);
    const __m256i t2 = _mm256_unpacklo_epi32(c2, c3), t3 = _mm256_unpackhi_epi32(c2, c3);
    const __m256i u0 = _mm256_unpacklo_epi64(t0, t2), u1 = _mm256_unpackhi_epi64(t0, t2);
    const __m256i u2 = _mm256_unpacklo_epi64(t1, t3), u3 = _mm256_unpackhi_epi64(t1, t3);
    const __m256i words[4] = {
        _mm256_permute2x128_si256(u0, u1, 0x20), _mm256_permute2x128_si256(u2, u3, 0x20),
        _mm256_permute2x128_si256(u0, u1, 0x31), _mm256_permute2x128_si256(u2, u3, 0x31)};
    for (int v = 0; v < 4; ++v) {
      const __m256 uniform =
          _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_srli_epi32(words[v], 8)), scale);
      _mm256_storeu_ps(out + j + 8 * v, uniform);
    }
  }
  philox_uniform(key, mask, stream, vector_words, count - vector_words, out + vector_words);
}

// The logits of one (height, width) plane at count points xy (x, y interleaved), as
// sample_points_vec samples them.
template <typename scalar_t>
void sample_plane_vec(const scalar_t* plane, int64_t height, int64_t width, int64_t sy,
                      int64_t sx, const float* xy, int64_t count, float* out) {
  CornerLanes g;
  for (int64_t first = 0; first < count; first += kLanes) {
    const int64_t lanes = std::min(kLanes, count - first);
    corner_lanes(xy + 2 * first, lanes, height, width, sy, sx, false, g);
    const VecF value = VecF::loadu(g.weight[0]) * corner_values(plane, g.offset[0]) +
                       VecF::loadu(g.weight[1]) * corner_values(plane, g.offset[1]) +
                       VecF::loadu(g.weight[2]) * corner_values(plane, g.offset[2]) +
                       VecF::loadu(g.weight[3]) * corner_values(plane, g.offset[3]);
    value.store(out + first, lanes);
  }
}

MMSEG_VEC_END
#endif

// The vectorised kernels where they apply (float32 compute, offsets within int32), else the
// portable ones. (Templates, so that `if constexpr` drops what a type cannot compile.)
template <typename scalar_t>
void point_sample_kernel(const at::Tensor& src, const at::Tensor& coords, bool align_corners,
                         at::Tensor& output) {
#if MMSEG_MASKFORMER_VEC
  if constexpr (std::is_same_v<sample_acc_t<scalar_t>, float>) {
    if (vectorized_cpu() &&
        offsets_fit_int32(src.size(2), src.size(3), src.stride(2), src.stride(3))) {
      sample_points_vec<scalar_t>(src, coords, align_corners, output);
      return;
    }
  }
#endif
  sample_points<scalar_t>(src, coords, align_corners, output);
}

// One task per (n, c) plane, so the scatter of overlapping points never races and sums in point
// order whatever the thread count. Half and bfloat16 gradients are accumulated in a float32
// plane, then rounded once.
template <typename scalar_t>
void point_sample_backward_kernel(const at::Tensor& grad_output, const at::Tensor& coords,
                                  bool align_corners, at::Tensor& grad_input) {
  using acc_t = sample_acc_t<scalar_t>;
  constexpr bool kInPlace = std::is_same_v<scalar_t, acc_t>;
  const int64_t channels = grad_output.size(1), num_points = grad_output.size(2);
  const int64_t height = grad_input.size(2), width = grad_input.size(3);
  const scalar_t* go = grad_output.const_data_ptr<scalar_t>();
  const acc_t* xy = coords.const_data_ptr<acc_t>();
  scalar_t* gi = grad_input.mutable_data_ptr<scalar_t>();
  const int64_t sn = grad_output.stride(0), sc = grad_output.stride(1);
  const int64_t sp = grad_output.stride(2);
  const int64_t plane_size = height * width;
#if MMSEG_MASKFORMER_VEC
  const bool vectorized = std::is_same_v<acc_t, float> && vectorized_cpu() &&
                          offsets_fit_int32(height, width, width, 1);
#endif
  at::parallel_for(0, grad_output.size(0) * channels, 1, [&](int64_t begin, int64_t end) {
    std::vector<acc_t> buffer(kInPlace ? 0 : plane_size);
    for (int64_t i = begin; i < end; ++i) {
      const int64_t n = i / channels, c = i % channels;
      acc_t* plane;
      if constexpr (kInPlace) {
        plane = gi + i * plane_size;
      } else {
        std::fill(buffer.begin(), buffer.end(), acc_t(0));
        plane = buffer.data();
      }
      const acc_t* pts = xy + 2 * n * num_points;
      const scalar_t* grad = go + n * sn + c * sc;
#if MMSEG_MASKFORMER_VEC
      if constexpr (std::is_same_v<acc_t, float>) {
        if (vectorized) {
          scatter_points_vec(pts, grad, sp, num_points, height, width, align_corners, plane);
        } else {
          scatter_points(pts, grad, sp, num_points, height, width, align_corners, plane);
        }
      } else {
        scatter_points(pts, grad, sp, num_points, height, width, align_corners, plane);
      }
#else
      scatter_points(pts, grad, sp, num_points, height, width, align_corners, plane);
#endif
      if constexpr (!kInPlace) {
        std::copy(buffer.begin(), buffer.end(), gi + i * plane_size);
      }
    }
  });
}

at::Tensor point_sample_cpu(const at::Tensor& inputs, const at::Tensor& points,
                            bool align_corners) {
  const at::Tensor src = check_point_sample_args(inputs, points);
  at::Tensor output = at::empty({inputs.size(0), inputs.size(1), points.size(1)},
                                inputs.options().dtype(point_sample_dtype(inputs)));
  if (output.numel() == 0) return output;
  const at::Tensor coords = points.to(compute_dtype(inputs)).contiguous();
  AT_DISPATCH_FLOATING_TYPES_AND3(
      at::kHalf, at::kBFloat16, at::kByte, src.scalar_type(), "point_sample_cpu",
      [&] { point_sample_kernel<scalar_t>(src, coords, align_corners, output); });
  return output;
}

at::Tensor point_sample_backward_cpu(const at::Tensor& grad_output, const at::Tensor& points,
                                     int64_t height, int64_t width, bool align_corners) {
  check_point_sample_backward_args(grad_output, points, height, width);
  at::Tensor grad_input = at::zeros({grad_output.size(0), grad_output.size(1), height, width},
                                    grad_output.options());
  if (grad_output.numel() == 0) return grad_input;
  const at::Tensor coords = points.to(compute_dtype(grad_output)).contiguous();
  AT_DISPATCH_FLOATING_TYPES_AND2(
      at::kHalf, at::kBFloat16, grad_output.scalar_type(), "point_sample_backward_cpu",
      [&] {
        point_sample_backward_kernel<scalar_t>(grad_output, coords, align_corners, grad_input);
      });
  return grad_input;
}

// Sort keys of the uncertain-point selections ordered by (|logit|, candidate index), NaN first.
// float logits pack both into one integer (the bits of a non-negative float order as the float
// does), which is compared much faster than a pair and can be selected by its high bits.
template <typename acc_t>
struct UncertaintyKey {
  using type = std::pair<acc_t, int64_t>;
  static type make(acc_t value, int64_t index) {
    return {std::isnan(value) ? acc_t(-1) : std::abs(value), index};
  }
  static int64_t index(const type& key) { return key.second; }
};

// NaN is 0, every other |logit| its bits + 1 (at most those of inf + 1), so that NaN comes
// strictly before 0 as topk(-|logit|) ranks them.
template <>
struct UncertaintyKey<float> {
  using type = uint64_t;
  static type make(float value, int64_t index) {
    uint32_t bits = 0;
    if (!std::isnan(value)) {
      const float magnitude = std::abs(value);
      std::memcpy(&bits, &magnitude, sizeof(bits));
      ++bits;
    }
    return (static_cast<uint64_t>(bits) << 32) | static_cast<uint64_t>(index);
  }
  static int64_t index(type key) { return static_cast<int64_t>(key & 0xffffffffu); }
};

// Moves the k smallest of a mask's keys to the front of keys, in no particular order; one per
// thread, holding its buffers.
template <typename key_t>
struct SmallestKeys {
  void select(std::vector<key_t>& keys, int64_t k) {
    std::nth_element(keys.begin(), keys.begin() + k, keys.end());
  }
};

// Integer keys by a radix step first: a histogram of the keys' top 12 bits (the float's exponent
// and 3 mantissa bits, as the sign bit is 0) finds the bin that holds the k-th smallest; keys of
// lower bins are taken, and nth_element runs on that bin only (a few percent of the keys): 4-5x
// faster than nth_element on all 37632 candidates of Mask2Former.
template <>
struct SmallestKeys<uint64_t> {
  static constexpr int kShift = 51;
  std::vector<uint32_t> histogram = std::vector<uint32_t>(size_t{1} << (64 - kShift));
  std::vector<uint64_t> boundary;

  void select(std::vector<uint64_t>& keys, int64_t k) {
    if (k == 0 || k == static_cast<int64_t>(keys.size())) return;
    std::fill(histogram.begin(), histogram.end(), 0u);
    for (const uint64_t key : keys) ++histogram[key >> kShift];
    uint64_t bin = 0;
    int64_t below = 0;
    while (below + histogram[bin] <= k) below += histogram[bin++];
    boundary.resize(histogram[bin]);
    int64_t front = 0, in_bin = 0;
    for (const uint64_t key : keys) {  // front never passes the key being read
      const uint64_t key_bin = key >> kShift;
      if (key_bin < bin) {
        keys[front++] = key;
      } else if (key_bin == bin) {
        boundary[in_bin++] = key;
      }
    }
    const int64_t rest = k - below;
    std::nth_element(boundary.begin(), boundary.begin() + rest, boundary.end());
    std::copy(boundary.begin(), boundary.begin() + rest, keys.begin() + below);
  }
};

// One task per mask: a selection (SmallestKeys) of its candidates by (|logit|, index) and a copy
// of the selected ones, where topk(-|logit|) + gather take three passes and a sort buffer. NaN
// logits rank as the least certain, as in topk(-|logit|); equal ones go by candidate index.
template <typename scalar_t, typename point_t>
void select_uncertain_kernel(const at::Tensor& candidate_logits, const at::Tensor& candidates,
                             int64_t num_uncertain, at::Tensor& output) {
  using Key = UncertaintyKey<sample_acc_t<scalar_t>>;
  const int64_t num_candidates = candidate_logits.size(1);
  const scalar_t* logits = candidate_logits.const_data_ptr<scalar_t>();
  const int64_t sn = candidate_logits.stride(0), sc = candidate_logits.stride(1);
  const point_t* xy = candidates.const_data_ptr<point_t>();
  point_t* out = output.mutable_data_ptr<point_t>();
  at::parallel_for(0, candidate_logits.size(0), 1, [&](int64_t begin, int64_t end) {
    std::vector<typename Key::type> keys(num_candidates);
    SmallestKeys<typename Key::type> smallest;
    for (int64_t n = begin; n < end; ++n) {
      const scalar_t* row = logits + n * sn;
      for (int64_t c = 0; c < num_candidates; ++c) {
        keys[c] = Key::make(static_cast<sample_acc_t<scalar_t>>(row[c * sc]), c);
      }
      smallest.select(keys, num_uncertain);
      const point_t* points = xy + 2 * n * num_candidates;
      point_t* selected = out + 2 * n * num_uncertain;
      for (int64_t i = 0; i < num_uncertain; ++i) {
        const int64_t c = Key::index(keys[i]);
        selected[2 * i] = points[2 * c];
        selected[2 * i + 1] = points[2 * c + 1];
      }
    }
  });
}

at::Tensor select_uncertain_points_cpu(const at::Tensor& candidate_logits,
                                       const at::Tensor& candidates, int64_t num_uncertain) {
  check_select_uncertain_points_args(candidate_logits, candidates, num_uncertain);
  at::Tensor output = at::empty({candidates.size(0), num_uncertain, 2}, candidates.options());
  if (output.numel() == 0) return output;
  const at::Tensor points = candidates.contiguous();
  AT_DISPATCH_FLOATING_TYPES_AND2(
      at::kHalf, at::kBFloat16, candidate_logits.scalar_type(), "select_uncertain_points_cpu",
      [&] {
        using logit_t = scalar_t;
        AT_DISPATCH_FLOATING_TYPES_AND2(
            at::kHalf, at::kBFloat16, points.scalar_type(), "select_uncertain_points_cpu", [&] {
              select_uncertain_kernel<logit_t, scalar_t>(candidate_logits, points,
                                                         num_uncertain, output);
            });
      });
  return output;
}


// One task per mask: its candidates drawn (Philox, philox.h), sampled, selected as in
// select_uncertain_kernel, and its uniform points drawn, with no (N, C, 2) candidate tensor.
template <typename scalar_t>
void sample_uncertain_kernel(const at::Tensor& mask_logits, PhiloxKey key, int64_t num_points,
                             int64_t num_candidates, int64_t num_uncertain, at::Tensor& output) {
  using acc_t = sample_acc_t<scalar_t>;
  using Key = UncertaintyKey<acc_t>;
  const int64_t height = mask_logits.size(1), width = mask_logits.size(2);
  const int64_t sn = mask_logits.stride(0), sy = mask_logits.stride(1), sx = mask_logits.stride(2);
  const scalar_t* logits = mask_logits.const_data_ptr<scalar_t>();
  float* out = output.mutable_data_ptr<float>();
#if MMSEG_MASKFORMER_VEC
  const bool vectorized = std::is_same_v<acc_t, float> && vectorized_cpu() &&
                          offsets_fit_int32(height, width, sy, sx);
#else
  const bool vectorized = false;
#endif
  const int64_t candidates = num_uncertain > 0 ? num_candidates : 0;
  const int64_t random_words = 2 * (num_points - num_uncertain);
  at::parallel_for(0, mask_logits.size(0), 1, [&](int64_t begin, int64_t end) {
    std::vector<float> xy(2 * candidates);
    std::vector<acc_t> values(candidates);
    std::vector<typename Key::type> keys(candidates);
    SmallestKeys<typename Key::type> smallest;
    for (int64_t n = begin; n < end; ++n) {
      const scalar_t* plane = logits + n * sn;
      float* points = out + 2 * n * num_points;
      const uint32_t mask = static_cast<uint32_t>(n);
      if (candidates > 0) {
#if MMSEG_MASKFORMER_VEC
        if (vectorized) {
          philox_uniform_vec(key, mask, kCandidateStream, 2 * candidates, xy.data());
          if constexpr (std::is_same_v<acc_t, float>) {
            sample_plane_vec(plane, height, width, sy, sx, xy.data(), candidates, values.data());
          }
        }
#endif
        if (!vectorized) {
          philox_uniform(key, mask, kCandidateStream, 0, 2 * candidates, xy.data());
          for (int64_t c = 0; c < candidates; ++c) {
            values[c] = GridCorners<acc_t>(xy[2 * c], xy[2 * c + 1], height, width, false)
                            .sample(plane, sy, sx, height, width);
          }
        }
        // Ranked as point_sample returns them, rounded to the logits' type.
        for (int64_t c = 0; c < candidates; ++c) {
          keys[c] = Key::make(static_cast<acc_t>(static_cast<scalar_t>(values[c])), c);
        }
        smallest.select(keys, num_uncertain);
        for (int64_t i = 0; i < num_uncertain; ++i) {
          const int64_t c = Key::index(keys[i]);
          points[2 * i] = xy[2 * c];
          points[2 * i + 1] = xy[2 * c + 1];
        }
      }
#if MMSEG_MASKFORMER_VEC
      if (vectorized) {
        philox_uniform_vec(key, mask, kRandomPointStream, random_words,
                           points + 2 * num_uncertain);
        continue;
      }
#endif
      philox_uniform(key, mask, kRandomPointStream, 0, random_words, points + 2 * num_uncertain);
    }
  });
}

at::Tensor sample_uncertain_points_cpu(const at::Tensor& mask_logits, const at::Tensor& seed,
                                       int64_t num_points, int64_t num_candidates,
                                       int64_t num_uncertain) {
  check_sample_uncertain_points_args(mask_logits, seed, num_points, num_candidates,
                                     num_uncertain);
  at::Tensor output =
      at::empty({mask_logits.size(0), num_points, 2}, mask_logits.options().dtype(at::kFloat));
  if (output.numel() == 0) return output;
  const PhiloxKey key(seed.item<int64_t>());
  AT_DISPATCH_FLOATING_TYPES_AND2(
      at::kHalf, at::kBFloat16, mask_logits.scalar_type(), "sample_uncertain_points_cpu", [&] {
        sample_uncertain_kernel<scalar_t>(mask_logits, key, num_points, num_candidates,
                                          num_uncertain, output);
      });
  return output;
}

}  // namespace

TORCH_LIBRARY_IMPL(mmseg_maskformer, CPU, m) {
  m.impl("point_sample", TORCH_FN(point_sample_cpu));
  m.impl("point_sample_backward", TORCH_FN(point_sample_backward_cpu));
  m.impl("select_uncertain_points", TORCH_FN(select_uncertain_points_cpu));
  m.impl("sample_uncertain_points", TORCH_FN(sample_uncertain_points_cpu));
}

}  // namespace ops
}  // namespace mmseg_maskformer
