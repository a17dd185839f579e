#include <torch/library.h>

#include <limits>

#include "../ops.h"
#include "cuda_utils.cuh"

namespace mmseg_maskformer {
namespace ops {
namespace {

// Pixels reduced by one block. Per-(mask, block) partial sums are added by ATen afterwards,
// which keeps the reduction deterministic (no atomics).
constexpr int64_t kPixelsPerBlock = kThreads * 16;

// Each thread sums its 16 pixels in acc_t; the block tree and the per-mask partials are double,
// as on the CPU (float lanes over at most 1024 pixels, then double), so that both devices agree
// on masks of millions of pixels as well as on small ones.
template <typename scalar_t, typename acc_t, typename target_t, bool kResize>
__global__ void loss_forward_kernel(MaskView<const scalar_t> logits,
                                    MaskView<const target_t> targets, ValidView<acc_t> valid,
                                    acc_t scale_y, acc_t scale_x, FocalParams<acc_t> fp,
                                    int64_t blocks_per_mask, double* partials) {
  const int64_t n = blockIdx.x / blocks_per_mask;
  const int64_t begin = (blockIdx.x % blocks_per_mask) * kPixelsPerBlock;
  const int64_t num_pixels = targets.height * targets.width;
  const int64_t end = begin + kPixelsPerBlock < num_pixels ? begin + kPixelsPerBlock : num_pixels;
  acc_t run[kLossSums] = {0, 0, 0, 0, 0};
  for (int64_t i = begin + threadIdx.x; i < end; i += kThreads) {
    const int64_t y = i / targets.width, x = i % targets.width;
    acc_t logit;
    if constexpr (kResize) {
      logit =
          bilinear_at(logits.mask(n), logits.sy, logits.sx, linear_tap(y, scale_y, logits.height),
                      linear_tap(x, scale_x, logits.width));
    } else {
      logit = static_cast<acc_t>(logits.at(n, y, x));
    }
    const acc_t t = static_cast<acc_t>(targets.at(n, y, x));
    if (valid.defined()) {
      add_weighted_loss_pixel(run, logit, t, valid.at(n, y, x), fp);
    } else {
      add_loss_pixel(run, logit, t, fp);
    }
  }
  double sums[kLossSums];
#pragma unroll
  for (int k = 0; k < kLossSums; ++k) sums[k] = run[k];
  block_sum(sums);
  if (threadIdx.x == 0) {
    for (int k = 0; k < kLossSums; ++k) {
      partials[kLossSums * static_cast<int64_t>(blockIdx.x) + k] = sums[k];
    }
  }
}

template <typename scalar_t, typename acc_t, typename target_t>
__global__ void loss_backward_kernel(MaskView<const scalar_t> logits,
                                     MaskView<const target_t> targets, ValidView<acc_t> valid,
                                     FocalParams<acc_t> fp, const acc_t* coefficients,
                                     scalar_t* grad, int64_t total) {
  const int64_t num_pixels = targets.height * targets.width;
  MMSEG_CUDA_KERNEL_LOOP(i, total) {
    const int64_t n = i / num_pixels, y = i % num_pixels / targets.width, x = i % targets.width;
    acc_t g = focal_dice_grad(static_cast<acc_t>(logits.at(n, y, x)),
                              static_cast<acc_t>(targets.at(n, y, x)), fp, coefficients + 3 * n);
    if (valid.defined()) g = valid.at(n, y, x) * g;
    grad[i] = static_cast<scalar_t>(g);
  }
}

// The two passes of the transposed bilinear stencil (kernel_math.h): every target pixel's
// gradient is computed once, without atomics, and the result is deterministic.
template <typename scalar_t, typename acc_t, typename target_t>
__global__ void loss_backward_resize_partials_kernel(
    MaskView<const scalar_t> logits, MaskView<const target_t> targets, ValidView<acc_t> valid,
    acc_t scale_y, acc_t scale_x, FocalParams<acc_t> fp, const acc_t* coefficients,
    acc_t* partials, int64_t total) {
  const int64_t h = logits.height, w = logits.width;
  MMSEG_CUDA_KERNEL_LOOP(idx, total) {
    const int64_t n = idx / (h * w);
    resize_backward_partials(logits, targets, valid, scale_y, scale_x, fp, coefficients + 3 * n, n,
                             idx % (h * w) / w, idx % w, partials + 4 * idx);
  }
}

template <typename scalar_t, typename acc_t>
__global__ void loss_backward_resize_gather_kernel(const acc_t* partials, int64_t h, int64_t w,
                                                   scalar_t* grad, int64_t total) {
  MMSEG_CUDA_KERNEL_LOOP(idx, total) {
    grad[idx] = static_cast<scalar_t>(
        resize_backward_gather(partials, h, w, idx / (h * w), idx % (h * w) / w, idx % w));
  }
}

std::tuple<at::Tensor, at::Tensor, at::Tensor> sigmoid_focal_dice_loss_cuda(
    const at::Tensor& mask_logits, const at::Tensor& targets, double alpha, double gamma,
    double eps, const std::optional<at::Tensor>& valid) {
  const MaskArgs args = mask_args(mask_logits, targets, valid, "sigmoid_focal_dice_loss", true);
  const c10::cuda::CUDAGuard device_guard(mask_logits.device());
  const int64_t num_masks = args.logits.size(0);
  const int64_t num_pixels = args.targets.size(1) * args.targets.size(2);
  const int64_t blocks_per_mask = (num_pixels + kPixelsPerBlock - 1) / kPixelsPerBlock;
  TORCH_CHECK(num_masks * blocks_per_mask <= std::numeric_limits<int32_t>::max(),
              "sigmoid_focal_dice_loss: too many masks times pixels for one launch");
  at::Tensor partials = at::empty({num_masks, blocks_per_mask, kLossSums},
                                  mask_logits.options().dtype(at::kDouble));
  if (num_masks > 0) {
    dispatch_mask_op(
        args, alpha, gamma, [&](auto scalar, auto target, auto resize, const auto& fp) {
          using scalar_t = typename decltype(scalar)::type;
          using target_t = typename decltype(target)::type;
          using acc_t = typename std::decay_t<decltype(fp)>::value_type;
          const auto logits = mask_view<const scalar_t>(args.logits);
          const auto gt = mask_view<const target_t>(args.targets);
          loss_forward_kernel<scalar_t, acc_t, target_t, decltype(resize)::value>
              <<<num_masks * blocks_per_mask, kThreads, 0, at::cuda::getCurrentCUDAStream()>>>(
                  logits, gt, valid_view<acc_t>(args.valid),
                  linear_scale<acc_t>(logits.height, gt.height),
                  linear_scale<acc_t>(logits.width, gt.width), fp, blocks_per_mask,
                  partials.mutable_data_ptr<double>());
          C10_CUDA_KERNEL_LAUNCH_CHECK();
        });
  }
  return finish_focal_dice(partials, num_pixels, eps, args.acc, args.valid.defined());
}

at::Tensor sigmoid_focal_dice_loss_backward_cuda(const at::Tensor& grad_focal,
                                                 const at::Tensor& grad_dice,
                                                 const at::Tensor& mask_logits,
                                                 const at::Tensor& targets, const at::Tensor& sums,
                                                 double alpha, double gamma, double eps,
                                                 const std::optional<at::Tensor>& valid) {
  const MaskArgs args =
      mask_args(mask_logits, targets, valid, "sigmoid_focal_dice_loss_backward", true);
  const c10::cuda::CUDAGuard device_guard(mask_logits.device());
  const at::Tensor coefficients =
      focal_dice_grad_coefficients(grad_focal, grad_dice, sums, args, eps, args.valid.defined());
  at::Tensor grad = at::empty(args.logits.sizes(), mask_logits.options());
  const int64_t total = grad.numel();
  if (total > 0) {
    dispatch_mask_op(
        args, alpha, gamma, [&](auto scalar, auto target, auto resize, const auto& fp) {
          using scalar_t = typename decltype(scalar)::type;
          using target_t = typename decltype(target)::type;
          using acc_t = typename std::decay_t<decltype(fp)>::value_type;
          const auto logits = mask_view<const scalar_t>(args.logits);
          const auto gt = mask_view<const target_t>(args.targets);
          const auto v = valid_view<acc_t>(args.valid);
          const acc_t* coef = coefficients.const_data_ptr<acc_t>();
          const auto stream = at::cuda::getCurrentCUDAStream();
          if constexpr (decltype(resize)::value) {
            at::Tensor partials =
                at::empty({total, 4}, mask_logits.options().dtype(args.acc));
            loss_backward_resize_partials_kernel<scalar_t, acc_t, target_t>
                <<<grid_size(total), kThreads, 0, stream>>>(
                    logits, gt, v, linear_scale<acc_t>(logits.height, gt.height),
                    linear_scale<acc_t>(logits.width, gt.width), fp, coef,
                    partials.mutable_data_ptr<acc_t>(), total);
            C10_CUDA_KERNEL_LAUNCH_CHECK();
            loss_backward_resize_gather_kernel<scalar_t, acc_t>
                <<<grid_size(total), kThreads, 0, stream>>>(
                    partials.const_data_ptr<acc_t>(), logits.height, logits.width,
                    grad.mutable_data_ptr<scalar_t>(), total);
          } else {
            loss_backward_kernel<scalar_t, acc_t, target_t>
                <<<grid_size(total), kThreads, 0, stream>>>(
                    logits, gt, v, fp, coef, grad.mutable_data_ptr<scalar_t>(), total);
          }
          C10_CUDA_KERNEL_LAUNCH_CHECK();
        });
  }
  return grad.view(mask_logits.sizes());
}

}  // namespace

TORCH_LIBRARY_IMPL(mmseg_maskformer, CUDA, m) {
  m.impl("sigmoid_focal_dice_loss", TORCH_FN(sigmoid_focal_dice_loss_cuda));
  m.impl("sigmoid_focal_dice_loss_backward", TORCH_FN(sigmoid_focal_dice_loss_backward_cuda));
}

}  // namespace ops
}  // namespace mmseg_maskformer
