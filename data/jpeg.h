#pragma once
// JPEG decoding and encoding through TurboJPEG.
#include <cstdint>
#include <string>
#include <vector>

namespace cnp::data {

// Larger JPEG headers are refused before any pixel memory is allocated (Human3.6M frames are
// about 1000 x 1000; this bound is 400 times that).
constexpr int64_t kMaxImagePixels = int64_t{20000} * 20000;

struct BgrImage {
  int width = 0;
  int height = 0;
  std::vector<uint8_t> pixels;  // rows x cols x 3, BGR (what cv::imread returns)
};

// Decodes a JPEG held in memory into 8-bit BGR. `name` (the file) is named in every error:
// empty, not a JPEG, truncated (no end-of-image marker), too large, or undecodable.
BgrImage decode_jpeg_bgr(const std::string& bytes, const std::string& name);

enum class JpegChroma { k420, k422, k444 };

// Encodes BGR pixels (rows x cols x 3) as a baseline JPEG (4:2:0 chroma subsampling unless told).
std::string encode_jpeg_bgr(const uint8_t* bgr, int width, int height, int quality,
                            JpegChroma chroma = JpegChroma::k420);

}  // namespace cnp::data
