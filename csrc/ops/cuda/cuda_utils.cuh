// Launch and reduction helpers shared by the CUDA kernels.
#pragma once

#include <ATen/cuda/CUDAContext.h>
#include <c10/cuda/CUDAException.h>
#include <c10/cuda/CUDAGuard.h>

#include <algorithm>
#include <cstdint>

namespace mmseg_maskformer {
namespace ops {

constexpr int kThreads = 256;

// Grid for a grid-stride loop over n items: enough blocks to fill the GPU several times over,
// never more than needed.
inline unsigned int grid_size(int64_t n) {
  const int64_t max_blocks =
      static_cast<int64_t>(at::cuda::getCurrentDeviceProperties()->multiProcessorCount) * 32;
  return static_cast<unsigned int>(
      std::max<int64_t>(1, std::min((n + kThreads - 1) / kThreads, max_blocks)));
}

// 64-bit grid-stride loop.
#define MMSEG_CUDA_KERNEL_LOOP(i, n)                                                     \
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < (n); \
       i += static_cast<int64_t>(blockDim.x) * gridDim.x)

template <typename T>
__device__ inline T warp_sum(T v) {
  for (int offset = 16; offset > 0; offset >>= 1) v += __shfl_down_sync(0xffffffffu, v, offset);
  return v;
}

// Sums each of v[0..kCount) over the block (blockDim.x == kThreads); thread 0 gets the totals.
// A fixed tree, so the result is deterministic.
template <typename T, int kCount>
__device__ inline void block_sum(T (&v)[kCount]) {
  __shared__ T partial[kCount][kThreads / 32];
  const int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
#pragma unroll
  for (int k = 0; k < kCount; ++k) {
    v[k] = warp_sum(v[k]);
    if (lane == 0) partial[k][warp] = v[k];
  }
  __syncthreads();
  if (warp == 0) {
#pragma unroll
    for (int k = 0; k < kCount; ++k) {
      v[k] = warp_sum(lane < kThreads / 32 ? partial[k][lane] : T(0));
    }
  }
}

}  // namespace ops
}  // namespace mmseg_maskformer
