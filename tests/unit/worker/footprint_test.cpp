// A run's footprint (worker/footprint.hpp) on real files: opens in the process itself, in a
// child, and in a real bubblewrap sandbox that sees the tree through a bind mount.
#include "worker/footprint.hpp"

#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <fstream>

#include "test_util.hpp"
#include "worker/sandbox.hpp"

namespace ttfb::worker {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using testing::TempDir;
using testing::write_file;
using testing::write_script;

TEST(Footprint, CompiledPythonModulesCountAsTheirSources) {
  EXPECT_EQ(source_of("pkg/__pycache__/mod.cpython-311.pyc"), "pkg/mod.py");
  EXPECT_EQ(source_of("pkg/__pycache__/mod.cpython-311.opt-1.pyc"), "pkg/mod.py");
  EXPECT_EQ(source_of("__pycache__/train.cpython-311.pyc"), "train.py");
  EXPECT_EQ(source_of("a/b/__pycache__/__init__.cpython-311.pyc"), "a/b/__init__.py");
  EXPECT_EQ(source_of("pkg/mod.py"), "pkg/mod.py");
  EXPECT_EQ(source_of("pkg/mod.pyc"), "pkg/mod.pyc");  // not in a __pycache__: as it is
  EXPECT_EQ(source_of("my__pycache__/x.cpython-311.pyc"), "my__pycache__/x.cpython-311.pyc");
  EXPECT_EQ(source_of("data/__pycache__/notes.txt"), "data/__pycache__/notes.txt");
}

class FootprintTest : public ::testing::Test {
 protected:
  FootprintTest() {
    write_file(dir_ / "train.py", "import pkg.mod\n");
    write_file(dir_ / "pkg" / "__init__.py", "");
    write_file(dir_ / "pkg" / "__pycache__" / "mod.cpython-311.pyc", "x");
    write_file(dir_ / "pkg" / "mod.py", "x = 1\n");
    write_file(dir_ / "README.md", "# not read\n");
    write_file(dir_ / "data" / "deep" / "er" / "table.csv", "a,b\n");
    write_file(dir_ / ".git" / "config", "");
  }
  TempDir dir_;
};

TEST_F(FootprintTest, TheFilesOpenedAndNoOthers) {
  FootprintWatch watch(dir_.str());
  ASSERT_TRUE(watch.ok()) << watch.why_not();
  for (const char* f : {"train.py", "pkg/__init__.py", "pkg/__pycache__/mod.cpython-311.pyc", "data/deep/er/table.csv",
                        "train.py", ".git/config"})
    std::ifstream(dir_ / f).get();
  const auto files = watch.files();
  ASSERT_TRUE(files.has_value()) << watch.why_not();
  EXPECT_EQ(*files, (std::vector<std::string>{"data/deep/er/table.csv", "pkg/__init__.py", "pkg/mod.py", "train.py"}))
      << "each once, sorted, the compiled module as its source, nothing of .git, README.md not opened";
}

TEST_F(FootprintTest, OpensInsideTheSandboxAreSeenThroughItsBindMount) {
  write_script(dir_ / "workload.sh", "cat train.py pkg/mod.py > /dev/null\necho first_batch >&3\n");
  FootprintWatch watch(dir_.str());
  ASSERT_TRUE(watch.ok()) << watch.why_not();
  WorkloadSpec spec;
  spec.argv = {"/bin/sh", "workload.sh"};
  spec.cwd = dir_.str();
  spec.timeout = 20s;
  spec.kill_grace = 500ms;
  spec.scratch_root = (dir_ / "scratch").string();
  if (::geteuid() == 0) spec.run_as = lookup_user("nobody");
  const RunResult r = run_workload(spec);
  ASSERT_EQ(r.outcome, RunOutcome::first_batch) << r.message << "\n" << r.output_tail;
  const auto files = watch.files();
  ASSERT_TRUE(files.has_value()) << watch.why_not();
  EXPECT_NE(std::find(files->begin(), files->end(), "train.py"), files->end());
  EXPECT_NE(std::find(files->begin(), files->end(), "pkg/mod.py"), files->end());
  EXPECT_NE(std::find(files->begin(), files->end(), "workload.sh"), files->end());
  EXPECT_EQ(std::find(files->begin(), files->end(), "README.md"), files->end());
}

TEST_F(FootprintTest, ATreeBeyondTheLimitsGivesNoFootprintRatherThanPartOfOne) {
  FootprintWatch few_dirs(dir_.str(), 2);
  EXPECT_FALSE(few_dirs.ok());
  EXPECT_NE(few_dirs.why_not().find("more than 2 directories"), std::string::npos) << few_dirs.why_not();
  EXPECT_FALSE(few_dirs.files().has_value());

  FootprintWatch few_files(dir_.str(), 8192, 2);
  for (const char* f : {"train.py", "pkg/__init__.py", "pkg/mod.py"}) std::ifstream(dir_ / f).get();
  EXPECT_FALSE(few_files.files().has_value());
  EXPECT_NE(few_files.why_not().find("more than 2 files"), std::string::npos) << few_files.why_not();
}

}  // namespace
}  // namespace ttfb::worker
