// The azure provider: one Azure confidential VM per sandbox, made through Azure Resource Manager's
// REST API (libcurl, no SDK).
//
// CreateInstance PUTs virtualMachines/{name} (api-version 2022-11-01, as cloud-api-adaptor's
// armcompute SDK) with securityType ConfidentialVM, vTPM, secure boot as ENABLE_SECURE_BOOT, the
// OS disk VMGuestStateOnly, base64 user-data (at most 64 KiB encoded), owner tags and the NIC
// declared inline; the NIC ("<name>-net"), OS disk ("<name>-disk") and public IP carry
// deleteOption Delete, so they die with the VM. The size is the first of SelectInstanceTypes'
// candidates that Azure has capacity for (SkuNotAvailable, AllocationFailed, ... move on to the
// next; the error names every size tried). It waits for provisioningState Succeeded — through the
// shared BatchPoller, one ARM list of the resource group for every create in flight, or, with
// batch polling off, the operation's Azure-AsyncOperation URL — then reads the private address
// from the NIC. Any failure deletes the VM, its NIC and its disk before returning.
//
// The instance id is the VM's resource id. DeleteInstance deletes the VM (an LRO polled to the
// end), then makes sure its NIC and disk are gone. Owners are tags: peerpods.node,
// peerpods.sandbox (plus peerpods.pod, peerpods.namespace for people), and ListInstances lists the
// resource group's VMs (following nextLink) and keeps the node's.
//
// Thread-safe: every call may run on several threads at once.
#pragma once

#include <chrono>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "providers/azure/token.h"
#include "providers/http/retry.h"
#include "providers/provider.h"

namespace pp::providers::azure {

inline constexpr char kNodeTag[] = "peerpods.node";
inline constexpr char kSandboxTag[] = "peerpods.sandbox";
inline constexpr char kPodTag[] = "peerpods.pod";
inline constexpr char kNamespaceTag[] = "peerpods.namespace";
inline constexpr char kComputeApiVersion[] = "2022-11-01";
inline constexpr char kNetworkApiVersion[] = "2023-05-01";
inline constexpr char kDiskApiVersion[] = "2022-07-02";
inline constexpr std::size_t kMaxUserDataBase64 = 64 * 1024;

struct AzureConfig {
  // Credentials: a client secret selects client credentials; else a federated token file
  // selects workload identity; else the managed identity of the host (IMDS).
  std::string client_id;
  std::string client_secret;
  std::string tenant_id;
  std::string federated_token_file;

  std::string subscription_id;
  std::string region;
  std::string resource_group;
  std::string zone;
  std::string instance_size = "Standard_DC2as_v5";
  std::vector<std::string> instance_sizes;
  std::string subnet_id;
  std::string nsg_id;
  std::string image_id;
  std::string ssh_key_path;  // empty: a throwaway RSA key is made (Azure wants one; as CAA does)
  std::string ssh_username = "peerpod";
  bool disable_cvm = false;
  bool enable_secure_boot = false;
  bool use_public_ip = false;
  unsigned root_volume_gib = 0;
  std::map<std::string, std::string> tags;  // TAGS
  bool force_delete = false;

  // Endpoints (sovereign clouds, private endpoints, tests) and the CA bundle that verifies them.
  std::string management_endpoint = "https://management.azure.com";
  std::string management_audience;  // token resource; empty: the management endpoint
  std::string authority_host = "https://login.microsoftonline.com";
  std::string imds_endpoint = "http://169.254.169.254";
  std::string ca_bundle;
  std::size_t max_response_bytes = 16u << 20;

  // Polling: between LRO polls without Retry-After, and between the batched list polls.
  std::chrono::milliseconds poll_interval{5000};
  bool batch_poll = true;
  std::chrono::seconds cleanup_timeout{600};  // the budget of deleting what a failed create made
  std::chrono::seconds token_refresh_margin{300};
  http::RetryPolicy retry;
  // For tests: the wall clock tokens expire by.
  std::function<std::chrono::system_clock::time_point()> now = [] {
    return std::chrono::system_clock::now();
  };
};

// Checks the configuration (messages name the flag and variable).
Result<void> ValidateConfig(const AzureConfig& config);

// The credential source `config` selects.
TokenKind SelectTokenKind(const AzureConfig& config);

// Parses TAGS ("k1=v1,k2=v2").
Result<std::map<std::string, std::string>> ParseTags(std::string_view text);

class AzureProvider : public Provider {
 public:
  // INVALID_ARGUMENT when ValidateConfig fails, FAILED_PRECONDITION for an unreadable SSH key.
  static Result<std::unique_ptr<AzureProvider>> Create(AzureConfig config);
  ~AzureProvider() override;

  Result<Instance> CreateInstance(const InstanceSpec& spec, const OpContext& ctx) override;
  Result<void> DeleteInstance(const std::string& instance_id, const OpContext& ctx) override;
  Result<void> DeleteLeftovers(const std::string& name, const Owner& owner,
                               const OpContext& ctx) override;
  Result<std::vector<Instance>> ListInstances(const std::string& node,
                                              const OpContext& ctx) override;
  Result<void> Verify(const OpContext& ctx) override;

  // For tests and the bench.
  std::size_t token_fetches() const;
  std::size_t batch_polls() const;

 private:
  struct Impl;
  explicit AzureProvider(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace pp::providers::azure
