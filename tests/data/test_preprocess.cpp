// Preprocessing parity with a Python reference (cv2 + numpy float32 points +
// torchvision transforms): byte-identical crops, normalised inputs to 1e-4, and
// process_gt_bbox on edge and random cases.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <nlohmann/json.hpp>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>
#include <random>

#include "common/error.h"
#include "common/files.h"
#include "data/preprocess.h"
#include "data_test_util.h"

namespace cnp::data {
namespace {
using nlohmann::json;
using testing::run_command;

std::string make_test_image(const std::string& dir, int width, int height) {
  cv::Mat image(height, width, CV_8UC3);
  cv::RNG rng(12345);
  rng.fill(image, cv::RNG::UNIFORM, 0, 256);
  cv::GaussianBlur(image, image, cv::Size(5, 5), 1.5);
  for (int i = 0; i < 25; ++i) {
    cv::rectangle(image, cv::Point(rng.uniform(0, width), rng.uniform(0, height)),
                  cv::Point(rng.uniform(0, width), rng.uniform(0, height)),
                  cv::Scalar(rng.uniform(0, 255), rng.uniform(0, 255), rng.uniform(0, 255)), 2);
  }
  const std::string path = dir + "/image.jpg";
  cv::imwrite(path, image, {cv::IMWRITE_JPEG_QUALITY, 92});
  return path;
}

TEST(DataPreprocess, MatchesPythonReference) {
  const std::string dir = testing::work_dir("data_preprocess_parity");
  const int W = 320, H = 240;
  const std::string image = make_test_image(dir, W, H);

  std::vector<std::array<double, 4>> boxes = {
      {60, 40, 150, 150},             // inside
      {-50.5, -30.25, 200, 200},      // partly outside top-left
      {250.3, 180.7, 140, 140},       // partly outside bottom-right
      {-100, -100, 600, 500},         // larger than the image
      {100.123, 90.456, 17.5, 17.5},  // tiny: upsampling
      {30, 20, 220.75, 120.5},        // not square
      {-400, -400, 100, 100},         // entirely outside: all zero
  };
  std::mt19937 rng(3);
  std::uniform_real_distribution<double> pos(-80, 300), side(8, 400);
  for (int i = 0; i < 12; ++i) boxes.push_back({pos(rng), pos(rng), side(rng), side(rng)});

  std::vector<std::array<double, 6>> gt_cases = {
      {10, 20, 100, 50, W, H},        {10, 20, 50, 100, W, H}, {-10, -20, 100, 100, W, H},
      {300, 200, 100, 100, W, H},     {10, 10, 0, 50, W, H},   {10, 10, 50, 0, W, H},
      {10, 10, -5, 50, W, H},         {400, 10, 50, 50, W, H}, {10, 300, 50, 50, W, H},
      {5.5, 6.5, 0.5, 0.5, W, H},     {0, 0, 1, 1, W, H},      {319, 239, 10, 10, W, H},
      {12.25, 7.75, 33.5, 33.5, W, H}};
  std::uniform_real_distribution<double> coord(-50, 350), extent(-5, 200);
  for (int i = 0; i < 200; ++i) {
    gt_cases.push_back({coord(rng), coord(rng), extent(rng), extent(rng), W, H});
  }

  json cases = {{"image", image}, {"boxes", json::array()}, {"gt_cases", json::array()}};
  for (const auto& b : boxes) cases["boxes"].push_back(b);
  for (const auto& g : gt_cases) cases["gt_cases"].push_back(g);
  write_file_atomic(dir + "/cases.json", cases.dump());
  std::string output;
  ASSERT_EQ(run_command(testing::python() + " " + testing::script("preprocess_ref.py") + " " + dir +
                            "/cases.json " + dir + "/ref",
                        &output),
            0)
      << output;

  const cv::Mat decoded = cv::imread(image, cv::IMREAD_COLOR | cv::IMREAD_IGNORE_ORIENTATION);
  std::vector<uint8_t> crop(kCropBytes), crop2(kCropBytes);
  std::vector<float> input(kInputFloats);
  for (size_t i = 0; i < boxes.size(); ++i) {
    SCOPED_TRACE("box " + std::to_string(i));
    crop_image_file(image, boxes[i], crop.data());
    const std::string ref_crop = read_file(dir + "/ref/crop_" + std::to_string(i) + ".bin");
    ASSERT_EQ(ref_crop.size(), static_cast<size_t>(kCropBytes));
    int differing = 0;
    for (int k = 0; k < kCropBytes; ++k) differing += crop[k] != static_cast<uint8_t>(ref_crop[k]);
    EXPECT_EQ(differing, 0) << "bytes differing from the Python crop";

    crop_image(decoded.data, decoded.cols, decoded.rows, boxes[i], crop2.data());
    EXPECT_EQ(crop, crop2);

    normalize_crop(crop.data(), input.data());
    const std::string ref_input = read_file(dir + "/ref/input_" + std::to_string(i) + ".bin");
    ASSERT_EQ(ref_input.size(), sizeof(float) * kInputFloats);
    const auto* ref = reinterpret_cast<const float*>(ref_input.data());
    double max_diff = 0;
    for (int k = 0; k < kInputFloats; ++k)
      max_diff = std::max(max_diff, std::abs(double(input[k]) - ref[k]));
    EXPECT_LT(max_diff, 1e-4);
  }
  // The fully outside box gives an all-black crop; a real one does not.
  crop_image_file(image, boxes[6], crop.data());
  EXPECT_TRUE(std::all_of(crop.begin(), crop.end(), [](uint8_t v) { return v == 0; }));
  crop_image_file(image, boxes[0], crop.data());
  EXPECT_FALSE(std::all_of(crop.begin(), crop.end(), [](uint8_t v) { return v == 0; }));

  const json gt_ref = json::parse(read_file(dir + "/ref/gt_boxes.json"));
  ASSERT_EQ(gt_ref.size(), gt_cases.size());
  int dropped = 0;
  for (size_t i = 0; i < gt_cases.size(); ++i) {
    SCOPED_TRACE("gt case " + std::to_string(i));
    const auto& g = gt_cases[i];
    std::array<double, 4> out{};
    const bool kept = process_gt_bbox({g[0], g[1], g[2], g[3]}, static_cast<int>(g[4]),
                                      static_cast<int>(g[5]), out);
    ASSERT_EQ(kept, !gt_ref[i].is_null());
    if (!kept) {
      ++dropped;
      continue;
    }
    for (int k = 0; k < 4; ++k) EXPECT_NEAR(out[k], gt_ref[i][k].get<double>(), 1e-9);
    EXPECT_NEAR(out[2], out[3], 1e-9);  // square
  }
  EXPECT_GT(dropped, 5);  // the edge cases that must drop did
}

TEST(DataPreprocess, GtBoxKnownValues) {
  std::array<double, 4> out{};
  // 100x50 box: sanitised to [10,20,99,49], centre (59.5,44.5), square 99 -> 123.75.
  ASSERT_TRUE(process_gt_bbox({10, 20, 100, 50}, 1000, 1000, out));
  EXPECT_DOUBLE_EQ(out[2], 123.75);
  EXPECT_DOUBLE_EQ(out[3], 123.75);
  EXPECT_DOUBLE_EQ(out[0], 59.5 - 61.875);
  EXPECT_DOUBLE_EQ(out[1], 44.5 - 61.875);
  EXPECT_FALSE(process_gt_bbox({10, 20, 0, 50}, 1000, 1000, out));
  EXPECT_FALSE(process_gt_bbox({1200, 20, 30, 50}, 1000, 1000, out));  // x2 < x1 after clipping
}

TEST(DataPreprocess, NormaliseKnownPixel) {
  std::vector<uint8_t> crop(kCropBytes, 0);
  crop[0] = 10;   // B
  crop[1] = 20;   // G
  crop[2] = 255;  // R
  std::vector<float> out(kInputFloats);
  normalize_crop(crop.data(), out.data());
  const int plane = kInputSize * kInputSize;
  EXPECT_NEAR(out[0], (255 - 0.485) / 0.229, 1e-3);  // R channel first, no /255
  EXPECT_NEAR(out[plane], (20 - 0.456) / 0.224, 1e-3);
  EXPECT_NEAR(out[2 * plane], (10 - 0.406) / 0.225, 1e-3);
  EXPECT_NEAR(out[1], -0.485 / 0.229, 1e-5);
}

TEST(DataPreprocess, CorruptAndMissingImagesNameTheFile) {
  const std::string dir = testing::work_dir("data_preprocess_corrupt");
  const std::string good = make_test_image(dir, 200, 150);
  const std::string bytes = read_file(good);
  std::vector<uint8_t> crop(kCropBytes);
  const std::array<double, 4> box{10, 10, 100, 100};

  const std::string truncated = dir + "/truncated.jpg";
  write_file_atomic(truncated, bytes.substr(0, bytes.size() / 2));
  const std::string garbage = dir + "/garbage.jpg";
  write_file_atomic(garbage, std::string(5000, 'x'));
  const std::string empty = dir + "/empty.jpg";
  write_file_atomic(empty, "");
  for (const std::string& path : {truncated, garbage, empty, dir + "/missing.jpg"}) {
    try {
      crop_image_file(path, box, crop.data());
      ADD_FAILURE() << "no error for " << path;
    } catch (const cnp::Error& e) {
      const std::string what = e.what();
      EXPECT_NE(what.find(path), std::string::npos) << what;
      EXPECT_EQ(what.find('\n'), std::string::npos) << what;
    }
  }
  EXPECT_NO_THROW(crop_image_file(good, box, crop.data()));
}

}  // namespace
}  // namespace cnp::data
