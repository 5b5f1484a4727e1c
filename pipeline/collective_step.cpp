#include "pipeline/collective_step.h"
#include "pipeline/rank_timing.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <cstdlib>
#include <iostream>

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
  // Not $SLURM_LOCALID: mpirun inside a batch step gives every rank the same value.
  return mpi;
}

void abort_every_rank(const std::string& message) {
  int initialized = 0, finalized = 0;
  MPI_Initialized(&initialized);
  MPI_Finalized(&finalized);
  int rank = 0;
  if (initialized && !finalized) MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  const std::string line = message + " (rank " + std::to_string(rank) + "); stopping every rank";
  // The log file too: the console line of a non-zero rank may be lost with the job.
  spdlog::error("{}", line);
  spdlog::default_logger()->flush();
  std::cerr << "cnp_sweep: error: " << line << std::endl;
  if (initialized && !finalized) MPI_Abort(MPI_COMM_WORLD, 1);
  std::_Exit(1);
}

namespace {
extern "C" void on_mpi_error(MPI_Comm*, int* code, ...) {
  char text[MPI_MAX_ERROR_STRING] = {};
  int length = 0;
  MPI_Error_string(*code, text, &length);
  abort_every_rank(std::string("MPI: ") + text);
}
}  // namespace

void install_fatal_mpi_errors() {
  MPI_Errhandler handler;
  MPI_Comm_create_errhandler(on_mpi_error, &handler);
  MPI_Comm_set_errhandler(MPI_COMM_WORLD, handler);
  MPI_Errhandler_free(&handler);
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
  bool ignored = false;
  return all_ok(mpi, local_error, errors, false, &ignored);
}

bool all_ok(const Mpi& mpi, const std::string& local_error, std::vector<std::string>* errors,
            bool local_flag, bool* any_flag) {
  TimeInto timed(this_rank_timing().collective_s);
  int local[2] = {local_error.empty() ? 0 : 1, local_flag ? 1 : 0};
  int any[2] = {0, 0};
  MPI_Allreduce(local, any, 2, MPI_INT, MPI_MAX, mpi.comm);
  *any_flag = any[1] != 0;
  if (!any[0]) return true;
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
