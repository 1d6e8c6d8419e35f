// Every way an encrypted model can be damaged or forged fails, with an error that says what, and
// DecryptToFile leaves nothing at its path (DecryptViaFile checks that on every failure).
#include <gtest/gtest.h>

#include <string>

#include "model/format.h"
#include "tests/model/model_test_util.h"

namespace pp::model {
namespace {

using testing::DecryptString;
using testing::DecryptViaFile;
using testing::EncryptString;
using testing::kChunk;
using testing::kKey;
using testing::MemFile;
using testing::RandomBytes;
using testing::ReadAllFd;
using testing::TempDir;

// The test files: key id "kbs:///default/model-key/test" (29 bytes), so a 127-byte header, then
// 4.5 chunks of plaintext: four full chunk records and a half one.
constexpr std::size_t kHeader = 66 + 29 + 32;
constexpr std::size_t kRecord = kChunk + kTagBytes;
constexpr std::size_t kChunks = 5;
const std::string& Plain() {
  static const std::string plain = RandomBytes(4 * kChunk + kChunk / 2, 42);
  return plain;
}
const std::string& Sized() {  // encrypted from a file: the header has the size
  static const std::string file = EncryptString(Plain(), false);
  return file;
}
const std::string& Unsized() {  // encrypted from a pipe: the size is unknown
  static const std::string file = EncryptString(Plain(), true);
  return file;
}
std::string Record(const std::string& file, std::size_t i) {
  return file.substr(kHeader + i * kRecord, i + 1 == kChunks ? std::string::npos : kRecord);
}
std::string Join(const std::string& file, std::initializer_list<std::size_t> records) {
  std::string out = file.substr(0, kHeader);
  for (auto i : records) out += Record(file, i);
  return out;
}

// Fails in both decrypt paths with `code` and a message holding `says`.
void ExpectFailure(const std::string& file, Code code, const std::string& says) {
  auto streamed = DecryptString(file);
  ASSERT_FALSE(streamed) << "tampered file decrypted";
  EXPECT_EQ(streamed.error().code, code) << streamed.error().ToString();
  EXPECT_NE(streamed.error().message.find(says), std::string::npos) << streamed.error().message;
  auto released = DecryptViaFile(file);
  ASSERT_FALSE(released);
  EXPECT_EQ(released.error(), streamed.error());
}

TEST(TamperTest, TheTestFilesDecrypt) {
  ASSERT_EQ(Sized().size(), kHeader + 4 * kRecord + kChunk / 2 + kTagBytes);
  ASSERT_EQ(Unsized().size(), Sized().size());
  EXPECT_EQ(DecryptString(Sized()).value(), Plain());
  EXPECT_EQ(DecryptString(Unsized()).value(), Plain());
}

TEST(TamperTest, EveryFlippedHeaderBitFails) {
  TempDir dir;
  for (const auto* file : {&Sized(), &Unsized()}) {
    for (std::size_t byte = 0; byte < kHeader; ++byte) {
      for (int bit = 0; bit < 8; ++bit) {
        std::string bad = *file;
        bad[byte] = static_cast<char>(bad[byte] ^ (1 << bit));
        auto in = MemFile(bad);
        ASSERT_FALSE(DecryptToFile(in.get(), dir / "model", 0600, kKey, nullptr))
            << "bit " << bit << " of header byte " << byte;
        ASSERT_EQ(dir.Entries(), 0u);
      }
    }
  }
}

TEST(TamperTest, EachHeaderFieldFailsWithItsReason) {
  auto flip = [](std::size_t byte, int bit = 0) {
    std::string bad = Sized();
    bad[byte] = static_cast<char>(bad[byte] ^ (1 << bit));
    return bad;
  };
  ExpectFailure(flip(0), Code::kInvalidArgument, "not an encrypted model");
  ExpectFailure(flip(9), Code::kUnimplemented, "version 0 is not supported");
  ExpectFailure(flip(11), Code::kUnimplemented, "cipher 0 is not supported");
  ExpectFailure(flip(15), Code::kUnauthenticated,
                "wrong key or tampered header");                     // chunk size 4097
  ExpectFailure(flip(12, 7), Code::kInvalidArgument, "chunk size");  // 2 GiB + 4096
  ExpectFailure(flip(23), Code::kUnauthenticated,
                "wrong key or tampered header");  // plaintext size
  ExpectFailure(flip(16, 7), Code::kInvalidArgument, "more than 2^32 chunks");
  ExpectFailure(flip(30), Code::kUnauthenticated, "wrong key or tampered header");  // salt
  ExpectFailure(flip(60), Code::kUnauthenticated, "wrong key or tampered header");  // nonce prefix
  ExpectFailure(flip(64), Code::kInvalidArgument, "key id of");                     // length 285
  ExpectFailure(flip(70), Code::kUnauthenticated, "wrong key or tampered header");  // key id
  ExpectFailure(flip(66 + 29 + 5), Code::kUnauthenticated, "wrong key or tampered header");  // MAC
}

TEST(TamperTest, WrongKeyIsToldApartAndNeverShown) {
  std::array<std::uint8_t, kKeyBytes> other = kKey;
  other[31] ^= 1;
  auto result = DecryptString(Sized(), other);
  ASSERT_FALSE(result);
  EXPECT_EQ(result.error().code, Code::kUnauthenticated);
  EXPECT_NE(result.error().message.find("wrong key or tampered header"), std::string::npos);
  EXPECT_FALSE(DecryptViaFile(Sized(), other));
  EXPECT_EQ(result.error().message.find(std::string(kKey.begin(), kKey.end())), std::string::npos);
}

TEST(TamperTest, FlippedCiphertextOrTagFailsThatChunkAfterTheOnesBefore) {
  for (std::size_t offset :
       {std::size_t{0}, std::size_t{kChunk / 2}, std::size_t{kChunk - 1}, std::size_t{kChunk},
        kChunk + kTagBytes - 1}) {  // ciphertext, then the tag
    std::string bad = Sized();
    bad[kHeader + 2 * kRecord + offset] ^= 0x10;
    ExpectFailure(bad, Code::kDataLoss, "chunk 2 failed authentication");
    // Streamed: chunks 0 and 1 were released (each authenticated), nothing of chunk 2.
    auto in = MemFile(bad);
    auto out = MemFile();
    ASSERT_FALSE(Decrypt(in.get(), out.get(), kKey, nullptr));
    EXPECT_EQ(ReadAllFd(out.get()), Plain().substr(0, 2 * kChunk));
  }
  std::string last = Unsized();
  last[last.size() - 1] ^= 1;
  ExpectFailure(last, Code::kDataLoss, "chunk 4 (the last in the file) failed authentication");
}

TEST(TamperTest, TruncationAnywhereFails) {
  for (const auto* file : {&Sized(), &Unsized()}) {
    for (std::size_t at = 0; at < file->size(); at += (at < kHeader + 8 ? 1 : 61)) {
      auto result = DecryptViaFile(file->substr(0, at));
      ASSERT_FALSE(result) << "truncated at " << at;
    }
    for (std::size_t i = 0; i < kChunks;
         ++i) {  // exactly at each chunk boundary, and one byte either side
      for (std::size_t at :
           {kHeader + i * kRecord - 1, kHeader + i * kRecord, kHeader + i * kRecord + 1}) {
        ASSERT_FALSE(DecryptViaFile(file->substr(0, at))) << "truncated at " << at;
      }
    }
  }
  ExpectFailure(Sized().substr(0, 50), Code::kDataLoss, "truncated inside its header");
  ExpectFailure(Sized().substr(0, kHeader), Code::kDataLoss, "no chunk after the header");
  ExpectFailure(Unsized().substr(0, kHeader), Code::kDataLoss, "no chunk after the header");
  ExpectFailure(Sized().substr(0, kHeader + 3 * kRecord), Code::kDataLoss,
                "truncated after chunk 2 (the header says 5 chunks)");
  ExpectFailure(Sized().substr(0, kHeader + 3 * kRecord + 100), Code::kDataLoss,
                "truncated inside chunk 3");
  // The final chunk dropped.
  ExpectFailure(Join(Sized(), {0, 1, 2, 3}), Code::kDataLoss, "truncated after chunk 3");
  ExpectFailure(Join(Unsized(), {0, 1, 2, 3}), Code::kDataLoss,
                "chunk 3 (the last in the file) failed");
  ExpectFailure(Sized().substr(0, Sized().size() - 1), Code::kDataLoss, "final chunk 4 has");
}

TEST(TamperTest, DroppedDuplicatedSwappedChunksFail) {
  for (const auto* file : {&Sized(), &Unsized()}) {
    ExpectFailure(Join(*file, {0, 2, 3, 4}), Code::kDataLoss, "chunk 1 failed authentication");
    ExpectFailure(Join(*file, {0, 1, 1, 2, 3, 4}), Code::kDataLoss,
                  "chunk 2 failed authentication");
    ExpectFailure(Join(*file, {0, 2, 1, 3, 4}), Code::kDataLoss, "chunk 1 failed authentication");
    ExpectFailure(Join(*file, {1, 0, 2, 3, 4}), Code::kDataLoss, "chunk 0 failed authentication");
  }
  // The final chunk moved before another.
  ExpectFailure(Join(Sized(), {0, 1, 2, 4, 3}), Code::kDataLoss, "chunk 3 failed authentication");
}

TEST(TamperTest, TrailingBytesFail) {
  ExpectFailure(Sized() + "x", Code::kDataLoss, "final chunk 4 has");
  ExpectFailure(Sized() + std::string(kRecord, 'x'), Code::kDataLoss,
                "bytes after its final chunk 4");
  ExpectFailure(Unsized() + "x", Code::kDataLoss,
                "chunk 4 (the last in the file) failed authentication");
}

TEST(TamperTest, SplicingAcrossFilesWithTheSameKeyFails) {
  // Another file of the same size, key and key id: its header is genuine, its chunks too.
  const std::string other = EncryptString(RandomBytes(Plain().size(), 7), false);
  ExpectFailure(other.substr(0, kHeader) + Sized().substr(kHeader), Code::kDataLoss,
                "chunk 0 failed authentication");
  std::string spliced = Sized();
  spliced.replace(kHeader + 2 * kRecord, kRecord, Record(other, 2));
  ExpectFailure(spliced, Code::kDataLoss, "chunk 2 failed authentication");
  // The same plaintext encrypted twice shares nothing either (fresh salt and nonce prefix).
  const std::string again = EncryptString(Plain(), false);
  EXPECT_NE(again.substr(0, kHeader), Sized().substr(0, kHeader));
  ExpectFailure(again.substr(0, kHeader) + Sized().substr(kHeader), Code::kDataLoss,
                "chunk 0 failed authentication");
}

}  // namespace
}  // namespace pp::model
