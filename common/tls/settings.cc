#include "common/tls/settings.h"

#include <openssl/tls1.h>

#include <algorithm>
#include <array>

namespace pp::tls {
namespace {

struct Suite {
  std::string_view iana;
  std::string_view openssl;  // empty for TLS 1.3 suites: named, accepted, not configurable
};

// The forward-secret (ECDHE) suites of Go's crypto/tls CipherSuites() list, whose names CAA
// accepts, and the TLS 1.3 names. The first six (AEAD) form the default TLS 1.2 list, in this
// order.
constexpr std::array kSuites = {
    Suite{"TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256", "ECDHE-ECDSA-AES128-GCM-SHA256"},
    Suite{"TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256", "ECDHE-RSA-AES128-GCM-SHA256"},
    Suite{"TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384", "ECDHE-ECDSA-AES256-GCM-SHA384"},
    Suite{"TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384", "ECDHE-RSA-AES256-GCM-SHA384"},
    Suite{"TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256", "ECDHE-ECDSA-CHACHA20-POLY1305"},
    Suite{"TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256", "ECDHE-RSA-CHACHA20-POLY1305"},
    // Go's older spellings of the same two suites.
    Suite{"TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305", "ECDHE-ECDSA-CHACHA20-POLY1305"},
    Suite{"TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305", "ECDHE-RSA-CHACHA20-POLY1305"},
    Suite{"TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA", "ECDHE-ECDSA-AES128-SHA"},
    Suite{"TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA", "ECDHE-RSA-AES128-SHA"},
    Suite{"TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA", "ECDHE-ECDSA-AES256-SHA"},
    Suite{"TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA", "ECDHE-RSA-AES256-SHA"},
    Suite{"TLS_AES_128_GCM_SHA256", ""},
    Suite{"TLS_AES_256_GCM_SHA384", ""},
    Suite{"TLS_CHACHA20_POLY1305_SHA256", ""},
};
constexpr std::size_t kDefaultSuites = 6;

constexpr std::string_view kTls12 = "VersionTLS12";
constexpr std::string_view kTls13 = "VersionTLS13";

const Suite* FindSuite(std::string_view iana) {
  for (const Suite& suite : kSuites) {
    if (suite.iana == iana) return &suite;
  }
  return nullptr;
}

std::string_view Trim(std::string_view text) {
  const auto begin = text.find_first_not_of(" \t\r\n");
  if (begin == std::string_view::npos) return {};
  const auto end = text.find_last_not_of(" \t\r\n");
  return text.substr(begin, end - begin + 1);
}

Result<std::string> NormaliseVersion(std::string_view version) {
  version = Trim(version);
  if (version.empty() || version == kTls12 || version == "1.2" || version == "TLSv1.2") {
    return std::string(kTls12);
  }
  if (version == kTls13 || version == "1.3" || version == "TLSv1.3") return std::string(kTls13);
  if (version == "VersionTLS10" || version == "VersionTLS11" || version == "1.0" ||
      version == "1.1") {
    return Fail(Code::kInvalidArgument, "TLS_MIN_VERSION ", version,
                " is not supported: TLS 1.2 is the minimum (use VersionTLS12 or VersionTLS13)");
  }
  return Fail(Code::kInvalidArgument, "TLS_MIN_VERSION \"", version,
              "\" is unknown (use VersionTLS12 or VersionTLS13)");
}

}  // namespace

Result<TlsSettings> ParseTlsSettingsList(std::string_view min_version,
                                         const std::vector<std::string>& cipher_suites) {
  auto version = NormaliseVersion(min_version);
  if (!version) return std::unexpected(version.error());
  TlsSettings settings{.min_version = std::move(*version), .cipher_suites = {}};
  for (const std::string& raw : cipher_suites) {
    const std::string_view name = Trim(raw);
    if (name.empty()) continue;
    if (FindSuite(name) == nullptr) {
      return Fail(Code::kInvalidArgument, "TLS_CIPHER_SUITES: \"", name,
                  "\" is not a supported cipher suite (use IANA names of ECDHE suites, e.g. "
                  "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256)");
    }
    settings.cipher_suites.emplace_back(name);
  }
  return settings;
}

Result<TlsSettings> ParseTlsSettings(std::string_view min_version,
                                     std::string_view cipher_suites_csv) {
  std::vector<std::string> names;
  while (!cipher_suites_csv.empty()) {
    const auto comma = cipher_suites_csv.find(',');
    names.emplace_back(cipher_suites_csv.substr(0, comma));
    if (comma == std::string_view::npos) break;
    cipher_suites_csv.remove_prefix(comma + 1);
  }
  return ParseTlsSettingsList(min_version, names);
}

Result<int> MinProtocolVersion(const TlsSettings& settings) {
  auto version = NormaliseVersion(settings.min_version);
  if (!version) return std::unexpected(version.error());
  return *version == kTls13 ? TLS1_3_VERSION : TLS1_2_VERSION;
}

Result<std::string> Tls12CipherList(const TlsSettings& settings) {
  std::string list;
  std::vector<std::string_view> added;
  auto append = [&list, &added](std::string_view name) {
    if (name.empty() || std::find(added.begin(), added.end(), name) != added.end()) return;
    added.push_back(name);
    if (!list.empty()) list += ':';
    list += name;
  };
  for (const std::string& name : settings.cipher_suites) {
    const Suite* suite = FindSuite(Trim(name));
    if (suite == nullptr) {
      return Fail(Code::kInvalidArgument, "TLS_CIPHER_SUITES: \"", name,
                  "\" is not a supported cipher suite");
    }
    append(suite->openssl);
  }
  // Only TLS 1.3 names (or none at all): keep TLS 1.2 possible with the default suites.
  if (list.empty()) {
    for (std::size_t i = 0; i < kDefaultSuites; ++i) append(kSuites[i].openssl);
  }
  return list;
}

}  // namespace pp::tls
