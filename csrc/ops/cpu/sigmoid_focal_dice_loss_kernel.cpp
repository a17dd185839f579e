#include <ATen/Parallel.h>
#include <torch/library.h>

#include <type_traits>
#include <vector>

#include "../ops.h"

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

// Parallel over masks: each mask's sums are accumulated by one thread in a fixed order, so the
// result does not depend on the thread count. Sums are double: a mask can hold millions of pixels.
template <typename scalar_t, typename target_t, bool kResize, typename acc_t>
void loss_forward(const MaskArgs& args, const FocalParams<acc_t>& fp, at::Tensor& partials) {
  const auto logits = mask_view<const scalar_t>(args.logits);
  const auto targets = mask_view<const target_t>(args.targets);
  const int64_t height = targets.height, width = targets.width;
  std::vector<LinearTap<acc_t>> rows, cols;
  if constexpr (kResize) {
    rows = linear_taps<acc_t>(logits.height, height);
    cols = linear_taps<acc_t>(logits.width, width);
  }
  double* out = partials.mutable_data_ptr<double>();
  at::parallel_for(0, args.logits.size(0), 1, [&](int64_t begin, int64_t end) {
    for (int64_t n = begin; n < end; ++n) {
      double focal = 0, sum_p = 0, sum_t = 0, sum_pt = 0;
      for (int64_t y = 0; y < height; ++y) {
        for (int64_t x = 0; x < width; ++x) {
          acc_t logit;
          if constexpr (kResize) {
            logit = bilinear_at(logits.mask(n), logits.sy, logits.sx, rows[y], cols[x]);
          } else {
            logit = static_cast<acc_t>(logits.at(n, y, x));
          }
          const acc_t t = static_cast<acc_t>(targets.at(n, y, x));
          const SigmoidTerms<acc_t> s(logit);
          focal += FocalTerm<acc_t>(s, t, fp).value;
          sum_p += s.p;
          sum_t += t;
          sum_pt += s.p * t;
        }
      }
      double* o = out + 4 * n;
      o[0] = focal;
      o[1] = sum_p;
      o[2] = sum_t;
      o[3] = sum_pt;
    }
  });
}

// Parallel over masks so that each thread owns its masks' gradient rows: the transposed
// bilinear stencil scatters without races. A full-resolution row is first reduced to a
// low-resolution row buffer, then added to its two source rows.
template <typename scalar_t, typename target_t, bool kResize, typename acc_t>
at::Tensor loss_backward(const MaskArgs& args, const FocalParams<acc_t>& fp,
                         const at::Tensor& coefficients) {
  const auto logits = mask_view<const scalar_t>(args.logits);
  const auto targets = mask_view<const target_t>(args.targets);
  const int64_t num_masks = args.logits.size(0);
  const int64_t h = logits.height, w = logits.width;
  const int64_t height = targets.height, width = targets.width;
  const acc_t* coef = coefficients.const_data_ptr<acc_t>();
  // Low-resolution accumulator in acc_t when resizing; otherwise gradients are written once.
  at::Tensor grad = kResize ? at::zeros({num_masks, h, w}, args.logits.options().dtype(args.acc))
                            : at::empty({num_masks, h, w}, args.logits.options());
  auto* grad_data =
      static_cast<std::conditional_t<kResize, acc_t, scalar_t>*>(grad.mutable_data_ptr());
  std::vector<LinearTap<acc_t>> rows, cols;
  if constexpr (kResize) {
    rows = linear_taps<acc_t>(h, height);
    cols = linear_taps<acc_t>(w, width);
  }
  at::parallel_for(0, num_masks, 1, [&](int64_t begin, int64_t end) {
    std::vector<acc_t> row_grad(kResize ? w : 0);
    for (int64_t n = begin; n < end; ++n) {
      const acc_t* c = coef + 3 * n;
      for (int64_t y = 0; y < height; ++y) {
        if constexpr (kResize) {
          std::fill(row_grad.begin(), row_grad.end(), acc_t(0));
          for (int64_t x = 0; x < width; ++x) {
            const LinearTap<acc_t>& tx = cols[x];
            const acc_t logit = bilinear_at(logits.mask(n), logits.sy, logits.sx, rows[y], tx);
            const acc_t g = focal_dice_grad(logit, static_cast<acc_t>(targets.at(n, y, x)), fp, c);
            row_grad[tx.i0] += tx.l0 * g;
            row_grad[tx.i1] += tx.l1 * g;
          }
          acc_t* out = grad_data + n * h * w;
          const LinearTap<acc_t>& ty = rows[y];
          for (int64_t j = 0; j < w; ++j) {
            out[ty.i0 * w + j] += ty.l0 * row_grad[j];
            out[ty.i1 * w + j] += ty.l1 * row_grad[j];
          }
        } else {
          scalar_t* out = grad_data + (n * h + y) * w;
          for (int64_t x = 0; x < width; ++x) {
            out[x] = static_cast<scalar_t>(focal_dice_grad(static_cast<acc_t>(logits.at(n, y, x)),
                                                           static_cast<acc_t>(targets.at(n, y, x)),
                                                           fp, c));
          }
        }
      }
    }
  });
  return grad.to(args.logits.scalar_type());
}

std::tuple<at::Tensor, at::Tensor, at::Tensor> sigmoid_focal_dice_loss_cpu(
    const at::Tensor& mask_logits, const at::Tensor& targets, double alpha, double gamma,
    double eps) {
  const MaskArgs args = mask_args(mask_logits, targets, "sigmoid_focal_dice_loss", true);
  at::Tensor partials =
      at::empty({args.logits.size(0), 1, 4}, mask_logits.options().dtype(at::kDouble));
  dispatch_mask_op(args, alpha, gamma, [&](auto scalar, auto target, auto resize, const auto& fp) {
    loss_forward<typename decltype(scalar)::type, typename decltype(target)::type,
                 decltype(resize)::value>(args, fp, partials);
  });
  return finish_focal_dice(partials, args.targets.size(1) * args.targets.size(2), eps, args.acc);
}

at::Tensor sigmoid_focal_dice_loss_backward_cpu(const at::Tensor& grad_focal,
                                                const at::Tensor& grad_dice,
                                                const at::Tensor& mask_logits,
                                                const at::Tensor& targets, const at::Tensor& sums,
                                                double alpha, double gamma, double eps) {
  const MaskArgs args = mask_args(mask_logits, targets, "sigmoid_focal_dice_loss_backward", true);
  const int64_t num_pixels = args.targets.size(1) * args.targets.size(2);
  const at::Tensor coefficients =
      focal_dice_grad_coefficients(grad_focal, grad_dice, sums, num_pixels, eps, args.acc);
  at::Tensor grad;
  dispatch_mask_op(args, alpha, gamma, [&](auto scalar, auto target, auto resize, const auto& fp) {
    grad = loss_backward<typename decltype(scalar)::type, typename decltype(target)::type,
                         decltype(resize)::value>(args, fp, coefficients);
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
