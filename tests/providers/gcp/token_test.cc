// Tokens: the RS256 JWT checked by an independent implementation (PyJWT, Debian's python3-jwt),
// the exchange against the fake's token endpoint, the metadata server, caching and refresh.
#include "providers/gcp/token.h"

#include <gtest/gtest.h>
#include <stdlib.h>

#include <atomic>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <thread>

#include "tests/providers/gcp/gce_fixture.h"

namespace pp::providers::gcp {
namespace {

using namespace std::chrono_literals;
using testing::GceFake;
using testing::SharedFake;

OpContext Budget(std::chrono::seconds s = 30s) {
  return OpContext{std::chrono::steady_clock::now() + s, {}};
}

// Runs a Python program with Debian's interpreter (where python3-jwt lives); returns its stdout and
// sets `status`.
std::string RunPython(const std::string& program, const std::vector<std::string>& args,
                      int& status) {
  const auto dir = std::filesystem::temp_directory_path();
  const std::string script = (dir / ("pp-gcp-py-" + std::to_string(::getpid()) + ".py")).string();
  std::ofstream(script) << program;
  std::string cmd = "/usr/bin/python3 " + script;
  for (const auto& a : args) cmd += " '" + a + "'";
  std::string out;
  FILE* p = ::popen(cmd.c_str(), "r");
  char buf[4096];
  std::size_t n;
  while (p != nullptr && (n = std::fread(buf, 1, sizeof buf, p)) > 0) out.append(buf, n);
  status = p != nullptr ? ::pclose(p) : -1;
  std::filesystem::remove(script);
  return out;
}

// Google's own verifier (python3-google-auth, google.auth.jwt.decode) as a second oracle.
constexpr const char* kGoogleAuthVerify = R"(
import json, sys
import google.auth.jwt as gjwt
token, pub, aud = open(sys.argv[1]).read(), open(sys.argv[2]).read(), sys.argv[3]
print(json.dumps(gjwt.decode(token, certs=pub, audience=aud)))
)";

// Google's own client (google.oauth2.service_account) getting a token from the fake: the fake's
// token endpoint speaks the protocol Google's libraries speak.
constexpr const char* kGoogleAuthClient = R"(
import sys
import google.oauth2.service_account as sa
import google.auth.transport.requests as transport
creds = sa.Credentials.from_service_account_file(sys.argv[1], scopes=["https://www.googleapis.com/auth/compute"])
creds.refresh(transport.Request())
print(creds.token)
)";

constexpr const char* kPyJwtVerify = R"(
import json, sys, jwt
token, pub, aud = open(sys.argv[1]).read(), open(sys.argv[2]).read(), sys.argv[3]
claims = jwt.decode(token, pub, algorithms=["RS256"], audience=aud)
print(json.dumps({"header": jwt.get_unverified_header(token), "claims": claims}))
)";

class JwtTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() / ("pp-gcp-jwt-" + std::to_string(::getpid()));
    std::filesystem::create_directories(dir_);
    keys_ = testing::MakeRsaKey();
    std::ofstream(dir_ / "pub.pem") << keys_.public_pem;
    auto key = ParseServiceAccountKey(testing::KeyJson(keys_, std::string(kDefaultTokenUri)));
    ASSERT_TRUE(key.has_value()) << key.error().message;
    key_ = *key;
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  // PyJWT's verdict on `jwt`: the decoded header and claims, or an empty object when it refuses.
  nlohmann::json PyJwt(const std::string& jwt, const std::string& audience) {
    std::ofstream(dir_ / "jwt") << jwt;
    int status = 0;
    const std::string out = RunPython(
        kPyJwtVerify, {(dir_ / "jwt").string(), (dir_ / "pub.pem").string(), audience}, status);
    if (status != 0) return nlohmann::json::object();
    return nlohmann::json::parse(out);
  }

  std::filesystem::path dir_;
  testing::KeyPair keys_;
  ServiceAccountKey key_;
};

TEST(Base64UrlTest, MatchesRfc4648Section10AndOmitsPadding) {
  EXPECT_EQ(Base64Url(""), "");
  EXPECT_EQ(Base64Url("f"), "Zg");
  EXPECT_EQ(Base64Url("fo"), "Zm8");
  EXPECT_EQ(Base64Url("foo"), "Zm9v");
  EXPECT_EQ(Base64Url("foobar"), "Zm9vYmFy");
  EXPECT_EQ(Base64Url("\xfb\xff\xbf"), "-_-_");  // the two characters base64url changes
}

TEST(ServiceAccountKeyTest, ReadsAKeyFileAndRefusesOtherCredentialTypes) {
  const auto keys = testing::MakeRsaKey();
  auto key = ParseServiceAccountKey(testing::KeyJson(keys, "https://oauth2.googleapis.com/token"));
  ASSERT_TRUE(key.has_value()) << key.error().message;
  EXPECT_EQ(key->client_email, testing::kEmail);
  EXPECT_EQ(key->project_id, testing::kProject);
  EXPECT_EQ(key->private_key_id, "0123456789abcdef0123456789abcdef01234567");

  auto user = ParseServiceAccountKey(
      R"({"type": "authorized_user", "client_id": "x", "refresh_token": "secret"})");
  ASSERT_FALSE(user.has_value());
  EXPECT_NE(user.error().message.find("authorized_user"), std::string::npos);
  EXPECT_EQ(user.error().message.find("secret"), std::string::npos);

  EXPECT_FALSE(ParseServiceAccountKey("not json").has_value());
  EXPECT_FALSE(
      ParseServiceAccountKey(R"({"type": "service_account", "private_key": "x"})").has_value());
  auto no_uri = ParseServiceAccountKey(R"({"client_email": "a@b", "private_key": "k"})");
  ASSERT_TRUE(no_uri.has_value());
  EXPECT_EQ(no_uri->token_uri, kDefaultTokenUri);
}

TEST_F(JwtTest, PyJwtVerifiesOurRs256AssertionAndItsClaims) {
  const auto now = std::chrono::system_clock::now();
  auto jwt = MakeJwtAssertion(key_, kComputeScope, kDefaultTokenUri, now);
  ASSERT_TRUE(jwt.has_value()) << jwt.error().message;
  const auto verdict = PyJwt(*jwt, std::string(kDefaultTokenUri));
  ASSERT_TRUE(verdict.contains("claims")) << "PyJWT refused our JWT";
  EXPECT_EQ(verdict["header"]["alg"], "RS256");
  EXPECT_EQ(verdict["header"]["typ"], "JWT");
  EXPECT_EQ(verdict["header"]["kid"], key_.private_key_id);
  const auto& claims = verdict["claims"];
  EXPECT_EQ(claims["iss"], testing::kEmail);
  EXPECT_EQ(claims["scope"], kComputeScope);
  EXPECT_EQ(claims["aud"], kDefaultTokenUri);
  const long long iat =
      std::chrono::duration_cast<std::chrono::seconds>(now.time_since_epoch()).count();
  EXPECT_EQ(claims["iat"].get<long long>(), iat);
  EXPECT_EQ(claims["exp"].get<long long>(), iat + 3600);
}

TEST_F(JwtTest, GoogleAuthVerifiesOurAssertionToo) {
  auto jwt =
      MakeJwtAssertion(key_, kComputeScope, kDefaultTokenUri, std::chrono::system_clock::now());
  ASSERT_TRUE(jwt.has_value());
  std::ofstream(dir_ / "jwt") << *jwt;
  int status = 0;
  const std::string out = RunPython(
      kGoogleAuthVerify,
      {(dir_ / "jwt").string(), (dir_ / "pub.pem").string(), std::string(kDefaultTokenUri)},
      status);
  ASSERT_EQ(status, 0) << "google-auth refused our JWT (is python3-google-auth installed?)";
  const auto claims = nlohmann::json::parse(out);
  EXPECT_EQ(claims["iss"], testing::kEmail);
  EXPECT_EQ(claims["scope"], kComputeScope);
  RunPython(
      kGoogleAuthVerify,
      {(dir_ / "jwt").string(), (dir_ / "pub.pem").string(), "https://elsewhere.example/token"},
      status);
  EXPECT_NE(status, 0) << "google-auth accepted another audience";
}

TEST_F(JwtTest, PyJwtRefusesATamperedAssertionOrAnotherAudience) {
  auto jwt =
      MakeJwtAssertion(key_, kComputeScope, kDefaultTokenUri, std::chrono::system_clock::now());
  ASSERT_TRUE(jwt.has_value());
  // Same header and signature, claims of another service account.
  const auto first = jwt->find('.');
  const auto second = jwt->find('.', first + 1);
  std::string tampered =
      jwt->substr(0, first + 1) +
      Base64Url(R"({"iss":"evil@x","scope":"s","aud":"https://oauth2.googleapis.com/token"})") +
      jwt->substr(second);
  EXPECT_FALSE(PyJwt(tampered, std::string(kDefaultTokenUri)).contains("claims"));
  EXPECT_FALSE(PyJwt(*jwt, "https://elsewhere.example/token").contains("claims"));
}

TEST_F(JwtTest, AKeyThatIsNotRsaPemIsRefusedWithoutEchoingIt) {
  ServiceAccountKey bad = key_;
  bad.private_key = "-----BEGIN PRIVATE KEY-----\nc2VjcmV0\n-----END PRIVATE KEY-----\n";
  auto jwt =
      MakeJwtAssertion(bad, kComputeScope, kDefaultTokenUri, std::chrono::system_clock::now());
  ASSERT_FALSE(jwt.has_value());
  EXPECT_EQ(jwt.error().message.find("c2VjcmV0"), std::string::npos);
}

TEST(TokenResponseTest, ParsesExpiryAndRefusesWhatIsNotABearerToken) {
  const auto now = std::chrono::steady_clock::now();
  auto t = ParseTokenResponse(
      R"({"access_token":"ya29.x","expires_in":3599,"token_type":"Bearer"})", now);
  ASSERT_TRUE(t.has_value());
  EXPECT_EQ(t->token, "ya29.x");
  EXPECT_EQ(t->expiry, now + 3599s);
  EXPECT_FALSE(ParseTokenResponse(R"({"expires_in":3599})", now).has_value());
  EXPECT_FALSE(ParseTokenResponse(R"({"access_token":"x","token_type":"MAC"})", now).has_value());
  EXPECT_FALSE(ParseTokenResponse(R"({"access_token":"x","expires_in":[1]})", now).has_value());
  auto huge = ParseTokenResponse(R"({"access_token":"x","expires_in":99999999999999})", now);
  ASSERT_TRUE(huge.has_value());
  EXPECT_LE(huge->expiry, now + 24h);
}

class TokenExchangeTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(SharedFake().running());
    SharedFake().Reset();
    http::ClientOptions options;
    options.ca_bundle = SharedFake().ca_bundle();
    client_ = std::make_unique<http::Client>(options);
  }
  std::unique_ptr<TokenSource> KeySource(TokenOptions options = {}) {
    auto key = ParseServiceAccountKey(SharedFake().key_json());
    EXPECT_TRUE(key.has_value());
    return MakeServiceAccountTokenSource(*key, *client_, options);
  }
  std::unique_ptr<http::Client> client_;
};

TEST_F(TokenExchangeTest, TheFakeAcceptsOurAssertionAndTheTokenIsCached) {
  const int before = SharedFake().Calls("token");
  auto source = KeySource();
  auto first = source->Token(Budget());
  ASSERT_TRUE(first.has_value()) << first.error().message;
  EXPECT_TRUE(first->starts_with("ya29.fake-"));
  auto second = source->Token(Budget());
  ASSERT_TRUE(second.has_value());
  EXPECT_EQ(*first, *second);
  EXPECT_EQ(source->fetches(), 1u);
  EXPECT_EQ(SharedFake().Calls("token") - before, 1);
}

TEST_F(TokenExchangeTest, GoogleAuthsOwnClientGetsATokenFromTheFake) {
  const std::string path = SharedFake().dir() + "/google-auth-key.json";
  std::ofstream(path) << SharedFake().key_json();
  ::setenv("REQUESTS_CA_BUNDLE", SharedFake().ca_bundle().c_str(), 1);  // read by python3-requests
  int status = 0;
  const std::string out = RunPython(kGoogleAuthClient, {path}, status);
  ::unsetenv("REQUESTS_CA_BUNDLE");
  ASSERT_EQ(status, 0) << "google-auth could not get a token from the fake";
  EXPECT_TRUE(out.starts_with("ya29.fake-")) << out;
}

TEST_F(TokenExchangeTest, AnOverriddenEndpointKeepsTheKeysAudience) {
  // A key as Google issues it (token_uri oauth2.googleapis.com), the endpoint overridden.
  auto key =
      ParseServiceAccountKey(testing::KeyJson(SharedFake().key(), std::string(kDefaultTokenUri)));
  ASSERT_TRUE(key.has_value());
  TokenOptions options;
  options.token_endpoint = SharedFake().url() + "/token";
  auto source = MakeServiceAccountTokenSource(*key, *client_, options);
  auto token = source->Token(Budget());
  EXPECT_TRUE(token.has_value()) << token.error().message;
}

TEST_F(TokenExchangeTest, AKeyTheEndpointDoesNotKnowIsAMisconfiguration) {
  auto key = ParseServiceAccountKey(
      testing::KeyJson(testing::MakeRsaKey(), SharedFake().url() + "/token"));
  ASSERT_TRUE(key.has_value());
  auto source = MakeServiceAccountTokenSource(*key, *client_, {});
  auto token = source->Token(Budget());
  ASSERT_FALSE(token.has_value());
  EXPECT_EQ(token.error().code, Code::kFailedPrecondition) << token.error().message;
  EXPECT_NE(token.error().message.find("invalid_grant"), std::string::npos)
      << token.error().message;
}

TEST_F(TokenExchangeTest, ATokenIsRefreshedWithinTheMarginBeforeItExpires) {
  TokenOptions options;
  options.refresh_margin =
      4000s;  // longer than the fake's 3600 s: every token is "about to expire"
  auto source = KeySource(options);
  ASSERT_TRUE(source->Token(Budget()).has_value());
  ASSERT_TRUE(source->Token(Budget()).has_value());
  EXPECT_EQ(source->fetches(), 2u);
}

TEST_F(TokenExchangeTest, AnInvalidatedTokenIsReplacedAndAStaleInvalidateIsIgnored) {
  auto source = KeySource();
  auto first = source->Token(Budget());
  ASSERT_TRUE(first.has_value());
  source->Invalidate(*first);
  auto second = source->Token(Budget());
  ASSERT_TRUE(second.has_value());
  EXPECT_NE(*first, *second);
  source->Invalidate(*first);  // another thread's late report about the old token
  auto third = source->Token(Budget());
  ASSERT_TRUE(third.has_value());
  EXPECT_EQ(*second, *third);
  EXPECT_EQ(source->fetches(), 2u);
}

TEST_F(TokenExchangeTest, ManyThreadsShareOneFetch) {
  const int before = SharedFake().Calls("token");
  SharedFake().SetFaults(
      nlohmann::json::array({{{"action", "token"}, {"count", 1}, {"delay_ms", 300}}}));
  auto source = KeySource();
  std::atomic<int> ok{0};
  std::vector<std::thread> threads;
  for (int i = 0; i < 8; ++i) {
    threads.emplace_back([&] {
      if (source->Token(Budget()).has_value()) ++ok;
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(ok.load(), 8);
  EXPECT_EQ(source->fetches(), 1u);
  EXPECT_EQ(SharedFake().Calls("token") - before, 1);
}

TEST_F(TokenExchangeTest, ThrottledAndFailingEndpointsAreRetried) {
  SharedFake().SetFaults(
      nlohmann::json::array({{{"action", "token"}, {"count", 1}, {"status", 503}, {"body", "{}"}},
                             {{"action", "token"},
                              {"count", 1},
                              {"status", 429},
                              {"body", "{}"},
                              {"headers", {{"Retry-After", "0"}}}}}));
  auto token = KeySource()->Token(Budget());
  EXPECT_TRUE(token.has_value()) << token.error().message;
}

TEST_F(TokenExchangeTest, AContextThatEndedFailsWithoutACall) {
  const int before = SharedFake().Calls("token");
  std::stop_source stop;
  stop.request_stop();
  auto token =
      KeySource()->Token(OpContext{std::chrono::steady_clock::now() + 30s, stop.get_token()});
  ASSERT_FALSE(token.has_value());
  EXPECT_EQ(token.error().code, Code::kCancelled);
  auto late = KeySource()->Token(OpContext{std::chrono::steady_clock::now() - 1s, {}});
  ASSERT_FALSE(late.has_value());
  EXPECT_EQ(late.error().code, Code::kDeadlineExceeded);
  EXPECT_EQ(SharedFake().Calls("token") - before, 0);
}

TEST_F(TokenExchangeTest, TheMetadataServerIssuesTokensToAVmsDefaultAccount) {
  TokenOptions options;
  options.metadata_host = SharedFake().url();
  const int before = SharedFake().Calls("metadata.token");
  auto source = MakeMetadataTokenSource(*client_, options);
  auto token = source->Token(Budget());
  ASSERT_TRUE(token.has_value()) << token.error().message;
  EXPECT_TRUE(token->starts_with("ya29.fake-"));
  EXPECT_EQ(SharedFake().Calls("metadata.token") - before, 1);
}

TEST(MetadataUrlTest, AHostLikeGoogleLibrariesReadItOrAUrl) {
  EXPECT_EQ(MetadataBaseUrl(""), "http://metadata.google.internal");
  EXPECT_EQ(MetadataBaseUrl("169.254.169.254"), "http://169.254.169.254");
  EXPECT_EQ(MetadataBaseUrl("127.0.0.1:8080"), "http://127.0.0.1:8080");
  EXPECT_EQ(MetadataBaseUrl("https://127.0.0.1:8443/"), "https://127.0.0.1:8443");
}

TEST_F(TokenExchangeTest, CredentialsComeInlineFromAFileOrFromGoogleApplicationCredentials) {
  const std::string path = SharedFake().dir() + "/key.json";
  std::ofstream(path) << SharedFake().key_json();
  std::string project;
  auto inline_source = MakeTokenSource("  " + SharedFake().key_json(), *client_, {}, &project);
  ASSERT_TRUE(inline_source.has_value()) << inline_source.error().message;
  EXPECT_EQ(project, testing::kProject);
  EXPECT_TRUE((*inline_source)->Token(Budget()).has_value());

  auto file_source = MakeTokenSource(path, *client_, {});
  ASSERT_TRUE(file_source.has_value()) << file_source.error().message;
  EXPECT_TRUE((*file_source)->Token(Budget()).has_value());

  ::setenv("GOOGLE_APPLICATION_CREDENTIALS", path.c_str(), 1);
  auto adc = MakeTokenSource("", *client_, {});
  ::unsetenv("GOOGLE_APPLICATION_CREDENTIALS");
  ASSERT_TRUE(adc.has_value()) << adc.error().message;
  EXPECT_TRUE((*adc)->Token(Budget()).has_value());

  auto missing = MakeTokenSource("/no/such/key.json", *client_, {});
  ASSERT_FALSE(missing.has_value());
  EXPECT_EQ(missing.error().code, Code::kInvalidArgument);
  EXPECT_NE(missing.error().message.find("/no/such/key.json"), std::string::npos);

  // A key pasted in another encoding is neither JSON nor a path: it is never echoed back.
  std::string pasted = "\xef\xbb\xbf" + SharedFake().key_json();
  auto garbled = MakeTokenSource(pasted, *client_, {});
  ASSERT_FALSE(garbled.has_value());
  EXPECT_EQ(garbled.error().message.find("PRIVATE KEY"), std::string::npos) << garbled.error().message;
  EXPECT_NE(garbled.error().message.find("not shown"), std::string::npos) << garbled.error().message;
}

}  // namespace
}  // namespace pp::providers::gcp
