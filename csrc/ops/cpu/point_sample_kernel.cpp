#include <ATen/Parallel.h>
#include <torch/library.h>

#include "../ops.h"

namespace mmseg_maskformer {
namespace ops {
namespace {

at::Tensor point_sample_cpu(const at::Tensor& inputs, const at::Tensor& points,
                            bool align_corners) {
  check_point_sample_args(inputs, points);
  const int64_t batch = inputs.size(0), channels = inputs.size(1);
  const int64_t height = inputs.size(2), width = inputs.size(3);
  const int64_t num_points = points.size(1);
  at::Tensor output = at::empty({batch, channels, num_points}, inputs.options());
  const at::Tensor coords = points.to(compute_dtype(inputs)).contiguous();

  AT_DISPATCH_FLOATING_TYPES_AND2(
      at::kHalf, at::kBFloat16, inputs.scalar_type(), "point_sample_cpu", [&] {
        using acc_t = at::opmath_type<scalar_t>;
        const scalar_t* in = inputs.const_data_ptr<scalar_t>();
        const acc_t* xy = coords.const_data_ptr<acc_t>();
        scalar_t* out = output.mutable_data_ptr<scalar_t>();
        const int64_t sn = inputs.stride(0), sc = inputs.stride(1);
        const int64_t sy = inputs.stride(2), sx = inputs.stride(3);
        // One task per point: its corners and weights are computed once for all channels.
        const int64_t grain = std::max<int64_t>(1, 4096 / std::max<int64_t>(channels, 1));
        at::parallel_for(0, batch * num_points, grain, [&](int64_t begin, int64_t end) {
          for (int64_t i = begin; i < end; ++i) {
            const int64_t n = i / num_points, p = i % num_points;
            const GridCorners<acc_t> g(xy[2 * i], xy[2 * i + 1], height, width, align_corners);
            for (int64_t c = 0; c < channels; ++c) {
              out[(n * channels + c) * num_points + p] =
                  static_cast<scalar_t>(g.sample(in + n * sn + c * sc, sy, sx, height, width));
            }
          }
        });
      });
  return output;
}

at::Tensor point_sample_backward_cpu(const at::Tensor& grad_output, const at::Tensor& points,
                                     int64_t height, int64_t width, bool align_corners) {
  TORCH_CHECK(grad_output.dim() == 3 && grad_output.size(0) == points.size(0) &&
                  grad_output.size(2) == points.size(1),
              "point_sample_backward: grad_output must be (N, C, P) for (N, P, 2) points, got ",
              grad_output.sizes(), " and ", points.sizes());
  const int64_t batch = grad_output.size(0), channels = grad_output.size(1);
  const int64_t num_points = grad_output.size(2);
  // Accumulated in place in the input dtype: no full-size float32 scratch for half inputs.
  at::Tensor grad_input = at::zeros({batch, channels, height, width}, grad_output.options());
  const at::Tensor coords = points.to(compute_dtype(grad_output)).contiguous();

  AT_DISPATCH_FLOATING_TYPES_AND2(
      at::kHalf, at::kBFloat16, grad_output.scalar_type(), "point_sample_backward_cpu", [&] {
        using acc_t = at::opmath_type<scalar_t>;
        const scalar_t* go = grad_output.const_data_ptr<scalar_t>();
        const acc_t* xy = coords.const_data_ptr<acc_t>();
        scalar_t* gi = grad_input.mutable_data_ptr<scalar_t>();
        const int64_t sn = grad_output.stride(0), sc = grad_output.stride(1);
        const int64_t sp = grad_output.stride(2);
        // One task per (n, c) plane, so the scatter of overlapping points never races.
        at::parallel_for(0, batch * channels, 1, [&](int64_t begin, int64_t end) {
          for (int64_t i = begin; i < end; ++i) {
            const int64_t n = i / channels, c = i % channels;
            scalar_t* plane = gi + i * height * width;
            for (int64_t p = 0; p < num_points; ++p) {
              const acc_t* pt = xy + 2 * (n * num_points + p);
              const acc_t g = static_cast<acc_t>(go[n * sn + c * sc + p * sp]);
              GridCorners<acc_t>(pt[0], pt[1], height, width, align_corners)
                  .for_each_corner(height, width, [&](int64_t y, int64_t x, acc_t weight) {
                    scalar_t& dst = plane[y * width + x];
                    dst = static_cast<scalar_t>(static_cast<acc_t>(dst) + weight * g);
                  });
            }
          }
        });
      });
  return grad_input;
}

}  // namespace

TORCH_LIBRARY_IMPL(mmseg_maskformer, CPU, m) {
  m.impl("point_sample", TORCH_FN(point_sample_cpu));
  m.impl("point_sample_backward", TORCH_FN(point_sample_backward_cpu));
}

}  // namespace ops
}  // namespace mmseg_maskformer
