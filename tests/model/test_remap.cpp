// Each key remapping rule, including the ConvNeXt-V2 MinkowskiEngine kernel reshape
// on small examples with hand-derived expected values.
#include <gtest/gtest.h>

#include <cstring>

#include "common/error.h"
#include "model/remap.h"

using namespace cnp::model;

namespace {

TensorData floats(std::vector<int64_t> shape, std::vector<float> values) {
  TensorData t;
  t.dtype = DType::Float32;
  t.shape = std::move(shape);
  t.bytes.resize(values.size() * sizeof(float));
  std::memcpy(t.bytes.data(), values.data(), t.bytes.size());
  return t;
}

std::vector<float> values_of(const TensorData& t) {
  std::vector<float> v(t.bytes.size() / sizeof(float));
  std::memcpy(v.data(), t.bytes.data(), t.bytes.size());
  return v;
}

TensorData zeros(std::vector<int64_t> shape) {
  int64_t n = 1;
  for (auto s : shape) n *= s;
  return floats(std::move(shape), std::vector<float>(n, 0.f));
}

// Remaps one key and returns the new name.
std::string remap_one(const std::string& key, std::vector<int64_t> shape = {4}) {
  NamedTensors in;
  in.emplace_back(key, zeros(std::move(shape)));
  return remap_keys(in).at(0).first;
}

}  // namespace

TEST(Remap, RulesAreNamedAndDescribed) {
  const auto& rules = default_remap_rules();
  ASSERT_GE(rules.size(), 8u);
  for (const auto& rule : rules) {
    EXPECT_FALSE(rule.name.empty());
    EXPECT_FALSE(rule.description.empty());
  }
  EXPECT_NE(rules.front().name.find("module."), std::string::npos);
}

TEST(Remap, StripsDataParallelPrefix) {
  EXPECT_EQ(remap_one("module.backbone.norm.weight"), "backbone.norm.weight");
  EXPECT_EQ(remap_one("module.module.head.final_layer.bias"), "head.final_layer.bias");
  EXPECT_EQ(remap_one("backbone.norm.weight"), "backbone.norm.weight");
  // Only a leading 'module.' is a wrapper.
  EXPECT_EQ(remap_one("backbone.module.x"), "backbone.module.x");
}

TEST(Remap, HeadSequentialIndicesBecomeNames) {
  EXPECT_EQ(remap_one("module.head.deconv_layers_1.0.weight", {256, 1, 3, 3}),
            "head.deconv_layers_1.dwconv.weight");
  EXPECT_EQ(remap_one("head.deconv_layers_2.1.running_var"),
            "head.deconv_layers_2.norm.running_var");
  EXPECT_EQ(remap_one("head.deconv_layers_3.2.bias"), "head.deconv_layers_3.pwconv.bias");
  // The canonical named scheme is left alone.
  EXPECT_EQ(remap_one("head.deconv_layers_3.pwconv.bias"), "head.deconv_layers_3.pwconv.bias");
}

TEST(Remap, HeadModuleListIndexIsLayerPlusOne) {
  EXPECT_EQ(remap_one("module.head.deconv_layers.0.0.weight", {384, 1, 3, 3}),
            "head.deconv_layers_1.dwconv.weight");
  EXPECT_EQ(remap_one("head.deconv_layers.1.1.num_batches_tracked"),
            "head.deconv_layers_2.norm.num_batches_tracked");
  EXPECT_EQ(remap_one("head.deconv_layers.2.2.weight", {256, 256, 1, 1}),
            "head.deconv_layers_3.pwconv.weight");
  EXPECT_EQ(remap_one("head.deconv_layers.2.norm.bias"), "head.deconv_layers_3.norm.bias");
}

TEST(Remap, ConvNeXtV2NameParts) {
  EXPECT_EQ(remap_one("encoder.stages.0.1.dwconv.bias"), "backbone.stages.0.1.dwconv.bias");
  EXPECT_EQ(remap_one("encoder.downsample_layers.1.0.ln.weight"),
            "backbone.downsample_layers.1.0.weight");
  EXPECT_EQ(remap_one("encoder.stages.2.0.norm.ln.bias"), "backbone.stages.2.0.norm.bias");
  NamedTensors in;
  in.emplace_back("encoder.stages.1.2.pwconv1.linear.weight", zeros({8, 2}));
  in.emplace_back("encoder.stages.1.2.grn.gamma", zeros({1, 8}));
  in.emplace_back("encoder.stages.1.2.grn.beta", zeros({1, 8}));
  in.emplace_back("encoder.downsample_layers.1.1.bias", zeros({1, 8}));
  const NamedTensors out = remap_keys(in);
  // MinkowskiLinear -> a 1x1 conv weight.
  EXPECT_EQ(out[0].first, "backbone.stages.1.2.pwconv1.weight");
  EXPECT_EQ(out[0].second.shape, (std::vector<int64_t>{8, 2, 1, 1}));
  // GRN parameters take the dense ConvNeXt-V2 layout (1, 1, 1, C).
  EXPECT_EQ(out[1].first, "backbone.stages.1.2.grn.gamma");
  EXPECT_EQ(out[1].second.shape, (std::vector<int64_t>{1, 1, 1, 8}));
  EXPECT_EQ(out[2].second.shape, (std::vector<int64_t>{1, 1, 1, 8}));
  // Minkowski biases (1, C) -> (C).
  EXPECT_EQ(out[3].first, "backbone.downsample_layers.1.1.bias");
  EXPECT_EQ(out[3].second.shape, (std::vector<int64_t>{8}));
}

// Standard conv kernel (volume 4, in 1, out 2) with kernel[r][0][o] = 10 r + o.
// weight[o][0][h][w] = kernel[w * 2 + h][0][o], so weight[0] = [[0, 20], [10, 30]].
TEST(Remap, MinkowskiStandardKernelReshape) {
  NamedTensors in;
  in.emplace_back("encoder.downsample_layers.2.1.kernel",
                  floats({4, 1, 2}, {0, 1, 10, 11, 20, 21, 30, 31}));
  const NamedTensors out = remap_keys(in);
  EXPECT_EQ(out[0].first, "backbone.downsample_layers.2.1.weight");
  EXPECT_EQ(out[0].second.shape, (std::vector<int64_t>{2, 1, 2, 2}));
  EXPECT_EQ(values_of(out[0].second), (std::vector<float>{0, 20, 10, 30, 1, 21, 11, 31}));
}

// A 2-input kernel: kernel[r][i][o] = 100 r + 10 i + o (volume 4, in 2, out 1).
TEST(Remap, MinkowskiStandardKernelKeepsInputChannels) {
  NamedTensors in;
  in.emplace_back("x.kernel", floats({4, 2, 1}, {0, 10, 100, 110, 200, 210, 300, 310}));
  const NamedTensors out = remap_keys(in);
  EXPECT_EQ(out[0].second.shape, (std::vector<int64_t>{1, 2, 2, 2}));
  EXPECT_EQ(values_of(out[0].second), (std::vector<float>{0, 200, 100, 300, 10, 210, 110, 310}));
}

// Depthwise kernel (volume 4, channels 3) with kernel[r][c] = 10 r + c.
TEST(Remap, MinkowskiDepthwiseKernelReshape) {
  NamedTensors in;
  in.emplace_back("encoder.stages.0.0.dwconv.kernel",
                  floats({4, 3}, {0, 1, 2, 10, 11, 12, 20, 21, 22, 30, 31, 32}));
  const NamedTensors out = remap_keys(in);
  EXPECT_EQ(out[0].first, "backbone.stages.0.0.dwconv.weight");
  EXPECT_EQ(out[0].second.shape, (std::vector<int64_t>{3, 1, 2, 2}));
  EXPECT_EQ(values_of(out[0].second),
            (std::vector<float>{0, 20, 10, 30, 1, 21, 11, 31, 2, 22, 12, 32}));
}

TEST(Remap, MinkowskiKernelWithNonSquareVolumeFails) {
  NamedTensors in;
  in.emplace_back("encoder.stages.0.0.dwconv.kernel", zeros({5, 3}));
  try {
    remap_keys(in);
    FAIL() << "kernel volume 5 accepted";
  } catch (const cnp::Error& e) {
    EXPECT_NE(std::string(e.what()).find("encoder.stages.0.0.dwconv.kernel"), std::string::npos)
        << e.what();
  }
}

TEST(Remap, CollisionsAreErrors) {
  NamedTensors in;
  in.emplace_back("module.head.deconv_layers_1.0.weight", zeros({4}));
  in.emplace_back("head.deconv_layers_1.dwconv.weight", zeros({4}));
  try {
    remap_keys(in);
    FAIL() << "collision accepted";
  } catch (const cnp::Error& e) {
    const std::string what = e.what();
    EXPECT_NE(what.find("module.head.deconv_layers_1.0.weight"), std::string::npos) << what;
    EXPECT_NE(what.find("head.deconv_layers_1.dwconv.weight"), std::string::npos) << what;
  }
}

TEST(Remap, KeepsOrderAndValues) {
  NamedTensors in;
  in.emplace_back("module.b", floats({2}, {1, 2}));
  in.emplace_back("module.a", floats({1}, {3}));
  const NamedTensors out = remap_keys(in);
  ASSERT_EQ(out.size(), 2u);
  EXPECT_EQ(out[0].first, "b");
  EXPECT_EQ(out[1].first, "a");
  EXPECT_EQ(values_of(out[0].second), (std::vector<float>{1, 2}));
}
