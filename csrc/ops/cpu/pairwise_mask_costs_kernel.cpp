#include <ATen/Parallel.h>
#include <torch/library.h>

#include "../ops.h"

namespace mmseg_maskformer {
namespace ops {
namespace {

// Elementwise work is exp/log-bound, so chunks much smaller than ATen's default grain pay off.
constexpr int64_t kGrain = 2048;

std::tuple<at::Tensor, at::Tensor> pairwise_mask_costs_cpu(const at::Tensor& mask_logits,
                                                           const at::Tensor& targets, double alpha,
                                                           double gamma, double eps) {
  const MaskArgs args = mask_args(mask_logits, targets, "pairwise_mask_costs", false);
  const int64_t num_queries = args.logits.size(0), num_targets = args.targets.size(0);
  const int64_t h = args.logits.size(1), w = args.logits.size(2);
  const int64_t num_points = h * w;
  const auto options = mask_logits.options().dtype(args.acc);
  at::Tensor terms = at::empty({3 * num_queries, num_points}, options);
  at::Tensor dense_targets = at::empty({num_targets, num_points}, options);

  AT_DISPATCH_FLOATING_TYPES_AND2(
      at::kHalf, at::kBFloat16, args.logits.scalar_type(), "pairwise_mask_costs_cpu", [&] {
        using acc_t = at::opmath_type<scalar_t>;
        const FocalParams<acc_t> fp{static_cast<acc_t>(alpha), static_cast<acc_t>(gamma)};
        const auto logits = mask_view<const scalar_t>(args.logits);
        acc_t* out = terms.mutable_data_ptr<acc_t>();
        const int64_t block = num_queries * num_points;
        at::parallel_for(0, block, kGrain, [&](int64_t begin, int64_t end) {
          for (int64_t i = begin; i < end; ++i) write_cost_terms(logits, fp, i, block, out);
        });

        dispatch_target_type<acc_t>(args.targets, [&](auto target) {
          const auto gt = mask_view<const typename decltype(target)::type>(args.targets);
          acc_t* dense = dense_targets.mutable_data_ptr<acc_t>();
          at::parallel_for(0, num_targets * num_points, kGrain, [&](int64_t begin, int64_t end) {
            for (int64_t i = begin; i < end; ++i) dense[i] = nearest_target<acc_t>(gt, i, h, w);
          });
        });
      });
  return finish_pairwise_costs(terms, dense_targets, eps);
}

}  // namespace

TORCH_LIBRARY_IMPL(mmseg_maskformer, CPU, m) {
  m.impl("pairwise_mask_costs", TORCH_FN(pairwise_mask_costs_cpu));
}

}  // namespace ops
}  // namespace mmseg_maskformer
