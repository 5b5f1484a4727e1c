// common/files: reads and atomic writes name the file and the reason on failure and
// leave nothing behind; temporaries carry host and pid; stale ones are cleaned; directories
// are listed and removed without std::filesystem's iterators.
#include <gtest/gtest.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <csignal>
#include <filesystem>
#include <functional>

#include "common/error.h"
#include "common/files.h"
#include "tests/support/test_support.h"

namespace cnp {
namespace {
namespace fs = std::filesystem;

std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

std::string hostname() {
  char name[256] = {};
  gethostname(name, sizeof name - 1);
  return name;
}

TEST(CommonFiles, ReadErrorsNameTheFileAndReason) {
  const std::string dir = test::work_dir("common_files_read");
  EXPECT_EQ(error_of([&] { read_file(dir); }), dir + ": is a directory, not a file");
  EXPECT_EQ(error_of([&] { read_file(dir + "/nope"); }),
            dir + "/nope: cannot open for reading: No such file or directory");
  EXPECT_EQ(file_problem(dir), "is a directory, not a file");
  EXPECT_EQ(file_problem(dir + "/nope"), "not found");
  write_file_atomic(dir + "/a.txt", std::string(200000, 'x'));
  EXPECT_EQ(file_problem(dir + "/a.txt"), "");
  EXPECT_EQ(read_file(dir + "/a.txt"), std::string(200000, 'x'));
}

TEST(CommonFiles, TemporaryNameHoldsHostAndPid) {
  EXPECT_EQ(temporary_name("/x/a.json"),
            "/x/a.json.tmp." + hostname() + "." + std::to_string(getpid()));
}

// A write that fails midway (here the file-size limit, as a full disk would) names the
// file and strerror's reason, and leaves neither the file nor its temporary.
TEST(CommonFiles, FailedWriteGivesTheReasonAndLeavesNothing) {
  const std::string dir = test::work_dir("common_files_write");
  const std::string path = dir + "/result.json";
  rlimit old{};
  ASSERT_EQ(getrlimit(RLIMIT_FSIZE, &old), 0);
  auto previous = std::signal(SIGXFSZ, SIG_IGN);
  rlimit small = old;
  small.rlim_cur = 4096;
  ASSERT_EQ(setrlimit(RLIMIT_FSIZE, &small), 0);
  const std::string error = error_of([&] { write_file_atomic(path, std::string(1 << 20, 'x')); });
  setrlimit(RLIMIT_FSIZE, &old);
  std::signal(SIGXFSZ, previous);
  EXPECT_EQ(error, path + ": write failed: File too large");
  EXPECT_TRUE(fs::is_empty(dir)) << "a half-written file or temporary was left";

  // A directory where the file should go.
  fs::create_directories(dir + "/taken.json");
  EXPECT_EQ(error_of([&] { write_file_atomic(dir + "/taken.json", "{}"); }),
            dir + "/taken.json: is a directory, cannot write a file there");
  // A parent that is a file.
  write_file_atomic(dir + "/plain", "x");
  EXPECT_NE(error_of([&] {
              write_file_atomic(dir + "/plain/a.json", "{}");
            }).find(dir + "/plain: cannot create directory: "),
            std::string::npos);
}

TEST(CommonFiles, RemovesOnlyStaleTemporaries) {
  const std::string dir = test::work_dir("common_files_stale");
  // A pid that surely does not run: a child that has exited and been reaped.
  const pid_t child = fork();
  if (child == 0) _exit(0);
  ASSERT_GT(child, 0);
  waitpid(child, nullptr, 0);
  const std::string host = hostname();
  const std::string dead = dir + "/jobs/a.json.tmp." + host + "." + std::to_string(child);
  const std::string alive = dir + "/jobs/b.json.tmp." + host + "." + std::to_string(getpid());
  const std::string remote_new = dir + "/c.json.tmp.node17.cluster.42";
  const std::string remote_old = dir + "/predictions/d.json.tmp.node17.cluster.42";
  const std::string pid_only_old = dir + "/e.json.tmp.4242";
  const std::string pid_only_new = dir + "/f.json.tmp.4243";
  const std::string not_temporary = dir + "/notes.tmp.txt";
  for (const auto& f :
       {dead, alive, remote_new, remote_old, pid_only_old, pid_only_new, not_temporary})
    test::write_file(f, "partial");
  const auto two_days_ago = fs::file_time_type::clock::now() - std::chrono::hours(48);
  fs::last_write_time(remote_old, two_days_ago);
  fs::last_write_time(pid_only_old, two_days_ago);

  std::vector<std::string> removed = remove_stale_temporaries(dir);
  std::sort(removed.begin(), removed.end());
  std::vector<std::string> expected = {dead, remote_old, pid_only_old};
  std::sort(expected.begin(), expected.end());
  EXPECT_EQ(removed, expected);
  for (const auto& f : expected) EXPECT_FALSE(fs::exists(f)) << f;
  for (const auto& f : {alive, remote_new, pid_only_new, not_temporary})
    EXPECT_TRUE(fs::exists(f)) << f;
  EXPECT_TRUE(remove_stale_temporaries(dir + "/missing").empty());
}

TEST(CommonFiles, ListsADirectorySortedAndNamesOneItCannotList) {
  const std::string dir = test::work_dir("common_files_list");
  for (const char* name : {"b.json", "a.json", ".hidden", "c"})
    test::write_file(dir + "/" + name, "x");
  fs::create_directories(dir + "/sub/deeper");
  EXPECT_EQ(list_directory(dir),
            (std::vector<std::string>{".hidden", "a.json", "b.json", "c", "sub"}));
  EXPECT_TRUE(list_directory(dir + "/sub/deeper").empty());
  const std::string missing = error_of([&] { list_directory(dir + "/missing"); });
  EXPECT_NE(missing.find(dir + "/missing: cannot list: No such file or directory"),
            std::string::npos)
      << missing;
  const std::string file = error_of([&] { list_directory(dir + "/c"); });
  EXPECT_NE(file.find(dir + "/c: cannot list: Not a directory"), std::string::npos) << file;
}

TEST(CommonFiles, RemovesATreeWithoutFollowingLinks) {
  const std::string dir = test::work_dir("common_files_remove");
  const std::string outside = dir + "/outside";
  test::write_file(outside + "/keep.txt", "kept");
  const std::string tree = dir + "/tree";
  for (const char* f : {"a.json", "jobs/b.json", "jobs/deep/er/c.bin", "predictions/.d"})
    test::write_file(tree + "/" + f, "x");
  fs::create_directories(tree + "/empty/dirs");
  fs::create_directory_symlink(outside, tree + "/jobs/link_to_outside");
  fs::create_symlink(outside + "/keep.txt", tree + "/file_link");
  remove_tree(tree);
  EXPECT_FALSE(fs::exists(fs::symlink_status(tree)));
  EXPECT_EQ(test::slurp(outside + "/keep.txt"), "kept");  // the links' targets stay
  // A single file, a link itself, and a missing path (not an error).
  test::write_file(dir + "/single", "x");
  remove_tree(dir + "/single");
  EXPECT_FALSE(fs::exists(dir + "/single"));
  fs::create_directory_symlink(outside, dir + "/dir_link");
  remove_tree(dir + "/dir_link");
  EXPECT_FALSE(fs::exists(fs::symlink_status(dir + "/dir_link")));
  EXPECT_TRUE(fs::exists(outside + "/keep.txt"));
  EXPECT_NO_THROW(remove_tree(dir + "/missing"));
}

TEST(CommonFiles, RemovingATreeNamesWhatCannotBeRemoved) {
  // An entry inside a read-only directory cannot be unlinked, except by root.
  if (geteuid() == 0) {
    // Root ignores permissions: a directory on a read-only file system would be needed, so
    // use /proc, where removal fails for everyone.
    const std::string message = error_of([] { remove_tree("/proc/self/status"); });
    EXPECT_NE(message.find("/proc/self/status: cannot remove"), std::string::npos) << message;
    return;
  }
  const std::string dir = test::work_dir("common_files_remove_denied");
  test::write_file(dir + "/locked/inner.txt", "x");
  fs::permissions(dir + "/locked", fs::perms::owner_read | fs::perms::owner_exec);
  const std::string message = error_of([&] { remove_tree(dir + "/locked"); });
  fs::permissions(dir + "/locked", fs::perms::owner_all);
  EXPECT_NE(message.find(dir + "/locked/inner.txt: cannot remove: Permission denied"),
            std::string::npos)
      << message;
}

}  // namespace
}  // namespace cnp
