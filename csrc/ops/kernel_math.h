// Per-element math shared by the CPU and CUDA kernels, so both devices compute the same thing.
// The element math (FocalParams, SigmoidTerms, FocalTerm, focal_dice_grad, CostTerms) is generic
// in its value type: a float or double, or on the CPU an at::vec::Vectorized of them, which then
// computes a vector of elements with the same formulas. It is forced inline: instantiated for
// vectors, it must become part of its caller, which is compiled for AVX2 (cpu/vectorized.h);
// an out-of-line copy would be compiled for the baseline ISA and pass vectors with another ABI.
#pragma once

#include <c10/macros/Macros.h>

#include <cmath>
#include <cstdint>

namespace mmseg_maskformer {
namespace ops {

// Explicit float/double overloads: the float versions keep CUDA on single-precision intrinsics
// and avoid silent promotion to double on the host.
C10_HOST_DEVICE inline float m_exp(float x) { return expf(x); }
C10_HOST_DEVICE inline double m_exp(double x) { return exp(x); }
C10_HOST_DEVICE inline float m_log1p(float x) { return log1pf(x); }
C10_HOST_DEVICE inline double m_log1p(double x) { return log1p(x); }
C10_HOST_DEVICE inline float m_pow(float x, float y) { return powf(x, y); }
C10_HOST_DEVICE inline double m_pow(double x, double y) { return pow(x, y); }
C10_HOST_DEVICE inline float m_floor(float x) { return floorf(x); }
C10_HOST_DEVICE inline double m_floor(double x) { return floor(x); }
C10_HOST_DEVICE inline float m_abs(float x) { return fabsf(x); }
C10_HOST_DEVICE inline double m_abs(double x) { return fabs(x); }
// Branch-free choice: for vectors, cond is a lane mask such as (x >= 0).
template <typename T>
C10_HOST_DEVICE C10_ALWAYS_INLINE T m_select(bool cond, T a, T b) {
  return cond ? a : b;
}

// The same for vector types (at::vec::Vectorized, host only). Declared here, before the generic
// math below, because unqualified calls in templates only see earlier declarations and
// at::vec's namespace. SFINAE keeps them out of overload resolution for scalars.
template <typename V>
C10_ALWAYS_INLINE auto m_exp(const V& x) -> decltype(x.exp()) {
  return x.exp();
}
template <typename V>
C10_ALWAYS_INLINE auto m_log1p(const V& x) -> decltype(x.log1p()) {
  return x.log1p();
}
template <typename V>
C10_ALWAYS_INLINE auto m_pow(const V& x, const V& y) -> decltype(x.pow(y)) {
  return x.pow(y);
}
template <typename V>
C10_ALWAYS_INLINE auto m_abs(const V& x) -> decltype(x.abs()) {
  return x.abs();
}
template <typename V>
C10_ALWAYS_INLINE auto m_select(const V& cond, const V& a, const V& b)
    -> decltype(V::blendv(b, a, cond)) {
  return V::blendv(b, a, cond);
}

// exp on (-inf, 0] and log1p on [0, 1], all that SigmoidTerms needs: a value type may specialise
// them with something cheaper than the full-range functions (cpu/vectorized.h does for float
// vectors).
template <typename T>
C10_HOST_DEVICE C10_ALWAYS_INLINE T m_exp_nonpositive(const T& x) {
  return m_exp(x);
}
template <typename T>
C10_HOST_DEVICE C10_ALWAYS_INLINE T m_log1p_unit(const T& x) {
  return m_log1p(x);
}

// Strided (N, H, W) view: kernels index inputs in place, whatever their layout.
template <typename T>
struct MaskView {
  T* data;
  int64_t sn, sy, sx, height, width;

  C10_HOST_DEVICE T* mask(int64_t n) const { return data + n * sn; }
  C10_HOST_DEVICE T& at(int64_t n, int64_t y, int64_t x) const {
    return data[n * sn + y * sy + x * sx];
  }
};

// Per-pixel weights of an op's `valid` argument, read in place with their strides (an expanded
// view costs nothing): a bool map (as uint8) or floating weights in [0, 1]. Neither pointer set
// means valid=None; kernels test defined() once and then run the unweighted arithmetic, so that
// valid=None gives the results of the ops without the argument bit for bit.
template <typename T>
struct ValidView {
  const uint8_t* flags;
  const T* weights;
  int64_t sn, sy, sx;

  C10_HOST_DEVICE bool defined() const { return flags != nullptr || weights != nullptr; }
  C10_HOST_DEVICE T at(int64_t n, int64_t y, int64_t x) const {
    const int64_t i = n * sn + y * sy + x * sx;
    return flags != nullptr ? static_cast<T>(flags[i]) : weights[i];
  }
};

// Focal-loss hyper-parameters as the kernels use them, applied to values of type V (T or a
// vector of T).
template <typename T>
struct FocalParams {
  using value_type = T;
  T alpha;
  T gamma;

  // alpha < 0 disables the class-balance weight.
  template <typename V>
  C10_HOST_DEVICE C10_ALWAYS_INLINE V alpha_t(const V& t) const {
    return alpha >= 0 ? V(alpha) * t + V(1 - alpha) * (V(1) - t) : V(1);
  }
  // gamma == 2 (MaskFormer's focal loss) and gamma == 0 (Mask2Former's binary cross-entropy)
  // are the cases in use: a multiply or nothing, where pow costs more than the rest of the loss.
  template <typename V>
  C10_HOST_DEVICE C10_ALWAYS_INLINE V modulate(const V& q) const {
    return gamma == T(2) ? q * q : gamma == T(0) ? V(1) : m_pow(q, V(gamma));
  }
  // d(q^gamma)/dx given modulation = q^gamma and dq = dq/dx, as gamma q^gamma (dq / q). Since
  // |dq| <= q (see FocalTerm) this stays finite for gamma < 1 and q -> 0, where the textbook
  // gamma q^(gamma-1) dq gives inf * 0. For gamma == 2 it is 2 q dq, without the division; for
  // gamma == 0, 0.
  template <typename V>
  C10_HOST_DEVICE C10_ALWAYS_INLINE V modulate_grad(const V& q, const V& modulation,
                                                    const V& dq) const {
    if (gamma == T(0)) return V(0);
    return gamma == T(2) ? V(2) * q * dq
                         : V(gamma) * modulation * m_select(q > V(0), dq / q, V(0));
  }
};

// sigmoid(x), sigmoid(-x) and softplus(+-x) from one exp(-|x|): no overflow, and 1 - p is not
// computed as a difference, which would lose everything for saturated logits (|x| > 17 in fp32).
template <typename T>
struct SigmoidTerms {
  T p, pm, softplus_pos, softplus_neg;

  C10_HOST_DEVICE C10_ALWAYS_INLINE explicit SigmoidTerms(const T& x) {
    const T e = m_exp_nonpositive(-m_abs(x));
    const T log_term = m_log1p_unit(e);
    const T inv = T(1) / (T(1) + e);
    const T e_inv = e * inv;
    const auto positive = x >= T(0);
    p = m_select(positive, inv, e_inv);
    pm = m_select(positive, e_inv, inv);
    softplus_pos = m_select(positive, x, T(0)) + log_term;
    softplus_neg = m_select(positive, T(0), -x) + log_term;
  }
};

// Sigmoid focal loss and its derivative at one element (soft targets allowed).
// q = 1 - p_t = p(1-t) + (1-p)t and dq/dx = (1-2t)p(1-p); q is a convex combination of p and
// 1-p, so |dq/dx| <= q. dFL/dx = alpha_t [d(q^gamma)/dx ce + q^gamma (p - t)].
template <typename T>
struct FocalTerm {
  T value, grad;

  template <typename P>
  C10_HOST_DEVICE C10_ALWAYS_INLINE FocalTerm(const SigmoidTerms<T>& s, const T& t,
                                             const FocalParams<P>& fp) {
    // t*softplus(-x) + (1-t)*softplus(x) == softplus(x) - t*x without its cancellation.
    const T ce = t * s.softplus_neg + (T(1) - t) * s.softplus_pos;
    const T q = s.p * (T(1) - t) + s.pm * t;
    const T dq = (T(1) - T(2) * t) * s.p * s.pm;
    const T modulation = fp.modulate(q);
    const T alpha_t = fp.alpha_t(t);
    value = alpha_t * modulation * ce;
    grad = alpha_t * (fp.modulate_grad(q, modulation, dq) * ce +
                      modulation * (s.p * (T(1) - t) - s.pm * t));
  }
};

// dL/dx of one element for L = c_focal * focal + dice, given the per-mask coefficients of
// focal_dice_grad_coefficients: d dice/dx = p (1 - p) (N / D^2 - 2 t / D).
template <typename T, typename P>
C10_HOST_DEVICE C10_ALWAYS_INLINE T focal_dice_grad(const T& x, const T& t,
                                                  const FocalParams<P>& fp, const P* coef) {
  const SigmoidTerms<T> s(x);
  const FocalTerm<T> focal(s, t, fp);
  return T(coef[0]) * focal.grad + s.p * s.pm * (T(coef[1]) + T(coef[2]) * t);
}

// The per-mask sums of the loss forward, in this order; kLossSums with the valid count.
enum LossSum { kFocal = 0, kSumP, kSumT, kSumPT, kCount, kLossSums };

// Adds one pixel to the loss sums (focal, p, t, p * t); sums may be wider than T.
template <typename S, typename T, typename P>
C10_HOST_DEVICE C10_ALWAYS_INLINE void add_loss_pixel(S* sums, const T& logit, const T& t,
                                                      const FocalParams<P>& fp) {
  const SigmoidTerms<T> s(logit);
  sums[kFocal] += FocalTerm<T>(s, t, fp).value;
  sums[kSumP] += s.p;
  sums[kSumT] += t;
  sums[kSumPT] += s.p * t;
}

// The same for a pixel of weight v (valid given): every term weighted, and v counted.
template <typename S, typename T, typename P>
C10_HOST_DEVICE C10_ALWAYS_INLINE void add_weighted_loss_pixel(S* sums, const T& logit, const T& t,
                                                               const T& v,
                                                               const FocalParams<P>& fp) {
  const SigmoidTerms<T> s(logit);
  const T vp = v * s.p;
  sums[kFocal] += v * FocalTerm<T>(s, t, fp).value;
  sums[kSumP] += vp;
  sums[kSumT] += v * t;
  sums[kSumPT] += vp * t;
  sums[kCount] += v;
}

// One output index of a 1-D linear resize with align_corners=False, as ATen's
// upsample_bilinear2d computes it (area_pixel_compute_source_index, clamped at both borders).
template <typename T>
struct LinearTap {
  int64_t i0, i1;
  T l0, l1;
};

// area_pixel_compute_scale for align_corners=False without an explicit scale factor.
template <typename T>
C10_HOST_DEVICE inline T linear_scale(int64_t in_size, int64_t out_size) {
  return static_cast<T>(in_size) / out_size;
}

template <typename T>
C10_HOST_DEVICE inline LinearTap<T> linear_tap(int64_t dst, T scale, int64_t in_size) {
  T src = scale * (dst + T(0.5)) - T(0.5);
  if (src < 0) src = 0;
  LinearTap<T> tap;
  tap.i0 = static_cast<int64_t>(m_floor(src));
  if (tap.i0 > in_size - 1) tap.i0 = in_size - 1;
  T lambda = src - tap.i0;
  lambda = lambda < 0 ? T(0) : (lambda > 1 ? T(1) : lambda);
  tap.i1 = tap.i0 < in_size - 1 ? tap.i0 + 1 : tap.i0;
  tap.l0 = 1 - lambda;
  tap.l1 = lambda;
  return tap;
}

// Logit of a (h, w) map bilinearly resampled at one target pixel, in ATen's operation order.
template <typename acc_t, typename scalar_t>
C10_HOST_DEVICE inline acc_t bilinear_at(const scalar_t* map, int64_t sy, int64_t sx,
                                         const LinearTap<acc_t>& ty, const LinearTap<acc_t>& tx) {
  const scalar_t* row0 = map + ty.i0 * sy;
  const scalar_t* row1 = map + ty.i1 * sy;
  return ty.l0 * (tx.l0 * static_cast<acc_t>(row0[tx.i0 * sx]) +
                  tx.l1 * static_cast<acc_t>(row0[tx.i1 * sx])) +
         ty.l1 * (tx.l0 * static_cast<acc_t>(row1[tx.i0 * sx]) +
                  tx.l1 * static_cast<acc_t>(row1[tx.i1 * sx]));
}

// Smallest dst in [0, out_size] whose tap starts at or after src row i (i0 is monotone in dst).
// Inverts the tap formula for a first guess, then walks to absorb its rounding.
template <typename T>
C10_HOST_DEVICE inline int64_t first_dst_at(int64_t i, T scale, int64_t in_size, int64_t out_size) {
  if (i <= 0) return 0;
  if (i >= in_size) return out_size;
  int64_t dst = static_cast<int64_t>((i + T(0.5)) / scale - T(0.5));
  dst = dst < 0 ? 0 : (dst > out_size ? out_size : dst);
  while (dst > 0 && linear_tap(dst - 1, scale, in_size).i0 >= i) --dst;
  while (dst < out_size && linear_tap(dst, scale, in_size).i0 < i) ++dst;
  return dst;
}

// Weight of src index i in the tap (both weights when the border clamp makes i0 == i1).
template <typename T>
C10_HOST_DEVICE inline T tap_weight(const LinearTap<T>& tap, int64_t i) {
  return (tap.i0 == i ? tap.l0 : T(0)) + (tap.i1 == i ? tap.l1 : T(0));
}

// The transposed bilinear stencil of the loss backward in two deterministic passes, shared by
// the CUDA kernels and the portable CPU kernel. Pass 1: logit (n, i, j) owns the target pixels
// whose taps start at it (rows [first_dst_at(i), first_dst_at(i + 1)), likewise columns),
// computes each one's gradient once and splits it into the four partial sums owned[0..3] bound
// for logits (i, j), (i, j + 1), (i + 1, j), (i + 1, j + 1); at the far borders the clamped tap
// has i1 == i0 and its weight folds into the owner's own row or column. Pass 2: logit (i, j)
// adds the partials its (up to) four owners hold for it, in a fixed order.
template <typename acc_t, typename scalar_t, typename target_t, typename P>
C10_HOST_DEVICE inline void resize_backward_partials(const MaskView<const scalar_t>& logits,
                                                     const MaskView<const target_t>& targets,
                                                     const ValidView<acc_t>& valid, acc_t scale_y,
                                                     acc_t scale_x, const FocalParams<P>& fp,
                                                     const P* coef, int64_t n, int64_t i,
                                                     int64_t j, acc_t* owned) {
  const int64_t h = logits.height, w = logits.width;
  const int64_t height = targets.height, width = targets.width;
  const int64_t y_end = first_dst_at(i + 1, scale_y, h, height);
  const int64_t x_begin = first_dst_at(j, scale_x, w, width);
  const int64_t x_end = first_dst_at(j + 1, scale_x, w, width);
  acc_t sums[4] = {0, 0, 0, 0};
  for (int64_t y = first_dst_at(i, scale_y, h, height); y < y_end; ++y) {
    const LinearTap<acc_t> ty = linear_tap(y, scale_y, h);
    acc_t row[2] = {0, 0};  // the row's gradients, weighted by the column taps
    for (int64_t x = x_begin; x < x_end; ++x) {
      const LinearTap<acc_t> tx = linear_tap(x, scale_x, w);
      const acc_t logit = bilinear_at(logits.mask(n), logits.sy, logits.sx, ty, tx);
      acc_t g = focal_dice_grad(logit, static_cast<acc_t>(targets.at(n, y, x)), fp, coef);
      if (valid.defined()) g = valid.at(n, y, x) * g;
      row[0] += tx.l0 * g;
      row[tx.i1 == tx.i0 ? 0 : 1] += tx.l1 * g;
    }
    const int r1 = ty.i1 == ty.i0 ? 0 : 2;
    sums[0] += ty.l0 * row[0];
    sums[1] += ty.l0 * row[1];
    sums[r1] += ty.l1 * row[0];
    sums[r1 + 1] += ty.l1 * row[1];
  }
  for (int k = 0; k < 4; ++k) owned[k] = sums[k];
}

// Pass 2: the gradient of logit (n, i, j) from the (n, h, w, 4) partials of pass 1.
template <typename acc_t>
C10_HOST_DEVICE inline acc_t resize_backward_gather(const acc_t* partials, int64_t h, int64_t w,
                                                    int64_t n, int64_t i, int64_t j) {
  const acc_t* mask = partials + n * h * w * 4;
  acc_t sum = mask[(i * w + j) * 4];
  if (j > 0) sum += mask[(i * w + j - 1) * 4 + 1];
  if (i > 0) sum += mask[((i - 1) * w + j) * 4 + 2];
  if (i > 0 && j > 0) sum += mask[((i - 1) * w + j - 1) * 4 + 3];
  return sum;
}

// ATen's legacy 'nearest' source index (nearest_idx): src = min(floor(dst * scale), in - 1).
C10_HOST_DEVICE inline int64_t nearest_index(int64_t dst, int64_t in_size, int64_t out_size) {
  if (in_size == out_size) return dst;
  if (out_size == 2 * in_size) return dst >> 1;
  const float scale = static_cast<float>(in_size) / out_size;
  const int64_t src = static_cast<int64_t>(floorf(dst * scale));
  return src < in_size - 1 ? src : in_size - 1;
}

// Matcher terms of one logit: pos = alpha (1-p)^gamma softplus(-x), neg = (1-alpha) p^gamma
// softplus(x).
template <typename T>
struct CostTerms {
  T pos, neg, p;

  template <typename P>
  C10_HOST_DEVICE C10_ALWAYS_INLINE CostTerms(const T& x, const FocalParams<P>& fp) {
    const SigmoidTerms<T> s(x);
    pos = fp.modulate(s.pm) * s.softplus_neg;
    neg = fp.modulate(s.p) * s.softplus_pos;
    if (fp.alpha >= 0) {
      pos = pos * T(fp.alpha);
      neg = neg * T(1 - fp.alpha);
    }
    p = s.p;
  }
};

// Matcher terms of element i of the (Q, K) flattened logits, written to the three (Q, K) blocks
// [pos - neg; p; neg] of terms (block = Q * K).
template <typename acc_t, typename scalar_t>
C10_HOST_DEVICE inline void write_cost_terms(const MaskView<const scalar_t>& logits,
                                             const FocalParams<acc_t>& fp, int64_t i, int64_t block,
                                             acc_t* terms) {
  const int64_t num_points = logits.height * logits.width;
  const int64_t q = i / num_points, k = i % num_points;
  const CostTerms<acc_t> c(static_cast<acc_t>(logits.at(q, k / logits.width, k % logits.width)),
                           fp);
  terms[i] = c.pos - c.neg;
  terms[block + i] = c.p;
  terms[2 * block + i] = c.neg;
}

// Element i of the (M, h * w) flattening of the targets nearest-resampled to (h, w).
template <typename acc_t, typename target_t>
C10_HOST_DEVICE inline acc_t nearest_target(const MaskView<const target_t>& targets, int64_t i,
                                            int64_t h, int64_t w) {
  const int64_t m = i / (h * w), k = i % (h * w);
  return static_cast<acc_t>(targets.at(m, nearest_index(k / w, targets.height, h),
                                       nearest_index(k % w, targets.width, w)));
}

// grid_sample zero padding: corners outside the image contribute nothing.
C10_HOST_DEVICE inline bool in_bounds(int64_t y, int64_t x, int64_t height, int64_t width) {
  return y >= 0 && y < height && x >= 0 && x < width;
}

// F.grid_sample's bilinear corners and weights for a point (x, y) in [0, 1]^2
// (grid = 2 * point - 1, then grid_sampler_unnormalize).
template <typename T>
struct GridCorners {
  int64_t x0, y0;
  T w00, w01, w10, w11;  // w<dy><dx>

  C10_HOST_DEVICE GridCorners(T px, T py, int64_t height, int64_t width, bool align_corners) {
    const T ix = unnormalize(2 * px - 1, width, align_corners);
    const T iy = unnormalize(2 * py - 1, height, align_corners);
    const T fx = m_floor(ix);
    const T fy = m_floor(iy);
    x0 = static_cast<int64_t>(fx);
    y0 = static_cast<int64_t>(fy);
    w00 = (fx + 1 - ix) * (fy + 1 - iy);
    w01 = (ix - fx) * (fy + 1 - iy);
    w10 = (fx + 1 - ix) * (iy - fy);
    w11 = (ix - fx) * (iy - fy);
  }

  // Calls f(y, x, weight) for the corners inside the image: zero padding drops the others.
  template <typename F>
  C10_HOST_DEVICE void for_each_corner(int64_t height, int64_t width, F&& f) const {
    if (in_bounds(y0, x0, height, width)) f(y0, x0, w00);
    if (in_bounds(y0, x0 + 1, height, width)) f(y0, x0 + 1, w01);
    if (in_bounds(y0 + 1, x0, height, width)) f(y0 + 1, x0, w10);
    if (in_bounds(y0 + 1, x0 + 1, height, width)) f(y0 + 1, x0 + 1, w11);
  }

  // Bilinear sample of one (height, width) plane.
  template <typename scalar_t>
  C10_HOST_DEVICE T sample(const scalar_t* plane, int64_t sy, int64_t sx, int64_t height,
                           int64_t width) const {
    T value = 0;
    for_each_corner(height, width, [&](int64_t y, int64_t x, T weight) {
      value += weight * static_cast<T>(plane[y * sy + x * sx]);
    });
    return value;
  }

  static C10_HOST_DEVICE T unnormalize(T coord, int64_t size, bool align_corners) {
    return align_corners ? (coord + 1) / 2 * (size - 1) : ((coord + 1) * size - 1) / 2;
  }
};

}  // namespace ops
}  // namespace mmseg_maskformer
