#include "providers/gcp/token.h"

#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#include <condition_variable>
#include <cstdlib>
#include <fstream>
#include <iterator>
#include <mutex>
#include <nlohmann/json.hpp>

#include "common/base/handle.h"
#include "common/podvm/encoding.h"
#include "providers/gcp/responses.h"
#include "providers/http/retry.h"

namespace pp::providers::gcp {
namespace {

using Clock = std::chrono::steady_clock;
using Json = nlohmann::json;

Result<void> ContextDone(const OpContext& ctx, std::string_view what) {
  if (ctx.stop.stop_requested()) return Fail(Code::kCancelled, "gcp: cancelled while ", what);
  if (Clock::now() >= ctx.deadline)
    return Fail(Code::kDeadlineExceeded, "gcp: deadline passed while ", what);
  return {};
}

// A string member, or "" when absent or not a string.
std::string Member(const Json& j, const char* name) {
  const auto it = j.find(name);
  return it != j.end() && it->is_string() ? it->get<std::string>() : std::string();
}

// Token endpoints answer errors as {"error": "invalid_grant", "error_description": "..."}
// (RFC 6749 section 5.2); the metadata server answers plain text.
Result<void> ClassifyTokenResponse(const http::Response& r, std::string_view endpoint) {
  if (r.status >= 200 && r.status < 300) return {};
  std::string detail;
  const Json j = Json::parse(r.body, nullptr, false);
  if (j.is_object()) {
    detail = Member(j, "error");
    if (const std::string d = Member(j, "error_description"); !d.empty())
      detail += ": " + d.substr(0, 200);
  }
  const std::string what = std::string("gcp: token endpoint ") + std::string(endpoint) +
                           " answered HTTP " + std::to_string(r.status) +
                           (detail.empty() ? "" : " (" + detail + ")");
  if (r.status == 429) return Fail(Code::kAborted, what);
  if (r.status >= 500) return Fail(Code::kUnavailable, what);
  return Fail(Code::kFailedPrecondition, what,
              "; check GCP_CREDENTIALS and the service account's roles");
}

// The caching and single-flight part every source shares; `fetch_` gets a new token.
class CachingTokenSource : public TokenSource {
 public:
  using Fetch = std::function<Result<AccessToken>(const OpContext&)>;
  CachingTokenSource(Fetch fetch, std::chrono::seconds margin)
      : fetch_(std::move(fetch)), margin_(margin) {}

  Result<std::string> Token(const OpContext& ctx) override {
    std::unique_lock lock(mu_);
    for (;;) {
      if (auto done = ContextDone(ctx, "getting an access token"); !done)
        return std::unexpected(done.error());
      if (!token_.token.empty() && Clock::now() + margin_ < token_.expiry) return token_.token;
      if (!fetching_) break;
      // Another caller fetches: wait for it, within our own deadline and stop request.
      cv_.wait_until(lock, ctx.stop, ctx.deadline, [&] { return !fetching_; });
    }
    fetching_ = true;
    lock.unlock();
    Result<AccessToken> fetched = fetch_(ctx);
    lock.lock();
    fetching_ = false;
    cv_.notify_all();
    if (!fetched) return std::unexpected(fetched.error());
    ++fetches_;
    token_ = std::move(*fetched);
    return token_.token;
  }

  void Invalidate(std::string_view token) override {
    std::lock_guard lock(mu_);
    if (token_.token == token) token_ = {};
  }

  std::size_t fetches() const override {
    std::lock_guard lock(mu_);
    return fetches_;
  }

 private:
  Fetch fetch_;
  const std::chrono::seconds margin_;
  mutable std::mutex mu_;
  std::condition_variable_any cv_;
  bool fetching_ = false;  // guarded by mu_
  AccessToken token_;      // guarded by mu_
  std::size_t fetches_ = 0;
};

http::RetryPolicy TokenRetry() {
  http::RetryPolicy p;
  p.max_attempts = 4;
  return p;
}

}  // namespace

Result<ServiceAccountKey> ParseServiceAccountKey(std::string_view text) {
  const Json j = Json::parse(text, nullptr, false);
  if (!j.is_object())
    return Fail(Code::kInvalidArgument, "gcp: GCP_CREDENTIALS is not a JSON key file");
  const std::string type = Member(j, "type");
  if (!type.empty() && type != "service_account") {
    return Fail(Code::kInvalidArgument, "gcp: GCP_CREDENTIALS holds credentials of type \"", type,
                "\"; only service-account keys (\"type\": \"service_account\") are supported");
  }
  ServiceAccountKey key;
  key.client_email = Member(j, "client_email");
  key.private_key = Member(j, "private_key");
  key.private_key_id = Member(j, "private_key_id");
  key.token_uri = Member(j, "token_uri");
  key.project_id = Member(j, "project_id");
  if (key.client_email.empty())
    return Fail(Code::kInvalidArgument, "gcp: the service-account key has no client_email");
  if (key.private_key.empty())
    return Fail(Code::kInvalidArgument, "gcp: the service-account key has no private_key");
  if (key.token_uri.empty()) key.token_uri = std::string(kDefaultTokenUri);
  return key;
}

std::string Base64Url(std::string_view bytes) {
  std::string s = podvm::Base64Encode(bytes);
  while (!s.empty() && s.back() == '=') s.pop_back();
  for (char& c : s) {
    if (c == '+')
      c = '-';
    else if (c == '/')
      c = '_';
  }
  return s;
}

Result<std::string> MakeJwtAssertion(const ServiceAccountKey& key, std::string_view scope,
                                     std::string_view audience,
                                     std::chrono::system_clock::time_point now) {
  Json header = {{"alg", "RS256"}, {"typ", "JWT"}};
  if (!key.private_key_id.empty()) header["kid"] = key.private_key_id;
  const long long iat =
      std::chrono::duration_cast<std::chrono::seconds>(now.time_since_epoch()).count();
  const Json claims = {{"iss", key.client_email},
                       {"scope", scope},
                       {"aud", audience},
                       {"iat", iat},
                       {"exp", iat + 3600}};
  const std::string signing_input = Base64Url(header.dump()) + "." + Base64Url(claims.dump());

  CHandle<BIO, BIO_free> bio(
      BIO_new_mem_buf(key.private_key.data(), static_cast<int>(key.private_key.size())));
  if (!bio) return Fail(Code::kInternal, "gcp: out of memory reading the private key");
  CHandle<EVP_PKEY, EVP_PKEY_free> pkey(
      PEM_read_bio_PrivateKey(bio.get(), nullptr, nullptr, nullptr));
  if (!pkey || EVP_PKEY_get_base_id(pkey.get()) != EVP_PKEY_RSA) {
    return Fail(Code::kInvalidArgument,
                "gcp: the service-account key's private_key is not an RSA key in PEM");
  }
  // RS256 = RSASSA-PKCS1-v1_5 with SHA-256 (RFC 7518 section 3.3), OpenSSL's default RSA padding.
  CHandle<EVP_MD_CTX, EVP_MD_CTX_free> md(EVP_MD_CTX_new());
  std::size_t len = 0;
  if (!md || EVP_DigestSignInit(md.get(), nullptr, EVP_sha256(), nullptr, pkey.get()) != 1 ||
      EVP_DigestSign(md.get(), nullptr, &len,
                     reinterpret_cast<const unsigned char*>(signing_input.data()),
                     signing_input.size()) != 1) {
    return Fail(Code::kInternal, "gcp: signing the JWT assertion failed");
  }
  std::string sig(len, '\0');
  if (EVP_DigestSign(md.get(), reinterpret_cast<unsigned char*>(sig.data()), &len,
                     reinterpret_cast<const unsigned char*>(signing_input.data()),
                     signing_input.size()) != 1) {
    return Fail(Code::kInternal, "gcp: signing the JWT assertion failed");
  }
  sig.resize(len);
  return signing_input + "." + Base64Url(sig);
}

Result<AccessToken> ParseTokenResponse(std::string_view body, Clock::time_point now) {
  AccessToken t;
  long long expires_in = 0;
  std::string error;
  if (!ParseTokenJson(body, t.token, expires_in, error)) return Fail(Code::kUnavailable, error);
  t.expiry = now + std::chrono::seconds(expires_in);
  return t;
}

std::string MetadataBaseUrl(std::string_view host) {
  std::string h(host.empty() ? kDefaultMetadataHost : host);
  if (h.starts_with("http://") || h.starts_with("https://")) {
    while (h.ends_with('/')) h.pop_back();
    return h;
  }
  return "http://" + h;
}

std::unique_ptr<TokenSource> MakeServiceAccountTokenSource(ServiceAccountKey key,
                                                           http::Client& client,
                                                           TokenOptions options) {
  const std::string endpoint =
      options.token_endpoint.empty() ? key.token_uri : options.token_endpoint;
  auto fetch = [key = std::move(key), &client, endpoint,
                scope = options.scope](const OpContext& ctx) -> Result<AccessToken> {
    const auto sent = Clock::now();
    auto response = http::Send(
        client,
        [&]() -> Result<http::Request> {
          // The audience is the key's token_uri even when the endpoint is overridden (a private or
          // emulated endpoint): nothing but the address changes.
          auto jwt = MakeJwtAssertion(key, scope, key.token_uri, std::chrono::system_clock::now());
          if (!jwt) return std::unexpected(jwt.error());
          http::Request r;
          r.method = "POST";
          r.url = endpoint;
          r.headers = {{"Content-Type", "application/x-www-form-urlencoded"},
                       {"Accept", "application/json"}};
          r.body = http::FormEncode(
              {{"grant_type", "urn:ietf:params:oauth:grant-type:jwt-bearer"}, {"assertion", *jwt}});
          return r;
        },
        [&](const http::Response& r) { return ClassifyTokenResponse(r, endpoint); }, TokenRetry(),
        ctx);
    if (!response) return std::unexpected(response.error());
    return ParseTokenResponse(response->body, sent);
  };
  return std::make_unique<CachingTokenSource>(std::move(fetch), options.refresh_margin);
}

std::unique_ptr<TokenSource> MakeMetadataTokenSource(http::Client& client, TokenOptions options) {
  const std::string url = MetadataBaseUrl(options.metadata_host) +
                          "/computeMetadata/v1/instance/service-accounts/default/token";
  auto fetch = [&client, url](const OpContext& ctx) -> Result<AccessToken> {
    const auto sent = Clock::now();
    auto response = http::Send(
        client,
        [&]() -> Result<http::Request> {
          http::Request r;
          r.url = url;
          r.headers = {{"Metadata-Flavor", "Google"}};
          return r;
        },
        [&](const http::Response& r) { return ClassifyTokenResponse(r, "(metadata server)"); },
        TokenRetry(), ctx);
    if (!response) {
      Error e = response.error();
      if (e.code == Code::kUnavailable) {
        e.message +=
            " (no GCP_CREDENTIALS given, so tokens come from the metadata server, which only GCE "
            "VMs "
            "and GKE nodes have)";
      }
      return std::unexpected(std::move(e));
    }
    return ParseTokenResponse(response->body, sent);
  };
  return std::make_unique<CachingTokenSource>(std::move(fetch), options.refresh_margin);
}

Result<std::unique_ptr<TokenSource>> MakeTokenSource(std::string_view credentials,
                                                     http::Client& client, TokenOptions options,
                                                     std::string* project_id) {
  std::string text(credentials);
  const auto first = text.find_first_not_of(" \t\r\n");
  std::string source = "GCP_CREDENTIALS";
  if (first == std::string::npos) {
    const char* adc = std::getenv("GOOGLE_APPLICATION_CREDENTIALS");
    if (adc == nullptr || *adc == '\0') return MakeMetadataTokenSource(client, std::move(options));
    text = adc;
    source = "GOOGLE_APPLICATION_CREDENTIALS";
  } else if (text[first] == '{') {
    auto key = ParseServiceAccountKey(text);
    if (!key) return std::unexpected(key.error());
    if (project_id != nullptr) *project_id = key->project_id;
    return MakeServiceAccountTokenSource(std::move(*key), client, std::move(options));
  }
  // A path (GCP_CREDENTIALS or GOOGLE_APPLICATION_CREDENTIALS). Named in messages only when it
  // looks like one: a key pasted in some other encoding (base64, a byte-order mark before the '{')
  // must not be echoed into a log.
  const bool path_like = text.size() <= 256 && text.find_first_of("\n\r") == std::string::npos;
  const std::string shown = path_like ? text : "(" + std::to_string(text.size()) + " bytes, not shown)";
  std::ifstream in(text, std::ios::binary);
  if (!in)
    return Fail(Code::kInvalidArgument, "gcp: ", source, ": cannot read the key file ", shown,
                path_like ? "" : ": neither a key's JSON nor a file name");
  std::string json((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  if (json.size() > (1u << 20))
    return Fail(Code::kInvalidArgument, "gcp: ", source, ": ", shown,
                " is too large for a key file");
  auto key = ParseServiceAccountKey(json);
  if (!key) return Fail(key.error().code, key.error().message, " (", source, "=", shown, ")");
  if (project_id != nullptr) *project_id = key->project_id;
  return MakeServiceAccountTokenSource(std::move(*key), client, std::move(options));
}

}  // namespace pp::providers::gcp
