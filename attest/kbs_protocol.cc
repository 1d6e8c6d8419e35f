#include "attest/kbs_protocol.h"

#include <openssl/evp.h>

#include "attest/jcs.h"
#include "common/podvm/encoding.h"

namespace pp::attest {

bool ParseChallenge(std::string_view body, Challenge& out, std::string& error) {
  const auto challenge = nlohmann::json::parse(body, nullptr, false);
  if (!challenge.is_object() || !challenge.contains("nonce") || !challenge["nonce"].is_string() ||
      challenge["nonce"].get_ref<const std::string&>().empty()) {
    error = "kbs auth: the challenge has no nonce";
    return false;
  }
  Challenge parsed;
  parsed.nonce = challenge["nonce"].get<std::string>();
  nlohmann::json params = challenge.contains("extra-params") ? challenge["extra-params"] : nlohmann::json();
  if (params.is_string()) params = nlohmann::json::parse(params.get<std::string>(), nullptr, false);
  if (params.is_object() && params.contains("selected-hash-algorithm")) {
    const auto& selected = params["selected-hash-algorithm"];
    if (!selected.is_string()) {
      error = "kbs auth: selected-hash-algorithm is not a string";
      return false;
    }
    parsed.hash = selected.get<std::string>();
    if (parsed.hash != "sha256" && parsed.hash != "sha384" && parsed.hash != "sha512") {
      error = "kbs auth: the challenge selected an unsupported hash algorithm " + podvm::Printable(parsed.hash);
      return false;
    }
  }
  out = std::move(parsed);
  return true;
}

bool ReportData(const nlohmann::json& runtime_data, std::string_view hash, std::string& out, std::string& error) {
  const EVP_MD* md = hash == "sha256"   ? EVP_sha256()
                     : hash == "sha384" ? EVP_sha384()
                     : hash == "sha512" ? EVP_sha512()
                                        : nullptr;
  if (md == nullptr) {
    error = "report data: unsupported hash";
    return false;
  }
  std::string canonical;
  if (!Canonicalize(runtime_data, canonical, error)) return false;
  std::string report_data(64, '\0');
  unsigned int len = 0;
  if (EVP_Digest(canonical.data(), canonical.size(), reinterpret_cast<unsigned char*>(report_data.data()), &len, md,
                 nullptr) != 1) {
    error = "report data: digest failed";
    return false;
  }
  out = std::move(report_data);
  return true;
}

std::string ProblemDetail(std::string_view body) {
  const auto problem = nlohmann::json::parse(body, nullptr, false);
  if (!problem.is_object() || !problem.contains("detail") || !problem["detail"].is_string()) return {};
  return podvm::Printable(problem["detail"].get_ref<const std::string&>(), 200);
}

std::optional<std::string> CookieValue(std::string_view set_cookie, std::string_view name) {
  while (!set_cookie.empty() && set_cookie.front() == ' ') set_cookie.remove_prefix(1);
  if (!set_cookie.starts_with(name) || set_cookie.substr(name.size(), 1) != "=") return std::nullopt;
  std::string_view value = set_cookie.substr(name.size() + 1);
  value = value.substr(0, value.find(';'));
  while (!value.empty() && value.back() == ' ') value.remove_suffix(1);
  if (value.empty()) return std::nullopt;
  return std::string(value);
}

}  // namespace pp::attest
