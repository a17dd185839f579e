// Host side of the inference ops: semantic scores, semantic labels and the panoptic assignment.
//
// All three evaluate MaskFormer's inference chain (Cheng et al. 2021, §3.4; the official
// semantic_inference / panoptic_inference of facebookresearch/MaskFormer, followed by mmseg's
// BaseSegmentor.postprocess_result) on a few output rows at a time, so that no (Q, H, W) mask
// tensor and no (K, H, W) score tensor exists at once:
//
//   mask logits (Q, h, w) --bilinear--> network-input grid (H_in, W_in) --crop, flip--> (h_c, w_c)
//   --bilinear (align_corners as given)--> output (H_out, W_out)
//
// Semantic: sigmoid at the network-input grid, class probabilities contracted there (the scores
// mmseg's decode head returns), which commutes with the crop, flip and the (linear) resize, so
// each block resizes the sigmoid maps and contracts them at the output pixels with one GEMM,
// then takes the arg-max over classes. Panoptic: the logits are resized (the official order),
// then sigmoid, score weighting and the arg-max over queries, with the counts the overlap filter
// needs. Interpolation taps follow ATen's upsample_bilinear2d (area_pixel_compute_source_index,
// guard_index_and_lambda) and are computed once per axis.
#include <ATen/ATen.h>
#include <ATen/Context.h>

#include <algorithm>
#include <cstdint>
#include <vector>

#include "ops.h"

namespace mmseg_maskformer {
namespace ops {
namespace {

// The taps of one axis as device tensors, plus the source indices on the host (to find the
// source rows a block of output rows reads).
struct AxisTaps {
  at::Tensor index;              // (n, 2) int64
  at::Tensor weight;             // (n, 2) compute dtype
  std::vector<int64_t> i0, i1;  // host copies of the two source indices
};

// Taps of destination indices dst_of(0..count-1) of an axis resized from in_size to out_size.
template <typename acc_t, typename DstOf>
void fill_taps(int64_t in_size, int64_t out_size, bool align_corners, int64_t count,
               DstOf dst_of, AxisTaps& taps, at::Tensor& weight) {
  auto index = at::empty({count, 2}, at::kLong);
  int64_t* idx = index.mutable_data_ptr<int64_t>();
  acc_t* w = weight.mutable_data_ptr<acc_t>();
  taps.i0.resize(count);
  taps.i1.resize(count);
  // area_pixel_compute_scale without an explicit scale factor.
  acc_t scale = static_cast<acc_t>(in_size) / out_size;
  if (align_corners) {
    scale = out_size > 1 ? static_cast<acc_t>(in_size - 1) / (out_size - 1) : acc_t(0);
  }
  for (int64_t i = 0; i < count; ++i) {
    const int64_t dst = dst_of(i);
    int64_t i0 = dst, i1 = dst;
    acc_t l1 = 0;
    if (in_size != out_size) {  // ATen copies equal sizes
      acc_t src = align_corners ? scale * dst : scale * (dst + static_cast<acc_t>(0.5)) -
                                                    static_cast<acc_t>(0.5);
      if (!align_corners && src < 0) src = 0;
      i0 = std::min(static_cast<int64_t>(std::floor(src)), in_size - 1);
      l1 = std::min(std::max(src - static_cast<acc_t>(i0), acc_t(0)), acc_t(1));
      i1 = i0 + (i0 < in_size - 1 ? 1 : 0);
    }
    idx[2 * i] = i0;
    idx[2 * i + 1] = i1;
    w[2 * i] = static_cast<acc_t>(1) - l1;
    w[2 * i + 1] = l1;
    taps.i0[i] = i0;
    taps.i1[i] = i1;
  }
  taps.index = index;
}

template <typename DstOf>
AxisTaps axis_taps(int64_t in_size, int64_t out_size, bool align_corners, int64_t count,
                   DstOf dst_of, at::ScalarType acc, const at::Device& device) {
  AxisTaps taps;
  at::Tensor weight = at::empty({count, 2}, at::TensorOptions().dtype(acc));
  if (acc == at::kDouble) {
    fill_taps<double>(in_size, out_size, align_corners, count, dst_of, taps, weight);
  } else {
    fill_taps<float>(in_size, out_size, align_corners, count, dst_of, taps, weight);
  }
  taps.index = taps.index.to(device);
  taps.weight = weight.to(device);
  return taps;
}

// Where the output pixels come from; see the comment at the top of the file.
struct Geometry {
  int64_t in_h, in_w;                   // network-input grid
  int64_t top, left, crop_h, crop_w;    // crop of that grid (batch padding removed)
  int64_t out_h, out_w;                 // output size (the original image)
  bool flip_h, flip_v, align_corners;   // flip undone after the crop; resize's align_corners

  bool resized() const { return crop_h != out_h || crop_w != out_w; }
};

Geometry make_geometry(const char* op, at::IntArrayRef input_size, at::IntArrayRef crop,
                       at::IntArrayRef output_size, bool flip_h, bool flip_v, bool align_corners) {
  TORCH_CHECK(input_size.size() == 2 && input_size[0] > 0 && input_size[1] > 0, op,
              ": input_size must be two positive sizes (H, W), got ", input_size);
  TORCH_CHECK(output_size.size() == 2 && output_size[0] > 0 && output_size[1] > 0, op,
              ": output_size must be two positive sizes (H, W), got ", output_size);
  TORCH_CHECK(crop.size() == 4 && crop[0] >= 0 && crop[1] >= 0 && crop[2] > 0 && crop[3] > 0 &&
                  crop[0] + crop[2] <= input_size[0] && crop[1] + crop[3] <= input_size[1],
              op, ": crop must be (top, left, height, width) inside the input grid ", input_size,
              ", got ", crop);
  return {input_size[0], input_size[1], crop[0], crop[1], crop[2], crop[3],
          output_size[0], output_size[1], flip_h, flip_v, align_corners};
}

// Mask values at blocks of output rows, never more than a block's rows at once.
class RowChain {
 public:
  RowChain(const at::Tensor& mask_logits, const Geometry& g, at::ScalarType acc,
           ResampleFn resample)
      : masks_(mask_logits), g_(g), acc_(acc), resample_(resample) {
    const auto device = mask_logits.device();
    const int64_t h = mask_logits.size(1), w = mask_logits.size(2);
    // Stage A: the mask logits at the cropped, flipped rows and columns of the input grid.
    input_rows_ = axis_taps(h, g.in_h, false, g.crop_h, [&](int64_t r) {
      return g.top + (g.flip_v ? g.crop_h - 1 - r : r);
    }, acc, device);
    input_cols_ = axis_taps(w, g.in_w, false, g.crop_w, [&](int64_t c) {
      return g.left + (g.flip_h ? g.crop_w - 1 - c : c);
    }, acc, device);
    if (g.resized()) {
      // Stage B: the crop resized to the output size.
      output_rows_ = axis_taps(g.crop_h, g.out_h, g.align_corners, g.out_h,
                               [](int64_t y) { return y; }, acc, device);
      output_cols_ = axis_taps(g.crop_w, g.out_w, g.align_corners, g.out_w,
                               [](int64_t x) { return x; }, acc, device);
    }
  }

  // Elements a block holds per output row, besides the caller's own per-pixel buffers.
  int64_t elements_per_row() const {
    const int64_t queries = masks_.size(0);
    if (!g_.resized()) return queries * g_.out_w;
    return queries * (g_.out_w + g_.crop_w * (g_.crop_h / g_.out_h + 2));
  }

  // (Q, y1 - y0, out_w): the sigmoid of the masks at output rows [y0, y1) when sigmoid_first
  // (semantic: sigmoid at the input grid, then resized), else their logits (panoptic).
  at::Tensor rows(int64_t y0, int64_t y1, bool sigmoid_first) const {
    const int64_t queries = masks_.size(0), n = y1 - y0;
    const auto options = masks_.options().dtype(acc_);
    if (!g_.resized()) {
      at::Tensor out = at::empty({queries, n, g_.out_w}, options);
      resample_(masks_, input_rows_.index.narrow(0, y0, n), input_rows_.weight.narrow(0, y0, n),
                input_cols_.index, input_cols_.weight, out);
      return sigmoid_first ? out.sigmoid_() : out;
    }
    int64_t first = g_.crop_h, last = 0;
    for (int64_t y = y0; y < y1; ++y) {
      first = std::min(first, output_rows_.i0[y]);
      last = std::max(last, output_rows_.i1[y]);
    }
    const int64_t span = last - first + 1;
    at::Tensor cropped = at::empty({queries, span, g_.crop_w}, options);
    resample_(masks_, input_rows_.index.narrow(0, first, span),
              input_rows_.weight.narrow(0, first, span), input_cols_.index, input_cols_.weight,
              cropped);
    if (sigmoid_first) cropped.sigmoid_();
    at::Tensor out = at::empty({queries, n, g_.out_w}, options);
    resample_(cropped, output_rows_.index.narrow(0, y0, n) - first,
              output_rows_.weight.narrow(0, y0, n), output_cols_.index, output_cols_.weight, out);
    return out;
  }

 private:
  at::Tensor masks_;
  Geometry g_;
  at::ScalarType acc_;
  ResampleFn resample_;
  AxisTaps input_rows_, input_cols_, output_rows_, output_cols_;
};

int64_t block_rows(const RowChain& chain, int64_t per_pixel, const Geometry& g,
                   int64_t block_elements) {
  const int64_t per_row = chain.elements_per_row() + per_pixel * g.out_w;
  return std::clamp<int64_t>(block_elements / std::max<int64_t>(per_row, 1), 1, g.out_h);
}

void check_mask_logits(const char* op, const at::Tensor& mask_logits, int64_t dims) {
  TORCH_CHECK(mask_logits.dim() == dims && at::isFloatingType(mask_logits.scalar_type()), op,
              ": mask_logits must be a floating ", dims == 3 ? "(Q, h, w)" : "(B, Q, h, w)",
              " tensor, got ", mask_logits.scalar_type(), " ", mask_logits.sizes());
  TORCH_CHECK(mask_logits.size(dims - 3) > 0 && mask_logits.size(dims - 2) > 0 &&
                  mask_logits.size(dims - 1) > 0,
              op, ": mask_logits must hold at least one query and one pixel, got ",
              mask_logits.sizes());
}

void check_class_logits(const char* op, const at::Tensor& cls_logits,
                        const at::Tensor& mask_logits) {
  const int64_t dims = mask_logits.dim() - 1;
  TORCH_CHECK(cls_logits.dim() == dims && at::isFloatingType(cls_logits.scalar_type()), op,
              ": cls_logits must be a floating ", dims == 2 ? "(Q, K+1)" : "(B, Q, K+1)",
              " tensor, got ", cls_logits.scalar_type(), " ", cls_logits.sizes());
  TORCH_CHECK(cls_logits.sizes().slice(0, dims - 1) == mask_logits.sizes().slice(0, dims - 1), op,
              ": cls_logits ", cls_logits.sizes(), " and mask_logits ", mask_logits.sizes(),
              " must hold the same queries");
  TORCH_CHECK(cls_logits.size(dims - 1) >= 2, op,
              ": cls_logits needs K+1 >= 2 columns (K classes and the no-object class), got ",
              cls_logits.sizes());
  TORCH_CHECK(cls_logits.device() == mask_logits.device(), op, ": cls_logits are on ",
              cls_logits.device(), " but mask_logits are on ", mask_logits.device());
}

// (K, Q) class probabilities without the no-object class, in the compute dtype.
at::Tensor class_probabilities(const at::Tensor& cls_logits, at::ScalarType acc) {
  const int64_t num_classes = cls_logits.size(-1) - 1;
  return cls_logits.to(acc).softmax(-1).narrow(-1, 0, num_classes).t().contiguous();
}

}  // namespace

void check_resample_args(const at::Tensor& src, const at::Tensor& row_index,
                         const at::Tensor& row_weight, const at::Tensor& col_index,
                         const at::Tensor& col_weight, const at::Tensor& out) {
  TORCH_CHECK(src.dim() == 3 && out.dim() == 3 && out.is_contiguous() &&
                  out.size(0) == src.size(0) && out.size(1) == row_index.size(0) &&
                  out.size(2) == col_index.size(0) && row_index.sizes() == row_weight.sizes() &&
                  col_index.sizes() == col_weight.sizes() && row_index.is_contiguous() &&
                  col_index.is_contiguous() && row_weight.is_contiguous() &&
                  col_weight.is_contiguous() && out.scalar_type() == row_weight.scalar_type() &&
                  out.scalar_type() == col_weight.scalar_type(),
              "resample: inconsistent arguments ", src.sizes(), " ", row_index.sizes(), " ",
              col_index.sizes(), " ", out.sizes());
}

at::Tensor semantic_scores_host(const at::Tensor& cls_logits, const at::Tensor& mask_logits,
                                int64_t height, int64_t width, ResampleFn resample,
                                int64_t block_elements) {
  const char* op = "semantic_scores";
  check_mask_logits(op, mask_logits, 4);
  check_class_logits(op, cls_logits, mask_logits);
  TORCH_CHECK(height > 0 && width > 0, op, ": height and width must be positive, got ", height,
              " and ", width);
  const at::NoTF32Guard full_float32;  // scores must not depend on the TF32 setting
  const at::ScalarType acc = compute_dtype(mask_logits);
  const int64_t batch = mask_logits.size(0), queries = mask_logits.size(1);
  const int64_t num_classes = cls_logits.size(2) - 1;
  at::Tensor scores =
      at::empty({batch, num_classes, height, width}, mask_logits.options().dtype(acc));
  const Geometry g{height, width, 0, 0, height, width, height, width, false, false, false};
  for (int64_t b = 0; b < batch; ++b) {
    const at::Tensor probs = class_probabilities(cls_logits[b], acc);
    const RowChain chain(mask_logits[b], g, acc, resample);
    const int64_t rows = block_rows(chain, num_classes, g, block_elements);
    at::Tensor image = scores[b].view({num_classes, height * width});
    for (int64_t y0 = 0; y0 < height; y0 += rows) {
      const int64_t y1 = std::min(height, y0 + rows);
      at::Tensor out = image.narrow(1, y0 * width, (y1 - y0) * width);
      at::mm_out(out, probs, chain.rows(y0, y1, true).view({queries, -1}));
    }
  }
  return scores;
}

std::tuple<at::Tensor, at::Tensor> semantic_labels_host(
    const at::Tensor& cls_logits, const at::Tensor& mask_logits, at::IntArrayRef input_size,
    at::IntArrayRef crop, at::IntArrayRef output_size, bool flip_horizontal, bool flip_vertical,
    bool align_corners, ResampleFn resample, int64_t block_elements) {
  const char* op = "semantic_labels";
  check_mask_logits(op, mask_logits, 3);
  check_class_logits(op, cls_logits, mask_logits);
  const Geometry g = make_geometry(op, input_size, crop, output_size, flip_horizontal,
                                   flip_vertical, align_corners);
  const at::NoTF32Guard full_float32;
  const at::ScalarType acc = compute_dtype(mask_logits);
  const int64_t queries = mask_logits.size(0), num_classes = cls_logits.size(1) - 1;
  const at::Tensor probs = class_probabilities(cls_logits, acc);
  const auto options = mask_logits.options();
  at::Tensor labels = at::empty({g.out_h, g.out_w}, options.dtype(at::kLong));
  at::Tensor best = at::empty({g.out_h, g.out_w}, options.dtype(acc));
  const RowChain chain(mask_logits, g, acc, resample);
  const int64_t rows = block_rows(chain, num_classes, g, block_elements);
  for (int64_t y0 = 0; y0 < g.out_h; y0 += rows) {
    const int64_t y1 = std::min(g.out_h, y0 + rows);
    // (pixels, K): the arg-max then reduces contiguous rows, several times faster on the CPU
    // than reducing the strided K dimension of a (K, pixels) block.
    const at::Tensor scores = at::mm(chain.rows(y0, y1, true).view({queries, -1}).t(), probs.t());
    // max returns the first of equal maxima, as torch.argmax does.
    const auto [value, index] = at::max(scores, 1);
    labels.view(-1).narrow(0, y0 * g.out_w, (y1 - y0) * g.out_w).copy_(index);
    best.view(-1).narrow(0, y0 * g.out_w, (y1 - y0) * g.out_w).copy_(value);
  }
  return {labels, best};
}

std::tuple<at::Tensor, at::Tensor, at::Tensor> panoptic_assignment_host(
    const at::Tensor& mask_logits, const at::Tensor& scores, at::IntArrayRef input_size,
    at::IntArrayRef crop, at::IntArrayRef output_size, bool flip_horizontal, bool flip_vertical,
    bool align_corners, ResampleFn resample, int64_t block_elements) {
  const char* op = "panoptic_assignment";
  check_mask_logits(op, mask_logits, 3);
  const int64_t queries = mask_logits.size(0);
  TORCH_CHECK(scores.dim() == 1 && scores.size(0) == queries &&
                  at::isFloatingType(scores.scalar_type()),
              op, ": scores must be a floating (Q,) = (", queries, ",) tensor, got ",
              scores.scalar_type(), " ", scores.sizes());
  TORCH_CHECK(scores.device() == mask_logits.device(), op, ": scores are on ", scores.device(),
              " but mask_logits are on ", mask_logits.device());
  const Geometry g = make_geometry(op, input_size, crop, output_size, flip_horizontal,
                                   flip_vertical, align_corners);
  const at::ScalarType acc = compute_dtype(mask_logits);
  const auto options = mask_logits.options().dtype(at::kLong);
  at::Tensor owner = at::empty({g.out_h, g.out_w}, options);
  at::Tensor won = at::zeros({queries}, options);
  at::Tensor area = at::zeros({queries}, options);
  const at::Tensor weights = scores.to(acc).unsqueeze(1);
  const RowChain chain(mask_logits, g, acc, resample);
  const int64_t rows = block_rows(chain, queries + 2, g, block_elements);
  for (int64_t y0 = 0; y0 < g.out_h; y0 += rows) {
    const int64_t y1 = std::min(g.out_h, y0 + rows);
    at::Tensor probs = chain.rows(y0, y1, false).view({queries, -1}).sigmoid_();
    area.add_((probs >= 0.5).sum(1));
    // score * sigmoid: the reference's product, whose arg-max is the first of equal maxima.
    const at::Tensor index = std::get<1>(at::max(probs.mul_(weights), 0));
    owner.view(-1).narrow(0, y0 * g.out_w, (y1 - y0) * g.out_w).copy_(index);
    won.add_(at::bincount(index, {}, queries));
  }
  return {owner, won, area};
}

}  // namespace ops
}  // namespace mmseg_maskformer
