// CUDA kernel of the inference ops: the bilinear resampling they share (ResampleFn); the rest of
// each op is the device-independent host code of ops/inference.cpp (cuBLAS GEMM, ATen's max and
// bincount on the block).
#include <torch/library.h>

#include "../ops.h"
#include "cuda_utils.cuh"

namespace mmseg_maskformer {
namespace ops {
namespace {

// Working set of a block of output rows (elements): large enough to keep the GPU busy, small
// next to the (Q, H, W) tensors the reference chain allocates.
constexpr int64_t kBlockElements = int64_t(1) << 25;

// One thread per output element, columns fastest.
template <typename scalar_t, typename acc_t>
__global__ void resample_kernel(const scalar_t* src, int64_t sq, int64_t sy, int64_t sx,
                                const int64_t* row_index, const acc_t* row_weight,
                                const int64_t* col_index, const acc_t* col_weight, int64_t rows,
                                int64_t cols, acc_t* out, int64_t total) {
  MMSEG_CUDA_KERNEL_LOOP(i, total) {
    const int64_t c = i % cols, r = i / cols % rows, q = i / (cols * rows);
    const scalar_t* row0 = src + q * sq + row_index[2 * r] * sy;
    const scalar_t* row1 = src + q * sq + row_index[2 * r + 1] * sy;
    const int64_t x0 = col_index[2 * c] * sx, x1 = col_index[2 * c + 1] * sx;
    const acc_t w0 = col_weight[2 * c], w1 = col_weight[2 * c + 1];
    out[i] = row_weight[2 * r] * (w0 * static_cast<acc_t>(row0[x0]) +
                                  w1 * static_cast<acc_t>(row0[x1])) +
             row_weight[2 * r + 1] * (w0 * static_cast<acc_t>(row1[x0]) +
                                      w1 * static_cast<acc_t>(row1[x1]));
  }
}

void resample_cuda(const at::Tensor& src, const at::Tensor& row_index,
                   const at::Tensor& row_weight, const at::Tensor& col_index,
                   const at::Tensor& col_weight, at::Tensor& out) {
  check_resample_args(src, row_index, row_weight, col_index, col_weight, out);
  const c10::cuda::CUDAGuard device_guard(src.device());
  const int64_t total = out.numel();
  if (total == 0) return;
  AT_DISPATCH_FLOATING_TYPES_AND2(
      at::kHalf, at::kBFloat16, src.scalar_type(), "resample_cuda", [&] {
        using acc_t = at::opmath_type<scalar_t>;
        resample_kernel<scalar_t, acc_t>
            <<<grid_size(total), kThreads, 0, at::cuda::getCurrentCUDAStream()>>>(
                src.const_data_ptr<scalar_t>(), src.stride(0), src.stride(1), src.stride(2),
                row_index.const_data_ptr<int64_t>(), row_weight.const_data_ptr<acc_t>(),
                col_index.const_data_ptr<int64_t>(), col_weight.const_data_ptr<acc_t>(),
                out.size(1), out.size(2), out.mutable_data_ptr<acc_t>(), total);
        C10_CUDA_KERNEL_LAUNCH_CHECK();
      });
}

at::Tensor semantic_scores_cuda(const at::Tensor& cls_logits, const at::Tensor& mask_logits,
                                int64_t height, int64_t width) {
  const c10::cuda::CUDAGuard device_guard(mask_logits.device());
  return semantic_scores_host(cls_logits, mask_logits, height, width, resample_cuda,
                              kBlockElements);
}

std::tuple<at::Tensor, at::Tensor> semantic_labels_cuda(
    const at::Tensor& cls_logits, const at::Tensor& mask_logits, at::IntArrayRef input_size,
    at::IntArrayRef crop, at::IntArrayRef output_size, bool flip_horizontal, bool flip_vertical,
    bool align_corners) {
  const c10::cuda::CUDAGuard device_guard(mask_logits.device());
  return semantic_labels_host(cls_logits, mask_logits, input_size, crop, output_size,
                              flip_horizontal, flip_vertical, align_corners, resample_cuda,
                              kBlockElements);
}

std::tuple<at::Tensor, at::Tensor, at::Tensor> panoptic_assignment_cuda(
    const at::Tensor& mask_logits, const at::Tensor& scores, at::IntArrayRef input_size,
    at::IntArrayRef crop, at::IntArrayRef output_size, bool flip_horizontal, bool flip_vertical,
    bool align_corners) {
  const c10::cuda::CUDAGuard device_guard(mask_logits.device());
  return panoptic_assignment_host(mask_logits, scores, input_size, crop, output_size,
                                  flip_horizontal, flip_vertical, align_corners, resample_cuda,
                                  kBlockElements);
}

}  // namespace

TORCH_LIBRARY_IMPL(mmseg_maskformer, CUDA, m) {
  m.impl("semantic_scores", TORCH_FN(semantic_scores_cuda));
  m.impl("semantic_labels", TORCH_FN(semantic_labels_cuda));
  m.impl("panoptic_assignment", TORCH_FN(panoptic_assignment_cuda));
}

}  // namespace ops
}  // namespace mmseg_maskformer
