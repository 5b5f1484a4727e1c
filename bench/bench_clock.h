#pragma once
// CPU-time clocks for the benchmarks: on a shared, loaded machine rates per CPU second are
// steadier than wall-clock rates, so the data benchmarks report both.
#include <time.h>

namespace cnp::bench {

inline double cpu_seconds(clockid_t clock) {
  timespec ts{};
  clock_gettime(clock, &ts);
  return ts.tv_sec + ts.tv_nsec * 1e-9;
}
inline double process_cpu_seconds() {
  return cpu_seconds(CLOCK_PROCESS_CPUTIME_ID);
}
inline double thread_cpu_seconds() {
  return cpu_seconds(CLOCK_THREAD_CPUTIME_ID);
}
inline double wall_seconds() {
  return cpu_seconds(CLOCK_MONOTONIC);
}

}  // namespace cnp::bench
