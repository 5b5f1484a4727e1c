// TurboJPEG instead of OpenCV's imgcodecs: Debian's imgcodecs pulls GDAL and dozens of other
// libraries into the dependency bundle a GPU node needs, while TurboJPEG is the very
// libjpeg-turbo that imgcodecs calls. Both use libjpeg's defaults (integer slow DCT, fancy
// upsampling), so the decoded pixels are the same bytes (tests/data/test_jpeg.cpp checks this
// against cv::imdecode).
#include "data/jpeg.h"

#include <turbojpeg.h>

#include <memory>

#include "common/error.h"

namespace cnp::data {
namespace {

struct HandleCloser {
  void operator()(void* handle) const {
    if (handle) tjDestroy(handle);
  }
};
using Handle = std::unique_ptr<void, HandleCloser>;

// libjpeg decodes a truncated file with only a warning (grey bottom rows); JPEG entropy-coded
// data never holds FF D9, so a missing end-of-image marker near the end means truncation.
bool has_end_of_image(const unsigned char* b, size_t size) {
  const size_t from = size > 4096 ? size - 4096 : 2;
  for (size_t i = size - 1; i > from; --i) {
    if (b[i - 1] == 0xFF && b[i] == 0xD9) return true;
  }
  return false;
}

}  // namespace

BgrImage decode_jpeg_bgr(const std::string& bytes, const std::string& name) {
  const auto* b = reinterpret_cast<const unsigned char*>(bytes.data());
  if (bytes.empty()) throw Error(name + ": empty file (0 bytes), not an image");
  if (bytes.size() < 4 || b[0] != 0xFF || b[1] != 0xD8)
    throw Error(name + ": not a JPEG image (no FF D8 start-of-image marker)");
  if (!has_end_of_image(b, bytes.size()))
    throw Error(name + ": corrupt JPEG (truncated: no end-of-image marker)");
  Handle handle(tjInitDecompress());
  if (!handle) throw Error(name + ": cannot start the JPEG decoder: " + tjGetErrorStr());
  int width = 0, height = 0, subsampling = 0, colorspace = 0;
  if (tjDecompressHeader3(handle.get(), b, static_cast<unsigned long>(bytes.size()), &width,
                          &height, &subsampling, &colorspace) != 0) {
    throw Error(name + ": corrupt JPEG header: " + tjGetErrorStr2(handle.get()));
  }
  if (width <= 0 || height <= 0 || int64_t{width} * height > kMaxImagePixels) {
    throw Error(name + ": JPEG of " + std::to_string(width) + " x " + std::to_string(height) +
                " pixels is outside the accepted size (at most " + std::to_string(kMaxImagePixels) +
                " pixels)");
  }
  BgrImage image;
  image.width = width;
  image.height = height;
  image.pixels.resize(static_cast<size_t>(width) * height * 3);
  if (tjDecompress2(handle.get(), b, static_cast<unsigned long>(bytes.size()), image.pixels.data(),
                    width, width * 3, height, TJPF_BGR, 0) != 0 &&
      tjGetErrorCode(handle.get()) != TJERR_WARNING) {
    // A warning (corrupt but decodable data) is accepted, as OpenCV and so the reference do.
    throw Error(name + ": corrupt JPEG: " + tjGetErrorStr2(handle.get()));
  }
  return image;
}

std::string encode_jpeg_bgr(const uint8_t* bgr, int width, int height, int quality,
                            JpegChroma chroma) {
  const int subsampling = chroma == JpegChroma::k444   ? TJSAMP_444
                          : chroma == JpegChroma::k422 ? TJSAMP_422
                                                       : TJSAMP_420;
  Handle handle(tjInitCompress());
  if (!handle) throw Error(std::string("cannot start the JPEG encoder: ") + tjGetErrorStr());
  unsigned char* out = nullptr;
  unsigned long size = 0;
  if (tjCompress2(handle.get(), bgr, width, width * 3, height, TJPF_BGR, &out, &size, subsampling,
                  quality, 0) != 0) {
    if (out) tjFree(out);
    throw Error(std::string("JPEG encoding failed: ") + tjGetErrorStr2(handle.get()));
  }
  std::string bytes(reinterpret_cast<const char*>(out), size);
  tjFree(out);
  return bytes;
}

}  // namespace cnp::data
