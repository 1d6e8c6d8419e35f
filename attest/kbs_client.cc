#include "attest/kbs_client.h"

#include <sys/mman.h>
#include <unistd.h>

#include <spdlog/spdlog.h>

#include "attest/kbs_protocol.h"
#include "common/base/file.h"
#include "common/podvm/encoding.h"

namespace pp::attest {
namespace {

namespace http = providers::http;

// The RFC 7807 `detail` of an error body, or the status alone; bounded and printable so that a
// hostile KBS cannot flood a log line.
std::string Reason(const http::Response& r) {
  std::string reason = "HTTP " + std::to_string(r.status);
  if (const std::string detail = ProblemDetail(r.body); !detail.empty()) reason += ": " + detail;
  return reason;
}

http::Classifier Classify(std::string what) {
  return [what = std::move(what)](const http::Response& r) -> Result<void> {
    if (r.status >= 200 && r.status < 300) return {};
    const std::string reason = what + ": " + Reason(r);
    if (r.status >= 500) return Fail(Code::kUnavailable, reason);
    switch (r.status) {
      case 401: return Fail(Code::kUnauthenticated, reason);
      case 403: return Fail(Code::kPermissionDenied, reason);
      case 404: return Fail(Code::kNotFound, reason);
      default: return Fail(Code::kFailedPrecondition, reason);
    }
  };
}

std::optional<std::string> SessionCookie(const http::Response& r) {
  for (const auto& [name, value] : r.headers) {
    if (name != "set-cookie") continue;
    if (auto v = CookieValue(value, kSessionCookie)) return v;
  }
  return std::nullopt;
}

bool ValidSegment(std::string_view s) {
  if (s.empty() || s == "." || s == "..") return false;
  for (const char c : s)
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '-' && c != '_' && c != '.') return false;
  return true;
}

}  // namespace

struct KbsClient::Session {
  std::string cookie;
  TeeKeyPair key;
};

Result<void> CheckResourcePath(std::string_view path) {
  int segments = 0;
  std::size_t start = 0;
  while (true) {
    const auto slash = path.find('/', start);
    const auto seg = path.substr(start, slash == std::string_view::npos ? slash : slash - start);
    if (!ValidSegment(seg)) break;
    ++segments;
    if (slash == std::string_view::npos) {
      if (segments == 3) return {};
      break;
    }
    start = slash + 1;
  }
  return Fail(Code::kInvalidArgument, "resource path must be <repository>/<type>/<tag> of [A-Za-z0-9._-], got '",
              podvm::Printable(path), "'");
}

KbsClient::KbsClient(KbsOptions options, std::unique_ptr<Evidence> evidence)
    : options_(std::move(options)), evidence_(std::move(evidence)) {}

KbsClient::~KbsClient() {
  if (ca_fd_ >= 0) ::close(ca_fd_);
}

Result<std::unique_ptr<KbsClient>> KbsClient::Create(KbsOptions options, std::unique_ptr<Evidence> evidence) {
  while (options.url.ends_with('/')) options.url.pop_back();
  if (!options.url.starts_with("http://") && !options.url.starts_with("https://"))
    return Fail(Code::kInvalidArgument, "kbs: url must start with http:// or https://, got '",
                podvm::Printable(options.url), "'");
  std::unique_ptr<KbsClient> client(new KbsClient(std::move(options), std::move(evidence)));
  http::ClientOptions http_options;
  http_options.user_agent = "peerpods-model-loader";
  http_options.max_response_bytes = 1u << 20;
  if (!client->options_.ca_cert_pem.empty()) {
    client->ca_fd_ = ::memfd_create("kbs-ca", MFD_CLOEXEC);
    if (client->ca_fd_ < 0) return std::unexpected(ErrnoError("kbs: memfd for the CA", errno));
    if (auto w = WriteAll(client->ca_fd_, client->options_.ca_cert_pem, "kbs CA"); !w) return std::unexpected(w.error());
    http_options.ca_bundle = "/proc/self/fd/" + std::to_string(client->ca_fd_);
  }
  client->http_ = std::make_unique<http::Client>(std::move(http_options));
  return client;
}

Result<http::Response> KbsClient::Call(const std::string& method, const std::string& path, std::string body,
                                       const providers::OpContext& ctx) {
  const auto make = [&]() -> Result<http::Request> {
    http::Request request{.method = method, .url = options_.url + "/kbs/v0/" + path, .headers = {}, .body = body};
    if (!body.empty()) request.headers.emplace_back("Content-Type", "application/json");
    if (session_ && !session_->cookie.empty())
      request.headers.emplace_back("Cookie", std::string(kSessionCookie) + "=" + session_->cookie);
    return request;
  };
  auto response = http::Send(*http_, make, Classify("kbs " + path.substr(0, path.find('/'))), options_.retry, ctx);
  if (!response && response.error().code == Code::kUnavailable)
    response.error().message = "kbs at " + options_.url + " unreachable: " + response.error().message;
  return response;
}

Result<void> KbsClient::Attest(const providers::OpContext& ctx) {
  session_.reset();
  ++attestations_;
  const nlohmann::json request = {
      {"version", kKbsProtocolVersion},
      {"tee", evidence_->Tee()},
      {"extra-params", {{"supported-hash-algorithms", {"sha256", "sha384", "sha512"}}}}};
  auto auth = Call("POST", "auth", request.dump(), ctx);
  if (!auth) return std::unexpected(auth.error());
  Challenge challenge;
  std::string why;
  if (!ParseChallenge(auth->body, challenge, why)) return Fail(Code::kDataLoss, why);
  auto cookie = SessionCookie(*auth);
  if (!cookie) return Fail(Code::kDataLoss, "kbs auth: no ", kSessionCookie, " cookie in the challenge response");

  auto key = TeeKeyPair::Generate(options_.key_alg);
  if (!key) return std::unexpected(key.error());
  const nlohmann::json runtime_data = {{"nonce", challenge.nonce}, {"tee-pubkey", key->PublicJwk()}};
  std::string report_data;
  if (!ReportData(runtime_data, challenge.hash, report_data, why)) return Fail(Code::kInternal, why);
  auto primary = evidence_->Collect(report_data);
  // The TEE could not produce evidence: that is no KBS outage, whatever the errno said.
  if (!primary) return Fail(Code::kFailedPrecondition, "evidence (", evidence_->Tee(), "): ", primary.error().message);

  nlohmann::json attestation = {
      {"runtime-data", runtime_data},
      {"tee-evidence", {{"primary_evidence", *primary}, {"additional_evidence", "{}"}}}};
  if (!options_.initdata_toml.empty())
    attestation["init-data"] = {{"format", "toml"}, {"body", options_.initdata_toml}};
  session_ = std::make_unique<Session>(Session{std::move(*cookie), std::move(*key)});
  auto attest = Call("POST", "attest", attestation.dump(), ctx);
  if (!attest) {
    session_.reset();
    return std::unexpected(attest.error());
  }
  if (auto refreshed = SessionCookie(*attest)) session_->cookie = std::move(*refreshed);
  spdlog::info("kbs: attested to {} as tee {}", options_.url, evidence_->Tee());
  return {};
}

Result<Secret> KbsClient::GetResource(std::string_view path, const providers::OpContext& ctx) {
  if (auto r = CheckResourcePath(path); !r) return std::unexpected(r.error());
  bool reattested = false;
  while (true) {
    if (!session_) {
      if (auto r = Attest(ctx); !r) return std::unexpected(r.error());
    }
    auto response = Call("GET", "resource/" + std::string(path), {}, ctx);
    if (!response) {
      // Trustee answers 401 when the session cookie expired: attest again, once.
      if (response.error().code == Code::kUnauthenticated && !reattested) {
        spdlog::info("kbs: resource refused with 401 (session expired?); attesting again");
        session_.reset();
        reattested = true;
        continue;
      }
      return std::unexpected(response.error());
    }
    auto plain = session_->key.Decrypt(response->body);
    if (!plain) return std::unexpected(plain.error());
    return plain;
  }
}

Result<Secret> GetCdhResource(const std::string& base, std::string_view path, const providers::OpContext& ctx) {
  if (auto r = CheckResourcePath(path); !r) return std::unexpected(r.error());
  http::ClientOptions options;
  options.max_response_bytes = 1u << 20;
  options.connect_timeout = std::chrono::milliseconds(2000);
  options.user_agent = "peerpods-model-loader";
  http::Client client(std::move(options));
  http::Request request;
  request.url = base + "/cdh/resource/" + std::string(path);
  auto response = client.Do(request, ctx);
  if (!response) return std::unexpected(response.error());
  if (auto verdict = Classify("cdh resource")(*response); !verdict) {
    // The CDH answers 500 with its own text for every failure behind it (attestation included).
    if (verdict.error().code == Code::kUnavailable) verdict.error().code = Code::kUnauthenticated;
    return std::unexpected(verdict.error());
  }
  Secret out(std::move(response->body));
  return out;
}

}  // namespace pp::attest
