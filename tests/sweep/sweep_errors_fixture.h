#pragma once
// The fixture of the bad-sweep and fault tests (issue 11): a small synthetic Human3.6M, a folder
// holding one finished job that every case runs into a copy of, and the bad inputs the cases
// make from them (derived checkpoints, a corrupt image, a camera with focal length 0).
// test_sweep_error_catalogue.cpp holds the table of cases; test_sweep_faults.cpp the scenarios
// that need more than one run.
#include <gtest/gtest.h>

#include <algorithm>
#include <optional>
#include <string>

#include "model/checkpoint.h"
#include "sweep_fixture.h"

namespace cnp::sweep_test {

#define EXPECT_HAS(text, needle)                                                            \
  EXPECT_NE((text).find(needle), std::string::npos) << "missing '" << (needle) << "' in:\n" \
                                                    << (text)

inline const char* kOneJob = "  variants: [XS]\n  epochs: [1]\n  protocols: [2]\n  flip: [false]\n";

// The config at `config` with dataset.root `from` replaced by `to`, saved beside it.
inline std::string with_root(const std::string& config, const std::string& from,
                             const std::string& to) {
  std::string yaml = slurp(config);
  yaml.replace(yaml.find("root: " + from), 6 + from.size(), "root: " + to);
  const std::string path = config + ".root.yaml";
  spit(path, yaml);
  return path;
}

// A copy of the epoch-1 checkpoint as epoch `epoch`, without the first BatchNorm
// running_var when `drop_key`, and with `epoch_field` as its own 'epoch' entry.
inline std::string derived_checkpoint(const std::string& data, int epoch, bool drop_key,
                                      std::optional<int64_t> epoch_field) {
  const std::string path = data + "/checkpoints/XS/snapshot_" + std::to_string(epoch) + ".pth.tar";
  if (fs::exists(path)) return path;
  model::Checkpoint checkpoint =
      model::read_checkpoint(data + "/checkpoints/XS/snapshot_1.pth.tar");
  if (drop_key) {
    auto it = std::find_if(checkpoint.tensors.begin(), checkpoint.tensors.end(), [](const auto& t) {
      return t.first.find("running_var") != std::string::npos;
    });
    EXPECT_NE(it, checkpoint.tensors.end());
    checkpoint.tensors.erase(it);
  }
  model::write_checkpoint_zip(path, checkpoint.tensors, epoch_field,
                              "snapshot_" + std::to_string(epoch) + ".pth",
                              checkpoint.container_key);
  return path;
}

// snapshot_3: the epoch-1 weights with every large storage set to NaN.
inline void nan_checkpoint(const std::string& dir_, const std::string& data_) {
  const std::string nan_checkpoint = data_ + "/checkpoints/XS/snapshot_3.pth.tar";
  if (!fs::exists(nan_checkpoint)) {
    spit(dir_ + "/nan.py", R"PY(
import sys, zipfile, struct
src, dst = sys.argv[1], sys.argv[2]
with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst + '.tmp', 'w', zipfile.ZIP_STORED) as zout:
    for info in zin.infolist():
        data = zin.read(info.filename)
        if '/data/' in info.filename and len(data) >= 4096 and len(data) % 4 == 0:
            data = struct.pack('<f', float('nan')) * (len(data) // 4)
        zout.writestr(info, data)
import os; os.replace(dst + '.tmp', dst)
)PY");
    const auto made = run(std::string(CNP_PYTHON) + " " + dir_ + "/nan.py " + data_ +
                              "/checkpoints/XS/snapshot_1.pth.tar " + nan_checkpoint,
                          dir_ + "/nan");
    EXPECT_EQ(made.code, 0) << made.err;
  }
}

// A copy of the data set whose first S9 image (action 2, subaction 1, camera 1,
// frame 0) exists but is no JPEG: found only when decoding.
inline std::string corrupt_data(const std::string& dir_, const std::string& data_) {
  const std::string bad_data = dir_ + "/bad_data";
  if (!fs::exists(bad_data + "/.ready")) {
    fs::remove_all(bad_data);
    fs::copy(data_, bad_data, fs::copy_options::recursive);
    spit(bad_data + "/images/s_09_act_02_subact_01_ca_01/s_09_act_02_subact_01_ca_01_000001.jpg",
         std::string(300, 'x'));
    spit(bad_data + "/.ready", "");
  }
  return bad_data;
}

// A copy of the data set whose camera 1 of S11 has focal length 0.
inline std::string focal0_data(const std::string& dir_, const std::string& data_) {
  const std::string bad_data = dir_ + "/focal0_data";
  if (!fs::exists(bad_data + "/.ready")) {
    fs::remove_all(bad_data);
    fs::copy(data_, bad_data, fs::copy_options::recursive);
    const auto edit = run(std::string(CNP_PYTHON) + " -c \"import json; p='" + bad_data +
                              "/annotations/Human36M_subject11_camera.json'; d=json.load(open(p)); "
                              "d['1']['f']=[0.0, 0.0]; json.dump(d, open(p, 'w'))\"",
                          dir_ + "/focal0_edit");
    EXPECT_EQ(edit.code, 0) << edit.err;
    spit(bad_data + "/.ready", "");
  }
  return bad_data;
}

class SweepErrors : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = test_dir("sweep_errors");
    data_ = make_dataset(dir_);
    // A finished job (XS e2, protocol 1, flip) that no case's grid contains.
    baseline_ = dir_ + "/baseline";
    if (!fs::exists(baseline_ + "/jobs/XS_e2_p1_flip_gt.json")) {
      fs::remove_all(baseline_);
      const auto config =
          write_sweep(dir_ + "/baseline.yaml", data_,
                      "  variants: [XS]\n  epochs: [2]\n  protocols: [1]\n  flip: [true]\n");
      const auto made =
          run(sweep_command(1, config, "--output " + baseline_), dir_ + "/baseline_run");
      EXPECT_EQ(made.code, 0) << made.err;
    }
  }
  inline static std::string dir_, data_, baseline_;
};

}  // namespace cnp::sweep_test
