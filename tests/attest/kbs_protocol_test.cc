// The KBS protocol's messages without I/O (attest/kbs_protocol.h).
#include "attest/kbs_protocol.h"

#include <gtest/gtest.h>

#include <optional>

namespace pp::attest {
namespace {

std::optional<Challenge> Parse(std::string_view body) {
  Challenge c;
  std::string error;
  if (!ParseChallenge(body, c, error)) {
    EXPECT_FALSE(error.empty());
    return std::nullopt;
  }
  return c;
}

std::optional<std::string> Rd(const nlohmann::json& rd, std::string_view hash) {
  std::string out, error;
  if (!ReportData(rd, hash, out, error)) return std::nullopt;
  return out;
}

TEST(KbsProtocol, ChallengeShapes) {
  auto plain = Parse(R"({"nonce":"bm9uY2U=","extra-params":""})");
  ASSERT_TRUE(plain.has_value());
  EXPECT_EQ(plain->nonce, "bm9uY2U=");
  EXPECT_EQ(plain->hash, "sha384");
  EXPECT_EQ(Parse(R"({"nonce":"n","extra-params":{"selected-hash-algorithm":"sha512"}})")->hash, "sha512");
  EXPECT_EQ(Parse(R"({"nonce":"n","extra-params":"{\"selected-hash-algorithm\":\"sha256\"}"})")->hash,
            "sha256");
  for (const char* bad : {"", "{}", R"({"nonce":""})", R"({"nonce":3})",
                          R"({"nonce":"n","extra-params":{"selected-hash-algorithm":"md5"}})",
                          R"({"nonce":"n","extra-params":{"selected-hash-algorithm":1}})"}) {
    EXPECT_FALSE(Parse(bad).has_value()) << bad;
  }
}

TEST(KbsProtocol, ReportDataIsPaddedDigestOfCanonicalJson) {
  const nlohmann::json rd = {{"tee-pubkey", {{"kty", "EC"}}}, {"nonce", "n"}};
  auto sha256 = Rd(rd, "sha256");
  auto sha512 = Rd(rd, "sha512");
  ASSERT_TRUE(sha256 && sha512);
  EXPECT_EQ(sha256->size(), 64u);
  EXPECT_EQ(sha256->substr(32), std::string(32, '\0'));
  EXPECT_NE(sha512->substr(32), std::string(32, '\0'));
  // Member order does not matter: JCS sorts.
  EXPECT_EQ(*Rd(nlohmann::json::parse(R"({"nonce":"n","tee-pubkey":{"kty":"EC"}})"), "sha256"), *sha256);
  EXPECT_FALSE(Rd(rd, "md5").has_value());
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
