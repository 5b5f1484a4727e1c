#include "data/preprocess.h"

#include <algorithm>
#include <opencv2/imgproc.hpp>

#include "common/error.h"
#include "common/files.h"
#include "data/jpeg.h"

namespace cnp::data {

bool process_gt_bbox(const std::array<double, 4>& bbox, int width, int height,
                     std::array<double, 4>& out) {
  const double x = bbox[0], y = bbox[1], w = bbox[2], h = bbox[3];
  const double x1 = std::max(0.0, x);
  const double y1 = std::max(0.0, y);
  const double x2 = std::min(width - 1.0, x1 + std::max(0.0, w - 1));
  const double y2 = std::min(height - 1.0, y1 + std::max(0.0, h - 1));
  if (w * h <= 0 || x2 < x1 || y2 < y1) return false;
  double bw = x2 - x1, bh = y2 - y1;
  const double cx = x1 + bw / 2.0, cy = y1 + bh / 2.0;
  // The network input is square: grow the shorter side, then add 25% context.
  if (bw > bh) {
    bh = bw;
  } else if (bw < bh) {
    bw = bh;
  }
  bw *= 1.25;
  bh *= 1.25;
  out = {cx - bw / 2.0, cy - bh / 2.0, bw, bh};
  return true;
}

namespace {
cv::Mat crop_transform(const std::array<double, 4>& bbox) {
  // The reference builds float32 points: centre (double, then float32) plus the
  // float32 half extents, added in float32. Keep that rounding for identical crops.
  const float cx = static_cast<float>(bbox[0] + 0.5 * bbox[2]);
  const float cy = static_cast<float>(bbox[1] + 0.5 * bbox[3]);
  const float half_w = static_cast<float>(bbox[2] * 0.5);
  const float half_h = static_cast<float>(bbox[3] * 0.5);
  const cv::Point2f src[3] = {{cx, cy}, {cx, cy + half_h}, {cx + half_w, cy}};
  const float half = kInputSize * 0.5f;
  const cv::Point2f dst[3] = {{half, half}, {half, half + half}, {half + half, half}};
  return cv::getAffineTransform(src, dst);
}
}  // namespace

std::array<double, 6> crop_affine(const std::array<double, 4>& bbox) {
  const cv::Mat m = crop_transform(bbox);
  std::array<double, 6> out{};
  for (int r = 0; r < 2; ++r)
    for (int c = 0; c < 3; ++c) out[r * 3 + c] = m.at<double>(r, c);
  return out;
}

void crop_image(const uint8_t* bgr, int width, int height, const std::array<double, 4>& bbox,
                uint8_t* crop) {
  const cv::Mat image(height, width, CV_8UC3, const_cast<uint8_t*>(bgr));
  cv::Mat out(kInputSize, kInputSize, CV_8UC3, crop);
  cv::warpAffine(image, out, crop_transform(bbox), cv::Size(kInputSize, kInputSize),
                 cv::INTER_LINEAR, cv::BORDER_CONSTANT, cv::Scalar(0, 0, 0));
  if (out.data != crop) throw Error("crop_image: OpenCV reallocated the output crop");
}

void crop_image_file(const std::string& path, const std::array<double, 4>& bbox, uint8_t* crop) {
  if (!file_exists(path)) throw Error(path + ": image file missing");
  const BgrImage image = decode_jpeg_bgr(read_file(path), path);
  crop_image(image.pixels.data(), image.width, image.height, bbox, crop);
}

void normalize_crop(const uint8_t* crop, float* out) {
  static const float kMean[3] = {0.485f, 0.456f, 0.406f};
  static const float kStd[3] = {0.229f, 0.224f, 0.225f};
  constexpr int plane = kInputSize * kInputSize;
  for (int c = 0; c < 3; ++c) {
    const int bgr = 2 - c;  // output channel c (RGB) comes from BGR channel 2 - c
    const float mean = kMean[c], std = kStd[c];
    float* dst = out + c * plane;
    for (int i = 0; i < plane; ++i) dst[i] = (static_cast<float>(crop[i * 3 + bgr]) - mean) / std;
  }
}

}  // namespace cnp::data
