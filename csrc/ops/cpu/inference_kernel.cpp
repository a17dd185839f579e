// CPU kernels of the inference ops: the bilinear resampling they share (ResampleFn); the rest of
// each op is the device-independent host code of ops/inference.cpp.
#include <ATen/Parallel.h>
#include <torch/library.h>

#include <algorithm>
#include <cstdint>
#include <vector>

#include "../ops.h"

namespace mmseg_maskformer {
namespace ops {
namespace {

// Working set of a block of output rows (elements): a few MB, so that a block's sigmoid maps
// and class scores stay in cache between the resampling, the GEMM and the arg-max.
constexpr int64_t kBlockElements = int64_t(1) << 20;

template <typename scalar_t, typename acc_t>
void resample_rows(const at::Tensor& src, const at::Tensor& row_index,
                   const at::Tensor& row_weight, const at::Tensor& col_index,
                   const at::Tensor& col_weight, at::Tensor& out) {
  const int64_t queries = src.size(0), rows = row_index.size(0), cols = col_index.size(0);
  const int64_t sq = src.stride(0), sy = src.stride(1), sx = src.stride(2);
  const scalar_t* in = src.const_data_ptr<scalar_t>();
  const int64_t* ri = row_index.const_data_ptr<int64_t>();
  const acc_t* rw = row_weight.const_data_ptr<acc_t>();
  const acc_t* cw = col_weight.const_data_ptr<acc_t>();
  // Column offsets in elements, computed once for every row.
  std::vector<int64_t> offsets(2 * cols);
  const int64_t* ci = col_index.const_data_ptr<int64_t>();
  for (int64_t i = 0; i < 2 * cols; ++i) offsets[i] = ci[i] * sx;
  acc_t* output = out.mutable_data_ptr<acc_t>();
  const int64_t grain = std::max<int64_t>(1, 16384 / std::max<int64_t>(cols, 1));
  at::parallel_for(0, queries * rows, grain, [&](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i) {
      const int64_t q = i / rows, r = i % rows;
      const scalar_t* row0 = in + q * sq + ri[2 * r] * sy;
      const scalar_t* row1 = in + q * sq + ri[2 * r + 1] * sy;
      const acc_t l0 = rw[2 * r], l1 = rw[2 * r + 1];
      acc_t* dst = output + i * cols;
      for (int64_t c = 0; c < cols; ++c) {
        const int64_t x0 = offsets[2 * c], x1 = offsets[2 * c + 1];
        const acc_t w0 = cw[2 * c], w1 = cw[2 * c + 1];
        dst[c] = l0 * (w0 * static_cast<acc_t>(row0[x0]) + w1 * static_cast<acc_t>(row0[x1])) +
                 l1 * (w0 * static_cast<acc_t>(row1[x0]) + w1 * static_cast<acc_t>(row1[x1]));
      }
    }
  });
}

void resample_cpu(const at::Tensor& src, const at::Tensor& row_index,
                  const at::Tensor& row_weight, const at::Tensor& col_index,
                  const at::Tensor& col_weight, at::Tensor& out) {
  check_resample_args(src, row_index, row_weight, col_index, col_weight, out);
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, src.scalar_type(), "resample_cpu",
                                  [&] {
                                    using acc_t = at::opmath_type<scalar_t>;
                                    resample_rows<scalar_t, acc_t>(src, row_index, row_weight,
                                                                   col_index, col_weight, out);
                                  });
}

at::Tensor semantic_scores_cpu(const at::Tensor& cls_logits, const at::Tensor& mask_logits,
                               int64_t height, int64_t width) {
  return semantic_scores_host(cls_logits, mask_logits, height, width, resample_cpu,
                              kBlockElements);
}

std::tuple<at::Tensor, at::Tensor> semantic_labels_cpu(
    const at::Tensor& cls_logits, const at::Tensor& mask_logits, at::IntArrayRef input_size,
    at::IntArrayRef crop, at::IntArrayRef output_size, bool flip_horizontal, bool flip_vertical,
    bool align_corners) {
  return semantic_labels_host(cls_logits, mask_logits, input_size, crop, output_size,
                              flip_horizontal, flip_vertical, align_corners, resample_cpu,
                              kBlockElements);
}

std::tuple<at::Tensor, at::Tensor, at::Tensor> panoptic_assignment_cpu(
    const at::Tensor& mask_logits, const at::Tensor& scores, at::IntArrayRef input_size,
    at::IntArrayRef crop, at::IntArrayRef output_size, bool flip_horizontal, bool flip_vertical,
    bool align_corners) {
  return panoptic_assignment_host(mask_logits, scores, input_size, crop, output_size,
                                  flip_horizontal, flip_vertical, align_corners, resample_cpu,
                                  kBlockElements);
}

}  // namespace

TORCH_LIBRARY_IMPL(mmseg_maskformer, CPU, m) {
  m.impl("semantic_scores", TORCH_FN(semantic_scores_cpu));
  m.impl("semantic_labels", TORCH_FN(semantic_labels_cpu));
  m.impl("panoptic_assignment", TORCH_FN(panoptic_assignment_cpu));
}

}  // namespace ops
}  // namespace mmseg_maskformer
