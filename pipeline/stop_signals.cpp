#include "pipeline/stop_signals.h"

#include <spdlog/spdlog.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <mutex>
#include <string>
#include <thread>

#include "pipeline/sweep_runner.h"

namespace cnp::pipeline {
namespace {

volatile std::sig_atomic_t g_stop_signal = 0;
std::atomic<int> g_mode{static_cast<int>(StopMode::Immediately)};
std::atomic<int> g_rank{0};

extern "C" void on_stop_signal(int signal_number) {
  g_stop_signal = signal_number;
}

[[noreturn]] void stop_now(int signal_number, const char* when) {
  if (g_rank.load() == 0) {
    const std::string line = std::string("cnp_sweep: stopped by signal ") +
                             std::to_string(signal_number) + " " + when +
                             "; finished jobs are on disk, rerun to resume\n";
    spdlog::warn("{}", line.substr(0, line.size() - 1));
    spdlog::default_logger()->flush();
    // write(2): stderr may be mid-use by another thread's iostream.
    [[maybe_unused]] const ssize_t n = ::write(2, line.data(), line.size());
  }
  std::_Exit(kExitPreempted);
}

void watchdog() {
  using Clock = std::chrono::steady_clock;
  Clock::time_point first_seen{};
  bool seen = false;
  for (;;) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    const int signal_number = g_stop_signal;
    if (!signal_number) continue;
    if (static_cast<StopMode>(g_mode.load()) == StopMode::Immediately) {
      stop_now(signal_number, "before the forward passes");
    }
    if (!seen) {
      seen = true;
      first_seen = Clock::now();
    }
    if (std::chrono::duration<double>(Clock::now() - first_seen).count() > kStopGraceSeconds) {
      stop_now(signal_number, "(no batch boundary within the grace period)");
    }
  }
}

}  // namespace

void install_stop_handlers(int rank) {
  static std::once_flag once;
  g_rank = rank;
  std::call_once(once, [] {
    std::signal(SIGTERM, on_stop_signal);
    std::signal(SIGINT, on_stop_signal);
    std::signal(SIGUSR1, on_stop_signal);
    std::thread(watchdog).detach();
  });
}

void set_stop_mode(StopMode mode) {
  g_mode = static_cast<int>(mode);
}

bool stop_requested() {
  return g_stop_signal != 0;
}

}  // namespace cnp::pipeline
