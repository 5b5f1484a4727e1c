#pragma once
// <output>/samples.h5: the per-sample joint errors of every job of a sweep, one
// dataset per job stem (INTERFACE.md "Added in the second wave"), so `cnp compare`
// can recompute every table and paired comparison without inference.
//
// Layout (readable by h5py): dataset "/<stem>", N rows of a compound type
//   image_id int64, subject, action_idx, subaction, camera int32,
//   mpjpe, pa_mpjpe, n_mpjpe float32[17]   (per-joint errors in mm, Thorax dropped)
// with attributes variant, bbox, headline (strings) and epoch, protocol, flip (int64).
#include <map>
#include <mutex>
#include <string>
#include <vector>

#include "pipeline/metrics.h"

namespace cnp::pipeline {

struct JobSamples {
  std::string variant;
  int epoch = 0;
  int protocol = 2;
  bool flip = false;
  std::string bbox = "gt";
  std::vector<SampleErrors> samples;
};

// Every dataset of a samples file, by stem. Throws cnp::Error naming the file and the
// dataset (and the image id) on a malformed file, a negative or non-finite error.
std::map<std::string, JobSamples> read_samples_file(const std::string& path);

// Adds or replaces the datasets of `jobs` (stem -> samples), keeping the others.
// Atomic: the new file is written beside it and renamed over it.
void update_samples_file(const std::string& path, const std::map<std::string, JobSamples>& jobs);

// Taken around the sweep's HDF5 calls (these functions take it; the runner takes it
// around its crop-cache reads): rank 0's result writer thread runs beside the pass's
// cache reads, and an HDF5 built without thread safety must never see two calls at once.
// Where the library is thread-safe (H5_HAVE_THREADSAFE, as Debian's) it locks nothing.
std::unique_lock<std::recursive_mutex> hdf5_guard();

}  // namespace cnp::pipeline
