#include "providers/aws/credentials.h"

#include <spdlog/spdlog.h>

#include <cstdlib>
#include <nlohmann/json.hpp>

#include "common/base/file.h"
#include "providers/aws/ec2_client.h"
#include "providers/aws/ec2_query.h"
#include "providers/aws/ec2_xml.h"
#include "providers/aws/imds.h"

namespace pp::providers::aws {
namespace {

using Clock = std::chrono::steady_clock;
using SysClock = std::chrono::system_clock;

std::string Env(const char* name) {
  const char* v = std::getenv(name);
  return v ? v : "";
}

std::string Trim(std::string_view s) {
  const auto first = s.find_first_not_of(" \t\r\n");
  if (first == std::string_view::npos) return "";
  return std::string(s.substr(first, s.find_last_not_of(" \t\r\n") - first + 1));
}

// A bounded context for calls to a metadata endpoint: the SDKs give IMDS about a second per
// attempt (botocore metadata_service_timeout = 1); we allow a few, within the caller's budget.
OpContext Shorter(const OpContext& ctx, std::chrono::seconds limit) {
  return OpContext{std::min(ctx.deadline, Clock::now() + limit), ctx.stop};
}

class StaticSource final : public CredentialSource {
 public:
  explicit StaticSource(Credentials c) : c_(std::move(c)) {}
  std::string_view Name() const override { return "environment"; }
  Result<TimedCredentials> Fetch(const OpContext&) override {
    return TimedCredentials{c_, std::nullopt};
  }

 private:
  const Credentials c_;
};

class SharedFileSource final : public CredentialSource {
 public:
  SharedFileSource(std::string path, std::string profile)
      : path_(std::move(path)), profile_(std::move(profile)) {}
  std::string_view Name() const override { return "shared credentials file"; }
  Result<TimedCredentials> Fetch(const OpContext&) override {
    auto text = ReadFile(path_, 1 << 20);
    if (!text) {
      if (text.error().code == Code::kNotFound) return Fail(Code::kNotFound, "no file ", path_);
      return Fail(Code::kFailedPrecondition, "aws: reading the credentials file ", path_, ": ",
                  text.error().message);
    }
    auto c = ParseSharedCredentials(*text, profile_);
    if (!c) {
      if (c.error().code == Code::kNotFound) return std::unexpected(c.error());
      return Fail(c.error().code, "aws: ", path_, ": ", c.error().message);
    }
    return TimedCredentials{std::move(*c), std::nullopt};
  }

 private:
  const std::string path_, profile_;
};

class WebIdentitySource final : public CredentialSource {
 public:
  WebIdentitySource(const CredentialsConfig& c, http::Client& client)
      : config_(c), client_(client) {}
  std::string_view Name() const override { return "web identity (STS AssumeRoleWithWebIdentity)"; }

  Result<TimedCredentials> Fetch(const OpContext& ctx) override {
    // Read each time: the kubelet rotates a projected service-account token.
    auto token = ReadFile(config_.web_identity_token_file, 64 << 10);
    if (!token) {
      return Fail(Code::kFailedPrecondition, "aws: AWS_WEB_IDENTITY_TOKEN_FILE ",
                  config_.web_identity_token_file, ": ", token.error().message);
    }
    const std::string session =
        config_.role_session_name.empty()
            ? "peerpods-" + std::to_string(std::chrono::duration_cast<std::chrono::seconds>(
                                               SysClock::now().time_since_epoch())
                                               .count())
            : config_.role_session_name;
    // AssumeRoleWithWebIdentity is not signed: the token is the proof (STS API Reference).
    const std::string body = EncodeQueryBody("AssumeRoleWithWebIdentity", "2011-06-15",
                                             {{"RoleArn", config_.role_arn},
                                              {"RoleSessionName", session},
                                              {"WebIdentityToken", Trim(*token)}});
    std::optional<StsCredentials> got;
    const auto make = [&]() -> Result<http::Request> {
      http::Request r;
      r.method = "POST";
      r.url = config_.sts_endpoint;
      r.headers = {{"Content-Type", "application/x-www-form-urlencoded; charset=utf-8"}};
      r.body = body;
      return r;
    };
    const http::Classifier classify = [&](const http::Response& r) -> Result<void> {
      if (auto ok = ClassifyAwsResponse(r, "sts AssumeRoleWithWebIdentity"); !ok) return ok;
      std::string error;
      got = ParseAssumeRoleWithWebIdentityXml(r.body, error);
      if (!got) return Fail(Code::kUnavailable, "sts: ", error);
      return {};
    };
    http::RetryPolicy policy;
    policy.max_attempts = 3;
    auto sent = http::Send(client_, make, classify, policy, ctx);
    if (!sent) {
      Error e = sent.error();
      // An expired or refused identity token will not get better by retrying: operator's turn.
      if (e.code == Code::kUnauthenticated || e.code == Code::kInvalidArgument)
        e.code = Code::kFailedPrecondition;
      e.message = "aws: web identity for role " + config_.role_arn + ": " + e.message;
      return std::unexpected(std::move(e));
    }
    return TimedCredentials{{got->access_key_id, got->secret_access_key, got->session_token},
                            got->expiration};
  }

 private:
  const CredentialsConfig config_;
  http::Client& client_;
};

class ImdsSource final : public CredentialSource {
 public:
  ImdsSource(std::string endpoint, http::Client& client)
      : endpoint_(std::move(endpoint)), client_(client) {}
  std::string_view Name() const override { return "EC2 instance role (IMDSv2)"; }

  Result<TimedCredentials> Fetch(const OpContext& outer) override {
    const OpContext ctx = Shorter(outer, std::chrono::seconds(10));
    ImdsSession imds(endpoint_, client_);
    // Nothing at the metadata address (NOT_FOUND) means "not on EC2": this source is not
    // configured, and the chain's error lists every source.
    if (auto open = imds.Open(ctx); !open) return std::unexpected(open.error());
    const std::string base = "iam/security-credentials/";
    auto roles = imds.Get(base, ctx);
    if (!roles) return Wrap(roles.error());
    const std::string role = Trim(roles->substr(0, roles->find('\n')));
    if (role.empty() || role.find('/') != std::string::npos) {
      return Fail(Code::kFailedPrecondition, "aws: this instance has no IAM role (IMDS at ",
                  imds.endpoint(), ")");
    }
    auto creds = imds.Get(base + role, ctx);
    if (!creds) return Wrap(creds.error());
    const auto json = nlohmann::json::parse(*creds, nullptr, false);
    if (!json.is_object() || json.value("Code", "Success") != "Success") {
      return Fail(Code::kUnavailable, "aws: IMDS role credentials of ", role,
                  ": malformed or not Success");
    }
    TimedCredentials out;
    out.credentials.access_key_id = json.value("AccessKeyId", "");
    out.credentials.secret_access_key = json.value("SecretAccessKey", "");
    out.credentials.session_token = json.value("Token", "");
    out.expiration = ParseIso8601(json.value("Expiration", ""));
    if (out.credentials.access_key_id.empty() || out.credentials.secret_access_key.empty() ||
        !out.expiration) {
      return Fail(Code::kUnavailable, "aws: IMDS role credentials of ", role, ": incomplete");
    }
    return out;
  }

 private:
  std::unexpected<Error> Wrap(const Error& e) const {
    if (e.code == Code::kNotFound) {
      return Fail(Code::kFailedPrecondition, "aws: this instance has no IAM role (IMDS at ",
                  endpoint_, ")");
    }
    return Fail(e.code, "aws: instance role credentials from IMDS at ", endpoint_, ": ", e.message);
  }

  const std::string endpoint_;
  http::Client& client_;
};

}  // namespace

void CredentialsConfig::FromEnvironment(const std::string& region) {
  const auto fill = [](std::string& field, const char* name) {
    if (field.empty()) field = Env(name);
  };
  fill(access_key_id, "AWS_ACCESS_KEY_ID");
  fill(secret_access_key, "AWS_SECRET_ACCESS_KEY");
  fill(session_token, "AWS_SESSION_TOKEN");
  fill(web_identity_token_file, "AWS_WEB_IDENTITY_TOKEN_FILE");
  fill(role_arn, "AWS_ROLE_ARN");
  fill(role_session_name, "AWS_ROLE_SESSION_NAME");
  fill(shared_credentials_file, "AWS_SHARED_CREDENTIALS_FILE");
  fill(profile, "AWS_PROFILE");
  if (profile.empty()) profile = "default";
  if (shared_credentials_file.empty() && !Env("HOME").empty()) {
    shared_credentials_file = Env("HOME") + "/.aws/credentials";
  }
  // Service-specific endpoint first, then the global one (AWS SDKs and Tools Reference Guide,
  // "Service-specific endpoints").
  fill(sts_endpoint, "AWS_ENDPOINT_URL_STS");
  fill(sts_endpoint, "AWS_ENDPOINT_URL");
  if (sts_endpoint.empty()) {
    sts_endpoint =
        region.empty() ? "https://sts.amazonaws.com/" : "https://sts." + region + ".amazonaws.com/";
  }
  fill(imds_endpoint, "AWS_EC2_METADATA_SERVICE_ENDPOINT");
  if (imds_endpoint.empty()) imds_endpoint = std::string(kDefaultImdsEndpoint);
  const std::string disabled = Env("AWS_EC2_METADATA_DISABLED");
  imds_disabled = disabled == "true" || disabled == "TRUE" || disabled == "True";
}

Result<Credentials> ParseSharedCredentials(std::string_view text, std::string_view profile) {
  // The format is a plain INI subset (AWS SDKs and Tools Reference Guide, "Shared config and
  // credentials files"); no INI library is among the project's dependencies.
  Credentials c;
  bool in_profile = false, found = false;
  std::size_t pos = 0;
  while (pos <= text.size()) {
    std::size_t end = text.find('\n', pos);
    if (end == std::string_view::npos) end = text.size();
    const std::string line = Trim(text.substr(pos, end - pos));
    pos = end + 1;
    if (line.empty() || line[0] == '#' || line[0] == ';') continue;
    if (line.front() == '[') {
      if (line.back() != ']')
        return Fail(Code::kFailedPrecondition, "a section header without ']'");
      in_profile = Trim(std::string_view(line).substr(1, line.size() - 2)) == profile;
      found = found || in_profile;
      continue;
    }
    if (!in_profile) continue;
    const std::size_t eq = line.find('=');
    if (eq == std::string::npos) continue;
    const std::string key = Trim(std::string_view(line).substr(0, eq));
    const std::string value = Trim(std::string_view(line).substr(eq + 1));
    if (key == "aws_access_key_id") c.access_key_id = value;
    if (key == "aws_secret_access_key") c.secret_access_key = value;
    if (key == "aws_session_token") c.session_token = value;
  }
  if (!found) return Fail(Code::kNotFound, "no profile ", profile);
  if (c.access_key_id.empty() || c.secret_access_key.empty()) {
    return Fail(Code::kFailedPrecondition, "profile ", profile,
                " lacks aws_access_key_id or aws_secret_access_key");
  }
  return c;
}

std::unique_ptr<CredentialSource> MakeStaticSource(Credentials c) {
  return std::make_unique<StaticSource>(std::move(c));
}
std::unique_ptr<CredentialSource> MakeWebIdentitySource(const CredentialsConfig& c,
                                                        http::Client& client) {
  return std::make_unique<WebIdentitySource>(c, client);
}
std::unique_ptr<CredentialSource> MakeSharedFileSource(std::string path, std::string profile) {
  return std::make_unique<SharedFileSource>(std::move(path), std::move(profile));
}
std::unique_ptr<CredentialSource> MakeImdsSource(std::string endpoint, http::Client& client) {
  return std::make_unique<ImdsSource>(std::move(endpoint), client);
}

CredentialsProvider::CredentialsProvider(std::vector<std::unique_ptr<CredentialSource>> chain,
                                         std::chrono::seconds refresh_before)
    : chain_(std::move(chain)), refresh_before_(refresh_before) {}

Result<Credentials> CredentialsProvider::Get(const OpContext& ctx) {
  if (ctx.stop.stop_requested()) return Fail(Code::kCancelled, "aws: credentials: cancelled");
  // One fetch at a time; a caller whose deadline passes while another fetches gives up.
  const auto wait = ctx.deadline - Clock::now();
  std::unique_lock lock(mu_, std::defer_lock);
  if (wait <= Clock::duration::zero() || !lock.try_lock_for(wait)) {
    return Fail(Code::kDeadlineExceeded, "aws: credentials: deadline passed");
  }
  const auto now = SysClock::now();
  if (cached_ && (!cached_->expiration || *cached_->expiration - refresh_before_ > now))
    return cached_->credentials;

  const auto fetch = [&](CredentialSource& source) {
    ++fetches_;
    return source.Fetch(ctx);
  };
  Result<TimedCredentials> got = Fail(Code::kNotFound, "");
  if (chosen_ != nullptr) {
    got = fetch(*chosen_);
  } else {
    std::string tried;
    for (const auto& source : chain_) {
      got = fetch(*source);
      if (got || got.error().code != Code::kNotFound) {
        chosen_ = source.get();
        break;
      }
      tried += tried.empty() ? "" : ", ";
      tried += source->Name();
    }
    if (chosen_ == nullptr) {
      return Fail(
          Code::kFailedPrecondition,
          "aws: no credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or "
          "AWS_WEB_IDENTITY_TOKEN_FILE and AWS_ROLE_ARN, or a profile in the shared credentials "
          "file (AWS_SHARED_CREDENTIALS_FILE, AWS_PROFILE), or run with an instance role (tried: ",
          tried.empty() ? "none" : tried, ")");
    }
  }
  if (!got) {
    // Still valid, only due for refresh: keep using them (the SDKs' advisory refresh window).
    if (cached_ && cached_->expiration && *cached_->expiration > now) {
      spdlog::warn(
          "aws: refreshing credentials from {} failed, using the current ones until they expire: "
          "{}",
          chosen_->Name(), got.error().message);
      return cached_->credentials;
    }
    return std::unexpected(got.error());
  }
  if (got->expiration) {
    spdlog::debug("aws: credentials from {} valid until {}s from now", chosen_->Name(),
                  std::chrono::duration_cast<std::chrono::seconds>(*got->expiration - now).count());
  }
  cached_ = std::move(*got);
  return cached_->credentials;
}

void CredentialsProvider::Invalidate() {
  std::lock_guard lock(mu_);
  cached_.reset();
}

std::string CredentialsProvider::SourceName() const {
  std::lock_guard lock(mu_);
  return chosen_ ? std::string(chosen_->Name()) : "";
}

int CredentialsProvider::fetches() const {
  std::lock_guard lock(mu_);
  return fetches_;
}

std::unique_ptr<CredentialsProvider> MakeDefaultCredentialsProvider(const CredentialsConfig& c,
                                                                    http::Client& client) {
  std::vector<std::unique_ptr<CredentialSource>> chain;
  if (!c.access_key_id.empty() && !c.secret_access_key.empty()) {
    chain.push_back(MakeStaticSource({c.access_key_id, c.secret_access_key, c.session_token}));
  }
  if (!c.web_identity_token_file.empty() && !c.role_arn.empty())
    chain.push_back(MakeWebIdentitySource(c, client));
  if (!c.shared_credentials_file.empty())
    chain.push_back(MakeSharedFileSource(c.shared_credentials_file, c.profile));
  if (!c.imds_disabled) chain.push_back(MakeImdsSource(c.imds_endpoint, client));
  return std::make_unique<CredentialsProvider>(std::move(chain));
}

}  // namespace pp::providers::aws
