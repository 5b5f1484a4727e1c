#pragma once
// Thin RAII wrapper over libzip for PyTorch's zip checkpoints: reading entries
// from an archive held in memory, and writing an archive of stored entries to memory.
#include <cstdint>
#include <string>
#include <vector>

struct zip;
struct zip_source;

namespace cnp::model::zip {

// True when the bytes start like a zip archive (local file header or, for an
// empty archive, the end-of-central-directory record).
bool looks_like_zip(const std::string& data);

class Reader {
 public:
  // `data` must outlive the reader. Throws cnp::Error("<label>: ...") (no
  // prefix if label is empty) if it is not a readable zip archive.
  Reader(const std::string& data, const std::string& label);
  // Reads the archive from a file (entries are read on demand, nothing is
  // loaded up front).
  static Reader open_file(const std::string& path, const std::string& label);
  ~Reader();
  Reader(Reader&& other) noexcept;
  Reader(const Reader&) = delete;
  Reader& operator=(const Reader&) = delete;

  std::vector<std::string> names() const;
  bool has(const std::string& name) const;
  // Uncompressed size as the archive states it (validated against the
  // compressed size, so a lying header cannot trigger a huge allocation).
  uint64_t size(const std::string& name) const;
  // Reads the whole entry into dst (exactly size(name) bytes), verifying its CRC.
  void read_into(const std::string& name, uint8_t* dst, uint64_t n) const;
  std::string read(const std::string& name) const;

 private:
  Reader(struct zip_source* source, const std::string& label);
  int64_t index(const std::string& name) const;
  std::string label_;  // message prefix: "<label>: " or ""
  struct ::zip* archive_ = nullptr;
  uint64_t archive_size_ = 0;  // bytes of the whole archive; no entry can hold more
};

struct Entry {
  std::string name;
  const void* data = nullptr;
  size_t size = 0;
};

// A zip archive (stored, uncompressed entries, in the given order) as bytes.
std::string write_stored(const std::vector<Entry>& entries);

}  // namespace cnp::model::zip
