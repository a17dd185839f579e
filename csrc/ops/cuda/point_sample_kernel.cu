#include <torch/library.h>

#include <ATen/cuda/Atomic.cuh>

#include "../ops.h"
#include "../philox.h"
#include "cuda_utils.cuh"

namespace mmseg_maskformer {
namespace ops {
namespace {

// One thread per output element, points fastest: neighbouring threads write neighbouring
// outputs. Corner weights are recomputed per channel, which is cheaper than staging them.
template <typename scalar_t, typename acc_t, typename out_t>
__global__ void point_sample_kernel(const scalar_t* inputs, int64_t sn, int64_t sc, int64_t sy,
                                    int64_t sx, int64_t channels, int64_t height, int64_t width,
                                    const acc_t* points, int64_t num_points, bool align_corners,
                                    out_t* output, int64_t total) {
  MMSEG_CUDA_KERNEL_LOOP(i, total) {
    const int64_t p = i % num_points, n = i / (channels * num_points);
    const int64_t c = i / num_points % channels;
    const acc_t* xy = points + 2 * (n * num_points + p);
    const GridCorners<acc_t> g(xy[0], xy[1], height, width, align_corners);
    output[i] = static_cast<out_t>(g.sample(inputs + n * sn + c * sc, sy, sx, height, width));
  }
}

// Scatters into an acc_t gradient with atomics, as grid_sample's backward does: float32 for
// half and bfloat16 inputs, rounded once afterwards, since accumulating many contributions with
// half-precision atomics loses most of them. The order of the atomics varies from run to run.
template <typename scalar_t, typename acc_t>
__global__ void point_sample_backward_kernel(const scalar_t* grad_output, int64_t gn, int64_t gc,
                                             int64_t gp, int64_t channels, int64_t height,
                                             int64_t width, const acc_t* points, int64_t num_points,
                                             bool align_corners, acc_t* grad_input,
                                             int64_t total) {
  MMSEG_CUDA_KERNEL_LOOP(i, total) {
    const int64_t p = i % num_points, n = i / (channels * num_points);
    const int64_t c = i / num_points % channels;
    const acc_t g = static_cast<acc_t>(grad_output[n * gn + c * gc + p * gp]);
    const acc_t* xy = points + 2 * (n * num_points + p);
    acc_t* plane = grad_input + (n * channels + c) * height * width;
    GridCorners<acc_t>(xy[0], xy[1], height, width, align_corners)
        .for_each_corner(height, width, [&](int64_t y, int64_t x, acc_t weight) {
          gpuAtomicAddNoReturn(plane + y * width + x, weight * g);
        });
  }
}

at::Tensor point_sample_cuda(const at::Tensor& inputs, const at::Tensor& points,
                             bool align_corners) {
  const at::Tensor src = check_point_sample_args(inputs, points);
  const c10::cuda::CUDAGuard device_guard(inputs.device());
  const int64_t channels = inputs.size(1), num_points = points.size(1);
  at::Tensor output = at::empty({inputs.size(0), channels, num_points},
                                inputs.options().dtype(point_sample_dtype(inputs)));
  const int64_t total = output.numel();
  if (total == 0) return output;
  const at::Tensor coords = points.to(compute_dtype(inputs)).contiguous();
  AT_DISPATCH_FLOATING_TYPES_AND3(
      at::kHalf, at::kBFloat16, at::kByte, src.scalar_type(), "point_sample_cuda", [&] {
        using acc_t = sample_acc_t<scalar_t>;
        using out_t = sample_out_t<scalar_t>;
        point_sample_kernel<scalar_t, acc_t, out_t>
            <<<grid_size(total), kThreads, 0, at::cuda::getCurrentCUDAStream()>>>(
                src.const_data_ptr<scalar_t>(), src.stride(0), src.stride(1), src.stride(2),
                src.stride(3), channels, src.size(2), src.size(3), coords.const_data_ptr<acc_t>(),
                num_points, align_corners, output.mutable_data_ptr<out_t>(), total);
        C10_CUDA_KERNEL_LAUNCH_CHECK();
      });
  return output;
}

at::Tensor point_sample_backward_cuda(const at::Tensor& grad_output, const at::Tensor& points,
                                      int64_t height, int64_t width, bool align_corners) {
  check_point_sample_backward_args(grad_output, points, height, width);
  const c10::cuda::CUDAGuard device_guard(grad_output.device());
  const int64_t channels = grad_output.size(1), num_points = grad_output.size(2);
  const at::ScalarType acc = compute_dtype(grad_output);
  at::Tensor grad_input =
      at::zeros({grad_output.size(0), channels, height, width}, grad_output.options().dtype(acc));
  const int64_t total = grad_output.numel();
  if (total > 0) {
    at::globalContext().alertNotDeterministic("point_sample_backward_cuda");
    const at::Tensor coords = points.to(acc).contiguous();
    AT_DISPATCH_FLOATING_TYPES_AND2(
        at::kHalf, at::kBFloat16, grad_output.scalar_type(), "point_sample_backward_cuda", [&] {
          using acc_t = sample_acc_t<scalar_t>;
          point_sample_backward_kernel<scalar_t, acc_t>
              <<<grid_size(total), kThreads, 0, at::cuda::getCurrentCUDAStream()>>>(
                  grad_output.const_data_ptr<scalar_t>(), grad_output.stride(0),
                  grad_output.stride(1), grad_output.stride(2), channels, height, width,
                  coords.const_data_ptr<acc_t>(), num_points, align_corners,
                  grad_input.mutable_data_ptr<acc_t>(), total);
          C10_CUDA_KERNEL_LAUNCH_CHECK();
        });
  }
  return grad_input.to(grad_output.scalar_type());
}

// The reference's topk + gather: on a GPU they are single fast kernels already (the CPU op
// exists because the CPU topk needs a sort buffer and separate passes).
at::Tensor select_uncertain_points_cuda(const at::Tensor& candidate_logits,
                                        const at::Tensor& candidates, int64_t num_uncertain) {
  check_select_uncertain_points_args(candidate_logits, candidates, num_uncertain);
  const at::Tensor index = std::get<1>(at::topk(candidate_logits.abs().neg(), num_uncertain,
                                                /*dim=*/1, /*largest=*/true, /*sorted=*/false));
  return at::gather(candidates, 1, index.unsqueeze(-1).expand({-1, -1, 2}));
}


// One thread per Philox counter of the candidate stream, i.e. per two candidates (words x0 y0 x1
// y1, philox.h): draws them and samples the mask's logits there.
template <typename scalar_t, typename acc_t>
__global__ void uncertain_candidates_kernel(const scalar_t* logits, int64_t sn, int64_t sy,
                                            int64_t sx, int64_t height, int64_t width,
                                            const int64_t* seed, int64_t num_candidates,
                                            float* candidates, acc_t* values, int64_t total) {
  const PhiloxKey key(*seed);
  const int64_t pairs = (num_candidates + 1) / 2;
  MMSEG_CUDA_KERNEL_LOOP(i, total) {
    const int64_t n = i / pairs, pair = i % pairs;
    uint32_t c[4];
    philox_block(key, static_cast<uint32_t>(pair), static_cast<uint32_t>(n), kCandidateStream, c);
    for (int k = 0; k < 2 && 2 * pair + k < num_candidates; ++k) {
      const int64_t index = n * num_candidates + 2 * pair + k;
      const float x = uniform_from_bits(c[2 * k]), y = uniform_from_bits(c[2 * k + 1]);
      candidates[2 * index] = x;
      candidates[2 * index + 1] = y;
      // Ranked as point_sample returns them, rounded to the logits' type.
      values[index] = static_cast<scalar_t>(GridCorners<acc_t>(x, y, height, width, false)
                                                .sample(logits + n * sn, sy, sx, height, width));
    }
  }
}

// One thread per Philox counter of a stream: words [0, words) of each mask, written from
// out + n * row_stride.
__global__ void uniform_words_kernel(const int64_t* seed, uint32_t stream, int64_t words,
                                     float* out, int64_t row_stride, int64_t total) {
  const PhiloxKey key(*seed);
  const int64_t blocks = (words + 3) / 4;
  MMSEG_CUDA_KERNEL_LOOP(i, total) {
    const int64_t n = i / blocks, block = i % blocks;
    uint32_t c[4];
    philox_block(key, static_cast<uint32_t>(block), static_cast<uint32_t>(n), stream, c);
    for (int w = 0; w < 4 && 4 * block + w < words; ++w) {
      out[n * row_stride + 4 * block + w] = uniform_from_bits(c[w]);
    }
  }
}

// The candidates are drawn and sampled in one kernel, selected with topk (select_uncertain_points)
// and the uniform points drawn by a second kernel; the seed stays on the device.
at::Tensor sample_uncertain_points_cuda(const at::Tensor& mask_logits, const at::Tensor& seed,
                                        int64_t num_points, int64_t num_candidates,
                                        int64_t num_uncertain) {
  check_sample_uncertain_points_args(mask_logits, seed, num_points, num_candidates,
                                     num_uncertain);
  const c10::cuda::CUDAGuard device_guard(mask_logits.device());
  const int64_t num_masks = mask_logits.size(0);
  at::Tensor output =
      at::empty({num_masks, num_points, 2}, mask_logits.options().dtype(at::kFloat));
  if (num_masks == 0) return output;
  const auto stream = at::cuda::getCurrentCUDAStream();
  if (num_uncertain > 0) {
    at::Tensor candidates = at::empty({num_masks, num_candidates, 2}, output.options());
    at::Tensor values =
        at::empty({num_masks, num_candidates}, output.options().dtype(compute_dtype(mask_logits)));
    const int64_t total = num_masks * ((num_candidates + 1) / 2);
    AT_DISPATCH_FLOATING_TYPES_AND2(
        at::kHalf, at::kBFloat16, mask_logits.scalar_type(), "sample_uncertain_points_cuda", [&] {
          using acc_t = sample_acc_t<scalar_t>;
          uncertain_candidates_kernel<scalar_t, acc_t><<<grid_size(total), kThreads, 0, stream>>>(
              mask_logits.const_data_ptr<scalar_t>(), mask_logits.stride(0),
              mask_logits.stride(1), mask_logits.stride(2), mask_logits.size(1),
              mask_logits.size(2), seed.const_data_ptr<int64_t>(), num_candidates,
              candidates.mutable_data_ptr<float>(), values.mutable_data_ptr<acc_t>(), total);
          C10_CUDA_KERNEL_LAUNCH_CHECK();
        });
    output.narrow(1, 0, num_uncertain)
        .copy_(select_uncertain_points_cuda(values, candidates, num_uncertain));
  }
  const int64_t words = 2 * (num_points - num_uncertain);
  if (words > 0) {
    const int64_t total = num_masks * ((words + 3) / 4);
    uniform_words_kernel<<<grid_size(total), kThreads, 0, stream>>>(
        seed.const_data_ptr<int64_t>(), kRandomPointStream, words,
        output.mutable_data_ptr<float>() + 2 * num_uncertain, 2 * num_points, total);
    C10_CUDA_KERNEL_LAUNCH_CHECK();
  }
  return output;
}

}  // namespace

TORCH_LIBRARY_IMPL(mmseg_maskformer, CUDA, m) {
  m.impl("point_sample", TORCH_FN(point_sample_cuda));
  m.impl("point_sample_backward", TORCH_FN(point_sample_backward_cuda));
  m.impl("select_uncertain_points", TORCH_FN(select_uncertain_points_cuda));
  m.impl("sample_uncertain_points", TORCH_FN(sample_uncertain_points_cuda));
}

}  // namespace ops
}  // namespace mmseg_maskformer
