#include <ATen/Parallel.h>
#include <torch/library.h>

#include <algorithm>
#include <optional>
#include <type_traits>
#include <vector>

#include "../ops.h"
#include "vectorized.h"

namespace mmseg_maskformer {
namespace ops {
namespace {

template <typename T>
std::vector<LinearTap<T>> linear_taps(int64_t in_size, int64_t out_size) {
  const T scale = linear_scale<T>(in_size, out_size);
  std::vector<LinearTap<T>> taps(out_size);
  for (int64_t dst = 0; dst < out_size; ++dst) taps[dst] = linear_tap(dst, scale, in_size);
  return taps;
}

// The portable kernels, for CPUs without AVX2 (vectorized_cpu()), one element at a time.

// Parallel over masks: each mask's sums are accumulated by one thread in a fixed order, so the
// result does not depend on the thread count. Sums are double: a mask can hold millions of pixels.
// Returns the (N, 1, kLossSums) partials of finish_focal_dice.
template <typename scalar_t, typename target_t, bool kResize, typename acc_t>
at::Tensor loss_forward(const MaskArgs& args, const FocalParams<acc_t>& fp) {
  const auto logits = mask_view<const scalar_t>(args.logits);
  const auto targets = mask_view<const target_t>(args.targets);
  const auto valid = valid_view<acc_t>(args.valid);
  const int64_t height = targets.height, width = targets.width;
  std::vector<LinearTap<acc_t>> rows, cols;
  if constexpr (kResize) {
    rows = linear_taps<acc_t>(logits.height, height);
    cols = linear_taps<acc_t>(logits.width, width);
  }
  at::Tensor partials =
      at::empty({args.logits.size(0), 1, kLossSums}, args.logits.options().dtype(at::kDouble));
  double* out = partials.mutable_data_ptr<double>();
  at::parallel_for(0, args.logits.size(0), 1, [&](int64_t begin, int64_t end) {
    for (int64_t n = begin; n < end; ++n) {
      double* sums = out + kLossSums * n;
      std::fill(sums, sums + kLossSums, 0.0);
      for (int64_t y = 0; y < height; ++y) {
        for (int64_t x = 0; x < width; ++x) {
          acc_t logit;
          if constexpr (kResize) {
            logit = bilinear_at(logits.mask(n), logits.sy, logits.sx, rows[y], cols[x]);
          } else {
            logit = static_cast<acc_t>(logits.at(n, y, x));
          }
          const acc_t t = static_cast<acc_t>(targets.at(n, y, x));
          if (valid.defined()) {
            add_weighted_loss_pixel(sums, logit, t, valid.at(n, y, x), fp);
          } else {
            add_loss_pixel(sums, logit, t, fp);
          }
        }
      }
    }
  });
  return partials;
}

// Without a resize each logit's gradient is written once. With one, the transposed bilinear
// stencil runs in the two passes of kernel_math.h that the CUDA kernels use too (this path
// tests them on any CPU): items are independent, so the result does not depend on the threads.
template <typename scalar_t, typename target_t, bool kResize, typename acc_t>
at::Tensor loss_backward(const MaskArgs& args, const FocalParams<acc_t>& fp,
                         const at::Tensor& coefficients) {
  const auto logits = mask_view<const scalar_t>(args.logits);
  const auto targets = mask_view<const target_t>(args.targets);
  const auto valid = valid_view<acc_t>(args.valid);
  const int64_t num_masks = args.logits.size(0);
  const int64_t h = logits.height, w = logits.width;
  const int64_t height = targets.height, width = targets.width;
  const acc_t* coef = coefficients.const_data_ptr<acc_t>();
  at::Tensor grad = at::empty({num_masks, h, w}, args.logits.options());
  scalar_t* grad_data = grad.mutable_data_ptr<scalar_t>();
  if constexpr (kResize) {
    const acc_t scale_y = linear_scale<acc_t>(h, height), scale_x = linear_scale<acc_t>(w, width);
    at::Tensor partials = at::empty({num_masks, h, w, 4}, args.logits.options().dtype(args.acc));
    acc_t* partial_data = partials.mutable_data_ptr<acc_t>();
    at::parallel_for(0, num_masks * h * w, 1, [&](int64_t begin, int64_t end) {
      for (int64_t idx = begin; idx < end; ++idx) {
        const int64_t n = idx / (h * w);
        resize_backward_partials(logits, targets, valid, scale_y, scale_x, fp, coef + 3 * n, n,
                                 idx % (h * w) / w, idx % w, partial_data + 4 * idx);
      }
    });
    at::parallel_for(0, num_masks * h * w, 1024, [&](int64_t begin, int64_t end) {
      for (int64_t idx = begin; idx < end; ++idx) {
        grad_data[idx] = static_cast<scalar_t>(
            resize_backward_gather(partial_data, h, w, idx / (h * w), idx % (h * w) / w, idx % w));
      }
    });
  } else {
    at::parallel_for(0, num_masks, 1, [&](int64_t begin, int64_t end) {
      for (int64_t n = begin; n < end; ++n) {
        for (int64_t y = 0; y < height; ++y) {
          for (int64_t x = 0; x < width; ++x) {
            acc_t g = focal_dice_grad(static_cast<acc_t>(logits.at(n, y, x)),
                                      static_cast<acc_t>(targets.at(n, y, x)), fp, coef + 3 * n);
            if (valid.defined()) g = valid.at(n, y, x) * g;
            grad_data[(n * h + y) * w + x] = static_cast<scalar_t>(g);
          }
        }
      }
    });
  }
  return grad;
}

#if MMSEG_MASKFORMER_VEC
MMSEG_VEC_BEGIN

// The vectorised kernels (see vectorized.h) work a target row at a time, in the compute type T:
// targets are converted a row at a time, and logits are brought to the target resolution by
// LogitRows.

// Target pixels per task: enough to amortise a task, few enough that a handful of large masks
// still spreads over the threads.
constexpr int64_t kBlockPixels = int64_t(1) << 16;
// Sums run in T lanes over at most this many pixels before they are added in double.
constexpr int64_t kSumChunk = 1024;

// Tasks are (mask, block of `size` consecutive logit rows). In the forward, block b sums the
// target rows whose stencil starts in its logit rows; in the backward, it owns the gradient of
// its logit rows. Blocks depend on the shapes only, so every sum is formed in the same order
// whatever the number of threads.
struct RowBlocks {
  int64_t size, count;

  RowBlocks(int64_t h, int64_t height, int64_t width)
      : size(std::max<int64_t>(1, kBlockPixels * h / (height * width))),
        count((h + size - 1) / size) {}
};

// The horizontal pass of an upsampling in float, 8 target columns at a time. The taps of 8
// consecutive columns read at most 8 consecutive logits [base, base + 8) when the logits are
// upsampled by more than 8 / 7: one load and two in-register permutes (vpermps) then replace the
// 16 scalar loads of the taps, with the scalar loop's weights and products.
class ColumnPermutes {
 public:
  // Empty (usable() false) when some 8 columns span more than 8 logits.
  explicit ColumnPermutes(const std::vector<LinearTap<float>>& cols) {
    const int64_t width = static_cast<int64_t>(cols.size());
    for (int64_t x0 = 0; x0 < width; x0 += 8) {
      const int64_t base = cols[x0].i0;
      if (cols[std::min(x0 + 8, width) - 1].i1 - base >= 8) {
        base_.clear();
        return;
      }
      base_.push_back(base);
      for (int64_t x = x0; x < x0 + 8; ++x) {
        const LinearTap<float>& tap = cols[std::min(x, width - 1)];
        index0_.push_back(static_cast<int32_t>(tap.i0 - base));
        index1_.push_back(static_cast<int32_t>(tap.i1 - base));
        weight0_.push_back(tap.l0);
        weight1_.push_back(tap.l1);
      }
    }
  }

  bool usable() const { return !base_.empty(); }

  // src: a logit row followed by at least 7 readable floats (their values are not used).
  void apply(const float* src, float* dst, int64_t width) const {
    using V = Vec<float>;
    for_each_vec<float>(width, [&](int64_t x, auto count) {
      const int64_t g = x / 8;
      const V logits = V::loadu(src + base_[g]);
      const V a = _mm256_permutevar8x32_ps(logits, load_index(index0_.data() + x));
      const V b = _mm256_permutevar8x32_ps(logits, load_index(index1_.data() + x));
      (V::loadu(weight0_.data() + x) * a + V::loadu(weight1_.data() + x) * b).store(dst + x, count);
    });
  }

 private:
  static __m256i load_index(const int32_t* p) {
    return _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p));
  }

  std::vector<int64_t> base_;
  std::vector<int32_t> index0_, index1_;  // per target column, padded to whole groups of 8
  std::vector<float> weight0_, weight1_;
};

// The bilinear stencil from (h, w) logits to (height, width) targets, or the identity.
template <typename T, bool kResize>
struct Stencil {
  int64_t h, height;
  T scale_y, scale_x;
  std::vector<LinearTap<T>> rows, cols;  // taps of each target row and column
  std::optional<ColumnPermutes> permutes;  // float upsampling only

  Stencil(int64_t h, int64_t w, int64_t height, int64_t width)
      : h(h),
        height(height),
        scale_y(linear_scale<T>(h, height)),
        scale_x(linear_scale<T>(w, width)) {
    if constexpr (kResize) {
      rows = linear_taps<T>(h, height);
      cols = linear_taps<T>(w, width);
      if constexpr (std::is_same_v<T, float>) {
        permutes.emplace(cols);
        if (!permutes->usable()) permutes.reset();
      }
    }
  }

  // First target row whose stencil starts at logit row i or later.
  int64_t first_row(int64_t i) const {
    if constexpr (kResize) {
      return first_dst_at(i, scale_y, h, height);
    } else {
      return std::min(std::max<int64_t>(i, 0), height);
    }
  }
};

// The logits of one mask at the target resolution, a target row at a time (one per thread).
// With a resize, the logit rows that a range of target rows reads are first resampled to the
// target width, the horizontal pass done once for all of them; a target row then blends the two
// rows its stencil reads, l0 * A[i0][x] + l1 * A[i1][x], in the order of ATen's upsampling.
template <typename T, typename scalar_t, bool kResize>
class LogitRows {
 public:
  LogitRows(const MaskView<const scalar_t>& logits, const Stencil<T, kResize>& stencil,
            int64_t width)
      : logits_(logits),
        stencil_(stencil),
        width_(width),
        source_(logits.width + 7),  // + the 7 floats past a row that ColumnPermutes loads
        row_(width) {}

  // Mask n, target rows [y_begin, y_end) to come.
  void start(int64_t n, int64_t y_begin, int64_t y_end) {
    n_ = n;
    if constexpr (kResize) {
      if (y_begin >= y_end) return;
      first_ = stencil_.rows[y_begin].i0;
      const int64_t last = stencil_.rows[y_end - 1].i1;
      resampled_.resize((last - first_ + 1) * width_);
      for (int64_t i = first_; i <= last; ++i) {
        const T* src = source_row(i);
        T* dst = resampled_.data() + (i - first_) * width_;
        if constexpr (std::is_same_v<T, float>) {
          if (stencil_.permutes) {
            // A row read in place is copied too, so that the floats past it are ours to load.
            if (src != source_.data()) std::copy(src, src + logits_.width, source_.data());
            stencil_.permutes->apply(source_.data(), dst, width_);
            continue;
          }
        }
        for (int64_t x = 0; x < width_; ++x) {
          const LinearTap<T>& tx = stencil_.cols[x];
          dst[x] = tx.l0 * src[tx.i0] + tx.l1 * src[tx.i1];
        }
      }
    }
  }

  const T* row(int64_t y) {
    if constexpr (kResize) {
      using V = Vec<T>;
      const LinearTap<T>& ty = stencil_.rows[y];
      const T* a0 = resampled_.data() + (ty.i0 - first_) * width_;
      const T* a1 = resampled_.data() + (ty.i1 - first_) * width_;
      for_each_vec<T>(width_, [&](int64_t x, auto count) {
        (V(ty.l0) * V::loadu(a0 + x, count) + V(ty.l1) * V::loadu(a1 + x, count))
            .store(row_.data() + x, count);
      });
      return row_.data();
    } else {
      return source_row(y);
    }
  }

 private:
  const T* source_row(int64_t i) {
    return row_as(logits_.mask(n_) + i * logits_.sy, logits_.sx, logits_.width, source_.data());
  }

  const MaskView<const scalar_t> logits_;
  const Stencil<T, kResize>& stencil_;
  const int64_t width_;
  int64_t n_ = 0, first_ = 0;
  std::vector<T> source_, resampled_, row_;
};

// The horizontal pass of the transposed stencil as a gather: logit column j sums the target
// columns from first[j] on with the weights weight[offset[j]], ..., weight[offset[j + 1] - 1].
// Each column is a short independent sum, where a scatter's adds would wait on one another.
template <typename T>
struct ColumnGather {
  std::vector<int64_t> first, offset;
  std::vector<T> weight;

  ColumnGather(const Stencil<T, true>& stencil, int64_t w) : first(w), offset(w + 1) {
    const int64_t width = static_cast<int64_t>(stencil.cols.size());
    for (int64_t j = 0; j < w; ++j) {
      // As in the CUDA backward: only target columns whose stencil starts at j - 1 or j read j.
      first[j] = first_dst_at(j - 1, stencil.scale_x, w, width);
      const int64_t end = first_dst_at(j + 1, stencil.scale_x, w, width);
      offset[j] = static_cast<int64_t>(weight.size());
      for (int64_t x = first[j]; x < end; ++x) weight.push_back(tap_weight(stencil.cols[x], j));
    }
    offset[w] = static_cast<int64_t>(weight.size());
  }

  template <typename scalar_t>
  void apply(const T* row, scalar_t* out) const {
    for (size_t j = 0; j < first.size(); ++j) {
      const T* src = row + first[j] - offset[j];
      T sum = 0;
      for (int64_t k = offset[j]; k < offset[j + 1]; ++k) sum += weight[k] * src[k];
      out[j] = static_cast<scalar_t>(sum);
    }
  }
};

// Row y of mask n of a valid map as a contiguous T row, or nullptr without one.
template <typename T>
const T* valid_row(const ValidView<T>& valid, int64_t n, int64_t y, int64_t width, T* buffer) {
  if (!valid.defined()) return nullptr;
  const int64_t offset = n * valid.sn + y * valid.sy;
  return valid.flags != nullptr ? row_as(valid.flags + offset, valid.sx, width, buffer)
                                : row_as(valid.weights + offset, valid.sx, width, buffer);
}

// Returns the (N, blocks, kLossSums) partials of finish_focal_dice.
template <typename scalar_t, typename target_t, bool kResize, typename T>
at::Tensor loss_forward_vec(const MaskArgs& args, const FocalParams<T>& fp) {
  using V = Vec<T>;
  const auto logits = mask_view<const scalar_t>(args.logits);
  const auto targets = mask_view<const target_t>(args.targets);
  const auto valid = valid_view<T>(args.valid);
  const int64_t height = targets.height, width = targets.width;
  const Stencil<T, kResize> stencil(logits.height, logits.width, height, width);
  const RowBlocks blocks(logits.height, height, width);
  at::Tensor partials = at::empty({args.logits.size(0), blocks.count, kLossSums},
                                  args.logits.options().dtype(at::kDouble));
  double* out = partials.mutable_data_ptr<double>();
  at::parallel_for(0, args.logits.size(0) * blocks.count, 1, [&](int64_t begin, int64_t end) {
    LogitRows<T, scalar_t, kResize> logit_rows(logits, stencil, width);
    std::vector<T> target_row(width), valid_buffer(width);
    for (int64_t task = begin; task < end; ++task) {
      const int64_t n = task / blocks.count, b = task % blocks.count;
      const int64_t y_begin = stencil.first_row(b * blocks.size);
      const int64_t y_end = stencil.first_row((b + 1) * blocks.size);
      logit_rows.start(n, y_begin, y_end);
      double sums[kLossSums] = {0, 0, 0, 0, 0};
      for (int64_t y = y_begin; y < y_end; ++y) {
        const T* x_row = logit_rows.row(y);
        const T* t_row =
            row_as(targets.mask(n) + y * targets.sy, targets.sx, width, target_row.data());
        const T* v_row = valid_row(valid, n, y, width, valid_buffer.data());
        for (int64_t x0 = 0; x0 < width; x0 += kSumChunk) {
          V lanes[kLossSums] = {V(0), V(0), V(0), V(0), V(0)};
          for_each_vec<T>(std::min(kSumChunk, width - x0), [&](int64_t i, auto count) {
            const V t = V::loadu(t_row + x0 + i, count);
            const V x = V::loadu(x_row + x0 + i, count);
            if (v_row != nullptr) {
              // Lanes past the row end have weight 0.
              add_weighted_loss_pixel(lanes, x, t, V::loadu(v_row + x0 + i, count), fp);
              return;
            }
            const SigmoidTerms<V> s(x);
            // Lanes past the row end hold logit 0 and target 0: they add nothing to the sums
            // of t and p * t, but would to those of focal and p.
            lanes[kFocal] += V::set(V(0), FocalTerm<V>(s, t, fp).value, count);
            lanes[kSumP] += V::set(V(0), s.p, count);
            lanes[kSumT] += t;
            lanes[kSumPT] += s.p * t;
          });
          for (int k = 0; k < kLossSums; ++k) sums[k] += sum_lanes(lanes[k]);
        }
      }
      std::copy(sums, sums + kLossSums, out + kLossSums * task);
    }
  });
  return partials;
}

// With a resize, the gradient goes back through the transposed stencil in two passes: target
// rows are added, with their vertical weights, into a full-width row per owned logit row; the
// gather of ColumnGather then reduces those to the logit width. The few target rows a block
// shares with the previous one (they read both blocks' logit rows) are computed by both, each
// keeping the taps into its own rows, rather than exchanging partial sums between threads.
template <typename scalar_t, typename target_t, bool kResize, typename T>
at::Tensor loss_backward_vec(const MaskArgs& args, const FocalParams<T>& fp,
                             const at::Tensor& coefficients) {
  using V = Vec<T>;
  const auto logits = mask_view<const scalar_t>(args.logits);
  const auto targets = mask_view<const target_t>(args.targets);
  const int64_t h = logits.height, w = logits.width;
  const int64_t height = targets.height, width = targets.width;
  const T* coef = coefficients.const_data_ptr<T>();
  const auto valid = valid_view<T>(args.valid);
  const Stencil<T, kResize> stencil(h, w, height, width);
  const RowBlocks blocks(h, height, width);
  std::optional<ColumnGather<T>> columns;
  if constexpr (kResize) columns.emplace(stencil, w);
  at::Tensor grad = at::empty({args.logits.size(0), h, w}, args.logits.options());
  scalar_t* grad_data = grad.mutable_data_ptr<scalar_t>();
  at::parallel_for(0, args.logits.size(0) * blocks.count, 1, [&](int64_t begin, int64_t end) {
    LogitRows<T, scalar_t, kResize> logit_rows(logits, stencil, width);
    std::vector<T> target_row(width), grad_row(width), valid_buffer(width);
    std::vector<T> accumulated(kResize ? blocks.size * width : 0);
    for (int64_t task = begin; task < end; ++task) {
      const int64_t n = task / blocks.count, b = task % blocks.count;
      const int64_t r_begin = b * blocks.size, r_end = std::min(r_begin + blocks.size, h);
      const int64_t y_begin = kResize ? stencil.first_row(r_begin - 1) : r_begin;
      const int64_t y_end = stencil.first_row(r_end);
      const T* c = coef + 3 * n;
      logit_rows.start(n, y_begin, y_end);
      std::fill(accumulated.begin(), accumulated.end(), T(0));
      for (int64_t y = y_begin; y < y_end; ++y) {
        const T* x_row = logit_rows.row(y);
        const T* t_row =
            row_as(targets.mask(n) + y * targets.sy, targets.sx, width, target_row.data());
        const T* v_row = valid_row(valid, n, y, width, valid_buffer.data());
        auto gradient = [&](int64_t x, auto count) {
          const V g =
              focal_dice_grad(V::loadu(x_row + x, count), V::loadu(t_row + x, count), fp, c);
          return v_row != nullptr ? V::loadu(v_row + x, count) * g : g;
        };
        if constexpr (kResize) {
          // Taps into the logit rows of other blocks are theirs to add.
          const LinearTap<T>& ty = stencil.rows[y];
          auto owned = [&](int64_t i) {
            return i >= r_begin && i < r_end ? accumulated.data() + (i - r_begin) * width
                                             : nullptr;
          };
          T* v0 = owned(ty.i0);
          T* v1 = owned(ty.i1);
          for_each_vec<T>(width, [&](int64_t x, auto count) {
            const V g = gradient(x, count);
            if (v0) (V::loadu(v0 + x, count) + V(ty.l0) * g).store(v0 + x, count);
            if (v1) (V::loadu(v1 + x, count) + V(ty.l1) * g).store(v1 + x, count);
          });
        } else {
          for_each_vec<T>(width, [&](int64_t x, auto count) {
            gradient(x, count).store(grad_row.data() + x, count);
          });
          std::transform(grad_row.begin(), grad_row.end(), grad_data + (n * h + y) * w,
                         [](T g) { return static_cast<scalar_t>(g); });
        }
      }
      if constexpr (kResize) {
        for (int64_t i = r_begin; i < r_end; ++i) {
          const T* row = accumulated.data() + (i - r_begin) * width;
          columns->apply(row, grad_data + (n * h + i) * w);
        }
      }
    }
  });
  return grad;
}

MMSEG_VEC_END
#endif

std::tuple<at::Tensor, at::Tensor, at::Tensor> sigmoid_focal_dice_loss_cpu(
    const at::Tensor& mask_logits, const at::Tensor& targets, double alpha, double gamma,
    double eps, const std::optional<at::Tensor>& valid) {
  const MaskArgs args = mask_args(mask_logits, targets, valid, "sigmoid_focal_dice_loss", true);
  at::Tensor partials;
  dispatch_mask_op(args, alpha, gamma, [&](auto scalar, auto target, auto resize, const auto& fp) {
    using scalar_t = typename decltype(scalar)::type;
    using target_t = typename decltype(target)::type;
    constexpr bool kResize = decltype(resize)::value;
#if MMSEG_MASKFORMER_VEC
    if (vectorized_cpu()) {
      partials = loss_forward_vec<scalar_t, target_t, kResize>(args, fp);
      return;
    }
#endif
    partials = loss_forward<scalar_t, target_t, kResize>(args, fp);
  });
  return finish_focal_dice(partials, args.targets.size(1) * args.targets.size(2), eps, args.acc,
                           args.valid.defined());
}

at::Tensor sigmoid_focal_dice_loss_backward_cpu(const at::Tensor& grad_focal,
                                                const at::Tensor& grad_dice,
                                                const at::Tensor& mask_logits,
                                                const at::Tensor& targets, const at::Tensor& sums,
                                                double alpha, double gamma, double eps,
                                                const std::optional<at::Tensor>& valid) {
  const MaskArgs args =
      mask_args(mask_logits, targets, valid, "sigmoid_focal_dice_loss_backward", true);
  const at::Tensor coefficients =
      focal_dice_grad_coefficients(grad_focal, grad_dice, sums, args, eps, args.valid.defined());
  at::Tensor grad;
  dispatch_mask_op(args, alpha, gamma, [&](auto scalar, auto target, auto resize, const auto& fp) {
    using scalar_t = typename decltype(scalar)::type;
    using target_t = typename decltype(target)::type;
    constexpr bool kResize = decltype(resize)::value;
#if MMSEG_MASKFORMER_VEC
    if (vectorized_cpu()) {
      grad = loss_backward_vec<scalar_t, target_t, kResize>(args, fp, coefficients);
      return;
    }
#endif
    grad = loss_backward<scalar_t, target_t, kResize>(args, fp, coefficients);
  });
  return grad.view(mask_logits.sizes());
}

}  // namespace

TORCH_LIBRARY_IMPL(mmseg_maskformer, CPU, m) {
  m.impl("sigmoid_focal_dice_loss", TORCH_FN(sigmoid_focal_dice_loss_cpu));
  m.impl("sigmoid_focal_dice_loss_backward", TORCH_FN(sigmoid_focal_dice_loss_backward_cpu));
}

}  // namespace ops
}  // namespace mmseg_maskformer
