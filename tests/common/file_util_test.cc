#include "common/file_util.h"

#include <filesystem>

#include "gtest/gtest.h"
#include "tests/testutil/temp_dir.h"

namespace dgsr {
namespace {

TEST(FileUtil, AtomicWriteThenRead) {
  testing::TempDir dir;
  const std::string path = dir.Sub("a/b/file.txt");
  ASSERT_TRUE(MakeDirs(dir.Sub("a/b")).ok());
  ASSERT_TRUE(WriteFileAtomic(path, "hello").ok());
  ASSERT_TRUE(WriteFileAtomic(path, "world").ok());
  auto read = ReadFile(path);
  ASSERT_TRUE(read.ok()) << read.status();
  EXPECT_EQ(*read, "world");
  // No temp files are left behind.
  int entries = 0;
  for (const auto& e : std::filesystem::directory_iterator(dir.Sub("a/b"))) {
    (void)e;
    ++entries;
  }
  EXPECT_EQ(entries, 1);
}

TEST(FileUtil, ErrorsNameThePath) {
  auto missing = ReadFile("/nonexistent/dgsr/file");
  EXPECT_EQ(missing.status().code(), absl::StatusCode::kNotFound);
  EXPECT_NE(missing.status().message().find("/nonexistent/dgsr/file"), std::string::npos);
  EXPECT_FALSE(WriteFileAtomic("/nonexistent/dgsr/file", "x").ok());
}

}  // namespace
}  // namespace dgsr
