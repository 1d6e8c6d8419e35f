// The KBS protocol's messages without I/O (attest/kbs_protocol.h).
#include "attest/kbs_protocol.h"

#include <gtest/gtest.h>

namespace pp::attest {
namespace {

TEST(KbsProtocol, ChallengeShapes) {
  auto plain = ParseChallenge(R"({"nonce":"bm9uY2U=","extra-params":""})");
  ASSERT_TRUE(plain.has_value());
  EXPECT_EQ(plain->nonce, "bm9uY2U=");
  EXPECT_EQ(plain->hash, "sha384");
  EXPECT_EQ(ParseChallenge(R"({"nonce":"n","extra-params":{"selected-hash-algorithm":"sha512"}})")->hash, "sha512");
  EXPECT_EQ(ParseChallenge(R"({"nonce":"n","extra-params":"{\"selected-hash-algorithm\":\"sha256\"}"})")->hash,
            "sha256");
  for (const char* bad : {"", "{}", R"({"nonce":""})", R"({"nonce":3})",
                          R"({"nonce":"n","extra-params":{"selected-hash-algorithm":"md5"}})",
                          R"({"nonce":"n","extra-params":{"selected-hash-algorithm":1}})"}) {
    auto r = ParseChallenge(bad);
    ASSERT_FALSE(r.has_value()) << bad;
    EXPECT_EQ(r.error().code, Code::kDataLoss);
  }
}

TEST(KbsProtocol, ReportDataIsPaddedDigestOfCanonicalJson) {
  const nlohmann::json rd = {{"tee-pubkey", {{"kty", "EC"}}}, {"nonce", "n"}};
  auto sha256 = ReportData(rd, "sha256");
  auto sha512 = ReportData(rd, "sha512");
  ASSERT_TRUE(sha256 && sha512);
  EXPECT_EQ(sha256->size(), 64u);
  EXPECT_EQ(sha256->substr(32), std::string(32, '\0'));
  EXPECT_NE(sha512->substr(32), std::string(32, '\0'));
  // Member order does not matter: JCS sorts.
  EXPECT_EQ(*ReportData(nlohmann::json::parse(R"({"nonce":"n","tee-pubkey":{"kty":"EC"}})"), "sha256"), *sha256);
  EXPECT_FALSE(ReportData(rd, "md5").has_value());
}

TEST(KbsProtocol, ProblemDetailAndCookies) {
  EXPECT_EQ(ProblemDetail(R"({"type":"https://github.com/confidential-containers/kbs/errors/PolicyDeny","detail":"denied"})"),
            "denied");
  EXPECT_EQ(ProblemDetail("<html>"), "");
  EXPECT_EQ(ProblemDetail(R"({"detail":"a\nb"})"), "a?b");
  EXPECT_EQ(CookieValue("kbs-session-id=abc; Path=/; HttpOnly", kSessionCookie), "abc");
  EXPECT_EQ(CookieValue("kbs-session-id=abc", kSessionCookie), "abc");
  EXPECT_FALSE(CookieValue("kbs-session-idx=abc", kSessionCookie).has_value());
  EXPECT_FALSE(CookieValue("other=abc", kSessionCookie).has_value());
  EXPECT_FALSE(CookieValue("kbs-session-id=; Path=/", kSessionCookie).has_value());
}

}  // namespace
}  // namespace pp::attest
