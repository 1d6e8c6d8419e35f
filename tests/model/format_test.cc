#include "model/format.h"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <filesystem>
#include <string>
#include <vector>

#include "tests/model/model_test_util.h"

namespace pp::model {
namespace {

using testing::DecryptString;
using testing::DecryptViaFile;
using testing::EncryptString;
using testing::FedPipe;
using testing::kChunk;
using testing::kKey;
using testing::MemFile;
using testing::RandomBytes;
using testing::ReadAllFd;
using testing::TempDir;

class RoundTrip : public ::testing::TestWithParam<std::size_t> {};

TEST_P(RoundTrip, FileAndPipeInputDecryptToTheSameBytes) {
  const std::string plain = RandomBytes(GetParam(), static_cast<unsigned>(GetParam()));
  for (bool from_pipe : {false, true}) {
    SCOPED_TRACE(from_pipe ? "from a pipe" : "from a file");
    const std::string file = EncryptString(plain, from_pipe);
    const std::size_t chunks = plain.empty() ? 1 : (plain.size() - 1) / kChunk + 1;
    EXPECT_EQ(file.size(), 66 + 29 + 32 + plain.size() + chunks * kTagBytes);
    auto streamed = DecryptString(file);
    ASSERT_TRUE(streamed) << streamed.error().message;
    EXPECT_EQ(*streamed, plain);
    auto released = DecryptViaFile(file);
    ASSERT_TRUE(released) << released.error().message;
    EXPECT_EQ(*released, plain);
  }
}

INSTANTIATE_TEST_SUITE_P(Sizes, RoundTrip,
                         ::testing::Values(0, 1, kChunk - 1, kChunk, kChunk + 1, 2 * kChunk,
                                           5 * kChunk + 17,
                                           // sizes from a fixed seed, so a failure reproduces
                                           12345, 77777, 131071, 200003));

TEST(FormatTest, DefaultChunkSizeAndLargeChunks) {
  for (std::uint32_t chunk : {kDefaultChunkSize, kMaxChunkSize}) {
    const std::string plain = RandomBytes(kDefaultChunkSize + 3, chunk);
    auto back = DecryptString(EncryptString(plain, false, chunk));
    ASSERT_TRUE(back) << back.error().message;
    EXPECT_EQ(*back, plain);
  }
}

TEST(FormatTest, ReadHeaderNeedsNoKeyAndLeavesAPipeAtTheFirstChunk) {
  const std::string plain = RandomBytes(3 * kChunk + 5, 1);
  const std::string file = EncryptString(plain, false);
  FedPipe pipe(file);
  auto h = ReadHeader(pipe.fd());
  ASSERT_TRUE(h) << h.error().message;
  EXPECT_EQ(h->version, 1u);
  EXPECT_EQ(h->chunk_size, kChunk);
  EXPECT_EQ(h->key_id, "kbs:///default/model-key/test");
  EXPECT_EQ(h->plaintext_size, plain.size());
  EXPECT_EQ(h->EncodedSize(), 66 + h->key_id.size() + 32);
  TempDir dir;
  auto done = DecryptBodyToFile(*h, pipe.fd(), dir / "m", 0600, kKey, nullptr);
  ASSERT_TRUE(done) << done.error().message;
  auto fd = ScopedFd(::open((dir / "m").c_str(), O_RDONLY | O_CLOEXEC));
  EXPECT_EQ(ReadAllFd(fd.get()), plain);
}

TEST(FormatTest, PipeInputRecordsAnUnknownSize) {
  const std::string file = EncryptString("hello", true);
  auto in = MemFile(file);
  auto h = ReadHeader(in.get());
  ASSERT_TRUE(h);
  EXPECT_EQ(h->plaintext_size, kUnknownSize);
}

TEST(FormatTest, EncryptRefusesBadOptions) {
  auto in = MemFile("x");
  auto out = MemFile();
  EXPECT_EQ(Encrypt(in.get(), out.get(), kKey, {kMinChunkSize - 1, "", nullptr}).error().code,
            Code::kInvalidArgument);
  EXPECT_EQ(Encrypt(in.get(), out.get(), kKey, {kMaxChunkSize + 1, "", nullptr}).error().code,
            Code::kInvalidArgument);
  EXPECT_EQ(Encrypt(in.get(), out.get(), kKey, {kChunk, "a\nb", nullptr}).error().code,
            Code::kInvalidArgument);
  EXPECT_EQ(
      Encrypt(in.get(), out.get(), kKey, {kChunk, std::string(257, 'k'), nullptr}).error().code,
      Code::kInvalidArgument);
}

TEST(FormatTest, ProgressCountsPlaintextToTheTotal) {
  const std::string plain = RandomBytes(3 * kChunk + 1, 2);
  std::vector<std::pair<std::uint64_t, std::uint64_t>> calls;
  auto in = MemFile(plain);
  auto out = MemFile();
  ASSERT_TRUE(Encrypt(in.get(), out.get(), kKey,
                      {kChunk, "", [&](auto d, auto t) { calls.emplace_back(d, t); }}));
  ASSERT_EQ(calls.size(), 4u);
  EXPECT_EQ(calls.back(), std::make_pair(std::uint64_t{plain.size()}, std::uint64_t{plain.size()}));
  calls.clear();
  ::lseek(out.get(), 0, SEEK_SET);
  auto plain_out = MemFile();
  ASSERT_TRUE(
      Decrypt(out.get(), plain_out.get(), kKey, [&](auto d, auto t) { calls.emplace_back(d, t); }));
  ASSERT_EQ(calls.size(), 4u);
  EXPECT_EQ(calls[0].first, kChunk);
  EXPECT_EQ(calls.back().first, plain.size());
}

// DecryptToFile: the plaintext appears at its path, with its mode, only at the end; while it is
// written it sits in a 0600 partial file; an existing file survives a failure.
TEST(DecryptToFileTest, ReleasesOnlyAtTheEndWithTheMode) {
  const std::string plain = RandomBytes(4 * kChunk, 3);
  const std::string file = EncryptString(plain, false);
  TempDir dir;
  auto in = MemFile(file);
  int checks = 0;
  auto h = DecryptToFile(in.get(), dir / "model", 0640, kKey, [&](std::uint64_t, std::uint64_t) {
    EXPECT_FALSE(std::filesystem::exists(dir / "model"));
    for (const auto& entry : std::filesystem::directory_iterator(dir.path())) {
      EXPECT_TRUE(entry.path().filename().string().starts_with("model.partial-")) << entry.path();
      struct stat st {};
      ASSERT_EQ(::stat(entry.path().c_str(), &st), 0);
      EXPECT_EQ(st.st_mode & 0777, 0600u);
      ++checks;
    }
  });
  ASSERT_TRUE(h) << h.error().message;
  EXPECT_EQ(checks, 4);
  struct stat st {};
  ASSERT_EQ(::stat((dir / "model").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0640u);
  EXPECT_EQ(st.st_size, static_cast<off_t>(plain.size()));
  EXPECT_EQ(dir.Entries(), 1u);
}

TEST(DecryptToFileTest, AFailureLeavesAnExistingFileAlone) {
  std::string file = EncryptString(RandomBytes(3 * kChunk, 4), false);
  file[file.size() - 1] ^= 1;
  TempDir dir;
  {
    auto old = ScopedFd(::open((dir / "model").c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0644));
    ASSERT_EQ(::write(old.get(), "old", 3), 3);
  }
  auto in = MemFile(file);
  auto h = DecryptToFile(in.get(), dir / "model", 0600, kKey, nullptr);
  ASSERT_FALSE(h);
  EXPECT_EQ(dir.Entries(), 1u);
  auto fd = ScopedFd(::open((dir / "model").c_str(), O_RDONLY | O_CLOEXEC));
  EXPECT_EQ(ReadAllFd(fd.get()), "old");
}

TEST(DecryptToFileTest, MissingDirectoryIsNotFound) {
  auto in = MemFile(EncryptString("x", false));
  auto h = DecryptToFile(in.get(), "/nonexistent-dir-for-model-test/model", 0600, kKey, nullptr);
  ASSERT_FALSE(h);
  EXPECT_EQ(h.error().code, Code::kNotFound);
}

}  // namespace
}  // namespace pp::model
