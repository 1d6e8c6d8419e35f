#include "providers/azure/azure_provider.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <functional>
#include <mutex>
#include <regex>
#include <set>

#include "common/base/timed_mutex.h"
#include "common/podvm/encoding.h"
#include "providers/azure/arm_client.h"
#include "providers/azure/arm_json.h"
#include "providers/azure/sizes.h"
#include "providers/azure/ssh_key.h"
#include "providers/batch_poller.h"
#include "providers/instance_types.h"
#include "providers/undo.h"

namespace pp::providers::azure {
namespace {

using Clock = std::chrono::steady_clock;

Result<void> CheckContext(const OpContext& ctx, std::string_view what) {
  if (ctx.stop.stop_requested()) return Fail(Code::kCancelled, "azure: stopped before ", what);
  if (Clock::now() >= ctx.deadline)
    return Fail(Code::kDeadlineExceeded, "azure: deadline passed before ", what);
  return {};
}

// CAA's names for what a VM of `name` owns.
std::string NicName(const std::string& vm) { return vm + "-net"; }
std::string DiskName(const std::string& vm) { return vm + "-disk"; }
std::string PublicIpName(const std::string& vm) { return NicName(vm) + "-ip"; }  // as the VM body names it

bool Terminal(std::string_view state) {
  return EqualsIgnoreCase(state, "Succeeded") || EqualsIgnoreCase(state, "Failed") ||
         EqualsIgnoreCase(state, "Canceled");
}

// What a synchronous refusal of a PUT proves: ARM validated the request and created nothing.
bool RefusedBeforeCreating(Code code) {
  return code == Code::kResourceExhausted || code == Code::kFailedPrecondition ||
         code == Code::kInvalidArgument;
}

// The state the batch poll reports for a VM it saw listed before and no longer sees.
constexpr char kGone[] = "Gone";
constexpr int kMissesForGone = 3;

TokenConfig MakeTokenConfig(const AzureConfig& c) {
  TokenConfig t;
  t.kind = SelectTokenKind(c);
  t.authority = c.authority_host;
  t.tenant_id = c.tenant_id;
  t.client_id = c.client_id;
  t.client_secret = c.client_secret;
  t.federated_token_file = c.federated_token_file;
  t.imds_endpoint = c.imds_endpoint;
  t.resource = c.management_audience.empty() ? c.management_endpoint : c.management_audience;
  t.refresh_margin = c.token_refresh_margin;
  t.retry = c.retry;
  t.now = c.now;
  return t;
}

InstanceTypePolicy MakePolicy(const AzureConfig& c) {
  InstanceTypePolicy policy;
  policy.default_type = c.instance_size;
  for (const std::string& name : c.instance_sizes) {
    if (auto known = FindKnownSize(name)) {
      known->name = name;  // as the operator spelled it
      policy.allowed.push_back(*known);
    } else {
      InstanceType unknown;  // sized only by the cloud: chosen by name, never by fit
      unknown.name = name;
      policy.allowed.push_back(std::move(unknown));
    }
  }
  return policy;
}

}  // namespace

struct AzureProvider::Impl {
  Impl(AzureConfig c, std::string key)
      : config(std::move(c)),
        ssh_key(std::move(key)),
        policy(MakePolicy(config)),
        policy_complete(std::none_of(policy.allowed.begin(), policy.allowed.end(),
                                     [](const InstanceType& t) { return t.vcpus == 0; })),
        client(http::ClientOptions{.ca_bundle = config.ca_bundle,
                                   .max_response_bytes = config.max_response_bytes}),
        tokens(MakeTokenConfig(config), client),
        arm(ArmClientConfig{.endpoint = config.management_endpoint,
                            .retry = config.retry,
                            .default_poll = config.poll_interval},
            client, tokens) {
    if (config.batch_poll) {
      poller = std::make_unique<BatchPoller>(
          [this](const std::vector<std::string>& names, const OpContext& ctx) {
            return PollStates(names, ctx);
          },
          config.poll_interval, 1000);
    }
  }

  std::string Rg() const {
    return "/subscriptions/" + http::UrlEncode(config.subscription_id) + "/resourceGroups/" +
           http::UrlEncode(config.resource_group);
  }
  static std::string VmPath(const std::string& rg, const std::string& name) {
    return rg + "/providers/Microsoft.Compute/virtualMachines/" + http::UrlEncode(name);
  }
  std::string VmUrl(const std::string& name) const {
    return VmPath(Rg(), name) + "?api-version=" + kComputeApiVersion;
  }
  static std::string NicUrl(const std::string& rg, const std::string& name) {
    return rg + "/providers/Microsoft.Network/networkInterfaces/" + http::UrlEncode(name) +
           "?api-version=" + kNetworkApiVersion;
  }
  static std::string PublicIpUrl(const std::string& rg, const std::string& name) {
    return rg + "/providers/Microsoft.Network/publicIPAddresses/" + http::UrlEncode(name) +
           "?api-version=" + kNetworkApiVersion;
  }
  static std::string DiskUrl(const std::string& rg, const std::string& name) {
    return rg + "/providers/Microsoft.Compute/disks/" + http::UrlEncode(name) +
           "?api-version=" + kDiskApiVersion;
  }

  Result<std::vector<VmInfo>> ListVms(const OpContext& ctx);
  Result<std::map<std::string, PolledInstance>> PollStates(const std::vector<std::string>& names,
                                                           const OpContext& ctx);
  Result<void> DeleteResource(const std::string& target, const OpContext& ctx);
  Result<void> DeleteVmAndParts(const std::string& rg, const std::string& name,
                                const OpContext& ctx);
  Result<Instance> CreateWithSize(const InstanceSpec& spec, const std::string& size,
                                  const std::string& user_data, const OpContext& ctx);
  Result<void> WaitProvisioned(const std::string& name, const http::Response& started,
                               const OpContext& ctx);
  Result<std::vector<std::string>> Addresses(const VmInfo& vm, const OpContext& ctx);
  std::map<std::string, std::string> Tags(const InstanceSpec& spec) const;

  // The allowed sizes with their shapes: from the table, and for sizes it does not know from the
  // region's vmSizes list, asked once on the first create that needs it.
  Result<InstanceTypePolicy> Policy(const OpContext& ctx);

  const AzureConfig config;
  const std::string ssh_key;
  pp::TimedMutex policy_mu;  // guards policy and policy_complete
  InstanceTypePolicy policy;
  bool policy_complete = false;
  http::Client client;
  TokenSource tokens;
  ArmClient arm;
  std::mutex seen_mu;                   // guards seen and misses
  std::set<std::string> seen;           // VMs being waited for that a batch poll has listed
  std::map<std::string, int> misses;    // polls in a row that did not list a VM being waited for
  std::unique_ptr<BatchPoller> poller;  // last: its thread stops before the members it uses go
};

Result<InstanceTypePolicy> AzureProvider::Impl::Policy(const OpContext& ctx) {
  // One caller asks; the others wait for it, each within its own deadline.
  std::unique_lock lock(policy_mu, std::defer_lock);
  if (!lock.try_lock_until(ctx.deadline)) {
    return Fail(Code::kDeadlineExceeded,
                "azure: deadline passed while the VM sizes were being listed");
  }
  if (policy_complete) return policy;
  auto got =
      arm.Call("GET",
               "/subscriptions/" + http::UrlEncode(config.subscription_id) +
                   "/providers/Microsoft.Compute/locations/" + http::UrlEncode(config.region) +
                   "/vmSizes?api-version=" + kComputeApiVersion,
               "", ctx);
  if (!got) {
    // Sizes without a shape can still be asked for by name: carry on and ask again next time.
    if (got.error().code == Code::kCancelled || got.error().code == Code::kDeadlineExceeded) {
      return std::unexpected(got.error());
    }
    spdlog::warn("azure: listing the VM sizes of {}: {}", config.region, got.error().message);
    return policy;
  }
  std::vector<InstanceType> sizes;
  if (!ParseVmSizes(got->body, sizes))
    return Fail(Code::kUnavailable, "azure: the vmSizes answer is not a size list");
  for (InstanceType& allowed : policy.allowed) {
    if (allowed.vcpus != 0) continue;
    for (const InstanceType& size : sizes) {
      if (EqualsIgnoreCase(size.name, allowed.name)) {
        allowed.vcpus = size.vcpus;
        allowed.memory_mib = size.memory_mib;
      }
    }
    if (allowed.vcpus == 0)
      spdlog::warn("azure: {} is not a VM size of {}", allowed.name, config.region);
  }
  policy_complete = true;
  return policy;
}

Result<std::vector<VmInfo>> AzureProvider::Impl::ListVms(const OpContext& ctx) {
  std::vector<VmInfo> all;
  std::string next =
      Rg() + "/providers/Microsoft.Compute/virtualMachines?api-version=" + kComputeApiVersion;
  for (int pages = 0; !next.empty(); ++pages) {
    if (pages == 10000) return Fail(Code::kInternal, "azure: the VM list never ends (10000 pages)");
    auto page = arm.Call("GET", next, "", ctx);
    if (!page) return std::unexpected(page.error());
    VmPage parsed;
    std::string error;
    if (!ParseVmPage(page->body, parsed, error)) return Fail(Code::kUnavailable, "azure: ", error);
    for (auto& vm : parsed.vms) all.push_back(std::move(vm));
    next = std::move(parsed.next_link);
  }
  return all;
}

// One list of the resource group answers for every VM being waited for.
Result<std::map<std::string, PolledInstance>> AzureProvider::Impl::PollStates(
    const std::vector<std::string>& names, const OpContext& ctx) {
  auto vms = ListVms(ctx);
  if (!vms) return std::unexpected(vms.error());
  const std::set<std::string> wanted(names.begin(), names.end());
  std::map<std::string, PolledInstance> out;
  for (const VmInfo& vm : *vms) {
    if (wanted.contains(vm.name)) out[vm.name].state = vm.provisioning_state;
  }
  // A VM listed before and missing now was deleted under us; one never listed is gone too once
  // several lists in a row missed it (its PUT succeeded, so it existed: a list may lag a moment).
  std::lock_guard lock(seen_mu);
  for (const std::string& name : names) {
    if (out.contains(name)) {
      seen.insert(name);
      misses.erase(name);
    } else if (seen.contains(name) || ++misses[name] >= kMissesForGone) {
      out[name].state = kGone;
    }
  }
  return out;
}

Result<void> AzureProvider::Impl::DeleteResource(const std::string& target, const OpContext& ctx) {
  auto deleted = arm.Call("DELETE", target, "", ctx);
  if (!deleted)
    return deleted.error().code == Code::kNotFound ? Result<void>{}
                                                   : std::unexpected(deleted.error());
  if (deleted->status == 202 || deleted->status == 201) {
    auto waited = arm.Wait(*deleted, ctx);
    if (!waited && waited.error().code != Code::kNotFound) return waited;
  }
  return {};
}

Result<void> AzureProvider::Impl::DeleteVmAndParts(const std::string& rg, const std::string& name,
                                                   const OpContext& ctx) {
  std::string vm = VmPath(rg, name) + "?api-version=" + kComputeApiVersion;
  if (config.force_delete) vm += "&forceDeletion=true";
  if (auto gone = DeleteResource(vm, ctx); !gone) return gone;
  // deleteOption Delete takes them with the VM; a VM made by an older version, or a create that
  // died half-way, may have left them.
  if (auto gone = DeleteResource(NicUrl(rg, NicName(name)), ctx); !gone) return gone;
  // A NIC deleted on its own leaves its public IP (-use-public-ip): it goes once the NIC is gone.
  if (auto gone = DeleteResource(PublicIpUrl(rg, PublicIpName(name)), ctx); !gone) return gone;
  return DeleteResource(DiskUrl(rg, DiskName(name)), ctx);
}

std::map<std::string, std::string> AzureProvider::Impl::Tags(const InstanceSpec& spec) const {
  std::map<std::string, std::string> tags = config.tags;
  tags[kNodeTag] = spec.owner.node;
  tags[kSandboxTag] = spec.owner.sandbox_id;
  if (!spec.pod_name.empty()) tags[kPodTag] = spec.pod_name.substr(0, 256);
  if (!spec.pod_namespace.empty()) tags[kNamespaceTag] = spec.pod_namespace.substr(0, 256);
  return tags;
}

Result<void> AzureProvider::Impl::WaitProvisioned(const std::string& name,
                                                  const http::Response& started,
                                                  const OpContext& ctx) {
  if (!poller) return arm.Wait(started, ctx);
  auto state = poller->Wait(
      name,
      [](const PolledInstance& s) {
        return Terminal(s.state) || s.state == kGone || EqualsIgnoreCase(s.state, "Deleting");
      },
      ctx);
  {
    std::lock_guard lock(seen_mu);
    seen.erase(name);
    misses.erase(name);
  }
  if (!state) return std::unexpected(state.error());
  if (EqualsIgnoreCase(state->state, "Succeeded")) return {};
  if (state->state == kGone || EqualsIgnoreCase(state->state, "Deleting")) {
    return Fail(Code::kAborted, "azure: VM ", name, " was deleted while being created");
  }
  // Failed or Canceled: the operation says why (AllocationFailed moves on to the next size).
  auto why = arm.Wait(started, ctx);
  if (!why) return why;
  return Fail(Code::kUnknown, "azure: VM ", name, " provisioning ", state->state);
}

Result<std::vector<std::string>> AzureProvider::Impl::Addresses(const VmInfo& vm,
                                                                const OpContext& ctx) {
  std::vector<std::string> private_ips, public_ips;
  for (const std::string& nic_id : vm.nic_ids) {
    auto got = arm.Call("GET", nic_id + "?api-version=" + kNetworkApiVersion, "", ctx);
    if (!got) return std::unexpected(got.error());
    NicInfo nic;
    std::string error;
    if (!ParseNic(got->body, nic, error)) return Fail(Code::kUnavailable, "azure: ", error);
    private_ips.insert(private_ips.end(), nic.private_ips.begin(), nic.private_ips.end());
    if (!config.use_public_ip) continue;
    for (const std::string& ip_id : nic.public_ip_ids) {
      auto ip = arm.Call("GET", ip_id + "?api-version=" + kNetworkApiVersion, "", ctx);
      if (!ip) return std::unexpected(ip.error());
      std::string address;
      if (!ParsePublicIp(ip->body, address, error))
        return Fail(Code::kUnavailable, "azure: ", error);
      if (!address.empty()) public_ips.push_back(std::move(address));
    }
  }
  if (private_ips.empty())
    return Fail(Code::kUnavailable, "azure: VM ", vm.name, " has no private address");
  // The public address first: with USE_PUBLIC_IP the adaptor connects to it (as CAA does).
  public_ips.insert(public_ips.end(), private_ips.begin(), private_ips.end());
  return public_ips;
}

Result<Instance> AzureProvider::Impl::CreateWithSize(const InstanceSpec& spec,
                                                     const std::string& size,
                                                     const std::string& user_data,
                                                     const OpContext& ctx) {
  VmBodyParams p;
  p.location = config.region;
  p.zone = config.zone;
  p.vm_size = size;
  p.computer_name = spec.name;
  p.admin_username = config.ssh_username;
  p.ssh_public_key = ssh_key;
  p.image = spec.image.empty() ? config.image_id : spec.image;
  p.os_disk_name = DiskName(spec.name);
  p.root_volume_gib = config.root_volume_gib;
  p.nic_name = NicName(spec.name);
  p.subnet_id = config.subnet_id;
  p.nsg_id = config.nsg_id;
  p.public_ip = config.use_public_ip;
  p.confidential = !config.disable_cvm;
  p.secure_boot = config.enable_secure_boot;
  p.user_data_b64 = user_data;
  p.tags = Tags(spec);

  bool may_exist = true;  // declared before `undo`, whose step reads it when it runs
  Undo undo("azure");
  undo.Add("delete VM " + spec.name, [&] {
    if (!may_exist) return;
    // Its own budget: the caller's may be what ended (a deadline, a StopVM).
    const OpContext cleanup{Clock::now() + config.cleanup_timeout, {}};
    if (auto gone = DeleteVmAndParts(Rg(), spec.name, cleanup); !gone) {
      spdlog::warn("azure: deleting VM {} after a failed create: {}", spec.name,
                   gone.error().message);
    }
  });
  spdlog::info("azure: creating VM {} ({})", spec.name, size);
  auto put = arm.Call("PUT", VmUrl(spec.name), BuildVmBody(p), ctx);
  if (!put) {
    may_exist = !RefusedBeforeCreating(put.error().code);
    return std::unexpected(put.error());
  }
  if (auto ready = WaitProvisioned(spec.name, *put, ctx); !ready)
    return std::unexpected(ready.error());
  // The VM itself has the last word: a PUT retried after ARM had accepted the first answers 200
  // with the VM still Creating and nothing to poll, so its state is polled here until it ends.
  VmInfo vm;
  for (;;) {
    auto got = arm.Call("GET", VmUrl(spec.name), "", ctx);
    if (!got) return std::unexpected(got.error());
    std::string error;
    if (!ParseVm(got->body, vm, error)) return Fail(Code::kUnavailable, "azure: ", error);
    if (EqualsIgnoreCase(vm.provisioning_state, "Succeeded")) break;
    if (Terminal(vm.provisioning_state)) {
      return Fail(Code::kUnknown, "azure: VM ", spec.name, " provisioning ",
                  podvm::Printable(vm.provisioning_state));
    }
    if (auto slept = SleepWithin(config.poll_interval, ctx, "waiting for VM " + spec.name);
        !slept) {
      return std::unexpected(slept.error());
    }
  }
  auto ips = Addresses(vm, ctx);
  if (!ips) return std::unexpected(ips.error());
  undo.Commit();
  spdlog::info("azure: VM {} is up at {}", spec.name, ips->front());
  return Instance{.id = vm.id.empty() ? VmPath(Rg(), spec.name) : vm.id,
                  .name = spec.name,
                  .ips = std::move(*ips),
                  .owner = spec.owner};
}

Result<std::unique_ptr<AzureProvider>> AzureProvider::Create(AzureConfig config) {
  if (auto ok = ValidateConfig(config); !ok) return std::unexpected(ok.error());
  auto key = config.ssh_key_path.empty() ? MakeThrowawaySshPublicKey()
                                         : ReadSshPublicKey(config.ssh_key_path);
  if (!key) return std::unexpected(key.error());
  spdlog::info("azure: subscription {}, resource group {}, {} in {}, credentials: {}",
               config.subscription_id, config.resource_group,
               config.disable_cvm ? "plain VMs" : "confidential VMs", config.region,
               TokenKindName(SelectTokenKind(config)));
  return std::unique_ptr<AzureProvider>(
      new AzureProvider(std::make_unique<Impl>(std::move(config), std::move(*key))));
}

AzureProvider::AzureProvider(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
AzureProvider::~AzureProvider() = default;

std::size_t AzureProvider::token_fetches() const { return impl_->tokens.fetches(); }
std::size_t AzureProvider::batch_polls() const {
  return impl_->poller ? impl_->poller->polls() : 0;
}

Result<Instance> AzureProvider::CreateInstance(const InstanceSpec& spec, const OpContext& ctx) {
  if (auto ok = CheckContext(ctx, "creating " + spec.name); !ok) return std::unexpected(ok.error());
  if (spec.name.empty() || spec.name.size() > 64) {
    return Fail(Code::kInvalidArgument, "azure: a VM name must have 1 to 64 characters");
  }
  // Azure takes at most 64 KiB of base64 user data ("User data for Azure Virtual Machine").
  const std::string user_data = podvm::Base64Encode(spec.user_data);
  if (user_data.size() > kMaxUserDataBase64) {
    return Fail(Code::kInvalidArgument, "azure: user-data is ", std::to_string(user_data.size()),
                " bytes in base64; Azure takes at most ", std::to_string(kMaxUserDataBase64));
  }
  auto policy = impl_->Policy(ctx);
  if (!policy) return std::unexpected(policy.error());
  auto candidates = SelectInstanceTypes(spec, *policy);
  if (!candidates) return std::unexpected(candidates.error());
  std::string tried;
  for (std::size_t i = 0; i < candidates->size(); ++i) {
    const std::string& size = (*candidates)[i];
    auto made = impl_->CreateWithSize(spec, size, user_data, ctx);
    if (made) return made;
    const bool next = made.error().code == Code::kResourceExhausted && i + 1 < candidates->size();
    tried += (tried.empty() ? "" : "; ") + size + ": " + made.error().message;
    if (!next) {
      if (i == 0) return std::unexpected(made.error());
      return Fail(made.error().code, "azure: no size could be created (tried ", tried, ")");
    }
    spdlog::info("azure: no capacity for {} ({}), trying {}", size, made.error().message,
                 (*candidates)[i + 1]);
  }
  return Fail(Code::kInternal, "azure: no instance size to try");
}

Result<void> AzureProvider::DeleteInstance(const std::string& instance_id, const OpContext& ctx) {
  if (auto ok = CheckContext(ctx, "deleting " + instance_id); !ok) return ok;
  // CAA's form of the id:
  // /subscriptions/<sub>/resourceGroups/<rg>/providers/Microsoft.Compute/virtualMachines/<name>
  static const std::regex kVmId(
      R"(^/subscriptions/([^/]+)/resourceGroups/([^/]+)/providers/Microsoft\.Compute/virtualMachines/([^/]+)$)",
      std::regex::icase);
  std::smatch m;
  if (!std::regex_match(instance_id, m, kVmId)) {
    return Fail(Code::kInvalidArgument, "azure: '", podvm::Printable(instance_id, 200),
                "' is not a virtual machine resource id");
  }
  const std::string rg = "/subscriptions/" + m[1].str() + "/resourceGroups/" + m[2].str();
  spdlog::info("azure: deleting VM {}", m[3].str());
  return impl_->DeleteVmAndParts(rg, m[3].str(), ctx);
}

Result<void> AzureProvider::DeleteLeftovers(const std::string& name, const Owner& owner,
                                            const OpContext& ctx) {
  if (auto ok = CheckContext(ctx, "removing leftovers of " + name); !ok) return ok;
  const auto mine = [&](const VmInfo& r) {
    const auto node = r.tags.find(kNodeTag);
    const auto sandbox = r.tags.find(kSandboxTag);
    return node != r.tags.end() && node->second == owner.node && sandbox != r.tags.end() &&
           sandbox->second == owner.sandbox_id;
  };
  auto got = impl_->arm.Call("GET", impl_->VmUrl(name), "", ctx);
  if (got) {
    VmInfo vm;
    std::string error;
    if (!ParseVm(got->body, vm, error)) return Fail(Code::kUnavailable, "azure: ", error);
    if (!mine(vm)) return {};  // another owner's VM, and the NIC and disk it holds
    spdlog::info("azure: deleting leftover VM {}", name);
    return impl_->DeleteVmAndParts(impl_->Rg(), name, ctx);
  }
  if (got.error().code != Code::kNotFound) return std::unexpected(got.error());
  // No VM: a NIC or disk of that name is what a crash left (an untagged one is ours by its name).
  for (const std::string& target :
       {Impl::NicUrl(impl_->Rg(), NicName(name)), Impl::PublicIpUrl(impl_->Rg(), PublicIpName(name)),
        Impl::DiskUrl(impl_->Rg(), DiskName(name))}) {
    auto part = impl_->arm.Call("GET", target, "", ctx);
    if (!part) {
      if (part.error().code == Code::kNotFound) continue;
      return std::unexpected(part.error());
    }
    VmInfo resource;  // id, name and tags read the same for any resource
    std::string error;
    if (!ParseVm(part->body, resource, error)) return Fail(Code::kUnavailable, "azure: ", error);
    if (resource.tags.contains(kNodeTag) && !mine(resource)) continue;
    spdlog::info("azure: deleting leftover {}", resource.name);
    if (auto gone = impl_->DeleteResource(target, ctx); !gone) return gone;
  }
  return {};
}

Result<std::vector<Instance>> AzureProvider::ListInstances(const std::string& node,
                                                           const OpContext& ctx) {
  if (auto ok = CheckContext(ctx, "listing VMs"); !ok) return std::unexpected(ok.error());
  auto vms = impl_->ListVms(ctx);
  if (!vms) return std::unexpected(vms.error());
  std::vector<Instance> out;
  for (VmInfo& vm : *vms) {
    const auto tag = vm.tags.find(kNodeTag);
    if (tag == vm.tags.end() || tag->second != node) continue;
    Instance i;
    i.id = vm.id.empty() ? Impl::VmPath(impl_->Rg(), vm.name) : vm.id;
    i.name = vm.name;
    i.owner.node = node;
    if (auto sandbox = vm.tags.find(kSandboxTag); sandbox != vm.tags.end())
      i.owner.sandbox_id = sandbox->second;
    out.push_back(std::move(i));
  }
  return out;
}

Result<void> AzureProvider::Verify(const OpContext& ctx) {
  if (auto ok = CheckContext(ctx, "verifying the configuration"); !ok) return ok;
  auto rg = impl_->arm.Call("GET", impl_->Rg() + "?api-version=2021-04-01", "", ctx);
  if (!rg) {
    if (rg.error().code != Code::kNotFound) return std::unexpected(rg.error());
    return Fail(Code::kFailedPrecondition, "azure: resource group ", impl_->config.resource_group,
                " (AZURE_RESOURCE_GROUP) not found in subscription ",
                impl_->config.subscription_id);
  }
  const std::string& image = impl_->config.image_id;
  if (!image.starts_with("/subscriptions/")) return {};  // a community gallery image: public
  const bool gallery = image.find("/galleries/") != std::string::npos;
  auto got = impl_->arm.Call(
      "GET", image + "?api-version=" + (gallery ? "2022-03-03" : kComputeApiVersion), "", ctx);
  if (!got &&
      (got.error().code == Code::kNotFound || got.error().code == Code::kFailedPrecondition)) {
    return Fail(Code::kFailedPrecondition, "azure: image ", podvm::Printable(image, 300),
                " (AZURE_IMAGE_ID) not found or not readable: ", got.error().message);
  }
  if (!got) return std::unexpected(got.error());
  return {};
}

}  // namespace pp::providers::azure
