#pragma once
#include <cstdint>
#include <string>

namespace cnp {

// Whole file as bytes; throws cnp::Error naming the path.
std::string read_file(const std::string& path);

// Writes to "<path>.tmp.<pid>" then renames, so readers never see half a file.
// Creates missing parent directories.
void write_file_atomic(const std::string& path, const std::string& content);

// Lower-case hex SHA-256 of a file's bytes (streamed; works on large files).
std::string sha256_file(const std::string& path);
std::string sha256_hex(const std::string& bytes);

bool file_exists(const std::string& path);

}  // namespace cnp
