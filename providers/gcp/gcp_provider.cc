#include "providers/gcp/gcp_provider.h"

#include <openssl/rand.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <cstdio>
#include <functional>
#include <mutex>
#include <optional>
#include <set>

#include "common/base/timed_mutex.h"
#include "providers/batch_poller.h"
#include "providers/gcp/body.h"
#include "providers/gcp/compute.h"
#include "providers/gcp/machine_types.h"
#include "providers/gcp/token.h"
#include "providers/http/client.h"
#include "providers/instance_types.h"
#include "providers/undo.h"

namespace pp::providers::gcp {
namespace {

using Clock = std::chrono::steady_clock;
using State = PolledInstance;

// An instance a DONE insert made that a list no longer shows this many times in a row was
// deleted under us (instances.list is consistent once the insert's operation is DONE).
constexpr int kMissesUntilGone = 3;

// A request id: a random (version 4) UUID, as instances.insert/delete ask for.
std::string NewRequestId() {
  unsigned char b[16];
  if (RAND_bytes(b, sizeof b) != 1) {
    for (auto& c : b) c = static_cast<unsigned char>(std::rand());
  }
  b[6] = static_cast<unsigned char>((b[6] & 0x0f) | 0x40);
  b[8] = static_cast<unsigned char>((b[8] & 0x3f) | 0x80);
  char s[37];
  std::snprintf(s, sizeof s, "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x",
                b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12],
                b[13], b[14], b[15]);
  return s;
}

bool Terminal(const std::string& state) {
  return state == "STOPPING" || state == "STOPPED" || state == "SUSPENDING" ||
         state == "SUSPENDED" || state == "TERMINATED" || state == "GONE";
}

std::string Quoted(std::string_view s) { return "\"" + std::string(s) + "\""; }

class GcpProvider final : public Provider {
 public:
  GcpProvider(GcpConfig config, std::unique_ptr<http::Client> client,
              std::unique_ptr<TokenSource> tokens)
      : config_(std::move(config)),
        client_(std::move(client)),
        tokens_(std::move(tokens)),
        compute_(
            *client_, *tokens_,
            ComputeOptions{config_.compute_endpoint.empty() ? std::string(kDefaultComputeEndpoint)
                                                            : config_.compute_endpoint,
                           config_.project_id, config_.retry, config_.op_poll_initial,
                           config_.op_poll_max}),
        poller_([this](const std::vector<std::string>& ids,
                       const OpContext& ctx) { return Poll(ids, ctx); },
                config_.poll_interval, 50) {}

  Result<Instance> CreateInstance(const InstanceSpec& spec, const OpContext& ctx) override;
  Result<void> DeleteInstance(const std::string& instance_id, const OpContext& ctx) override;
  Result<void> DeleteLeftovers(const std::string& name, const Owner& owner,
                               const OpContext& ctx) override;
  Result<std::vector<Instance>> ListInstances(const std::string& node,
                                              const OpContext& ctx) override;
  Result<void> Verify(const OpContext& ctx) override;

 private:
  OpContext CleanupContext() const { return OpContext{Clock::now() + config_.cleanup_budget, {}}; }
  Result<InstanceTypePolicy> Policy(const OpContext& ctx);
  Result<unsigned long long> ImageSizeGb(const std::string& image, const OpContext& ctx);
  Result<void> DeleteIn(const std::string& zone, const std::string& name, const OpContext& ctx);
  Result<void> DeleteOwned(const std::string& zone, const std::string& name, const Owner& owner,
                           const OpContext& ctx);
  void ResolveLostInsert(const std::string& zone, const InstanceSpec& spec,
                         const std::string& request_id, const std::string& body);
  Result<std::vector<InstanceInfo>> List(const std::string& zone, const std::string& filter,
                                         const OpContext& ctx);
  Result<std::map<std::string, State>> Poll(const std::vector<std::string>& ids,
                                            const OpContext& ctx);
  Instance ToInstance(const InstanceInfo& info) const;

  const GcpConfig config_;
  std::unique_ptr<http::Client> client_;
  std::unique_ptr<TokenSource> tokens_;
  ComputeClient compute_;

  std::mutex mu_;
  pp::TimedMutex image_fetch_mu_;  // held while an image's size is fetched
  std::optional<InstanceTypePolicy> policy_;            // guarded by mu_; made on first use
  std::map<std::string, unsigned long long> image_gb_;  // guarded by mu_
  std::map<std::string, int> misses_;                   // guarded by mu_: ids a poll did not see

  BatchPoller poller_;  // last: its thread calls Poll, which uses everything above
};

Instance GcpProvider::ToInstance(const InstanceInfo& info) const {
  Instance i;
  i.id = info.zone + "/" + info.name;
  i.name = info.name;
  const std::string& ip = config_.use_public_ip ? info.nat_ip : info.network_ip;
  if (!ip.empty()) i.ips.push_back(ip);
  const auto meta = [&](std::string_view key) {
    auto it = info.metadata.find(std::string(key));
    if (it != info.metadata.end()) return it->second;
    auto label = info.labels.find(std::string(key));
    return label != info.labels.end() ? label->second : std::string();
  };
  i.owner = Owner{meta(kNodeLabel), meta(kSandboxLabel)};
  return i;
}

Result<InstanceTypePolicy> GcpProvider::Policy(const OpContext& ctx) {
  {
    std::lock_guard lock(mu_);
    if (policy_) return *policy_;
  }
  InstanceTypePolicy policy;
  policy.default_type = config_.machine_type;
  for (const auto& name : config_.machine_types) {
    if (auto known = KnownMachineType(name)) {
      policy.allowed.push_back(*known);
      continue;
    }
    // Not in our table: ask the API, as CAA does for every type (machineTypes.get).
    auto r = compute_.Call(
        "GET", compute_.ProjectPath("/zones/" + config_.zones.front() + "/machineTypes/" + name),
        "", "gcp: machineTypes.get " + name, ctx);
    if (!r) {
      Error e = r.error();
      if (e.code == Code::kNotFound) e.code = Code::kFailedPrecondition;
      e.message += " (GCP_INSTANCE_TYPES)";
      return std::unexpected(std::move(e));
    }
    auto m = ParseMachineType(r->body);
    if (!m) return std::unexpected(m.error());
    policy.allowed.push_back(InstanceType{name, m->vcpus, m->memory_mib, m->gpus, m->gpu_model});
  }
  std::lock_guard lock(mu_);
  policy_ = policy;
  return policy;
}

// The capacity code in an error's message, for the list of what was tried.
std::string CapacityReason(const Error& e) {
  for (const char* code :
       {"ZONE_RESOURCE_POOL_EXHAUSTED_WITH_DETAILS", "ZONE_RESOURCE_POOL_EXHAUSTED",
        "QUOTA_EXCEEDED", "resourcePoolExhausted", "quotaExceeded"}) {
    if (e.message.find(code) != std::string::npos) return code;
  }
  return "out of capacity";
}

std::string TriedSuffix(const std::vector<std::string>& tried) {
  if (tried.empty()) return {};
  std::string s = " (tried before:";
  for (const auto& t : tried) s += " " + t + ";";
  s.back() = ')';
  return s;
}

Result<unsigned long long> GcpProvider::ImageSizeGb(const std::string& image,
                                                    const OpContext& ctx) {
  {
    std::lock_guard lock(mu_);
    if (auto it = image_gb_.find(image); it != image_gb_.end()) return it->second;
  }
  // One images.get for many pods starting together: the others wait for it (each within its own
  // deadline) and read the cache.
  std::unique_lock fetch(image_fetch_mu_, std::defer_lock);
  if (!fetch.try_lock_until(ctx.deadline)) {
    return Fail(Code::kDeadlineExceeded, "gcp: waiting for the size of image ", image, " another call looks up");
  }
  {
    std::lock_guard lock(mu_);
    if (auto it = image_gb_.find(image); it != image_gb_.end()) return it->second;
  }
  // The boot disk may not be smaller than the image (CAA asks too, on every create).
  const auto [project, name] = ImageProjectAndName(config_.project_id, image);
  auto r = compute_.Call(
      "GET", "/projects/" + http::UrlEncode(project) + "/global/images/" + http::UrlEncode(name),
      "", "gcp: images.get " + project + "/" + name, ctx);
  if (!r) {
    Error e = r.error();
    if (e.code == Code::kNotFound) {
      e.code = Code::kFailedPrecondition;
      e.message += " (check PODVM_IMAGE_NAME or the pod's image annotation)";
    }
    return std::unexpected(std::move(e));
  }
  auto gb = ParseImageDiskSizeGb(r->body);
  if (!gb) return std::unexpected(gb.error());
  std::lock_guard lock(mu_);
  image_gb_[image] = *gb;
  return *gb;
}

Result<std::vector<InstanceInfo>> GcpProvider::List(const std::string& zone,
                                                    const std::string& filter,
                                                    const OpContext& ctx) {
  std::vector<InstanceInfo> all;
  std::string token;
  for (int page = 0; page < 10000; ++page) {
    std::string path =
        "/zones/" + zone + "/instances?maxResults=500&filter=" + http::UrlEncode(filter);
    if (!token.empty()) path += "&pageToken=" + http::UrlEncode(token);
    auto r =
        compute_.Call("GET", compute_.ProjectPath(path), "", "gcp: instances.list in " + zone, ctx);
    if (!r) return std::unexpected(r.error());
    auto list = ParseInstanceList(r->body);
    if (!list) return std::unexpected(list.error());
    for (auto& item : list->items) {
      if (item.zone.empty()) item.zone = zone;
      all.push_back(std::move(item));
    }
    if (list->next_page_token.empty()) return all;
    if (list->next_page_token == token)
      return Fail(Code::kUnavailable, "gcp: instances.list in ", zone, " repeats a page token");
    token = std::move(list->next_page_token);
  }
  return Fail(Code::kUnavailable, "gcp: instances.list in ", zone, " has too many pages");
}

Result<std::map<std::string, State>> GcpProvider::Poll(const std::vector<std::string>& ids,
                                                       const OpContext& ctx) {
  std::map<std::string, std::vector<std::string>> by_zone;
  for (const auto& id : ids) {
    const auto slash = id.find('/');
    by_zone[id.substr(0, slash)].push_back(id.substr(slash + 1));
  }
  std::map<std::string, State> seen;
  for (const auto& [zone, names] : by_zone) {
    // One list per zone for every instance waited for there (filter syntax:
    // https://cloud.google.com/compute/docs/reference/rest/v1/instances/list).
    std::string filter;
    for (const auto& name : names)
      filter += (filter.empty() ? "" : " OR ") + ("(name = " + Quoted(name) + ")");
    auto list = List(zone, filter, ctx);
    if (!list) return std::unexpected(list.error());
    for (const auto& info : *list) {
      const Instance i = ToInstance(info);
      seen[i.id] = State{info.status, i.ips, {}};
    }
  }
  std::lock_guard lock(mu_);
  for (const auto& id : ids) {
    if (seen.contains(id)) {
      misses_.erase(id);
    } else if (++misses_[id] >= kMissesUntilGone) {
      seen[id] = State{"GONE", {}, "deleted while starting"};
    }
  }
  return seen;
}

Result<void> GcpProvider::DeleteIn(const std::string& zone, const std::string& name,
                                   const OpContext& ctx) {
  const std::string what = "gcp: instances.delete of " + zone + "/" + name;
  const std::string request_id = NewRequestId();
  auto r = compute_.Call(
      "DELETE",
      compute_.ProjectPath("/zones/" + zone + "/instances/" + name + "?requestId=" + request_id),
      "", what, ctx);
  if (!r) return r.error().code == Code::kNotFound ? Result<void>{} : std::unexpected(r.error());
  auto op = ParseOperation(r->body);
  if (!op) return std::unexpected(op.error());
  if (op->zone.empty()) op->zone = zone;
  auto done = compute_.WaitOperation(*op, what, ctx);
  if (!done) return std::unexpected(done.error());
  if (auto failed = OperationError(*done, what); !failed && failed.error().code != Code::kNotFound)
    return failed;
  spdlog::info("gcp: deleted {}/{}", zone, name);
  return {};
}

Result<void> GcpProvider::DeleteOwned(const std::string& zone, const std::string& name,
                                      const Owner& owner, const OpContext& ctx) {
  auto r = compute_.Call("GET", compute_.ProjectPath("/zones/" + zone + "/instances/" + name), "",
                         "gcp: instances.get " + zone + "/" + name, ctx);
  if (!r) return r.error().code == Code::kNotFound ? Result<void>{} : std::unexpected(r.error());
  auto info = ParseInstance(r->body);
  if (!info) return std::unexpected(info.error());
  if (info->zone.empty()) info->zone = zone;
  if (ToInstance(*info).owner != owner) {
    spdlog::debug("gcp: {}/{} belongs to another owner; left alone", zone, name);
    return {};
  }
  return DeleteIn(zone, name, ctx);
}

void GcpProvider::ResolveLostInsert(const std::string& zone, const InstanceSpec& spec,
                                    const std::string& request_id, const std::string& body) {
  // Sent again with its requestId, an insert the API took answers with its first operation, and
  // one it never saw is made now (https://cloud.google.com/compute/docs/reference/rest/v1/
  // instances/insert, requestId): either way there is an operation to wait for and an instance
  // that is ours to delete, even if the first request is still in flight.
  const OpContext ctx = CleanupContext();
  const std::string what = "gcp: resolving the insert of " + zone + "/" + spec.name;
  auto r = compute_.Call(
      "POST", compute_.ProjectPath("/zones/" + zone + "/instances?requestId=" + request_id), body,
      what, ctx);
  if (r) {
    if (auto op = ParseOperation(r->body); op) {
      if (op->zone.empty()) op->zone = zone;
      (void)compute_.WaitOperation(*op, what, ctx);
    }
    if (auto d = DeleteIn(zone, spec.name, ctx); !d) spdlog::warn("{}", d.error().message);
    return;
  }
  if (r.error().code == Code::kAlreadyExists) return;  // another's instance of that name
  // The API still fails: delete what may be there, if it is ours.
  if (auto d = DeleteOwned(zone, spec.name, spec.owner, ctx); !d) {
    spdlog::warn("{}", d.error().message);
  }
}

Result<Instance> GcpProvider::CreateInstance(const InstanceSpec& spec, const OpContext& ctx) {
  if (auto c = CheckContext(ctx, "creating " + spec.name); !c) return std::unexpected(c.error());
  if (!IsValidInstanceName(spec.name)) {
    return Fail(Code::kInvalidArgument, "gcp: \"", spec.name,
                "\" is not a valid instance name (a lower-case letter, then letters, digits, '-', "
                "at most 63)");
  }
  // A metadata value holds at most 256 KB (https://cloud.google.com/compute/docs/metadata/setting-
  // custom-metadata#limitations); base64 makes 4 bytes of 3.
  if ((spec.user_data.size() + 2) / 3 * 4 > 256 * 1024) {
    return Fail(Code::kInvalidArgument, "gcp: the user-data of ", spec.name, " is ",
                std::to_string(spec.user_data.size()),
                " bytes; base64 of it exceeds the 256 KB a metadata value may hold");
  }
  auto policy = Policy(ctx);
  if (!policy) return std::unexpected(policy.error());
  auto candidates = SelectInstanceTypes(spec, *policy);
  if (!candidates) return std::unexpected(candidates.error());
  const std::string image = spec.image.empty() ? config_.image_name : spec.image;
  if (image.empty())
    return Fail(Code::kFailedPrecondition,
                "gcp: no pod VM image: set -image-name (PODVM_IMAGE_NAME)");
  auto image_gb = ImageSizeGb(image, ctx);
  if (!image_gb) return std::unexpected(image_gb.error());

  InstanceBodyParams p;
  p.project = config_.project_id;
  p.name = spec.name;
  p.source_image = ResolveImage(config_.project_id, image);
  p.disk_type = config_.disk_type;
  p.disk_size_gb = std::max<unsigned long long>(*image_gb, config_.root_volume_size);
  p.network = ResolveNetwork(config_.network);
  p.public_ip = config_.use_public_ip;
  p.confidential_type = config_.disable_cvm ? "" : config_.confidential_type;
  p.user_data = spec.user_data;
  p.owner = spec.owner;
  for (const auto& [k, v] : config_.tags) p.extra_labels[k] = v;

  std::vector<std::string> tried;
  std::string made_zone;
  Undo undo("gcp");
  // The best (smallest) type in any zone before a larger one: the cheapest VM that fits wins.
  for (const auto& type : *candidates) {
    for (const auto& zone : config_.zones) {
      p.zone = zone;
      p.machine_type = type;
      p.subnetwork = ResolveSubnetwork(config_.project_id, zone, config_.subnetwork);
      const auto known = std::find_if(policy->allowed.begin(), policy->allowed.end(),
                                      [&](const InstanceType& t) { return t.name == type; });
      p.terminate_on_maintenance =
          spec.gpus > 0 || (known != policy->allowed.end() && known->gpus > 0);
      const std::string what =
          "gcp: instances.insert of " + spec.name + " (" + type + " in " + zone + ")";
      // One id per candidate, the same on every retry of it: a retried insert never makes two.
      const std::string request_id = NewRequestId();
      auto r = compute_.Call(
          "POST", compute_.ProjectPath("/zones/" + zone + "/instances?requestId=" + request_id),
          BuildInstanceBody(p), what, ctx);
      if (!r) {
        Error e = r.error();
        if (e.code == Code::kResourceExhausted) {
          tried.push_back(zone + "/" + type + " (" + CapacityReason(e) + ")");
          continue;
        }
        if (e.code == Code::kNotFound)
          e.code = Code::kFailedPrecondition;  // the image, network or type
        if (e.code != Code::kAlreadyExists && e.code != Code::kInvalidArgument &&
            e.code != Code::kFailedPrecondition) {
          // The insert may have been accepted with its answer lost, or still be on its way (a
          // stop or deadline cut the call): resolve it with the same requestId, then delete.
          ResolveLostInsert(zone, spec, request_id, BuildInstanceBody(p));
        }
        return Fail(e.code, e.message, TriedSuffix(tried));
      }
      undo.Add("delete " + zone + "/" + spec.name, [this, zone, name = spec.name] {
        if (auto d = DeleteIn(zone, name, CleanupContext()); !d)
          spdlog::warn("{}", d.error().message);
      });
      auto op = ParseOperation(r->body);
      if (!op) return Fail(op.error().code, op.error().message, TriedSuffix(tried));
      if (op->zone.empty()) op->zone = zone;
      auto done = compute_.WaitOperation(*op, what, ctx);
      if (!done)
        return Fail(done.error().code, what, ": ", done.error().message, TriedSuffix(tried));
      if (auto failed = OperationError(*done, what); !failed) {
        Error e = failed.error();
        if (e.code == Code::kResourceExhausted) {
          undo.Run();  // nothing should be left of a refused insert; make sure before moving on
          tried.push_back(zone + "/" + type + " (" + CapacityReason(e) + ")");
          continue;
        }
        if (e.code == Code::kNotFound) e.code = Code::kFailedPrecondition;
        return Fail(e.code, e.message, TriedSuffix(tried));
      }
      made_zone = zone;
      if (!tried.empty())
        spdlog::info("gcp: {} made as {} in {}{}", spec.name, type, zone, TriedSuffix(tried));
      break;
    }
    if (!made_zone.empty()) break;
  }
  if (made_zone.empty()) {
    std::string list;
    for (const auto& t : tried) list += (list.empty() ? "" : ", ") + t;
    return Fail(Code::kResourceExhausted, "gcp: no capacity for ", spec.name, ": tried ", list);
  }

  const std::string id = made_zone + "/" + spec.name;
  const auto running = [](const State& s) {
    return (s.state == "RUNNING" && !s.ips.empty()) || Terminal(s.state);
  };
  // Without batching (GCP_BATCH_POLL=false, for comparison) this instance gets a poll loop of its
  // own: one filtered instances.list for it per interval.
  std::optional<BatchPoller> own;
  if (!config_.batch_poll) {
    own.emplace([this](const std::vector<std::string>& ids, const OpContext& c) { return Poll(ids, c); },
                config_.poll_interval, 1);
  }
  auto state = (own ? *own : poller_).Wait(id, running, ctx);
  {
    std::lock_guard lock(mu_);
    misses_.erase(id);
  }
  if (!state) {
    return Fail(state.error().code, "gcp: ", id,
                " did not reach RUNNING with an address: ", state.error().message, " (deleted)");
  }
  if (state->state != "RUNNING") {
    return Fail(Code::kUnavailable, "gcp: ", id, " is ", state->state, " instead of RUNNING",
                state->detail.empty() ? "" : " (" + state->detail + ")", " (deleted)");
  }
  undo.Commit();
  spdlog::info("gcp: {} running at {}", id, state->ips.front());
  return Instance{id, spec.name, state->ips, spec.owner};
}

Result<void> GcpProvider::DeleteInstance(const std::string& instance_id, const OpContext& ctx) {
  if (auto c = CheckContext(ctx, "deleting " + instance_id); !c) return c;
  const auto slash = instance_id.find('/');
  // A bare name is CAA's id form (one zone): the first zone.
  const std::string zone =
      slash == std::string::npos ? config_.zones.front() : instance_id.substr(0, slash);
  const std::string name = slash == std::string::npos ? instance_id : instance_id.substr(slash + 1);
  if (!IsValidZoneName(zone) || !IsValidInstanceName(name)) {
    return Fail(Code::kInvalidArgument, "gcp: \"", instance_id,
                "\" is not an instance id (<zone>/<name>)");
  }
  return DeleteIn(zone, name, ctx);
}

Result<void> GcpProvider::DeleteLeftovers(const std::string& name, const Owner& owner,
                                          const OpContext& ctx) {
  if (auto c = CheckContext(ctx, "removing leftovers of " + name); !c) return c;
  if (!IsValidInstanceName(name)) return {};  // no instance can have that name
  for (const auto& zone : config_.zones) {
    if (auto d = DeleteOwned(zone, name, owner, ctx); !d) return d;
  }
  return {};
}

Result<std::vector<Instance>> GcpProvider::ListInstances(const std::string& node,
                                                         const OpContext& ctx) {
  if (auto c = CheckContext(ctx, "listing instances"); !c) return std::unexpected(c.error());
  std::vector<Instance> mine;
  const std::string filter = "labels." + std::string(kNodeLabel) + " = " + Quoted(LabelValue(node));
  for (const auto& zone : config_.zones) {
    auto list = List(zone, filter, ctx);
    if (!list) return std::unexpected(list.error());
    for (const auto& info : *list) {
      Instance i = ToInstance(info);
      if (i.owner.node == node)
        mine.push_back(std::move(i));  // labels are lossy; the metadata is exact
    }
  }
  return mine;
}

Result<void> GcpProvider::Verify(const OpContext& ctx) {
  if (auto c = CheckContext(ctx, "verifying the configuration"); !c) return c;
  auto project = compute_.Call("GET", compute_.ProjectPath(""), "",
                               "gcp: projects.get " + config_.project_id, ctx);
  if (!project) {
    Error e = project.error();
    if (e.code == Code::kNotFound) {
      e.code = Code::kFailedPrecondition;
      e.message += " (check -gcp-project-id / GCP_PROJECT_ID)";
    }
    return std::unexpected(std::move(e));
  }
  if (!config_.image_name.empty()) {
    if (auto gb = ImageSizeGb(config_.image_name, ctx); !gb) return std::unexpected(gb.error());
  }
  if (auto policy = Policy(ctx); !policy) return std::unexpected(policy.error());
  return {};
}

}  // namespace

Result<std::unique_ptr<Provider>> MakeGcpProvider(GcpConfig config) {
  http::ClientOptions options;
  options.ca_bundle = config.ca_bundle;
  options.max_response_bytes = config.max_response_bytes;
  auto client = std::make_unique<http::Client>(options);
  TokenOptions token_options;
  token_options.token_endpoint = config.token_endpoint;
  if (!config.metadata_host.empty()) token_options.metadata_host = config.metadata_host;
  std::string key_project;
  auto tokens = MakeTokenSource(config.credentials, *client, token_options, &key_project);
  if (!tokens) return std::unexpected(tokens.error());
  if (config.project_id.empty())
    config.project_id = key_project;  // the key's project, when not given
  if (auto valid = ValidateConfig(config); !valid) return std::unexpected(valid.error());
  return std::make_unique<GcpProvider>(std::move(config), std::move(client), std::move(*tokens));
}

}  // namespace pp::providers::gcp
