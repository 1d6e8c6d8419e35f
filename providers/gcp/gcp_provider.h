// The gcp provider: pod VMs as Compute Engine instances (confidential VMs with SEV, SEV-SNP or
// TDX unless DISABLECVM) over the Compute REST API v1, with no Google SDK.
//
// CreateInstance: instances.insert (requestId per candidate, reused across retries) of each
// candidate machine type (providers/instance_types.h, best first), in each configured zone in
// turn, until one is
// accepted and its operation ends DONE without a capacity error (ZONE_RESOURCE_POOL_EXHAUSTED,
// QUOTA_EXCEEDED, ...); then waits, through one BatchPoller shared by all creates (one
// instances.list per zone per poll), for RUNNING with an address. Any failure deletes what the
// call made, with a budget of its own (the caller's may have ended); an insert whose answer was
// lost (cut by a stop or the deadline, or failing) is sent again with its requestId to learn its
// operation, so that an instance the API made anyway is found and deleted too.
//
// Instance ids are "<zone>/<name>": DeleteInstance needs nothing else. A bare name (CAA's id) is
// taken to be in the first configured zone.
//
// Owner: labels peerpods-node and peerpods-sandbox (sanitised to label rules, for list filters)
// and metadata items of the same names with the exact values (what ListInstances reports).
#pragma once

#include <chrono>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "providers/http/retry.h"
#include "providers/provider.h"

namespace pp::providers::gcp {

struct GcpConfig {
  // CAA's flags and variables (src/cloud-providers/gcp/manager.go).
  std::string
      credentials;  // GCP_CREDENTIALS: the key's JSON, or a path to it; empty: metadata server
  std::string project_id;  // GCP_PROJECT_ID
  std::vector<std::string>
      zones;               // GCP_ZONE: one zone, or several comma-separated (tried in order)
  std::string image_name;  // PODVM_IMAGE_NAME
  std::string machine_type = "e2-medium";   // GCP_MACHINE_TYPE
  std::vector<std::string> machine_types;   // GCP_INSTANCE_TYPES
  std::string network;                      // GCP_NETWORK
  std::string subnetwork;                   // GCP_SUBNETWORK
  std::string disk_type = "pd-standard";    // GCP_DISK_TYPE
  bool disable_cvm = false;                 // DISABLECVM
  std::string confidential_type;            // GCP_CONFIDENTIAL_TYPE: SEV, SEV_SNP, TDX
  unsigned root_volume_size = 10;           // ROOT_VOLUME_SIZE (GiB; the image's size when larger)
  bool use_public_ip = false;               // USE_PUBLIC_IP
  std::map<std::string, std::string> tags;  // TAGS: k=v,... (added as labels)
  // Endpoints (ours): sovereign clouds, Private Service Connect, emulators.
  std::string
      compute_endpoint;  // GCP_COMPUTE_ENDPOINT; empty: https://compute.googleapis.com/compute/v1
  std::string token_endpoint;  // GCP_TOKEN_ENDPOINT; empty: the key's token_uri
  std::string metadata_host;   // GCE_METADATA_HOST; empty: metadata.google.internal
  std::string ca_bundle;       // GCP_CA_BUNDLE; empty: the system store
  std::chrono::milliseconds poll_interval{2000};  // GCP_POLL_INTERVAL
  bool batch_poll = true;  // GCP_BATCH_POLL; false: one poll loop per instance (for comparison)
  // Tuning for tests.
  http::RetryPolicy retry;
  std::chrono::milliseconds op_poll_initial{500};
  std::chrono::milliseconds op_poll_max{5000};
  std::size_t max_response_bytes = 16u << 20;
  std::chrono::seconds cleanup_budget{600};  // for deletes after a failure (CAA's caller: 10 min)
};

// Checks the configuration; messages name the flag and variable.
Result<void> ValidateConfig(const GcpConfig& config);

// Validates, reads the credentials and makes the provider (no network call: Verify makes them).
Result<std::unique_ptr<Provider>> MakeGcpProvider(GcpConfig config);

std::unique_ptr<ProviderFactory> MakeGcpFactory();

}  // namespace pp::providers::gcp
