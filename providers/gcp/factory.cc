// The gcp provider's command line: CAA's flags and variables (src/cloud-providers/gcp/manager.go)
// plus the endpoints, CA bundle and poll interval, and their validation.
#include <CLI/CLI.hpp>
#include <set>

#include "common/base/go_flags.h"
#include "providers/gcp/body.h"
#include "providers/gcp/gcp_provider.h"

namespace pp::providers::gcp {
namespace {

std::vector<std::string> SplitList(std::string_view text) {
  std::vector<std::string> out;
  std::string item;
  for (std::size_t i = 0; i <= text.size(); ++i) {
    if (i == text.size() || text[i] == ',') {
      const auto b = item.find_first_not_of(" \t");
      const auto e = item.find_last_not_of(" \t");
      if (b != std::string::npos) out.push_back(item.substr(b, e - b + 1));
      item.clear();
    } else {
      item.push_back(text[i]);
    }
  }
  return out;
}

Result<std::map<std::string, std::string>> ParseTags(std::string_view text) {
  std::map<std::string, std::string> tags;
  for (const auto& item : SplitList(text)) {
    const auto eq = item.find('=');
    if (eq == std::string::npos) {
      return Fail(Code::kInvalidArgument, "gcp: -tags (TAGS) item \"", item, "\" is not key=value");
    }
    tags[item.substr(0, eq)] = item.substr(eq + 1);
  }
  return tags;
}

class GcpFactory final : public ProviderFactory {
 public:
  std::string_view Name() const override { return "gcp"; }
  std::string_view Description() const override {
    return "pod VMs as Compute Engine confidential VMs (SEV, SEV-SNP, TDX) over the Compute REST "
           "API";
  }

  void AddFlags(CLI::App& app) override {
    GcpConfig& c = config_;
    app.add_option("--gcp-credentials", c.credentials,
                   "service-account key JSON, or the path of a key file "
                   "(empty: GOOGLE_APPLICATION_CREDENTIALS, else the metadata server)")
        ->envname("GCP_CREDENTIALS");
    app.add_option("--gcp-project-id", c.project_id, "GCP project (empty: the key's project_id)")
        ->envname("GCP_PROJECT_ID");
    app.add_option("--zone", zones_,
                   "zone, or zones comma-separated, tried in order when one is out of capacity")
        ->envname("GCP_ZONE");
    app.add_option("--image-name", c.image_name,
                   "pod VM image: a name in the project, projects/<p>/global/images/<i> "
                   "or a URL")
        ->envname("PODVM_IMAGE_NAME");
    app.add_option("--machine-type", c.machine_type, "default machine type")
        ->envname("GCP_MACHINE_TYPE")
        ->capture_default_str();
    app.add_option("--machine-types", machine_types_, "allowed machine types, comma-separated")
        ->envname("GCP_INSTANCE_TYPES");
    app.add_option("--network", c.network,
                   "network of the pod VMs (a name, global/networks/<n> or a URL)")
        ->envname("GCP_NETWORK");
    app.add_option("--subnetwork", c.subnetwork,
                   "subnetwork (custom-mode networks): a name or a path")
        ->envname("GCP_SUBNETWORK");
    app.add_option("--disk-type", c.disk_type,
                   "boot disk type (pd-standard, pd-ssd, pd-balanced, ...)")
        ->envname("GCP_DISK_TYPE")
        ->capture_default_str();
    app.add_option("--disable-cvm", c.disable_cvm, "create plain VMs (true/false)")
        ->envname("DISABLECVM")
        ->capture_default_str();
    app.add_option("--confidential-type", c.confidential_type,
                   "SEV, SEV_SNP or TDX (needed unless -disable-cvm)")
        ->envname("GCP_CONFIDENTIAL_TYPE");
    app.add_option("--root-volume-size", c.root_volume_size,
                   "boot disk size in GiB (at least the image's)")
        ->envname("ROOT_VOLUME_SIZE")
        ->capture_default_str();
    app.add_option("--use-public-ip", c.use_public_ip,
                   "reach the pod VM on its external address (true/false)")
        ->envname("USE_PUBLIC_IP")
        ->capture_default_str();
    app.add_option("--tags", tags_, "labels added to the pod VMs: key1=value1,key2=value2")
        ->envname("TAGS");
    app.add_option("--compute-endpoint", c.compute_endpoint,
                   "Compute API root (default https://compute.googleapis.com/compute/v1)")
        ->envname("GCP_COMPUTE_ENDPOINT");
    app.add_option("--token-endpoint", c.token_endpoint,
                   "OAuth token endpoint (default: the key's token_uri)")
        ->envname("GCP_TOKEN_ENDPOINT");
    app.add_option("--metadata-host", c.metadata_host,
                   "metadata server, host[:port] or a URL "
                   "(default metadata.google.internal)")
        ->envname("GCE_METADATA_HOST");
    app.add_option("--gcp-ca-bundle", c.ca_bundle,
                   "PEM CA bundle for the endpoints (default: the system's)")
        ->envname("GCP_CA_BUNDLE");
    app.add_option("--gcp-poll-interval", poll_interval_,
                   "how often starting instances are polled (Go duration)")
        ->envname("GCP_POLL_INTERVAL")
        ->capture_default_str();
    app.add_option("--gcp-batch-poll", c.batch_poll,
                   "wait for new instances with one instances.list per zone for all of them")
        ->envname("GCP_BATCH_POLL")
        ->capture_default_str();
  }

  Result<std::unique_ptr<Provider>> Create() override {
    GcpConfig c = config_;
    c.zones = SplitList(zones_);
    c.machine_types = SplitList(machine_types_);
    auto tags = ParseTags(tags_);
    if (!tags) return std::unexpected(tags.error());
    c.tags = std::move(*tags);
    auto interval = ParseGoDuration(poll_interval_);
    if (!interval || *interval < std::chrono::milliseconds(10)) {
      return Fail(Code::kInvalidArgument, "gcp: -gcp-poll-interval (GCP_POLL_INTERVAL) \"",
                  poll_interval_, "\" is not a Go duration of at least 10ms");
    }
    c.poll_interval = std::chrono::duration_cast<std::chrono::milliseconds>(*interval);
    return MakeGcpProvider(std::move(c));
  }

 private:
  GcpConfig config_;
  std::string zones_;
  std::string machine_types_;
  std::string tags_;
  std::string poll_interval_ = "2s";
};

}  // namespace

Result<void> ValidateConfig(const GcpConfig& c) {
  if (c.project_id.empty()) {
    return Fail(
        Code::kInvalidArgument,
        "gcp: -gcp-project-id (GCP_PROJECT_ID) is empty and the credentials name no project");
  }
  if (c.zones.empty()) return Fail(Code::kInvalidArgument, "gcp: -zone (GCP_ZONE) is empty");
  std::set<std::string> seen;
  for (const auto& zone : c.zones) {
    if (!IsValidZoneName(zone)) {
      return Fail(Code::kInvalidArgument, "gcp: -zone (GCP_ZONE) \"", zone,
                  "\" is not a zone like us-central1-a");
    }
    if (!seen.insert(zone).second)
      return Fail(Code::kInvalidArgument, "gcp: -zone (GCP_ZONE) names ", zone, " twice");
  }
  if (c.network.empty())
    return Fail(Code::kInvalidArgument, "gcp: -network (GCP_NETWORK) is empty");
  if (c.machine_type.empty())
    return Fail(Code::kInvalidArgument, "gcp: -machine-type (GCP_MACHINE_TYPE) is empty");
  if (c.disk_type.empty())
    return Fail(Code::kInvalidArgument, "gcp: -disk-type (GCP_DISK_TYPE) is empty");
  if (!c.disable_cvm && c.confidential_type != "SEV" && c.confidential_type != "SEV_SNP" &&
      c.confidential_type != "TDX") {
    return Fail(
        Code::kInvalidArgument, "gcp: -confidential-type (GCP_CONFIDENTIAL_TYPE) \"",
        c.confidential_type,
        "\" must be SEV, SEV_SNP or TDX, or set -disable-cvm (DISABLECVM=true) for plain VMs");
  }
  if (c.root_volume_size > 65536) {
    return Fail(Code::kInvalidArgument, "gcp: -root-volume-size (ROOT_VOLUME_SIZE) is in GiB; ",
                std::to_string(c.root_volume_size), " is too large");
  }
  for (const auto& [k, v] : c.tags) {
    if (!IsValidLabelKey(k) || !IsValidLabelValue(v)) {
      return Fail(Code::kInvalidArgument, "gcp: -tags (TAGS) \"", k, "=", v,
                  "\" is not a valid GCP label (keys: a lower-case letter then [a-z0-9_-], values "
                  "[a-z0-9_-], "
                  "at most 63 characters each)");
    }
    if (k == kNodeLabel || k == kSandboxLabel) {
      return Fail(Code::kInvalidArgument, "gcp: -tags (TAGS) may not set ", k,
                  ": the provider's owner label");
    }
  }
  if (c.tags.size() > 62)
    return Fail(Code::kInvalidArgument, "gcp: -tags (TAGS) has more than 62 labels");
  for (const auto& t : c.machine_types) {
    if (t.empty() || t.find('/') != std::string::npos) {
      return Fail(Code::kInvalidArgument, "gcp: -machine-types (GCP_INSTANCE_TYPES) item \"", t,
                  "\" is not a machine type");
    }
  }
  if (c.machine_type.find('/') != std::string::npos) {
    return Fail(Code::kInvalidArgument, "gcp: -machine-type (GCP_MACHINE_TYPE) \"", c.machine_type,
                "\" is not a machine type");
  }
  return {};
}

std::unique_ptr<ProviderFactory> MakeGcpFactory() { return std::make_unique<GcpFactory>(); }

}  // namespace pp::providers::gcp
