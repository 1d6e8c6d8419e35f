#include "common/tls/settings.h"

#include <gtest/gtest.h>
#include <openssl/tls1.h>

namespace pp::tls {
namespace {

TEST(TlsSettingsTest, EmptyMeansTls12WithTheDefaultAeadSuites) {
  auto settings = ParseTlsSettings("", "");
  ASSERT_TRUE(settings) << settings.error().ToString();
  EXPECT_EQ(settings->min_version, "VersionTLS12");
  EXPECT_TRUE(settings->cipher_suites.empty());
  EXPECT_EQ(*MinProtocolVersion(*settings), TLS1_2_VERSION);
  EXPECT_EQ(
      *Tls12CipherList(*settings),
      "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384:"
      "ECDHE-RSA-AES256-GCM-SHA384:ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305");
}

TEST(TlsSettingsTest, AcceptsCaaAndShortVersionNames) {
  for (const char* name : {"VersionTLS12", "1.2", "TLSv1.2", " VersionTLS12 "}) {
    auto settings = ParseTlsSettings(name, "");
    ASSERT_TRUE(settings) << name;
    EXPECT_EQ(settings->min_version, "VersionTLS12") << name;
  }
  for (const char* name : {"VersionTLS13", "1.3", "TLSv1.3"}) {
    auto settings = ParseTlsSettings(name, "");
    ASSERT_TRUE(settings) << name;
    EXPECT_EQ(settings->min_version, "VersionTLS13") << name;
    EXPECT_EQ(*MinProtocolVersion(*settings), TLS1_3_VERSION);
  }
}

TEST(TlsSettingsTest, RefusesOldAndUnknownVersions) {
  auto old = ParseTlsSettings("VersionTLS11", "");
  ASSERT_FALSE(old);
  EXPECT_EQ(old.error().code, Code::kInvalidArgument);
  EXPECT_NE(old.error().message.find("TLS 1.2 is the minimum"), std::string::npos)
      << old.error().message;

  auto unknown = ParseTlsSettings("TLS12", "");
  ASSERT_FALSE(unknown);
  EXPECT_EQ(unknown.error().code, Code::kInvalidArgument);
  EXPECT_NE(unknown.error().message.find("\"TLS12\""), std::string::npos)
      << unknown.error().message;
}

TEST(TlsSettingsTest, MapsIanaSuiteNamesToOpenSsl) {
  auto settings = ParseTlsSettings(
      "VersionTLS12",
      " TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256 ,TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,,"
      "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305");
  ASSERT_TRUE(settings) << settings.error().ToString();
  EXPECT_EQ(settings->cipher_suites,
            (std::vector<std::string>{"TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256",
                                      "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256",
                                      "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305"}));
  // Go's two spellings of one suite give it once.
  EXPECT_EQ(*Tls12CipherList(*settings),
            "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-CHACHA20-POLY1305");
}

TEST(TlsSettingsTest, RefusesAnUnknownSuiteAndNamesIt) {
  auto settings = ParseTlsSettings(
      "", "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,TLS_RSA_WITH_AES_128_GCM_SHA256");
  ASSERT_FALSE(settings);
  EXPECT_EQ(settings.error().code, Code::kInvalidArgument);
  EXPECT_NE(settings.error().message.find("\"TLS_RSA_WITH_AES_128_GCM_SHA256\""), std::string::npos)
      << settings.error().message;
}

TEST(TlsSettingsTest, Tls13SuiteNamesAreAcceptedAndChangeNothing) {
  auto settings = ParseTlsSettingsList("VersionTLS13",
                                       {"TLS_AES_128_GCM_SHA256", "TLS_CHACHA20_POLY1305_SHA256"});
  ASSERT_TRUE(settings) << settings.error().ToString();
  EXPECT_EQ(*Tls12CipherList(*settings), *Tls12CipherList(TlsSettings{}));
}

TEST(TlsSettingsTest, HandBuiltSettingsAreValidatedWhenUsed) {
  EXPECT_EQ(MinProtocolVersion(TlsSettings{.min_version = "VersionTLS10", .cipher_suites = {}})
                .error()
                .code,
            Code::kInvalidArgument);
  EXPECT_EQ(
      Tls12CipherList(TlsSettings{.min_version = "", .cipher_suites = {"RC4-MD5"}}).error().code,
      Code::kInvalidArgument);
}

}  // namespace
}  // namespace pp::tls
