#pragma once
// SIGTERM, SIGINT and SIGUSR1 (Slurm's --signal) stop the sweep within seconds at
// every stage. During the passes a stop waits for the next batch boundary, so the
// jobs of finished passes are on disk and the run summary says "preempted"; a
// watchdog ends the rank if that takes longer than a grace period (a long batch).
// Before the passes (planning, validation, cache building) nothing is lost by
// stopping at once, so the watchdog ends the rank right away. Both exit with
// kExitPreempted: a rerun resumes.
namespace cnp::pipeline {

enum class StopMode { Immediately, AtBatchBoundary };

// Installs the handlers and starts the watchdog thread (once per process).
// `rank` decides who prints the one-line notice.
void install_stop_handlers(int rank);
void set_stop_mode(StopMode mode);
bool stop_requested();

// Seconds a stop may wait for a batch boundary before the watchdog ends the rank.
constexpr double kStopGraceSeconds = 10.0;

}  // namespace cnp::pipeline
