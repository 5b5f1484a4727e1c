#pragma once
// One sweep per output folder: rank 0 holds flock() on <output>/.lock for the whole
// run (the kernel drops it when the process ends, even on a crash), and writes its
// host and pid into the file so that a second sweep can say who holds it.
#include <string>

namespace cnp::pipeline {

class OutputLock {
 public:
  // Creates the folder if needed and takes the lock, or throws cnp::Error naming the
  // `output` key and the holder's host and pid.
  explicit OutputLock(const std::string& output);
  ~OutputLock();
  OutputLock(const OutputLock&) = delete;
  OutputLock& operator=(const OutputLock&) = delete;

 private:
  int fd_ = -1;
};

}  // namespace cnp::pipeline
