// Parity with an independent Python/PyTorch implementation (make_fixtures.py): the four
// variants' checkpoints as the training script writes them, loaded by our reader and
// network, must give Python's soft-argmax coordinates to 1e-3 heatmap units, plain and
// flipped. Also: architecture inference, wrong-variant errors, `cnp inspect`/`variants`.
// CTest runs part of it again with CNP_CPU_ISA=avx2 and =generic (model_parity_avx2,
// model_parity_generic), so that those kernels are checked on an AVX-512 machine too.
#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "common/error.h"
#include "model/pose_model.h"
#include "model/remap.h"
#include "tests/support/test_support.h"

using namespace cnp::model;
using nlohmann::json;

namespace {

// The instruction set asked for with CNP_CPU_ISA, or "" for the CPU's best.
std::string asked_isa() {
  const char* isa = std::getenv("CNP_CPU_ISA");
  return isa ? isa : "";
}

// One work folder per instruction set, so that the runs can go in parallel.
const std::string kWork =
    std::string(CNP_TEST_WORK) + "/model_parity" + (asked_isa().empty() ? "" : "_" + asked_isa());
const std::vector<std::string> kVariants = {"XS", "S", "M", "L"};

std::vector<float> read_floats(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error("cannot open " + path);
  std::stringstream buffer;
  buffer << in.rdbuf();
  const std::string bytes = buffer.str();
  std::vector<float> out(bytes.size() / sizeof(float));
  std::memcpy(out.data(), bytes.data(), out.size() * sizeof(float));
  return out;
}

using cnp::test::slurp;

// Runs a shell command; returns its exit status.
int shell(const std::string& command) {
  const int status = std::system(command.c_str());
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

double max_abs_diff(const std::vector<float>& a, const std::vector<float>& b) {
  double m = 0;
  for (size_t i = 0; i < a.size(); ++i) m = std::max(m, std::fabs(double{a[i]} - b[i]));
  return m;
}

bool contains(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

class Parity : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    shell("rm -rf '" + kWork + "' && mkdir -p '" + kWork + "'");
    const std::string command = std::string(CNP_PYTHON) + " " + CNP_SOURCE_DIR +
                                "/tests/model/make_fixtures.py '" + kWork + "' > '" + kWork +
                                "/python.log' 2>&1";
    ASSERT_EQ(shell(command), 0) << command << "\n" << slurp(kWork + "/python.log");
    manifest_ = json::parse(slurp(kWork + "/manifest.json"));
    inputs_ = read_floats(kWork + "/inputs.bin");
  }

  // The checkpoints are ~110 MB; the small outputs stay for a look after a failure.
  static void TearDownTestSuite() { shell("rm -rf '" + kWork + "/checkpoints'"); }

  static ModelOptions options() {
    ModelOptions o;
    for (const auto& pair : manifest_["flip_pairs"]) o.flip_pairs.emplace_back(pair[0], pair[1]);
    return o;
  }

  static const json& info(const std::string& name) { return manifest_["variants"][name]; }

  static Architecture arch(const std::string& name) {
    return VariantRegistry::with_builtins().get(name).arch;
  }

  static void expect_parity(const PoseModel& model, const std::string& name) {
    const int n = manifest_["batch"];
    const size_t size = static_cast<size_t>(n) * 18 * 3;
    std::vector<float> plain(size), flipped(size);
    model.predict(inputs_.data(), n, plain.data(), flipped.data());
    EXPECT_TRUE(model.optimized()) << "the default options run the optimized network";
    const auto want_plain = read_floats(kWork + "/" + name + "_plain.bin");
    const auto want_flip = read_floats(kWork + "/" + name + "_flip.bin");
    ASSERT_EQ(want_plain.size(), size);
    const double plain_error = max_abs_diff(plain, want_plain);
    const double flip_error = max_abs_diff(flipped, want_flip);
    EXPECT_LT(plain_error, 1e-3) << name << " plain";
    EXPECT_LT(flip_error, 1e-3) << name << " flipped";
    // The comparison is only meaningful if the outputs are far from trivial.
    EXPECT_GT(info(name)["coordinate_std"].get<double>(), 1.0) << name;
    EXPECT_GT(max_abs_diff(plain, flipped), 0.5) << name;
    std::printf("[ parity ] %-2s max |C++ - Python|: plain %.2e, flipped %.2e heatmap units\n",
                name.c_str(), plain_error, flip_error);
  }

  static json manifest_;
  static std::vector<float> inputs_;
};

json Parity::manifest_;
std::vector<float> Parity::inputs_;

}  // namespace

TEST_F(Parity, EveryVariantMatchesPythonPlainAndFlipped) {
  for (const std::string& name : kVariants) {
    SCOPED_TRACE(name);
    const Checkpoint checkpoint = read_checkpoint(info(name)["checkpoint"]);
    const auto model = PoseModel::load(arch(name), checkpoint, options());
    expect_parity(*model, name);

    // Our module registers exactly the (remapped) checkpoint keys, in the same order,
    // and holds the same values.
    const NamedTensors remapped = remap_keys(checkpoint.tensors);
    const NamedTensors state = model->state_dict();
    ASSERT_EQ(state.size(), remapped.size());
    for (size_t i = 0; i < state.size(); ++i) {
      ASSERT_EQ(state[i].first, remapped[i].first);
      ASSERT_EQ(state[i].second.shape, remapped[i].second.shape) << state[i].first;
      ASSERT_EQ(state[i].second.bytes, remapped[i].second.bytes) << state[i].first;
    }
  }
}

// The load-time rewrites (folded BatchNorm, channels-last, final conv before the last
// upsample, fused decoder) against the straightforward module tree on the same weights.
TEST_F(Parity, OptimizedNetworkMatchesTheStraightforwardOne) {
  const int n = manifest_["batch"];
  const size_t size = static_cast<size_t>(n) * 18 * 3;
  for (const std::string& name : kVariants) {
    SCOPED_TRACE(name);
    const Checkpoint checkpoint = read_checkpoint(info(name)["checkpoint"]);
    ModelOptions straightforward_options = options();
    straightforward_options.optimize = false;
    const auto straightforward = PoseModel::load(arch(name), checkpoint, straightforward_options);
    const auto optimized = PoseModel::load(arch(name), checkpoint, options());
    ASSERT_FALSE(straightforward->optimized());
    ASSERT_TRUE(optimized->optimized());
    std::vector<float> plain_a(size), flip_a(size), plain_b(size), flip_b(size);
    straightforward->predict(inputs_.data(), n, plain_a.data(), flip_a.data());
    optimized->predict(inputs_.data(), n, plain_b.data(), flip_b.data());
    const double plain_error = max_abs_diff(plain_a, plain_b);
    const double flip_error = max_abs_diff(flip_a, flip_b);
    EXPECT_LT(plain_error, 1e-3) << "plain";
    EXPECT_LT(flip_error, 1e-3) << "flipped";
    EXPECT_GT(max_abs_diff(plain_a, flip_a), 0.5);
    std::printf("[ parity ] %-2s max |optimized - straightforward|: plain %.2e, flipped %.2e\n",
                name.c_str(), plain_error, flip_error);
  }
}

TEST_F(Parity, LegacyFormatCheckpointGivesTheSameOutputs) {
  const Checkpoint checkpoint = read_checkpoint(info("XS")["legacy_checkpoint"]);
  EXPECT_EQ(checkpoint.format, "legacy");
  EXPECT_EQ(checkpoint.epoch, info("XS")["epoch"].get<int64_t>());
  const auto model = PoseModel::load(arch("XS"), checkpoint, options());
  expect_parity(*model, "XS");
}

TEST_F(Parity, ArchitectureIsInferredFromEveryCheckpoint) {
  const auto registry = VariantRegistry::with_builtins();
  for (const std::string& name : kVariants) {
    SCOPED_TRACE(name);
    const json& v = info(name);
    const Checkpoint checkpoint = read_checkpoint(v["checkpoint"]);
    EXPECT_EQ(checkpoint.format, "zip");
    EXPECT_EQ(checkpoint.archive_name,
              "snapshot_" + std::to_string(v["epoch"].get<int>()) + ".pth");
    EXPECT_EQ(checkpoint.container_key, "network");
    EXPECT_EQ(checkpoint.epoch, v["epoch"].get<int64_t>());
    EXPECT_TRUE(contains(checkpoint.tensors.front().first, "module.")) << "written as DataParallel";
    const auto inferred = infer_architecture(remap_keys(checkpoint.tensors), checkpoint.path);
    EXPECT_EQ(inferred.arch.depths, (v["depths"].get<std::array<int, 4>>()));
    EXPECT_EQ(inferred.arch.dims, (v["dims"].get<std::array<int, 4>>()));
    EXPECT_EQ(inferred.arch.head_channels, v["head_channels"].get<int>());
    EXPECT_EQ(inferred.arch.depth_dim, v["depth_dim"].get<int>());
    EXPECT_EQ(inferred.arch.joints, 18);
    EXPECT_EQ(inferred.arch.head_upsample, (v["head_upsample"].get<std::array<bool, 3>>()));
    EXPECT_EQ(inferred.arch.heatmap_size(256), v["heatmap"].get<int>());
    const auto matches = registry.matching(inferred.arch, inferred.upsample_known);
    ASSERT_EQ(matches.size(), 1u);
    EXPECT_EQ(matches[0]->name, name);
    EXPECT_EQ(parameter_count(inferred.arch), v["parameters"].get<int64_t>());
  }
}

TEST_F(Parity, WrongVariantAndMissingKeysAreRefused) {
  const Checkpoint l = read_checkpoint(info("L")["checkpoint"]);
  try {
    PoseModel::load(arch("M"), l, options());
    FAIL() << "L checkpoint loaded as M";
  } catch (const cnp::Error& e) {
    const std::string what = e.what();
    EXPECT_TRUE(contains(what, l.path + " looks like L (head 512, depth_dim 64) but the model "
                                        "asked for is M (head 256, depth_dim 64)"))
        << what;
    EXPECT_TRUE(contains(what,
                         "head.deconv_layers_1.pwconv.weight: checkpoint [512, 384, 1, 1] "
                         "vs model [256, 384, 1, 1]"))
        << what;
  }
  const Checkpoint s = read_checkpoint(info("S")["checkpoint"]);
  try {
    PoseModel::load(arch("XS"), s, options());
    FAIL() << "S checkpoint loaded as XS";
  } catch (const cnp::Error& e) {
    EXPECT_TRUE(contains(e.what(), "looks like S (depths 3,3,9,3, dims 48,96,192,384")) << e.what();
  }
  Checkpoint broken = read_checkpoint(info("XS")["checkpoint"]);
  const std::string missing_key = remap_keys(NamedTensors{broken.tensors[20]}).front().first;
  ASSERT_FALSE(contains(missing_key, "num_batches_tracked"));  // that one is optional
  broken.tensors.erase(broken.tensors.begin() + 20);
  try {
    PoseModel::load(arch("XS"), broken, options());
    FAIL() << "checkpoint with a missing tensor loaded";
  } catch (const cnp::Error& e) {
    EXPECT_TRUE(contains(e.what(), "1 missing key(s) (" + missing_key + ")")) << e.what();
  }
}

TEST_F(Parity, InspectReportsFormatTensorsAndVariant) {
  const json& v = info("L");
  const std::string out = kWork + "/inspect.json";
  ASSERT_EQ(shell(std::string(CNP_EXE) + " inspect '" + v["checkpoint"].get<std::string>() +
                  "' --json > '" + out + "'"),
            0);
  const json report = json::parse(slurp(out));
  EXPECT_EQ(report["format"], "zip");
  EXPECT_EQ(report["archive_name"], "snapshot_83.pth");
  EXPECT_EQ(report["container_key"], "network");
  EXPECT_EQ(report["epoch"], 83);
  EXPECT_EQ(report["tensor_count"], v["tensors"]);
  EXPECT_EQ(report["parameters"], v["parameters"]);
  ASSERT_EQ(report["tensors"].size(), v["tensors"].get<size_t>());
  const json& first = report["tensors"][0];
  EXPECT_EQ(first["name"], "module.backbone.downsample_layers.0.0.weight");
  EXPECT_EQ(first["remapped"], "backbone.downsample_layers.0.0.weight");
  EXPECT_EQ(first["dtype"], "float32");
  EXPECT_EQ(first["shape"], json::array({48, 3, 4, 4}));
  EXPECT_EQ(report["architecture"]["head_channels"], 512);
  EXPECT_EQ(report["architecture"]["depth_dim"], 64);
  EXPECT_EQ(report["architecture"]["upsample_known"], false);
  EXPECT_EQ(report["matching_variants"], json::array({"L"}));
  EXPECT_EQ(report["sha256"].get<std::string>().size(), 64u);

  const std::string text = kWork + "/inspect.txt";
  ASSERT_EQ(shell(std::string(CNP_EXE) + " inspect '" + v["checkpoint"].get<std::string>() +
                  "' > '" + text + "'"),
            0);
  EXPECT_TRUE(contains(slurp(text), "variant:      L\n")) << slurp(text);

  // Not a checkpoint: exit 1, one line naming the file.
  const std::string bogus = kWork + "/bogus.pth";
  std::ofstream(bogus) << "not a checkpoint";
  EXPECT_EQ(shell(std::string(CNP_EXE) + " inspect '" + bogus + "' > /dev/null 2> '" + kWork +
                  "/bogus.err'"),
            1);
  const std::string err = slurp(kWork + "/bogus.err");
  EXPECT_TRUE(contains(err, bogus)) << err;
  EXPECT_EQ(std::count(err.begin(), err.end(), '\n'), 1) << err;
}

TEST_F(Parity, VariantsCommandListsComputedNumbers) {
  const std::string out = kWork + "/variants.json";
  ASSERT_EQ(shell(std::string(CNP_EXE) + " variants --json > '" + out + "'"), 0);
  const json variants = json::parse(slurp(out));
  ASSERT_EQ(variants.size(), 4u);
  for (const auto& v : variants) {
    const std::string name = v["name"];
    EXPECT_EQ(v["parameters"], info(name)["parameters"]) << name;  // counted by PyTorch
    EXPECT_EQ(v["heatmap_size"], info(name)["heatmap"]) << name;
  }
  EXPECT_EQ(variants[3]["name"], "L");
  EXPECT_NEAR(variants[3]["macs"].get<double>() / 1e9, 4.26, 0.005);
  EXPECT_EQ(variants[3]["published_pa_mpjpe"], 32.8);
  EXPECT_TRUE(variants[0]["published_pa_mpjpe"].is_null());
  ASSERT_EQ(shell(std::string(CNP_EXE) + " variants > '" + kWork + "/variants.txt'"), 0);
  EXPECT_TRUE(contains(slurp(kWork + "/variants.txt"), "8.38M")) << slurp(kWork + "/variants.txt");
}

TEST_F(Parity, BenchCommandRunsTheCheckpointsArchitecture) {
  const json& v = info("S");
  const std::string out = kWork + "/bench.json";
  for (const bool optimize : {true, false}) {
    ASSERT_EQ(shell(std::string(CNP_EXE) + " bench --checkpoint '" +
                    v["checkpoint"].get<std::string>() + "' --batch 2 --threads 1 --seconds 0.01" +
                    (optimize ? "" : " --no-optimize") + " --flip --json > '" + out + "'"),
              0);
    const json report = json::parse(slurp(out));
    EXPECT_EQ(report["variant"], "S");
    EXPECT_EQ(report["architecture"]["head_channels"], 256);
    EXPECT_EQ(report["batch"], 2);
    EXPECT_EQ(report["threads"], 1);
    EXPECT_EQ(report["device"], "cpu");
    EXPECT_EQ(report["precision"], "fp32");
    EXPECT_EQ(report["flip"], true);
    EXPECT_EQ(report["optimized"], optimize);
    EXPECT_GT(report["images_per_second"].get<double>(), 0.0);
    // S has no upsample after its last head layer: both paths do the published 1.74 G MACs,
    // and with the flip test twice the images' GFLOP per forward.
    EXPECT_NEAR(report["gmacs_per_image"].get<double>(), 1.74, 0.005);
    EXPECT_NEAR(
        report["gflops_per_second"].get<double>(),
        4 * report["gmacs_per_image"].get<double>() * report["images_per_second"].get<double>(),
        1e-6 * report["gflops_per_second"].get<double>());
    EXPECT_GE(report["batches"].get<int>(), 2);
    for (const char* stage : {"backbone_ms", "head_ms", "decode_ms"})
      EXPECT_GT(report["stages"][stage].get<double>(), 0.0) << stage;
  }
  // The kernels it ran: the CPU's best, capped by CNP_CPU_ISA where it is set.
  __builtin_cpu_init();
  const std::vector<std::string> order = {"generic", "avx2", "avx512"};
  const size_t best = __builtin_cpu_supports("avx512f")                                 ? 2
                      : __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") ? 1
                                                                                        : 0;
  const auto asked = std::find(order.begin(), order.end(), asked_isa());
  const size_t cap = asked == order.end() ? 2 : static_cast<size_t>(asked - order.begin());
  EXPECT_EQ(json::parse(slurp(out))["cpu_kernels"], order[std::min(best, cap)]);
  // --rounds-from-stdin (bench/engine_vs_reference.py --pairs): a line saying what runs, then
  // one line per stdin line with that many batches; a line that is no batch count is an error
  // naming it.
  const std::string rounds = kWork + "/rounds.jsonl", err = kWork + "/bench.err";
  ASSERT_EQ(shell("printf '1\n3\n' | " + std::string(CNP_EXE) +
                  " bench --variant XS --batch 2 --threads 1 --rounds-from-stdin > '" + rounds +
                  "'"),
            0);
  std::istringstream lines(slurp(rounds));
  std::vector<json> answers;
  for (std::string line; std::getline(lines, line);) answers.push_back(json::parse(line));
  ASSERT_EQ(answers.size(), 3u) << slurp(rounds);
  EXPECT_EQ(answers[0]["variant"], "XS");
  EXPECT_EQ(answers[0]["optimized"], true);
  EXPECT_NEAR(answers[0]["gmacs_per_image"].get<double>(), 0.82, 0.005);
  for (int i : {1, 2}) {
    EXPECT_EQ(answers[i]["round"], i);
    EXPECT_EQ(answers[i]["batches"], i == 1 ? 1 : 3);
    EXPECT_NEAR(answers[i]["images_per_second"].get<double>(),
                2 * answers[i]["batches"].get<double>() / answers[i]["seconds"].get<double>(),
                1e-6 * answers[i]["images_per_second"].get<double>());
  }
  EXPECT_NE(shell("printf '1\n2x\n' | " + std::string(CNP_EXE) +
                  " bench --variant XS --batch 1 --threads 1 --rounds-from-stdin > /dev/null 2> '" +
                  err + "'"),
            0);
  EXPECT_TRUE(contains(slurp(err), "stdin line 2: expected a batch count")) << slurp(err);
  EXPECT_TRUE(contains(slurp(err), "'2x'")) << slurp(err);
  // Bad input: one line naming the problem, non-zero exit.
  EXPECT_NE(shell("CNP_CPU_ISA=sse9 " + std::string(CNP_EXE) + " bench --variant XS --batch 1 " +
                  "--seconds 0.01 2> '" + err + "'"),
            0);
  const std::string isa_error = slurp(err);
  EXPECT_TRUE(contains(isa_error, "CNP_CPU_ISA: 'sse9' is not an instruction set")) << isa_error;
  EXPECT_EQ(std::count(isa_error.begin(), isa_error.end(), '\n'), 1) << isa_error;
  EXPECT_NE(shell(std::string(CNP_EXE) + " bench --variant S --checkpoint '" +
                  v["checkpoint"].get<std::string>() + "' 2> '" + err + "'"),
            0);
  EXPECT_TRUE(contains(slurp(err), "exactly one of --variant or --checkpoint")) << slurp(err);
  EXPECT_NE(shell(std::string(CNP_EXE) + " bench --variant nope 2> '" + err + "'"), 0);
  EXPECT_TRUE(contains(slurp(err), "nope")) << slurp(err);
}
