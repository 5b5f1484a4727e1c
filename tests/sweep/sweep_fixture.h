#pragma once
// Shared helpers of the end-to-end sweep tests: running commands, a small
// synthetic Human3.6M made with `cnp synth` (trimmed to a few actions/cameras so
// that every sweep takes seconds), sweep files, and JSON reading.
#include <gtest/gtest.h>

#include <filesystem>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>

#include "tests/support/test_support.h"

namespace cnp::sweep_test {

namespace fs = std::filesystem;

using test::CommandResult;
using test::slurp;

inline void spit(const std::string& path, const std::string& text) {
  test::write_file(path, text);
}

// Runs through /bin/sh with stdout/stderr captured into files under `scratch`.
inline CommandResult run(const std::string& command, const std::string& scratch) {
  return test::run_sh(command, scratch);
}

// `timeout` guards against a hang (a hang is a bug); it is left out where the test
// signals mpirun itself (timeout would not forward SIGUSR1).
inline std::string mpirun_prefix(int ranks, bool with_timeout = true) {
  return std::string("OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 ") +
         (with_timeout ? "timeout 300 " : "") + CNP_MPIEXEC + " -np " + std::to_string(ranks) +
         " --oversubscribe --bind-to none ";
}

inline std::string sweep_command(int ranks, const std::string& config, const std::string& extra,
                                 bool with_timeout = true) {
  return mpirun_prefix(ranks, with_timeout) + CNP_SWEEP_EXE + " " + config + " " + extra;
}

// Synthetic data (XS checkpoints for epochs 1 and 2) trimmed to action 2 and
// cameras 1-2: 8 protocol-2 samples, 4 of them protocol 1. Made once per directory.
inline std::string make_dataset(const std::string& dir) {
  const std::string data = dir + "/data";
  if (fs::exists(data + "/.ready")) return data;
  fs::remove_all(data);
  auto synth = run(std::string(CNP_EXE) + " synth " + data +
                       " --kept-frames 1 --image-size 320 --variants XS --epochs 1,2",
                   dir);
  EXPECT_EQ(synth.code, 0) << synth.err;
  const std::string trim = R"PY(
import json, sys, glob, os
root = sys.argv[1]
keep = set()
for path in sorted(glob.glob(os.path.join(root, 'annotations', 'Human36M_subject*_data.json'))):
    with open(path) as f:
        d = json.load(f)
    d['images'] = [im for im in d['images'] if im['action_idx'] == 2 and im['cam_idx'] in (1, 2)]
    ids = {im['id'] for im in d['images']}
    keep |= ids
    d['annotations'] = [a for a in d['annotations'] if a['image_id'] in ids]
    with open(path, 'w') as f:
        json.dump(d, f)
for path in glob.glob(os.path.join(root, 'bbox_root', '*.json')):
    with open(path) as f:
        boxes = json.load(f)
    with open(path, 'w') as f:
        json.dump([b for b in boxes if b['image_id'] in keep], f)
)PY";
  spit(dir + "/trim.py", trim);
  auto trimmed = run(std::string(CNP_PYTHON) + " " + dir + "/trim.py " + data, dir);
  EXPECT_EQ(trimmed.code, 0) << trimmed.err;
  spit(data + "/.ready", "");
  return data;
}

// A sweep file over the dataset; `extra_yaml` lines are appended at top level.
inline std::string write_sweep(const std::string& path, const std::string& data,
                               const std::string& grid, const std::string& runtime = "",
                               const std::string& dataset_extra = "") {
  std::ostringstream yaml;
  yaml << "name: test\n"
       << "dataset:\n  root: " << data << "\n  bbox: gt\n"
       << dataset_extra << "model:\n  checkpoint: \"" << data
       << "/checkpoints/{variant}/snapshot_{epoch}.pth.tar\"\n"
       << "sweep:\n"
       << grid << "runtime:\n  device: cpu\n  threads_per_rank: 1\n"
       << (runtime.empty() ? "  batch_size: 4\n" : runtime);
  spit(path, yaml.str());
  return path;
}

inline const char* kFullGrid =
    "  variants: [XS]\n  epochs: [1, 2]\n  protocols: [1, 2]\n  flip: [false, true]\n";

inline nlohmann::json read_json(const std::string& path) {
  return nlohmann::json::parse(slurp(path));
}

// Not emptied: the dataset made in it is reused by later tests.
inline std::string test_dir(const std::string& name) {
  return test::work_dir(name, /*fresh=*/false);
}

}  // namespace cnp::sweep_test
