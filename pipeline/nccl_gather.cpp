// NCCL gather path: the same per-sample coordinates as the MPI path, moved through
// device buffers with ncclSend/ncclRecv (uneven shards rule out ncclAllGather
// without padding). Built only with -DCNP_WITH_NCCL=ON; never run without a GPU.
#include <cuda_runtime.h>
#include <nccl.h>

#include <string>

#include "common/error.h"
#include "pipeline/gather.h"

namespace cnp::pipeline {
namespace {

void check_cuda(cudaError_t status, const char* what) {
  if (status != cudaSuccess) {
    throw Error(std::string("nccl gather: ") + what + ": " + cudaGetErrorString(status));
  }
}

void check_nccl(ncclResult_t status, const char* what) {
  if (status != ncclSuccess) {
    throw Error(std::string("nccl gather: ") + what + ": " + ncclGetErrorString(status));
  }
}

class NcclFloatGather : public FloatGather {
 public:
  NcclFloatGather(MPI_Comm comm, int cuda_device) {
    MPI_Comm_rank(comm, &rank_);
    MPI_Comm_size(comm, &size_);
    check_cuda(cudaSetDevice(cuda_device), "cudaSetDevice");
    ncclUniqueId id;
    if (rank_ == 0) check_nccl(ncclGetUniqueId(&id), "ncclGetUniqueId");
    MPI_Bcast(&id, sizeof(id), MPI_BYTE, 0, comm);
    check_nccl(ncclCommInitRank(&comm_, size_, id, rank_), "ncclCommInitRank");
    check_cuda(cudaStreamCreate(&stream_), "cudaStreamCreate");
  }

  ~NcclFloatGather() override {
    if (buffer_) cudaFree(buffer_);
    if (stream_) cudaStreamDestroy(stream_);
    if (comm_) ncclCommDestroy(comm_);
  }

  void gather(const float* local, const std::vector<int64_t>& counts, float* root_out) override {
    int64_t total = 0;
    for (int64_t c : counts) total += c;
    const int64_t mine = counts[rank_];
    // Rank 0 holds the whole result; the others only their own block.
    reserve(static_cast<size_t>(rank_ == 0 ? total : mine));
    int64_t my_offset = 0;
    for (int r = 0; r < rank_; ++r) my_offset += counts[r];
    float* my_block = buffer_ + (rank_ == 0 ? my_offset : 0);
    if (mine > 0) {
      check_cuda(
          cudaMemcpyAsync(my_block, local, mine * sizeof(float), cudaMemcpyHostToDevice, stream_),
          "cudaMemcpy to device");
    }
    check_nccl(ncclGroupStart(), "ncclGroupStart");
    if (rank_ == 0) {
      int64_t offset = counts[0];
      for (int r = 1; r < size_; ++r) {
        if (counts[r] > 0) {
          check_nccl(ncclRecv(buffer_ + offset, counts[r], ncclFloat32, r, comm_, stream_),
                     "ncclRecv");
        }
        offset += counts[r];
      }
    } else if (mine > 0) {
      check_nccl(ncclSend(my_block, mine, ncclFloat32, 0, comm_, stream_), "ncclSend");
    }
    check_nccl(ncclGroupEnd(), "ncclGroupEnd");
    if (rank_ == 0 && total > 0) {
      check_cuda(cudaMemcpyAsync(root_out, buffer_, total * sizeof(float), cudaMemcpyDeviceToHost,
                                 stream_),
                 "cudaMemcpy to host");
    }
    check_cuda(cudaStreamSynchronize(stream_), "cudaStreamSynchronize");
  }

  const char* name() const override { return "nccl"; }

 private:
  void reserve(size_t floats) {
    if (floats <= capacity_) return;
    if (buffer_) cudaFree(buffer_);
    buffer_ = nullptr;
    capacity_ = 0;
    check_cuda(cudaMalloc(reinterpret_cast<void**>(&buffer_), floats * sizeof(float)),
               "cudaMalloc");
    capacity_ = floats;
  }

  int rank_ = 0;
  int size_ = 1;
  ncclComm_t comm_ = nullptr;
  cudaStream_t stream_ = nullptr;
  float* buffer_ = nullptr;
  size_t capacity_ = 0;
};

}  // namespace

std::unique_ptr<FloatGather> make_nccl_gather(MPI_Comm comm, int cuda_device) {
  return std::make_unique<NcclFloatGather>(comm, cuda_device);
}

}  // namespace cnp::pipeline
