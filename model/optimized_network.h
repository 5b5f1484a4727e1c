#pragma once
// The inference-only form of a loaded network, rewritten exactly at load time (the
// checkpoint and the module tree are not changed):
//  - every BatchNorm folded into the convolution next to it where the algebra is exact
//    (after: stem, depthwise convs; before: the unpadded 2x2 downsample convs); only the
//    backbone's last norm, followed by a padded conv, stays a per-channel affine;
//  - channels-last (N, H, W, C) activations end to end: 1x1 convs are GEMMs on the
//    (N*H*W, C) view, the patchify convs GEMMs on non-overlapping patches, depthwise
//    convs a hand-vectorised NHWC kernel on CPU;
//  - where the head's last layer upsamples, the final 1x1 conv runs before that bilinear
//    upsample (linear maps commute with it) and the upsample moves into the fused
//    soft-argmax decoder, which never materialises the heatmap volume.
// Precision bf16 on a CPU with native bf16 (AVX512_BF16): the 1x1 convs and patch GEMMs
// (nearly all multiply-adds) take bf16 inputs and weights and accumulate in fp32; the
// activations between layers, depthwise convs, norms and the decoder stay fp32.
// OptimizedNetwork::supports says where this class applies at all.
// Internal to model/ (LibTorch types).
#include <torch/torch.h>

#include <vector>

#include "model/architecture.h"
#include "model/network_modules.h"

namespace cnp::model {

class OptimizedNetwork {
 public:
  // Whether the optimized network runs `dtype` on `device` (fp32 anywhere; fp16/bf16 on CUDA;
  // bf16 on CPUs with AVX512_BF16). Elsewhere the straightforward network runs.
  static bool supports(const torch::Device& device, torch::ScalarType dtype);

  // `net`: the fp32 CPU network in eval mode, weights final.
  OptimizedNetwork(NetworkImpl& net, const Architecture& arch, torch::Device device,
                   torch::ScalarType dtype);

  // n x 3 x 256 x 256 (NCHW) -> backbone features (N, H, W, C).
  torch::Tensor backbone(const torch::Tensor& input) const;
  // Backbone features -> heatmap logits (N, h, w, J*D), before the decoder's upsample.
  torch::Tensor head(const torch::Tensor& features) const;
  // Logits -> (N, J, 3) float32 soft-argmax coordinates in heatmap units.
  torch::Tensor decode(const torch::Tensor& logits) const;

 private:
  struct Linear {               // y = x W^T + b on the (rows, Cin) view
    torch::Tensor weight;       // (Cout, Cin)
    torch::Tensor bias;         // (Cout)
    torch::Tensor packed;       // weight packed for kernels::gemm_bias, where it is used
    torch::Tensor packed_bf16;  // ... for kernels::gemm_bias_bf16 (precision bf16 on CPU)
  };
  struct Depthwise {
    torch::Tensor weight_khwc;  // (K, K, C) for the CPU kernel
    torch::Tensor weight_oihw;  // (C, 1, K, K) for LibTorch elsewhere
    torch::Tensor bias;
    int kernel = 0;
  };
  struct Block {
    Depthwise dw;
    Linear pw1, pw2;
  };
  struct HeadLayer {
    Depthwise dw;
    Linear pw;
    bool upsample = false;
  };

  // out (m, n) = act(a (m, k) W^T + b (+ residual, laid out as out; may be out)) with the
  // layer's packed kernel, in parallel.
  void gemm(const float* a, int64_t m, int64_t k, const Linear& layer, float* out,
            const float* residual, bool relu) const;
  // Rows [row_begin, row_end) of the same, in the calling thread (CPU kernels only).
  void gemm_rows(const float* a, int64_t k, const Linear& layer, float* out, const float* residual,
                 bool relu, int64_t row_begin, int64_t row_end) const;
  torch::Tensor linear(const torch::Tensor& x, const Linear& layer, bool relu) const;
  // second(relu(first(dw(x)))) (+ x when residual), or relu(first(dw(x))) without second,
  // tile by tile in cache (CPU kernels only); returns a new tensor.
  torch::Tensor fused_rows(const torch::Tensor& x, const Depthwise& dw, const Linear& first,
                           const Linear* second, bool residual) const;
  // x += hidden W^T + b, in place (the block's residual).
  void linear_residual(torch::Tensor& x, const torch::Tensor& hidden, const Linear& layer) const;
  torch::Tensor patchify(const torch::Tensor& x_nhwc, int patch, const Linear& layer) const;
  torch::Tensor stem_patches(const torch::Tensor& image_nchw) const;
  torch::Tensor depthwise(const torch::Tensor& x, const Depthwise& layer) const;
  Linear to_target(Linear layer) const;
  Depthwise to_target(Depthwise layer) const;

  Architecture arch_;
  torch::Device device_;
  bool bf16_gemm_;           // bf16 on a CPU with AVX512_BF16: bf16 GEMMs, everything else fp32
  torch::ScalarType dtype_;  // of the activations
  bool cpu_kernels_;         // fp32 on CPU: the hand-written depthwise kernel
  bool cpu_gemm_;            // ... and the hand-written GEMM (AVX2 CPUs)
  bool fused_;  // CPU with hand-written GEMMs (fp32 or bf16): fused_rows for blocks and head
  Linear stem_;
  std::vector<Linear> downsample_;  // stages 1..3, input BatchNorm folded in
  std::vector<std::vector<Block>> stages_;
  torch::Tensor final_scale_, final_shift_;  // backbone.norm as an affine
  std::vector<HeadLayer> head_;
  Linear final_layer_;
  bool upsample_in_decoder_ = false;
};

}  // namespace cnp::model
