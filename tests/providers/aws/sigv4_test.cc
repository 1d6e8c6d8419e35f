// The SigV4 signer against every v4 case of the aws-c-auth signing suite (sigv4-suite/, Apache-2.0,
// see its README): canonical request, string to sign and signature, in the header and the
// presigned-query forms.
#include "providers/aws/sigv4.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

namespace pp::providers::aws {
namespace {

namespace fs = std::filesystem;

const fs::path kSuite = fs::path(PP_SOURCE_DIR) / "tests/providers/aws/sigv4-suite";

std::string Slurp(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

struct Case {
  SigningInput input;
  std::string body;
  Credentials creds;
  SigningParams params;
};

// request.txt: "METHOD target HTTP/1.1", "Name:value" lines (a line starting with whitespace
// continues the previous value, obs-fold), a blank line, the body.
Case Load(const fs::path& dir) {
  Case c;
  const auto ctx = nlohmann::json::parse(Slurp(dir / "context.json"));
  c.creds.access_key_id = ctx["credentials"]["access_key_id"];
  c.creds.secret_access_key = ctx["credentials"]["secret_access_key"];
  c.creds.session_token = ctx["credentials"].value("token", "");
  c.params.region = ctx["region"];
  c.params.service = ctx["service"];
  c.params.normalize_path = ctx.value("normalize", true);
  c.params.sign_body = ctx.value("sign_body", false);
  c.params.omit_session_token = ctx.value("omit_session_token", false);
  c.params.expires = std::chrono::seconds(ctx.value("expiration_in_seconds", 3600));
  std::tm tm{};
  std::istringstream ts(ctx["timestamp"].get<std::string>());
  ts >> std::get_time(&tm, "%Y-%m-%dT%H:%M:%SZ");
  c.params.time = std::chrono::system_clock::from_time_t(timegm(&tm));

  const std::string raw = Slurp(dir / "request.txt");
  std::size_t pos = raw.find('\n');
  const std::string line = raw.substr(0, pos);
  const std::size_t sp = line.find(' ');
  const std::size_t proto = line.rfind(" HTTP/");
  c.input.method = line.substr(0, sp);
  const std::string target = line.substr(sp + 1, proto - sp - 1);
  const std::size_t q = target.find('?');
  c.input.path = target.substr(0, q);
  if (q != std::string::npos) c.input.query = target.substr(q + 1);
  ++pos;
  while (pos < raw.size()) {
    std::size_t end = raw.find('\n', pos);
    if (end == std::string::npos) end = raw.size();
    const std::string h = raw.substr(pos, end - pos);
    pos = end + 1;
    if (h.empty()) {
      c.body = pos < raw.size() ? raw.substr(pos) : "";
      break;
    }
    if (h[0] == ' ' || h[0] == '\t') {
      c.input.headers.back().second += "\n" + h;
      continue;
    }
    const std::size_t colon = h.find(':');
    c.input.headers.emplace_back(h.substr(0, colon), h.substr(colon + 1));
  }
  return c;
}

std::vector<std::string> CaseNames() {
  std::vector<std::string> names;
  for (const auto& e : fs::directory_iterator(kSuite)) {
    if (e.is_directory()) names.push_back(e.path().filename().string());
  }
  std::sort(names.begin(), names.end());
  return names;
}

class SigV4SuiteTest : public ::testing::TestWithParam<std::string> {};

TEST_P(SigV4SuiteTest, HeaderFormMatches) {
  const fs::path dir = kSuite / GetParam();
  Case c = Load(dir);
  c.input.body = c.body;
  const SignedParts s = SignHeaders(c.input, c.creds, c.params);
  EXPECT_EQ(s.canonical_request, Slurp(dir / "header-canonical-request.txt"));
  EXPECT_EQ(s.string_to_sign, Slurp(dir / "header-string-to-sign.txt"));
  EXPECT_EQ(s.signature, Slurp(dir / "header-signature.txt"));
  // The Authorization header is the last line of the signed request the suite shows.
  const std::string signed_request = Slurp(dir / "header-signed-request.txt");
  ASSERT_FALSE(s.headers.empty());
  EXPECT_NE(signed_request.find("Authorization:" + s.headers.back().second + "\n"),
            std::string::npos);
}

TEST_P(SigV4SuiteTest, QueryFormMatches) {
  const fs::path dir = kSuite / GetParam();
  Case c = Load(dir);
  c.input.body = c.body;
  const SignedParts s = SignQuery(c.input, c.creds, c.params);
  EXPECT_EQ(s.canonical_request, Slurp(dir / "query-canonical-request.txt"));
  EXPECT_EQ(s.string_to_sign, Slurp(dir / "query-string-to-sign.txt"));
  EXPECT_EQ(s.signature, Slurp(dir / "query-signature.txt"));
  const std::string signed_request = Slurp(dir / "query-signed-request.txt");
  EXPECT_NE(signed_request.find("?" + s.query + " HTTP/1.1\n"), std::string::npos) << s.query;
}

INSTANTIATE_TEST_SUITE_P(AwsCAuth, SigV4SuiteTest, ::testing::ValuesIn(CaseNames()),
                         [](const auto& case_info) {
                           std::string n = case_info.param;
                           std::replace(n.begin(), n.end(), '-', '_');
                           return n;
                         });

TEST(SigV4Test, TheIamDocumentationExampleSigningKeyAndSignature) {
  // AWS General Reference, "Signature Version 4 signing process" example (IAM ListUsers).
  SigningInput in;
  in.method = "GET";
  in.path = "/";
  in.query = "Action=ListUsers&Version=2010-05-08";
  in.headers = {{"Content-Type", "application/x-www-form-urlencoded; charset=utf-8"},
                {"Host", "iam.amazonaws.com"}};
  SigningParams p;
  p.region = "us-east-1";
  p.service = "iam";
  std::tm tm{};
  tm.tm_year = 115;
  tm.tm_mon = 7;
  tm.tm_mday = 30;
  tm.tm_hour = 12;
  tm.tm_min = 36;
  p.time = std::chrono::system_clock::from_time_t(timegm(&tm));
  const SignedParts s =
      SignHeaders(in, {"AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", ""}, p);
  EXPECT_EQ(Sha256Hex(s.canonical_request),
            "f536975d06c0309214f805bb90ccff089219ecd68b2577efef23edd43b7e1a59");
  EXPECT_EQ(s.signature, "5d672d79c15b13162d9279b0855cfba6789a8edb4c82c400e06b5924a6f2b5d7");
}

TEST(SigV4Test, UriEncodeKeepsOnlyUnreservedBytes) {
  EXPECT_EQ(UriEncode("aZ09-_.~"), "aZ09-_.~");
  EXPECT_EQ(UriEncode("a b+c/=&"), "a%20b%2Bc%2F%3D%26");
  EXPECT_EQ(UriEncode("/a b/", true), "/a%20b/");
  EXPECT_EQ(UriEncode("\xe1\x88\xb4"), "%E1%88%B4");
  EXPECT_EQ(UriDecode("%E1%88%B4=%zz%4"), "\xe1\x88\xb4=%zz%4");
}

}  // namespace
}  // namespace pp::providers::aws
