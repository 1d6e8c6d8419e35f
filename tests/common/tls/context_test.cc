#include "common/tls/context.h"

#include <gtest/gtest.h>
#include <openssl/pem.h>

#include "common/base/file.h"
#include "common/tls/ca.h"
#include "common/tls/openssl.h"
#include "tests/support/test_util.h"

namespace pp::tls {
namespace {

class TlsContextTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto ca = CertificateAuthority::CreateInMemory();
    ASSERT_TRUE(ca);
    auto server = ca->IssueServerCert("podvm-test");
    ASSERT_TRUE(server);
    material_ = {ca->CertPem(), server->cert_pem, server->key_pem};
  }
  Material material_;
};

TEST_F(TlsContextTest, BuildsBothSides) {
  auto server = MakeServerContext(material_, TlsSettings{});
  ASSERT_TRUE(server) << server.error().ToString();
  SSL_CTX* ctx = (*server)->native_handle();
  EXPECT_EQ(SSL_CTX_get_min_proto_version(ctx), TLS1_2_VERSION);
  EXPECT_EQ(SSL_CTX_get_max_proto_version(ctx), 0);  // no cap: TLS 1.3 when the peer has it
  EXPECT_TRUE(SSL_CTX_get_options(ctx) & SSL_OP_NO_COMPRESSION);
  EXPECT_TRUE(SSL_CTX_get_options(ctx) & SSL_OP_NO_RENEGOTIATION);
  EXPECT_EQ(SSL_CTX_get_verify_mode(ctx), SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT);

  auto client = MakeClientContext(material_, *ParseTlsSettings("VersionTLS13", ""));
  ASSERT_TRUE(client) << client.error().ToString();
  EXPECT_EQ(SSL_CTX_get_min_proto_version((*client)->native_handle()), TLS1_3_VERSION);
  EXPECT_EQ(SSL_CTX_get_verify_mode((*client)->native_handle()), SSL_VERIFY_PEER);
}

TEST_F(TlsContextTest, RefusesMissingOrBrokenParts) {
  const struct {
    std::string Material::*field;
    std::string value;
    std::string expected;
  } cases[] = {
      {&Material::ca_pem, "", "CA certificate is missing"},
      {&Material::cert_pem, "", "certificate is missing"},
      {&Material::key_pem, "", "private key is missing"},
      {&Material::ca_pem, "not pem", "CA certificate"},
      {&Material::cert_pem, "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
       "the certificate"},
      {&Material::key_pem, "not pem", "the private key is not a PEM private key"},
  };
  for (const auto& c : cases) {
    Material material = material_;
    material.*(c.field) = c.value;
    auto ctx = MakeServerContext(material, TlsSettings{});
    ASSERT_FALSE(ctx) << c.expected;
    EXPECT_EQ(ctx.error().code, Code::kInvalidArgument) << c.expected;
    EXPECT_NE(ctx.error().message.find(c.expected), std::string::npos) << ctx.error().message;
  }
}

TEST_F(TlsContextTest, RefusesAKeyThatIsNotTheCertificates) {
  auto other = CertificateAuthority::CreateInMemory()->IssueServerCert("podvm-test");
  ASSERT_TRUE(other);
  Material material = material_;
  material.key_pem = other->key_pem;
  auto ctx = MakeClientContext(material, TlsSettings{});
  ASSERT_FALSE(ctx);
  EXPECT_EQ(ctx.error().code, Code::kInvalidArgument);
  EXPECT_NE(ctx.error().message.find("do not belong together"), std::string::npos)
      << ctx.error().message;
}

TEST_F(TlsContextTest, RefusesAnEncryptedKeyWithoutPrompting) {
  auto key = ParsePrivateKey(material_.key_pem, "key");
  ASSERT_TRUE(key);
  UniqueBio bio(BIO_new(BIO_s_mem()));
  char password[] = "secret";
  ASSERT_EQ(PEM_write_bio_PKCS8PrivateKey(bio.get(), key->get(), EVP_aes_256_cbc(), password, 6,
                                          nullptr, nullptr),
            1);
  char* data = nullptr;
  const long size = BIO_ctrl(bio.get(), BIO_CTRL_INFO, 0, static_cast<void*>(&data));
  Material material = material_;
  material.key_pem.assign(data, static_cast<std::size_t>(size));
  auto ctx = MakeServerContext(material, TlsSettings{});
  ASSERT_FALSE(ctx);
  EXPECT_NE(ctx.error().message.find("encrypted"), std::string::npos) << ctx.error().message;
}

TEST_F(TlsContextTest, RefusesInvalidSettings) {
  auto ctx =
      MakeServerContext(material_, TlsSettings{.min_version = "VersionTLS10", .cipher_suites = {}});
  ASSERT_FALSE(ctx);
  EXPECT_EQ(ctx.error().code, Code::kInvalidArgument);
}

TEST_F(TlsContextTest, LoadsManualModeFilesAndNamesTheBadOne) {
  pp::testing::TempDir dir;
  ASSERT_TRUE(WriteFileAtomic(dir / "ca.crt", material_.ca_pem, 0644));
  ASSERT_TRUE(WriteFileAtomic(dir / "tls.crt", material_.cert_pem, 0644));
  ASSERT_TRUE(WriteFileAtomic(dir / "tls.key", material_.key_pem, 0600));
  auto loaded = LoadMaterialFiles(dir / "ca.crt", dir / "tls.crt", dir / "tls.key");
  ASSERT_TRUE(loaded) << loaded.error().ToString();
  EXPECT_EQ(loaded->ca_pem, material_.ca_pem);
  EXPECT_EQ(loaded->cert_pem, material_.cert_pem);
  EXPECT_EQ(loaded->key_pem, material_.key_pem);
  EXPECT_TRUE(MakeServerContext(*loaded, TlsSettings{}));

  auto missing = LoadMaterialFiles(dir / "ca.crt", dir / "nope.crt", dir / "tls.key");
  ASSERT_FALSE(missing);
  EXPECT_EQ(missing.error().code, Code::kNotFound);
  EXPECT_NE(missing.error().message.find(dir / "nope.crt"), std::string::npos)
      << missing.error().message;

  auto swapped = LoadMaterialFiles(dir / "ca.crt", dir / "tls.key", dir / "tls.crt");
  ASSERT_FALSE(swapped);
  EXPECT_EQ(swapped.error().code, Code::kInvalidArgument);
  EXPECT_NE(swapped.error().message.find(dir / "tls.key"), std::string::npos)
      << swapped.error().message;
}

}  // namespace
}  // namespace pp::tls
