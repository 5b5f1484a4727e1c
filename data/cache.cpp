#include "data/cache.h"

#include <hdf5.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <filesystem>
#include <sstream>
#include <thread>
#include <unordered_map>

#include "common/error.h"
#include "common/files.h"
#include "data/hdf5_io.h"
#include "data/preprocess.h"

namespace cnp::data {
namespace {
using hdf5::check;
using hdf5::checked;
using hdf5::Handle;
using hdf5::read_dataset;
using hdf5::read_string_attribute;
using hdf5::vlen_string_type;
using hdf5::write_dataset;
using hdf5::write_int_attribute;
using hdf5::write_string_attribute;

// v2: one row per sample, with the crop error of samples that did not decode (v1 dropped
// them, so rows no longer lined up with the samples on a rerun).
constexpr const char* kFormat = "cnp-h36m-cache-v2";

std::string stat_text(const std::string& file) {
  struct stat st {};
  if (::stat(file.c_str(), &st) != 0) return file + " missing\n";
  std::ostringstream out;
  out << file << " " << st.st_size << " " << st.st_mtim.tv_sec << "." << st.st_mtim.tv_nsec << "\n";
  return out.str();
}

}  // namespace

std::string test_set_fingerprint(const TestSetOptions& options, const TestSet& set) {
  std::ostringstream text;
  text << kFormat << "\nroot " << options.root << "\nprotocol " << options.protocol << "\nsubjects";
  for (int s : options.subjects) text << " " << s;
  text << "\nbbox " << box_source_name(options.box_source) << " " << options.bbox_root_file
       << "\nsample_every " << options.sample_every << "\nskip_bad " << options.skip_bad_samples
       << "\nsamples " << set.samples.size() << "\n";
  for (const auto& file : set.source_files) text << stat_text(file);
  for (const auto& sample : set.samples) text << stat_text(image_path(options.root, sample));
  return sha256_hex(text.str());
}

std::string cache_file_path(const std::string& cache_dir, const TestSetOptions& options) {
  return (std::filesystem::path(cache_dir) /
          ("h36m_p" + std::to_string(options.protocol) + "_" + box_source_name(options.box_source) +
           "_every" + std::to_string(options.sample_every) + ".h5"))
      .string();
}

namespace {
void build_into(const std::string& path, const std::string& tmp, const TestSetOptions& options,
                const TestSet& set, int threads) {
  hdf5::quiet();
  Handle file = checked(H5Fcreate(tmp.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT), H5Fclose,
                        tmp + ": cannot create HDF5 file");

  // Crops: N x 256 x 256 x 3 uint8, one sample per chunk, grown as samples decode.
  hsize_t dims[4] = {0, kInputSize, kInputSize, 3};
  hsize_t max_dims[4] = {H5S_UNLIMITED, kInputSize, kInputSize, 3};
  hsize_t chunk[4] = {1, kInputSize, kInputSize, 3};
  Handle space(H5Screate_simple(4, dims, max_dims), H5Sclose);
  Handle props(H5Pcreate(H5P_DATASET_CREATE), H5Pclose);
  H5Pset_chunk(props.get(), 4, chunk);
  Handle crops = checked(H5Dcreate2(file.get(), "crops", H5T_STD_U8LE, space.get(), H5P_DEFAULT,
                                    props.get(), H5P_DEFAULT),
                         H5Dclose, tmp + ": cannot create dataset 'crops'");
  write_string_attribute(crops.get(), path, "layout", "N x H x W x C, uint8, BGR");

  if (threads <= 0) threads = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  const size_t block = static_cast<size_t>(threads) * 8;
  std::vector<uint8_t> buffer(block * kCropBytes);
  std::vector<std::string> errors(block);
  // Every sample gets a row, in set order; one that failed to decode keeps a zero crop
  // and its error, so readers match rows to samples by image id and skip it themselves.
  std::vector<std::string> crop_errors;
  crop_errors.reserve(set.samples.size());
  std::vector<std::pair<int64_t, std::string>> skipped;
  for (const auto& s : set.skipped) skipped.emplace_back(s.image_id, s.reason);

  for (size_t begin = 0; begin < set.samples.size(); begin += block) {
    const size_t count = std::min(block, set.samples.size() - begin);
    std::atomic<size_t> next{0};
    auto work = [&] {
      for (size_t i = next++; i < count; i = next++) {
        errors[i].clear();
        const Sample& s = set.samples[begin + i];
        try {
          crop_image_file(image_path(options.root, s), s.bbox, buffer.data() + i * kCropBytes);
        } catch (const std::exception& e) {
          errors[i] = "image id " + std::to_string(s.image_id) + ": " + e.what();
        }
      }
    };
    std::vector<std::thread> pool;
    for (int t = 1; t < std::min<int>(threads, static_cast<int>(count)); ++t)
      pool.emplace_back(work);
    work();
    for (auto& t : pool) t.join();

    // Append the crops in order.
    for (size_t i = 0; i < count; ++i) {
      const Sample& s = set.samples[begin + i];
      if (!errors[i].empty()) {
        if (!options.skip_bad_samples) throw Error(errors[i]);
        std::fill_n(buffer.data() + i * kCropBytes, kCropBytes, uint8_t{0});
      }
      crop_errors.push_back(errors[i]);
      const hsize_t row = begin + i;
      hsize_t new_dims[4] = {row + 1, kInputSize, kInputSize, 3};
      check(H5Dset_extent(crops.get(), new_dims), tmp + ": cannot grow dataset 'crops'");
      Handle file_space(H5Dget_space(crops.get()), H5Sclose);
      hsize_t start[4] = {row, 0, 0, 0};
      hsize_t one[4] = {1, kInputSize, kInputSize, 3};
      H5Sselect_hyperslab(file_space.get(), H5S_SELECT_SET, start, nullptr, one, nullptr);
      Handle mem_space(H5Screate_simple(4, one, nullptr), H5Sclose);
      check(H5Dwrite(crops.get(), H5T_NATIVE_UINT8, mem_space.get(), file_space.get(), H5P_DEFAULT,
                     buffer.data() + i * kCropBytes),
            tmp + ": cannot write crop of image id " + std::to_string(s.image_id));
    }
  }

  // Metadata, one row per sample.
  const size_t n = set.samples.size();
  std::vector<int64_t> image_id(n);
  std::vector<int32_t> ints[5];  // subject, action_idx, subaction, camera, frame
  for (auto& v : ints) v.resize(n);
  std::vector<int32_t> image_size(n * 2);
  std::vector<double> bbox(n * 4), root(n * 3), f(n * 2), c(n * 2), joints(n * kNumJoints * 3);
  std::vector<const char*> files(n);
  for (size_t i = 0; i < n; ++i) {
    const Sample& s = set.samples[i];
    image_id[i] = s.image_id;
    ints[0][i] = s.subject;
    ints[1][i] = s.action_idx;
    ints[2][i] = s.subaction;
    ints[3][i] = s.camera;
    ints[4][i] = s.frame;
    image_size[i * 2] = s.image_width;
    image_size[i * 2 + 1] = s.image_height;
    for (int k = 0; k < 4; ++k) bbox[i * 4 + k] = s.bbox[k];
    for (int k = 0; k < 3; ++k) root[i * 3 + k] = s.root_cam[k];
    for (int k = 0; k < 2; ++k) f[i * 2 + k] = s.f[k], c[i * 2 + k] = s.c[k];
    for (int j = 0; j < kNumJoints; ++j) {
      for (int k = 0; k < 3; ++k) joints[(i * kNumJoints + j) * 3 + k] = s.joints_cam[j][k];
    }
    files[i] = s.image_file.c_str();
  }
  const hid_t fid = file.get();
  const hsize_t hn = n;
  write_dataset(fid, tmp, "image_id", H5T_STD_I64LE, {hn}, image_id.data());
  const char* int_names[5] = {"subject", "action_idx", "subaction", "camera", "frame"};
  for (int k = 0; k < 5; ++k)
    write_dataset(fid, tmp, int_names[k], H5T_STD_I32LE, {hn}, ints[k].data());
  write_dataset(fid, tmp, "image_size", H5T_STD_I32LE, {hn, 2}, image_size.data());
  write_dataset(fid, tmp, "bbox", H5T_IEEE_F64LE, {hn, 4}, bbox.data());
  write_dataset(fid, tmp, "root_cam", H5T_IEEE_F64LE, {hn, 3}, root.data());
  write_dataset(fid, tmp, "f", H5T_IEEE_F64LE, {hn, 2}, f.data());
  write_dataset(fid, tmp, "c", H5T_IEEE_F64LE, {hn, 2}, c.data());
  write_dataset(fid, tmp, "joints_cam", H5T_IEEE_F64LE, {hn, kNumJoints, 3}, joints.data());
  {
    Handle type = vlen_string_type();
    write_dataset(fid, tmp, "image_file", type.get(), {hn}, files.data());
    std::vector<const char*> error_texts(n);
    for (size_t i = 0; i < n; ++i) error_texts[i] = crop_errors[i].c_str();
    write_dataset(fid, tmp, "crop_error", type.get(), {hn}, error_texts.data());
    std::vector<int64_t> skipped_ids;
    std::vector<const char*> reasons;
    for (const auto& [id, reason] : skipped) {
      skipped_ids.push_back(id);
      reasons.push_back(reason.c_str());
    }
    const hsize_t ns = skipped.size();
    write_dataset(fid, tmp, "skipped_image_id", H5T_STD_I64LE, {ns}, skipped_ids.data());
    write_dataset(fid, tmp, "skipped_reason", type.get(), {ns}, reasons.data());
  }
  write_string_attribute(fid, tmp, "format", kFormat);
  write_string_attribute(fid, tmp, "fingerprint", test_set_fingerprint(options, set));
  write_string_attribute(fid, tmp, "box_source", box_source_name(options.box_source));
  write_int_attribute(fid, tmp, "protocol", options.protocol);
  write_int_attribute(fid, tmp, "sample_every", options.sample_every);
  write_int_attribute(fid, tmp, "num_samples", static_cast<int64_t>(n));
  crops.reset();
  check(H5Fflush(fid, H5F_SCOPE_GLOBAL), tmp + ": cannot flush");
  file.reset();
}
}  // namespace

void build_cache(const std::string& path, const TestSetOptions& options, const TestSet& set,
                 int threads) {
  namespace fs = std::filesystem;
  const fs::path target(path);
  std::error_code ec;
  if (target.has_parent_path()) fs::create_directories(target.parent_path(), ec);
  if (ec) throw Error(target.parent_path().string() + ": cannot create directory: " + ec.message());
  const std::string tmp = temporary_name(path);
  try {
    build_into(path, tmp, options, set, threads);
  } catch (...) {
    std::remove(tmp.c_str());
    throw;
  }
  fs::rename(tmp, target, ec);
  if (ec) {
    std::remove(tmp.c_str());
    throw Error(path + ": cannot rename temporary cache into place: " + ec.message());
  }
}

struct CacheReader::Impl {
  std::string path;
  Handle file, crops;
  std::string fingerprint;
  std::vector<Sample> samples;
  std::vector<std::string> crop_errors;  // per row; "" when the crop is good
  std::unordered_map<int64_t, int64_t> row_by_id;
};

CacheReader::CacheReader(const std::string& path) : impl_(new Impl) {
  try {
    hdf5::quiet();
    impl_->path = path;
    if (!file_exists(path)) throw Error(path + ": cache file missing");
    impl_->file = checked(H5Fopen(path.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT), H5Fclose,
                          path + ": not a readable HDF5 file");
    const hid_t fid = impl_->file.get();
    if (read_string_attribute(fid, path, "format") != kFormat) {
      throw Error(path + ": not a cnp Human3.6M cache (format attribute differs)");
    }
    impl_->fingerprint = read_string_attribute(fid, path, "fingerprint");

    // The sample count comes from image_id's shape.
    Handle ids = checked(H5Dopen2(fid, "image_id", H5P_DEFAULT), H5Dclose,
                         path + ": missing dataset 'image_id'");
    Handle space(H5Dget_space(ids.get()), H5Sclose);
    hsize_t n = 0;
    if (H5Sget_simple_extent_ndims(space.get()) != 1) throw Error(path + ": bad 'image_id'");
    H5Sget_simple_extent_dims(space.get(), &n, nullptr);
    const size_t count = n;

    auto image_id = read_dataset<int64_t>(fid, path, "image_id", H5T_NATIVE_INT64, count, {});
    const char* int_names[5] = {"subject", "action_idx", "subaction", "camera", "frame"};
    std::vector<int32_t> ints[5];
    for (int k = 0; k < 5; ++k)
      ints[k] = read_dataset<int32_t>(fid, path, int_names[k], H5T_NATIVE_INT32, count, {});
    auto image_size = read_dataset<int32_t>(fid, path, "image_size", H5T_NATIVE_INT32, count, {2});
    auto bbox = read_dataset<double>(fid, path, "bbox", H5T_NATIVE_DOUBLE, count, {4});
    auto root = read_dataset<double>(fid, path, "root_cam", H5T_NATIVE_DOUBLE, count, {3});
    auto f = read_dataset<double>(fid, path, "f", H5T_NATIVE_DOUBLE, count, {2});
    auto c = read_dataset<double>(fid, path, "c", H5T_NATIVE_DOUBLE, count, {2});
    auto joints = read_dataset<double>(fid, path, "joints_cam", H5T_NATIVE_DOUBLE, count,
                                       {static_cast<hsize_t>(kNumJoints), 3});
    Handle string_type = vlen_string_type();
    auto files = read_dataset<char*>(fid, path, "image_file", string_type.get(), count, {});
    auto errors = read_dataset<char*>(fid, path, "crop_error", string_type.get(), count, {});
    impl_->crop_errors.resize(count);
    for (size_t i = 0; i < count; ++i) {
      impl_->crop_errors[i] = errors[i] ? errors[i] : "";
      H5free_memory(errors[i]);
    }

    impl_->samples.resize(count);
    for (size_t i = 0; i < count; ++i) {
      Sample& s = impl_->samples[i];
      s.image_id = image_id[i];
      s.subject = ints[0][i];
      s.action_idx = ints[1][i];
      s.subaction = ints[2][i];
      s.camera = ints[3][i];
      s.frame = ints[4][i];
      s.image_width = image_size[i * 2];
      s.image_height = image_size[i * 2 + 1];
      for (int k = 0; k < 4; ++k) s.bbox[k] = bbox[i * 4 + k];
      for (int k = 0; k < 3; ++k) s.root_cam[k] = root[i * 3 + k];
      for (int k = 0; k < 2; ++k) s.f[k] = f[i * 2 + k], s.c[k] = c[i * 2 + k];
      for (int j = 0; j < kNumJoints; ++j) {
        for (int k = 0; k < 3; ++k) s.joints_cam[j][k] = joints[(i * kNumJoints + j) * 3 + k];
      }
      s.image_file = files[i] ? files[i] : "";
      H5free_memory(files[i]);
      if (!impl_->row_by_id.emplace(s.image_id, static_cast<int64_t>(i)).second)
        throw Error(path + ": image id " + std::to_string(s.image_id) + " appears twice");
    }

    impl_->crops =
        checked(H5Dopen2(fid, "crops", H5P_DEFAULT), H5Dclose, path + ": missing dataset 'crops'");
    Handle crop_space(H5Dget_space(impl_->crops.get()), H5Sclose);
    hsize_t dims[4] = {0, 0, 0, 0};
    if (H5Sget_simple_extent_ndims(crop_space.get()) != 4) throw Error(path + ": bad 'crops'");
    H5Sget_simple_extent_dims(crop_space.get(), dims, nullptr);
    if (dims[0] != count || dims[1] != kInputSize || dims[2] != kInputSize || dims[3] != 3) {
      throw Error(path + ": dataset 'crops' does not match the samples");
    }
  } catch (...) {
    delete impl_;
    throw;
  }
}

CacheReader::~CacheReader() {
  delete impl_;
}

const std::string& CacheReader::fingerprint() const {
  return impl_->fingerprint;
}
const std::vector<Sample>& CacheReader::samples() const {
  return impl_->samples;
}

void CacheReader::read_crops(int64_t begin, int64_t count, uint8_t* out) const {
  const int64_t n = static_cast<int64_t>(impl_->samples.size());
  if (begin < 0 || count < 0 || begin + count > n) {
    throw Error(impl_->path + ": crops [" + std::to_string(begin) + ", " +
                std::to_string(begin + count) + ") outside 0.." + std::to_string(n));
  }
  if (count == 0) return;
  hdf5::quiet();  // the data path reads from its own threads
  for (int64_t row = begin; row < begin + count; ++row) {
    if (!impl_->crop_errors[row].empty())
      throw Error(impl_->path + ": no crop for " + impl_->crop_errors[row] +
                  " (recorded when the cache was built)");
  }
  Handle file_space(H5Dget_space(impl_->crops.get()), H5Sclose);
  hsize_t start[4] = {static_cast<hsize_t>(begin), 0, 0, 0};
  hsize_t size[4] = {static_cast<hsize_t>(count), kInputSize, kInputSize, 3};
  H5Sselect_hyperslab(file_space.get(), H5S_SELECT_SET, start, nullptr, size, nullptr);
  Handle mem_space(H5Screate_simple(4, size, nullptr), H5Sclose);
  check(H5Dread(impl_->crops.get(), H5T_NATIVE_UINT8, mem_space.get(), file_space.get(),
                H5P_DEFAULT, out),
        impl_->path + ": cannot read crops [" + std::to_string(begin) + ", " +
            std::to_string(begin + count) + ")");
}

int64_t CacheReader::row_of(int64_t image_id) const {
  auto it = impl_->row_by_id.find(image_id);
  return it == impl_->row_by_id.end() ? -1 : it->second;
}

void CacheReader::read_crop(int64_t image_id, uint8_t* out) const {
  const int64_t row = row_of(image_id);
  if (row < 0)
    throw Error(impl_->path + ": image id " + std::to_string(image_id) + " is not in the cache");
  read_crops(row, 1, out);
}

bool CacheReader::rows_match(const std::vector<Sample>& samples) const {
  if (samples.size() != impl_->samples.size()) return false;
  for (size_t i = 0; i < samples.size(); ++i) {
    if (samples[i].image_id != impl_->samples[i].image_id) return false;
  }
  return true;
}

std::string ensure_cache(const std::string& cache_dir, const TestSetOptions& options,
                         const TestSet& set, int threads) {
  const std::string path = cache_file_path(cache_dir, options);
  if (file_exists(path)) {
    try {
      CacheReader reader(path);
      if (reader.fingerprint() == test_set_fingerprint(options, set) &&
          reader.rows_match(set.samples))
        return path;
    } catch (const Error&) {
      // unreadable or foreign file: rebuild below
    }
  }
  build_cache(path, options, set, threads);
  return path;
}

}  // namespace cnp::data
