#pragma once
// "Every rank runs this step and agrees on the error": the sweep's ranks run each
// step (parse, load, build the cache, a pass, write results) locally, then one
// collective tells every rank whether any rank failed, so they all leave the same
// way and rank 0 prints every distinct message (tagged with the rank that had it).
#include <mpi.h>

#include <exception>
#include <string>
#include <vector>

namespace cnp::pipeline {

struct Mpi {
  MPI_Comm comm = MPI_COMM_WORLD;
  int rank = 0;
  int size = 1;
  int local_rank = 0;  // among the ranks on this node (MPI_Comm_split_type): picks the GPU
  int local_size = 1;
};

Mpi init_mpi();

// A failure outside the agreed steps (an exception escaping, or an MPI error) leaves
// the other ranks waiting in a collective forever. These end every rank at once:
// the failing rank prints "cnp_sweep: error: <message> (rank N)" and calls MPI_Abort.
// install_fatal_mpi_errors() makes MPI errors on MPI_COMM_WORLD do the same.
[[noreturn]] void abort_every_rank(const std::string& message);
void install_fatal_mpi_errors();

// One string per rank to rank 0 (rank order); empty elsewhere. Collective.
std::vector<std::string> gather_strings(const Mpi& mpi, const std::string& text);

// Collective: true when no rank has an error. Otherwise rank 0 appends the distinct
// messages to `errors` (other ranks' messages end with " (rank N)").
bool all_ok(const Mpi& mpi, const std::string& local_error, std::vector<std::string>* errors);
// The same, in the same collective also telling every rank whether any raised `local_flag`
// (a stop request).
bool all_ok(const Mpi& mpi, const std::string& local_error, std::vector<std::string>* errors,
            bool local_flag, bool* any_flag);

// Runs `step` on this rank (an exception becomes this rank's error), then agrees.
template <typename Step>
bool collective_step(const Mpi& mpi, std::vector<std::string>& errors, Step&& step) {
  std::string local_error;
  try {
    step();
  } catch (const std::exception& e) {
    local_error = e.what();
    if (local_error.empty()) local_error = "unknown error";
  }
  return all_ok(mpi, local_error, &errors);
}

}  // namespace cnp::pipeline
