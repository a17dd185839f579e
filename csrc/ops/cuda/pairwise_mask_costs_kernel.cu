#include <torch/library.h>

#include "../ops.h"
#include "cuda_utils.cuh"

namespace mmseg_maskformer {
namespace ops {
namespace {

template <typename scalar_t, typename acc_t>
__global__ void cost_terms_kernel(MaskView<const scalar_t> logits, FocalParams<acc_t> fp,
                                  acc_t* terms, int64_t block) {
  MMSEG_CUDA_KERNEL_LOOP(i, block) { write_cost_terms(logits, fp, i, block, terms); }
}

template <typename target_t, typename acc_t>
__global__ void nearest_targets_kernel(MaskView<const target_t> targets, int64_t h, int64_t w,
                                       acc_t* dense, int64_t total) {
  MMSEG_CUDA_KERNEL_LOOP(i, total) { dense[i] = nearest_target<acc_t>(targets, i, h, w); }
}

std::tuple<at::Tensor, at::Tensor> pairwise_mask_costs_cuda(
    const at::Tensor& mask_logits, const at::Tensor& targets, double alpha, double gamma,
    double eps, const std::optional<at::Tensor>& valid) {
  const MaskArgs args = mask_args(mask_logits, targets, valid, "pairwise_mask_costs", false);
  const c10::cuda::CUDAGuard device_guard(mask_logits.device());
  const int64_t num_queries = args.logits.size(0), num_targets = args.targets.size(0);
  const int64_t h = args.logits.size(1), w = args.logits.size(2);
  const int64_t num_points = h * w;
  const auto options = mask_logits.options().dtype(args.acc);
  at::Tensor terms = at::empty({3 * num_queries, num_points}, options);
  at::Tensor dense_targets = at::empty({num_targets, num_points}, options);
  // The valid map is resized like one more target.
  at::Tensor dense_valid = args.valid.defined() ? at::empty({num_points}, options) : at::Tensor();
  const auto stream = at::cuda::getCurrentCUDAStream();

  AT_DISPATCH_FLOATING_TYPES_AND2(
      at::kHalf, at::kBFloat16, args.logits.scalar_type(), "pairwise_mask_costs_cuda", [&] {
        using acc_t = at::opmath_type<scalar_t>;
        const int64_t block = num_queries * num_points;
        if (block > 0) {
          cost_terms_kernel<scalar_t, acc_t><<<grid_size(block), kThreads, 0, stream>>>(
              mask_view<const scalar_t>(args.logits),
              FocalParams<acc_t>{static_cast<acc_t>(alpha), static_cast<acc_t>(gamma)},
              terms.mutable_data_ptr<acc_t>(), block);
          C10_CUDA_KERNEL_LAUNCH_CHECK();
        }
        const int64_t total = num_targets * num_points;
        if (total > 0) {
          dispatch_target_type<acc_t>(args.targets, [&](auto target) {
            using target_t = typename decltype(target)::type;
            nearest_targets_kernel<target_t, acc_t><<<grid_size(total), kThreads, 0, stream>>>(
                mask_view<const target_t>(args.targets), h, w,
                dense_targets.mutable_data_ptr<acc_t>(), total);
            C10_CUDA_KERNEL_LAUNCH_CHECK();
          });
        }
        if (dense_valid.defined()) {
          dispatch_target_type<acc_t>(args.valid, [&](auto type) {
            using valid_t = typename decltype(type)::type;
            nearest_targets_kernel<valid_t, acc_t><<<grid_size(num_points), kThreads, 0, stream>>>(
                mask_view<const valid_t>(args.valid), h, w, dense_valid.mutable_data_ptr<acc_t>(),
                num_points);
            C10_CUDA_KERNEL_LAUNCH_CHECK();
          });
        }
      });
  return finish_pairwise_costs(terms, dense_targets, dense_valid, eps);
}

}  // namespace

TORCH_LIBRARY_IMPL(mmseg_maskformer, CUDA, m) {
  m.impl("pairwise_mask_costs", TORCH_FN(pairwise_mask_costs_cuda));
}

}  // namespace ops
}  // namespace mmseg_maskformer
