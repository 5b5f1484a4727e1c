#pragma once
// The sweep file (INTERFACE.md "Sweep file"): parsing, validation with
// file:line:col errors, and --set KEY=VALUE overrides.
#include <map>
#include <string>
#include <vector>

#include "model/architecture.h"

namespace cnp::jobs {

struct DatasetConfig {
  std::string root;
  std::string bbox = "gt";  // gt | detected
  std::string bbox_root;    // template with {protocol}; required for detected
  int sample_every = 64;
  std::string cache;  // optional HDF5 cache directory
  bool skip_bad_samples = false;
};

struct ModelConfig {
  std::string checkpoint;                // template with {variant} {epoch} {protocol}
  std::vector<model::Variant> variants;  // user-defined, in file order
};

struct GridConfig {
  std::vector<std::string> variants;
  std::vector<int> epochs;
  std::vector<int> protocols;
  std::vector<bool> flips;
};

struct RuntimeConfig {
  int batch_size = 0;              // 0 = auto
  std::string device = "auto";     // auto | cpu | cuda
  std::string precision = "fp32";  // fp32 | bf16 | fp16
  int threads_per_rank = 0;        // 0 = auto
  bool optimize = true;            // false: the straightforward network (checking, bisecting)
};

struct SweepConfig {
  std::string source_path;  // the YAML file
  std::string name;
  std::string output;  // default results/<name>
  DatasetConfig dataset;
  ModelConfig model;
  GridConfig sweep;
  RuntimeConfig runtime;

  // Built-ins plus the file's own variants.
  model::VariantRegistry registry() const;
};

// Relative paths in the file are taken as written (relative to the working
// directory), as users expect from a command-line tool.
// Throws cnp::Error "file:line:col: message" for unknown keys, bad types and values.
SweepConfig load_sweep(const std::string& path, const std::vector<std::string>& overrides = {});
SweepConfig parse_sweep(const std::string& yaml_text, const std::string& source_name,
                        const std::vector<std::string>& overrides = {});

// "60-70" -> 60..70; also "60-70:2" (step). Throws on a bad range.
std::vector<int> parse_epoch_range(const std::string& text);

}  // namespace cnp::jobs
