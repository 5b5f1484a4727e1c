#pragma once
// Runtime choices of the sweep that do not need MPI or LibTorch: how samples are
// split over ranks, threads per rank, device and batch size. Pure functions so
// they are unit-testable; the runner feeds them the environment.
#include <cstdint>
#include <string>

namespace cnp::pipeline {

// Contiguous block of a pass's samples owned by one rank: [begin, end).
struct ShardRange {
  int64_t begin = 0;
  int64_t end = 0;
  int64_t size() const { return end - begin; }
};

// Rank r gets [r*N/P, (r+1)*N/P): an exact partition, no padding, sizes differ by <= 1.
ShardRange shard_range(int64_t total, int rank, int ranks);
// Largest shard over all ranks (ceil(N/P)).
int64_t max_shard_size(int64_t total, int ranks);
// Batch rounds every rank runs so that collectives stay matched even when a rank
// has one sample fewer: ceil(max shard / batch).
int64_t batch_rounds(int64_t total, int ranks, int batch_size);

// runtime.threads_per_rank (> 0) wins, then $SLURM_CPUS_PER_TASK (a positive int),
// then hardware cores / ranks on this node; at least 1. More than 4 x hardware cores
// is a cnp::Error naming the source (runtime.threads_per_rank, SLURM_CPUS_PER_TASK).
int resolve_threads_per_rank(int configured, const char* slurm_cpus_per_task, int hardware_cores,
                             int local_ranks);

// One rank per GPU: the GPU of the rank with node-local rank `local_rank` among
// `local_size` ranks on its node. More ranks than GPUs is a cnp::Error naming both.
int cuda_device_for_rank(int local_rank, int local_size, int device_count);

// "auto" -> cuda when available, else cpu; "cuda" -> "cuda:<cuda_device_for_rank>".
// Throws cnp::Error naming runtime.device when cuda is asked for but absent, or when
// the node has more ranks than GPUs.
std::string resolve_device(const std::string& configured, bool cuda_available, int cuda_devices,
                           int local_rank, int local_size);
bool is_cuda_device(const std::string& device);
int cuda_device_index(const std::string& device);  // "cuda:3" -> 3, "cuda" -> 0

// runtime.batch_size 0 (auto): 8 on CPU, 64 on CUDA.
int resolve_batch_size(int configured, const std::string& device);

}  // namespace cnp::pipeline
