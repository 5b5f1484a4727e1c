#include "common/files.h"

#include <dirent.h>
#include <fcntl.h>
#include <ftw.h>
#include <openssl/evp.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <memory>
#include <vector>

#include "common/error.h"

namespace cnp {
namespace fs = std::filesystem;

namespace {

// Reads and writes go through POSIX calls rather than iostreams: iostreams lose errno,
// so "disk full" or "is a directory" turned into "write failed" (or worse, a
// basic_string length error when a directory reported a huge size).
std::string errno_text() {
  return std::strerror(errno);
}

class Fd {
 public:
  explicit Fd(int fd) : fd_(fd) {}
  ~Fd() {
    if (fd_ >= 0) ::close(fd_);
  }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  int get() const { return fd_; }
  // close() reports deferred write errors (NFS, quota): check it for written files.
  int close() {
    const int rc = ::close(fd_);
    fd_ = -1;
    return rc;
  }

 private:
  int fd_;
};

std::string host_name() {
  char name[256] = {};
  if (::gethostname(name, sizeof name - 1) != 0 || name[0] == '\0') return "host";
  std::string host(name);
  for (char& ch : host) {
    if (ch == '/') ch = '_';
  }
  return host;
}

}  // namespace

std::string read_file(const std::string& path) {
  Fd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (fd.get() < 0) throw Error(path + ": cannot open for reading: " + errno_text());
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0) throw Error(path + ": cannot stat: " + errno_text());
  if (S_ISDIR(st.st_mode)) throw Error(path + ": is a directory, not a file");
  std::string data;
  // Size the buffer once when the size is known: growing it copies large files twice.
  if (S_ISREG(st.st_mode) && st.st_size > 0) data.reserve(static_cast<size_t>(st.st_size));
  char block[1 << 16];
  for (;;) {
    const ssize_t got = ::read(fd.get(), block, sizeof block);
    if (got < 0) {
      if (errno == EINTR) continue;
      throw Error(path + ": read failed: " + errno_text());
    }
    if (got == 0) break;
    data.append(block, static_cast<size_t>(got));
  }
  return data;
}

std::string temporary_name(const std::string& path) {
  static const std::string host = host_name();
  return path + ".tmp." + host + "." + std::to_string(::getpid());
}

void write_file_atomic(const std::string& path, const std::string& content) {
  fs::path target(path);
  if (target.has_parent_path()) {
    std::error_code ec;
    fs::create_directories(target.parent_path(), ec);
    if (ec)
      throw Error(target.parent_path().string() + ": cannot create directory: " + ec.message());
  }
  std::error_code ec;
  if (fs::is_directory(target, ec))
    throw Error(path + ": is a directory, cannot write a file there");
  const std::string tmp = temporary_name(path);
  Fd fd(::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644));
  if (fd.get() < 0) throw Error(path + ": cannot create " + tmp + ": " + errno_text());
  auto fail = [&](const std::string& what) {
    const std::string reason = errno_text();
    ::unlink(tmp.c_str());
    throw Error(path + ": " + what + ": " + reason);
  };
  size_t done = 0;
  while (done < content.size()) {
    const ssize_t n = ::write(fd.get(), content.data() + done, content.size() - done);
    if (n < 0) {
      if (errno == EINTR) continue;
      fail("write failed");
    }
    done += static_cast<size_t>(n);
  }
  if (fd.close() != 0) fail("write failed");
  fs::rename(tmp, target, ec);
  if (ec) {
    ::unlink(tmp.c_str());
    throw Error(path + ": cannot rename temporary file into place: " + ec.message());
  }
}

namespace {
// nftw's callbacks take no user data: each walk collects into this thread's list.
thread_local std::vector<std::string>* walk_files = nullptr;
thread_local std::string walk_error;

int collect_regular_file(const char* path, const struct stat*, int type, struct FTW*) {
  if (type == FTW_F) walk_files->push_back(path);
  return 0;
}

int remove_entry(const char* path, const struct stat*, int type, struct FTW*) {
  if (type == FTW_DNR || type == FTW_NS) {
    walk_error = std::string(path) + ": cannot read while removing it";
    return 1;
  }
  if (::remove(path) != 0 && errno != ENOENT) {
    walk_error = std::string(path) + ": cannot remove: " + errno_text();
    return 1;
  }
  return 0;
}

constexpr int kWalkOpenDirectories = 32;
}  // namespace

std::vector<std::string> list_directory(const std::string& dir) {
  std::unique_ptr<DIR, int (*)(DIR*)> handle(::opendir(dir.c_str()), ::closedir);
  if (!handle) throw Error(dir + ": cannot list: " + errno_text());
  std::vector<std::string> names;
  errno = 0;
  while (const dirent* entry = ::readdir(handle.get())) {
    const std::string name = entry->d_name;
    if (name != "." && name != "..") names.push_back(name);
    errno = 0;
  }
  if (errno != 0) throw Error(dir + ": cannot list: " + errno_text());
  std::sort(names.begin(), names.end());
  return names;
}

void remove_tree(const std::string& path) {
  struct stat info;
  if (::lstat(path.c_str(), &info) != 0) {
    if (errno == ENOENT) return;
    throw Error(path + ": cannot remove: " + errno_text());
  }
  walk_error.clear();
  // Children before their directory (FTW_DEPTH); links removed, not followed (FTW_PHYS).
  const int rc = ::nftw(path.c_str(), remove_entry, kWalkOpenDirectories, FTW_DEPTH | FTW_PHYS);
  if (rc != 0)
    throw Error(walk_error.empty() ? path + ": cannot remove: " + errno_text() : walk_error);
}

std::vector<std::string> remove_stale_temporaries(const std::string& dir, long max_age_seconds) {
  std::vector<std::string> removed;
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) return removed;
  const std::string here = host_name();
  const auto now = fs::file_time_type::clock::now();
  std::vector<std::string> files;
  walk_files = &files;
  // Unreadable subdirectories are passed over, as before (skip_permission_denied).
  ::nftw(dir.c_str(), collect_regular_file, kWalkOpenDirectories, FTW_PHYS);
  walk_files = nullptr;
  for (const std::string& path : files) {
    const std::string name = fs::path(path).filename().string();
    // <file>.tmp.<host>.<pid> or <file>.tmp.<pid>: the pid is the last dot-separated part.
    const size_t tmp = name.rfind(".tmp.");
    if (tmp == std::string::npos || tmp == 0) continue;
    const std::string rest = name.substr(tmp + 5);
    const size_t dot = rest.rfind('.');
    const std::string pid_text = dot == std::string::npos ? rest : rest.substr(dot + 1);
    const std::string host = dot == std::string::npos ? "" : rest.substr(0, dot);
    if (pid_text.empty() || pid_text.size() > 9 ||
        pid_text.find_first_not_of("0123456789") != std::string::npos)
      continue;
    const long pid = std::stol(pid_text);
    bool stale;
    if (host == here) {
      stale = pid > 0 && ::kill(static_cast<pid_t>(pid), 0) != 0 && errno == ESRCH;
    } else {
      std::error_code time_ec;
      const auto written = fs::last_write_time(path, time_ec);
      stale = !time_ec && now - written > std::chrono::seconds(max_age_seconds);
    }
    if (stale && ::unlink(path.c_str()) == 0) removed.push_back(path);
  }
  return removed;
}

namespace {
struct DigestDeleter {
  void operator()(EVP_MD_CTX* ctx) const { EVP_MD_CTX_free(ctx); }
};

std::string to_hex(const unsigned char* digest, unsigned int len) {
  static const char* kHex = "0123456789abcdef";
  std::string out;
  out.reserve(len * 2);
  for (unsigned int i = 0; i < len; ++i) {
    out.push_back(kHex[digest[i] >> 4]);
    out.push_back(kHex[digest[i] & 15]);
  }
  return out;
}

template <typename Feed>
std::string sha256_of(const std::string& what, Feed feed) {
  std::unique_ptr<EVP_MD_CTX, DigestDeleter> ctx(EVP_MD_CTX_new());
  if (!ctx || EVP_DigestInit_ex(ctx.get(), EVP_sha256(), nullptr) != 1) {
    throw Error(what + ": cannot initialise SHA-256");
  }
  feed(ctx.get());
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  EVP_DigestFinal_ex(ctx.get(), digest, &len);
  return to_hex(digest, len);
}
}  // namespace

std::string sha256_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw Error(path + ": cannot open for hashing");
  return sha256_of(path, [&](EVP_MD_CTX* ctx) {
    std::vector<char> buf(1 << 20);
    while (in) {
      in.read(buf.data(), static_cast<std::streamsize>(buf.size()));
      EVP_DigestUpdate(ctx, buf.data(), static_cast<size_t>(in.gcount()));
    }
    if (in.bad()) throw Error(path + ": read failed while hashing");
  });
}

std::string sha256_hex(const std::string& bytes) {
  return sha256_of("sha256",
                   [&](EVP_MD_CTX* ctx) { EVP_DigestUpdate(ctx, bytes.data(), bytes.size()); });
}

bool file_exists(const std::string& path) {
  std::error_code ec;
  return fs::is_regular_file(path, ec);
}

std::string file_problem(const std::string& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) return errno == ENOENT ? "not found" : errno_text();
  if (S_ISDIR(st.st_mode)) return "is a directory, not a file";
  if (!S_ISREG(st.st_mode)) return "is not a regular file";
  return "";
}

}  // namespace cnp
