#include "pipeline/collective_step.h"

#include <algorithm>
#include <cstdlib>

namespace cnp::pipeline {

Mpi init_mpi() {
  Mpi mpi;
  MPI_Comm_rank(mpi.comm, &mpi.rank);
  MPI_Comm_size(mpi.comm, &mpi.size);
  MPI_Comm node;
  MPI_Comm_split_type(mpi.comm, MPI_COMM_TYPE_SHARED, mpi.rank, MPI_INFO_NULL, &node);
  MPI_Comm_rank(node, &mpi.local_rank);
  MPI_Comm_size(node, &mpi.local_size);
  MPI_Comm_free(&node);
  if (const char* slurm_local = std::getenv("SLURM_LOCALID")) {
    if (*slurm_local) mpi.local_rank = std::atoi(slurm_local);
  }
  return mpi;
}

std::vector<std::string> gather_strings(const Mpi& mpi, const std::string& text) {
  int length = static_cast<int>(text.size());
  std::vector<int> lengths(mpi.size, 0);
  MPI_Gather(&length, 1, MPI_INT, lengths.data(), 1, MPI_INT, 0, mpi.comm);
  std::vector<int> displs(mpi.size, 0);
  int total = 0;
  for (int r = 0; r < mpi.size; ++r) {
    displs[r] = total;
    total += lengths[r];
  }
  std::string all(static_cast<size_t>(mpi.rank == 0 ? total : 0), '\0');
  char dummy = 0;
  MPI_Gatherv(length ? const_cast<char*>(text.data()) : &dummy, length, MPI_CHAR,
              mpi.rank == 0 ? all.data() : nullptr, lengths.data(), displs.data(), MPI_CHAR, 0,
              mpi.comm);
  std::vector<std::string> out;
  if (mpi.rank == 0) {
    for (int r = 0; r < mpi.size; ++r) out.push_back(all.substr(displs[r], lengths[r]));
  }
  return out;
}

bool all_ok(const Mpi& mpi, const std::string& local_error, std::vector<std::string>* errors) {
  int failed = local_error.empty() ? 0 : 1;
  int any_failed = 0;
  MPI_Allreduce(&failed, &any_failed, 1, MPI_INT, MPI_MAX, mpi.comm);
  if (!any_failed) return true;
  const auto messages = gather_strings(mpi, local_error);
  if (errors) {
    for (int r = 0; r < static_cast<int>(messages.size()); ++r) {
      if (messages[r].empty()) continue;
      if (std::find(errors->begin(), errors->end(), messages[r]) == errors->end()) {
        errors->push_back(r == 0 ? messages[r] : messages[r] + " (rank " + std::to_string(r) + ")");
      }
    }
  }
  return false;
}

}  // namespace cnp::pipeline
