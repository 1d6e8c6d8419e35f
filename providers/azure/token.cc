#include "providers/azure/token.h"

#include <spdlog/spdlog.h>

#include <nlohmann/json.hpp>

#include "common/base/file.h"
#include "common/podvm/encoding.h"
#include "providers/azure/arm_json.h"

namespace pp::providers::azure {
namespace {

std::string TrimSlash(std::string s) {
  while (!s.empty() && s.back() == '/') s.pop_back();
  return s;
}

std::string TrimSpace(std::string s) {
  const auto space = [](char c) { return c == ' ' || c == '\n' || c == '\r' || c == '\t'; };
  while (!s.empty() && space(s.back())) s.pop_back();
  std::size_t i = 0;
  while (i < s.size() && space(s[i])) ++i;
  return s.substr(i);
}

// The token endpoints' outcomes. Entra ID answers {"error": "invalid_client", "error_description":
// "AADSTS..."} (RFC 6749 section 5.2); IMDS answers 404 for an identity it does not know, 410 and
// 429/5xx while it is busy ("IMDS retry guidance"). Only the error code goes into messages.
Result<void> ClassifyToken(const http::Response& r) {
  if (r.status == 200) return {};
  std::string code;
  auto j = nlohmann::json::parse(r.body, nullptr, false);
  if (j.is_object() && j.contains("error") && j["error"].is_string())
    code = j["error"].get<std::string>();
  const std::string what = "azure: token endpoint answered " + std::to_string(r.status) +
                           (code.empty() ? "" : " (" + podvm::Printable(code) + ")");
  if (r.status == 429) return Fail(Code::kAborted, what);
  if (r.status >= 500 || r.status == 410 || r.status == 408) return Fail(Code::kUnavailable, what);
  return Fail(
      Code::kFailedPrecondition, what,
      ": check AZURE_CLIENT_ID, AZURE_TENANT_ID and the client secret, federated token or managed "
      "identity");
}

}  // namespace

const char* TokenKindName(TokenKind kind) {
  switch (kind) {
    case TokenKind::kClientSecret:
      return "client credentials";
    case TokenKind::kWorkloadIdentity:
      return "workload identity";
    case TokenKind::kManagedIdentity:
      return "managed identity";
  }
  return "?";
}

TokenSource::TokenSource(TokenConfig config, http::Client& client)
    : config_(std::move(config)), client_(client) {}

Result<http::Request> TokenSource::MakeRequest() const {
  const std::string resource = TrimSlash(config_.resource);
  http::Request req;
  if (config_.kind == TokenKind::kManagedIdentity) {
    req.method = "GET";
    req.url = TrimSlash(config_.imds_endpoint) +
              "/metadata/identity/oauth2/token?api-version=2018-02-01&resource=" +
              http::UrlEncode(resource + "/");
    if (!config_.client_id.empty()) req.url += "&client_id=" + http::UrlEncode(config_.client_id);
    req.headers = {{"Metadata", "true"}};
    return req;
  }
  std::vector<std::pair<std::string, std::string>> form = {{"grant_type", "client_credentials"},
                                                           {"client_id", config_.client_id},
                                                           {"scope", resource + "/.default"}};
  if (config_.kind == TokenKind::kClientSecret) {
    form.emplace_back("client_secret", config_.client_secret);
  } else {
    // Read afresh on every fetch: the kubelet replaces the projected token before it expires.
    auto assertion = ReadFile(config_.federated_token_file, 64 * 1024);
    if (!assertion) {
      return Fail(Code::kFailedPrecondition, "azure: reading AZURE_FEDERATED_TOKEN_FILE ",
                  config_.federated_token_file, ": ", assertion.error().message);
    }
    std::string jwt = TrimSpace(std::move(*assertion));
    if (jwt.empty()) {
      return Fail(Code::kFailedPrecondition, "azure: AZURE_FEDERATED_TOKEN_FILE ",
                  config_.federated_token_file, " is empty");
    }
    form.emplace_back("client_assertion_type",
                      "urn:ietf:params:oauth:client-assertion-type:jwt-bearer");
    form.emplace_back("client_assertion", std::move(jwt));
  }
  req.method = "POST";
  req.url = TrimSlash(config_.authority) + "/" + http::UrlEncode(config_.tenant_id) +
            "/oauth2/v2.0/token";
  req.headers = {{"Content-Type", "application/x-www-form-urlencoded"}};
  req.body = http::FormEncode(form);
  return req;
}

Result<TokenSource::Fetched> TokenSource::Fetch(const OpContext& ctx) {
  auto response = http::Send(
      client_, [this] { return MakeRequest(); }, ClassifyToken, config_.retry, ctx);
  if (!response) return std::unexpected(response.error());
  const auto now = config_.now();
  TokenReply reply;
  std::string error;
  if (!ParseTokenReply(
          response->body,
          std::chrono::duration_cast<std::chrono::seconds>(now.time_since_epoch()).count(), reply,
          error)) {
    return Fail(Code::kUnavailable, "azure: ", error);
  }
  spdlog::debug("azure: new {} token, valid {} s", TokenKindName(config_.kind), reply.expires_in_s);
  return Fetched{std::move(reply.access_token), now + std::chrono::seconds(reply.expires_in_s)};
}

Result<std::string> TokenSource::Get(const OpContext& ctx) {
  std::unique_lock lock(mu_);
  for (;;) {
    if (ctx.stop.stop_requested())
      return Fail(Code::kCancelled, "azure: stopped while getting a token");
    if (std::chrono::steady_clock::now() >= ctx.deadline) {
      return Fail(Code::kDeadlineExceeded, "azure: deadline passed while getting a token");
    }
    if (!token_.empty() && config_.now() + config_.refresh_margin < expiry_) return token_;
    if (!fetching_) break;
    fetched_cv_.wait_until(lock, ctx.stop, ctx.deadline, [this] { return !fetching_; });
  }
  fetching_ = true;
  lock.unlock();
  auto fetched = Fetch(ctx);
  lock.lock();
  fetching_ = false;
  fetched_cv_.notify_all();
  if (!fetched) {
    // A refresh that failed while the old token still works: keep going with the old one.
    if (!token_.empty() && config_.now() < expiry_ && fetched.error().code != Code::kCancelled &&
        fetched.error().code != Code::kDeadlineExceeded) {
      spdlog::warn("azure: refreshing the token failed, using the current one: {}",
                   fetched.error().message);
      return token_;
    }
    return std::unexpected(fetched.error());
  }
  ++fetches_;
  token_ = std::move(fetched->token);
  expiry_ = fetched->expiry;
  return token_;
}

void TokenSource::Invalidate(const std::string& token) {
  std::lock_guard lock(mu_);
  if (token_ == token) {
    token_.clear();
    expiry_ = {};
  }
}

std::size_t TokenSource::fetches() const {
  std::lock_guard lock(mu_);
  return fetches_;
}

}  // namespace pp::providers::azure
