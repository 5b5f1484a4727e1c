// samples.h5 through the HDF5 C API (the project's HDF5 dependency; h5py reads it).
#include "pipeline/samples_h5.h"

#include <hdf5.h>

#include <cmath>
#include <cstddef>
#include <filesystem>
#include <mutex>

#include "common/error.h"
#include "common/files.h"
#include "data/hdf5_io.h"

namespace cnp::pipeline {
namespace {
namespace fs = std::filesystem;
using data::hdf5::check;
using data::hdf5::checked;
using data::hdf5::Handle;

// One row as it sits in memory for H5Dread/H5Dwrite.
struct Row {
  int64_t image_id;
  int32_t subject, action_idx, subaction, camera;
  float mpjpe[kEvalJoints], pa_mpjpe[kEvalJoints], n_mpjpe[kEvalJoints];
};

hid_t row_type() {
  const hsize_t joints = kEvalJoints;
  const hid_t joint_array = H5Tarray_create2(H5T_NATIVE_FLOAT, 1, &joints);
  const hid_t t = H5Tcreate(H5T_COMPOUND, sizeof(Row));
  H5Tinsert(t, "image_id", HOFFSET(Row, image_id), H5T_NATIVE_INT64);
  H5Tinsert(t, "subject", HOFFSET(Row, subject), H5T_NATIVE_INT32);
  H5Tinsert(t, "action_idx", HOFFSET(Row, action_idx), H5T_NATIVE_INT32);
  H5Tinsert(t, "subaction", HOFFSET(Row, subaction), H5T_NATIVE_INT32);
  H5Tinsert(t, "camera", HOFFSET(Row, camera), H5T_NATIVE_INT32);
  H5Tinsert(t, "mpjpe", HOFFSET(Row, mpjpe), joint_array);
  H5Tinsert(t, "pa_mpjpe", HOFFSET(Row, pa_mpjpe), joint_array);
  H5Tinsert(t, "n_mpjpe", HOFFSET(Row, n_mpjpe), joint_array);
  H5Tclose(joint_array);
  return t;
}

void write_job(hid_t file, const std::string& stem, const JobSamples& job,
               const std::string& path) {
  const std::string where = path + ": dataset '" + stem + "'";
  std::vector<Row> rows(job.samples.size());
  for (size_t i = 0; i < rows.size(); ++i) {
    const SampleErrors& s = job.samples[i];
    Row& r = rows[i];
    r.image_id = s.image_id;
    r.subject = s.subject;
    r.action_idx = s.action_idx;
    r.subaction = s.subaction;
    r.camera = s.camera;
    for (int j = 0; j < kEvalJoints; ++j) {
      r.mpjpe[j] = static_cast<float>(s.joint_error[kMpjpe][j]);
      r.pa_mpjpe[j] = static_cast<float>(s.joint_error[kPaMpjpe][j]);
      r.n_mpjpe[j] = static_cast<float>(s.joint_error[kNMpjpe][j]);
    }
  }
  const hsize_t n = rows.size();
  Handle type = checked(row_type(), H5Tclose, where + ": cannot create row type");
  Handle space =
      checked(H5Screate_simple(1, &n, nullptr), H5Sclose, where + ": cannot create dataspace");
  Handle set = checked(H5Dcreate2(file, stem.c_str(), type.get(), space.get(), H5P_DEFAULT,
                                  H5P_DEFAULT, H5P_DEFAULT),
                       H5Dclose, where + ": cannot create");
  if (n > 0) {
    check(H5Dwrite(set.get(), type.get(), H5S_ALL, H5S_ALL, H5P_DEFAULT, rows.data()),
          where + ": cannot write");
  }
  data::hdf5::write_string_attribute(set.get(), where, "variant", job.variant);
  data::hdf5::write_int_attribute(set.get(), where, "epoch", job.epoch);
  data::hdf5::write_int_attribute(set.get(), where, "protocol", job.protocol);
  data::hdf5::write_int_attribute(set.get(), where, "flip", job.flip ? 1 : 0);
  data::hdf5::write_string_attribute(set.get(), where, "bbox", job.bbox);
  data::hdf5::write_string_attribute(set.get(), where, "headline", headline_metric(job.protocol));
}

JobSamples read_job(hid_t file, const std::string& stem, const std::string& path) {
  const std::string where = path + ": dataset '" + stem + "'";
  Handle set =
      checked(H5Dopen2(file, stem.c_str(), H5P_DEFAULT), H5Dclose, where + ": cannot open");
  Handle space = checked(H5Dget_space(set.get()), H5Sclose, where + ": no dataspace");
  if (H5Sget_simple_extent_ndims(space.get()) != 1) throw Error(where + ": must be 1-D");
  hsize_t n = 0;
  H5Sget_simple_extent_dims(space.get(), &n, nullptr);
  Handle type = checked(row_type(), H5Tclose, where + ": cannot create row type");
  std::vector<Row> rows(n);
  if (n > 0) {
    // Conversion by member name: a dataset without one of the members fails here.
    check(H5Dread(set.get(), type.get(), H5S_ALL, H5S_ALL, H5P_DEFAULT, rows.data()),
          where +
              ": rows are not (image_id, subject, action_idx, subaction, camera, mpjpe[17], "
              "pa_mpjpe[17], n_mpjpe[17])");
  }
  JobSamples job;
  job.variant = data::hdf5::read_string_attribute(set.get(), where, "variant");
  job.epoch = static_cast<int>(data::hdf5::read_int_attribute(set.get(), where, "epoch"));
  job.protocol = static_cast<int>(data::hdf5::read_int_attribute(set.get(), where, "protocol"));
  if (job.protocol != 1 && job.protocol != 2)
    throw Error(where + ": attribute 'protocol' must be 1 or 2");
  job.flip = data::hdf5::read_int_attribute(set.get(), where, "flip") != 0;
  job.bbox = data::hdf5::read_string_attribute(set.get(), where, "bbox");
  job.samples.resize(n);
  for (size_t i = 0; i < n; ++i) {
    const Row& r = rows[i];
    SampleErrors& s = job.samples[i];
    s.image_id = r.image_id;
    s.subject = r.subject;
    s.action_idx = r.action_idx;
    s.subaction = r.subaction;
    s.camera = r.camera;
    for (int j = 0; j < kEvalJoints; ++j) {
      const float values[3] = {r.mpjpe[j], r.pa_mpjpe[j], r.n_mpjpe[j]};
      for (int k = 0; k < 3; ++k) {
        if (!std::isfinite(values[k]) || values[k] < 0) {
          throw Error(where + ": image " + std::to_string(r.image_id) + " has error " +
                      std::to_string(values[k]) + " mm (must be finite and >= 0)");
        }
        s.joint_error[k][j] = values[k];
      }
    }
  }
  return job;
}

herr_t collect_name(hid_t, const char* name, const H5L_info_t*, void* data) {
  static_cast<std::vector<std::string>*>(data)->push_back(name);
  return 0;
}

}  // namespace

std::unique_lock<std::recursive_mutex> hdf5_guard() {
  static std::recursive_mutex mutex;  // recursive: update_samples_file reads the file too
#ifdef H5_HAVE_THREADSAFE
  return std::unique_lock<std::recursive_mutex>(mutex, std::defer_lock);
#else
  return std::unique_lock<std::recursive_mutex>(mutex);
#endif
}

std::map<std::string, JobSamples> read_samples_file(const std::string& path) {
  const auto lock = hdf5_guard();
  data::hdf5::quiet();
  if (H5Fis_hdf5(path.c_str()) <= 0) throw Error(path + ": not an HDF5 file (or unreadable)");
  Handle file =
      checked(H5Fopen(path.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT), H5Fclose, path + ": cannot open");
  std::vector<std::string> names;
  check(H5Literate(file.get(), H5_INDEX_NAME, H5_ITER_INC, nullptr, &collect_name, &names),
        path + ": cannot list datasets");
  std::map<std::string, JobSamples> out;
  for (const auto& name : names) out[name] = read_job(file.get(), name, path);
  return out;
}

void update_samples_file(const std::string& path, const std::map<std::string, JobSamples>& jobs) {
  const auto lock = hdf5_guard();
  data::hdf5::quiet();
  const fs::path target(path);
  if (target.has_parent_path()) fs::create_directories(target.parent_path());
  const std::string tmp = temporary_name(path);
  // Only adding datasets (a sweep finishing new jobs): copy the file and append, which
  // costs a file copy instead of decoding and re-encoding every job. Replacing one
  // rewrites everything, since HDF5 does not reclaim a deleted dataset's space.
  bool append = fs::exists(path);
  if (append) {
    Handle file = checked(H5Fopen(path.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT), H5Fclose,
                          path + ": cannot open as HDF5");
    for (const auto& [stem, job] : jobs) {
      if (H5Lexists(file.get(), stem.c_str(), H5P_DEFAULT) != 0) append = false;
    }
  }
  try {
    if (append) {
      fs::copy_file(path, tmp, fs::copy_options::overwrite_existing);
      Handle file = checked(H5Fopen(tmp.c_str(), H5F_ACC_RDWR, H5P_DEFAULT), H5Fclose,
                            tmp + ": cannot open as HDF5");
      for (const auto& [stem, job] : jobs) write_job(file.get(), stem, job, path);
      check(H5Fflush(file.get(), H5F_SCOPE_GLOBAL), tmp + ": cannot flush");
    } else {
      std::map<std::string, JobSamples> all;
      if (fs::exists(path)) all = read_samples_file(path);
      for (const auto& [stem, job] : jobs) all[stem] = job;
      Handle file = checked(H5Fcreate(tmp.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT),
                            H5Fclose, tmp + ": cannot create HDF5 file");
      for (const auto& [stem, job] : all) write_job(file.get(), stem, job, path);
      check(H5Fflush(file.get(), H5F_SCOPE_GLOBAL), tmp + ": cannot flush");
    }
    fs::rename(tmp, path);
  } catch (...) {
    std::error_code ec;
    fs::remove(tmp, ec);
    throw;
  }
}

}  // namespace cnp::pipeline
