#include "pipeline/rank_timing.h"

#include <algorithm>

namespace cnp::pipeline {
namespace {

using Clock = std::chrono::steady_clock;
Clock::time_point g_last_forward_end{};
bool g_have_last_end = false;
bool g_pass_started = false;  // this pass has had its first forward call

}  // namespace

RankTiming& this_rank_timing() {
  static RankTiming timing;
  return timing;
}

void mark_pass_forward_start() {
  if (g_pass_started) return;
  g_pass_started = true;
  if (!g_have_last_end) return;
  const double gap = std::chrono::duration<double>(Clock::now() - g_last_forward_end).count();
  RankTiming& t = this_rank_timing();
  t.between_passes_s += gap;
  t.between_passes_max_s = std::max(t.between_passes_max_s, gap);
}

void mark_pass_forward_end() {
  g_last_forward_end = Clock::now();
  g_have_last_end = true;
}

void mark_pass_end() {
  g_pass_started = false;
}

}  // namespace cnp::pipeline
