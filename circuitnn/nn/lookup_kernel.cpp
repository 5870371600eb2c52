// circuitnn's compiled CPU lookup (circuitnn/nn/kernel.py builds it; circuitnn/nn/interp.py calls
// it): circuitnn.nn.interp.lookup fused into one pass over the input, split over torch's intra-op
// threads. Every step is the torch path's, in the same float arithmetic, so the rows, the values
// and the gradients are bit for bit the same:
//   t = x·scale, t = t + (shift + 1), NaN → 0, clamp to [0, points], row = trunc(t) + offset,
//   y = x·slope, then y = y + intercept (two roundings: built with -ffp-contract=off).
// Where the input needs a gradient, the pass also writes each element's slope, and the backward is
// one multiply, grad·slope (itself differentiable in grad); otherwise it writes the output only.

#include <ATen/Parallel.h>
#include <ATen/core/Tensor.h>
#include <ATen/ops/empty_like.h>
#include <torch/autograd.h>
#include <torch/library.h>

#include <algorithm>
#include <cstdint>

namespace {

// One row of x (width elements, one per neuron) on its lines: y = x·slope + intercept, and the
// slopes where asked for. Restrict pointers and no branch on WithSlopes let the compiler
// vectorise the row computation.
template <bool WithSlopes>
void fill_row(const float* __restrict in, const float* __restrict table,
              const int32_t* __restrict row0, float* __restrict out, float* __restrict slopes,
              int64_t width, float factor, float add, float top) {
  for (int64_t j = 0; j < width; ++j) {
    const float v = in[j];
    float t = v * factor;
    t = t + add;
    t = (t == t) ? t : 0.0f;
    t = t < 0.0f ? 0.0f : (t > top ? top : t);
    const int64_t row = static_cast<int64_t>(static_cast<int32_t>(t) + row0[j]);
    const float slope = table[2 * row + 1];
    const float product = v * slope;
    out[j] = product + table[2 * row];
    if constexpr (WithSlopes) {
      slopes[j] = slope;
    }
  }
}

// fill_row over every row of x, split over torch's threads (slopes: null, or x's size).
void fill(const at::Tensor& x, const at::Tensor& lines, const at::Tensor& offsets, int64_t points,
          double scale, double shift, at::Tensor& y, float* slopes) {
  const int64_t width = offsets.numel();
  const float* in = x.data_ptr<float>();
  const float* table = lines.data_ptr<float>();
  const int32_t* row0 = offsets.data_ptr<int32_t>();
  float* out = y.data_ptr<float>();
  const float factor = static_cast<float>(scale);
  const float add = static_cast<float>(shift + 1.0);
  const float top = static_cast<float>(points);
  const int64_t grain = std::max<int64_t>(1, 32768 / width);  // at::internal::GRAIN_SIZE
  at::parallel_for(0, x.numel() / width, grain, [&](int64_t begin, int64_t end) {
    for (int64_t r = begin; r < end; ++r) {
      const int64_t first = r * width;
      if (slopes != nullptr) {
        fill_row<true>(in + first, table, row0, out + first, slopes + first, width, factor, add,
                       top);
      } else {
        fill_row<false>(in + first, table, row0, out + first, nullptr, width, factor, add, top);
      }
    }
  });
}

// The inputs' checks (offsets contiguous by now).
void check(const at::Tensor& x, const at::Tensor& lines, const at::Tensor& offsets,
           int64_t points) {
  TORCH_CHECK(x.device().is_cpu() && lines.device().is_cpu() && offsets.device().is_cpu(),
              "lookup: CPU tensors only");
  TORCH_CHECK(x.scalar_type() == at::kFloat, "lookup: x must be float32, got ", x.scalar_type());
  TORCH_CHECK(lines.scalar_type() == at::kFloat && lines.dim() == 2 && lines.size(1) == 2 &&
                  lines.is_contiguous(),
              "lookup: the table must be a contiguous float32 tensor of (intercept, slope) rows");
  TORCH_CHECK(offsets.scalar_type() == at::kInt, "lookup: offsets must be int32");
  const int64_t width = offsets.numel();
  TORCH_CHECK(width > 0 && x.numel() % width == 0,
              "lookup: x's size must be a multiple of the offsets' (", width, ")");
  TORCH_CHECK(points >= 1, "lookup: points must be at least 1");
  const int32_t* row0 = offsets.data_ptr<int32_t>();
  const auto [low, high] = std::minmax_element(row0, row0 + width);
  TORCH_CHECK(*low >= 0 && *high + points < lines.size(0),
              "lookup: the offsets reach outside the table");
}

struct Lookup : public torch::autograd::Function<Lookup> {
  static at::Tensor forward(torch::autograd::AutogradContext* ctx, const at::Tensor& x,
                            const at::Tensor& lines, const at::Tensor& offsets, int64_t points,
                            double scale, double shift) {
    const at::Tensor xs = x.contiguous();
    at::Tensor y = at::empty_like(xs);
    at::Tensor slopes = at::empty_like(xs);
    fill(xs, lines, offsets, points, scale, shift, y, slopes.data_ptr<float>());
    ctx->save_for_backward({slopes});
    return y;
  }

  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grads) {
    const at::Tensor slopes = ctx->get_saved_variables()[0];
    return {grads[0].mul(slopes), at::Tensor(), at::Tensor(),
            at::Tensor(),         at::Tensor(), at::Tensor()};
  }
};

at::Tensor lookup(const at::Tensor& x, const at::Tensor& lines, const at::Tensor& offsets,
                  int64_t points, double scale, double shift) {
  const at::Tensor starts = offsets.contiguous();
  check(x, lines, starts, points);
  if (x.requires_grad() && at::GradMode::is_enabled()) {
    return Lookup::apply(x, lines, starts, points, scale, shift);
  }
  const at::Tensor xs = x.contiguous();
  at::Tensor y = at::empty_like(xs);
  fill(xs, lines, starts, points, scale, shift, y, nullptr);
  return y;
}

}  // namespace

TORCH_LIBRARY(circuitnn, m) {
  m.def("lookup(Tensor x, Tensor lines, Tensor offsets, int points, float scale, float shift) "
        "-> Tensor");
  m.impl("lookup", c10::DispatchKey::CompositeImplicitAutograd, &lookup);
}
