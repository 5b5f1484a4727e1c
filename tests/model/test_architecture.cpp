// Architecture arithmetic, the variant table and architecture inference from shapes.
#include <gtest/gtest.h>

#include <cmath>

#include "common/error.h"
#include "model/architecture.h"

using namespace cnp::model;

namespace {

// Shapes only: infer_architecture never reads tensor bytes.
TensorData shaped(std::vector<int64_t> shape) {
  TensorData t;
  t.shape = std::move(shape);
  return t;
}

// The state-dict shapes of `arch` (convs and BN weights only; enough for inference).
NamedTensors fake_state(const Architecture& arch) {
  NamedTensors s;
  const auto& d = arch.dims;
  s.emplace_back("backbone.downsample_layers.0.0.weight", shaped({d[0], 3, 4, 4}));
  for (int i = 1; i < 4; ++i)
    s.emplace_back("backbone.downsample_layers." + std::to_string(i) + ".1.weight",
                   shaped({d[i], d[i - 1], 2, 2}));
  for (int i = 0; i < 4; ++i)
    for (int j = 0; j < arch.depths[i]; ++j)
      s.emplace_back(
          "backbone.stages." + std::to_string(i) + "." + std::to_string(j) + ".norm.running_var",
          shaped({d[i]}));
  int cin = d[3];
  for (int k = 1; k <= 3; ++k) {
    s.emplace_back("head.deconv_layers_" + std::to_string(k) + ".pwconv.weight",
                   shaped({arch.head_channels, cin, 1, 1}));
    cin = arch.head_channels;
  }
  s.emplace_back("head.final_layer.weight",
                 shaped({int64_t{arch.joints} * arch.depth_dim, arch.head_channels, 1, 1}));
  return s;
}

double round_to(double value, int decimals) {
  const double scale = std::pow(10.0, decimals);
  return std::round(value * scale) / scale;
}

}  // namespace

TEST(Variants, ParametersAndMacsMatchThePaperTable) {
  const auto registry = VariantRegistry::with_builtins();
  struct Row {
    const char* name;
    double params_m, gmacs;
    int heatmap;
  };
  for (const Row& row : {Row{"XS", 3.53, 0.82, 32}, Row{"S", 7.44, 1.74, 32},
                         Row{"M", 7.59, 2.79, 64}, Row{"L", 8.38, 4.26, 64}}) {
    const Architecture& arch = registry.get(row.name).arch;
    EXPECT_DOUBLE_EQ(round_to(parameter_count(arch) / 1e6, 2), row.params_m) << row.name;
    EXPECT_DOUBLE_EQ(round_to(mac_count(arch, 256) / 1e9, 2), row.gmacs) << row.name;
    EXPECT_EQ(arch.heatmap_size(256), row.heatmap) << row.name;
    EXPECT_EQ(arch.joints, 18);
  }
  // MACs scale with the input area (all convs are spatial maps of the input).
  const Architecture& m = registry.get("M").arch;
  EXPECT_EQ(mac_count(m, 512), 4 * mac_count(m, 256));
}

TEST(Variants, OptimizedPathSavesTheFinalConvAtFullResolution) {
  const auto registry = VariantRegistry::with_builtins();
  // XS and S end without an upsample: nothing moves.
  for (const char* name : {"XS", "S"})
    EXPECT_EQ(optimized_mac_count(registry.get(name).arch), mac_count(registry.get(name).arch));
  // M and L: the 1x1 conv to 18 x 64 outputs runs at 32 x 32 instead of 64 x 64.
  for (const char* name : {"M", "L"}) {
    const Architecture& arch = registry.get(name).arch;
    const int64_t saved = int64_t{arch.head_channels} * 18 * 64 * (64 * 64 - 32 * 32);
    EXPECT_EQ(optimized_mac_count(arch), mac_count(arch) - saved) << name;
  }
  EXPECT_DOUBLE_EQ(round_to(optimized_mac_count(registry.get("L").arch) / 1e9, 2), 2.45);
}

TEST(Variants, TableFieldsAndPublishedResults) {
  const auto registry = VariantRegistry::with_builtins();
  ASSERT_EQ(registry.all().size(), 4u);
  const Variant& xs = registry.get("XS");
  EXPECT_EQ(xs.arch.depths, (std::array<int, 4>{2, 2, 6, 2}));
  EXPECT_EQ(xs.arch.dims, (std::array<int, 4>{40, 80, 160, 320}));
  EXPECT_EQ(xs.arch.head_upsample, (std::array<bool, 3>{true, true, false}));
  EXPECT_EQ(xs.arch.depth_dim, 32);
  EXPECT_DOUBLE_EQ(*xs.published_mpjpe, 56.61);
  EXPECT_FALSE(xs.published_pa_mpjpe.has_value());
  const Variant& l = registry.get("L");
  EXPECT_EQ(l.arch.head_channels, 512);
  EXPECT_EQ(l.arch.head_upsample, (std::array<bool, 3>{true, true, true}));
  EXPECT_DOUBLE_EQ(*l.published_mpjpe, 49.75);
  EXPECT_DOUBLE_EQ(*l.published_pa_mpjpe, 32.8);
  EXPECT_DOUBLE_EQ(*registry.get("M").published_pa_mpjpe, 34.5);
  EXPECT_DOUBLE_EQ(*registry.get("S").published_mpjpe, 51.80);
  EXPECT_TRUE(l.builtin);
}

TEST(Variants, RegistryAddsUserVariantsAndRejectsBadOnes) {
  auto registry = VariantRegistry::with_builtins();
  Variant wide;
  wide.name = "M-wide";
  wide.arch.depths = {3, 3, 27, 3};
  wide.arch.dims = {128, 256, 512, 1024};
  wide.arch.head_channels = 256;
  wide.arch.head_upsample = {true, true, true};
  wide.arch.depth_dim = 64;
  registry.add(wide);
  EXPECT_EQ(registry.get("M-wide").arch.dims[3], 1024);
  EXPECT_FALSE(registry.get("M-wide").builtin);
  // A bigger network has more parameters than M.
  EXPECT_GT(parameter_count(wide.arch), 10 * parameter_count(registry.get("M").arch));

  EXPECT_THROW(registry.add(wide), cnp::Error);
  try {
    registry.get("XL");
    FAIL() << "unknown variant accepted";
  } catch (const cnp::Error& e) {
    EXPECT_NE(std::string(e.what()).find("'XL'"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("M-wide"), std::string::npos) << e.what();
  }
  Variant broken = wide;
  broken.name = "broken";
  broken.arch.depth_dim = 0;
  try {
    registry.add(broken);
    FAIL() << "depth_dim 0 accepted";
  } catch (const cnp::Error& e) {
    EXPECT_NE(std::string(e.what()).find("variant 'broken'"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("depth_dim"), std::string::npos) << e.what();
  }
}

TEST(Variants, MatchingWithAndWithoutUpsample) {
  const auto registry = VariantRegistry::with_builtins();
  Architecture arch = registry.get("S").arch;
  ASSERT_EQ(registry.matching(arch).size(), 1u);
  EXPECT_EQ(registry.matching(arch)[0]->name, "S");
  arch.head_upsample = {true, true, true};  // S weights but 3-UP: no exact match
  EXPECT_TRUE(registry.matching(arch, true).empty());
  ASSERT_EQ(registry.matching(arch, false).size(), 1u);
  EXPECT_EQ(registry.matching(arch, false)[0]->name, "S");
}

TEST(Architecture, DescribeAndHeatmapSize) {
  Architecture arch = VariantRegistry::with_builtins().get("M").arch;
  EXPECT_EQ(arch.describe(),
            "depths 3,3,9,3 dims 48,96,192,384 head 256 ups T,T,T depth_dim 64 joints 18");
  EXPECT_EQ(arch.num_upsamples(), 3);
  arch.head_upsample = {false, true, false};
  EXPECT_EQ(arch.heatmap_size(256), 16);
  EXPECT_EQ(arch.heatmap_size(384), 24);
}

TEST(InferArchitecture, RecoversEveryBuiltinAndAUserVariant) {
  auto registry = VariantRegistry::with_builtins();
  for (const auto& v : registry.all()) {
    const auto inferred = infer_architecture(fake_state(v.arch), "fake.pth");
    EXPECT_EQ(inferred.arch, v.arch) << v.name << ": " << inferred.arch.describe();
    EXPECT_FALSE(inferred.upsample_known);
  }
  Architecture user;
  user.depths = {1, 2, 5, 1};
  user.dims = {16, 32, 64, 96};
  user.head_channels = 40;
  user.depth_dim = 16;
  user.head_upsample = {true, true, false};
  const auto inferred = infer_architecture(fake_state(user), "fake.pth");
  EXPECT_EQ(inferred.arch, user) << inferred.arch.describe();
}

TEST(InferArchitecture, JointsFallBackTo17AndOtherCountsFail) {
  Architecture arch = VariantRegistry::with_builtins().get("XS").arch;
  arch.joints = 17;
  arch.depth_dim = 64;  // 17 * 64 = 1088 is not a multiple of 18
  auto inferred = infer_architecture(fake_state(arch), "x.pth").arch;
  EXPECT_EQ(inferred.joints, 17);
  EXPECT_EQ(inferred.depth_dim, 64);
  EXPECT_EQ(inferred.head_upsample, (std::array<bool, 3>{true, true, true}));

  arch.joints = 1;
  arch.depth_dim = 19;
  try {
    infer_architecture(fake_state(arch), "odd.pth");
    FAIL() << "19 output channels accepted";
  } catch (const cnp::Error& e) {
    EXPECT_NE(std::string(e.what()).find("odd.pth"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("19 output channels"), std::string::npos) << e.what();
  }
}

TEST(InferArchitecture, MissingOrInconsistentTensorsAreNamed) {
  const Architecture arch = VariantRegistry::with_builtins().get("S").arch;
  NamedTensors state = fake_state(arch);
  state.erase(state.begin() + 2);  // downsample_layers.2.1.weight
  try {
    infer_architecture(state, "ckpt/S.pth");
    FAIL();
  } catch (const cnp::Error& e) {
    EXPECT_NE(std::string(e.what()).find("ckpt/S.pth"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("backbone.downsample_layers.2.1.weight"),
              std::string::npos)
        << e.what();
  }
  state = fake_state(arch);
  for (auto& [key, tensor] : state)
    if (key == "head.deconv_layers_2.pwconv.weight") tensor.shape[0] = 128;
  EXPECT_THROW(infer_architecture(state, "x"), cnp::Error);
  EXPECT_THROW(infer_architecture({}, "empty.pth"), cnp::Error);
}
