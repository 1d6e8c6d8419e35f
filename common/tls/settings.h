// TLS protocol settings as cloud-api-adaptor spells them, so an existing peer-pods ConfigMap works
// unchanged.
//
// TLS_MIN_VERSION is "VersionTLS12" or "VersionTLS13" ("1.2"/"1.3" and OpenSSL's
// "TLSv1.2"/"TLSv1.3" are accepted too; empty means TLS 1.2). TLS 1.3 is always preferred when both
// sides have it: the maximum version is never capped. TLS_CIPHER_SUITES is a comma-separated list
// of IANA names (TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256, ...) restricting the TLS 1.2 suites only,
// as in Go's crypto/tls: TLS 1.3 suites are not configurable, and naming one
// (TLS_AES_128_GCM_SHA256) is allowed and has no effect. Only ECDHE suites (forward secrecy) are
// known; any other name is refused.
//
// Pure functions, no state.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "common/base/error.h"

namespace pp::tls {

struct TlsSettings {
  std::string min_version;                 // "VersionTLS12" or "VersionTLS13" once parsed
  std::vector<std::string> cipher_suites;  // IANA names; empty = the default ECDHE AEAD suites

  friend bool operator==(const TlsSettings&, const TlsSettings&) = default;
};

// Validates and normalises (min_version becomes "VersionTLS12"/"VersionTLS13"; blanks around names
// and empty list items are dropped). INVALID_ARGUMENT naming the offending value otherwise.
Result<TlsSettings> ParseTlsSettings(std::string_view min_version,
                                     std::string_view cipher_suites_csv);

// The same for a list that is already split (apf.json's "tls-cipher-suites").
Result<TlsSettings> ParseTlsSettingsList(std::string_view min_version,
                                         const std::vector<std::string>& cipher_suites);

// OpenSSL's view of validated settings, used when building a context. Both re-validate, so a
// hand-built TlsSettings fails here rather than being half applied.
Result<int> MinProtocolVersion(const TlsSettings& settings);  // TLS1_2_VERSION or TLS1_3_VERSION
Result<std::string> Tls12CipherList(const TlsSettings& settings);  // for SSL_CTX_set_cipher_list

}  // namespace pp::tls
