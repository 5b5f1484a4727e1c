#pragma once
// A synthetic Human3.6M in the exact 3DMPPE layout, plus RootNet-style box files.
#include <cstdint>
#include <string>
#include <vector>

namespace cnp::data {

struct SynthOptions {
  std::string out_dir;
  // Frame indices per (subject, action, subaction, camera): {64 k + j : k < kept_frames,
  // 0 <= j <= dropped_per_kept}: frame 64 k survives 64-subsampling, the others do not.
  int kept_frames = 1;
  int dropped_per_kept = 1;
  int frames = 0;         // when > 0, frame indices 0..frames-1 instead
  int image_size = 1000;  // square images; cameras scale with it
  uint64_t seed = 1;
  int jpeg_quality = 90;
  int threads = 0;           // JPEG writers; <= 0 uses all cores
  bool write_images = true;  // false: annotations and box files only (parser benchmarks)
};

struct SynthSummary {
  int images = 0;
  int protocol1_samples = 0;  // with sample_every 64
  int protocol2_samples = 0;
  std::vector<std::string> files;  // annotation and box files written (images not listed)
};

// Frame indices one sequence holds under `options`, ascending.
std::vector<int> synth_frame_indices(const SynthOptions& options);

// Writes <out>/images/..., <out>/annotations/Human36M_subject{9,11}_{data,camera,joint_3d}.json,
// <out>/bbox_root/protocol1.json (S11) and protocol2.json (S9+S11). Deterministic for a seed.
SynthSummary write_synthetic_h36m(const SynthOptions& options);

}  // namespace cnp::data
