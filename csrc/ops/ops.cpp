#include "ops.h"

namespace mmseg_maskformer {
namespace ops {

at::ScalarType compute_dtype(const at::Tensor& logits) {
  return logits.scalar_type() == at::kDouble ? at::kDouble : at::kFloat;
}

MaskArgs mask_args(const at::Tensor& logits, const at::Tensor& targets, const char* op,
                   bool same_count) {
  TORCH_CHECK(logits.dim() == 2 || logits.dim() == 3, op,
              ": mask_logits must be (N, h, w) or (N, K), got ", logits.sizes());
  TORCH_CHECK(at::isFloatingType(logits.scalar_type()), op,
              ": mask_logits must be floating point, got ", logits.scalar_type());
  TORCH_CHECK(targets.dim() == logits.dim(), op, ": targets must have ", logits.dim(),
              " dimensions like mask_logits, got ", targets.sizes());
  TORCH_CHECK(targets.scalar_type() == at::kBool || targets.scalar_type() == at::kByte ||
                  at::isFloatingType(targets.scalar_type()),
              op, ": targets must be bool, uint8 or floating point, got ", targets.scalar_type());
  TORCH_CHECK(targets.device() == logits.device(), op, ": targets are on ", targets.device(),
              " but mask_logits are on ", logits.device());
  TORCH_CHECK(!same_count || targets.size(0) == logits.size(0), op,
              ": mask_logits and targets must hold the same number of masks, got ", logits.size(0),
              " and ", targets.size(0));
  if (logits.dim() == 2) {
    TORCH_CHECK(targets.size(1) == logits.size(1), op,
                ": point-form targets must have as many points as mask_logits, got ",
                targets.sizes(), " and ", logits.sizes());
  }
  for (int64_t d = 1; d < logits.dim(); ++d) {
    TORCH_CHECK(logits.size(d) > 0 && targets.size(d) > 0, op,
                ": masks must hold at least one pixel, got ", logits.sizes(), " and ",
                targets.sizes());
  }

  MaskArgs args;
  args.acc = compute_dtype(logits);
  args.logits = logits.dim() == 2 ? logits.unsqueeze(1) : logits;
  at::Tensor t = targets.dim() == 2 ? targets.unsqueeze(1) : targets;
  if (t.scalar_type() == at::kBool) {
    t = t.view(at::kByte);
  } else if (t.scalar_type() != at::kByte && t.scalar_type() != args.acc) {
    t = t.to(args.acc);
  }
  args.targets = t;
  args.resize = args.logits.size(1) != t.size(1) || args.logits.size(2) != t.size(2);
  return args;
}

std::tuple<at::Tensor, at::Tensor, at::Tensor> finish_focal_dice(const at::Tensor& partials,
                                                                 int64_t num_pixels, double eps,
                                                                 at::ScalarType acc) {
  const at::Tensor s = partials.sum(1);
  const at::Tensor focal = s.select(1, 0) / static_cast<double>(num_pixels);
  const at::Tensor dice = 1 - (2 * s.select(1, 3) + eps) / (s.select(1, 1) + s.select(1, 2) + eps);
  return {focal.to(acc), dice.to(acc), s.narrow(1, 1, 3).to(acc).contiguous()};
}

at::Tensor focal_dice_grad_coefficients(const at::Tensor& grad_focal, const at::Tensor& grad_dice,
                                        const at::Tensor& sums, int64_t num_pixels, double eps,
                                        at::ScalarType acc) {
  const at::Tensor s = sums.to(acc);
  const at::Tensor numerator = 2 * s.select(1, 2) + eps;
  const at::Tensor denominator = s.select(1, 0) + s.select(1, 1) + eps;
  const at::Tensor gd = grad_dice.to(acc);
  return at::stack({grad_focal.to(acc) / static_cast<double>(num_pixels),
                    gd * numerator / (denominator * denominator), -2 * gd / denominator},
                   1)
      .contiguous();
}

std::tuple<at::Tensor, at::Tensor> finish_pairwise_costs(const at::Tensor& terms,
                                                         const at::Tensor& targets, double eps) {
  const int64_t num_queries = terms.size(0) / 3;
  const int64_t num_points = terms.size(1);
  // One GEMM for both products: [pos - neg; p] @ T^T.
  const at::Tensor products = at::mm(terms.narrow(0, 0, 2 * num_queries), targets.t());
  // pos @ T^T + neg @ (1 - T)^T == (pos - neg) @ T^T + rowsum(neg).
  const at::Tensor focal =
      (products.narrow(0, 0, num_queries) +
       terms.narrow(0, 2 * num_queries, num_queries).sum(1, /*keepdim=*/true)) /
      static_cast<double>(num_points);
  const at::Tensor sum_p = terms.narrow(0, num_queries, num_queries).sum(1, /*keepdim=*/true);
  const at::Tensor sum_t = targets.sum(1).unsqueeze(0);
  const at::Tensor dice =
      1 - (2 * products.narrow(0, num_queries, num_queries) + eps) / (sum_p + sum_t + eps);
  return {focal, dice};
}

at::Tensor check_point_sample_args(const at::Tensor& inputs, const at::Tensor& points) {
  const at::ScalarType dtype = inputs.scalar_type();
  TORCH_CHECK(inputs.dim() == 4 && (at::isFloatingType(dtype) || dtype == at::kBool ||
                                    dtype == at::kByte),
              "point_sample: inputs must be a floating, bool or uint8 (N, C, H, W) tensor, got ",
              dtype, " ", inputs.sizes());
  TORCH_CHECK(inputs.size(2) > 0 && inputs.size(3) > 0,
              "point_sample: inputs must have a non-empty (H, W), got ", inputs.sizes());
  TORCH_CHECK(points.dim() == 3 && points.size(2) == 2 && at::isFloatingType(points.scalar_type()),
              "point_sample: points must be a floating (N, P, 2) tensor, got ",
              points.scalar_type(), " ", points.sizes());
  TORCH_CHECK(points.size(0) == inputs.size(0),
              "point_sample: inputs and points must have the same batch size, got ", inputs.size(0),
              " and ", points.size(0));
  TORCH_CHECK(points.device() == inputs.device(), "point_sample: points are on ", points.device(),
              " but inputs are on ", inputs.device());
  return dtype == at::kBool ? inputs.view(at::kByte) : inputs;
}

at::ScalarType point_sample_dtype(const at::Tensor& inputs) {
  return at::isFloatingType(inputs.scalar_type()) ? inputs.scalar_type() : at::kFloat;
}

void check_point_sample_backward_args(const at::Tensor& grad_output, const at::Tensor& points,
                                      int64_t height, int64_t width) {
  TORCH_CHECK(height > 0 && width > 0,
              "point_sample_backward: height and width must be positive, got ", height, " and ",
              width);
  TORCH_CHECK(grad_output.dim() == 3 && at::isFloatingType(grad_output.scalar_type()),
              "point_sample_backward: grad_output must be a floating (N, C, P) tensor, got ",
              grad_output.scalar_type(), " ", grad_output.sizes());
  TORCH_CHECK(points.dim() == 3 && points.size(2) == 2 && at::isFloatingType(points.scalar_type()),
              "point_sample_backward: points must be a floating (N, P, 2) tensor, got ",
              points.scalar_type(), " ", points.sizes());
  TORCH_CHECK(grad_output.size(0) == points.size(0) && grad_output.size(2) == points.size(1),
              "point_sample_backward: grad_output must be (N, C, P) for (N, P, 2) points, got ",
              grad_output.sizes(), " and ", points.sizes());
  TORCH_CHECK(points.device() == grad_output.device(), "point_sample_backward: points are on ",
              points.device(), " but grad_output is on ", grad_output.device());
}

}  // namespace ops
}  // namespace mmseg_maskformer
