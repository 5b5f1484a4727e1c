// TurboJPEG decoding against OpenCV's imdecode (what the reference reads images with): the
// same bytes for every chroma subsampling, grey and progressive files and odd sizes, and a
// one-line error naming the file for empty, foreign, truncated and oversized files.
#include <gtest/gtest.h>

#include <cstring>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>

#include "common/error.h"
#include "data/jpeg.h"

namespace cnp::data {
namespace {

cv::Mat test_image(int width, int height, int type = CV_8UC3) {
  cv::Mat image(height, width, type);
  cv::RNG rng(width * 7919 + height);
  rng.fill(image, cv::RNG::UNIFORM, 0, 256);
  cv::GaussianBlur(image, image, cv::Size(7, 7), 2.0);
  cv::circle(image, {width / 2, height / 2}, std::min(width, height) / 3, cv::Scalar(250, 20, 90),
             3);
  return image;
}

std::string encode_cv(const cv::Mat& image, const std::vector<int>& params) {
  std::vector<uchar> bytes;
  EXPECT_TRUE(cv::imencode(".jpg", image, bytes, params));
  return std::string(bytes.begin(), bytes.end());
}

void expect_same_as_opencv(const std::string& bytes, const std::string& what) {
  const cv::Mat raw(1, static_cast<int>(bytes.size()), CV_8UC1, const_cast<char*>(bytes.data()));
  const cv::Mat expected = cv::imdecode(raw, cv::IMREAD_COLOR | cv::IMREAD_IGNORE_ORIENTATION);
  ASSERT_FALSE(expected.empty()) << what;
  const BgrImage got = decode_jpeg_bgr(bytes, what);
  ASSERT_EQ(got.width, expected.cols) << what;
  ASSERT_EQ(got.height, expected.rows) << what;
  ASSERT_TRUE(expected.isContinuous());
  ASSERT_EQ(0, std::memcmp(got.pixels.data(), expected.data, got.pixels.size())) << what;
}

TEST(DataJpeg, DecodesTheSameBytesAsOpenCV) {
  const std::vector<std::pair<int, int>> sizes = {{320, 240}, {333, 211}, {17, 9}, {1000, 1002}};
  for (const auto& [w, h] : sizes) {
    const cv::Mat image = test_image(w, h);
    for (int quality : {60, 92}) {
      const std::string tag =
          std::to_string(w) + "x" + std::to_string(h) + " q" + std::to_string(quality);
      expect_same_as_opencv(encode_cv(image, {cv::IMWRITE_JPEG_QUALITY, quality}), tag);
      // OpenCV 4.6 writes 4:2:0 only; the other subsamplings come from TurboJPEG's encoder.
      expect_same_as_opencv(encode_jpeg_bgr(image.data, w, h, quality, JpegChroma::k444),
                            tag + " 4:4:4");
      expect_same_as_opencv(encode_jpeg_bgr(image.data, w, h, quality, JpegChroma::k422),
                            tag + " 4:2:2");
      expect_same_as_opencv(
          encode_cv(image, {cv::IMWRITE_JPEG_QUALITY, quality, cv::IMWRITE_JPEG_PROGRESSIVE, 1}),
          tag + " progressive");
      expect_same_as_opencv(
          encode_cv(test_image(w, h, CV_8UC1), {cv::IMWRITE_JPEG_QUALITY, quality}), tag + " grey");
    }
  }
}

TEST(DataJpeg, OwnEncoderRoundTripsThroughOpenCV) {
  const cv::Mat image = test_image(256, 200);
  const std::string bytes = encode_jpeg_bgr(image.data, image.cols, image.rows, 90);
  expect_same_as_opencv(bytes, "encoded by cnp");
  const BgrImage decoded = decode_jpeg_bgr(bytes, "encoded by cnp");
  cv::Mat back(decoded.height, decoded.width, CV_8UC3, const_cast<uint8_t*>(decoded.pixels.data()));
  // Lossy on this noisy image, but close to the original and as close as OpenCV's own encoder.
  const std::string theirs = encode_cv(image, {cv::IMWRITE_JPEG_QUALITY, 90});
  const cv::Mat their_back = cv::imdecode(
      cv::Mat(1, static_cast<int>(theirs.size()), CV_8UC1, const_cast<char*>(theirs.data())),
      cv::IMREAD_COLOR);
  const double ours = cv::norm(back, image, cv::NORM_L1) / image.total() / 3;
  EXPECT_LT(ours, 6.0);
  EXPECT_LT(ours, 1.05 * cv::norm(their_back, image, cv::NORM_L1) / image.total() / 3);
}

void expect_error(const std::string& bytes, const std::string& fragment) {
  try {
    decode_jpeg_bgr(bytes, "images/bad.jpg");
    FAIL() << "no error for " << fragment;
  } catch (const Error& e) {
    const std::string message = e.what();
    EXPECT_NE(message.find("images/bad.jpg"), std::string::npos) << message;
    EXPECT_NE(message.find(fragment), std::string::npos) << message;
    EXPECT_EQ(message.find('\n'), std::string::npos) << message;
  }
}

TEST(DataJpeg, BadFilesGiveOneLineErrorsNamingTheFile) {
  const cv::Mat image = test_image(64, 48);
  const std::string good = encode_cv(image, {cv::IMWRITE_JPEG_QUALITY, 90});
  expect_error("", "empty file (0 bytes)");
  expect_error("GIF89a and some more bytes", "not a JPEG");
  expect_error(good.substr(0, good.size() / 2), "truncated");
  expect_error(good.substr(0, 3), "not a JPEG");

  // Header claims 60000 x 60000: refused before any pixel memory is allocated.
  std::string huge = good;
  const size_t sof = huge.find("\xFF\xC0", 2);
  ASSERT_NE(sof, std::string::npos);
  huge[sof + 5] = static_cast<char>(0xEA);  // height 0xEA60 = 60000
  huge[sof + 6] = static_cast<char>(0x60);
  huge[sof + 7] = static_cast<char>(0xEA);  // width
  huge[sof + 8] = static_cast<char>(0x60);
  expect_error(huge, "outside the accepted size");

  // Garbage after a valid start and before a valid end: an error, not a crash.
  std::string garbled = good;
  for (size_t i = 2; i < 40 && i < garbled.size(); ++i) garbled[i] = static_cast<char>(0x5A);
  expect_error(garbled, "corrupt JPEG");
}

}  // namespace
}  // namespace cnp::data
