#pragma once
// Shared helpers for the data/ tests: per-test work folders, running the reference
// Python, and a small synthetic Human3.6M generated once per test binary.
#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <string>

#include "common/files.h"
#include "data/synth.h"
#include "tests/support/test_support.h"

namespace cnp::data::testing {

using test::work_dir;

// Runs a shell command; returns its exit status and stdout+stderr in `output`.
inline int run_command(const std::string& command, std::string* output = nullptr) {
  const std::string log = std::filesystem::temp_directory_path() /
                          ("cnp_data_test_" + std::to_string(::getpid()) + ".log");
  const int rc = std::system((command + " > " + log + " 2>&1").c_str());
  if (output) *output = test::slurp(log);
  std::filesystem::remove(log);
  return WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
}

inline std::string python() {
  return CNP_PYTHON;
}
inline std::string script(const std::string& name) {
  return std::string(CNP_SOURCE_DIR) + "/tests/data/" + name;
}

// The test synthetic set: frames {0, 1, 64, 65} (2 kept, 1 dropped per kept), small images.
inline SynthOptions small_synth_options(const std::string& dir) {
  SynthOptions o;
  o.out_dir = dir;
  o.kept_frames = 2;
  o.dropped_per_kept = 1;
  o.image_size = 240;
  o.seed = 7;
  o.threads = 2;
  return o;
}
// Samples per subject kept by 64-subsampling: 15 actions x 2 subactions x 4 cameras x 2.
constexpr int kKeptPerSubject = 15 * 2 * 4 * 2;

}  // namespace cnp::data::testing
