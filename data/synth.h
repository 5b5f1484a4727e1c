#pragma once
// A synthetic Human3.6M in the exact 3DMPPE layout, plus RootNet-style box files.
#include <cstdint>
#include <string>

namespace cnp::data {

struct SynthOptions {
  std::string out_dir;
  int frames = 130;       // frames per (subject, action, subaction, camera); indices 0..frames-1
  int image_size = 1000;  // square images
  uint64_t seed = 1;
  int jpeg_quality = 90;
};

struct SynthSummary {
  int images = 0;
  int protocol1_samples = 0;  // with sample_every 64
  int protocol2_samples = 0;
};

// Writes <out>/images/..., <out>/annotations/Human36M_subject{9,11}_{data,camera,joint_3d}.json,
// <out>/bbox_root/protocol1.json (S11) and protocol2.json (S9+S11).
SynthSummary write_synthetic_h36m(const SynthOptions& options);

}  // namespace cnp::data
