#include "adaptor/sandbox_manager.h"

#include <utility>

#include <spdlog/spdlog.h>

#include "common/base/backoff.h"
#include "common/base/log.h"
#include <set>
#include <stop_token>

namespace pp::adaptor {
namespace {

using Clock = std::chrono::steady_clock;

std::string Millis(Clock::duration d) {
  return std::to_string(std::chrono::duration_cast<std::chrono::milliseconds>(d).count()) + " ms";
}

// Says every 30 s that a long step of a StartVM is still going on, until Stop().
class StillWaiting {
 public:
  StillWaiting(const asio::any_io_executor& executor, std::string what)
      : state_(std::make_shared<State>(asio::make_strand(executor), std::move(what))) {
    asio::co_spawn(state_->timer.get_executor(), Loop(state_), asio::detached);
  }
  ~StillWaiting() { Stop(); }
  StillWaiting(const StillWaiting&) = delete;
  StillWaiting& operator=(const StillWaiting&) = delete;
  void Stop() {
    asio::post(state_->timer.get_executor(), [state = state_] {
      state->done = true;
      state->timer.cancel();
    });
  }

 private:
  struct State {
    State(asio::strand<asio::any_io_executor> strand, std::string w) : timer(strand), what(std::move(w)) {}
    asio::steady_timer timer;  // on its strand, with `done`
    std::string what;
    bool done = false;
    Clock::time_point since = Clock::now();
  };
  static asio::awaitable<void> Loop(std::shared_ptr<State> state) {
    while (!state->done) {
      state->timer.expires_after(std::chrono::seconds(30));
      auto [ec] = co_await state->timer.async_wait(kAwaitTuple);
      if (ec || state->done) co_return;
      spdlog::info("{}: still waiting ({} s)", state->what,
                   std::chrono::duration_cast<std::chrono::seconds>(Clock::now() - state->since).count());
    }
  }
  std::shared_ptr<State> state_;
};

}  // namespace

struct SandboxManager::Entry {
  Entry(std::string pod, std::string ns, std::string netns)
      : pod_name(std::move(pod)), pod_namespace(std::move(ns)), netns_path(std::move(netns)) {}
  // Immutable once the entry is in the map, so GetInfo and PlanNetwork may read them under mu_ alone.
  const std::string pod_name;
  const std::string pod_namespace;
  const std::string netns_path;
  std::mutex op;  // serializes CreateVM/StartVM/StopVM on this sandbox
  SandboxRecord record;  // guarded by op
  bool gone = false;     // guarded by op: StopVM finished; the entry is no longer in the map
  std::stop_source stop;  // StopVM asks a StartVM in progress to give up
  std::string published_instance_id;  // guarded by the manager's mu_, for GetInfo
  std::string unsettled_pool_vm;      // guarded by the manager's mu_: a pool VM taken by the StartVM in progress
};

// A GetInfo(wait) caller: its timer lives on a strand of its own, and Publish() cancels it there,
// so a wake-up can never slip in between the lookup and the wait.
struct SandboxManager::Waiter {
  explicit Waiter(asio::strand<asio::any_io_executor> s, Clock::time_point deadline) : timer(s, deadline) {}
  asio::steady_timer timer;
};

SandboxManager::SandboxManager(Options options, SandboxStore store, providers::Provider& provider,
                               BlockingPool& pool, AgentConnector* connector, const NodeNetwork* network)
    : options_(std::move(options)),
      store_(std::move(store)),
      provider_(provider),
      pool_(pool),
      connector_(connector),
      network_(network) {
  for (auto& record : store_.LoadAll()) {
    auto entry = std::make_shared<Entry>(record.request.pod_name, record.request.pod_namespace, record.request.netns_path);
    // A recovered sandbox keeps its VNI: no new sandbox may be given it while its tunnel may live.
    if (record.network) vnis_[static_cast<uint32_t>(record.network->vxlan_id)] = record.request.netns_path;
    if (record.state == SandboxState::kStarting) {
      // The previous process died inside StartVM: whatever it created is kept in instance_id and
      // deleted by the next StartVM or StopVM, and what the provider made before it had an
      // instance id (volumes) goes as leftovers.
      record.state = SandboxState::kCreated;
      record.leftovers = true;
    }
    if (record.state == SandboxState::kRunning) entry->published_instance_id = record.instance_id;
    const std::string pod = record.request.pod_namespace + "/" + record.request.pod_name;
    const ScopedLogFields log_fields({record.request.id, pod});
    spdlog::info("recovered sandbox {} (pod {}/{}, instance {})", ShortId(record.request.id),
                 record.request.pod_namespace, record.request.pod_name,
                 record.instance_id.empty() ? "none" : record.instance_id);
    const std::string id = record.request.id;
    entry->record = std::move(record);
    entries_.emplace(id, std::move(entry));
  }
}

SandboxManager::~SandboxManager() = default;

SandboxManager::StateCounts SandboxManager::CountByState() const {
  std::vector<std::shared_ptr<Entry>> entries;
  {
    std::lock_guard lock(mu_);
    for (const auto& [id, entry] : entries_) entries.push_back(entry);
  }
  StateCounts counts;
  for (const auto& entry : entries) {
    std::unique_lock op(entry->op, std::try_to_lock);
    if (!op.owns_lock()) {
      ++counts.starting;  // in a call (most often a StartVM)
      continue;
    }
    if (entry->gone) continue;
    switch (entry->record.state) {
      case SandboxState::kCreated: ++counts.created; break;
      case SandboxState::kStarting: ++counts.starting; break;
      case SandboxState::kRunning: ++counts.running; break;
    }
  }
  return counts;
}

std::string SandboxManager::PodOf(const std::string& id) const {
  std::lock_guard lock(mu_);
  const auto it = entries_.find(id);
  return it == entries_.end() ? std::string() : it->second->pod_namespace + "/" + it->second->pod_name;
}

std::shared_ptr<SandboxManager::Entry> SandboxManager::Find(const std::string& id) const {
  std::lock_guard lock(mu_);
  const auto it = entries_.find(id);
  return it == entries_.end() ? nullptr : it->second;
}

Clock::time_point SandboxManager::DeadlineOrDefault(Deadline deadline) const {
  return deadline ? *deadline : Clock::now() + options_.default_timeout;
}

void SandboxManager::CancelAll() {
  {
    std::lock_guard lock(mu_);
    for (const auto& [id, entry] : entries_) entry->stop.request_stop();
  }
  changed_.notify_all();
}

std::vector<SandboxRecord> SandboxManager::Snapshot() const {
  std::vector<std::shared_ptr<Entry>> entries;
  {
    std::lock_guard lock(mu_);
    for (const auto& [id, entry] : entries_) entries.push_back(entry);
  }
  std::vector<SandboxRecord> out;
  for (const auto& entry : entries) {
    std::lock_guard op(entry->op);
    if (!entry->gone) out.push_back(entry->record);
  }
  return out;
}

asio::awaitable<Result<std::string>> SandboxManager::CreateVM(hypervisor::CreateVMRequest request) {
  auto parsed = ParseCreateVM(request, options_.limits);
  if (!parsed) co_return std::unexpected(parsed.error());
  auto job = [this, req = std::move(*parsed)]() mutable { return DoCreate(std::move(req)); };
  co_return co_await pool_.Run<std::string>(std::move(job));
}

Result<std::string> SandboxManager::DoCreate(SandboxRequest request) {
  const std::string id = request.id;
  const std::string pod = request.pod_namespace + "/" + request.pod_name;
  const ScopedLogFields log_fields({id, pod});
  if (store_.AgentSocketPath(id).size() >= kMaxUnixSocketPath) {
    return Fail(Code::kInvalidArgument, "sandbox id of ", std::to_string(id.size()),
                " characters makes the agent socket path longer than a unix socket allows (",
                std::to_string(kMaxUnixSocketPath - 1), " bytes) under ", store_.pods_dir());
  }
  for (;;) {
    std::unique_lock lock(mu_);
    const auto it = entries_.find(id);
    if (it == entries_.end()) break;
    auto entry = it->second;
    lock.unlock();
    std::lock_guard op(entry->op);
    if (entry->gone) continue;  // stopped meanwhile: create afresh
    if (entry->record.request == request) return store_.AgentSocketPath(id);
    return Fail(Code::kAlreadyExists, "sandbox ", id,
                " already exists with a different request; StopVM it before reusing the id");
  }

  if (store_.HasPodDir(id)) {
    return Fail(Code::kFailedPrecondition, "sandbox ", id, " has a directory with an unreadable record in ",
                store_.pods_dir(), "; StopVM it, or an operator fixes or removes ", store_.PodDir(id));
  }
  auto at_limit = [this]() -> Result<void> {  // mu_ held
    if (options_.limit_per_node == 0 || entries_.size() < options_.limit_per_node) return {};
    ++limit_rejections_;
    if (options_.metrics) options_.metrics->LimitRejection();
    return Fail(Code::kResourceExhausted, "this node runs ", std::to_string(entries_.size()),
                " peer pod sandboxes, its limit (-peerpods-limit-per-node / PEERPODS_LIMIT_PER_NODE ",
                std::to_string(options_.limit_per_node), ")");
  };
  {
    std::lock_guard lock(mu_);
    if (auto ok = at_limit(); !ok) return std::unexpected(ok.error());
  }
  auto network = PlanNetwork(request);
  if (!network) return std::unexpected(network.error());
  // The entry is complete before other threads can see it (GetInfo reads it under mu_ alone).
  auto entry = std::make_shared<Entry>(request.pod_name, request.pod_namespace, request.netns_path);
  std::unique_lock op(entry->op);
  entry->record.network = std::move(*network);
  entry->record.instance_name = InstanceName(request.pod_name, id);
  entry->record.created_unix =
      std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch()).count();
  entry->record.request = std::move(request);
  {
    std::lock_guard lock(mu_);
    if (entries_.contains(id)) {
      if (entry->record.network) vnis_.erase(static_cast<uint32_t>(entry->record.network->vxlan_id));
      return Fail(Code::kAborted, "sandbox ", id, " is being created by a concurrent call; retry");
    }
    if (auto ok = at_limit(); !ok) {  // concurrent CreateVMs of other sandboxes came first
      if (entry->record.network) vnis_.erase(static_cast<uint32_t>(entry->record.network->vxlan_id));
      return std::unexpected(ok.error());
    }
    entries_.emplace(id, entry);
  }
  if (auto saved = store_.Save(entry->record); !saved) {
    (void)store_.Remove(id);
    entry->gone = true;
    std::lock_guard lock(mu_);
    entries_.erase(id);
    if (entry->record.network) vnis_.erase(static_cast<uint32_t>(entry->record.network->vxlan_id));
    return std::unexpected(saved.error());
  }
  spdlog::debug("CreateVM {}: pod {}/{}, instance {}", ShortId(id), entry->record.request.pod_namespace,
               entry->record.request.pod_name, entry->record.instance_name);
  if (const auto& net = entry->record.network) {
    spdlog::info("CreateVM {}: pod network {}{}{} on {} (MAC {}, MTU {}), VNI {} to node {}", ShortId(id), net->pod_ip,
                 net->pod_ipv6.empty() ? "" : " ", net->pod_ipv6, net->interface, net->pod_hw_addr, net->mtu,
                 net->vxlan_id, net->worker_node_ip);
  }
  return store_.AgentSocketPath(id);
}

Result<std::optional<podvm::PodNetwork>> SandboxManager::PlanNetwork(const SandboxRequest& request) {
  if (!network_ || request.netns_path.empty()) return std::nullopt;
  const PodNetworkOptions& options = network_->options();
  uint32_t vni = 0;
  {
    std::lock_guard lock(mu_);
    for (const auto& [held, netns] : vnis_) {
      if (netns == request.netns_path) {
        return Fail(Code::kAlreadyExists, "pod network namespace ", request.netns_path,
                    " is already tunnelled (VXLAN id ", std::to_string(held), ") for another sandbox; one pod VM per pod netns");
      }
    }
    // The lowest VNI no live sandbox holds (CAA counts up from the minimum and starts again there
    // after a restart, which can hand out a VNI a live tunnel still uses).
    for (uint32_t candidate = options.vni_min;; ++candidate) {
      if (!vnis_.contains(candidate)) {
        vni = candidate;
        break;
      }
      if (candidate == options.vni_max) {
        return Fail(Code::kResourceExhausted, "no free VXLAN id: all ", std::to_string(options.vni_max - options.vni_min + 1),
                    " of -vxlan-min-id ", std::to_string(options.vni_min), " to -vxlan-max-id ",
                    std::to_string(options.vni_max), " are held by live sandboxes");
      }
    }
    vnis_.emplace(vni, request.netns_path);
  }
  auto inspected = network_->Inspect(request.netns_path, vni);
  if (!inspected) {
    std::lock_guard lock(mu_);
    vnis_.erase(vni);
    return std::unexpected(inspected.error());
  }
  return std::optional<podvm::PodNetwork>(std::move(*inspected));
}

void SandboxManager::ReleaseVni(const SandboxRecord& record) {
  if (!record.network) return;
  std::lock_guard lock(mu_);
  vnis_.erase(static_cast<uint32_t>(record.network->vxlan_id));
}

Result<void> SandboxManager::TearDownTunnel(Entry& entry) {
  SandboxRecord& record = entry.record;
  if (!network_ || !record.network || record.tunnel == TunnelState::kNone) return {};
  if (auto down = network_->TearDown(record.request.netns_path, *record.network); !down) {
    return Fail(down.error().code, "taking down the pod network tunnel (VNI ", std::to_string(record.network->vxlan_id),
                ") in ", record.request.netns_path, ": ", down.error().message);
  }
  spdlog::info("sandbox {}: pod network tunnel (VNI {}) taken down", ShortId(record.request.id), record.network->vxlan_id);
  record.tunnel = TunnelState::kNone;
  if (auto saved = store_.Save(record); !saved) spdlog::warn("sandbox {}: {}", ShortId(record.request.id), saved.error().message);
  return {};
}

asio::awaitable<Result<void>> SandboxManager::StartVM(std::string id, Deadline deadline) {
  if (auto ok = ValidateSandboxId(id, options_.limits); !ok) co_return ok;
  // Once an instance may exist, the cleanup of a failure must not be cut short by the caller's
  // deadline: the whole StartVM runs to completion, bounded by that same deadline.
  const auto started = Clock::now();
  auto work = StartAndConnect(std::move(id), DeadlineOrDefault(deadline));
  auto result = co_await RunToCompletion(std::move(work));
  if (options_.metrics) {
    options_.metrics->ObserveStartVM(options_.provider_name, result.has_value(),
                                     std::chrono::duration<double>(Clock::now() - started).count());
  }
  co_return result;
}

void SandboxManager::SettlePoolClaim(const std::string& id) {
  if (!warm_pool_) return;
  auto entry = Find(id);
  if (!entry) return;
  std::string vm;
  {
    std::lock_guard lock(mu_);
    vm = std::exchange(entry->unsettled_pool_vm, "");
  }
  if (!vm.empty()) warm_pool_->Settle(vm);
}

asio::awaitable<Result<void>> SandboxManager::StartAndConnect(std::string id, Clock::time_point until) {
  // Whatever happens below, a pool VM this StartVM took is settled when it is over (refill).
  struct SettleAtEnd {
    SandboxManager* manager;
    std::string id;
    ~SettleAtEnd() { manager->SettlePoolClaim(id); }
  } settle_at_end{this, id};
  const auto executor = co_await asio::this_coro::executor;
  auto job = [this, id, until] { return DoStart(id, until); };
  StillWaiting creating(executor, "StartVM " + ShortId(id) + ": the provider is creating the pod VM");
  auto started = co_await pool_.Run<std::pair<SandboxRecord, bool>>(std::move(job));
  creating.Stop();
  if (!started) co_return std::unexpected(started.error());
  if (!connector_) co_return Result<void>{};
  if (!started->second) {
    // Already running: the answer is that of its agent path. A concurrent StartVM (a shim retry)
    // joins the connect in progress; one cut short before its proxy came up must not answer OK
    // with no agent.ttrpc, so it connects again.
    auto joined = co_await connector_->Join(id);
    if (joined) co_return *joined;
    LogSandbox(spdlog::level::info, id, PodOf(id), "StartVM {}: running, but its agent path is missing; connecting again",
               ShortId(id));
  }
  const auto waiting = Clock::now();
  StillWaiting answering(executor, "StartVM " + ShortId(id) + ": waiting for the pod VM's agent to answer");
  auto ready = co_await connector_->Connect(started->first, store_.AgentSocketPath(id), until);
  answering.Stop();
  if (ready) {
    LogSandbox(spdlog::level::debug, id, PodOf(id), "StartVM {}: agent answered through the chain in {}", ShortId(id),
               Millis(Clock::now() - waiting));
    co_return Result<void>{};
  }
  LogSandbox(spdlog::level::warn, id, PodOf(id), "StartVM {}: {}; deleting the instance", ShortId(id),
             ready.error().ToString());
  auto undo = [this, id] { return DoAbandonStart(id); };
  if (auto undone = co_await pool_.Run<void>(std::move(undo)); !undone) {
    LogSandbox(spdlog::level::err, id, PodOf(id), "StartVM {}: {}", ShortId(id), undone.error().ToString());
  }
  co_return std::unexpected(ready.error());
}

Result<void> SandboxManager::DoAbandonStart(const std::string& id) {
  auto entry = Find(id);
  if (!entry) return {};
  const std::string pod = entry->pod_namespace + "/" + entry->pod_name;
  const ScopedLogFields log_fields({id, pod});
  std::lock_guard op(entry->op);
  if (entry->gone) return {};
  return DeleteRecordedInstance(*entry, {Clock::now() + options_.default_timeout, {}});
}

asio::awaitable<void> SandboxManager::ResumeAgents() {
  if (!connector_) co_return;
  for (const auto& record : Snapshot()) {
    if (record.state != SandboxState::kRunning) continue;
    auto resumed = co_await connector_->Resume(record, store_.AgentSocketPath(record.request.id));
    const std::string pod = record.request.pod_namespace + "/" + record.request.pod_name;
    if (!resumed) {
      LogSandbox(spdlog::level::warn, record.request.id, pod, "sandbox {}: agent proxy not restarted: {}",
                 ShortId(record.request.id), resumed.error().message);
    } else {
      LogSandbox(spdlog::level::info, record.request.id, pod, "sandbox {}: agent proxy restarted for {}",
                 ShortId(record.request.id), record.ips.front());
    }
  }
}

Result<std::pair<SandboxRecord, bool>> SandboxManager::DoStart(const std::string& id, Clock::time_point deadline) {
  auto entry = Find(id);
  if (!entry) return Fail(Code::kNotFound, "sandbox ", id, " not found; CreateVM must come first");
  const std::string pod = entry->pod_namespace + "/" + entry->pod_name;
  const ScopedLogFields log_fields({id, pod});
  std::unique_lock op(entry->op);
  if (entry->gone) return Fail(Code::kNotFound, "sandbox ", id, " was stopped");
  SandboxRecord& record = entry->record;
  if (record.state == SandboxState::kRunning) return std::pair{record, false};

  const providers::OpContext ctx{deadline, entry->stop.get_token()};
  const providers::OpContext cleanup{Clock::now() + options_.default_timeout, {}};
  if (!record.instance_id.empty()) {
    // Left by a StartVM that did not finish (before a restart): never keep two VMs for one pod.
    if (auto deleted = DeleteRecordedInstance(*entry, cleanup); !deleted) return std::unexpected(deleted.error());
  }
  if (record.leftovers) {
    if (auto removed = DeleteLeftovers(*entry, cleanup); !removed) return std::unexpected(removed.error());
  }
  record.instance_name = InstanceName(record.request.pod_name, id);  // a pool VM claimed before had its own
  record.state = SandboxState::kStarting;
  if (auto saved = store_.Save(record); !saved) return std::unexpected(saved.error());

  const auto started = Clock::now();
  providers::InstanceSpec spec;
  spec.name = record.instance_name;
  spec.owner = {options_.node_name, id};
  spec.pod_name = record.request.pod_name;
  spec.pod_namespace = record.request.pod_namespace;
  spec.instance_type = record.request.instance_type;
  spec.vcpus = record.request.vcpus;
  spec.memory_mib = record.request.memory_mib;
  spec.gpus = record.request.gpus;
  spec.gpu_model = record.request.gpu_model;
  spec.image = record.request.image;
  spec.initdata = record.request.initdata;

  auto fail = [&](Error error) -> Result<std::pair<SandboxRecord, bool>> {
    record.state = SandboxState::kCreated;
    if (auto saved = store_.Save(record); !saved) spdlog::warn("StartVM {}: {}", ShortId(id), saved.error().message);
    spdlog::warn("StartVM {} failed after {}: {}", ShortId(id), Millis(Clock::now() - started), error.ToString());
    return std::unexpected(std::move(error));
  };
  auto expired = [&]() -> Error {
    if (ctx.stop.stop_requested()) return Error{Code::kCancelled, "StartVM of sandbox " + id + " gave way to StopVM"};
    return Error{Code::kDeadlineExceeded, "StartVM of sandbox " + id + " ran out of time"};
  };

  Result<providers::Instance> instance = std::unexpected(Error{});
  auto claimed = ClaimFromPool(*entry, ctx, cleanup);
  if (!claimed) return fail(claimed.error());
  if (*claimed) instance = providers::Instance{record.instance_id, record.instance_name, record.ips, {}};

  if (connector_ && !*claimed) {
    auto user_data = connector_->UserData(record);
    if (!user_data) return fail(user_data.error());
    spec.user_data = std::move(*user_data);
  }
  Backoff backoff(options_.initial_backoff, options_.max_backoff);
  for (int attempt = 1; !*claimed; ++attempt) {
    const auto attempt_started = Clock::now();
    instance = provider_.CreateInstance(spec, ctx);
    spdlog::debug("StartVM {}: provider create attempt {} {} in {}", ShortId(id), attempt,
                  instance ? "succeeded" : "failed", Millis(Clock::now() - attempt_started));
    if (instance || !providers::ShouldRetry(instance.error()) || ctx.Expired()) break;
    const auto sleep = backoff.Next();
    spdlog::info("StartVM {}: attempt {} failed ({}); retrying in {}", ShortId(id), attempt,
                 instance.error().ToString(), Millis(sleep));
    {
      std::unique_lock lock(mu_);
      changed_.wait_until(lock, ctx.stop, std::min(deadline, Clock::now() + sleep), [] { return false; });
    }
    if (ctx.Expired()) return fail(expired());
  }
  if (!instance) return fail(ctx.Expired() && !*claimed ? expired() : instance.error());

  // From here on the instance exists: every failure deletes it. The provider undid its own partial
  // work, so no leftovers remain once the id is recorded.
  record.instance_id = instance->id;
  record.ips = instance->ips;
  record.leftovers = false;
  auto undo = [&](Error error) -> Result<std::pair<SandboxRecord, bool>> {
    if (auto deleted = DeleteRecordedInstance(*entry, cleanup); !deleted) {
      spdlog::error("StartVM {}: cannot delete instance {} after failure: {}; StopVM will retry", ShortId(id),
                    record.instance_id, deleted.error().ToString());
    }
    return fail(std::move(error));
  };
  if (auto saved = store_.Save(record); !saved) return undo(saved.error());
  if (instance->ips.empty()) {
    return undo(Error{Code::kUnavailable, "instance " + instance->id + " has no IP address"});
  }
  if (ctx.Expired()) return undo(expired());

  if (network_ && record.network) {
    record.tunnel = TunnelState::kSettingUp;
    if (auto saved = store_.Save(record); !saved) return undo(saved.error());
    const auto tunnel_started = Clock::now();
    if (auto up = network_->SetUp(record.request.netns_path, *record.network, record.ips.front()); !up) {
      // SetUp undid its own work; the undo's teardown (which takes down only a tunnel with our
      // VNI, never what made SetUp fail, say a redirect someone else put there) is the backstop.
      return undo(up.error());
    }
    record.tunnel = TunnelState::kUp;
    spdlog::debug("StartVM {}: pod network tunnel VNI {} to {} in {}", ShortId(id), record.network->vxlan_id,
                  record.ips.front(), Millis(Clock::now() - tunnel_started));
  }

  record.state = SandboxState::kRunning;
  if (auto saved = store_.Save(record); !saved) return undo(saved.error());
  if (connector_) connector_->Reserve(id);  // under the sandbox's lock: a second StartVM joins
  Publish(*entry, record.instance_id);
  spdlog::debug("StartVM {}: instance {} ({}) at {} in {}", ShortId(id), record.instance_name, record.instance_id,
               record.ips.front(), Millis(Clock::now() - started));
  return std::pair{record, true};
}

Result<bool> SandboxManager::ClaimFromPool(Entry& entry, const providers::OpContext& ctx,
                                           const providers::OpContext& cleanup) {
  if (!warm_pool_ || !pool_channel_) return false;
  SandboxRecord& record = entry.record;
  const std::string& id = record.request.id;
  auto vm = warm_pool_->Take(ShapeOf(record.request));
  if (!vm) return false;
  const auto started = Clock::now();
  const std::string cold_name = record.instance_name;
  // The sandbox records the VM as its own before the pool forgets it: a crash in between leaves
  // both records, and the pool drops its own at the next start (the sandbox wins).
  record.instance_name = vm->name;
  record.instance_id = vm->instance_id;
  record.ips = vm->ips;
  if (auto saved = store_.Save(record); !saved) {
    record.instance_name = cold_name;
    record.instance_id.clear();
    record.ips.clear();
    warm_pool_->Discard(*vm);
    return std::unexpected(saved.error());
  }
  warm_pool_->Release(*vm);
  {
    std::lock_guard lock(mu_);
    entry.unsettled_pool_vm = vm->name;
  }
  // The pod's own configuration, exactly what a cold VM would have booted with: its server
  // certificate now names this VM, for this pod only.
  Result<std::string> user_data = connector_ ? connector_->UserData(record) : Result<std::string>("");
  Result<void> delivered = user_data ? Result<void>() : std::unexpected(user_data.error());
  if (delivered) {
    delivered = vm->ips.empty() ? Fail(Code::kUnavailable, "the pool VM has no address")
                                : pool_channel_->Claim(vm->name, vm->ips.front(), id, *user_data,
                                                       std::min(ctx.deadline, Clock::now() + std::chrono::seconds(30)));
  }
  if (options_.metrics) options_.metrics->PoolClaim(vm->pool, delivered.has_value());
  if (delivered) {
    spdlog::info("StartVM {}: claimed warm pool VM {} ({}) in {}", ShortId(id), vm->name, vm->instance_id,
                 Millis(Clock::now() - started));
    return true;
  }
  spdlog::warn("StartVM {}: claim of warm pool VM {} failed: {}; deleting it and booting a fresh VM", ShortId(id),
               vm->name, delivered.error().ToString());
  if (auto deleted = DeleteRecordedInstance(entry, cleanup); !deleted) return std::unexpected(deleted.error());
  record.instance_name = cold_name;
  record.state = SandboxState::kStarting;
  if (auto saved = store_.Save(record); !saved) return std::unexpected(saved.error());
  return false;
}

bool SandboxManager::HoldsInstance(const std::string& instance_id, bool busy_holds) const {
  std::vector<std::shared_ptr<Entry>> all;
  {
    std::lock_guard lock(mu_);
    for (const auto& [id, entry] : entries_) all.push_back(entry);
  }
  for (const auto& entry : all) {
    std::unique_lock op(entry->op, std::try_to_lock);
    if (!op.owns_lock()) {
      if (busy_holds) return true;
      continue;
    }
    if (!entry->gone && entry->record.instance_id == instance_id) return true;
  }
  return false;
}

Result<void> SandboxManager::DeleteRecordedInstance(Entry& entry, const providers::OpContext& ctx) {
  SandboxRecord& record = entry.record;
  // The tunnel first: it must not point at an address the cloud may give the next VM. But a tunnel
  // that cannot be taken down must not keep the VM alive: the VM goes anyway, and the record keeps
  // the tunnel's state so that the caller's retry (StopVM again) takes it down.
  auto down = TearDownTunnel(entry);
  if (!down) spdlog::warn("sandbox {}: {}; deleting its VM anyway", ShortId(record.request.id), down.error().message);
  if (record.instance_id.empty()) return down;
  auto deleted = provider_.DeleteInstance(record.instance_id, ctx);
  if (!deleted && deleted.error().code != Code::kNotFound) return deleted;
  spdlog::info("deleted instance {} of sandbox {}", record.instance_id, ShortId(record.request.id));
  record.instance_id.clear();
  record.ips.clear();
  record.state = SandboxState::kCreated;
  Publish(entry, {});
  if (auto saved = store_.Save(record); !saved) {
    // The record on disk still names the deleted instance: say so rather than report success, so
    // that the caller's retry saves it (a provider answers NOT_FOUND for the instance by then).
    return Fail(Code::kUnavailable, "instance deleted, but the record of sandbox ", record.request.id,
                " could not be updated: ", saved.error().message);
  }
  return down;
}

Result<void> SandboxManager::DeleteLeftovers(Entry& entry, const providers::OpContext& ctx) {
  SandboxRecord& record = entry.record;
  if (!record.leftovers) return {};
  auto removed = provider_.DeleteLeftovers(record.instance_name, {options_.node_name, record.request.id}, ctx);
  // NOT_FOUND: a leftover went while it was being removed (a concurrent reconciliation): gone is gone.
  if (!removed && removed.error().code != Code::kNotFound) return removed;
  spdlog::info("sandbox {}: removed what an interrupted StartVM of {} left", ShortId(record.request.id),
               record.instance_name);
  record.leftovers = false;
  if (auto saved = store_.Save(record); !saved) spdlog::warn("sandbox {}: {}", ShortId(record.request.id), saved.error().message);
  return {};
}

void SandboxManager::Publish(Entry& entry, std::string instance_id) {
  std::vector<std::shared_ptr<Waiter>> wake;
  {
    std::lock_guard lock(mu_);
    entry.published_instance_id = std::move(instance_id);
    for (auto& weak : waiters_) {
      if (auto waiter = weak.lock()) wake.push_back(std::move(waiter));
    }
    waiters_.clear();
  }
  for (auto& waiter : wake) {
    asio::post(waiter->timer.get_executor(), [waiter] { waiter->timer.cancel(); });
  }
}

asio::awaitable<Result<void>> SandboxManager::StopVM(std::string id, Deadline deadline) {
  if (auto ok = ValidateSandboxId(id, options_.limits); !ok) co_return ok;
  // The caller's deadline bounds how long it waits, not the deletion: runtime-rs gives StopVM one
  // second and only logs a failure, so giving up with it would leak the VM.
  const auto until = std::max(DeadlineOrDefault(deadline), Clock::now() + options_.default_timeout);
  auto work = DisconnectAndStop(std::move(id), until);
  co_return co_await RunToCompletion(std::move(work));
}

asio::awaitable<Result<void>> SandboxManager::DisconnectAndStop(std::string id, Clock::time_point until) {
  // The deletion is queued first: a shutdown that stops the I/O threads then still finds it on the
  // pool (which it drains), whatever became of this coroutine. A StartVM waiting for the agent
  // holds no lock, so DoStop proceeds; the proxy stops once the VM is gone.
  auto job = [this, id, until] { return DoStop(id, until); };
  auto stopped = co_await pool_.Run<void>(std::move(job));
  if (connector_) co_await connector_->Disconnect(std::move(id));
  co_return stopped;
}

Result<void> SandboxManager::DoStop(const std::string& id, Clock::time_point deadline) {
  auto entry = Find(id);
  if (!entry) {
    if (store_.HasPodDir(id)) return DoStopUnreadable(id, deadline);
    spdlog::info("StopVM {}: no such sandbox; nothing to do", ShortId(id));
    return {};
  }
  const std::string pod = entry->pod_namespace + "/" + entry->pod_name;
  const ScopedLogFields log_fields({id, pod});
  entry->stop.request_stop();
  changed_.notify_all();  // wakes a StartVM sleeping between retries
  std::unique_lock op(entry->op);
  if (entry->gone) return {};
  const std::string instance = entry->record.instance_id;
  if (auto deleted = DeleteRecordedInstance(*entry, {deadline, {}}); !deleted) {
    if (entry->record.instance_id.empty()) {  // the VM is gone; its tunnel is what is left
      return Fail(deleted.error().code, "StopVM ", id, ": ", deleted.error().message,
                  " (the VM is deleted; the record is kept; StopVM again to retry)");
    }
    return Fail(deleted.error().code, "StopVM ", id, ": deleting instance ", instance, " failed: ",
                deleted.error().message, " (the record is kept; StopVM again to retry)");
  }
  if (auto removed = DeleteLeftovers(*entry, {deadline, {}}); !removed) {
    return Fail(removed.error().code, "StopVM ", id, ": removing what an interrupted StartVM left failed: ",
                removed.error().message, " (the record is kept; StopVM again to retry)");
  }
  if (auto removed = store_.Remove(id); !removed) return removed;
  entry->gone = true;
  {
    std::lock_guard lock(mu_);
    entries_.erase(id);
  }
  ReleaseVni(entry->record);
  changed_.notify_all();
  return {};
}

Result<void> SandboxManager::DoStopUnreadable(const std::string& id, Clock::time_point deadline) {
  const providers::OpContext ctx{deadline, {}};
  auto instances = provider_.ListInstances(options_.node_name, ctx);
  if (!instances) {
    return Fail(instances.error().code, "StopVM ", id, ": its record is unreadable and this node's instances "
                "cannot be listed: ", instances.error().message);
  }
  for (const auto& instance : *instances) {
    if (instance.owner.sandbox_id != id) continue;
    auto deleted = provider_.DeleteInstance(instance.id, ctx);
    if (!deleted && deleted.error().code != Code::kNotFound) {
      return Fail(deleted.error().code, "StopVM ", id, ": deleting instance ", instance.id, " failed: ",
                  deleted.error().message);
    }
    spdlog::info("StopVM {}: deleted instance {} of a sandbox whose record was unreadable", ShortId(id), instance.id);
  }
  return store_.Remove(id);
}

asio::awaitable<Result<std::string>> SandboxManager::GetInfo(std::string pod_name, std::string pod_namespace,
                                                            bool wait, Deadline deadline) {
  {
    std::lock_guard lock(mu_);
    if (auto found = LookupPublishedLocked(pod_name, pod_namespace)) co_return *found;
  }
  if (!wait) co_return Fail(Code::kNotFound, "no pod VM for pod ", pod_namespace, "/", pod_name);
  // Waiting costs a timer, not a pool thread.
  auto strand = asio::make_strand(co_await asio::this_coro::executor);
  auto work = WaitForInfo(std::move(pod_name), std::move(pod_namespace), DeadlineOrDefault(deadline));
  co_return co_await asio::co_spawn(strand, std::move(work), asio::use_awaitable);
}

asio::awaitable<Result<std::string>> SandboxManager::WaitForInfo(std::string pod, std::string ns,
                                                                Clock::time_point deadline) {
  auto strand = co_await asio::this_coro::executor;
  for (;;) {
    auto waiter = std::make_shared<Waiter>(asio::strand<asio::any_io_executor>(strand), deadline);
    {
      std::lock_guard lock(mu_);
      if (auto found = LookupPublishedLocked(pod, ns)) co_return *found;
      if (Clock::now() >= deadline) break;
      std::erase_if(waiters_, [](const auto& weak) { return weak.expired(); });
      waiters_.push_back(waiter);
    }
    // Publish() cancels the timer on this strand, so it cannot run before this wait begins.
    (void)co_await waiter->timer.async_wait(kAwaitTuple);
    if ((co_await asio::this_coro::cancellation_state).cancelled() != asio::cancellation_type::none) {
      co_return Fail(Code::kCancelled, "GetInfo for pod ", ns, "/", pod, " cancelled");
    }
  }
  co_return Fail(Code::kDeadlineExceeded, "no pod VM for pod ", ns, "/", pod, " before the deadline");
}

std::optional<std::string> SandboxManager::LookupPublishedLocked(const std::string& pod, const std::string& ns) const {
  for (const auto& [id, entry] : entries_) {
    if (entry->pod_name == pod && entry->pod_namespace == ns && !entry->published_instance_id.empty()) {
      return entry->published_instance_id;
    }
  }
  return std::nullopt;
}

asio::awaitable<Result<SandboxManager::ReconcileReport>> SandboxManager::Reconcile() {
  auto job = [this] { return DoReconcile(); };
  co_return co_await pool_.Run<ReconcileReport>(std::move(job));
}

Result<SandboxManager::ReconcileReport> SandboxManager::DoReconcile() {
  std::lock_guard serial(reconcile_mu_);
  const providers::OpContext ctx{Clock::now() + options_.default_timeout, {}};
  auto instances = provider_.ListInstances(options_.node_name, ctx);
  if (!instances) return std::unexpected(instances.error());
  ReconcileReport report;
  std::map<std::string, Clock::time_point> still_orphans;
  for (const auto& instance : *instances) {
    const ScopedLogFields log_fields({instance.owner.sandbox_id, ""});
    bool accounted = false;
    auto entry = Find(instance.owner.sandbox_id);
    if (entry) {
      // A StartVM in progress holds the sandbox's lock and may have created this instance just
      // now: busy counts as accounted for (the next pass looks again).
      std::unique_lock op(entry->op, std::try_to_lock);
      accounted = !op.owns_lock() || (!entry->gone && entry->record.instance_id == instance.id);
    }
    if (accounted) continue;
    // A warm pool VM, or one a sandbox claimed from the pool (its owner still names the pool).
    if (warm_pool_ && warm_pool_->Accounts(instance)) continue;
    if (instance.owner.sandbox_id.rfind("pool-", 0) == 0 && HoldsInstance(instance.id, true)) continue;
    // A sandbox with a directory but no entry: its record could not be read.
    if (!entry && ValidateSandboxId(instance.owner.sandbox_id, options_.limits) &&
        store_.HasPodDir(instance.owner.sandbox_id)) {
      spdlog::warn("instance {} ({}) belongs to sandbox {}, whose record is unreadable: left alone; fix or remove {}",
                   instance.id, instance.name, ShortId(instance.owner.sandbox_id),
                   store_.PodDir(instance.owner.sandbox_id));
      continue;
    }
    ++report.orphans;
    const auto seen = orphan_since_.find(instance.id);
    if (seen == orphan_since_.end()) ++report.found;  // counted once, however many passes see it
    const Clock::time_point since = seen == orphan_since_.end() ? Clock::now() : seen->second;
    if (Clock::now() - since < options_.reconcile_grace) {
      if (seen == orphan_since_.end()) {
        spdlog::warn("instance {} ({}) of sandbox {} has no record; deleting it unless one appears within {} s",
                     instance.id, instance.name, ShortId(instance.owner.sandbox_id),
                     std::chrono::duration_cast<std::chrono::seconds>(options_.reconcile_grace).count());
      }
      still_orphans.emplace(instance.id, since);
      ++report.waiting;
      continue;
    }
    spdlog::warn("instance {} ({}) of sandbox {} has no record; deleting it", instance.id, instance.name,
                 ShortId(instance.owner.sandbox_id));
    auto result = provider_.DeleteInstance(instance.id, ctx);
    if (!result && result.error().code != Code::kNotFound) {
      spdlog::error("cannot delete leaked instance {}: {}", instance.id, result.error().ToString());
      still_orphans.emplace(instance.id, since);
      ++report.failed;
      continue;
    }
    ++report.deleted;
  }
  orphan_since_ = std::move(still_orphans);  // an instance gone or accounted for starts afresh

  std::vector<std::shared_ptr<Entry>> with_leftovers;
  {
    std::lock_guard lock(mu_);
    for (const auto& [id, entry] : entries_) with_leftovers.push_back(entry);
  }
  for (const auto& entry : with_leftovers) {
    std::unique_lock op(entry->op, std::try_to_lock);
    if (!op.owns_lock() || entry->gone) continue;  // busy: its StartVM or StopVM removes them
    if (auto removed = DeleteLeftovers(*entry, ctx); !removed) {
      spdlog::warn("sandbox {}: leftovers not removed yet: {}", ShortId(entry->record.request.id),
                   removed.error().message);
    }
  }
  return report;
}

}  // namespace pp::adaptor
