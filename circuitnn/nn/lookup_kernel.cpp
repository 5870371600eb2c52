// circuitnn's compiled CPU lookup (circuitnn/nn/kernel.py builds it; circuitnn/nn/interp.py calls
// it): the row index and the gather of circuitnn.nn.interp.lookup fused into one pass over the
// input, split over torch's intra-op threads. Every step is the torch path's, in the same float
// arithmetic, so the rows (and the lookup's values and gradients) are bit for bit the same:
//   t = x·scale, t = t + (shift + 1), NaN → 0, clamp to [0, points], row = trunc(t) + offset.
// Each element's (intercept, slope) pair is read from the float32 table of lines and written to two
// contiguous float32 planes (the multiply-add and its backward then read contiguous slopes).

#include <ATen/Parallel.h>
#include <ATen/core/Tensor.h>
#include <ATen/ops/empty.h>
#include <torch/library.h>

#include <algorithm>
#include <cstdint>

namespace {

at::Tensor gather_lines(const at::Tensor& x, const at::Tensor& lines, const at::Tensor& offsets,
                        int64_t points, double scale, double shift) {
  TORCH_CHECK(x.device().is_cpu() && lines.device().is_cpu() && offsets.device().is_cpu(),
              "gather_lines: CPU tensors only");
  TORCH_CHECK(x.scalar_type() == at::kFloat, "gather_lines: x must be float32, got ",
              x.scalar_type());
  TORCH_CHECK(lines.scalar_type() == at::kFloat && lines.dim() == 2 && lines.size(1) == 2 &&
                  lines.is_contiguous(),
              "gather_lines: the table must be a contiguous float32 tensor of (intercept, slope) "
              "rows");
  TORCH_CHECK(offsets.scalar_type() == at::kInt, "gather_lines: offsets must be int32");
  const int64_t width = offsets.numel();
  TORCH_CHECK(width > 0 && x.numel() % width == 0,
              "gather_lines: x's size must be a multiple of the offsets' (", width, ")");
  TORCH_CHECK(points >= 1, "gather_lines: points must be at least 1");
  const at::Tensor xs = x.contiguous();
  const at::Tensor starts = offsets.contiguous();
  const int32_t* row0 = starts.data_ptr<int32_t>();
  const auto [low, high] = std::minmax_element(row0, row0 + width);
  TORCH_CHECK(*low >= 0 && *high + points < lines.size(0),
              "gather_lines: the offsets reach outside the table");
  const int64_t count = xs.numel();
  at::Tensor out = at::empty({2, count}, lines.options());
  const float* in = xs.data_ptr<float>();
  const float* table = lines.data_ptr<float>();
  float* intercepts = out.data_ptr<float>();
  float* slopes = intercepts + count;
  const float factor = static_cast<float>(scale);
  const float add = static_cast<float>(shift + 1.0);
  const float top = static_cast<float>(points);
  const int64_t rows = count / width;
  const int64_t grain = std::max<int64_t>(1, 32768 / width);  // at::internal::GRAIN_SIZE
  at::parallel_for(0, rows, grain, [&](int64_t begin, int64_t end) {
    for (int64_t r = begin; r < end; ++r) {
      const int64_t first = r * width;
      const float* xr = in + first;
      for (int64_t j = 0; j < width; ++j) {
        float t = xr[j] * factor;
        t = t + add;
        t = (t == t) ? t : 0.0f;
        t = t < 0.0f ? 0.0f : (t > top ? top : t);
        const float* line = table + 2 * static_cast<int64_t>(static_cast<int32_t>(t) + row0[j]);
        intercepts[first + j] = line[0];
        slopes[first + j] = line[1];
      }
    }
  });
  return out;
}

}  // namespace

TORCH_LIBRARY(circuitnn, m) {
  m.def("gather_lines(Tensor x, Tensor lines, Tensor offsets, int points, float scale, "
        "float shift) -> Tensor",
        &gather_lines);
}
