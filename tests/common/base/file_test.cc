#include "common/base/file.h"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <atomic>
#include <thread>
#include <vector>

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

// Concurrent writers of one file (the record of one sandbox from two threads, say) each see their
// own temporary file: the result is one whole version, never a mix, and every write succeeds.
TEST(FileTest, ConcurrentAtomicWritersNeverMixOrFail) {
  pp::testing::TempDir dir;
  const std::string path = dir / "f";
  std::atomic<int> failures{0};
  std::vector<std::jthread> writers;
  for (int t = 0; t < 8; ++t) {
    writers.emplace_back([&, t] {
      const std::string content(64 * 1024, static_cast<char>('a' + t));
      for (int i = 0; i < 50; ++i) {
        if (!WriteFileAtomic(path, content, 0600)) failures.fetch_add(1);
      }
    });
  }
  writers.clear();
  EXPECT_EQ(failures.load(), 0);
  const auto text = *ReadFile(path, 1 << 20);
  ASSERT_EQ(text.size(), 64u * 1024);
  EXPECT_EQ(text.find_first_not_of(text[0]), std::string::npos) << "a mix of two writes";
  EXPECT_EQ(std::distance(std::filesystem::directory_iterator(dir.path()), {}), 1);  // no temp left
}

}  // namespace
}  // namespace pp
