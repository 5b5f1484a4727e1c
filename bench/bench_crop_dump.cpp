// cnp's side of the crop fidelity check (bench/crop_fidelity.py): for the first COUNT samples of
// a test set it writes the frame as cnp decodes it (TurboJPEG), the affine matrix it warps with
// and the crop it feeds the network, so that a machine's own cv2 (PyPI's wheel on a GPU node) can
// be compared step by step: decoding, getAffineTransform, warpAffine. Prints what it wrote.
// usage: bench_crop_dump DATA_ROOT OUT_DIR [SAMPLE_EVERY] [COUNT]   (defaults: 64, 32)
#include <algorithm>
#include <filesystem>
#include <iostream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "common/error.h"
#include "common/files.h"
#include "data/h36m.h"
#include "data/jpeg.h"
#include "data/preprocess.h"

int main(int argc, char** argv) try {
  if (argc < 3) {
    std::cerr << "usage: bench_crop_dump DATA_ROOT OUT_DIR [SAMPLE_EVERY] [COUNT]\n";
    return 2;
  }
  const std::string out = argv[2];
  cnp::data::TestSetOptions options;
  options.root = argv[1];
  options.protocol = 2;
  options.sample_every = argc > 3 ? std::stoi(argv[3]) : 64;
  const size_t count = argc > 4 ? std::stoul(argv[4]) : 32;
  const auto set = cnp::data::load_test_set(options);
  std::filesystem::create_directories(out);
  nlohmann::json listing = nlohmann::json::array();
  std::vector<uint8_t> crop(cnp::data::kCropBytes);
  const size_t n = std::min(count, set.samples.size());
  for (size_t i = 0; i < n; ++i) {
    const auto& sample = set.samples[i];
    const std::string file = cnp::data::image_path(options.root, sample);
    const auto image = cnp::data::decode_jpeg_bgr(cnp::read_file(file), file);
    cnp::data::crop_image(image.pixels.data(), image.width, image.height, sample.bbox, crop.data());
    const std::string stem = out + "/" + std::to_string(i);
    cnp::write_file_atomic(stem + "_decoded.bin",
                           std::string(image.pixels.begin(), image.pixels.end()));
    cnp::write_file_atomic(stem + "_crop.bin", std::string(crop.begin(), crop.end()));
    listing.push_back({{"file", file},
                       {"bbox", sample.bbox},
                       {"width", image.width},
                       {"height", image.height},
                       {"affine", cnp::data::crop_affine(sample.bbox)}});
  }
  cnp::write_file_atomic(out + "/samples.json", listing.dump(1));
  std::cout << "bench_crop_dump: " << n << " samples (frames, affine matrices, crops) in " << out
            << "\n";
  return 0;
} catch (const std::exception& e) {
  std::cerr << "bench_crop_dump: " << e.what() << "\n";
  return 1;
}
