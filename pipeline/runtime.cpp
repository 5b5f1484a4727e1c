#include "pipeline/runtime.h"

#include <algorithm>
#include <cstdlib>

#include "common/error.h"

namespace cnp::pipeline {

ShardRange shard_range(int64_t total, int rank, int ranks) {
  if (ranks <= 0 || rank < 0 || rank >= ranks || total < 0) {
    throw Error("shard_range: bad rank " + std::to_string(rank) + " of " + std::to_string(ranks));
  }
  return {rank * total / ranks, (rank + 1) * total / ranks};
}

int64_t max_shard_size(int64_t total, int ranks) {
  return (total + ranks - 1) / ranks;
}

int64_t batch_rounds(int64_t total, int ranks, int batch_size) {
  const int64_t biggest = max_shard_size(total, ranks);
  return (biggest + batch_size - 1) / batch_size;
}

int resolve_threads_per_rank(int configured, const char* slurm_cpus_per_task, int hardware_cores,
                             int local_ranks) {
  // More than 4 threads per core only thrashes (a typo once spawned 20,000 threads).
  const long limit = 4L * std::max(1, hardware_cores);
  auto bounded = [&](long value, const std::string& source) {
    if (value > limit) {
      throw Error(source + ": " + std::to_string(value) + " threads per rank exceed 4 x the " +
                  std::to_string(std::max(1, hardware_cores)) + " hardware cores of this node (" +
                  std::to_string(limit) + ")");
    }
    return static_cast<int>(value);
  };
  if (configured > 0) return bounded(configured, "runtime.threads_per_rank");
  if (slurm_cpus_per_task && *slurm_cpus_per_task) {
    char* end = nullptr;
    const long value = std::strtol(slurm_cpus_per_task, &end, 10);
    if (end && *end == '\0' && value > 0) return bounded(value, "SLURM_CPUS_PER_TASK");
  }
  return std::max(1, hardware_cores / std::max(1, local_ranks));
}

bool is_cuda_device(const std::string& device) {
  return device.rfind("cuda", 0) == 0;
}

int cuda_device_index(const std::string& device) {
  const auto colon = device.find(':');
  if (colon == std::string::npos) return 0;
  return std::atoi(device.c_str() + colon + 1);
}

int cuda_device_for_rank(int local_rank, int local_size, int device_count) {
  if (local_size > device_count) {
    throw Error("runtime.device: " + std::to_string(local_size) + " ranks on this node but only " +
                std::to_string(device_count) + " GPU(s); start one rank per GPU");
  }
  if (local_rank < 0 || local_rank >= local_size) {
    throw Error("runtime.device: local rank " + std::to_string(local_rank) + " is not in [0, " +
                std::to_string(local_size) + ")");
  }
  return local_rank;
}

std::string resolve_device(const std::string& configured, bool cuda_available, int cuda_devices,
                           int local_rank, int local_size) {
  std::string device = configured;
  if (device == "auto") device = cuda_available && cuda_devices > 0 ? "cuda" : "cpu";
  if (device == "cpu") return device;
  if (device == "cuda") {
    if (!cuda_available || cuda_devices <= 0) {
      throw Error("runtime.device: 'cuda' asked for but no CUDA device is available to LibTorch");
    }
    return "cuda:" + std::to_string(cuda_device_for_rank(local_rank, local_size, cuda_devices));
  }
  throw Error("runtime.device: '" + configured + "' is not one of auto, cpu, cuda");
}

int resolve_batch_size(int configured, const std::string& device) {
  if (configured > 0) return configured;
  return is_cuda_device(device) ? 64 : 8;
}

}  // namespace cnp::pipeline
