#pragma once
// Thin RAII and error helpers over HDF5's C API, for the test-set cache (data/cache.cpp) and
// the per-sample errors file (pipeline/samples_h5.cpp): every failure becomes one cnp::Error
// naming the file and the dataset or attribute, with the operating system's reason where
// HDF5 recorded one. Users need HDF5's include directories.
#include <hdf5.h>

#include <cstdint>
#include <string>
#include <vector>

#include "common/error.h"

namespace cnp::data::hdf5 {

// HDF5 prints its error stack by default; our errors are one line, so silence it. Call it
// on every thread that uses HDF5: a thread-safe HDF5 keeps that setting per thread.
void quiet();

// Owns one HDF5 identifier.
class Handle {
 public:
  Handle() = default;
  Handle(hid_t id, herr_t (*close)(hid_t)) : id_(id), close_(close) {}
  Handle(Handle&& o) noexcept : id_(o.id_), close_(o.close_) { o.id_ = -1; }
  Handle& operator=(Handle&& o) noexcept {
    reset();
    id_ = o.id_;
    close_ = o.close_;
    o.id_ = -1;
    return *this;
  }
  ~Handle() { reset(); }
  void reset() {
    if (id_ >= 0 && close_) close_(id_);
    id_ = -1;
  }
  hid_t get() const { return id_; }
  bool valid() const { return id_ >= 0; }

 private:
  hid_t id_ = -1;
  herr_t (*close_)(hid_t) = nullptr;
};

// Throws `what`, with the operating system's reason where HDF5 recorded one.
[[noreturn]] void fail(const std::string& what);
// `id` owned, or fail(what) if it is invalid.
Handle checked(hid_t id, herr_t (*close)(hid_t), const std::string& what);
void check(herr_t status, const std::string& what);
Handle vlen_string_type();

template <typename T>
void write_dataset(hid_t file, const std::string& path, const char* name, hid_t type,
                   std::vector<hsize_t> dims, const T* data) {
  Handle space = checked(H5Screate_simple(static_cast<int>(dims.size()), dims.data(), nullptr),
                         H5Sclose, path + ": cannot create dataspace for '" + name + "'");
  Handle set =
      checked(H5Dcreate2(file, name, type, space.get(), H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT),
              H5Dclose, path + ": cannot create dataset '" + name + "'");
  if (dims[0] > 0) {
    check(H5Dwrite(set.get(), type, H5S_ALL, H5S_ALL, H5P_DEFAULT, data),
          path + ": cannot write dataset '" + name + "'");
  }
}

void write_string_attribute(hid_t object, const std::string& path, const char* name,
                            const std::string& value);
void write_int_attribute(hid_t object, const std::string& path, const char* name, int64_t value);
std::string read_string_attribute(hid_t object, const std::string& path, const char* name);
int64_t read_int_attribute(hid_t object, const std::string& path, const char* name);

// Reads a whole dataset whose shape must be {n, inner...}.
template <typename T>
std::vector<T> read_dataset(hid_t file, const std::string& path, const char* name, hid_t mem_type,
                            size_t n, std::vector<hsize_t> inner) {
  Handle set = checked(H5Dopen2(file, name, H5P_DEFAULT), H5Dclose,
                       path + ": missing dataset '" + name + "'");
  Handle space(H5Dget_space(set.get()), H5Sclose);
  const int rank = H5Sget_simple_extent_ndims(space.get());
  std::vector<hsize_t> dims(rank > 0 ? rank : 0);
  if (rank > 0) H5Sget_simple_extent_dims(space.get(), dims.data(), nullptr);
  std::vector<hsize_t> expected = {n};
  expected.insert(expected.end(), inner.begin(), inner.end());
  if (dims != expected) throw Error(path + ": dataset '" + name + "' has an unexpected shape");
  size_t total = n;
  for (hsize_t d : inner) total *= d;
  std::vector<T> out(total);
  if (total > 0) {
    check(H5Dread(set.get(), mem_type, H5S_ALL, H5S_ALL, H5P_DEFAULT, out.data()),
          path + ": cannot read dataset '" + name + "'");
  }
  return out;
}

}  // namespace cnp::data::hdf5
