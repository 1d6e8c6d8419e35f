// GceFake: tests/providers/fakes/gce_fake.py started for a test binary, with a service-account key
// made for it (RSA 2048, the fake holds its public half), and configs of the gcp provider that
// point at it. Test-only.
#pragma once

#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "providers/gcp/gcp_provider.h"
#include "tests/providers/fakes/fake_process.h"

namespace pp::providers::gcp::testing {

inline constexpr const char* kProject = "test-project";
inline constexpr const char* kEmail = "podvm-maker@test-project.iam.gserviceaccount.com";

// An RSA key pair as PEM (private PKCS#8, public SubjectPublicKeyInfo).
struct KeyPair {
  std::string private_pem;
  std::string public_pem;
};
KeyPair MakeRsaKey();

// A service-account key file's JSON.
std::string KeyJson(const KeyPair& key, const std::string& token_uri,
                    const std::string& email = kEmail);

// Checks `json` against Google's model of the Compute API (compute_model.py over
// testdata/compute_v1_subset.proto): the violations, one a line; empty when it fits.
std::string ComputeModelViolations(const std::string& message, const std::string& json);

class GceFake {
 public:
  explicit GceFake(std::vector<std::string> extra_args = {});
  ~GceFake();

  bool running() const { return fake_ && fake_->running(); }
  std::string url() const { return fake_->url(); }
  std::string ca_bundle() const { return fake_->ca_bundle(); }
  const KeyPair& key() const { return key_; }
  const std::string& dir() const { return dir_; }

  // A key whose token_uri is the fake's /token.
  std::string key_json() const;
  // A provider configuration against the fake: zone us-central1-a, SEV_SNP on n2d-standard-2,
  // fast polls, the key inline.
  GcpConfig Config() const;

  // POST /_gce/config (stuck, exhausted, page_size) and /_gce/revoke.
  void Configure(const nlohmann::json& config);
  void RevokeTokens();
  // Resets faults and configuration to the defaults.
  void Reset();
  void SetFaults(const nlohmann::json& rules);

  nlohmann::json Stats();
  int Calls(const std::string& action);
  // Instances the fake holds whose name starts with `prefix`.
  std::vector<nlohmann::json> Instances(const std::string& prefix);

 private:
  std::string Post(const std::string& path, const std::string& body);

  std::string dir_;
  KeyPair key_;
  std::unique_ptr<pp::testing::FakeCloudProcess> fake_;
  std::unique_ptr<http::Client> control_;
};

// The binary's one fake, started on first use and stopped at exit.
GceFake& SharedFake();

}  // namespace pp::providers::gcp::testing
