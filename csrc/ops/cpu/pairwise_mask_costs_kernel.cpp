#include <ATen/Parallel.h>
#include <torch/library.h>

#include <algorithm>
#include <vector>

#include "../ops.h"
#include "vectorized.h"

namespace mmseg_maskformer {
namespace ops {
namespace {

// Elementwise work is exp/log-bound, so chunks much smaller than ATen's default grain pay off.
constexpr int64_t kGrain = 2048;

#if MMSEG_MASKFORMER_VEC
MMSEG_VEC_BEGIN

// write_cost_terms for whole logit rows, vectorised (see vectorized.h).
template <typename scalar_t, typename T>
void cost_terms_vec(const MaskView<const scalar_t>& logits, int64_t num_queries,
                    const FocalParams<T>& fp, T* terms) {
  using V = Vec<T>;
  const int64_t h = logits.height, w = logits.width;
  const int64_t block = num_queries * h * w;
  const int64_t rows_per_grain = std::max<int64_t>(1, kGrain / w);
  at::parallel_for(0, num_queries * h, rows_per_grain, [&](int64_t begin, int64_t end) {
    std::vector<T> row_buffer(w);
    for (int64_t row = begin; row < end; ++row) {
      const int64_t q = row / h, y = row % h;
      const T* x_row = row_as(logits.mask(q) + y * logits.sy, logits.sx, w, row_buffer.data());
      T* out = terms + row * w;
      for_each_vec<T>(w, [&](int64_t x, auto count) {
        const CostTerms<V> c(V::loadu(x_row + x, count), fp);
        (c.pos - c.neg).store(out + x, count);
        c.p.store(out + block + x, count);
        c.neg.store(out + 2 * block + x, count);
      });
    }
  });
}

MMSEG_VEC_END
#endif

// The (3Q, K) blocks [pos - neg; p; neg] of finish_pairwise_costs.
template <typename scalar_t, typename acc_t>
void cost_terms(const MaskView<const scalar_t>& logits, int64_t num_queries,
                const FocalParams<acc_t>& fp, acc_t* terms) {
#if MMSEG_MASKFORMER_VEC
  if (vectorized_cpu()) {
    cost_terms_vec(logits, num_queries, fp, terms);
    return;
  }
#endif
  const int64_t block = num_queries * logits.height * logits.width;
  at::parallel_for(0, block, kGrain, [&](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i) write_cost_terms(logits, fp, i, block, terms);
  });
}

// nearest_target a row at a time: each row looks its source row and columns up once.
template <typename acc_t, typename target_t>
void nearest_targets(const MaskView<const target_t>& targets, int64_t num_targets, int64_t h,
                     int64_t w, acc_t* dense) {
  std::vector<int64_t> columns(w);
  for (int64_t x = 0; x < w; ++x) columns[x] = nearest_index(x, targets.width, w) * targets.sx;
  const int64_t rows_per_grain = std::max<int64_t>(1, kGrain / w);
  at::parallel_for(0, num_targets * h, rows_per_grain, [&](int64_t begin, int64_t end) {
    for (int64_t row = begin; row < end; ++row) {
      const int64_t m = row / h, y = row % h;
      const target_t* src = targets.mask(m) + nearest_index(y, targets.height, h) * targets.sy;
      for (int64_t x = 0; x < w; ++x) dense[row * w + x] = static_cast<acc_t>(src[columns[x]]);
    }
  });
}

std::tuple<at::Tensor, at::Tensor> pairwise_mask_costs_cpu(
    const at::Tensor& mask_logits, const at::Tensor& targets, double alpha, double gamma,
    double eps, const std::optional<at::Tensor>& valid) {
  const MaskArgs args = mask_args(mask_logits, targets, valid, "pairwise_mask_costs", false);
  const int64_t num_queries = args.logits.size(0), num_targets = args.targets.size(0);
  const int64_t h = args.logits.size(1), w = args.logits.size(2);
  const int64_t num_points = h * w;
  const auto options = mask_logits.options().dtype(args.acc);
  at::Tensor terms = at::empty({3 * num_queries, num_points}, options);
  at::Tensor dense_targets = at::empty({num_targets, num_points}, options);
  // The valid map is resized like one more target.
  at::Tensor dense_valid = args.valid.defined() ? at::empty({num_points}, options) : at::Tensor();

  AT_DISPATCH_FLOATING_TYPES_AND2(
      at::kHalf, at::kBFloat16, args.logits.scalar_type(), "pairwise_mask_costs_cpu", [&] {
        using acc_t = at::opmath_type<scalar_t>;
        const FocalParams<acc_t> fp{static_cast<acc_t>(alpha), static_cast<acc_t>(gamma)};
        cost_terms(mask_view<const scalar_t>(args.logits), num_queries, fp,
                   terms.mutable_data_ptr<acc_t>());
        dispatch_target_type<acc_t>(args.targets, [&](auto target) {
          nearest_targets(mask_view<const typename decltype(target)::type>(args.targets),
                          num_targets, h, w, dense_targets.mutable_data_ptr<acc_t>());
        });
        if (dense_valid.defined()) {
          dispatch_target_type<acc_t>(args.valid, [&](auto type) {
            nearest_targets(mask_view<const typename decltype(type)::type>(args.valid), 1, h, w,
                            dense_valid.mutable_data_ptr<acc_t>());
          });
        }
      });
  return finish_pairwise_costs(terms, dense_targets, dense_valid, eps);
}

}  // namespace

TORCH_LIBRARY_IMPL(mmseg_maskformer, CPU, m) {
  m.impl("pairwise_mask_costs", TORCH_FN(pairwise_mask_costs_cpu));
}

}  // namespace ops
}  // namespace mmseg_maskformer
