#pragma once
// Packed HDF5 cache of a test set: the sample metadata and the preprocessed uint8
// crops, chunked per sample so every rank reads only its own shard. Readable by h5py.
#include <cstdint>
#include <string>
#include <vector>

#include "data/h36m.h"

namespace cnp::data {

// Fingerprint of the inputs a cache depends on (source file sizes/mtimes/hashes and options).
std::string test_set_fingerprint(const TestSetOptions& options, const TestSet& set);

// "<cache_dir>/h36m_p<protocol>_<gt|detected>_every<N>.h5"
std::string cache_file_path(const std::string& cache_dir, const TestSetOptions& options);

// Builds the cache file (atomically) from the images; threads <= 0 uses all cores.
void build_cache(const std::string& path, const TestSetOptions& options, const TestSet& set,
                 int threads = 0);

class CacheReader {
 public:
  explicit CacheReader(const std::string& path);
  ~CacheReader();
  CacheReader(const CacheReader&) = delete;
  CacheReader& operator=(const CacheReader&) = delete;

  const std::string& fingerprint() const;
  // One row per sample of the test set it was built from, in that order (including
  // samples whose image failed to decode while skip_bad_samples was on).
  const std::vector<Sample>& samples() const;
  // Copies crops [begin, begin + count) into out (count * kCropBytes). Throws
  // cnp::Error naming the image id for a row whose image failed to decode at build time.
  void read_crops(int64_t begin, int64_t count, uint8_t* out) const;
  // The row of an image id, or -1; read_crop copies that row's crop (same errors).
  int64_t row_of(int64_t image_id) const;
  void read_crop(int64_t image_id, uint8_t* out) const;
  // True when the rows hold exactly these samples' image ids, in this order.
  bool rows_match(const std::vector<Sample>& samples) const;

 private:
  struct Impl;
  Impl* impl_;
};

// Opens the cache when it exists and its fingerprint matches, else (re)builds it.
// Returns the path.
std::string ensure_cache(const std::string& cache_dir, const TestSetOptions& options,
                         const TestSet& set, int threads = 0);

}  // namespace cnp::data
