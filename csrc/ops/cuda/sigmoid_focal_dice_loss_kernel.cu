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

template <typename scalar_t, typename acc_t, typename target_t, bool kResize>
__global__ void loss_forward_kernel(MaskView<const scalar_t> logits,
                                    MaskView<const target_t> targets, acc_t scale_y, acc_t scale_x,
                                    FocalParams<acc_t> fp, int64_t blocks_per_mask,
                                    acc_t* partials) {
  const int64_t n = blockIdx.x / blocks_per_mask;
  const int64_t begin = (blockIdx.x % blocks_per_mask) * kPixelsPerBlock;
  const int64_t num_pixels = targets.height * targets.width;
  const int64_t end = begin + kPixelsPerBlock < num_pixels ? begin + kPixelsPerBlock : num_pixels;
  acc_t sums[4] = {0, 0, 0, 0};
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
    const SigmoidTerms<acc_t> s(logit);
    sums[0] += FocalTerm<acc_t>(s, t, fp).value;
    sums[1] += s.p;
    sums[2] += t;
    sums[3] += s.p * t;
  }
  block_sum(sums);
  if (threadIdx.x == 0) {
    for (int k = 0; k < 4; ++k) partials[4 * static_cast<int64_t>(blockIdx.x) + k] = sums[k];
  }
}

template <typename scalar_t, typename acc_t, typename target_t>
__global__ void loss_backward_kernel(MaskView<const scalar_t> logits,
                                     MaskView<const target_t> targets, FocalParams<acc_t> fp,
                                     const acc_t* coefficients, scalar_t* grad, int64_t total) {
  const int64_t num_pixels = targets.height * targets.width;
  MMSEG_CUDA_KERNEL_LOOP(i, total) {
    const int64_t n = i / num_pixels, y = i % num_pixels / targets.width, x = i % targets.width;
    grad[i] = static_cast<scalar_t>(focal_dice_grad(static_cast<acc_t>(logits.at(n, y, x)),
                                                    static_cast<acc_t>(targets.at(n, y, x)), fp,
                                                    coefficients + 3 * n));
  }
}

// Transposed bilinear stencil as a gather: one thread per low-resolution logit sums the
// gradients of the target pixels whose stencil reads it. Race-free and deterministic without
// atomics or a full-resolution buffer; the price is that each target pixel's gradient is
// recomputed by the (up to) 2x2 logits it reads, on an op that is bound by memory traffic.
template <typename scalar_t, typename acc_t, typename target_t>
__global__ void loss_backward_resize_kernel(MaskView<const scalar_t> logits,
                                            MaskView<const target_t> targets, acc_t scale_y,
                                            acc_t scale_x, FocalParams<acc_t> fp,
                                            const acc_t* coefficients, scalar_t* grad,
                                            int64_t total) {
  const int64_t h = logits.height, w = logits.width;
  const int64_t height = targets.height, width = targets.width;
  MMSEG_CUDA_KERNEL_LOOP(idx, total) {
    const int64_t n = idx / (h * w), i = idx % (h * w) / w, j = idx % w;
    const acc_t* c = coefficients + 3 * n;
    // Target rows whose stencil starts at source row i - 1 or i are the only ones reading i.
    const int64_t y_end = first_dst_at(i + 1, scale_y, h, height);
    const int64_t x_begin = first_dst_at(j - 1, scale_x, w, width);
    const int64_t x_end = first_dst_at(j + 1, scale_x, w, width);
    acc_t sum = 0;
    for (int64_t y = first_dst_at(i - 1, scale_y, h, height); y < y_end; ++y) {
      const LinearTap<acc_t> ty = linear_tap(y, scale_y, h);
      const acc_t wy = tap_weight(ty, i);
      if (wy == 0) continue;
      for (int64_t x = x_begin; x < x_end; ++x) {
        const LinearTap<acc_t> tx = linear_tap(x, scale_x, w);
        const acc_t wx = tap_weight(tx, j);
        if (wx == 0) continue;
        const acc_t logit = bilinear_at(logits.mask(n), logits.sy, logits.sx, ty, tx);
        sum += wy * wx * focal_dice_grad(logit, static_cast<acc_t>(targets.at(n, y, x)), fp, c);
      }
    }
    grad[idx] = static_cast<scalar_t>(sum);
  }
}

std::tuple<at::Tensor, at::Tensor, at::Tensor> sigmoid_focal_dice_loss_cuda(
    const at::Tensor& mask_logits, const at::Tensor& targets, double alpha, double gamma,
    double eps) {
  const MaskArgs args = mask_args(mask_logits, targets, "sigmoid_focal_dice_loss", true);
  const c10::cuda::CUDAGuard device_guard(mask_logits.device());
  const int64_t num_masks = args.logits.size(0);
  const int64_t num_pixels = args.targets.size(1) * args.targets.size(2);
  const int64_t blocks_per_mask = (num_pixels + kPixelsPerBlock - 1) / kPixelsPerBlock;
  TORCH_CHECK(num_masks * blocks_per_mask <= std::numeric_limits<int32_t>::max(),
              "sigmoid_focal_dice_loss: too many masks times pixels for one launch");
  at::Tensor partials =
      at::empty({num_masks, blocks_per_mask, 4}, mask_logits.options().dtype(args.acc));
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
                  logits, gt, linear_scale<acc_t>(logits.height, gt.height),
                  linear_scale<acc_t>(logits.width, gt.width), fp, blocks_per_mask,
                  partials.mutable_data_ptr<acc_t>());
          C10_CUDA_KERNEL_LAUNCH_CHECK();
        });
  }
  return finish_focal_dice(partials, num_pixels, eps, args.acc);
}

at::Tensor sigmoid_focal_dice_loss_backward_cuda(const at::Tensor& grad_focal,
                                                 const at::Tensor& grad_dice,
                                                 const at::Tensor& mask_logits,
                                                 const at::Tensor& targets, const at::Tensor& sums,
                                                 double alpha, double gamma, double eps) {
  const MaskArgs args = mask_args(mask_logits, targets, "sigmoid_focal_dice_loss_backward", true);
  const c10::cuda::CUDAGuard device_guard(mask_logits.device());
  const int64_t num_pixels = args.targets.size(1) * args.targets.size(2);
  const at::Tensor coefficients =
      focal_dice_grad_coefficients(grad_focal, grad_dice, sums, num_pixels, eps, args.acc);
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
          const auto stream = at::cuda::getCurrentCUDAStream();
          if constexpr (decltype(resize)::value) {
            loss_backward_resize_kernel<scalar_t, acc_t, target_t>
                <<<grid_size(total), kThreads, 0, stream>>>(
                    logits, gt, linear_scale<acc_t>(logits.height, gt.height),
                    linear_scale<acc_t>(logits.width, gt.width), fp,
                    coefficients.const_data_ptr<acc_t>(), grad.mutable_data_ptr<scalar_t>(), total);
          } else {
            loss_backward_kernel<scalar_t, acc_t, target_t>
                <<<grid_size(total), kThreads, 0, stream>>>(
                    logits, gt, fp, coefficients.const_data_ptr<acc_t>(),
                    grad.mutable_data_ptr<scalar_t>(), total);
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
