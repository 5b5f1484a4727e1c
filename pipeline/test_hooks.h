#pragma once
// Fault injection for the sweep's tests, read only from the environment here:
//   CNP_TEST_FAIL_RANK=R CNP_TEST_FAIL_STAGE=S   rank R throws at stage S
//     ("alloc" throws std::bad_alloc, any other stage a cnp::Error);
//   CNP_TEST_PAUSE_STAGE=S CNP_TEST_PAUSE_MARKER=F  rank 0 creates file F at stage S
//     and then sleeps (a slow stage the test can signal).
// Stages: planning, validation, locked, cache, gather_setup, alloc, forward, gather.
// Lets a test make one rank fail where the others already wait in a collective.
namespace cnp::pipeline {

void test_hook(int rank, const char* stage);

}  // namespace cnp::pipeline
