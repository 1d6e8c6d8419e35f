#include "common/base/file.h"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include "tests/support/test_util.h"

namespace pp {
namespace {

TEST(FileTest, WriteFileAtomicReplacesContentAndSetsMode) {
  pp::testing::TempDir dir;
  const std::string path = dir / "f";
  ASSERT_TRUE(WriteFileAtomic(path, "one", 0600));
  ASSERT_TRUE(WriteFileAtomic(path, "two", 0640));
  EXPECT_EQ(*ReadFile(path, 100), "two");
  struct stat st{};
  ASSERT_EQ(::stat(path.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0640u);
  EXPECT_EQ(std::distance(std::filesystem::directory_iterator(dir.path()), {}), 1);  // no temp left
}

TEST(FileTest, ErrorsCarryTheirMeaning) {
  pp::testing::TempDir dir;
  auto missing = ReadFile(dir / "nope", 100);
  ASSERT_FALSE(missing);
  EXPECT_EQ(missing.error().code, Code::kNotFound);
  ASSERT_TRUE(WriteFileAtomic(dir / "big", std::string(101, 'x'), 0600));
  auto big = ReadFile(dir / "big", 100);
  ASSERT_FALSE(big);
  EXPECT_EQ(big.error().code, Code::kResourceExhausted);
  auto no_dir = WriteFileAtomic(dir / "no/such/dir", "x", 0600);
  ASSERT_FALSE(no_dir);
  EXPECT_EQ(no_dir.error().code, Code::kNotFound);
}

}  // namespace
}  // namespace pp
