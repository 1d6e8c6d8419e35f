#include "providers/azure/factory.h"

#include <CLI/CLI.hpp>

#include "common/base/go_flags.h"
#include "providers/azure/azure_provider.h"

namespace pp::providers::azure {
namespace {

std::vector<std::string> SplitList(const std::string& text) {
  std::vector<std::string> out;
  std::size_t start = 0;
  while (start <= text.size()) {
    const std::size_t comma = std::min(text.find(',', start), text.size());
    std::string item = text.substr(start, comma - start);
    while (!item.empty() && item.front() == ' ') item.erase(item.begin());
    while (!item.empty() && item.back() == ' ') item.pop_back();
    if (!item.empty()) out.push_back(std::move(item));
    start = comma + 1;
  }
  return out;
}

class AzureFactory final : public ProviderFactory {
 public:
  std::string_view Name() const override { return "azure"; }
  std::string_view Description() const override {
    return "Azure confidential VMs (SEV-SNP, TDX) through Azure Resource Manager";
  }

  void AddFlags(CLI::App& app) override {
    AzureConfig& c = config_;
    // cloud-api-adaptor's flags, with its environment names.
    app.add_option("--clientid", c.client_id, "client (application) id")
        ->envname("AZURE_CLIENT_ID");
    app.add_option("--secret", c.client_secret,
                   "client secret (empty: workload or managed identity)")
        ->envname("AZURE_CLIENT_SECRET");
    app.add_option("--tenantid", c.tenant_id, "tenant id")->envname("AZURE_TENANT_ID");
    app.add_option("--subscriptionid", c.subscription_id, "subscription id")
        ->envname("AZURE_SUBSCRIPTION_ID");
    app.add_option("--region", c.region, "region of the VMs")->envname("AZURE_REGION");
    app.add_option("--resourcegroup", c.resource_group, "resource group of the VMs")
        ->envname("AZURE_RESOURCE_GROUP");
    app.add_option("--instance-size", c.instance_size, "default VM size")
        ->envname("AZURE_INSTANCE_SIZE")
        ->capture_default_str();
    app.add_option("--instance-sizes", sizes_, "VM sizes pods may use, comma separated")
        ->envname("AZURE_INSTANCE_SIZES");
    app.add_option("--zone", c.zone, "availability zone (empty: regional)");
    app.add_option("--subnetid", c.subnet_id, "subnet resource id of the VMs' NIC")
        ->envname("AZURE_SUBNET_ID");
    app.add_option("--securitygroupid", c.nsg_id, "network security group resource id")
        ->envname("AZURE_NSG_ID");
    app.add_option("--imageid", c.image_id,
                   "pod VM image: resource id or /CommunityGalleries/... id")
        ->envname("AZURE_IMAGE_ID");
    app.add_option("--ssh-key-path", c.ssh_key_path,
                   "SSH public key for the VMs (empty: a throwaway key)");
    app.add_option("--ssh-username", c.ssh_username, "admin user of the VMs")
        ->envname("SSH_USERNAME")
        ->capture_default_str();
    app.add_option("--disable-cvm", c.disable_cvm, "create plain VMs instead of confidential VMs")
        ->envname("DISABLECVM")
        ->capture_default_str();
    app.add_option("--enable-secure-boot", c.enable_secure_boot, "UEFI secure boot in the VMs")
        ->envname("ENABLE_SECURE_BOOT")
        ->capture_default_str();
    app.add_option("--use-public-ip", c.use_public_ip, "give each VM a public IP and connect to it")
        ->envname("USE_PUBLIC_IP")
        ->capture_default_str();
    app.add_option("--root-volume-size", c.root_volume_gib, "OS disk size in GB (0: the image's)")
        ->envname("ROOT_VOLUME_SIZE")
        ->check(CLI::Range(0, 4095))
        ->capture_default_str();
    app.add_option("--tags", tags_, "tags of the VMs, key=value pairs, comma separated")
        ->envname("TAGS");
    // Additions: credentials, endpoints and tuning.
    app.add_option("--federated-token-file", c.federated_token_file, "workload identity token file")
        ->envname("AZURE_FEDERATED_TOKEN_FILE");
    app.add_option("--management-endpoint", c.management_endpoint,
                   "Azure Resource Manager endpoint")
        ->envname("AZURE_RESOURCE_MANAGER_ENDPOINT")
        ->capture_default_str();
    app.add_option("--management-audience", c.management_audience,
                   "token audience for ARM (empty: the management endpoint)")
        ->envname("AZURE_RESOURCE_MANAGER_AUDIENCE");
    app.add_option("--authority-host", c.authority_host, "Microsoft Entra ID login endpoint")
        ->envname("AZURE_AUTHORITY_HOST")
        ->capture_default_str();
    app.add_option("--imds-endpoint", c.imds_endpoint,
                   "instance metadata service (managed identity)")
        ->envname("AZURE_IMDS_ENDPOINT")
        ->capture_default_str();
    app.add_option("--ca-bundle", c.ca_bundle,
                   "PEM CA bundle for every Azure endpoint (empty: system store)")
        ->envname("AZURE_CA_BUNDLE");
    app.add_option("--poll-interval", poll_,
                   "between polls of long-running operations (Go duration)")
        ->envname("AZURE_POLL_INTERVAL")
        ->capture_default_str();
    app.add_option("--batch-poll", c.batch_poll,
                   "wait for new VMs with one list call for all of them")
        ->envname("AZURE_BATCH_POLL")
        ->capture_default_str();
    app.add_option("--force-delete", c.force_delete, "delete VMs with forceDeletion=true")
        ->envname("AZURE_FORCE_DELETE")
        ->capture_default_str();
  }

  Result<std::unique_ptr<Provider>> Create() override {
    AzureConfig c = config_;
    c.instance_sizes = SplitList(sizes_);
    auto tags = ParseTags(tags_);
    if (!tags) return std::unexpected(tags.error());
    c.tags = std::move(*tags);
    auto poll = ParseGoDuration(poll_);
    if (!poll || *poll < std::chrono::milliseconds(1)) {
      return Fail(Code::kInvalidArgument, "azure: -poll-interval (AZURE_POLL_INTERVAL) '", poll_,
                  "' is not a positive Go duration like 5s");
    }
    c.poll_interval = std::chrono::duration_cast<std::chrono::milliseconds>(*poll);
    auto provider = AzureProvider::Create(std::move(c));
    if (!provider) return std::unexpected(provider.error());
    return std::unique_ptr<Provider>(std::move(*provider));
  }

 private:
  AzureConfig config_;
  std::string sizes_;
  std::string tags_;
  std::string poll_ = "5s";
};

bool HttpsUrl(const std::string& url) { return url.starts_with("https://") && url.size() > 8; }

}  // namespace

TokenKind SelectTokenKind(const AzureConfig& c) {
  if (!c.client_secret.empty()) return TokenKind::kClientSecret;
  if (!c.federated_token_file.empty()) return TokenKind::kWorkloadIdentity;
  return TokenKind::kManagedIdentity;
}

Result<std::map<std::string, std::string>> ParseTags(std::string_view text) {
  std::map<std::string, std::string> tags;
  for (const std::string& pair : SplitList(std::string(text))) {
    const auto eq = pair.find('=');
    if (eq == std::string::npos || eq == 0) {
      return Fail(Code::kInvalidArgument, "azure: -tags (TAGS) entry '", pair,
                  "' is not key=value");
    }
    tags[pair.substr(0, eq)] = pair.substr(eq + 1);
  }
  return tags;
}

Result<void> ValidateConfig(const AzureConfig& c) {
  const auto required = [](const std::string& v, const char* what) -> Result<void> {
    if (v.empty()) return Fail(Code::kInvalidArgument, "azure: ", what, " is empty");
    return {};
  };
  for (auto check : {required(c.subscription_id, "-subscriptionid (AZURE_SUBSCRIPTION_ID)"),
                     required(c.region, "-region (AZURE_REGION)"),
                     required(c.resource_group, "-resourcegroup (AZURE_RESOURCE_GROUP)"),
                     required(c.subnet_id, "-subnetid (AZURE_SUBNET_ID)"),
                     required(c.image_id, "-imageid (AZURE_IMAGE_ID)"),
                     required(c.instance_size, "-instance-size (AZURE_INSTANCE_SIZE)"),
                     required(c.ssh_username, "-ssh-username (SSH_USERNAME)")}) {
    if (!check) return check;
  }
  const TokenKind kind = SelectTokenKind(c);
  if (kind != TokenKind::kManagedIdentity) {
    if (c.client_id.empty()) {
      return Fail(Code::kInvalidArgument,
                  "azure: -clientid (AZURE_CLIENT_ID) is empty (needed with ", TokenKindName(kind),
                  ")");
    }
    if (c.tenant_id.empty()) {
      return Fail(Code::kInvalidArgument,
                  "azure: -tenantid (AZURE_TENANT_ID) is empty (needed with ", TokenKindName(kind),
                  ")");
    }
  }
  if (!HttpsUrl(c.management_endpoint)) {
    return Fail(Code::kInvalidArgument,
                "azure: -management-endpoint (AZURE_RESOURCE_MANAGER_ENDPOINT) must be an "
                "https:// URL");
  }
  if (!HttpsUrl(c.authority_host)) {
    return Fail(Code::kInvalidArgument,
                "azure: -authority-host (AZURE_AUTHORITY_HOST) must be an https:// URL");
  }
  if (!HttpsUrl(c.imds_endpoint) && !c.imds_endpoint.starts_with("http://")) {
    return Fail(Code::kInvalidArgument,
                "azure: -imds-endpoint (AZURE_IMDS_ENDPOINT) must be an http(s):// URL");
  }
  return {};
}

std::unique_ptr<ProviderFactory> MakeAzureFactory() { return std::make_unique<AzureFactory>(); }

}  // namespace pp::providers::azure
