// The EC2 instance metadata service, version 2 (EC2 User Guide, "Use the Instance Metadata
// Service to access instance metadata"): a session token from PUT /latest/api/token, then GETs
// under /latest/meta-data/ carrying it. Used for instance-role credentials and, as CAA does, for
// the region, subnet, security groups and key pair of the node the adaptor runs on when the
// configuration leaves them out.
#pragma once

#include <string>
#include <string_view>

#include "common/base/error.h"
#include "providers/http/client.h"
#include "providers/provider.h"

namespace pp::providers::aws {

inline constexpr std::string_view kDefaultImdsEndpoint = "http://169.254.169.254";

class ImdsSession {
 public:
  ImdsSession(std::string endpoint, http::Client& client);

  // Gets a session token. NOT_FOUND when nothing answers at the endpoint (not on EC2), other
  // errors when something answers wrongly; a caller whose context ended gets that.
  Result<void> Open(const OpContext& ctx);
  // GET /latest/meta-data/<path> (after Open); NOT_FOUND on 404.
  Result<std::string> Get(std::string_view path, const OpContext& ctx);

  const std::string& endpoint() const { return endpoint_; }

 private:
  std::string endpoint_;
  http::Client& client_;
  std::string token_;
};

// What CAA reads from IMDS when the configuration does not say (src/cloud-providers/aws/imds.go).
struct ImdsNodeConfig {
  std::string region;
  std::string subnet_id;
  std::vector<std::string> security_group_ids;
  std::string key_name;
};

// Reads the node's region, primary interface's subnet and security groups and first key pair.
// Missing items stay empty; NOT_FOUND when there is no IMDS at all.
Result<ImdsNodeConfig> ReadNodeConfig(ImdsSession& imds, const OpContext& ctx);

}  // namespace pp::providers::aws
