#include "ops.h"

#include <limits>

namespace mmseg_maskformer {
namespace ops {

at::ScalarType compute_dtype(const at::Tensor& logits) {
  return logits.scalar_type() == at::kDouble ? at::kDouble : at::kFloat;
}

namespace {

// bool viewed as uint8, floating converted to the compute dtype (see MaskArgs).
at::Tensor kernel_input(const at::Tensor& t, at::ScalarType acc) {
  if (t.scalar_type() == at::kBool) return t.view(at::kByte);
  return t.scalar_type() == at::kByte || t.scalar_type() == acc ? t : t.to(acc);
}

}  // namespace

MaskArgs mask_args(const at::Tensor& logits, const at::Tensor& targets,
                   const std::optional<at::Tensor>& valid, const char* op, bool same_count) {
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
  args.targets = kernel_input(targets.dim() == 2 ? targets.unsqueeze(1) : targets, args.acc);
  if (valid.has_value()) {
    const at::Tensor& v = *valid;
    const auto expected = same_count ? targets.sizes() : targets.sizes().slice(1);
    TORCH_CHECK(v.sizes() == expected, op, ": valid must have shape ", expected, ", got ",
                v.sizes());
    TORCH_CHECK(v.scalar_type() == at::kBool || at::isFloatingType(v.scalar_type()), op,
                ": valid must be bool or floating point, got ", v.scalar_type());
    TORCH_CHECK(v.device() == logits.device(), op, ": valid is on ", v.device(),
                " but mask_logits are on ", logits.device());
    // Point form and the costs' shared map gain the dimensions of the dense (M, H, W) layout.
    at::Tensor dense = same_count ? v : v.unsqueeze(0);
    if (logits.dim() == 2) dense = dense.unsqueeze(1);
    args.valid = kernel_input(dense, args.acc);
  }
  args.resize = args.logits.size(1) != args.targets.size(1) ||
                args.logits.size(2) != args.targets.size(2);
  return args;
}

std::tuple<at::Tensor, at::Tensor, at::Tensor> finish_focal_dice(const at::Tensor& partials,
                                                                 int64_t num_pixels, double eps,
                                                                 at::ScalarType acc,
                                                                 bool weighted) {
  const at::Tensor s = partials.sum(1);
  const at::Tensor focal = weighted ? s.select(1, kFocal) / s.select(1, kCount).clamp_min(1)
                                    : s.select(1, kFocal) / static_cast<double>(num_pixels);
  const at::Tensor dice =
      1 - (2 * s.select(1, kSumPT) + eps) / (s.select(1, kSumP) + s.select(1, kSumT) + eps);
  const at::Tensor sums = s.narrow(1, kSumP, weighted ? 4 : 3);
  return {focal.to(acc), dice.to(acc), sums.to(acc).contiguous()};
}

at::Tensor focal_dice_grad_coefficients(const at::Tensor& grad_focal, const at::Tensor& grad_dice,
                                        const at::Tensor& sums, const MaskArgs& args, double eps,
                                        bool weighted) {
  // The saved sums and incoming gradients come from Python: check them rather than read past
  // their ends.
  const int64_t num_masks = args.logits.size(0);
  const auto device = args.logits.device();
  const int64_t num_sums = weighted ? 4 : 3;
  TORCH_CHECK(sums.dim() == 2 && sums.size(0) == num_masks && sums.size(1) == num_sums &&
                  sums.scalar_type() == args.acc && sums.device() == device,
              "sigmoid_focal_dice_loss_backward: sums must be the (", num_masks, ", ", num_sums,
              ") ",
              args.acc, " tensor on ", device, " returned by the forward, got ", sums.scalar_type(),
              " ", sums.sizes(), " on ", sums.device());
  auto check_grad = [&](const at::Tensor& grad, const char* name) {
    TORCH_CHECK(grad.dim() == 1 && grad.size(0) == num_masks &&
                    at::isFloatingType(grad.scalar_type()) && grad.device() == device,
                "sigmoid_focal_dice_loss_backward: ", name, " must be a floating (", num_masks,
                ",) tensor on ", device, ", got ", grad.scalar_type(), " ", grad.sizes(), " on ",
                grad.device());
  };
  check_grad(grad_focal, "grad_focal");
  check_grad(grad_dice, "grad_dice");
  const int64_t num_pixels = args.targets.size(1) * args.targets.size(2);
  const at::ScalarType acc = args.acc;
  const at::Tensor numerator = 2 * sums.select(1, 2) + eps;
  const at::Tensor denominator = sums.select(1, 0) + sums.select(1, 1) + eps;
  const at::Tensor gd = grad_dice.to(acc);
  const at::Tensor c_focal = weighted ? grad_focal.to(acc) / sums.select(1, 3).clamp_min(1)
                                      : grad_focal.to(acc) / static_cast<double>(num_pixels);
  return at::stack({c_focal, gd * numerator / (denominator * denominator), -2 * gd / denominator},
                   1)
      .contiguous();
}

std::tuple<at::Tensor, at::Tensor> finish_pairwise_costs(const at::Tensor& terms,
                                                         const at::Tensor& targets,
                                                         const at::Tensor& valid, double eps) {
  const int64_t num_queries = terms.size(0) / 3;
  const int64_t num_points = terms.size(1);
  // Matching must not change with torch.backends.cuda.matmul.allow_tf32 (or
  // set_float32_matmul_precision): TF32 keeps 10 mantissa bits, enough to swap near-tied
  // assignments. The guard is thread-local and leaves the global settings alone.
  const at::NoTF32Guard full_float32;
  // Weighting the point columns of every term weights each pixel of every cost.
  const at::Tensor weighted = valid.defined() ? terms * valid : terms;
  // One GEMM for both products: [pos - neg; p] @ T^T.
  const at::Tensor products = at::mm(weighted.narrow(0, 0, 2 * num_queries), targets.t());
  // pos @ T^T + neg @ (1 - T)^T == (pos - neg) @ T^T + rowsum(neg).
  const at::Tensor focal_sum = products.narrow(0, 0, num_queries) +
                               weighted.narrow(0, 2 * num_queries, num_queries).sum(1, true);
  const at::Tensor focal = valid.defined() ? focal_sum / valid.sum().clamp_min(1)
                                           : focal_sum / static_cast<double>(num_points);
  const at::Tensor sum_p = weighted.narrow(0, num_queries, num_queries).sum(1, /*keepdim=*/true);
  const at::Tensor sum_t = (valid.defined() ? targets * valid : targets).sum(1).unsqueeze(0);
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

void check_select_uncertain_points_args(const at::Tensor& candidate_logits,
                                        const at::Tensor& candidates, int64_t num_uncertain) {
  TORCH_CHECK(candidate_logits.dim() == 2 && at::isFloatingType(candidate_logits.scalar_type()),
              "select_uncertain_points: candidate_logits must be a floating (N, C) tensor, got ",
              candidate_logits.scalar_type(), " ", candidate_logits.sizes());
  TORCH_CHECK(candidates.dim() == 3 && candidates.size(2) == 2 &&
                  candidates.size(0) == candidate_logits.size(0) &&
                  candidates.size(1) == candidate_logits.size(1) &&
                  at::isFloatingType(candidates.scalar_type()),
              "select_uncertain_points: candidates must be a floating (N, C, 2) tensor for (N, C) = ",
              candidate_logits.sizes(), ", got ", candidates.scalar_type(), " ",
              candidates.sizes());
  TORCH_CHECK(candidates.device() == candidate_logits.device(),
              "select_uncertain_points: candidates are on ", candidates.device(),
              " but candidate_logits are on ", candidate_logits.device());
  TORCH_CHECK(0 <= num_uncertain && num_uncertain <= candidate_logits.size(1),
              "select_uncertain_points: num_uncertain must be in [0, ", candidate_logits.size(1),
              "], got ", num_uncertain);
  TORCH_CHECK(candidate_logits.size(1) <= std::numeric_limits<int32_t>::max(),
              "select_uncertain_points: at most 2^31 - 1 candidates per mask, got ",
              candidate_logits.size(1));
}

void check_sample_uncertain_points_args(const at::Tensor& mask_logits, const at::Tensor& seed,
                                        int64_t num_points, int64_t num_candidates,
                                        int64_t num_uncertain) {
  TORCH_CHECK(mask_logits.dim() == 3 && at::isFloatingType(mask_logits.scalar_type()),
              "sample_uncertain_points: mask_logits must be a floating (N, h, w) tensor, got ",
              mask_logits.scalar_type(), " ", mask_logits.sizes());
  TORCH_CHECK(mask_logits.size(1) > 0 && mask_logits.size(2) > 0,
              "sample_uncertain_points: mask_logits must have a non-empty (h, w), got ",
              mask_logits.sizes());
  TORCH_CHECK(mask_logits.size(0) <= std::numeric_limits<uint32_t>::max(),
              "sample_uncertain_points: at most 2^32 masks, got ", mask_logits.size(0));
  TORCH_CHECK(seed.dim() == 0 && seed.scalar_type() == at::kLong,
              "sample_uncertain_points: seed must be a 0-dim int64 tensor, got ",
              seed.scalar_type(), " ", seed.sizes());
  TORCH_CHECK(seed.device() == mask_logits.device(), "sample_uncertain_points: seed is on ",
              seed.device(), " but mask_logits are on ", mask_logits.device());
  TORCH_CHECK(num_points > 0, "sample_uncertain_points: num_points must be positive, got ",
              num_points);
  TORCH_CHECK(0 <= num_candidates && num_candidates <= std::numeric_limits<int32_t>::max(),
              "sample_uncertain_points: num_candidates must be in [0, 2^31), got ",
              num_candidates);
  TORCH_CHECK(0 <= num_uncertain && num_uncertain <= std::min(num_points, num_candidates),
              "sample_uncertain_points: num_uncertain must be in [0, min(num_points, "
              "num_candidates)] = [0, ",
              std::min(num_points, num_candidates), "], got ", num_uncertain);
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
