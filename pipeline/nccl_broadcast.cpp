// NCCL path of the weight broadcast: rank 0's packed checkpoint goes host -> device, is
// broadcast over NCCL (NVLink / InfiniBand between the GPUs), and comes back device -> host on
// every other rank. Built only with -DCNP_WITH_NCCL=ON (CI compiles and links it against
// /usr/local/cuda); it runs only where the sweep's device is a GPU.
#include <cuda_runtime.h>
#include <nccl.h>

#include <string>

#include "common/error.h"
#include "pipeline/weight_broadcast.h"

namespace cnp::pipeline {
namespace {

void check_cuda(cudaError_t status, const char* what) {
  if (status != cudaSuccess) {
    throw Error(std::string("nccl broadcast: ") + what + ": " + cudaGetErrorString(status));
  }
}

void check_nccl(ncclResult_t status, const char* what) {
  if (status != ncclSuccess) {
    throw Error(std::string("nccl broadcast: ") + what + ": " + ncclGetErrorString(status));
  }
}

class NcclByteBroadcast : public ByteBroadcast {
 public:
  NcclByteBroadcast(MPI_Comm comm, int cuda_device) {
    int size = 1;
    MPI_Comm_rank(comm, &rank_);
    MPI_Comm_size(comm, &size);
    check_cuda(cudaSetDevice(cuda_device), "cudaSetDevice");
    ncclUniqueId id;
    if (rank_ == 0) check_nccl(ncclGetUniqueId(&id), "ncclGetUniqueId");
    MPI_Bcast(&id, sizeof(id), MPI_BYTE, 0, comm);
    check_nccl(ncclCommInitRank(&comm_, size, id, rank_), "ncclCommInitRank");
    check_cuda(cudaStreamCreate(&stream_), "cudaStreamCreate");
  }

  ~NcclByteBroadcast() override {
    if (buffer_) cudaFree(buffer_);
    if (stream_) cudaStreamDestroy(stream_);
    if (comm_) ncclCommDestroy(comm_);
  }

  void broadcast(std::vector<uint8_t>& bytes) override {
    if (bytes.empty()) return;
    reserve(bytes.size());
    if (rank_ == 0) {
      check_cuda(
          cudaMemcpyAsync(buffer_, bytes.data(), bytes.size(), cudaMemcpyHostToDevice, stream_),
          "cudaMemcpy to device");
    }
    check_nccl(ncclBroadcast(buffer_, buffer_, bytes.size(), ncclUint8, 0, comm_, stream_),
               "ncclBroadcast");
    if (rank_ != 0) {
      check_cuda(
          cudaMemcpyAsync(bytes.data(), buffer_, bytes.size(), cudaMemcpyDeviceToHost, stream_),
          "cudaMemcpy to host");
    }
    check_cuda(cudaStreamSynchronize(stream_), "cudaStreamSynchronize");
  }

  const char* name() const override { return "nccl"; }

 private:
  void reserve(size_t size) {
    if (size <= capacity_) return;
    if (buffer_) cudaFree(buffer_);
    buffer_ = nullptr;
    capacity_ = 0;
    check_cuda(cudaMalloc(reinterpret_cast<void**>(&buffer_), size), "cudaMalloc");
    capacity_ = size;
  }

  int rank_ = 0;
  ncclComm_t comm_ = nullptr;
  cudaStream_t stream_ = nullptr;
  uint8_t* buffer_ = nullptr;
  size_t capacity_ = 0;
};

}  // namespace

std::unique_ptr<ByteBroadcast> make_nccl_broadcast(MPI_Comm comm, int cuda_device) {
  return std::make_unique<NcclByteBroadcast>(comm, cuda_device);
}

}  // namespace cnp::pipeline
