#include "model/optimized_network.h"

#include <ATen/Parallel.h>

#include <cstring>

#include "model/inference_kernels.h"
#include "model/parallel_tiles.h"
#include "model/soft_argmax.h"

namespace cnp::model {

namespace {

// Eval-mode BatchNorm as y = scale * x + shift, in float64 for the folding.
struct Affine {
  torch::Tensor scale, shift;
};

Affine affine_of(nn::BatchNorm2dImpl& bn) {
  auto var = bn.running_var.to(torch::kDouble);
  auto scale = bn.weight.to(torch::kDouble) / (var + bn.options.eps()).sqrt();
  auto shift = bn.bias.to(torch::kDouble) - bn.running_mean.to(torch::kDouble) * scale;
  return {scale, shift};
}

torch::Tensor as_double(const torch::Tensor& t) {
  return t.detach().to(torch::kDouble);
}

}  // namespace

bool OptimizedNetwork::supports(const torch::Device& device, torch::ScalarType dtype) {
  return device.is_cuda() || dtype == torch::kFloat ||
         (dtype == torch::kBFloat16 && kernels::gemm_bf16_available());
}

OptimizedNetwork::OptimizedNetwork(NetworkImpl& net, const Architecture& arch, torch::Device device,
                                   torch::ScalarType dtype)
    : arch_(arch),
      device_(device),
      // bf16 on a CPU with native bf16: fp32 activations, bf16 GEMMs (see the header).
      bf16_gemm_(device.is_cpu() && dtype == torch::kBFloat16 && kernels::gemm_bf16_available()),
      dtype_(bf16_gemm_ ? torch::kFloat : dtype),
      cpu_kernels_(device.is_cpu() && dtype_ == torch::kFloat),
      cpu_gemm_(cpu_kernels_ && !bf16_gemm_ && kernels::gemm_available()),
      fused_(device.is_cpu() && (cpu_gemm_ || bf16_gemm_)) {
  kernels::check_isa_setting();
  torch::NoGradGuard no_grad;
  auto& backbone = *net.backbone;

  // conv(W, b) then BN: W' = W * s[out], b' = b * s + t.
  auto conv_then_bn = [](nn::Conv2dImpl& conv, nn::BatchNorm2dImpl& bn, Linear& out_linear) {
    const Affine a = affine_of(bn);
    auto w = as_double(conv.weight);
    out_linear.weight = (w * a.scale.view({-1, 1, 1, 1})).flatten(1);
    out_linear.bias = as_double(conv.bias) * a.scale + a.shift;
  };
  // Depthwise conv then BN, weights as (K, K, C) and (C, 1, K, K).
  auto depthwise_then_bn = [](nn::Conv2dImpl& conv, nn::BatchNorm2dImpl& bn) {
    const Affine a = affine_of(bn);
    Depthwise d;
    d.kernel = static_cast<int>(conv.weight.size(2));
    d.weight_oihw = as_double(conv.weight) * a.scale.view({-1, 1, 1, 1});
    d.weight_khwc = d.weight_oihw.squeeze(1).permute({1, 2, 0}).contiguous();
    d.bias = as_double(conv.bias) * a.scale + a.shift;
    return d;
  };
  auto pointwise = [](nn::Conv2dImpl& conv) {
    Linear layer;
    layer.weight = as_double(conv.weight).flatten(1);
    layer.bias = as_double(conv.bias);
    return layer;
  };

  // Stem: 4x4/4 conv then BN. Patches are flattened as (cin, ky, kx): the weight's order.
  conv_then_bn(*backbone.downsample_[0]->ptr(0)->as<nn::Conv2dImpl>(),
               *backbone.downsample_[0]->ptr(1)->as<nn::BatchNorm2dImpl>(), stem_);
  stem_ = to_target(stem_);

  // BN then an unpadded 2x2/2 conv: conv(W, b)(s x + t) = conv(W s[in])(x) + b + sum W t.
  // Patches of the NHWC tensor are flattened as (ky, kx, cin).
  for (int i = 1; i < 4; ++i) {
    const Affine a = affine_of(*backbone.downsample_[i]->ptr(0)->as<nn::BatchNorm2dImpl>());
    auto& conv = *backbone.downsample_[i]->ptr(1)->as<nn::Conv2dImpl>();
    auto w = as_double(conv.weight);
    Linear layer;
    layer.bias = as_double(conv.bias) + (w * a.shift.view({1, -1, 1, 1})).sum({1, 2, 3});
    layer.weight = (w * a.scale.view({1, -1, 1, 1})).permute({0, 2, 3, 1}).flatten(1);
    downsample_.push_back(to_target(layer));
  }

  stages_.resize(4);
  for (int i = 0; i < 4; ++i) {
    for (size_t j = 0; j < backbone.stages_[i]->size(); ++j) {
      auto& block = *backbone.stages_[i]->ptr(j)->as<BlockImpl>();
      Block b;
      b.dw = to_target(depthwise_then_bn(*block.dwconv, *block.norm));
      b.pw1 = to_target(pointwise(*block.pwconv1));
      b.pw2 = to_target(pointwise(*block.pwconv2));
      stages_[i].push_back(std::move(b));
    }
  }
  // backbone.norm is followed by the head's zero-padded 3x3 conv: folding it there would
  // be wrong at the borders, so it stays an affine.
  const Affine last = affine_of(*backbone.norm);
  final_scale_ = last.scale.to(device_, dtype_);
  final_shift_ = last.shift.to(device_, dtype_);

  auto& head = *net.head;
  for (auto& layer : head.layers_) {
    HeadLayer h;
    h.dw = to_target(depthwise_then_bn(*layer->dwconv, *layer->norm));
    h.pw = to_target(pointwise(*layer->pwconv));
    h.upsample = layer->upsample;
    head_.push_back(std::move(h));
  }
  // On a GPU in bf16/fp16 the logits come from an fp32 1x1 conv, so that the softmax over 64^3
  // voxels sees no logit rounding of its own (a bf16 logit near 80 is off by up to 0.25). On an
  // H100 this changed the bf16 error little (M: max 5.24 -> 5.38 heatmap units): the backbone's
  // 16-bit rounding dominates (docs/gpu.md).
  final_layer_ = pointwise(*head.final_layer);
  if (dtype_ == torch::kFloat) {
    final_layer_ = to_target(std::move(final_layer_));
  } else {
    final_layer_.weight = final_layer_.weight.to(device_, torch::kFloat).contiguous();
    final_layer_.bias = final_layer_.bias.to(device_, torch::kFloat).contiguous();
  }
  upsample_in_decoder_ = head_.back().upsample;
}

OptimizedNetwork::Linear OptimizedNetwork::to_target(Linear layer) const {
  layer.weight = layer.weight.to(device_, dtype_).contiguous();
  layer.bias = layer.bias.to(device_, dtype_).contiguous();
  const int64_t n = layer.weight.size(0), k = layer.weight.size(1);
  if (cpu_gemm_) {
    layer.packed = torch::empty({kernels::gemm_packed_size(n, k)}, torch::kFloat);
    kernels::pack_gemm_weights(layer.weight.data_ptr<float>(), n, k,
                               layer.packed.data_ptr<float>());
  }
  if (bf16_gemm_) {
    layer.packed_bf16 = torch::empty({kernels::gemm_bf16_packed_size(n, k)}, torch::kBFloat16);
    kernels::pack_gemm_weights_bf16(layer.weight.data_ptr<float>(), n, k,
                                    static_cast<uint16_t*>(layer.packed_bf16.data_ptr()));
  }
  return layer;
}

OptimizedNetwork::Depthwise OptimizedNetwork::to_target(Depthwise layer) const {
  layer.weight_khwc = layer.weight_khwc.to(device_, dtype_).contiguous();
  layer.weight_oihw = layer.weight_oihw.to(device_, dtype_).contiguous();
  layer.bias = layer.bias.to(device_, dtype_).contiguous();
  return layer;
}

namespace {
constexpr int64_t kGemmGrain = 96;  // rows per task: a multiple of the kernel's row blocks
}

void OptimizedNetwork::gemm(const float* a, int64_t m, int64_t k, const Linear& layer, float* out,
                            const float* residual, bool relu) const {
  parallel_tiles(m, kGemmGrain, [&](int64_t begin, int64_t end) {
    gemm_rows(a, k, layer, out, residual, relu, begin, end);
  });
}

void OptimizedNetwork::gemm_rows(const float* a, int64_t k, const Linear& layer, float* out,
                                 const float* residual, bool relu, int64_t row_begin,
                                 int64_t row_end) const {
  const int64_t n = layer.weight.size(0);
  const float* bias = layer.bias.data_ptr<float>();
  if (layer.packed_bf16.defined())
    kernels::gemm_bias_bf16(a, k, static_cast<const uint16_t*>(layer.packed_bf16.data_ptr()), n,
                            bias, out, residual, relu, row_begin, row_end);
  else
    kernels::gemm_bias(a, k, layer.packed.data_ptr<float>(), n, bias, out, residual, relu,
                       row_begin, row_end);
}

torch::Tensor OptimizedNetwork::linear(const torch::Tensor& x, const Linear& layer,
                                       bool relu) const {
  auto rows = x.view({-1, x.size(-1)});
  if (layer.packed.defined() || layer.packed_bf16.defined()) {
    auto shape = x.sizes().vec();
    shape.back() = layer.weight.size(0);
    auto out = torch::empty(shape, x.options());
    gemm(rows.data_ptr<float>(), rows.size(0), rows.size(1), layer, out.data_ptr<float>(), nullptr,
         relu);
    return out;
  }
  auto y = torch::addmm(layer.bias, rows, layer.weight.t());
  if (relu) y.relu_();
  auto shape = x.sizes().vec();
  shape.back() = layer.weight.size(0);
  return y.view(shape);
}

// Non-overlapping patch x patch conv on (N, H, W, C) as a GEMM on (ky, kx, c) patches.
torch::Tensor OptimizedNetwork::patchify(const torch::Tensor& x, int patch,
                                         const Linear& layer) const {
  const int64_t n = x.size(0), h = x.size(1) / patch, w = x.size(2) / patch, c = x.size(3);
  if (!cpu_kernels_) {
    auto patches = x.view({n, h, patch, w, patch, c})
                       .permute({0, 1, 3, 2, 4, 5})
                       .reshape({n, h, w, patch * patch * c});
    return linear(patches, layer, false);
  }
  // The same gather as rows of patch * c contiguous floats, in parallel (LibTorch's strided
  // copy of the permuted view took 4 ms of a 170 ms L batch).
  auto patches = torch::empty({n, h, w, patch * patch * c}, x.options());
  const float* src = x.data_ptr<float>();
  float* dst = patches.data_ptr<float>();
  const int64_t segment = patch * c, src_w = w * patch;
  parallel_tiles(n * h, 4, [&](int64_t begin, int64_t end) {
    for (int64_t row = begin; row < end; ++row)  // row = image * h + output y
      for (int64_t ox = 0; ox < w; ++ox)
        for (int64_t ky = 0; ky < patch; ++ky)
          std::memcpy(dst + ((row * w + ox) * patch + ky) * segment,
                      src + ((row * patch + ky) * src_w + ox * patch) * c, sizeof(float) * segment);
  });
  return linear(patches, layer, false);
}

// The stem's 4x4 patches straight from the NCHW input, flattened as (cin, ky, kx): (N, H/4,
// W/4, 48).
torch::Tensor OptimizedNetwork::stem_patches(const torch::Tensor& input) const {
  const int64_t n = input.size(0), side = input.size(2) / 4;
  // Any other shape fails in view() with LibTorch's message.
  if (!cpu_kernels_ || !input.is_contiguous() || input.size(1) != 3 || input.size(2) != 4 * side ||
      input.size(3) != 4 * side)
    return input.view({n, 3, side, 4, side, 4})
        .permute({0, 2, 4, 1, 3, 5})
        .reshape({n, side, side, 48});
  // The same gather by hand, in parallel, each patch written whole from its 12 input rows:
  // LibTorch's copy of the permuted view took 3.4 ms of a batch of 8 on 2 threads (3% of S's
  // forward, 5% of XS's).
  auto patches = torch::empty({n, side, side, 48}, input.options());
  const float* src = input.data_ptr<float>();
  float* dst = patches.data_ptr<float>();
  const int64_t in_w = side * 4;
  parallel_tiles(n * side, 4, [&](int64_t begin, int64_t end) {
    for (int64_t row = begin; row < end; ++row) {  // row = image * side + output y
      const int64_t image = row / side, oy = row % side;
      const float* in_rows[12];  // (c, ky): the 12 input rows of this row of patches
      for (int64_t j = 0; j < 12; ++j)
        in_rows[j] = src + ((image * 3 + j / 4) * in_w + oy * 4 + j % 4) * in_w;
      float* out = dst + row * side * 48;
      for (int64_t ox = 0; ox < side; ++ox, out += 48)
        for (int64_t j = 0; j < 12; ++j) std::memcpy(out + j * 4, in_rows[j] + ox * 4, 16);
    }
  });
  return patches;
}

torch::Tensor OptimizedNetwork::depthwise(const torch::Tensor& x, const Depthwise& layer) const {
  const int64_t n = x.size(0), h = x.size(1), w = x.size(2), c = x.size(3);
  if (cpu_kernels_) {
    auto out = torch::empty_like(x);
    const float* in = x.data_ptr<float>();
    const float* weight = layer.weight_khwc.data_ptr<float>();
    const float* bias = layer.bias.data_ptr<float>();
    float* result = out.data_ptr<float>();
    parallel_tiles(n * h, 2, [&](int64_t begin, int64_t end) {
      kernels::depthwise_conv_nhwc(in, weight, bias, result + begin * w * c, h, w, c, layer.kernel,
                                   false, begin, end);
    });
    return out;
  }
  // Elsewhere (CUDA, bf16): LibTorch's grouped conv on the channels-last view.
  auto y = torch::conv2d(x.permute({0, 3, 1, 2}), layer.weight_oihw, layer.bias, 1,
                         layer.kernel / 2, 1, c);
  return y.permute({0, 2, 3, 1}).contiguous();
}

// Each layer runs in parallel over its rows (parallel_tiles). An earlier split of the batch
// over threads, each running whole stages, made every thread allocate its activations in
// its own malloc arena; glibc unmaps such arenas' heaps when they empty, so every forward
// page-faulted them anew (M, 2 threads: 2.7x the page faults, +100 MB peak memory).
torch::Tensor OptimizedNetwork::backbone(const torch::Tensor& image) const {
  const torch::Tensor input = image.to(dtype_);  // bf16 images where the GEMMs are bf16
  torch::Tensor x = linear(stem_patches(input), stem_, false);
  for (int i = 0; i < 4; ++i) {
    if (i > 0) x = patchify(x, 2, downsample_[i - 1]);
    for (const Block& b : stages_[i]) {
      if (fused_) {
        x = fused_rows(x, b.dw, b.pw1, &b.pw2, true);
        continue;
      }
      auto hidden = linear(depthwise(x, b.dw), b.pw1, true);
      linear_residual(x, hidden, b.pw2);
    }
  }
  return x.mul_(final_scale_).add_(final_shift_);
}

// A depthwise conv and the one or two 1x1 convs after it, one tile of image rows at a time:
// the tile's depthwise output and hidden layer stay in this thread's cache instead of making a
// round trip through memory (for stage 0 of a batch of 8 the 4C-wide hidden layer alone is
// 25 MB). The same kernels in the same order per element as the layer-by-layer path, so the
// result is bit-identical. The output is a new tensor: later tiles' depthwise still reads
// this tile's input rows.
torch::Tensor OptimizedNetwork::fused_rows(const torch::Tensor& x, const Depthwise& dw,
                                           const Linear& first, const Linear* second,
                                           bool residual) const {
  const int64_t n = x.size(0), h = x.size(1), w = x.size(2), c = x.size(3);
  const int64_t first_c = first.weight.size(0);
  const int64_t out_c = second ? second->weight.size(0) : first_c;
  const int64_t hidden_c = second ? first_c : 0, rows = n * h;
  const int threads = at::in_parallel_region() ? 1 : at::get_num_threads();
  const int64_t tiles = balanced_parts(rows, kernels::fused_tile_rows(rows, w, threads), threads);
  auto out = torch::empty({n, h, w, out_c}, x.options());
  const float* in = x.data_ptr<float>();
  float* result = out.data_ptr<float>();
  const float* dw_weight = dw.weight_khwc.data_ptr<float>();
  const float* dw_bias = dw.bias.data_ptr<float>();
  parallel_parts(rows, tiles, [&](int64_t begin, int64_t end) {
    // Per-thread scratch that lives as long as the thread (OpenMP's pool): no allocation and
    // no page faults per tile.
    thread_local std::vector<float> scratch;
    const int64_t pixels = (end - begin) * w;
    if (static_cast<int64_t>(scratch.size()) < pixels * (c + hidden_c))
      scratch.resize(pixels * (c + hidden_c));
    float* dw_out = scratch.data();
    float* hidden = dw_out + pixels * c;
    float* tile_out = result + begin * w * out_c;
    kernels::depthwise_conv_nhwc(in, dw_weight, dw_bias, dw_out, h, w, c, dw.kernel, false, begin,
                                 end);
    if (!second) return gemm_rows(dw_out, c, first, tile_out, nullptr, true, 0, pixels);
    gemm_rows(dw_out, c, first, hidden, nullptr, true, 0, pixels);
    // The residual is read from the input rows in the GEMM's epilogue (out_c == c here).
    gemm_rows(hidden, hidden_c, *second, tile_out, residual ? in + begin * w * c : nullptr, false,
              0, pixels);
  });
  return out;
}

void OptimizedNetwork::linear_residual(torch::Tensor& x, const torch::Tensor& hidden,
                                       const Linear& layer) const {
  auto rows = x.view({-1, x.size(3)});
  auto hidden_rows = hidden.view({-1, hidden.size(3)});
  if (layer.packed.defined() || layer.packed_bf16.defined()) {
    gemm(hidden_rows.data_ptr<float>(), rows.size(0), hidden_rows.size(1), layer,
         rows.data_ptr<float>(), rows.data_ptr<float>(), false);
    return;
  }
  rows.add_(layer.bias);
  rows.addmm_(hidden_rows, layer.weight.t());
}

torch::Tensor OptimizedNetwork::head(const torch::Tensor& features) const {
  torch::Tensor x = features;
  for (size_t k = 0; k < head_.size(); ++k) {
    const HeadLayer& layer = head_[k];
    const bool last = k + 1 == head_.size();
    if (fused_ && last) return fused_rows(x, layer.dw, layer.pw, &final_layer_, false);
    x = fused_ ? fused_rows(x, layer.dw, layer.pw, nullptr, false)
               : linear(depthwise(x, layer.dw), layer.pw, true);
    if (layer.upsample && k + 1 < head_.size()) {
      // Bilinear x2 (align_corners=True) on the channels-last view: the result is
      // channels-last too, so the permute back is free.
      auto up = torch::nn::functional::interpolate(
          x.permute({0, 3, 1, 2}), torch::nn::functional::InterpolateFuncOptions()
                                       .size(std::vector<int64_t>{2 * x.size(1), 2 * x.size(2)})
                                       .mode(torch::kBilinear)
                                       .align_corners(true));
      x = up.permute({0, 2, 3, 1}).contiguous();
    }
  }
  return linear(x.to(final_layer_.weight.scalar_type()), final_layer_, false);
}

torch::Tensor OptimizedNetwork::decode(const torch::Tensor& logits) const {
  return fused_soft_argmax(logits, arch_.joints, arch_.depth_dim, upsample_in_decoder_);
}

}  // namespace cnp::model
