#include "model/zip_archive.h"

#include <zip.h>

#include <memory>

#include "common/error.h"

namespace cnp::model::zip {
namespace {

std::string error_text(zip_error_t* error) {
  std::string text = zip_error_strerror(error);
  zip_error_fini(error);
  return text;
}

// Deflate cannot expand data by more than ~1032x; a larger claimed ratio is a lie.
constexpr uint64_t kMaxRatio = 1100;

}  // namespace

bool looks_like_zip(const std::string& data) {
  return data.size() >= 4 && data[0] == 'P' && data[1] == 'K' &&
         ((data[2] == 3 && data[3] == 4) || (data[2] == 5 && data[3] == 6));
}

zip_source_t* source_or_throw(zip_source_t* source, zip_error_t* error, const std::string& label) {
  if (!source) throw Error(label + "cannot read zip archive: " + error_text(error));
  return source;
}

Reader::Reader(zip_source_t* source, const std::string& label) : label_(label) {
  zip_stat_t source_stat;
  zip_stat_init(&source_stat);
  if (zip_source_stat(source, &source_stat) != 0 || !(source_stat.valid & ZIP_STAT_SIZE)) {
    zip_source_free(source);
    throw Error(label_ + "cannot determine the archive size");
  }
  archive_size_ = source_stat.size;
  zip_error_t error;
  zip_error_init(&error);
  archive_ = zip_open_from_source(source, ZIP_RDONLY | ZIP_CHECKCONS, &error);
  if (!archive_) {
    zip_source_free(source);
    throw Error(label_ + "corrupt or truncated zip archive: " + error_text(&error));
  }
  zip_error_fini(&error);
}

Reader::Reader(const std::string& data, const std::string& label)
    : Reader(
          [&] {
            zip_error_t error;
            zip_error_init(&error);
            return source_or_throw(zip_source_buffer_create(data.data(), data.size(), 0, &error),
                                   &error, label.empty() ? "" : label + ": ");
          }(),
          label.empty() ? "" : label + ": ") {}

Reader Reader::open_file(const std::string& path, const std::string& label) {
  zip_error_t error;
  zip_error_init(&error);
  std::string prefix = label.empty() ? "" : label + ": ";
  zip_source_t* source =
      source_or_throw(zip_source_file_create(path.c_str(), 0, -1, &error), &error, prefix);
  zip_error_fini(&error);
  return Reader(source, prefix);
}

Reader::Reader(Reader&& other) noexcept
    : label_(std::move(other.label_)),
      archive_(other.archive_),
      archive_size_(other.archive_size_) {
  other.archive_ = nullptr;
}

Reader::~Reader() {
  if (archive_) zip_discard(archive_);
}

std::vector<std::string> Reader::names() const {
  std::vector<std::string> out;
  zip_int64_t n = zip_get_num_entries(archive_, 0);
  for (zip_int64_t k = 0; k < n; ++k) {
    const char* name = zip_get_name(archive_, static_cast<zip_uint64_t>(k), ZIP_FL_ENC_RAW);
    if (name) out.emplace_back(name);
  }
  return out;
}

int64_t Reader::index(const std::string& name) const {
  return zip_name_locate(archive_, name.c_str(), ZIP_FL_ENC_RAW);
}

bool Reader::has(const std::string& name) const {
  return index(name) >= 0;
}

uint64_t Reader::size(const std::string& name) const {
  int64_t idx = index(name);
  if (idx < 0) throw Error(label_ + "zip entry '" + name + "' is missing");
  zip_stat_t st;
  zip_stat_init(&st);
  if (zip_stat_index(archive_, static_cast<zip_uint64_t>(idx), 0, &st) != 0 ||
      !(st.valid & ZIP_STAT_SIZE) || !(st.valid & ZIP_STAT_COMP_SIZE))
    throw Error(label_ + "cannot stat zip entry '" + name + "'");
  if (st.comp_size > archive_size_ || st.size > st.comp_size * kMaxRatio + 1024)
    throw Error(label_ + "zip entry '" + name + "' claims an impossible size");
  return st.size;
}

void Reader::read_into(const std::string& name, uint8_t* dst, uint64_t n) const {
  int64_t idx = index(name);
  if (idx < 0) throw Error(label_ + "zip entry '" + name + "' is missing");
  std::unique_ptr<zip_file_t, int (*)(zip_file_t*)> file(
      zip_fopen_index(archive_, static_cast<zip_uint64_t>(idx), 0), zip_fclose);
  if (!file)
    throw Error(label_ + "cannot open zip entry '" + name + "': " + zip_strerror(archive_));
  uint64_t done = 0;
  while (done < n) {
    zip_int64_t got = zip_fread(file.get(), dst + done, n - done);
    if (got < 0)
      throw Error(label_ + "corrupt zip entry '" + name + "': " + zip_file_strerror(file.get()));
    if (got == 0) throw Error(label_ + "zip entry '" + name + "' is truncated");
    done += static_cast<uint64_t>(got);
  }
  // Reading to the end makes libzip compare the CRC; a mismatch shows up here.
  uint8_t extra = 0;
  zip_int64_t tail = zip_fread(file.get(), &extra, 1);
  if (tail < 0)
    throw Error(label_ + "corrupt zip entry '" + name + "': " + zip_file_strerror(file.get()));
  if (tail > 0) throw Error(label_ + "zip entry '" + name + "' is longer than stated");
}

std::string Reader::read(const std::string& name) const {
  std::string out(size(name), '\0');
  read_into(name, reinterpret_cast<uint8_t*>(out.data()), out.size());
  return out;
}

std::string write_stored(const std::vector<Entry>& entries) {
  zip_error_t error;
  zip_error_init(&error);
  zip_source_t* buffer = zip_source_buffer_create(nullptr, 0, 0, &error);
  if (!buffer) throw Error("cannot create zip buffer: " + error_text(&error));
  zip_t* archive = zip_open_from_source(buffer, ZIP_TRUNCATE, &error);
  if (!archive) {
    zip_source_free(buffer);
    throw Error("cannot create zip archive: " + error_text(&error));
  }
  zip_error_fini(&error);
  zip_source_keep(buffer);  // keep the bytes after zip_close
  auto fail = [&](const std::string& what) {
    std::string message = what + ": " + zip_strerror(archive);
    zip_discard(archive);
    zip_source_free(buffer);
    throw Error(message);
  };
  for (const Entry& e : entries) {
    zip_source_t* source = zip_source_buffer(archive, e.data, e.size, 0);
    if (!source) fail("cannot add zip entry '" + e.name + "'");
    zip_int64_t idx = zip_file_add(archive, e.name.c_str(), source, ZIP_FL_ENC_UTF_8);
    if (idx < 0) {
      zip_source_free(source);
      fail("cannot add zip entry '" + e.name + "'");
    }
    if (zip_set_file_compression(archive, static_cast<zip_uint64_t>(idx), ZIP_CM_STORE, 0) != 0)
      fail("cannot store zip entry '" + e.name + "'");
  }
  if (zip_close(archive) != 0) fail("cannot write zip archive");

  std::string out;
  zip_stat_t st;
  zip_stat_init(&st);
  if (zip_source_stat(buffer, &st) != 0 || zip_source_open(buffer) != 0) {
    zip_source_free(buffer);
    throw Error("cannot read back the written zip archive");
  }
  out.resize(st.size);
  zip_int64_t got = zip_source_read(buffer, out.data(), out.size());
  zip_source_close(buffer);
  zip_source_free(buffer);
  if (got < 0 || static_cast<uint64_t>(got) != st.size)
    throw Error("cannot read back the written zip archive");
  return out;
}

}  // namespace cnp::model::zip
