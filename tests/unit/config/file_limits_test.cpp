// Tests for what load_file accepts before reading: a regular file of at most
// max_config_file_bytes. /dev/zero, a FIFO (no writer: opening it must not block), a directory
// and a sparse file over the limit are each refused at once with a message naming the file.
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>

#include "config/load.h"

namespace canary::config {
namespace {

class FileLimits : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() /
           ("canary-file-limits-" + std::to_string(::getpid()) + "-" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::create_directories(dir_);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  // The one error of loading `path`. (Without the checks, /dev/zero is read until memory runs
  // out and the FIFO's open() waits for a writer: the e2e tests bound those runs in time.)
  std::string only_error(const std::string& path) {
    load_result r = load_file(path);
    EXPECT_FALSE(r.config.has_value());
    if (r.errors.size() != 1) return "errors: " + std::to_string(r.errors.size());
    EXPECT_EQ(r.errors[0].line, 0);
    return r.errors[0].to_string();
  }

  std::filesystem::path dir_;
};

TEST_F(FileLimits, CharacterDeviceIsRefused) {
  EXPECT_EQ(only_error("/dev/zero"),
            "/dev/zero: cannot read file: a character device is not a config file (a config is a "
            "regular file)");
}

TEST_F(FileLimits, FifoIsRefusedWithoutWaitingForAWriter) {
  const std::string fifo = (dir_ / "config.yaml").string();
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
  EXPECT_EQ(only_error(fifo),
            fifo + ": cannot read file: a FIFO is not a config file (a config is a regular file)");
}

TEST_F(FileLimits, FileOverTheLimitIsRefusedBeforeReading) {
  const std::string big = (dir_ / "big.yaml").string();
  std::filesystem::resize_file((std::ofstream(big), big), max_config_file_bytes + 1);  // sparse
  EXPECT_EQ(only_error(big), big + ": cannot read file: the file has 67108865 bytes, more than a "
                                   "config file may have (64 MiB)");
}

TEST_F(FileLimits, FileAtTheLimitIsRead) {
  // Exactly the limit is allowed: the file is read (and then fails as YAML, being NULs), with
  // a parse error rather than a size error.
  const std::string edge = (dir_ / "edge.yaml").string();
  std::filesystem::resize_file((std::ofstream(edge), edge), max_config_file_bytes);
  load_result r = load_file(edge);
  ASSERT_FALSE(r.errors.empty());
  EXPECT_EQ(r.errors[0].to_string().find("more than a config file may have"), std::string::npos)
      << r.errors[0].to_string();
}

TEST_F(FileLimits, SymlinkToARegularFileIsFollowed) {
  const auto real = dir_ / "real.yaml";
  std::ofstream(real) << "upstreams: {blue: {endpoints: [\"127.0.0.1:9001\"]}}\n"
                         "routes: [{name: r, upstream: blue}]\n";
  std::filesystem::create_symlink(real, dir_ / "link.yaml");
  load_result r = load_file((dir_ / "link.yaml").string());
  EXPECT_TRUE(r.config.has_value()) << (r.errors.empty() ? "" : r.errors[0].to_string());
}

TEST_F(FileLimits, EmptyRegularFileIsReadAndReportedEmpty) {
  const std::string empty = (dir_ / "empty.yaml").string();
  std::ofstream{empty};
  load_result r = load_file(empty);
  ASSERT_EQ(r.errors.size(), 1u);
  EXPECT_NE(r.errors[0].message.find("the config is empty"), std::string::npos);
}

}  // namespace
}  // namespace canary::config
