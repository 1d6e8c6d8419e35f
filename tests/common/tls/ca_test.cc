#include "common/tls/ca.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>
#include <sys/stat.h>

#include <filesystem>

#include "common/base/file.h"
#include "common/tls/openssl.h"
#include "tests/support/test_util.h"

namespace pp::tls {
namespace {

using namespace std::chrono_literals;

unsigned Mode(const std::string& path) {
  struct stat st {};
  EXPECT_EQ(::stat(path.c_str(), &st), 0) << path;
  return st.st_mode & 07777;
}

std::string Read(const std::string& path) {
  auto content = ReadFile(path, 1 << 20);
  EXPECT_TRUE(content) << path;
  return content.value_or("");
}

UniqueX509 Cert(const std::string& pem) {
  auto cert = ParseCertificate(pem, "test certificate");
  EXPECT_TRUE(cert) << cert.error().ToString();
  return cert ? std::move(*cert) : nullptr;
}

std::string CommonName(X509* cert) {
  char buffer[300] = {};
  X509_NAME_get_text_by_NID(X509_get_subject_name(cert), NID_commonName, buffer, sizeof buffer);
  return buffer;
}

// X509_V_OK when `cert_pem` chains to `ca_pem` now.
int Verify(const std::string& ca_pem, const std::string& cert_pem) {
  UniqueX509 ca = Cert(ca_pem);
  UniqueX509 cert = Cert(cert_pem);
  UniqueX509Store store(X509_STORE_new());
  UniqueX509StoreCtx ctx(X509_STORE_CTX_new());
  X509_STORE_add_cert(store.get(), ca.get());
  X509_STORE_CTX_init(ctx.get(), store.get(), cert.get(), nullptr);
  X509_verify_cert(ctx.get());
  return X509_STORE_CTX_get_error(ctx.get());
}

TEST(CaTest, CreatesPersistsAndReloadsTheSameCa) {
  pp::testing::TempDir dir;
  const std::string state = dir / "var/lib/caa/tls";  // parents missing too
  auto created = CertificateAuthority::LoadOrCreate(state);
  ASSERT_TRUE(created) << created.error().ToString();
  EXPECT_EQ(Mode(state), 0700u);
  EXPECT_EQ(Mode(state + "/ca.crt"), 0644u);
  EXPECT_EQ(Mode(state + "/ca.key"), 0600u);
  EXPECT_EQ(Read(state + "/ca.crt"), created->CertPem());
  EXPECT_TRUE(Read(state + "/ca.key").starts_with("-----BEGIN PRIVATE KEY-----\n"));  // PKCS#8

  auto loaded = CertificateAuthority::LoadOrCreate(state);
  ASSERT_TRUE(loaded) << loaded.error().ToString();
  EXPECT_EQ(loaded->CertPem(), created->CertPem());
  // The reloaded CA signs certificates that the original's certificate verifies.
  auto leaf = loaded->IssueServerCert("podvm-after-restart");
  ASSERT_TRUE(leaf);
  EXPECT_EQ(Verify(created->CertPem(), leaf->cert_pem), X509_V_OK);
}

TEST(CaTest, CaCertificateHasCaasShape) {
  auto ca = CertificateAuthority::CreateInMemory();
  ASSERT_TRUE(ca) << ca.error().ToString();
  UniqueX509 cert = Cert(ca->CertPem());
  EXPECT_EQ(CommonName(cert.get()), "agent-protocol-forwarder");
  EXPECT_EQ(X509_NAME_cmp(X509_get_subject_name(cert.get()), X509_get_issuer_name(cert.get())), 0);
  EXPECT_EQ(X509_check_ca(cert.get()), 1);
  int critical = -1;
  auto* constraints = static_cast<BASIC_CONSTRAINTS*>(
      X509_get_ext_d2i(cert.get(), NID_basic_constraints, &critical, nullptr));
  ASSERT_NE(constraints, nullptr);
  EXPECT_TRUE(constraints->ca);
  EXPECT_EQ(critical, 1);
  BASIC_CONSTRAINTS_free(constraints);
  EXPECT_TRUE(X509_get_key_usage(cert.get()) & KU_KEY_CERT_SIGN);

  UniqueBignum serial(ASN1_INTEGER_to_BN(X509_get0_serialNumber(cert.get()), nullptr));
  EXPECT_EQ(BN_num_bits(serial.get()), 128);
  int days = 0, seconds = 0;
  ASSERT_EQ(ASN1_TIME_diff(&days, &seconds, X509_get0_notBefore(cert.get()),
                           X509_get0_notAfter(cert.get())),
            1);
  EXPECT_EQ(days, 730);
  EXPECT_NEAR(seconds, 300, 1);  // notBefore is five minutes in the past
  EXPECT_LT(X509_cmp_current_time(X509_get0_notBefore(cert.get())), 0);

  EVP_PKEY* key = X509_get0_pubkey(cert.get());
  char group[32] = {};
  ASSERT_EQ(EVP_PKEY_get_group_name(key, group, sizeof group, nullptr), 1);
  EXPECT_STREQ(group, "prime256v1");
}

TEST(CaTest, RefusesACorruptKeyAndLeavesTheFilesAlone) {
  pp::testing::TempDir dir;
  ASSERT_TRUE(CertificateAuthority::LoadOrCreate(dir.path()));
  const std::string cert_before = Read(dir / "ca.crt");
  ASSERT_TRUE(WriteFileAtomic(
      dir / "ca.key", "-----BEGIN PRIVATE KEY-----\nnot base64\n-----END PRIVATE KEY-----\n",
      0600));
  auto loaded = CertificateAuthority::LoadOrCreate(dir.path());
  ASSERT_FALSE(loaded);
  EXPECT_EQ(loaded.error().code, Code::kDataLoss);
  EXPECT_NE(loaded.error().message.find(dir / "ca.key"), std::string::npos)
      << loaded.error().message;
  EXPECT_NE(loaded.error().message.find("remove both ca.crt and ca.key"), std::string::npos);
  EXPECT_EQ(Read(dir / "ca.crt"), cert_before);
  EXPECT_TRUE(Read(dir / "ca.key").find("not base64") != std::string::npos);
}

TEST(CaTest, RefusesACorruptCertificate) {
  pp::testing::TempDir dir;
  ASSERT_TRUE(CertificateAuthority::LoadOrCreate(dir.path()));
  ASSERT_TRUE(WriteFileAtomic(dir / "ca.crt", "garbage", 0644));
  auto loaded = CertificateAuthority::LoadOrCreate(dir.path());
  ASSERT_FALSE(loaded);
  EXPECT_EQ(loaded.error().code, Code::kDataLoss);
  EXPECT_EQ(Read(dir / "ca.crt"), "garbage");
}

TEST(CaTest, RefusesAMismatchedPair) {
  pp::testing::TempDir dir, other;
  ASSERT_TRUE(CertificateAuthority::LoadOrCreate(dir.path()));
  ASSERT_TRUE(CertificateAuthority::LoadOrCreate(other.path()));
  ASSERT_TRUE(WriteFileAtomic(dir / "ca.key", Read(other / "ca.key"), 0600));
  auto loaded = CertificateAuthority::LoadOrCreate(dir.path());
  ASSERT_FALSE(loaded);
  EXPECT_EQ(loaded.error().code, Code::kFailedPrecondition);
  EXPECT_NE(loaded.error().message.find("do not belong together"), std::string::npos)
      << loaded.error().message;
}

TEST(CaTest, RefusesHalfAPairInsteadOfReplacingIt) {
  pp::testing::TempDir dir;
  ASSERT_TRUE(CertificateAuthority::LoadOrCreate(dir.path()));
  const std::string key_before = Read(dir / "ca.key");
  std::filesystem::remove(dir / "ca.crt");
  auto loaded = CertificateAuthority::LoadOrCreate(dir.path());
  ASSERT_FALSE(loaded);
  EXPECT_EQ(loaded.error().code, Code::kFailedPrecondition);
  EXPECT_NE(loaded.error().message.find("ca.crt is missing"), std::string::npos)
      << loaded.error().message;
  EXPECT_FALSE(std::filesystem::exists(dir / "ca.crt"));
  EXPECT_EQ(Read(dir / "ca.key"), key_before);
}

TEST(CaTest, RefusesAKeyReadableByOthers) {
  pp::testing::TempDir dir;
  ASSERT_TRUE(CertificateAuthority::LoadOrCreate(dir.path()));
  ASSERT_EQ(::chmod((dir / "ca.key").c_str(), 0640), 0);
  auto loaded = CertificateAuthority::LoadOrCreate(dir.path());
  ASSERT_FALSE(loaded);
  EXPECT_EQ(loaded.error().code, Code::kPermissionDenied);
  EXPECT_NE(loaded.error().message.find("0640"), std::string::npos) << loaded.error().message;
}

TEST(CaTest, RefusesAStateDirOwnedBySomeoneElseAndTightensItsOwn) {
  pp::testing::TempDir dir;
  const std::string state = dir / "tls";
  ASSERT_EQ(::mkdir(state.c_str(), 0755), 0);
  ASSERT_TRUE(CertificateAuthority::LoadOrCreate(state));
  struct stat st {};
  ASSERT_EQ(::stat(state.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0700u);  // ours, so tightened

  ASSERT_EQ(::chown(state.c_str(), 65534, 65534), 0) << "the tests run as root";
  auto loaded = CertificateAuthority::LoadOrCreate(state);
  ASSERT_FALSE(loaded);
  EXPECT_EQ(loaded.error().code, Code::kPermissionDenied);
  EXPECT_NE(loaded.error().message.find("owned by uid 65534"), std::string::npos) << loaded.error().message;
}

TEST(CaTest, ErrorsNeverContainKeyMaterial) {
  pp::testing::TempDir dir;
  ASSERT_TRUE(CertificateAuthority::LoadOrCreate(dir.path()));
  std::string key = Read(dir / "ca.key");
  key[40] = key[40] == 'A' ? 'B' : 'A';  // still PEM, no longer a valid key
  ASSERT_TRUE(WriteFileAtomic(dir / "ca.key", key, 0600));
  auto loaded = CertificateAuthority::LoadOrCreate(dir.path());
  ASSERT_FALSE(loaded);
  const std::string body = key.substr(28, 40);
  EXPECT_EQ(loaded.error().message.find(body), std::string::npos);
}

TEST(CaTest, ServerCertVerifiesAndCarriesTheInstanceName) {
  auto ca = CertificateAuthority::CreateInMemory();
  ASSERT_TRUE(ca);
  auto pair = ca->IssueServerCert("podvm-nginx-6c8f7d9b");
  ASSERT_TRUE(pair) << pair.error().ToString();
  EXPECT_EQ(Verify(ca->CertPem(), pair->cert_pem), X509_V_OK);
  EXPECT_TRUE(pair->key_pem.starts_with("-----BEGIN PRIVATE KEY-----\n"));

  UniqueX509 cert = Cert(pair->cert_pem);
  EXPECT_EQ(CommonName(cert.get()), "podvm-nginx-6c8f7d9b");
  EXPECT_EQ(X509_check_host(cert.get(), "podvm-nginx-6c8f7d9b", 0, 0, nullptr), 1);
  EXPECT_EQ(X509_check_host(cert.get(), "podvm-other", 0, 0, nullptr), 0);
  EXPECT_EQ(X509_check_purpose(cert.get(), X509_PURPOSE_SSL_SERVER, 0), 1);
  EXPECT_NE(X509_check_purpose(cert.get(), X509_PURPOSE_SSL_CLIENT, 0), 1);
  EXPECT_EQ(X509_check_ca(cert.get()), 0);

  auto key = ParsePrivateKey(pair->key_pem, "issued key");
  ASSERT_TRUE(key);
  EXPECT_EQ(X509_check_private_key(cert.get(), key->get()), 1);
  int days = 0, seconds = 0;
  ASSERT_EQ(ASN1_TIME_diff(&days, &seconds, X509_get0_notBefore(cert.get()),
                           X509_get0_notAfter(cert.get())),
            1);
  EXPECT_GE(days, 729);  // capped by the CA's own end, a moment earlier
}

TEST(CaTest, ClientCertIsForClientsOnly) {
  auto ca = CertificateAuthority::CreateInMemory();
  ASSERT_TRUE(ca);
  auto pair = ca->IssueClientCert("cloud-api-adaptor");
  ASSERT_TRUE(pair) << pair.error().ToString();
  EXPECT_EQ(Verify(ca->CertPem(), pair->cert_pem), X509_V_OK);
  UniqueX509 cert = Cert(pair->cert_pem);
  EXPECT_EQ(CommonName(cert.get()), "cloud-api-adaptor");
  EXPECT_EQ(X509_check_purpose(cert.get(), X509_PURPOSE_SSL_CLIENT, 0), 1);
  EXPECT_NE(X509_check_purpose(cert.get(), X509_PURPOSE_SSL_SERVER, 0), 1);
}

TEST(CaTest, CertificatesFromAnotherCaDoNotVerify) {
  auto ca = CertificateAuthority::CreateInMemory();
  auto other = CertificateAuthority::CreateInMemory();
  ASSERT_TRUE(ca && other);
  auto pair = other->IssueServerCert("podvm-x");
  ASSERT_TRUE(pair);
  EXPECT_NE(Verify(ca->CertPem(), pair->cert_pem), X509_V_OK);
}

TEST(CaTest, ValidityIsHonouredAndNeverOutlivesTheCa) {
  auto ca = CertificateAuthority::CreateInMemory();
  ASSERT_TRUE(ca);
  auto expired = ca->IssueClientCert("old", Validity{.not_before = -48h, .not_after = -24h});
  ASSERT_TRUE(expired);
  EXPECT_EQ(Verify(ca->CertPem(), expired->cert_pem), X509_V_ERR_CERT_HAS_EXPIRED);

  auto long_lived =
      ca->IssueServerCert("podvm-x", Validity{.not_before = -5min, .not_after = 24h * 3650});
  ASSERT_TRUE(long_lived);
  UniqueX509 ca_cert = Cert(ca->CertPem());
  UniqueX509 cert = Cert(long_lived->cert_pem);
  EXPECT_EQ(ASN1_TIME_compare(X509_get0_notAfter(cert.get()), X509_get0_notAfter(ca_cert.get())),
            0);
}

TEST(CaTest, RefusesNamesThatAreNotHostNames) {
  auto ca = CertificateAuthority::CreateInMemory();
  ASSERT_TRUE(ca);
  for (const std::string& name :
       {std::string(), std::string("a,DNS:evil.example"), std::string("*.example"),
        std::string(".example"), std::string("has space"), std::string(254, 'a')}) {
    auto pair = ca->IssueServerCert(name);
    ASSERT_FALSE(pair) << name;
    EXPECT_EQ(pair.error().code, Code::kInvalidArgument) << name;
  }
  EXPECT_FALSE(ca->IssueClientCert("a/b"));
  EXPECT_TRUE(ca->IssueServerCert(std::string(100, 'a')));  // longer than X.520's 64-character CN
}

}  // namespace
}  // namespace pp::tls
