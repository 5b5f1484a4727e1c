// Sweep file parsing: valid files, --set overrides, epoch ranges and every error
// case, each asserting the one-line "file:line:col: message" naming the key.
#include <gtest/gtest.h>

#include <filesystem>
#include <regex>
#include <sstream>

#include "common/error.h"
#include "common/files.h"
#include "jobs/sweep.h"
#include "tests/support/test_support.h"

namespace cnp::jobs {
namespace {

const std::vector<std::string> kBase = {
    "name: ml",                                                 // 1
    "dataset:",                                                 // 2
    "  root: data/Human36M",                                    // 3
    "  bbox: gt",                                               // 4
    "model:",                                                   // 5
    "  checkpoint: \"ck/{variant}/snapshot_{epoch}.pth.tar\"",  // 6
    "sweep:",                                                   // 7
    "  variants: [M, L]",                                       // 8
    "  epochs: [69, 70]",                                       // 9
    "  protocols: [1, 2]",                                      // 10
    "  flip: [false, true]",                                    // 11
    "runtime:",                                                 // 12
    "  batch_size: auto",                                       // 13
};

// The base file with some lines replaced (1-based); "\n" inside adds lines after.
std::string edited(const std::map<int, std::string>& edits) {
  std::ostringstream out;
  for (size_t i = 0; i < kBase.size(); ++i) {
    const auto it = edits.find(static_cast<int>(i + 1));
    out << (it == edits.end() ? kBase[i] : it->second) << "\n";
  }
  return out.str();
}

std::string error_of(const std::string& yaml, const std::vector<std::string>& overrides = {}) {
  try {
    parse_sweep(yaml, "t.yaml", overrides);
  } catch (const std::exception& e) {
    const std::string msg = e.what();
    EXPECT_EQ(msg.find('\n'), std::string::npos) << "error must be one line: " << msg;
    return msg;
  }
  ADD_FAILURE() << "no error for:\n" << yaml;
  return "";
}

// Expects the error at line:col (col of `token` within the edited line) to contain `needle`.
void expect_error_at(const std::map<int, std::string>& edits, int line, const std::string& token,
                     const std::string& needle) {
  std::istringstream lines(edited(edits));
  std::string text;
  for (int i = 0; i < line; ++i) std::getline(lines, text);
  const auto col = text.find(token);
  ASSERT_NE(col, std::string::npos) << token;
  const std::string msg = error_of(edited(edits));
  const std::string where = "t.yaml:" + std::to_string(line) + ":" + std::to_string(col + 1) + ": ";
  EXPECT_EQ(msg.rfind(where, 0), 0u) << "expected prefix '" << where << "' in: " << msg;
  EXPECT_NE(msg.find(needle), std::string::npos) << "expected '" << needle << "' in: " << msg;
}

// Missing keys point at the enclosing mapping; only require file:line:col and the text.
void expect_error_somewhere(const std::string& yaml, const std::string& needle) {
  const std::string msg = error_of(yaml);
  EXPECT_TRUE(std::regex_search(msg, std::regex(R"(^t\.yaml:\d+:\d+: )"))) << msg;
  EXPECT_NE(msg.find(needle), std::string::npos) << "expected '" << needle << "' in: " << msg;
}

TEST(Sweep, ParsesTheBaseFile) {
  const SweepConfig c = parse_sweep(edited({}), "t.yaml");
  EXPECT_EQ(c.source_path, "t.yaml");
  EXPECT_EQ(c.name, "ml");
  EXPECT_EQ(c.output, "results/ml");
  EXPECT_EQ(c.dataset.root, "data/Human36M");
  EXPECT_EQ(c.dataset.bbox, "gt");
  EXPECT_EQ(c.dataset.sample_every, 64);
  EXPECT_FALSE(c.dataset.skip_bad_samples);
  EXPECT_EQ(c.model.checkpoint, "ck/{variant}/snapshot_{epoch}.pth.tar");
  EXPECT_EQ(c.sweep.variants, (std::vector<std::string>{"M", "L"}));
  EXPECT_EQ(c.sweep.epochs, (std::vector<int>{69, 70}));
  EXPECT_EQ(c.sweep.protocols, (std::vector<int>{1, 2}));
  EXPECT_EQ(c.sweep.flips, (std::vector<bool>{false, true}));
  EXPECT_EQ(c.runtime.batch_size, 0);
  EXPECT_EQ(c.runtime.device, "auto");
  EXPECT_EQ(c.runtime.precision, "fp32");
}

TEST(Sweep, ParsesEveryKey) {
  const std::string yaml = R"(name: full
output: out/full
dataset:
  root: /data/h36m
  bbox: detected
  bbox_root: "bb/protocol{protocol}.json"
  sample_every: 8
  cache: cache/h36m
  skip_bad_samples: true
model:
  checkpoint: "ck/{variant}/snapshot_{epoch}.pth.tar"
  variants:
    M-wide: {depths: [3,3,27,3], dims: [128,256,512,1024], head_channels: 256,
             head_upsample: [true,true,true], depth_dim: 64}
    tiny:
      depths: [1, 1, 1, 1]
      dims: [8, 16, 32, 64]
      head_channels: 16
      head_upsample: [true, true, false]
      depth_dim: 8
      joints: 18
      published_mpjpe: 99.5
sweep:
  variants: [M-wide, tiny, XS]
  epochs: "60-64:2"
  protocols: 2
  flip: true
runtime:
  batch_size: 16
  device: cpu
  precision: bf16
  threads_per_rank: 4
  optimize: false
)";
  const SweepConfig c = parse_sweep(yaml, "f.yaml");
  EXPECT_EQ(c.output, "out/full");
  EXPECT_EQ(c.dataset.bbox, "detected");
  EXPECT_EQ(c.dataset.bbox_root, "bb/protocol{protocol}.json");
  EXPECT_EQ(c.dataset.sample_every, 8);
  EXPECT_EQ(c.dataset.cache, "cache/h36m");
  EXPECT_TRUE(c.dataset.skip_bad_samples);
  ASSERT_EQ(c.model.variants.size(), 2u);
  EXPECT_EQ(c.model.variants[0].name, "M-wide");
  EXPECT_EQ(c.model.variants[0].arch.depths, (std::array<int, 4>{3, 3, 27, 3}));
  EXPECT_EQ(c.model.variants[0].arch.dims, (std::array<int, 4>{128, 256, 512, 1024}));
  EXPECT_EQ(c.model.variants[0].arch.joints, 18);
  EXPECT_EQ(c.model.variants[1].arch.head_upsample, (std::array<bool, 3>{true, true, false}));
  EXPECT_EQ(c.model.variants[1].arch.depth_dim, 8);
  ASSERT_TRUE(c.model.variants[1].published_mpjpe.has_value());
  EXPECT_DOUBLE_EQ(*c.model.variants[1].published_mpjpe, 99.5);
  EXPECT_EQ(c.sweep.epochs, (std::vector<int>{60, 62, 64}));
  EXPECT_EQ(c.sweep.protocols, (std::vector<int>{2}));
  EXPECT_EQ(c.sweep.flips, (std::vector<bool>{true}));
  EXPECT_EQ(c.runtime.batch_size, 16);
  EXPECT_EQ(c.runtime.device, "cpu");
  EXPECT_EQ(c.runtime.precision, "bf16");
  EXPECT_EQ(c.runtime.threads_per_rank, 4);
  EXPECT_FALSE(c.runtime.optimize);
  EXPECT_TRUE(parse_sweep(edited({}), "t.yaml").runtime.optimize) << "optimized by default";
  const auto registry = c.registry();
  ASSERT_NE(registry.find("M-wide"), nullptr);
  ASSERT_NE(registry.find("L"), nullptr);
  EXPECT_EQ(registry.find("tiny")->arch.head_channels, 16);
}

TEST(Sweep, FlipDefaultsAndEpochForms) {
  EXPECT_EQ(parse_sweep(edited({{11, "# no flip"}}), "t.yaml").sweep.flips,
            (std::vector<bool>{false}));
  EXPECT_EQ(parse_sweep(edited({{9, "  epochs: 70"}}), "t.yaml").sweep.epochs,
            (std::vector<int>{70}));
  EXPECT_EQ(parse_sweep(edited({{9, "  epochs: \"60-63\""}}), "t.yaml").sweep.epochs,
            (std::vector<int>{60, 61, 62, 63}));
  EXPECT_EQ(parse_sweep(edited({{9, "  epochs: 68-70"}}), "t.yaml").sweep.epochs,
            (std::vector<int>{68, 69, 70}));
}

TEST(Sweep, EpochRanges) {
  EXPECT_EQ(parse_epoch_range("60-70").size(), 11u);
  EXPECT_EQ(parse_epoch_range("60-70:2"), (std::vector<int>{60, 62, 64, 66, 68, 70}));
  EXPECT_EQ(parse_epoch_range("60-69:5"), (std::vector<int>{60, 65}));
  EXPECT_EQ(parse_epoch_range("7-7"), (std::vector<int>{7}));
  for (const char* bad : {"70-60", "abc", "-5-10", "60-", "60-70:0", "60-70:-1", "60--70", ""}) {
    EXPECT_THROW(parse_epoch_range(bad), std::exception) << bad;
  }
}

TEST(Sweep, UnknownKeysAtEveryLevel) {
  {
    const std::string msg = error_of(edited({{13, "  batchsize: 8"}}));
    EXPECT_EQ(
        msg,
        "t.yaml:13:3: unknown key 'batchsize' in runtime (expected: batch_size, device, optimize, "
        "precision, threads_per_rank)");
  }
  expect_error_at({{1, "nmae: ml"}}, 1, "nmae", "unknown key 'nmae'");
  expect_error_at({{4, "  boxes: gt"}}, 4, "boxes", "unknown key 'boxes' in dataset");
  expect_error_at({{6, "  ckpt: x"}}, 6, "ckpt", "unknown key 'ckpt' in model");
  expect_error_at({{11, "  flips: [true]"}}, 11, "flips", "unknown key 'flips' in sweep");
  const std::string msg = error_of(
      edited({{6,
               "  checkpoint: \"ck/{variant}/{epoch}\"\n  variants:\n    X1: {depths: [1,1,1,1], "
               "dims: [8,16,32,64], "
               "head_channels: 8, head_upsample: [true,true,true], depth_dim: 8, colour: red}"}}));
  EXPECT_EQ(msg.rfind("t.yaml:8:", 0), 0u) << msg;
  EXPECT_NE(msg.find("unknown key 'colour' in model.variants.X1"), std::string::npos) << msg;
}

TEST(Sweep, WrongTypes) {
  expect_error_at({{1, "name: [a, b]"}}, 1, "[", "'name' must be a string");
  expect_error_at({{3, "  root: {a: 1}"}}, 3, "{", "'dataset.root' must be a string");
  expect_error_at({{4, "  bbox: gt\n  sample_every: often"}}, 5, "often",
                  "'dataset.sample_every' must be an integer");
  expect_error_at({{11, "  flip: [false, maybe]"}}, 11, "maybe",
                  "'sweep.flip[1]' must be true or false");
  expect_error_at({{10, "  protocols: [1, two]"}}, 10, "two",
                  "'sweep.protocols[1]' must be an integer");
  expect_error_at({{8, "  variants: {M: 1}"}}, 8, "{", "'sweep.variants' must be a list");
  expect_error_at({{2, "dataset: data/Human36M"}, {3, "#"}, {4, "#"}}, 2, "data/",
                  "'dataset' must be a mapping");
  expect_error_at({{9, "  epochs: [69, 70.5]"}}, 9, "70.5", "'sweep.epochs[1]' must be an integer");
  expect_error_at({{4, "  bbox: gt\n  skip_bad_samples: sometimes"}}, 5, "sometimes",
                  "'dataset.skip_bad_samples' must be true or false");
  expect_error_at({{13, "  optimize: fast"}}, 13, "fast",
                  "'runtime.optimize' must be true or false (got 'fast')");
}

TEST(Sweep, BadValues) {
  expect_error_at({{4, "  bbox: yolo"}}, 4, "yolo",
                  "'dataset.bbox' must be gt | detected (got 'yolo')");
  expect_error_at({{13, "  batch_size: auto\n  device: tpu"}}, 14, "tpu",
                  "'runtime.device' must be auto | cpu | cuda");
  expect_error_at({{13, "  precision: fp64"}}, 13, "fp64",
                  "'runtime.precision' must be fp32 | bf16 | fp16");
  expect_error_at({{10, "  protocols: [1, 3]"}}, 10, "3", "'sweep.protocols[1]' must be 1 or 2");
  expect_error_at({{13, "  batch_size: 0"}}, 13, "0",
                  "'runtime.batch_size' must be 'auto' or a positive integer");
  expect_error_at({{13, "  batch_size: -4"}}, 13, "-4",
                  "'runtime.batch_size' must be 'auto' or a positive integer");
  expect_error_at({{13, "  batch_size: big"}}, 13, "big",
                  "'runtime.batch_size' must be 'auto' or a positive integer");
  expect_error_at({{13, "  threads_per_rank: 0"}}, 13, "0", "'runtime.threads_per_rank'");
  // Bounded: a million threads or a 5000-image batch is a typo, not a setting.
  expect_error_at({{13, "  threads_per_rank: 1000000"}}, 13, "1000000",
                  "'runtime.threads_per_rank' is 1000000; at most 256 is allowed");
  expect_error_at({{13, "  batch_size: 5000"}}, 13, "5000",
                  "'runtime.batch_size' is 5000; at most 4096 is allowed");
  EXPECT_EQ(parse_sweep(edited({{13, "  batch_size: 4096\n  threads_per_rank: 256"}}), "t.yaml")
                .runtime.batch_size,
            4096);
  expect_error_at({{4, "  sample_every: 0"}}, 4, "0", "'dataset.sample_every' must be >= 1");
  expect_error_at({{9, "  epochs: \"70-60\""}}, 9, "\"", "sweep.epochs");
  expect_error_at({{9, "  epochs: abc"}}, 9, "abc", "bad epoch range 'abc'");
  expect_error_at({{9, "  epochs: -3"}}, 9, "-3", "'sweep.epochs' must not be negative");
  expect_error_at({{9, "  epochs: [69, -70]"}}, 9, "-70", "'sweep.epochs[1]' must not be negative");
  expect_error_at({{6, "  checkpoint: \"ck/{variant}/{epoch}/{seed}.pth\""}}, 6, "\"",
                  "unknown placeholder '{seed}'");
  expect_error_at({{6, "  checkpoint: \"ck/{variant}.pth\""}}, 6, "\"", "has no {epoch}");
  expect_error_at({{1, "name: a/b"}}, 1, "a/b", "'name' must not contain '/'");
  expect_error_at({{1, "name: \"\""}}, 1, "\"", "'name' must not be empty");
}

TEST(Sweep, MissingRequiredKeys) {
  expect_error_somewhere(edited({{1, "# no name"}}), "missing required key 'name'");
  expect_error_somewhere(edited({{3, "  sample_every: 64"}}),
                         "missing required key 'root' in dataset");
  expect_error_somewhere(edited({{6, "  variants: {}"}}),
                         "missing required key 'checkpoint' in model");
  expect_error_somewhere(edited({{8, "# none"}}), "missing required key 'variants' in sweep");
  expect_error_somewhere(edited({{9, "# none"}}), "missing required key 'epochs' in sweep");
  expect_error_somewhere(edited({{10, "# none"}}), "missing required key 'protocols' in sweep");
  expect_error_somewhere(edited({{4, "  bbox: detected"}}),
                         "missing required key 'bbox_root' in dataset");
  expect_error_somewhere(edited({{2, "# no dataset"}, {3, "#"}, {4, "#"}}),
                         "missing required key 'dataset'");
  // With detected boxes and a bbox_root the file is valid.
  EXPECT_NO_THROW(
      parse_sweep(edited({{4, "  bbox: detected\n  bbox_root: bb/p{protocol}.json"}}), "t.yaml"));
}

TEST(Sweep, ListsVariantsAndDuplicates) {
  expect_error_at({{8, "  variants: [M, XL]"}}, 8, "XL",
                  "unknown variant 'XL' in sweep.variants (known: ");
  expect_error_at({{8, "  variants: [M, L, M]"}}, 8, "M]", "duplicate entry 'M' in sweep.variants");
  expect_error_at({{9, "  epochs: [69, 70, 69]"}}, 9, "69]",
                  "duplicate entry '69' in sweep.epochs");
  expect_error_at({{10, "  protocols: [2, 2]"}}, 10, "2]",
                  "duplicate entry '2' in sweep.protocols");
  expect_error_at({{11, "  flip: [true, true]"}}, 11, "true]",
                  "duplicate entry 'true' in sweep.flip");
  expect_error_at({{8, "  variants: []"}}, 8, "[", "'sweep.variants' must not be empty");
  expect_error_at({{9, "  epochs: []"}}, 9, "[", "'sweep.epochs' must not be empty");
  expect_error_at({{10, "  protocols: []"}}, 10, "[", "'sweep.protocols' must not be empty");
  expect_error_at({{11, "  flip: []"}}, 11, "[", "'sweep.flip' must not be empty");
  expect_error_at({{4, "  bbox: gt\n  bbox: detected"}}, 5, "bbox",
                  "duplicate key 'bbox' in dataset");
}

TEST(Sweep, UserVariants) {
  const std::string shadow =
      "  checkpoint: \"ck/{variant}/{epoch}\"\n  variants:\n    M: {depths: [1,1,1,1], dims: "
      "[8,16,32,64], "
      "head_channels: 8, head_upsample: [true,true,true], depth_dim: 8}";
  std::string msg = error_of(edited({{6, shadow}}));
  EXPECT_EQ(msg.rfind("t.yaml:8:5: ", 0), 0u) << msg;
  EXPECT_NE(msg.find("shadows a built-in"), std::string::npos) << msg;

  const std::string short_depths =
      "  checkpoint: \"ck/{variant}/{epoch}\"\n  variants:\n    X1: {depths: [1,1,1], dims: "
      "[8,16,32,64], "
      "head_channels: 8, head_upsample: [true,true,true], depth_dim: 8}";
  msg = error_of(edited({{6, short_depths}}));
  EXPECT_EQ(msg.rfind("t.yaml:8:", 0), 0u) << msg;
  EXPECT_NE(msg.find("'model.variants.X1.depths' must be a list of 4 values"), std::string::npos)
      << msg;

  const std::string missing =
      "  checkpoint: \"ck/{variant}/{epoch}\"\n  variants:\n    X1: {depths: [1,1,1,1], dims: "
      "[8,16,32,64], "
      "head_upsample: [true,true,true], depth_dim: 8}";
  msg = error_of(edited({{6, missing}}));
  EXPECT_NE(msg.find("missing required key 'head_channels' in model.variants.X1"),
            std::string::npos)
      << msg;

  // A user variant can be swept once defined.
  const std::string ok =
      "  checkpoint: \"ck/{variant}/{epoch}\"\n  variants:\n    X1: {depths: [1,1,1,1], dims: "
      "[8,16,32,64], "
      "head_channels: 8, head_upsample: [true,true,false], depth_dim: 8}";
  std::map<int, std::string> edits = {{6, ok}, {8, "  variants: [X1, M]"}};
  const SweepConfig c = parse_sweep(edited(edits), "t.yaml");
  EXPECT_EQ(c.sweep.variants, (std::vector<std::string>{"X1", "M"}));
}

TEST(Sweep, SetOverrides) {
  const SweepConfig c = parse_sweep(edited({}), "t.yaml",
                                    {"runtime.batch_size=8", "sweep.epochs=[69,70,71]",
                                     "sweep.flip=true", "runtime.device=cpu", "output=o/x"});
  EXPECT_EQ(c.runtime.batch_size, 8);
  EXPECT_EQ(c.runtime.device, "cpu");
  EXPECT_EQ(c.sweep.epochs, (std::vector<int>{69, 70, 71}));
  EXPECT_EQ(c.sweep.flips, (std::vector<bool>{true}));
  EXPECT_EQ(c.output, "o/x");
  EXPECT_EQ(parse_sweep(edited({}), "t.yaml", {"sweep.epochs=60-62"}).sweep.epochs,
            (std::vector<int>{60, 61, 62}));
  // Creates missing sections.
  EXPECT_EQ(parse_sweep(edited({{12, "#"}, {13, "#"}}), "t.yaml", {"runtime.precision=fp16"})
                .runtime.precision,
            "fp16");
  EXPECT_EQ(parse_sweep(edited({}), "t.yaml", {"dataset.bbox=detected", "dataset.bbox_root=b.json"})
                .dataset.bbox,
            "detected");

  auto expect_set_error = [](const std::vector<std::string>& sets, const std::string& prefix,
                             const std::string& needle) {
    const std::string msg = error_of(edited({}), sets);
    EXPECT_EQ(msg.rfind(prefix, 0), 0u) << msg;
    EXPECT_NE(msg.find(needle), std::string::npos) << msg;
  };
  expect_set_error({"runtime.batchsize=8"},
                   "--set runtime.batchsize: ", "unknown key 'batchsize' in runtime");
  expect_set_error({"bogus.key=1"}, "--set bogus.key: ", "unknown key 'bogus'");
  expect_set_error({"runtime.batch_size=-1"},
                   "--set runtime.batch_size: ", "'auto' or a positive integer");
  expect_set_error({"sweep.epochs=[1, x]"}, "--set sweep.epochs: ", "must be an integer");
  expect_set_error({"name.first=x"}, "--set name.first: ", "'name' is not a mapping");
  expect_set_error({"runtime.batch_size"}, "--set runtime.batch_size: ", "expected KEY=VALUE");
  expect_set_error({"runtime..x=1"}, "--set runtime..x: ", "empty component");
  expect_set_error({"sweep.variants=[M, XL]"}, "--set sweep.variants: ", "unknown variant 'XL'");
  expect_set_error({"sweep.flip=[true"}, "--set sweep.flip: ", "cannot parse value");
}

TEST(Sweep, SyntaxErrorsAndFiles) {
  const std::string msg = error_of("name: ml\ndataset: [unclosed\n");
  EXPECT_TRUE(std::regex_search(msg, std::regex(R"(^t\.yaml:\d+:\d+: YAML syntax error)"))) << msg;
  EXPECT_NE(error_of("").find("must be a mapping"), std::string::npos);
  EXPECT_NE(error_of("- a\n- b\n").find("t.yaml:1:1: "), std::string::npos);

  const auto dir = std::filesystem::path(CNP_TEST_WORK) / "jobs_sweep";
  std::filesystem::create_directories(dir);
  const std::string path = (dir / "ml.yaml").string();
  write_file_atomic(path, edited({{13, "  batchsize: 8"}}));
  try {
    load_sweep(path);
    FAIL();
  } catch (const std::exception& e) {
    EXPECT_EQ(std::string(e.what()).rfind(path + ":13:3: unknown key 'batchsize'", 0), 0u)
        << e.what();
  }
  write_file_atomic(path, edited({}));
  EXPECT_EQ(load_sweep(path, {"runtime.batch_size=4"}).runtime.batch_size, 4);
  try {
    load_sweep((dir / "missing.yaml").string());
    FAIL();
  } catch (const std::exception& e) {
    EXPECT_NE(std::string(e.what()).find("missing.yaml"), std::string::npos) << e.what();
  }
}

// A directory given as the sweep file said "basic_string::_M_create".
TEST(Sweep, DirectoryAsSweepFile) {
  const std::string dir = test::work_dir("jobs_sweep_dir");
  try {
    load_sweep(dir);
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(std::string(e.what()), dir + ": is a folder, not a sweep file (YAML)");
  }
  // The program: exit 1, that one line on stderr, nothing written where it ran.
  const std::string cwd = test::work_dir("jobs_sweep_dir_cwd");
  const auto result = test::run_sh("cd " + cwd + " && " + CNP_SWEEP_EXE + " " + dir,
                                   test::work_dir("jobs_sweep_dir_run"));
  EXPECT_EQ(result.code, 1);
  EXPECT_NE(result.err.find(dir + ": is a folder, not a sweep file (YAML)"), std::string::npos)
      << result.err;
  EXPECT_EQ(result.err.find("basic_string"), std::string::npos) << result.err;
  EXPECT_TRUE(std::filesystem::is_empty(cwd));
}

}  // namespace
}  // namespace cnp::jobs
