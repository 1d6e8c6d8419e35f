#include "common/tls/ca.h"

#include <openssl/err.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <filesystem>

#include "common/base/file.h"
#include "common/tls/openssl.h"

namespace pp::tls {

struct CertificateAuthority::State {
  UniqueX509 cert;
  UniqueEvpPkey key;
  std::string cert_pem;
};

namespace {

constexpr std::string_view kCaCommonName = "agent-protocol-forwarder";
constexpr std::size_t kMaxPemFile = 64 * 1024;

struct CertSpec {
  std::string_view common_name;
  bool is_ca = false;
  const char* extended_key_usage = nullptr;  // "serverAuth", "clientAuth" or none
  std::string_view dns_san;                  // empty: no SAN
  Validity validity;
};

// The names become a CN and a DNS SAN (and, for SANs, part of an OpenSSL extension value), so only
// host-name characters pass; a leading letter or digit rules out wildcards and ".domain" forms.
Result<void> CheckName(std::string_view name, std::string_view what) {
  if (name.empty() || name.size() > 253) {
    return Fail(Code::kInvalidArgument, what, " must be 1 to 253 characters long");
  }
  const auto alnum = [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
  };
  if (!alnum(name.front()))
    return Fail(Code::kInvalidArgument, what, " \"", name, "\" must start with a letter or digit");
  for (char c : name) {
    if (!alnum(c) && c != '.' && c != '-' && c != '_') {
      return Fail(Code::kInvalidArgument, what, " \"", name,
                  "\" may only contain letters, digits, '.', '-' and '_'");
    }
  }
  return {};
}

Result<UniqueEvpPkey> GenerateP256Key() {
  UniqueEvpPkeyCtx ctx(EVP_PKEY_CTX_new_from_name(nullptr, "EC", nullptr));
  EVP_PKEY* raw = nullptr;
  if (!ctx || EVP_PKEY_keygen_init(ctx.get()) != 1 ||
      EVP_PKEY_CTX_set_group_name(ctx.get(), "P-256") != 1 ||
      EVP_PKEY_generate(ctx.get(), &raw) != 1) {
    return std::unexpected(OpenSslError(Code::kInternal, "generating an ECDSA P-256 key"));
  }
  return UniqueEvpPkey(raw);
}

Result<void> AddExtension(X509* cert, X509V3_CTX* ctx, int nid, const std::string& value) {
  UniqueX509Extension ext(X509V3_EXT_nconf_nid(nullptr, ctx, nid, value.c_str()));
  if (!ext || X509_add_ext(cert, ext.get(), -1) != 1) {
    return std::unexpected(OpenSslError(
        Code::kInternal, std::string("adding certificate extension ") + OBJ_nid2sn(nid)));
  }
  return {};
}

// Builds and signs a certificate for `subject_key`. `issuer` and `issuer_key` are null for a
// self-signed certificate. A certificate never outlives its issuer.
Result<UniqueX509> BuildCertificate(const CertSpec& spec, EVP_PKEY* subject_key, X509* issuer,
                                    EVP_PKEY* issuer_key) {
  ERR_clear_error();
  UniqueX509 cert(X509_new());
  UniqueBignum serial_bn(BN_new());
  UniqueX509Name name(X509_NAME_new());
  if (!cert || !serial_bn || !name)
    return std::unexpected(OpenSslError(Code::kInternal, "allocating a certificate"));

  UniqueAsn1Integer serial;
  if (BN_rand(serial_bn.get(), 128, BN_RAND_TOP_ONE, BN_RAND_BOTTOM_ANY) == 1) {
    serial.reset(BN_to_ASN1_INTEGER(serial_bn.get(), nullptr));
  }
  // V_ASN1_UTF8STRING rather than MBSTRING_UTF8: the CN is taken as is, like Go does, even past
  // X.520's 64 characters (instance names can be longer; verification uses the SAN).
  const bool named =
      X509_NAME_add_entry_by_NID(name.get(), NID_commonName, V_ASN1_UTF8STRING,
                                 reinterpret_cast<const unsigned char*>(spec.common_name.data()),
                                 static_cast<int>(spec.common_name.size()), -1, 0) == 1;
  if (!serial || !named || X509_set_version(cert.get(), X509_VERSION_3) != 1 ||
      X509_set_serialNumber(cert.get(), serial.get()) != 1 ||
      X509_set_subject_name(cert.get(), name.get()) != 1 ||
      X509_set_issuer_name(cert.get(), issuer ? X509_get_subject_name(issuer) : name.get()) != 1 ||
      X509_gmtime_adj(X509_getm_notBefore(cert.get()),
                      static_cast<long>(spec.validity.not_before.count())) == nullptr ||
      X509_gmtime_adj(X509_getm_notAfter(cert.get()),
                      static_cast<long>(spec.validity.not_after.count())) == nullptr ||
      X509_set_pubkey(cert.get(), subject_key) != 1) {
    return std::unexpected(OpenSslError(Code::kInternal, "filling in a certificate"));
  }
  if (issuer && ASN1_TIME_compare(X509_get0_notAfter(cert.get()), X509_get0_notAfter(issuer)) > 0 &&
      X509_set1_notAfter(cert.get(), X509_get0_notAfter(issuer)) != 1) {
    return std::unexpected(OpenSslError(Code::kInternal, "capping a certificate's validity"));
  }

  X509V3_CTX ctx{};
  X509V3_set_ctx(&ctx, issuer ? issuer : cert.get(), cert.get(), nullptr, nullptr, 0);
  std::vector<std::pair<int, std::string>> extensions;
  if (spec.is_ca) {
    extensions = {{NID_basic_constraints, "critical,CA:TRUE"},
                  {NID_key_usage, "critical,keyCertSign,cRLSign"},
                  {NID_subject_key_identifier, "hash"}};
  } else {
    extensions = {{NID_basic_constraints, "critical,CA:FALSE"},
                  {NID_key_usage, "critical,digitalSignature"},
                  {NID_subject_key_identifier, "hash"},
                  {NID_authority_key_identifier, "keyid:always"}};
  }
  if (spec.extended_key_usage) extensions.emplace_back(NID_ext_key_usage, spec.extended_key_usage);
  if (!spec.dns_san.empty())
    extensions.emplace_back(NID_subject_alt_name, "DNS:" + std::string(spec.dns_san));
  for (const auto& [nid, value] : extensions) {
    if (auto added = AddExtension(cert.get(), &ctx, nid, value); !added)
      return std::unexpected(added.error());
  }

  if (X509_sign(cert.get(), issuer_key ? issuer_key : subject_key, EVP_sha256()) <= 0) {
    return std::unexpected(OpenSslError(Code::kInternal, "signing a certificate"));
  }
  return cert;
}

Result<KeyPair> IssueLeaf(const CertSpec& spec, X509* ca_cert, EVP_PKEY* ca_key) {
  auto key = GenerateP256Key();
  if (!key) return std::unexpected(key.error());
  auto cert = BuildCertificate(spec, key->get(), ca_cert, ca_key);
  if (!cert) return std::unexpected(cert.error());
  auto cert_pem = CertificateToPem(cert->get());
  if (!cert_pem) return std::unexpected(cert_pem.error());
  auto key_pem = PrivateKeyToPem(key->get());
  if (!key_pem) return std::unexpected(key_pem.error());
  return KeyPair{std::move(*cert_pem), std::move(*key_pem)};
}

bool Exists(const std::string& path) {
  struct stat st {};
  return ::lstat(path.c_str(), &st) == 0;
}

Result<void> EnsureStateDir(const std::string& dir) {
  struct stat st {};
  if (::stat(dir.c_str(), &st) == 0) {
    if (!S_ISDIR(st.st_mode))
      return Fail(Code::kFailedPrecondition, "CA state dir ", dir, " is not a directory");
    // It holds the CA key: whoever may write into it may replace the CA the pod VMs trust.
    if (st.st_uid != ::geteuid()) {
      return Fail(Code::kPermissionDenied, "CA state dir ", dir, " is owned by uid ", std::to_string(st.st_uid),
                  ", not by this process (uid ", std::to_string(::geteuid()), "): chown it or use another -tls-dir");
    }
    // Ours but open to others (a hostPath directory kubelet made 0755, say): tighten it.
    if ((st.st_mode & 077) != 0 && ::chmod(dir.c_str(), 0700) != 0) {
      return std::unexpected(ErrnoError("CA state dir " + dir + " is open to group or others and chmod 700", errno));
    }
    return {};
  }
  std::error_code ec;
  const auto parent = std::filesystem::path(dir).parent_path();
  if (!parent.empty()) std::filesystem::create_directories(parent, ec);
  if (ec) return std::unexpected(ErrnoError("create " + parent.string(), ec.value()));
  if (::mkdir(dir.c_str(), 0700) != 0 && errno != EEXIST)
    return std::unexpected(ErrnoError("create " + dir, errno));
  if (::chmod(dir.c_str(), 0700) != 0) return std::unexpected(ErrnoError("chmod " + dir, errno));
  return {};
}

}  // namespace

CertificateAuthority::CertificateAuthority(std::unique_ptr<State> state)
    : state_(std::move(state)) {}
CertificateAuthority::CertificateAuthority(CertificateAuthority&&) noexcept = default;
CertificateAuthority& CertificateAuthority::operator=(CertificateAuthority&&) noexcept = default;
CertificateAuthority::~CertificateAuthority() = default;

const std::string& CertificateAuthority::CertPem() const { return state_->cert_pem; }

Result<CertificateAuthority> CertificateAuthority::CreateInMemory() {
  auto state = std::make_unique<State>();
  auto key = GenerateP256Key();
  if (!key) return std::unexpected(key.error());
  const CertSpec spec{.common_name = kCaCommonName,
                      .is_ca = true,
                      .extended_key_usage = nullptr,
                      .dns_san = {},
                      .validity = {}};
  auto cert = BuildCertificate(spec, key->get(), nullptr, nullptr);
  if (!cert) return std::unexpected(cert.error());
  auto pem = CertificateToPem(cert->get());
  if (!pem) return std::unexpected(pem.error());
  state->key = std::move(*key);
  state->cert = std::move(*cert);
  state->cert_pem = std::move(*pem);
  return CertificateAuthority(std::move(state));
}

Result<CertificateAuthority> CertificateAuthority::LoadOrCreate(const std::string& state_dir) {
  if (state_dir.empty()) return Fail(Code::kInvalidArgument, "CA state dir is empty");
  if (auto dir = EnsureStateDir(state_dir); !dir) return std::unexpected(dir.error());
  const std::string cert_path = state_dir + "/ca.crt";
  const std::string key_path = state_dir + "/ca.key";
  const bool have_cert = Exists(cert_path);
  const bool have_key = Exists(key_path);
  const std::string fresh_start =
      "; to start a new CA (pod VMs created before will no longer be trusted) remove both ca.crt "
      "and ca.key";

  if (!have_cert && !have_key) {
    auto ca = CreateInMemory();
    if (!ca) return ca;
    auto key_pem = PrivateKeyToPem(ca->state_->key.get());
    if (!key_pem) return std::unexpected(key_pem.error());
    // The key first: a crash in between leaves a key without a certificate, which the next start
    // reports; a failed certificate write is undone here.
    if (auto written = WriteFileAtomic(key_path, *key_pem, 0600); !written)
      return std::unexpected(written.error());
    if (auto written = WriteFileAtomic(cert_path, ca->CertPem(), 0644); !written) {
      ::unlink(key_path.c_str());
      return std::unexpected(written.error());
    }
    return ca;
  }
  if (!have_cert || !have_key) {
    return Fail(Code::kFailedPrecondition, have_cert ? key_path : cert_path, " is missing but ",
                have_cert ? cert_path : key_path, " exists: restore it", fresh_start);
  }

  struct stat st {};
  if (::stat(key_path.c_str(), &st) != 0)
    return std::unexpected(ErrnoError("stat " + key_path, errno));
  if ((st.st_mode & 077) != 0) {
    char mode[8];
    std::snprintf(mode, sizeof mode, "%04o", static_cast<unsigned>(st.st_mode & 07777));
    return Fail(Code::kPermissionDenied, key_path, " has mode ", mode,
                ": a CA key must not be accessible by group or others (chmod 600 ", key_path, ")");
  }
  auto cert_pem = ReadFile(cert_path, kMaxPemFile);
  if (!cert_pem) return std::unexpected(cert_pem.error());
  auto key_pem = ReadFile(key_path, kMaxPemFile);
  if (!key_pem) return std::unexpected(key_pem.error());

  auto cert = ParseCertificate(*cert_pem, cert_path);
  if (!cert) return Fail(Code::kDataLoss, cert.error().message, fresh_start);
  auto key = ParsePrivateKey(*key_pem, key_path);
  if (!key) return Fail(Code::kDataLoss, key.error().message, fresh_start);
  if (X509_check_private_key(cert->get(), key->get()) != 1) {
    ERR_clear_error();
    return Fail(Code::kFailedPrecondition, cert_path, " and ", key_path, " do not belong together",
                fresh_start);
  }
  if (X509_check_ca(cert->get()) == 0) {
    return Fail(Code::kFailedPrecondition, cert_path, " is not a CA certificate", fresh_start);
  }
  if (X509_cmp_current_time(X509_get0_notAfter(cert->get())) <= 0) {
    return Fail(Code::kFailedPrecondition, cert_path, " has expired", fresh_start);
  }
  auto state = std::make_unique<State>();
  state->cert = std::move(*cert);
  state->key = std::move(*key);
  auto pem =
      CertificateToPem(state->cert.get());  // normalised: only the CA certificate, no comments
  if (!pem) return std::unexpected(pem.error());
  state->cert_pem = std::move(*pem);
  return CertificateAuthority(std::move(state));
}

Result<KeyPair> CertificateAuthority::IssueServerCert(std::string_view san_dns_name,
                                                      const Validity& validity) const {
  if (auto ok = CheckName(san_dns_name, "server certificate name"); !ok)
    return std::unexpected(ok.error());
  const CertSpec spec{.common_name = san_dns_name,
                      .is_ca = false,
                      .extended_key_usage = "serverAuth",
                      .dns_san = san_dns_name,
                      .validity = validity};
  return IssueLeaf(spec, state_->cert.get(), state_->key.get());
}

Result<KeyPair> CertificateAuthority::IssueClientCert(std::string_view cn,
                                                      const Validity& validity) const {
  if (auto ok = CheckName(cn, "client certificate name"); !ok) return std::unexpected(ok.error());
  const CertSpec spec{.common_name = cn,
                      .is_ca = false,
                      .extended_key_usage = "clientAuth",
                      .dns_san = {},
                      .validity = validity};
  return IssueLeaf(spec, state_->cert.get(), state_->key.get());
}

}  // namespace pp::tls
