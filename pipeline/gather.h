#pragma once
// Gathering every rank's per-sample outputs to rank 0 in sample order, with MPI: a pass's
// coordinates are about 2 MB in all, too little for NCCL to matter (docs/gpu.md); NCCL carries
// the checkpoint weights instead (pipeline/weight_broadcast.h).
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

// MPI_Gatherv of bytes (the kept-sample masks), counts per rank, rank order.
void gather_bytes(MPI_Comm comm, const uint8_t* local, const std::vector<int64_t>& counts,
                  uint8_t* root_out);

}  // namespace cnp::pipeline
