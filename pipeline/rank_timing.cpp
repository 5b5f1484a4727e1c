#include "pipeline/rank_timing.h"

#include <algorithm>

namespace cnp::pipeline {
namespace {

using Clock = std::chrono::steady_clock;
Clock::time_point g_last_forward_end{};
bool g_have_last_end = false;
bool g_pass_started = false;  // this pass has had its first forward call

std::mutex g_background_mutex;
RankTiming g_background;

}  // namespace

RankTiming& this_rank_timing() {
  static RankTiming timing;
  return timing;
}

RankTiming background_timing() {
  std::lock_guard<std::mutex> lock(g_background_mutex);
  return g_background;
}

BackgroundTimeInto::~BackgroundTimeInto() {
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
  std::lock_guard<std::mutex> lock(g_background_mutex);
  g_background.*part_ += seconds;
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
