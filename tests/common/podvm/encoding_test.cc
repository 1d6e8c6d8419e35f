#include "common/podvm/encoding.h"

#include <gtest/gtest.h>
#include <openssl/evp.h>

#include <cstdio>
#include <random>
#include <string>

#include "tests/support/test_util.h"

namespace pp::podvm {
namespace {

std::string OpensslEncode(const std::string& bytes) {
  std::string out(4 * ((bytes.size() + 2) / 3) + 1, '\0');
  const int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                                reinterpret_cast<const unsigned char*>(bytes.data()),
                                static_cast<int>(bytes.size()));
  out.resize(static_cast<std::size_t>(n));
  return out;
}

std::string RandomBytes(std::size_t n, unsigned seed) {
  std::mt19937 rng(seed);
  std::string out(n, '\0');
  for (auto& c : out) c = static_cast<char>(rng() & 0xFF);
  return out;
}

// Runs a shell command with `input` on stdin (through a file) and returns its stdout.
std::string RunFilter(const std::string& command, const std::string& input) {
  testing::TempDir dir;
  const std::string in = dir / "in";
  FILE* f = std::fopen(in.c_str(), "wb");
  std::fwrite(input.data(), 1, input.size(), f);
  std::fclose(f);
  FILE* p = ::popen((command + " < " + in).c_str(), "r");
  std::string out;
  char buffer[4096];
  for (std::size_t n; (n = std::fread(buffer, 1, sizeof buffer, p)) > 0;) out.append(buffer, n);
  EXPECT_EQ(::pclose(p), 0) << command;
  return out;
}

TEST(Base64Test, EncodeMatchesOpensslForEveryTailLength) {
  for (std::size_t n = 0; n < 70; ++n) {
    const std::string bytes = RandomBytes(n, static_cast<unsigned>(n));
    EXPECT_EQ(Base64Encode(bytes), OpensslEncode(bytes)) << n;
  }
}

TEST(Base64Test, DecodesOpensslOutputBackToTheBytes) {
  for (std::size_t n = 0; n < 70; ++n) {
    const std::string bytes = RandomBytes(n, static_cast<unsigned>(n) + 1000);
    std::string out;
    std::string error;
    ASSERT_TRUE(Base64Decode(OpensslEncode(bytes), 1 << 20, out, error)) << n << ": " << error;
    EXPECT_EQ(out, bytes) << n;
  }
}

TEST(Base64Test, DecodesLineWrappedOutputOfTheOpensslTool) {
  const std::string bytes = RandomBytes(1000, 7);
  const std::string wrapped = RunFilter("openssl base64", bytes);  // 64 columns, newline-terminated
  ASSERT_NE(wrapped.find('\n'), wrapped.size() - 1);
  std::string out;
  std::string error;
  ASSERT_TRUE(Base64Decode(wrapped, 1 << 20, out, error)) << error;
  EXPECT_EQ(out, bytes);
}

TEST(Base64Test, RefusesMalformedInput) {
  std::string out;
  std::string error;
  EXPECT_FALSE(Base64Decode("abc", 100, out, error));  // truncated
  EXPECT_NE(error.find("multiple of 4"), std::string::npos);
  EXPECT_FALSE(Base64Decode("ab!d", 100, out, error));
  EXPECT_NE(error.find("invalid character"), std::string::npos);
  EXPECT_FALSE(Base64Decode("a===", 100, out, error));      // too much padding
  EXPECT_FALSE(Base64Decode("ab=d", 100, out, error));      // data after padding
  EXPECT_FALSE(Base64Decode("ab==abcd", 100, out, error));  // padding before the last group
  EXPECT_FALSE(Base64Decode("ab-_", 100, out, error));      // URL alphabet is not standard base64
  EXPECT_FALSE(Base64Decode("YR==", 100, out, error));      // non-zero unused bits
  EXPECT_NE(error.find("canonical"), std::string::npos);
}

TEST(Base64Test, RefusesOutputOverTheLimitBeforeDecoding) {
  std::string out;
  std::string error;
  const std::string encoded = Base64Encode(std::string(100, 'x'));
  EXPECT_TRUE(Base64Decode(encoded, 100, out, error));
  EXPECT_FALSE(Base64Decode(encoded, 99, out, error));
  EXPECT_NE(error.find("limit"), std::string::npos);
}

TEST(GzipTest, RoundTripsAndInteroperatesWithTheGzipTool) {
  const std::string text = "version = \"0.1.0\"\nalgorithm = \"sha256\"\n" +
                           std::string(5000, 'a') + RandomBytes(3000, 3);
  std::string out;
  std::string error;
  ASSERT_TRUE(GzipDecompress(GzipCompress(text), 1 << 20, out, error)) << error;
  EXPECT_EQ(out, text);
  // Ours decompressed by gzip(1), gzip(1)'s decompressed by ours.
  EXPECT_EQ(RunFilter("gzip -dc", GzipCompress(text)), text);
  ASSERT_TRUE(GzipDecompress(RunFilter("gzip -c", text), 1 << 20, out, error)) << error;
  EXPECT_EQ(out, text);
}

TEST(GzipTest, CompressionIsDeterministic) {
  EXPECT_EQ(GzipCompress("same input"), GzipCompress("same input"));
}

TEST(GzipTest, StopsABombAtTheLimit) {
  const std::string bomb = GzipCompress(std::string(10 * 1024 * 1024, '\0'));
  ASSERT_LT(bomb.size(), 20000u);
  std::string out;
  std::string error;
  EXPECT_FALSE(GzipDecompress(bomb, 256 * 1024, out, error));
  EXPECT_NE(error.find("limit"), std::string::npos);
  EXPECT_TRUE(out.empty());
}

TEST(GzipTest, RefusesTruncatedCorruptAndTrailingData) {
  const std::string gz = GzipCompress(std::string(1000, 'z') + "end");
  std::string out;
  std::string error;
  EXPECT_FALSE(GzipDecompress(gz.substr(0, gz.size() - 5), 1 << 20, out, error));
  EXPECT_NE(error.find("truncated"), std::string::npos);
  EXPECT_FALSE(GzipDecompress("plain text, not gzip", 1 << 20, out, error));
  EXPECT_NE(error.find("corrupt"), std::string::npos);
  EXPECT_FALSE(GzipDecompress(gz + "junk", 1 << 20, out, error));
  EXPECT_NE(error.find("after the gzip stream"), std::string::npos);
  EXPECT_FALSE(GzipDecompress("", 1 << 20, out, error));
  std::string flipped = gz;
  flipped[gz.size() - 6] ^= 0x55;  // inside the CRC32 trailer
  EXPECT_FALSE(GzipDecompress(flipped, 1 << 20, out, error));
}

}  // namespace
}  // namespace pp::podvm
