#include "pipeline/test_hooks.h"

#include <chrono>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <new>
#include <string>
#include <thread>

#include "common/error.h"

namespace cnp::pipeline {

void test_hook(int rank, const char* stage) {
  const char* fail_rank = std::getenv("CNP_TEST_FAIL_RANK");
  const char* fail_stage = std::getenv("CNP_TEST_FAIL_STAGE");
  if (fail_rank && fail_stage && std::atoi(fail_rank) == rank &&
      std::strcmp(fail_stage, stage) == 0) {
    if (std::strcmp(stage, "alloc") == 0) throw std::bad_alloc();
    throw Error(std::string("injected test failure at ") + stage);
  }
  const char* pause_stage = std::getenv("CNP_TEST_PAUSE_STAGE");
  const char* marker = std::getenv("CNP_TEST_PAUSE_MARKER");
  if (rank == 0 && pause_stage && marker && std::strcmp(pause_stage, stage) == 0) {
    std::ofstream(marker) << stage << "\n";
    std::this_thread::sleep_for(std::chrono::seconds(120));
  }
}

}  // namespace cnp::pipeline
