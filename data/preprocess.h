#pragma once
// Test-time preprocessing exactly as the reference (REFERENCE.md §4).
#include <array>
#include <cstdint>
#include <string>
#include <vector>

namespace cnp::data {

constexpr int kInputSize = 256;
constexpr int kCropBytes = kInputSize * kInputSize * 3;    // uint8 HWC, BGR
constexpr int kInputFloats = 3 * kInputSize * kInputSize;  // float CHW, RGB, normalised

// Ground-truth box sanitising, squaring and x1.25; returns false when the sample
// must be dropped (w*h <= 0, x2 < x1 or y2 < y1).
bool process_gt_bbox(const std::array<double, 4>& bbox, int width, int height,
                     std::array<double, 4>& out);

// The 2x3 affine matrix (row-major) that maps the box into the 256x256 crop, as
// cv2.getAffineTransform gives it for the reference's float32 points.
std::array<double, 6> crop_affine(const std::array<double, 4>& bbox);

// Decodes an image (BGR, 8 bit) and warps `bbox` into a 256x256 uint8 BGR crop
// (HWC). Throws cnp::Error naming the file when it is missing or corrupt.
void crop_image_file(const std::string& path, const std::array<double, 4>& bbox, uint8_t* crop);
// Same from an already decoded BGR image (rows x cols x 3, uint8).
void crop_image(const uint8_t* bgr, int width, int height, const std::array<double, 4>& bbox,
                uint8_t* crop);

// BGR uint8 crop -> RGB float CHW, (v - mean) / std on 0..255, no /255.
void normalize_crop(const uint8_t* crop, float* out);

}  // namespace cnp::data
