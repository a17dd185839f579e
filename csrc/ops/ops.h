// Host-side pieces shared by the CPU and CUDA implementations: argument normalisation, the
// small per-mask reductions that finish an op, and the target-dtype dispatch.
#pragma once

#include <ATen/ATen.h>
#include <ATen/Dispatch.h>
#include <ATen/OpMathType.h>

#include <cstdint>
#include <optional>
#include <tuple>
#include <type_traits>

#include "kernel_math.h"

namespace mmseg_maskformer {
namespace ops {

// float32 for float16/bfloat16/float32 logits, float64 for float64 (gradcheck).
at::ScalarType compute_dtype(const at::Tensor& logits);

// Logits, targets and valid weights of the loss and cost ops with point-form (N, K) tensors
// viewed as (N, 1, K), so that kernels only see the dense layout. bool targets and valid maps are
// viewed as uint8 and floating ones converted to the compute dtype, so kernels read them as
// uint8 or acc_t only.
struct MaskArgs {
  at::Tensor logits;   // (N, h, w), any strides
  at::Tensor targets;  // (M, H, W), any strides, uint8 or compute dtype
  at::Tensor valid;    // undefined, or (M, H, W) for the loss and (1, H, W) for the costs
  at::ScalarType acc;
  bool resize;  // (h, w) != (H, W)
};
// same_count: the loss (as many targets as logits, valid of the targets' shape); else the costs
// (valid of one target's shape, shared by all).
MaskArgs mask_args(const at::Tensor& logits, const at::Tensor& targets,
                   const std::optional<at::Tensor>& valid, const char* op, bool same_count);

// Loss forward epilogue. partials: (N, B, kLossSums) double partial sums over B pixel blocks
// (the count column is read only when weighted). Returns (focal mean, dice, sums) in dtype acc;
// sums, saved for backward: (N, 3) sums of p, t and p*t, and (N, 4) with the valid count when
// weighted.
std::tuple<at::Tensor, at::Tensor, at::Tensor> finish_focal_dice(const at::Tensor& partials,
                                                                 int64_t num_pixels, double eps,
                                                                 at::ScalarType acc,
                                                                 bool weighted);

// Loss backward prologue: checks the saved sums and incoming gradients, then returns per mask
// (c_focal, c_dice, c_dice_t) such that dL/dx = c_focal * dFL/dx + p (1 - p) (c_dice +
// c_dice_t * t), times the pixel's weight when weighted. (N, 3) contiguous, dtype acc.
at::Tensor focal_dice_grad_coefficients(const at::Tensor& grad_focal, const at::Tensor& grad_dice,
                                        const at::Tensor& sums, const MaskArgs& args, double eps,
                                        bool weighted);

// Matcher epilogue. terms: (3Q, K) rows [pos - neg; p; neg], targets: (M, K), valid: undefined or
// (K,) weights, all dtype acc. The GEMM runs in full float32 whatever the TF32 settings.
std::tuple<at::Tensor, at::Tensor> finish_pairwise_costs(const at::Tensor& terms,
                                                         const at::Tensor& targets,
                                                         const at::Tensor& valid, double eps);

// Validates point_sample's arguments; returns the inputs as the kernels read them (bool viewed as
// uint8). Samples have the inputs' dtype, float32 for bool and uint8 inputs (point_sample_dtype).
at::Tensor check_point_sample_args(const at::Tensor& inputs, const at::Tensor& points);
at::ScalarType point_sample_dtype(const at::Tensor& inputs);
void check_point_sample_backward_args(const at::Tensor& grad_output, const at::Tensor& points,
                                      int64_t height, int64_t width);
// Validates select_uncertain_points' arguments: (N, C) floating logits, (N, C, 2) floating
// candidates on the same device, 0 <= num_uncertain <= C < 2^31.
void check_select_uncertain_points_args(const at::Tensor& candidate_logits,
                                        const at::Tensor& candidates, int64_t num_uncertain);
// Validates sample_uncertain_points' arguments: (N, h, w) floating logits with N < 2^32, a
// 0-dim int64 seed on their device, 0 <= num_uncertain <= min(num_points, num_candidates) and
// num_candidates < 2^31.
void check_sample_uncertain_points_args(const at::Tensor& mask_logits, const at::Tensor& seed,
                                        int64_t num_points, int64_t num_candidates,
                                        int64_t num_uncertain);
// The kernels' compute and output element types for point_sample inputs of element type scalar_t.
template <typename scalar_t>
using sample_acc_t = std::conditional_t<std::is_same_v<scalar_t, double>, double, float>;
template <typename scalar_t>
using sample_out_t = std::conditional_t<std::is_same_v<scalar_t, uint8_t>, float, scalar_t>;

// In-place view of a 3-D tensor for the kernels (const T for inputs).
template <typename T>
MaskView<T> mask_view(const at::Tensor& t) {
  T* data;
  if constexpr (std::is_const_v<T>) {
    data = static_cast<T*>(t.const_data_ptr());
  } else {
    data = static_cast<T*>(t.mutable_data_ptr());
  }
  return {data, t.stride(0), t.stride(1), t.stride(2), t.size(1), t.size(2)};
}

// In-place view of MaskArgs::valid (null pointers when undefined).
template <typename T>
ValidView<T> valid_view(const at::Tensor& valid) {
  if (!valid.defined()) return {nullptr, nullptr, 0, 0, 0};
  const bool flags = valid.scalar_type() == at::kByte;
  return {flags ? valid.const_data_ptr<uint8_t>() : nullptr,
          flags ? nullptr : valid.const_data_ptr<T>(), valid.stride(0), valid.stride(1),
          valid.stride(2)};
}

// ---- Inference (semantic scores and labels, panoptic assignment): ops/inference.cpp ----------

// Bilinear resampling of (Q, Hs, Ws) maps at a grid of rows x columns given by per-axis taps:
// row_index / col_index (n, 2) int64 source indices and row_weight / col_weight (n, 2) weights
// of the compute dtype, combined in ATen's order l0 (a l0' + b l1') + l1 (c l0' + d l1'). out is
// a contiguous (Q, rows, columns) tensor of the compute dtype. One implementation per device.
using ResampleFn = void (*)(const at::Tensor& src, const at::Tensor& row_index,
                            const at::Tensor& row_weight, const at::Tensor& col_index,
                            const at::Tensor& col_weight, at::Tensor& out);

// The ops' host code, shared by both devices: argument checks, tap tables and the loop over
// blocks of output rows, with the device's resample kernel and ATen's GEMM / max / bincount.
at::Tensor semantic_scores_host(const at::Tensor& cls_logits, const at::Tensor& mask_logits,
                                int64_t height, int64_t width, ResampleFn resample,
                                int64_t block_elements);
std::tuple<at::Tensor, at::Tensor> semantic_labels_host(
    const at::Tensor& cls_logits, const at::Tensor& mask_logits, at::IntArrayRef input_size,
    at::IntArrayRef crop, at::IntArrayRef output_size, bool flip_horizontal, bool flip_vertical,
    bool align_corners, ResampleFn resample, int64_t block_elements);
std::tuple<at::Tensor, at::Tensor, at::Tensor> panoptic_assignment_host(
    const at::Tensor& mask_logits, const at::Tensor& scores, at::IntArrayRef input_size,
    at::IntArrayRef crop, at::IntArrayRef output_size, bool flip_horizontal, bool flip_vertical,
    bool align_corners, ResampleFn resample, int64_t block_elements);

// Checks resample's arguments (shared by the device kernels).
void check_resample_args(const at::Tensor& src, const at::Tensor& row_index,
                         const at::Tensor& row_weight, const at::Tensor& col_index,
                         const at::Tensor& col_weight, const at::Tensor& out);

template <typename T>
struct TypeTag {
  using type = T;
};

// Calls f(TypeTag<target_t>) with the element type the targets were normalised to by mask_args.
template <typename acc_t, typename F>
void dispatch_target_type(const at::Tensor& targets, F&& f) {
  if (targets.scalar_type() == at::kByte) {
    f(TypeTag<uint8_t>{});
  } else {
    f(TypeTag<acc_t>{});
  }
}

template <typename F>
void dispatch_resize(bool resize, F&& f) {
  if (resize) {
    f(std::true_type{});
  } else {
    f(std::false_type{});
  }
}

// Calls body(TypeTag<scalar_t>, TypeTag<target_t>, std::bool_constant<resize>, FocalParams<acc_t>)
// for the logits' element type, the normalised target type and whether the logits are resized to
// the targets. (Tags rather than template lambdas keep the sources C++17.)
template <typename Body>
void dispatch_mask_op(const MaskArgs& args, double alpha, double gamma, Body&& body) {
  AT_DISPATCH_FLOATING_TYPES_AND2(
      at::kHalf, at::kBFloat16, args.logits.scalar_type(), "mask_op", [&] {
        using acc_t = at::opmath_type<scalar_t>;
        const FocalParams<acc_t> fp{static_cast<acc_t>(alpha), static_cast<acc_t>(gamma)};
        dispatch_target_type<acc_t>(args.targets, [&](auto target) {
          dispatch_resize(args.resize,
                          [&](auto resize) { body(TypeTag<scalar_t>{}, target, resize, fp); });
        });
      });
}

}  // namespace ops
}  // namespace mmseg_maskformer
