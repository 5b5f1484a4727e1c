#include "pipeline/output_lock.h"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>

#include "common/error.h"

namespace cnp::pipeline {

namespace {

std::string host_name() {
  char name[256] = {};
  if (::gethostname(name, sizeof(name) - 1) != 0) return "unknown-host";
  return name;
}

}  // namespace

OutputLock::OutputLock(const std::string& output) {
  const std::string path = (std::filesystem::path(output) / ".lock").string();
  std::error_code ec;
  std::filesystem::create_directories(output, ec);
  if (ec) throw Error("output: " + output + ": cannot create the folder (" + ec.message() + ")");
  fd_ = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (fd_ < 0)
    throw Error("output: " + path + ": cannot open the lock (" + std::strerror(errno) + ")");
  if (::flock(fd_, LOCK_EX | LOCK_NB) != 0) {
    const int error = errno;
    char holder[512] = {};
    const ssize_t n = ::pread(fd_, holder, sizeof(holder) - 1, 0);
    ::close(fd_);
    fd_ = -1;
    std::string who = n > 0 ? std::string(holder, static_cast<size_t>(n)) : std::string();
    while (!who.empty() && (who.back() == '\n' || who.back() == ' ')) who.pop_back();
    if (error == EWOULDBLOCK) {
      throw Error("output: " + output + " is in use by another sweep (" +
                  (who.empty() ? std::string("holder unknown") : who) +
                  "); wait for it to end or choose another output");
    }
    throw Error("output: " + path + ": cannot lock (" + std::strerror(error) + ")");
  }
  const std::string me = "host " + host_name() + ", pid " + std::to_string(::getpid()) + "\n";
  // Without the note the lock still holds; a second sweep just cannot name us.
  [[maybe_unused]] const bool noted =
      ::ftruncate(fd_, 0) == 0 && ::pwrite(fd_, me.data(), me.size(), 0) >= 0;
}

OutputLock::~OutputLock() {
  if (fd_ >= 0) ::close(fd_);
}

}  // namespace cnp::pipeline
