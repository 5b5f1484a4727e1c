#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace cnp {

// Whole file as bytes; throws cnp::Error naming the path and the reason
// ("is a directory, not a file", "No such file or directory", ...).
std::string read_file(const std::string& path);

// Writes to temporary_name(path) then renames, so readers never see half a file.
// Creates missing parent directories. A failed write (disk full, ...) removes the
// temporary and throws cnp::Error naming the file and strerror's reason.
void write_file_atomic(const std::string& path, const std::string& content);

// "<path>.tmp.<host>.<pid>": unique across the hosts of a job and the ranks of a host.
std::string temporary_name(const std::string& path);

// Removes the temporaries (temporary_name, and the older "<file>.tmp.<pid>") left under
// `dir` (recursively) by crashed writers: on this host those whose pid no longer runs;
// from other hosts (or without a host) those older than `max_age_seconds`. Returns the
// paths removed. A missing `dir` is not an error.
std::vector<std::string> remove_stale_temporaries(const std::string& dir,
                                                  long max_age_seconds = 24 * 3600);

// Directory walks go through glibc (readdir, nftw), not std::filesystem's iterators or
// remove_all: the PyTorch wheels' libtorch_cpu.so exports its own, older copy of libstdc++'s
// recursive_directory_iterator (pytorch/pytorch#133437), and a binary linked to it crashed in
// std::filesystem::remove_all on an H200 node (gpu_check, bench_datapath).

// The names in `dir` (without "." and ".."), sorted. Throws cnp::Error naming `dir` and the
// reason when it cannot be listed.
std::vector<std::string> list_directory(const std::string& dir);

// Removes `path` and everything under it, never following symbolic links. A missing path is
// not an error; anything that cannot be removed throws cnp::Error naming it.
void remove_tree(const std::string& path);

// Lower-case hex SHA-256 of a file's bytes (streamed; works on large files).
std::string sha256_file(const std::string& path);
std::string sha256_hex(const std::string& bytes);

bool file_exists(const std::string& path);  // a regular file (or a link to one)

// Why `path` cannot be read as a file: "not found", "is a directory, not a file", ...;
// "" when it is a regular file. For messages that would otherwise say "not found".
std::string file_problem(const std::string& path);

}  // namespace cnp
