#pragma once
// Gathering every rank's per-sample outputs to rank 0 in sample order. The MPI
// path always exists; with CNP_HAVE_NCCL and a CUDA device the NCCL path moves the
// same bytes through device buffers (pipeline/nccl_gather.cpp).
#include <mpi.h>

#include <cstdint>
#include <memory>
#include <vector>

namespace cnp::pipeline {

class FloatGather {
 public:
  virtual ~FloatGather() = default;
  // Every rank passes its `local` block of counts[rank] floats; on rank 0, `root_out`
  // (sum of counts) receives the blocks concatenated in rank order. Collective.
  virtual void gather(const float* local, const std::vector<int64_t>& counts, float* root_out) = 0;
  virtual const char* name() const = 0;
};

std::unique_ptr<FloatGather> make_mpi_gather(MPI_Comm comm);

#ifdef CNP_HAVE_NCCL
// One NCCL communicator over `comm` (unique id broadcast with MPI) on CUDA device
// `cuda_device`. Collective; throws cnp::Error on a CUDA/NCCL failure.
std::unique_ptr<FloatGather> make_nccl_gather(MPI_Comm comm, int cuda_device);
#endif

// MPI_Gatherv of bytes (the kept-sample masks), counts per rank, rank order.
void gather_bytes(MPI_Comm comm, const uint8_t* local, const std::vector<int64_t>& counts,
                  uint8_t* root_out);

}  // namespace cnp::pipeline
