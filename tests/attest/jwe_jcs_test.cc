// Known answers for the pieces of the KBS binding that must match other implementations byte for
// byte: JCS (RFC 8785), the Concat KDF (RFC 7518 appendix C) and base64url (RFC 4648).
#include <gtest/gtest.h>

#include <optional>

#include "attest/jcs.h"
#include "attest/jwe.h"

namespace pp::attest {
namespace {

std::optional<std::string> Jcs(const nlohmann::json& value) {
  std::string out, error;
  if (!Canonicalize(value, out, error)) return std::nullopt;
  return out;
}

// RFC 8785 section 3.2.2 (the example of the canonical form, with its number and string rules).
TEST(Jcs, Rfc8785Example) {
  const auto input = nlohmann::json::parse(R"({
    "numbers": [333333333.33333329, 1E30, 4.50, 2e-3, 0.000000000000000000000000001],
    "string": "\u20ac$\u000F\u000aA'\u0042\u0022\u005c\\\"\/",
    "literals": [null, true, false]
  })");
  auto out = Jcs(input);
  ASSERT_TRUE(out.has_value());
  EXPECT_EQ(*out, "{\"literals\":[null,true,false],\"numbers\":[333333333.3333333,1e+30,4.5,0.002,1e-27],"
                  "\"string\":\"\xe2\x82\xac$\\u000f\\nA'B\\\"\\\\\\\\\\\"/\"}");
}

// RFC 8785 section 3.2.3: members sort by UTF-16 code units, so U+1F600 (a surrogate pair,
// 0xD83D...) sorts before U+FB33.
TEST(Jcs, Rfc8785SortsByUtf16CodeUnits) {
  const auto input = nlohmann::json::parse(R"({
    "\u20ac": "Euro Sign", "\r": "Carriage Return", "\ufb33": "Hebrew Letter Dalet With Dagesh",
    "1": "One", "\ud83d\ude00": "Emoji: Grinning Face", "\u0080": "Control",
    "\u00f6": "Latin Small Letter O With Diaeresis"})");
  auto out = Jcs(input);
  ASSERT_TRUE(out.has_value());
  const std::vector<std::string> order = {"Carriage Return", "One", "Control", "Latin Small Letter O",
                                          "Euro Sign", "Emoji", "Hebrew"};
  std::size_t at = 0;
  for (const auto& name : order) {
    const auto found = out->find(name, at);
    ASSERT_NE(found, std::string::npos) << name << " out of order in " << *out;
    at = found;
  }
}

TEST(Jcs, RuntimeDataShape) {
  const nlohmann::json rd = {{"tee-pubkey", {{"kty", "EC"}, {"y", "b"}, {"x", "a"}, {"crv", "P-256"}}},
                             {"nonce", "n0nce"}};
  EXPECT_EQ(*Jcs(rd), R"({"nonce":"n0nce","tee-pubkey":{"crv":"P-256","kty":"EC","x":"a","y":"b"}})");
}

TEST(Jcs, RefusesWhatHasNoCanonicalForm) {
  EXPECT_FALSE(Jcs(nlohmann::json(std::string("\xff"))).has_value());
  EXPECT_FALSE(Jcs(nlohmann::json(std::int64_t{1} << 60)).has_value());
}

// RFC 7518 appendix C: ECDH-ES key agreement, Concat KDF for "A128GCM", apu "Alice", apv "Bob".
TEST(ConcatKdf, Rfc7518AppendixC) {
  const unsigned char z[] = {158, 86,  217, 29,  129, 113, 53,  211, 114, 131, 66,  131, 191, 132, 38,  156,
                             251, 49,  110, 163, 218, 128, 106, 72,  246, 218, 167, 121, 140, 254, 144, 196};
  const Secret key = ConcatKdfSha256(std::string_view(reinterpret_cast<const char*>(z), sizeof z), "A128GCM",
                                     "Alice", "Bob", 16);
  EXPECT_EQ(Base64UrlEncode(key.view()), "VqqN6vgjbSBcIijNcacQGg");
}

TEST(Base64Url, RoundTripAndStrictness) {
  for (std::string s : {"", "f", "fo", "foo", "foob", "fooba", "foobar", "\xfb\xff"}) {
    auto back = Base64UrlDecode(Base64UrlEncode(s));
    ASSERT_TRUE(back.has_value());
    EXPECT_EQ(*back, s);
  }
  EXPECT_EQ(Base64UrlEncode("\xfb\xff"), "-_8");
  EXPECT_FALSE(Base64UrlDecode("Zm9v=").has_value());  // padding
  EXPECT_FALSE(Base64UrlDecode("Zm+v").has_value());   // standard alphabet
  EXPECT_FALSE(Base64UrlDecode("Z").has_value());      // impossible length
  EXPECT_FALSE(Base64UrlDecode("Zh").has_value());     // non-zero trailing bits
}

TEST(Jwe, RefusesMalformedInput) {
  auto key = TeeKeyPair::Generate(KeyAlg::kEcdhEsA256kw);
  ASSERT_TRUE(key.has_value());
  for (const char* bad : {"", "[]", "{}", R"({"protected":"!!"})", R"({"protected":"e30"})",
                          R"({"protected":"eyJhbGciOiJkaXIiLCJlbmMiOiJBMjU2R0NNIn0"})"}) {
    auto r = key->Decrypt(bad);
    ASSERT_FALSE(r.has_value()) << bad;
    EXPECT_EQ(r.error().code, Code::kDataLoss) << bad;
  }
}

TEST(Jwe, PublicJwkShapes) {
  auto ec = TeeKeyPair::Generate(KeyAlg::kEcdhEsA256kw);
  auto rsa = TeeKeyPair::Generate(KeyAlg::kRsaOaep256);
  ASSERT_TRUE(ec && rsa);
  const auto e = ec->PublicJwk();
  EXPECT_EQ(e["kty"], "EC");
  EXPECT_EQ(e["alg"], "ECDH-ES+A256KW");
  EXPECT_EQ(Base64UrlDecode(e["x"].get<std::string>())->size(), 32u);
  const auto r = rsa->PublicJwk();
  EXPECT_EQ(r["kty"], "RSA");
  EXPECT_EQ(r["e"], "AQAB");
  EXPECT_EQ(Base64UrlDecode(r["n"].get<std::string>())->size(), 256u);
}

}  // namespace
}  // namespace pp::attest
