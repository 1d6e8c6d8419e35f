// AWS credentials: the sources of the SDKs' default chain and a thread-safe provider that caches
// what a source gave and refreshes it before it expires.
//
// Sources, in the order of the AWS SDKs' default chain (AWS SDKs and Tools Reference Guide,
// "Standardized credential providers"; botocore/credentials.py create_credential_resolver):
//  1. static keys: AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN (or CAA's flags);
//  2. web identity: AWS_WEB_IDENTITY_TOKEN_FILE + AWS_ROLE_ARN [+ AWS_ROLE_SESSION_NAME] through
//     STS AssumeRoleWithWebIdentity, an unsigned call (how EKS pods get credentials, IRSA); the
//     token file is read again at every refresh (kubelet rotates it);
//  3. the shared credentials file: AWS_SHARED_CREDENTIALS_FILE, default ~/.aws/credentials,
//     profile AWS_PROFILE (or -aws-profile), default "default";
//  4. the EC2 instance role through IMDSv2 (PUT /latest/api/token, then
//     GET /latest/meta-data/iam/security-credentials/[<role>]), at
//     AWS_EC2_METADATA_SERVICE_ENDPOINT (default http://169.254.169.254), unless
//     AWS_EC2_METADATA_DISABLED=true.
// A source that is not configured is skipped; the first that is configured is used for the
// provider's life (as the SDKs do), and its errors are returned, not hidden by a later source.
//
// Secrets (keys, tokens, the web identity token) never reach logs or error messages.
#pragma once

#include <chrono>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "common/base/error.h"
#include "common/base/timed_mutex.h"
#include "providers/aws/sigv4.h"
#include "providers/http/client.h"
#include "providers/provider.h"

namespace pp::providers::aws {

struct TimedCredentials {
  Credentials credentials;
  std::optional<std::chrono::system_clock::time_point> expiration;  // nullopt: long-term keys
};

class CredentialSource {
 public:
  virtual ~CredentialSource() = default;
  virtual std::string_view Name() const = 0;
  // NOT_FOUND when this source is not configured (the chain goes on); any other error is this
  // source's failure.
  virtual Result<TimedCredentials> Fetch(const OpContext& ctx) = 0;
};

// Where the chain looks; Environment() fills it from the process environment.
struct CredentialsConfig {
  std::string access_key_id;
  std::string secret_access_key;
  std::string session_token;
  std::string web_identity_token_file;
  std::string role_arn;
  std::string role_session_name;
  std::string sts_endpoint;  // https://sts.<region>.amazonaws.com, or AWS_ENDPOINT_URL_STS
  std::string shared_credentials_file;
  std::string profile;
  std::string imds_endpoint;  // empty: AWS_EC2_METADATA_SERVICE_ENDPOINT, else 169.254.169.254
  bool imds_disabled = false;

  // Reads the variables named above (and HOME for the default credentials file); fields already
  // set (from flags) are kept.
  void FromEnvironment(const std::string& region);
};

std::unique_ptr<CredentialSource> MakeStaticSource(Credentials credentials);
std::unique_ptr<CredentialSource> MakeWebIdentitySource(const CredentialsConfig& config,
                                                        http::Client& client);
std::unique_ptr<CredentialSource> MakeSharedFileSource(std::string path, std::string profile);
std::unique_ptr<CredentialSource> MakeImdsSource(std::string endpoint, http::Client& client);

// The credentials of one profile in an AWS shared credentials file (INI: [profile] sections,
// "key = value" lines, '#' and ';' comments). NOT_FOUND when the profile is absent.
Result<Credentials> ParseSharedCredentials(std::string_view text, std::string_view profile);

class CredentialsProvider {
 public:
  // Credentials are refreshed when they expire within `refresh_before` (the SDKs refresh a few
  // minutes early; 5 minutes as botocore's advisory refresh).
  explicit CredentialsProvider(std::vector<std::unique_ptr<CredentialSource>> chain,
                               std::chrono::seconds refresh_before = std::chrono::minutes(5));

  // Current credentials, fetched or refreshed when needed. Thread-safe: one fetch at a time,
  // other callers wait for it. FAILED_PRECONDITION when no source is configured.
  Result<Credentials> Get(const OpContext& ctx);
  // Forgets the cached credentials (the cloud said they expired): the next Get fetches anew.
  void Invalidate();
  // The name of the source in use ("" before the first successful Get).
  std::string SourceName() const;
  // Fetches made so far (for tests).
  int fetches() const;

 private:
  std::vector<std::unique_ptr<CredentialSource>> chain_;
  const std::chrono::seconds refresh_before_;
  mutable pp::TimedMutex mu_;  // guards everything below; held during a fetch
  std::optional<TimedCredentials> cached_;
  CredentialSource* chosen_ = nullptr;
  int fetches_ = 0;
};

// The default chain for `config` (sources in the order above; only the configured ones).
std::unique_ptr<CredentialsProvider> MakeDefaultCredentialsProvider(const CredentialsConfig& config,
                                                                    http::Client& client);

}  // namespace pp::providers::aws
