#include "common/podvm/pool_config.h"

#include <algorithm>
#include <array>
#include <nlohmann/json.hpp>

#include "common/podvm/encoding.h"

namespace pp::podvm {
namespace {

using Json = nlohmann::json;
using OrderedJson = nlohmann::ordered_json;

constexpr std::array kKeys = {"pool-vm", "tls-server-cert", "tls-server-key", "tls-client-ca",
                              "tls-min-version"};
constexpr std::array kTlsVersions = {"VersionTLS12", "VersionTLS13"};
constexpr std::size_t kMaxNameBytes = 253;

bool Fail(std::string& error, std::string_view where, std::string_view what) {
  error = "pool.json: " + std::string(where) + (where.empty() ? "" : ": ") + std::string(what);
  return false;
}

bool GetString(const Json& doc, const char* key, bool required, std::string& out,
               std::string& error) {
  const auto it = doc.find(key);
  if (it == doc.end() || it->is_null()) {
    return !required || Fail(error, key, "is missing");
  }
  if (!it->is_string()) {
    return Fail(error, key, std::string("must be a string, not ") + it->type_name());
  }
  out = it->get<std::string>();
  if (required && out.empty()) return Fail(error, key, "is empty");
  return true;
}

// The characters CertificateAuthority::IssueServerCert accepts in a DNS name.
bool IsVmName(const std::string& name) {
  return !name.empty() && name.size() <= kMaxNameBytes &&
         std::all_of(name.begin(), name.end(), [](char c) {
           return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                  c == '.' || c == '-' || c == '_';
         });
}

}  // namespace

std::string SerializePoolConfig(const PoolConfig& config) {
  OrderedJson doc;
  doc["pool-vm"] = config.pool_vm;
  doc["tls-server-cert"] = config.tls_server_cert;
  doc["tls-server-key"] = config.tls_server_key;
  doc["tls-client-ca"] = config.tls_client_ca;
  if (!config.tls_min_version.empty()) doc["tls-min-version"] = config.tls_min_version;
  return doc.dump(2, ' ', false, OrderedJson::error_handler_t::replace) + "\n";
}

bool ParsePoolConfig(std::string_view text, PoolConfig& out, std::string& error) {
  out = {};
  if (text.size() > kMaxPoolConfigBytes) {
    return Fail(error, "",
                "larger than " + std::to_string(kMaxPoolConfigBytes) + " bytes, not parsed");
  }
  const Json doc = Json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (doc.is_discarded()) return Fail(error, "", "not valid JSON");
  if (!doc.is_object()) {
    return Fail(error, "", std::string("must be a JSON object, not ") + doc.type_name());
  }
  for (const auto& item : doc.items()) {
    const std::string& key = item.key();  // clang 14 cannot capture a structured binding
    if (std::find_if(kKeys.begin(), kKeys.end(), [&](const char* k) { return key == k; }) ==
        kKeys.end()) {
      return Fail(error, "\"" + Printable(key) + "\"", "unknown key");
    }
  }
  if (!GetString(doc, "pool-vm", true, out.pool_vm, error) ||
      !GetString(doc, "tls-server-cert", true, out.tls_server_cert, error) ||
      !GetString(doc, "tls-server-key", true, out.tls_server_key, error) ||
      !GetString(doc, "tls-client-ca", true, out.tls_client_ca, error) ||
      !GetString(doc, "tls-min-version", false, out.tls_min_version, error)) {
    return false;
  }
  if (!IsVmName(out.pool_vm)) {
    return Fail(error, "pool-vm",
                "not a VM name (letters, digits, '.', '-', '_', at most 253 bytes)");
  }
  if (!out.tls_min_version.empty() &&
      std::find_if(kTlsVersions.begin(), kTlsVersions.end(),
                   [&](const char* v) { return out.tls_min_version == v; }) == kTlsVersions.end()) {
    return Fail(error, "tls-min-version", "unknown value (expected VersionTLS12 or VersionTLS13)");
  }
  return true;
}

}  // namespace pp::podvm
