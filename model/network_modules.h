#pragma once
// The ConvNeXtPose module tree in LibTorch (REFERENCE.md §1): the straightforward network
// whose parameters are the checkpoint's tensors. Internal to model/ (includes
// <torch/torch.h>): pose_model.cpp owns it, optimized_network.cpp reads its weights.
#include <torch/torch.h>

#include "model/architecture.h"

namespace cnp::model {

namespace nn = torch::nn;

// Module names below equal the training code's, so named parameters/buffers are the
// (remapped) checkpoint keys one for one. Head layers use the named scheme
// head.deconv_layers_K.{dwconv,norm,pwconv}; remap.cpp rewrites the other schemes.

struct BlockImpl : nn::Module {
  explicit BlockImpl(int64_t dim)
      : dwconv(nn::Conv2dOptions(dim, dim, 7).padding(3).groups(dim)),
        norm(dim),
        pwconv1(nn::Conv2dOptions(dim, 4 * dim, 1)),
        pwconv2(nn::Conv2dOptions(4 * dim, dim, 1)) {
    register_module("dwconv", dwconv);
    register_module("norm", norm);
    register_module("pwconv1", pwconv1);
    register_module("pwconv2", pwconv2);
  }
  torch::Tensor forward(const torch::Tensor& x) {
    return x + pwconv2(torch::relu(pwconv1(norm(dwconv(x)))));
  }
  nn::Conv2d dwconv;
  nn::BatchNorm2d norm;
  nn::Conv2d pwconv1, pwconv2;
};
TORCH_MODULE(Block);

struct BackboneImpl : nn::Module {
  explicit BackboneImpl(const Architecture& arch) {
    const auto& d = arch.dims;
    auto downsample = register_module("downsample_layers", nn::ModuleList());
    auto stages = register_module("stages", nn::ModuleList());
    for (int i = 0; i < 4; ++i) {
      nn::Sequential layer;
      if (i == 0) {
        layer->push_back(nn::Conv2d(nn::Conv2dOptions(3, d[0], 4).stride(4)));
        layer->push_back(nn::BatchNorm2d(d[0]));
      } else {
        layer->push_back(nn::BatchNorm2d(d[i - 1]));
        layer->push_back(nn::Conv2d(nn::Conv2dOptions(d[i - 1], d[i], 2).stride(2)));
      }
      downsample->push_back(layer);
      downsample_.push_back(layer);
      nn::Sequential stage;
      for (int j = 0; j < arch.depths[i]; ++j) stage->push_back(Block(d[i]));
      stages->push_back(stage);
      stages_.push_back(stage);
    }
    norm = register_module("norm", nn::BatchNorm2d(d[3]));
  }
  torch::Tensor forward(torch::Tensor x) {
    for (size_t i = 0; i < 4; ++i) x = stages_[i]->forward(downsample_[i]->forward(x));
    return norm(x);
  }
  std::vector<nn::Sequential> downsample_, stages_;
  nn::BatchNorm2d norm{nullptr};
};
TORCH_MODULE(Backbone);

struct DeconvImpl : nn::Module {
  DeconvImpl(int64_t cin, int64_t cout, bool upsample)
      : dwconv(nn::Conv2dOptions(cin, cin, 3).padding(1).groups(cin)),
        norm(cin),
        pwconv(nn::Conv2dOptions(cin, cout, 1)),
        upsample(upsample) {
    register_module("dwconv", dwconv);
    register_module("norm", norm);
    register_module("pwconv", pwconv);
  }
  torch::Tensor forward(const torch::Tensor& input) {
    torch::Tensor x = torch::relu(pwconv(norm(dwconv(input))));
    if (!upsample) return x;
    // PyTorch's UpsamplingBilinear2d(scale_factor=2): bilinear, align_corners=True.
    return nn::functional::interpolate(x,
                                       nn::functional::InterpolateFuncOptions()
                                           .size(std::vector<int64_t>{2 * x.size(2), 2 * x.size(3)})
                                           .mode(torch::kBilinear)
                                           .align_corners(true));
  }
  nn::Conv2d dwconv;
  nn::BatchNorm2d norm;
  nn::Conv2d pwconv;
  bool upsample;
};
TORCH_MODULE(Deconv);

struct HeadImpl : nn::Module {
  explicit HeadImpl(const Architecture& arch) {
    int64_t cin = arch.dims[3];
    for (int k = 0; k < 3; ++k) {
      layers_.push_back(register_module("deconv_layers_" + std::to_string(k + 1),
                                        Deconv(cin, arch.head_channels, arch.head_upsample[k])));
      cin = arch.head_channels;
    }
    final_layer = register_module(
        "final_layer", nn::Conv2d(nn::Conv2dOptions(arch.head_channels,
                                                    int64_t{arch.joints} * arch.depth_dim, 1)));
  }
  torch::Tensor forward(torch::Tensor x) {
    for (auto& layer : layers_) x = layer->forward(x);
    return final_layer(x);
  }
  std::vector<Deconv> layers_;
  nn::Conv2d final_layer{nullptr};
};
TORCH_MODULE(Head);

struct NetworkImpl : nn::Module {
  explicit NetworkImpl(const Architecture& arch)
      : backbone(register_module("backbone", Backbone(arch))),
        head(register_module("head", Head(arch))) {}
  torch::Tensor forward(const torch::Tensor& x) { return head->forward(backbone->forward(x)); }
  Backbone backbone;
  Head head;
};
TORCH_MODULE(Network);

}  // namespace cnp::model
