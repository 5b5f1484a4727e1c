// The LibTorch network without Python: module names, parameter counts, deterministic
// random weights, flip test, batching, loading round trips and strict-loading errors.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <map>
#include <random>

#include "common/error.h"
#include "data/preprocess.h"
#include "model/pose_model.h"
#include "model/remap.h"

using namespace cnp::model;

namespace {

constexpr int kSide = 256;
const std::vector<std::pair<int, int>> kFlipPairs = {{1, 4},   {2, 5},   {3, 6},
                                                     {14, 11}, {15, 12}, {16, 13}};

Architecture variant(const std::string& name) {
  return VariantRegistry::with_builtins().get(name).arch;
}

// A small custom architecture keeps these tests fast; built-ins are covered by parity.
Architecture tiny(bool third_up = false) {
  Architecture a;
  a.depths = {1, 1, 2, 1};
  a.dims = {8, 16, 24, 32};
  a.head_channels = 16;
  a.head_upsample = {true, true, third_up};
  a.depth_dim = 8;
  return a;
}

ModelOptions options() {
  ModelOptions o;
  o.flip_pairs = kFlipPairs;
  return o;
}

// Image-like normalised input (blocky 0..255 values, no /255).
std::vector<float> images(int n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> pixel(0.f, 255.f);
  const float mean[3] = {0.485f, 0.456f, 0.406f}, stdev[3] = {0.229f, 0.224f, 0.225f};
  std::vector<float> out(static_cast<size_t>(n) * 3 * kSide * kSide);
  for (int i = 0; i < n; ++i)
    for (int c = 0; c < 3; ++c)
      for (int by = 0; by < kSide / 16; ++by)
        for (int bx = 0; bx < kSide / 16; ++bx) {
          const float v = (pixel(rng) - mean[c]) / stdev[c];
          for (int y = by * 16; y < by * 16 + 16; ++y)
            for (int x = bx * 16; x < bx * 16 + 16; ++x)
              out[((static_cast<size_t>(i) * 3 + c) * kSide + y) * kSide + x] = v;
        }
  return out;
}

std::vector<float> mirror(const std::vector<float>& in, int n) {
  std::vector<float> out(in.size());
  for (size_t row = 0; row < static_cast<size_t>(n) * 3 * kSide; ++row)
    for (int x = 0; x < kSide; ++x) out[row * kSide + x] = in[row * kSide + (kSide - 1 - x)];
  return out;
}

std::vector<float> run(const PoseModel& model, const std::vector<float>& input, int n,
                       std::vector<float>* flipped = nullptr) {
  const size_t size = static_cast<size_t>(n) * model.architecture().joints * 3;
  std::vector<float> plain(size);
  if (flipped) flipped->assign(size, 0.f);
  model.predict(input.data(), n, plain.data(), flipped ? flipped->data() : nullptr);
  return plain;
}

double max_abs_diff(const std::vector<float>& a, const std::vector<float>& b) {
  double m = 0;
  for (size_t i = 0; i < a.size(); ++i) m = std::max(m, std::fabs(double{a[i]} - b[i]));
  return m;
}

std::string load_error(const Architecture& arch, const NamedTensors& tensors,
                       const std::string& path = "ckpt.pth") {
  Checkpoint checkpoint;
  checkpoint.path = path;
  checkpoint.tensors = tensors;
  try {
    PoseModel::load(arch, checkpoint, options());
  } catch (const cnp::Error& e) {
    return e.what();
  }
  return "";
}

bool is_buffer(const std::string& key) {
  return key.find("running_") != std::string::npos ||
         key.find("num_batches_tracked") != std::string::npos;
}

bool contains(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

}  // namespace

TEST(Network, StateDictNamesFollowTheTrainingCode) {
  const auto model = PoseModel::random(variant("XS"), 1, options());
  const NamedTensors state = model->state_dict();
  // conv 2 + BN 5 entries: stem 7, downsample 3 x 7, 12 blocks x 11, norm 5, head 3 x 9, final 2.
  ASSERT_EQ(state.size(), 194u);
  std::vector<std::string> first;
  for (int i = 0; i < 8; ++i) first.push_back(state[i].first);
  EXPECT_EQ(first,
            (std::vector<std::string>{
                "backbone.downsample_layers.0.0.weight", "backbone.downsample_layers.0.0.bias",
                "backbone.downsample_layers.0.1.weight", "backbone.downsample_layers.0.1.bias",
                "backbone.downsample_layers.0.1.running_mean",
                "backbone.downsample_layers.0.1.running_var",
                "backbone.downsample_layers.0.1.num_batches_tracked",
                "backbone.downsample_layers.1.0.weight"}));
  std::map<std::string, std::vector<int64_t>> by_name;
  for (const auto& [k, t] : state) by_name[k] = t.shape;
  EXPECT_EQ(by_name.at("backbone.stages.2.5.pwconv1.weight"),
            (std::vector<int64_t>{640, 160, 1, 1}));
  EXPECT_EQ(by_name.at("backbone.stages.0.1.dwconv.weight"), (std::vector<int64_t>{40, 1, 7, 7}));
  EXPECT_EQ(by_name.at("backbone.norm.running_var"), (std::vector<int64_t>{320}));
  EXPECT_EQ(by_name.at("head.deconv_layers_1.dwconv.weight"), (std::vector<int64_t>{320, 1, 3, 3}));
  EXPECT_EQ(by_name.at("head.deconv_layers_3.norm.weight"), (std::vector<int64_t>{128}));
  EXPECT_EQ(by_name.at("head.final_layer.weight"), (std::vector<int64_t>{18 * 32, 128, 1, 1}));
  EXPECT_EQ(state.back().first, "head.final_layer.bias");
  EXPECT_EQ(state[6].second.dtype, DType::Int64);
}

TEST(Network, ParameterCountMatchesTheModule) {
  for (const Architecture& arch : {variant("XS"), tiny(), tiny(true)}) {
    const auto model = PoseModel::random(arch, 3, options());
    int64_t learnable = 0;
    for (const auto& [key, tensor] : model->state_dict())
      if (!is_buffer(key)) learnable += tensor.numel();
    EXPECT_EQ(learnable, parameter_count(arch)) << arch.describe();
    EXPECT_EQ(model->heatmap_size(), arch.heatmap_size(256));
  }
}

TEST(Network, RandomWeightsAreDeterministicNonTrivialAndPeaky) {
  const auto arch = tiny();
  const auto a = PoseModel::random(arch, 11, options());
  const auto b = PoseModel::random(arch, 11, options());
  const auto c = PoseModel::random(arch, 12, options());
  const auto input = images(2, 5);
  const auto pa = run(*a, input, 2), pb = run(*b, input, 2), pc = run(*c, input, 2);
  EXPECT_EQ(pa, pb);
  EXPECT_GT(max_abs_diff(pa, pc), 1.0);
  // BatchNorm statistics are not PyTorch's defaults (mean 0, var 1).
  for (const auto& [key, tensor] : a->state_dict()) {
    if (!contains(key, "running_var")) continue;
    const auto v = tensor.to_float();
    EXPECT_TRUE(std::any_of(v.begin(), v.end(), [](float x) { return std::fabs(x - 1.f) > 0.05f; }))
        << key;
  }
  // Peaky heatmaps: outputs move with the input, coordinates stay inside the heatmap.
  const auto other = run(*a, images(2, 6), 2);
  EXPECT_GT(max_abs_diff(pa, other), 1.0);
  const float top = static_cast<float>(a->heatmap_size() - 1);
  for (size_t i = 0; i < pa.size(); ++i) {
    EXPECT_GE(pa[i], -1e-3f);
    EXPECT_LE(pa[i], (i % 3 == 2 ? arch.depth_dim - 1.f : top) + 1e-3f);
  }
}

TEST(Network, FlipOutputIsTheMirroredInputMappedBack) {
  const auto arch = tiny(true);
  const auto model = PoseModel::random(arch, 21, options());
  const int n = 2;
  const auto input = images(n, 9);
  std::vector<float> flipped;
  const auto plain = run(*model, input, n, &flipped);
  EXPECT_EQ(plain, run(*model, input, n));  // asking for the flip leaves plain unchanged

  const auto mirrored = run(*model, mirror(input, n), n);
  const int joints = arch.joints, width = model->heatmap_size();
  std::vector<float> expected(mirrored.size());
  std::vector<int> partner(joints);
  for (int j = 0; j < joints; ++j) partner[j] = j;
  for (auto [a, b] : kFlipPairs) std::swap(partner[a], partner[b]);
  for (int i = 0; i < n; ++i)
    for (int j = 0; j < joints; ++j) {
      const float* src = &mirrored[(i * joints + partner[j]) * 3];
      float* dst = &expected[(i * joints + j) * 3];
      dst[0] = width - 1 - src[0];
      dst[1] = src[1];
      dst[2] = src[2];
    }
  EXPECT_LT(max_abs_diff(flipped, expected), 1e-4);
  EXPECT_GT(max_abs_diff(flipped, plain), 0.5);  // a random net is not mirror-symmetric
}

TEST(Network, BatchesGiveTheSameResultsAsSingleImages) {
  const auto model = PoseModel::random(tiny(), 2, options());
  const auto input = images(3, 4);
  const auto batch = run(*model, input, 3);
  const size_t image = 3 * kSide * kSide, coords = 18 * 3;
  for (int i = 0; i < 3; ++i) {
    std::vector<float> one(input.begin() + i * image, input.begin() + (i + 1) * image);
    const auto single = run(*model, one, 1);
    std::vector<float> part(batch.begin() + i * coords, batch.begin() + (i + 1) * coords);
    EXPECT_LT(max_abs_diff(single, part), 1e-4) << "image " << i;
  }
  std::vector<float> none;
  model->predict(input.data(), 0, none.data(), nullptr);  // n = 0 is a no-op
}

// uint8 crops normalised by the model (on its device) give exactly what the data library's
// normalize_crop + predict give, flipped half and bad (zeroed) samples included; a batch
// staged ahead of the one before it gives the same as one staged just in time.
TEST(Network, CropsNormalisedByTheModelMatchTheDataLibraryBitForBit) {
  const auto model = PoseModel::random(tiny(), 5, options());
  const int n = 3;
  std::mt19937 rng(9);
  std::vector<uint8_t> crops(static_cast<size_t>(n) * cnp::data::kCropBytes);
  for (auto& b : crops) b = static_cast<uint8_t>(rng() & 0xff);
  const std::vector<uint8_t> bad = {0, 1, 0};
  std::vector<float> input(static_cast<size_t>(n) * cnp::data::kInputFloats, 0.0f);
  for (int i = 0; i < n; ++i)
    if (!bad[i])
      cnp::data::normalize_crop(crops.data() + i * cnp::data::kCropBytes,
                                input.data() + i * cnp::data::kInputFloats);
  const size_t coords = static_cast<size_t>(n) * 18 * 3;
  std::vector<float> plain(coords), flipped(coords), crop_plain(coords), crop_flipped(coords);
  model->predict(input.data(), n, plain.data(), flipped.data());
  model->predict_crops(crops.data(), n, bad.data(), crop_plain.data(), crop_flipped.data());
  EXPECT_EQ(crop_plain, plain);
  EXPECT_EQ(crop_flipped, flipped);

  // Staged ahead: the second batch is staged before the first one is predicted, and the
  // caller's crop buffer is overwritten in between (staging copies it).
  auto first = model->stage_crops(crops.data(), n, bad.data());
  std::vector<uint8_t> second_crops(crops.rbegin(), crops.rend());
  auto second = model->stage_crops(second_crops.data(), n, nullptr);
  std::fill(second_crops.begin(), second_crops.end(), uint8_t{0});
  std::vector<float> staged_plain(coords), staged_flipped(coords);
  model->predict_staged(*first, staged_plain.data(), staged_flipped.data());
  EXPECT_EQ(staged_plain, plain);
  EXPECT_EQ(staged_flipped, flipped);
  std::vector<float> second_plain(coords), reversed_plain(coords);
  model->predict_staged(*second, second_plain.data(), nullptr);
  std::vector<uint8_t> reversed(crops.rbegin(), crops.rend());
  model->predict_crops(reversed.data(), n, nullptr, reversed_plain.data(), nullptr);
  EXPECT_EQ(second_plain, reversed_plain);
  EXPECT_GT(max_abs_diff(second_plain, plain), 0.1);  // the batches differ, and so do results
}

TEST(Network, LoadsItsOwnStateDictUnderEveryHeadScheme) {
  const auto arch = tiny(true);
  const auto source = PoseModel::random(arch, 5, options());
  const auto input = images(2, 3);
  std::vector<float> flip_expected, flip_got;
  const auto expected = run(*source, input, 2, &flip_expected);

  // As saved under DataParallel with the nn.Sequential head (M/L), the ModuleList head,
  // and without the optional num_batches_tracked buffers.
  const std::vector<std::pair<std::string, std::string>> schemes = {
      {".dwconv.", ".0."}, {".norm.", ".1."}, {".pwconv.", ".2."}};
  for (int variant_index = 0; variant_index < 3; ++variant_index) {
    Checkpoint checkpoint;
    checkpoint.path = "roundtrip.pth";
    for (auto [key, tensor] : source->state_dict()) {
      if (variant_index == 2 && contains(key, "num_batches_tracked")) continue;
      if (key.rfind("head.deconv_layers_", 0) == 0) {
        for (const auto& [named, index] : schemes) {
          const auto at = key.find(named);
          if (at != std::string::npos) key.replace(at, named.size(), index);
        }
        if (variant_index == 1) {
          const int layer = key[19] - '1';  // head.deconv_layers_K -> head.deconv_layers.{K-1}
          key = "head.deconv_layers." + std::to_string(layer) + key.substr(20);
        }
      }
      checkpoint.tensors.emplace_back("module." + key, tensor);
    }
    checkpoint.tensors.emplace_back("module.head.extra.weight", TensorData{});  // unused: ignored
    const auto loaded = PoseModel::load(arch, checkpoint, options());
    EXPECT_EQ(run(*loaded, input, 2, &flip_got), expected) << "scheme " << variant_index;
    EXPECT_EQ(flip_got, flip_expected) << "scheme " << variant_index;
  }
}

TEST(Network, LoadConvertsHalfAndDoubleTensors) {
  const auto arch = tiny();
  const auto source = PoseModel::random(arch, 8, options());
  Checkpoint checkpoint;
  checkpoint.path = "double.pth";
  for (auto [key, tensor] : source->state_dict()) {
    if (tensor.dtype == DType::Float32) {
      const auto values = tensor.to_double();
      tensor.dtype = DType::Float64;
      tensor.bytes.resize(values.size() * sizeof(double));
      std::memcpy(tensor.bytes.data(), values.data(), tensor.bytes.size());
    }
    checkpoint.tensors.emplace_back(key, tensor);
  }
  const auto loaded = PoseModel::load(arch, checkpoint, options());
  const auto input = images(1, 1);
  EXPECT_LT(max_abs_diff(run(*loaded, input, 1), run(*source, input, 1)), 1e-5);
}

TEST(Network, StrictLoadingNamesMissingAndMismatchedKeys) {
  const auto arch = tiny();
  NamedTensors state = PoseModel::random(arch, 1, options())->state_dict();

  NamedTensors missing = state;
  missing.erase(missing.begin() + 8);  // backbone.downsample_layers.1.0.bias
  std::string error = load_error(arch, missing);
  EXPECT_TRUE(contains(error, "ckpt.pth")) << error;
  EXPECT_TRUE(contains(error, "1 missing key(s) (backbone.downsample_layers.1.0.bias)")) << error;

  NamedTensors reshaped = state;
  for (auto& [key, tensor] : reshaped)
    if (key == "backbone.stages.2.1.pwconv2.weight") {
      tensor.shape = {96, 48, 1, 1};
      tensor.bytes.resize(96 * 48 * 4);
    }
  error = load_error(arch, reshaped);
  EXPECT_TRUE(contains(error,
                       "1 shape mismatch(es) (backbone.stages.2.1.pwconv2.weight: "
                       "checkpoint [96, 48, 1, 1] vs model [24, 96, 1, 1])"))
      << error;

  NamedTensors truncated = state;
  truncated[0].second.bytes.resize(8);
  error = load_error(arch, truncated);
  EXPECT_TRUE(contains(error, "backbone.downsample_layers.0.0.weight")) << error;

  EXPECT_TRUE(contains(load_error(arch, {}, "empty.pth"), "empty.pth does not look like"))
      << load_error(arch, {}, "empty.pth");
  EXPECT_EQ(load_error(arch, state), "");
}

TEST(Network, OtherArchitectureSaysWhatTheCheckpointLooksLike) {
  // L-as-M with the built-in names is covered by model_parity on real checkpoints.
  const NamedTensors tiny_state = PoseModel::random(tiny(), 1, options())->state_dict();
  const std::string custom = load_error(variant("XS"), tiny_state, "tiny.pth");
  EXPECT_TRUE(contains(custom, "tiny.pth looks like depths 1,1,2,1 dims 8,16,24,32")) << custom;
  EXPECT_TRUE(contains(custom, "asked for is XS")) << custom;
  ModelOptions named = options();
  named.variant = "M-wide";
  Checkpoint checkpoint;
  checkpoint.path = "tiny.pth";
  checkpoint.tensors = tiny_state;
  try {
    PoseModel::load(variant("XS"), checkpoint, named);
    FAIL() << "tiny checkpoint loaded as XS";
  } catch (const cnp::Error& e) {
    EXPECT_TRUE(contains(e.what(), "asked for is M-wide (depths 2,2,6,2")) << e.what();
  }
}

TEST(Network, OptionsAreValidated) {
  const auto arch = tiny();
  ModelOptions o = options();
  o.precision = "fp16";
  if (!PoseModel::cuda_available()) {
    o.device = "cpu";
    EXPECT_THROW(PoseModel::random(arch, 1, o), cnp::Error);
    o.device = "cuda";
    o.precision = "fp32";
    EXPECT_THROW(PoseModel::random(arch, 1, o), cnp::Error);
  }
  o = options();
  o.precision = "int8";
  EXPECT_THROW(PoseModel::random(arch, 1, o), cnp::Error);
  o = options();
  o.device = "tpu";
  EXPECT_THROW(PoseModel::random(arch, 1, o), cnp::Error);
  o = options();
  o.flip_pairs = {{1, 18}};
  EXPECT_THROW(PoseModel::random(arch, 1, o), cnp::Error);
}

TEST(Network, Bfloat16StaysCloseToFloat32) {
  const auto arch = tiny();
  ModelOptions bf16 = options();
  bf16.precision = "bf16";
  const auto reference = PoseModel::random(arch, 4, options());
  const auto reduced = PoseModel::random(arch, 4, bf16);
  const auto input = images(2, 2);
  std::vector<float> flipped;
  const auto got = run(*reduced, input, 2, &flipped);
  const auto want = run(*reference, input, 2);
  double total = 0;
  for (size_t i = 0; i < got.size(); ++i) {
    ASSERT_TRUE(std::isfinite(got[i]));
    total += std::fabs(double{got[i]} - want[i]);
  }
  // bf16 keeps 8 bits of mantissa; on peaky heatmaps that moves a few joints by a
  // voxel or two, but not the bulk of them.
  const double mean_error = total / got.size();
  std::printf("[ bf16 ] mean |bf16 - fp32| %.3f, max %.3f heatmap units\n", mean_error,
              max_abs_diff(got, want));
  EXPECT_LT(mean_error, 0.5);
  EXPECT_GT(mean_error, 0.0);
  EXPECT_EQ(reduced->state_dict()[0].second.dtype, DType::BFloat16);
}
