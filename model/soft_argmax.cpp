#include "model/soft_argmax.h"

#include <ATen/Parallel.h>

#include <algorithm>

#include "common/error.h"
#include "model/inference_kernels.h"
#include "model/parallel_tiles.h"
#ifdef CNP_HAVE_CUDA_DECODER
#include "model/cuda/soft_argmax_cuda.h"
#endif

namespace cnp::model {

torch::Tensor soft_argmax_reference(const torch::Tensor& logits, int64_t joints, int64_t depth) {
  const int64_t n = logits.size(0), h = logits.size(2), w = logits.size(3);
  // float64: a float32 softmax over 64^3 voxels normalises with a relative error of
  // ~3e-5, i.e. up to ~3e-3 heatmap units at coordinates near 60.
  auto prob = logits.to(torch::kDouble)
                  .reshape({n, joints, depth * h * w})
                  .softmax(2)
                  .view({n, joints, depth, h, w});
  auto opts = prob.options();
  auto x = (prob.sum({2, 3}) * torch::arange(w, opts)).sum(2);
  auto y = (prob.sum({2, 4}) * torch::arange(h, opts)).sum(2);
  auto z = (prob.sum({3, 4}) * torch::arange(depth, opts)).sum(2);
  return torch::stack({x, y, z}, 2).to(torch::kFloat);
}

bool fused_soft_argmax_has_cuda() {
#ifdef CNP_HAVE_CUDA_DECODER
  return true;
#else
  return false;
#endif
}

torch::Tensor fused_soft_argmax(const torch::Tensor& logits_nhwc, int64_t joints, int64_t depth,
                                bool upsample2x) {
  if (logits_nhwc.dim() != 4 || logits_nhwc.size(3) != joints * depth)
    throw Error("fused_soft_argmax: expected (N, H, W, " + std::to_string(joints * depth) +
                ") logits");
  const torch::Tensor logits = logits_nhwc.to(torch::kFloat).contiguous();
  const int64_t n = logits.size(0), h = logits.size(1), w = logits.size(2);
  auto out = torch::empty({n, joints, 3}, logits.options());
  if (logits.is_cpu()) {
    const float* data = logits.data_ptr<float>();
    float* result = out.data_ptr<float>();
    // Tasks of whole samples where there are enough of them (a sample's joints read its logits
    // together, see soft_argmax_items), else of a few joints each.
    const int64_t tasks_wanted = 4 * std::max(1, at::get_num_threads());
    const int64_t grain = std::clamp<int64_t>(n * joints / tasks_wanted, 1, joints);
    parallel_tiles(n * joints, grain, [&](int64_t begin, int64_t end) {
      kernels::soft_argmax_nhwc(data, joints, depth, h, w, upsample2x, result, begin, end);
    });
    return out;
  }
#ifdef CNP_HAVE_CUDA_DECODER
  if (logits.is_cuda()) {
    const int status = cnp_soft_argmax_nhwc_cuda(logits.data_ptr<float>(), n, joints, depth, h, w,
                                                 upsample2x ? 1 : 0, out.data_ptr<float>(),
                                                 logits.device().index(), nullptr);
    if (status != 0)
      throw Error(std::string("CUDA soft-argmax failed: ") + cnp_soft_argmax_cuda_error(status));
    return out;
  }
#endif
  torch::Tensor nchw = logits.permute({0, 3, 1, 2});
  if (upsample2x)
    nchw = torch::nn::functional::interpolate(nchw, torch::nn::functional::InterpolateFuncOptions()
                                                        .size(std::vector<int64_t>{2 * h, 2 * w})
                                                        .mode(torch::kBilinear)
                                                        .align_corners(true));
  return soft_argmax_reference(nchw, joints, depth);
}

}  // namespace cnp::model
