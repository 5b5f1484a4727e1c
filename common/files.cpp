#include "common/files.h"

#include <openssl/evp.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <memory>
#include <vector>

#include "common/error.h"

namespace cnp {
namespace fs = std::filesystem;

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary | std::ios::ate);
  if (!in) throw Error(path + ": cannot open for reading");
  // Size the buffer once: streaming through a stringstream copies large files twice.
  const std::streamoff size = in.tellg();
  if (size < 0) throw Error(path + ": cannot determine file size");
  std::string data(static_cast<size_t>(size), '\0');
  in.seekg(0);
  if (size > 0 && !in.read(data.data(), size)) throw Error(path + ": read failed");
  return data;
}

void write_file_atomic(const std::string& path, const std::string& content) {
  fs::path target(path);
  if (target.has_parent_path()) {
    std::error_code ec;
    fs::create_directories(target.parent_path(), ec);
    if (ec) throw Error(target.parent_path().string() + ": cannot create directory: " + ec.message());
  }
  const std::string tmp = path + ".tmp." + std::to_string(::getpid());
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    if (!out) throw Error(tmp + ": cannot open for writing");
    out.write(content.data(), static_cast<std::streamsize>(content.size()));
    out.flush();
    if (!out) {
      std::remove(tmp.c_str());
      throw Error(tmp + ": write failed");
    }
  }
  std::error_code ec;
  fs::rename(tmp, target, ec);
  if (ec) {
    std::remove(tmp.c_str());
    throw Error(path + ": cannot rename temporary file into place: " + ec.message());
  }
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
  return sha256_of("sha256", [&](EVP_MD_CTX* ctx) { EVP_DigestUpdate(ctx, bytes.data(), bytes.size()); });
}

bool file_exists(const std::string& path) {
  std::error_code ec;
  return fs::is_regular_file(path, ec);
}

}  // namespace cnp
