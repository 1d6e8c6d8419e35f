#include "common/podvm/initdata.h"

#include <gtest/gtest.h>
#include <openssl/evp.h>

#include <string>

#include "common/podvm/encoding.h"

namespace pp::podvm {
namespace {

constexpr const char* kToml = R"(version = "0.1.0"
algorithm = "sha384"

[data]
"aa.toml" = '''
[token_configs.kbs]
url = "http://kbs.example:8080"
'''
"cdh.toml" = """
socket = 'unix:///run/confidential-containers/cdh.sock'
"""
"policy.rego" = "package agent_policy\n"
)";

std::string Hex(const std::string& algorithm, const std::string& bytes) {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int n = 0;
  EVP_Digest(bytes.data(), bytes.size(), digest, &n, EVP_get_digestbyname(algorithm.c_str()),
             nullptr);
  std::string out;
  char buf[3];
  for (unsigned i = 0; i < n; ++i) {
    std::snprintf(buf, sizeof buf, "%02x", digest[i]);
    out += buf;
  }
  return out;
}

TEST(InitdataTest, ParsesTheDocumentAndDigestsItsExactBytes) {
  Initdata initdata;
  std::string error;
  ASSERT_TRUE(ParseInitdataFile(EncodeInitdata(kToml), initdata, error)) << error;
  EXPECT_EQ(initdata.version, "0.1.0");
  EXPECT_EQ(initdata.algorithm, "sha384");
  EXPECT_EQ(initdata.toml, kToml);
  ASSERT_EQ(initdata.data.size(), 3u);
  EXPECT_EQ(initdata.data.at("aa.toml"),
            "[token_configs.kbs]\nurl = \"http://kbs.example:8080\"\n");
  EXPECT_EQ(initdata.data.at("policy.rego"), "package agent_policy\n");
  EXPECT_EQ(initdata.digest_hex, Hex("SHA384", kToml));
  EXPECT_EQ(initdata.digest_hex.size(), 96u);
}

TEST(InitdataTest, DigestFollowsTheAlgorithm) {
  for (const char* algorithm : {"sha256", "sha384", "sha512"}) {
    const std::string toml =
        std::string("version = \"0.1.0\"\nalgorithm = \"") + algorithm + "\"\n";
    Initdata initdata;
    std::string error;
    ASSERT_TRUE(ParseInitdataToml(toml, initdata, error)) << error;
    EXPECT_EQ(initdata.digest_hex, Hex(algorithm, toml)) << algorithm;
    EXPECT_TRUE(initdata.data.empty());
  }
}

TEST(InitdataTest, AcceptsLineWrappedBase64AsCaaWritesIt) {
  const std::string encoded = EncodeInitdata(kToml);
  std::string wrapped;
  for (std::size_t i = 0; i < encoded.size(); i += 60) wrapped += encoded.substr(i, 60) + "\n";
  Initdata initdata;
  std::string error;
  ASSERT_TRUE(ParseInitdataFile(wrapped, initdata, error)) << error;
  EXPECT_EQ(initdata.toml, kToml);
}

std::string FailToml(const std::string& toml) {
  Initdata initdata;
  std::string error;
  EXPECT_FALSE(ParseInitdataToml(toml, initdata, error)) << toml;
  return error;
}

TEST(InitdataTest, RefusesBadDocuments) {
  EXPECT_NE(FailToml("algorithm = \"sha256\"\n").find("\"version\" is missing"), std::string::npos);
  EXPECT_NE(FailToml("version = \"0.2.0\"\nalgorithm = \"sha256\"\n").find("0.1.0"),
            std::string::npos);
  EXPECT_NE(FailToml("version = \"0.1.0\"\n").find("\"algorithm\" is missing"), std::string::npos);
  EXPECT_NE(FailToml("version = \"0.1.0\"\nalgorithm = \"md5\"\n").find("sha256, sha384 or sha512"),
            std::string::npos);
  EXPECT_NE(FailToml("version = \"0.1.0\"\nalgorithm = \"sha256\"\ndata = 5\n")
                .find("\"data\" must be a table"),
            std::string::npos);
  EXPECT_NE(FailToml("version = \"0.1.0\"\nalgorithm = \"sha256\"\n[data]\n\"aa.toml\" = 1\n")
                .find("data.\"aa.toml\""),
            std::string::npos);
  const std::string syntax =
      FailToml("version = \"0.1.0\"\nalgorithm = \"sha256\"\n[data\nsecret = \"hunter2\"\n");
  EXPECT_NE(syntax.find("not valid TOML at line 3"), std::string::npos) << syntax;
  EXPECT_EQ(syntax.find("hunter2"), std::string::npos);
  EXPECT_NE(FailToml(std::string(kMaxInitdataBytes + 1, '#')).find("limit"), std::string::npos);
}

TEST(InitdataTest, RefusesBadEncodings) {
  Initdata initdata;
  std::string error;
  EXPECT_FALSE(ParseInitdataFile(kToml, initdata, error));  // plain TOML is not the file format
  EXPECT_NE(error.find("not base64(gzip(TOML))"), std::string::npos);
  EXPECT_FALSE(ParseInitdataFile(Base64Encode(kToml), initdata, error));  // base64 without gzip
  EXPECT_NE(error.find("gzip"), std::string::npos);
  const std::string bomb = Base64Encode(GzipCompress(std::string(4 * kMaxInitdataBytes, ' ')));
  EXPECT_FALSE(ParseInitdataFile(bomb, initdata, error));
  EXPECT_NE(error.find("limit"), std::string::npos);
}

TEST(InitdataTest, ChecksTomlSyntax) {
  std::string error;
  EXPECT_TRUE(CheckToml("[a]\nb = 1\n", error));
  EXPECT_FALSE(CheckToml("[a\n", error));
  EXPECT_NE(error.find("line 1"), std::string::npos);
}

}  // namespace
}  // namespace pp::podvm
