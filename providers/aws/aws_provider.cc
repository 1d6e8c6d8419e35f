#include "providers/aws/aws_provider.h"

#include <openssl/rand.h>
#include <spdlog/spdlog.h>

#include <functional>
#include <map>
#include <mutex>
#include <random>
#include <regex>
#include <set>
#include <thread>

#include "common/base/go_flags.h"
#include "common/base/timed_mutex.h"
#include "providers/aws/credentials.h"
#include "providers/aws/ec2_client.h"
#include "providers/aws/ec2_xml.h"
#include "providers/batch_poller.h"
#include "providers/instance_types.h"
#include "providers/undo.h"

namespace pp::providers::aws {
namespace {

using Clock = std::chrono::steady_clock;
using namespace std::chrono_literals;

// DescribeInstances takes at most 1000 instance ids per call (EC2 API Reference,
// DescribeInstances, InstanceId.N), and MaxResults between 5 and 1000.
constexpr std::size_t kMaxIdsPerCall = 1000;
constexpr auto kCleanupBudget = 60s;
constexpr std::size_t kMaxUserData = 16384;

// The states a live instance can be in; "shutting-down" and "terminated" are on their way out.
const std::vector<std::string> kLiveStates = {"pending", "running", "stopping", "stopped"};

Result<void> CheckContext(const OpContext& ctx, std::string_view what) {
  if (ctx.stop.stop_requested()) return Fail(Code::kCancelled, "aws: ", what, ": cancelled");
  if (Clock::now() >= ctx.deadline)
    return Fail(Code::kDeadlineExceeded, "aws: ", what, ": deadline passed");
  return {};
}

// A fresh budget for cleaning up after a failure: the caller's own may be what ran out.
OpContext CleanupContext() { return OpContext{Clock::now() + kCleanupBudget, {}}; }

// 32 hex characters: an EC2 ClientToken (at most 64 ASCII characters, EC2 User Guide "Ensure
// idempotency").
std::string NewClientToken() {
  unsigned char bytes[16];
  if (RAND_bytes(bytes, sizeof bytes) != 1) {
    std::random_device rd;
    for (auto& b : bytes) b = static_cast<unsigned char>(rd());
  }
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out;
  for (unsigned char b : bytes) {
    out += kDigits[b >> 4];
    out += kDigits[b & 15];
  }
  return out;
}

std::string Join(const std::vector<std::string>& v, std::string_view sep) {
  std::string out;
  for (const auto& s : v) {
    if (!out.empty()) out += sep;
    out += s;
  }
  return out;
}

class AwsProvider final : public Provider {
 public:
  AwsProvider(AwsConfig config, std::chrono::milliseconds poll_interval)
      : config_(std::move(config)),
        poll_interval_(poll_interval),
        http_(std::make_unique<http::Client>(http::ClientOptions{
            .ca_bundle = config_.ca_bundle, .max_response_bytes = config_.max_response_bytes})),
        credentials_(MakeCredentials()),
        ec2_(*http_, Ec2Endpoint{Ec2Url(), config_.region}, *credentials_),
        poller_([this](const std::vector<std::string>& ids,
                       const OpContext& ctx) { return Poll(ids, ctx); },
                poll_interval, kMaxIdsPerCall) {}

  Result<Instance> CreateInstance(const InstanceSpec& spec, const OpContext& ctx) override;
  Result<void> DeleteInstance(const std::string& id, const OpContext& ctx) override;
  Result<void> DeleteLeftovers(const std::string& name, const Owner& owner,
                               const OpContext& ctx) override;
  Result<std::vector<Instance>> ListInstances(const std::string& node,
                                              const OpContext& ctx) override;
  Result<void> Verify(const OpContext& ctx) override;

 private:
  std::unique_ptr<CredentialsProvider> MakeCredentials() {
    CredentialsConfig c;
    c.access_key_id = config_.access_key_id;
    c.secret_access_key = config_.secret_access_key;
    c.session_token = config_.session_token;
    c.profile = config_.profile;
    c.sts_endpoint = config_.sts_endpoint;
    if (!config_.imds_endpoint.empty()) c.imds_endpoint = config_.imds_endpoint;
    c.FromEnvironment(config_.region);
    return MakeDefaultCredentialsProvider(c, *http_);
  }
  std::string Ec2Url() const {
    return config_.ec2_endpoint.empty() ? "https://ec2." + config_.region + ".amazonaws.com/"
                                        : config_.ec2_endpoint;
  }

  Result<InstanceTypePolicy> Types(const OpContext& ctx);
  // The root device of `image_id` (cached): what BlockDeviceMapping.1 must name to resize it.
  Result<Ec2Image> Image(const std::string& image_id, const OpContext& ctx);
  Result<std::vector<Ec2Instance>> Describe(const QueryParams& base, const OpContext& ctx);
  Result<std::map<std::string, PolledInstance>> Poll(const std::vector<std::string>& ids,
                                                     const OpContext& ctx);
  Result<void> Terminate(const std::vector<std::string>& ids, const OpContext& ctx);
  Result<Ec2Instance> Run(const InstanceSpec& spec, const std::string& type, const Ec2Image& image,
                          const std::string& token, const OpContext& ctx);
  Instance ToInstance(const Ec2Instance& e) const;
  std::string AddressOf(const Ec2Instance& e) const {
    return config_.use_public_ip ? e.public_ip : e.private_ip;
  }

  const AwsConfig config_;
  const std::chrono::milliseconds poll_interval_;
  const std::unique_ptr<http::Client> http_;
  const std::unique_ptr<CredentialsProvider> credentials_;
  Ec2Client ec2_;
  std::mutex mu_;  // guards types_ and images_
  // Held while types or an image are fetched, so that 100 pods starting together make one
  // DescribeInstanceTypes and one DescribeImages, not 100 of each.
  pp::TimedMutex fetch_mu_;
  std::optional<InstanceTypePolicy> types_;
  std::map<std::string, Ec2Image> images_;
  BatchPoller poller_;  // last: its thread stops before the members it uses go
};

Result<InstanceTypePolicy> AwsProvider::Types(const OpContext& ctx) {
  {
    std::lock_guard lock(mu_);
    if (types_) return *types_;
  }
  std::unique_lock fetch(fetch_mu_, std::defer_lock);
  if (!fetch.try_lock_until(ctx.deadline)) {
    return Fail(Code::kDeadlineExceeded, "aws: waiting for the instance types another call fetches");
  }
  {
    std::lock_guard lock(mu_);
    if (types_) return *types_;
  }
  std::vector<std::string> names = config_.instance_types;
  if (names.empty()) names.push_back(config_.instance_type);
  InstanceTypePolicy policy;
  policy.default_type = config_.instance_type;
  QueryParams params;
  AddList(params, "InstanceType", names);
  std::string next;
  do {
    QueryParams page = params;
    if (!next.empty()) page.emplace_back("NextToken", next);
    std::optional<Ec2InstanceTypePage> got;
    auto ok = ec2_.Call(
        "DescribeInstanceTypes", page,
        [&](const http::Response& r) -> Result<void> {
          std::string error;
          got = ParseInstanceTypesXml(r.body, error);
          if (!got) return Fail(Code::kInternal, error);
          return {};
        },
        ctx);
    if (!ok) {
      Error e = ok.error();
      if (e.code == Code::kInvalidArgument)
        e.code = Code::kFailedPrecondition;  // InvalidInstanceType
      e.message = "aws: instance types " + Join(names, ",") +
                  " (PODVM_INSTANCE_TYPE, PODVM_INSTANCE_TYPES): " + e.message;
      return std::unexpected(std::move(e));
    }
    for (const auto& t : got->types)
      policy.allowed.push_back({t.name, t.vcpus, t.memory_mib, t.gpus, t.gpu_model});
    next = got->next_token;
  } while (!next.empty());
  for (const auto& name : names) {
    const bool known = std::any_of(policy.allowed.begin(), policy.allowed.end(),
                                   [&](const InstanceType& t) { return t.name == name; });
    if (!known) {
      return Fail(Code::kFailedPrecondition, "aws: instance type ", name,
                  " (PODVM_INSTANCE_TYPE, PODVM_INSTANCE_TYPES) is not offered in ",
                  config_.region);
    }
  }
  // Without PODVM_INSTANCE_TYPES only the default is allowed, which an empty list says (CAA's
  // rule); the lookup above still proves the type exists.
  if (config_.instance_types.empty()) policy.allowed.clear();
  std::lock_guard lock(mu_);
  types_ = policy;
  return policy;
}

Result<Ec2Image> AwsProvider::Image(const std::string& image_id, const OpContext& ctx) {
  {
    std::lock_guard lock(mu_);
    if (auto it = images_.find(image_id); it != images_.end()) return it->second;
  }
  std::unique_lock fetch(fetch_mu_, std::defer_lock);
  if (!fetch.try_lock_until(ctx.deadline)) {
    return Fail(Code::kDeadlineExceeded, "aws: waiting for image ", image_id, " another call looks up");
  }
  {
    std::lock_guard lock(mu_);
    if (auto it = images_.find(image_id); it != images_.end()) return it->second;
  }
  QueryParams params;
  AddList(params, "ImageId", {image_id});
  std::optional<std::vector<Ec2Image>> got;
  auto ok = ec2_.Call(
      "DescribeImages", params,
      [&](const http::Response& r) -> Result<void> {
        std::string error;
        got = ParseImagesXml(r.body, error);
        if (!got) return Fail(Code::kInternal, error);
        return {};
      },
      ctx);
  if (!ok) {
    Error e = ok.error();
    if (e.code == Code::kInvalidArgument || e.code == Code::kNotFound)
      e.code = Code::kFailedPrecondition;
    e.message =
        "aws: image " + image_id + " (PODVM_AMI_ID or the pod's image annotation): " + e.message;
    return std::unexpected(std::move(e));
  }
  if (got->empty()) {
    return Fail(Code::kFailedPrecondition, "aws: image ", image_id,
                " (PODVM_AMI_ID or the pod's image annotation) does not exist or is not visible to "
                "this account");
  }
  std::lock_guard lock(mu_);
  images_[image_id] = got->front();
  return got->front();
}

Result<std::vector<Ec2Instance>> AwsProvider::Describe(const QueryParams& base,
                                                       const OpContext& ctx) {
  std::vector<Ec2Instance> all;
  std::string next;
  do {
    QueryParams params = base;
    if (!next.empty()) params.emplace_back("NextToken", next);
    std::optional<Ec2InstancePage> got;
    auto ok = ec2_.Call(
        "DescribeInstances", params,
        [&](const http::Response& r) -> Result<void> {
          std::string error;
          got = ParseInstancesXml(r.body, error);
          if (!got) return Fail(Code::kInternal, error);
          return {};
        },
        ctx);
    if (!ok) return std::unexpected(ok.error());
    for (auto& i : got->instances) all.push_back(std::move(i));
    next = got->next_token;
  } while (!next.empty());
  return all;
}

Result<std::map<std::string, PolledInstance>> AwsProvider::Poll(const std::vector<std::string>& ids,
                                                                const OpContext& ctx) {
  // EC2 refuses the whole call when one id is unknown (InvalidInstanceID.NotFound, common right
  // after RunInstances: the API is eventually consistent); its message names the unknown ids.
  // Those count as "not seen yet" and the others are asked again.
  std::vector<std::string> ask = ids;
  std::map<std::string, PolledInstance> out;
  for (int round = 0; round < 3 && !ask.empty(); ++round) {
    QueryParams params;
    AddList(params, "InstanceId", ask);
    auto got = Describe(params, ctx);
    if (got) {
      for (const auto& e : *got) {
        PolledInstance p;
        p.state = e.state;
        if (const std::string ip = AddressOf(e); !ip.empty() && ip != "0.0.0.0")
          p.ips.push_back(ip);
        p.detail = e.state_reason;
        out[e.id] = std::move(p);
      }
      return out;
    }
    if (got.error().code != Code::kNotFound) return std::unexpected(got.error());
    std::set<std::string> unknown;
    static const std::regex kId("i-[0-9a-fA-F]+");
    const std::string& msg = got.error().message;
    for (std::sregex_iterator it(msg.begin(), msg.end(), kId), end; it != end; ++it)
      unknown.insert(it->str());
    std::vector<std::string> rest;
    for (const auto& id : ask) {
      if (!unknown.contains(id)) rest.push_back(id);
    }
    if (rest.size() == ask.size()) return out;  // could not tell which: none seen this round
    ask = std::move(rest);
  }
  return out;
}

Result<void> AwsProvider::Terminate(const std::vector<std::string>& ids, const OpContext& ctx) {
  QueryParams params;
  AddList(params, "InstanceId", ids);
  auto ok = ec2_.Call(
      "TerminateInstances", params,
      [](const http::Response& r) -> Result<void> {
        std::string error;
        if (!ParseTerminateXml(r.body, error)) return Fail(Code::kInternal, error);
        return {};
      },
      ctx);
  if (!ok && ok.error().code == Code::kNotFound) return {};  // already gone: deleting is done
  return ok;
}

Result<Ec2Instance> AwsProvider::Run(const InstanceSpec& spec, const std::string& type,
                                     const Ec2Image& image, const std::string& token,
                                     const OpContext& ctx) {
  RunInstancesRequest r;
  r.image_id = image.id;
  r.instance_type = type;
  r.user_data = spec.user_data;
  r.subnet_id = config_.subnet_id;
  r.security_group_ids = config_.security_group_ids;
  r.key_name = config_.key_name;
  r.public_ip = config_.use_public_ip;
  r.sev_snp = !config_.disable_cvm;
  if (config_.root_volume_gib > 0 && !image.root_device_name.empty()) {
    r.root_device_name = image.root_device_name;
    r.root_volume_gib = std::max(config_.root_volume_gib, image.root_volume_gib);
  }
  r.tags = {{"Name", spec.name}, {kNodeTag, spec.owner.node}, {kSandboxTag, spec.owner.sandbox_id}};
  for (const auto& t : config_.tags) r.tags.push_back(t);
  r.client_token = token;
  QueryParams params = RunInstancesParams(r);
  if (config_.use_launch_template) {
    // The template supplies image, type and network (CAA: USE_PODVM_LAUNCHTEMPLATE).
    std::erase_if(params, [](const auto& p) {
      return p.first == "ImageId" || p.first == "InstanceType" || p.first == "SubnetId" ||
             p.first.starts_with("SecurityGroupId.") || p.first.starts_with("NetworkInterface.") ||
             p.first.starts_with("CpuOptions.") || p.first.starts_with("BlockDeviceMapping.");
    });
    params.emplace_back("LaunchTemplate.LaunchTemplateName", config_.launch_template_name);
  }
  std::optional<Ec2InstancePage> got;
  auto ok = ec2_.Call(
      "RunInstances", params,
      [&](const http::Response& resp) -> Result<void> {
        std::string error;
        got = ParseInstancesXml(resp.body, error);
        if (!got) return Fail(Code::kInternal, error);
        return {};
      },
      ctx);
  if (!ok) return std::unexpected(ok.error());
  return got->instances.front();
}

Result<Instance> AwsProvider::CreateInstance(const InstanceSpec& spec, const OpContext& ctx) {
  if (auto ok = CheckContext(ctx, "creating " + spec.name); !ok) return std::unexpected(ok.error());
  // EC2 takes at most 16 KiB of user data before base64 (EC2 User Guide, "Run commands when you
  // launch an EC2 instance with user data input").
  if (spec.user_data.size() > kMaxUserData) {
    return Fail(Code::kInvalidArgument, "aws: ", spec.name, ": user-data is ",
                std::to_string(spec.user_data.size()), " bytes; EC2 takes at most 16384");
  }
  auto policy = Types(ctx);
  if (!policy) return std::unexpected(policy.error());
  auto candidates = SelectInstanceTypes(spec, *policy);
  if (!candidates) return std::unexpected(candidates.error());
  Ec2Image image{spec.image.empty() ? config_.image_id : spec.image, "", 0};
  if (!config_.use_launch_template && config_.root_volume_gib > 0) {
    auto found = Image(image.id, ctx);
    if (!found) return std::unexpected(found.error());
    image = *found;
  }

  Undo undo("aws");
  std::optional<Ec2Instance> launched;
  std::vector<std::string> tried;
  for (const std::string& type : *candidates) {
    const std::string token = NewClientToken();  // one per candidate, reused by every retry
    auto run = Run(spec, type, image, token, ctx);
    if (run) {
      launched = std::move(*run);
      break;
    }
    tried.push_back(type + " (" + run.error().message + ")");
    if (run.error().code == Code::kResourceExhausted) continue;
    // The call may have reached EC2 even though no answer did (timeout, 5xx after the launch):
    // an instance made with this token must not outlive the failure.
    if (run.error().code == Code::kUnavailable || run.error().code == Code::kAborted ||
        run.error().code == Code::kDeadlineExceeded || run.error().code == Code::kCancelled ||
        run.error().code == Code::kInternal) {
      // DescribeInstances is eventually consistent: an instance launched a moment ago may not be
      // listed yet, so it is asked three times, 2 s apart (EC2 API Reference, "Eventual
      // consistency"). What is still missed is found by its tags: DeleteLeftovers at StopVM,
      // reconciliation at the next start.
      QueryParams params;
      AddFilters(params, {{"client-token", {token}}, {"instance-state-name", kLiveStates}});
      for (int look = 0; look < 3; ++look) {
        if (look > 0) std::this_thread::sleep_for(std::chrono::seconds(2));
        auto stray = Describe(params, CleanupContext());
        if (!stray || stray->empty()) continue;
        std::vector<std::string> ids;
        for (const auto& i : *stray) ids.push_back(i.id);
        spdlog::warn("aws: {}: terminating {} launched by a failed RunInstances", spec.name,
                     Join(ids, ","));
        if (auto gone = Terminate(ids, CleanupContext()); !gone)
          spdlog::warn("{}", gone.error().message);
        break;
      }
    }
    Error e = run.error();
    e.message = "aws: creating " + spec.name + " as " + type + ": " + e.message;
    return std::unexpected(std::move(e));
  }
  if (!launched) {
    return Fail(Code::kResourceExhausted, "aws: creating ", spec.name,
                ": no capacity for any instance type; tried ", Join(tried, "; "));
  }
  const std::string id = launched->id;
  undo.Add("terminate " + id, [this, id, name = spec.name] {
    if (auto gone = Terminate({id}, CleanupContext()); !gone) {
      spdlog::warn("aws: {}: terminating {} after a failed create: {}", name, id,
                   gone.error().message);
    }
  });
  spdlog::info("aws: {}: launched {} ({})", spec.name, id, launched->instance_type);

  const auto running = [](const PolledInstance& p) {
    return p.state != "pending" && (p.state != "running" || !p.ips.empty());
  };
  // Without batching (AWS_BATCH_POLL=false, for comparison) this instance gets a poll loop of its
  // own: one DescribeInstances of its id per interval, as a client without a shared poller makes.
  std::optional<BatchPoller> own;
  if (!config_.batch_poll) {
    own.emplace([this](const std::vector<std::string>& ids, const OpContext& c) { return Poll(ids, c); },
                poll_interval_, 1);
  }
  auto state = (own ? *own : poller_).Wait(id, running, ctx);
  if (!state) {
    Error e = state.error();
    e.message = "aws: " + spec.name + " (" + id + ") did not run with an address: " + e.message;
    return std::unexpected(std::move(e));
  }
  if (state->state != "running") {
    return Fail(Code::kUnavailable, "aws: ", spec.name, " (", id, ") went to ", state->state,
                state->detail.empty() ? "" : ": " + state->detail);
  }
  undo.Commit();
  Instance out;
  out.id = id;
  out.name = spec.name;
  out.ips = state->ips;
  out.owner = spec.owner;
  return out;
}

Result<void> AwsProvider::DeleteInstance(const std::string& id, const OpContext& ctx) {
  if (auto ok = CheckContext(ctx, "deleting " + id); !ok) return std::unexpected(ok.error());
  static const std::regex kId("i-[0-9a-f]{8,32}");
  if (!std::regex_match(id, kId))
    return Fail(Code::kInvalidArgument, "aws: '", id, "' is not an EC2 instance id");
  auto ok = Terminate({id}, ctx);
  if (!ok) {
    Error e = ok.error();
    e.message = "aws: deleting " + id + ": " + e.message;
    return std::unexpected(std::move(e));
  }
  spdlog::info("aws: terminated {}", id);
  return {};
}

Result<void> AwsProvider::DeleteLeftovers(const std::string& name, const Owner& owner,
                                          const OpContext& ctx) {
  if (auto ok = CheckContext(ctx, "leftovers of " + name); !ok) return std::unexpected(ok.error());
  QueryParams params;
  AddFilters(params, {{"tag:Name", {name}},
                      {std::string("tag:") + kNodeTag, {owner.node}},
                      {std::string("tag:") + kSandboxTag, {owner.sandbox_id}},
                      {"instance-state-name", kLiveStates}});
  params.emplace_back("MaxResults", "1000");
  auto found = Describe(params, ctx);
  if (!found) return std::unexpected(found.error());
  if (found->empty()) return {};
  std::vector<std::string> ids;
  for (const auto& i : *found) ids.push_back(i.id);
  spdlog::info("aws: {}: terminating leftover {}", name, Join(ids, ","));
  return Terminate(ids, ctx);
}

Instance AwsProvider::ToInstance(const Ec2Instance& e) const {
  Instance out;
  out.id = e.id;
  const auto tag = [&](const std::string& k) {
    const auto it = e.tags.find(k);
    return it == e.tags.end() ? std::string() : it->second;
  };
  out.name = tag("Name");
  out.owner = Owner{tag(kNodeTag), tag(kSandboxTag)};
  if (const std::string ip = AddressOf(e); !ip.empty()) out.ips.push_back(ip);
  return out;
}

Result<std::vector<Instance>> AwsProvider::ListInstances(const std::string& node,
                                                         const OpContext& ctx) {
  if (auto ok = CheckContext(ctx, "listing instances"); !ok) return std::unexpected(ok.error());
  QueryParams params;
  AddFilters(params,
             {{std::string("tag:") + kNodeTag, {node}}, {"instance-state-name", kLiveStates}});
  params.emplace_back("MaxResults", "1000");
  auto found = Describe(params, ctx);
  if (!found) return std::unexpected(found.error());
  std::vector<Instance> out;
  for (const auto& e : *found) out.push_back(ToInstance(e));
  return out;
}

Result<void> AwsProvider::Verify(const OpContext& ctx) {
  if (auto ok = CheckContext(ctx, "verifying the configuration"); !ok)
    return std::unexpected(ok.error());
  if (auto types = Types(ctx); !types) return std::unexpected(types.error());
  if (!config_.use_launch_template) {
    if (auto image = Image(config_.image_id, ctx); !image) return std::unexpected(image.error());
  }
  spdlog::info("aws: configuration verified (credentials from {})", credentials_->SourceName());
  return {};
}

}  // namespace

Result<std::unique_ptr<Provider>> MakeAwsProvider(AwsConfig config) {
  FillFromInstanceMetadata(config);
  if (auto ok = ValidateConfig(config); !ok) return std::unexpected(ok.error());
  const auto interval = ParseGoDuration(config.poll_interval);
  const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(*interval);
  return std::make_unique<AwsProvider>(std::move(config), ms);
}

}  // namespace pp::providers::aws
