#pragma once
// One checkpoint's weights from rank 0 to every rank, so that a sweep reads each checkpoint file
// once (on rank 0) instead of once per rank: 100 checkpoints on 64 GPUs read 100 files from the
// cluster's file system, not 6,400. MPI_Bcast on CPUs; NCCL through device buffers on GPUs
// (pipeline/nccl_broadcast.cpp; byte counts in docs/gpu.md).
#include <mpi.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "model/checkpoint.h"

namespace cnp::pipeline {

class ByteBroadcast {
 public:
  virtual ~ByteBroadcast() = default;
  // Rank 0's `bytes` reach every rank; the others pass a buffer already sized to match.
  // Collective.
  virtual void broadcast(std::vector<uint8_t>& bytes) = 0;
  virtual const char* name() const = 0;
};

std::unique_ptr<ByteBroadcast> make_mpi_broadcast(MPI_Comm comm);
#ifdef CNP_HAVE_NCCL
// One NCCL communicator over `comm` (its unique id sent with MPI) on CUDA device `cuda_device`.
// Collective; throws cnp::Error on a CUDA or NCCL failure.
std::unique_ptr<ByteBroadcast> make_nccl_broadcast(MPI_Comm comm, int cuda_device);
#endif

// A checkpoint's tensors and description as one buffer, and back. unpack_checkpoint checks every
// length against the buffer (a cnp::Error, never an overrun).
std::vector<uint8_t> pack_checkpoint(const model::Checkpoint& checkpoint);
model::Checkpoint unpack_checkpoint(const std::vector<uint8_t>& bytes);

// Rank 0's half of a broadcast, done without MPI (so on any thread, ahead of time): the
// checkpoint read from its file (or the one it already holds), packed when other ranks need it,
// or the error (one line naming the file).
struct PreparedCheckpoint {
  std::shared_ptr<const model::Checkpoint> checkpoint;
  std::vector<uint8_t> packed;
  std::string error;
};
// Never throws: a failure is returned in `error`, for every rank to raise.
PreparedCheckpoint prepare_checkpoint(const std::string& path,
                                      std::shared_ptr<const model::Checkpoint> have, bool pack);

// Collective. Rank 0 passes what prepare_checkpoint gave (the others an empty one); every rank
// returns its copy of the checkpoint (rank 0: the prepared one; the others: the packed bytes,
// unpacked only when `unpacked` is true, else left in `*packed`), or every rank throws rank 0's
// error.
std::shared_ptr<const model::Checkpoint> broadcast_prepared(MPI_Comm comm, ByteBroadcast& transport,
                                                            PreparedCheckpoint prepared,
                                                            std::vector<uint8_t>* packed = nullptr);

// Rank 0 reads `path` (unless it passes the checkpoint in `have`); every rank returns the same
// checkpoint, or every rank throws rank 0's error (one line naming the file). Collective.
std::shared_ptr<const model::Checkpoint> broadcast_checkpoint(
    MPI_Comm comm, ByteBroadcast& transport, const std::string& path,
    std::shared_ptr<const model::Checkpoint> have = nullptr);

}  // namespace cnp::pipeline
