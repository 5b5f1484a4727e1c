#pragma once
// Shared helpers for the checkpoint tests: running the Python fixture generator
// and comparing a read checkpoint with what Python wrote.
#include <nlohmann/json.hpp>
#include <string>

#include "model/checkpoint.h"
#include "tests/support/test_support.h"  // work_dir, slurp

namespace cnp::test {

// Runs make_fixtures.py with the arguments; fails the test (ASSERT) on error.
void run_generator(const std::string& args);

nlohmann::json load_manifest(const std::string& dir);

// EXPECTs every tensor of `entry` (name, dtype, shape, bytes, float conversion)
// to match `ck` bit for bit, in order, with nothing extra.
void expect_tensors_match(const model::Checkpoint& ck, const nlohmann::json& entry,
                          const std::string& bin);

// read_checkpoint(path) against parse_checkpoint(read_checkpoint_file(path), path): EXPECTs
// the same error message, or the same checkpoint (every field, every tensor's bytes).
void expect_bytes_reader_agrees(const std::string& path);

}  // namespace cnp::test
