#include "adaptor/sandbox_manager.h"

#include <spdlog/spdlog.h>

#include <random>
#include <set>
#include <stop_token>

namespace pp::adaptor {
namespace {

using Clock = std::chrono::steady_clock;

std::string Millis(Clock::duration d) {
  return std::to_string(std::chrono::duration_cast<std::chrono::milliseconds>(d).count()) + " ms";
}

}  // namespace

struct SandboxManager::Entry {
  std::mutex op;  // serializes CreateVM/StartVM/StopVM on this sandbox
  SandboxRecord record;  // guarded by op
  bool gone = false;     // guarded by op: StopVM finished; the entry is no longer in the map
  std::stop_source stop;  // StopVM asks a StartVM in progress to give up
  std::string published_instance_id;  // guarded by the manager's mu_, for GetInfo
};

SandboxManager::SandboxManager(Options options, SandboxStore store, providers::Provider& provider,
                               BlockingPool& pool, AgentConnector* connector)
    : options_(std::move(options)),
      store_(std::move(store)),
      provider_(provider),
      pool_(pool),
      connector_(connector) {
  for (auto& record : store_.LoadAll()) {
    auto entry = std::make_shared<Entry>();
    if (record.state == SandboxState::kStarting) {
      // The previous process died inside StartVM: whatever it created is kept in instance_id and
      // deleted by the next StartVM or StopVM.
      record.state = SandboxState::kCreated;
    }
    if (record.state == SandboxState::kRunning) entry->published_instance_id = record.instance_id;
    spdlog::info("recovered sandbox {} (pod {}/{}, instance {})", record.request.id,
                 record.request.pod_namespace, record.request.pod_name,
                 record.instance_id.empty() ? "none" : record.instance_id);
    const std::string id = record.request.id;
    entry->record = std::move(record);
    entries_.emplace(id, std::move(entry));
  }
}

SandboxManager::~SandboxManager() = default;

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

  auto entry = std::make_shared<Entry>();
  std::unique_lock op(entry->op);
  {
    std::lock_guard lock(mu_);
    if (entries_.contains(id)) {
      return Fail(Code::kAborted, "sandbox ", id, " is being created by a concurrent call; retry");
    }
    entries_.emplace(id, entry);
  }
  entry->record.instance_name = InstanceName(request.pod_name, id);
  entry->record.created_unix =
      std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch()).count();
  entry->record.request = std::move(request);
  if (auto saved = store_.Save(entry->record); !saved) {
    (void)store_.Remove(id);
    entry->gone = true;
    std::lock_guard lock(mu_);
    entries_.erase(id);
    return std::unexpected(saved.error());
  }
  spdlog::info("CreateVM {}: pod {}/{}, instance {}", id, entry->record.request.pod_namespace,
               entry->record.request.pod_name, entry->record.instance_name);
  return store_.AgentSocketPath(id);
}

asio::awaitable<Result<void>> SandboxManager::StartVM(std::string id, Deadline deadline) {
  if (auto ok = ValidateSandboxId(id, options_.limits); !ok) co_return ok;
  const auto until = DeadlineOrDefault(deadline);
  auto job = [this, id, until] { return DoStart(id, until); };
  auto started = co_await pool_.Run<std::pair<SandboxRecord, bool>>(std::move(job));
  if (!started) co_return std::unexpected(started.error());
  if (!connector_ || !started->second) co_return Result<void>{};
  auto ready = co_await connector_->Connect(started->first, store_.AgentSocketPath(id), until);
  if (ready) co_return Result<void>{};
  spdlog::warn("StartVM {}: {}; deleting the instance", id, ready.error().ToString());
  auto undo = [this, id] { return DoAbandonStart(id); };
  if (auto undone = co_await pool_.Run<void>(std::move(undo)); !undone) {
    spdlog::error("StartVM {}: {}", id, undone.error().ToString());
  }
  co_return std::unexpected(ready.error());
}

Result<void> SandboxManager::DoAbandonStart(const std::string& id) {
  auto entry = Find(id);
  if (!entry) return {};
  std::lock_guard op(entry->op);
  if (entry->gone) return {};
  return DeleteRecordedInstance(*entry, {Clock::now() + options_.default_timeout, {}});
}

asio::awaitable<void> SandboxManager::ResumeAgents() {
  if (!connector_) co_return;
  for (const auto& record : Snapshot()) {
    if (record.state != SandboxState::kRunning) continue;
    auto resumed = co_await connector_->Resume(record, store_.AgentSocketPath(record.request.id));
    if (!resumed) spdlog::warn("sandbox {}: agent proxy not restarted: {}", record.request.id, resumed.error().message);
    else spdlog::info("sandbox {}: agent proxy restarted for {}", record.request.id, record.ips.front());
  }
}

Result<std::pair<SandboxRecord, bool>> SandboxManager::DoStart(const std::string& id, Clock::time_point deadline) {
  auto entry = Find(id);
  if (!entry) return Fail(Code::kNotFound, "sandbox ", id, " not found; CreateVM must come first");
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
    if (auto saved = store_.Save(record); !saved) spdlog::warn("StartVM {}: {}", id, saved.error().message);
    spdlog::warn("StartVM {} failed after {}: {}", id, Millis(Clock::now() - started), error.ToString());
    return std::unexpected(std::move(error));
  };
  auto expired = [&]() -> Error {
    if (ctx.stop.stop_requested()) return Error{Code::kCancelled, "StartVM of sandbox " + id + " gave way to StopVM"};
    return Error{Code::kDeadlineExceeded, "StartVM of sandbox " + id + " ran out of time"};
  };

  if (connector_) {
    auto user_data = connector_->UserData(record);
    if (!user_data) return fail(user_data.error());
    spec.user_data = std::move(*user_data);
  }

  std::mt19937_64 rng(std::random_device{}());
  auto backoff = options_.initial_backoff;
  Result<providers::Instance> instance = std::unexpected(Error{});
  for (int attempt = 1;; ++attempt) {
    instance = provider_.CreateInstance(spec, ctx);
    if (instance || !providers::ShouldRetry(instance.error()) || ctx.Expired()) break;
    // Full jitter keeps many pods that failed together from retrying together.
    const auto sleep = std::chrono::milliseconds(
        std::uniform_int_distribution<long long>(backoff.count() / 2, backoff.count())(rng));
    spdlog::info("StartVM {}: attempt {} failed ({}); retrying in {}", id, attempt,
                 instance.error().ToString(), Millis(sleep));
    {
      std::unique_lock lock(mu_);
      changed_.wait_until(lock, ctx.stop, std::min(deadline, Clock::now() + sleep), [] { return false; });
    }
    if (ctx.Expired()) return fail(expired());
    backoff = std::min(backoff * 2, options_.max_backoff);
  }
  if (!instance) return fail(ctx.Expired() ? expired() : instance.error());

  // From here on the instance exists: every failure deletes it.
  record.instance_id = instance->id;
  record.ips = instance->ips;
  auto undo = [&](Error error) -> Result<std::pair<SandboxRecord, bool>> {
    if (auto deleted = DeleteRecordedInstance(*entry, cleanup); !deleted) {
      spdlog::error("StartVM {}: cannot delete instance {} after failure: {}; StopVM will retry", id,
                    record.instance_id, deleted.error().ToString());
    }
    return fail(std::move(error));
  };
  if (auto saved = store_.Save(record); !saved) return undo(saved.error());
  if (instance->ips.empty()) {
    return undo(Error{Code::kUnavailable, "instance " + instance->id + " has no IP address"});
  }
  if (ctx.Expired()) return undo(expired());

  record.state = SandboxState::kRunning;
  if (auto saved = store_.Save(record); !saved) return undo(saved.error());
  {
    std::lock_guard lock(mu_);
    entry->published_instance_id = record.instance_id;
  }
  changed_.notify_all();
  spdlog::info("StartVM {}: instance {} ({}) at {} in {}", id, record.instance_name, record.instance_id,
               record.ips.front(), Millis(Clock::now() - started));
  return std::pair{record, true};
}

Result<void> SandboxManager::DeleteRecordedInstance(Entry& entry, const providers::OpContext& ctx) {
  SandboxRecord& record = entry.record;
  if (record.instance_id.empty()) return {};
  auto deleted = provider_.DeleteInstance(record.instance_id, ctx);
  if (!deleted && deleted.error().code != Code::kNotFound) return deleted;
  spdlog::info("deleted instance {} of sandbox {}", record.instance_id, record.request.id);
  record.instance_id.clear();
  record.ips.clear();
  record.state = SandboxState::kCreated;
  {
    std::lock_guard lock(mu_);
    entry.published_instance_id.clear();
  }
  if (auto saved = store_.Save(record); !saved) spdlog::warn("sandbox {}: {}", record.request.id, saved.error().message);
  return {};
}

asio::awaitable<Result<void>> SandboxManager::StopVM(std::string id, Deadline deadline) {
  if (auto ok = ValidateSandboxId(id, options_.limits); !ok) co_return ok;
  if (connector_) co_await connector_->Disconnect(id);
  // The caller's deadline bounds how long it waits, not the deletion: runtime-rs gives StopVM one
  // second and only logs a failure, so giving up with it would leak the VM.
  const auto until = std::max(DeadlineOrDefault(deadline), Clock::now() + options_.default_timeout);
  auto job = [this, id = std::move(id), until] { return DoStop(id, until); };
  co_return co_await pool_.Run<void>(std::move(job));
}

Result<void> SandboxManager::DoStop(const std::string& id, Clock::time_point deadline) {
  auto entry = Find(id);
  if (!entry) {
    spdlog::info("StopVM {}: no such sandbox; nothing to do", id);
    return {};
  }
  entry->stop.request_stop();
  changed_.notify_all();  // wakes a StartVM sleeping between retries
  std::unique_lock op(entry->op);
  if (entry->gone) return {};
  if (auto deleted = DeleteRecordedInstance(*entry, {deadline, {}}); !deleted) {
    return Fail(deleted.error().code, "StopVM ", id, ": deleting instance ", entry->record.instance_id,
                " failed: ", deleted.error().message, " (the record is kept; StopVM again to retry)");
  }
  if (auto removed = store_.Remove(id); !removed) return removed;
  entry->gone = true;
  {
    std::lock_guard lock(mu_);
    entries_.erase(id);
  }
  changed_.notify_all();
  spdlog::info("StopVM {}: done", id);
  return {};
}

asio::awaitable<Result<std::string>> SandboxManager::GetInfo(std::string pod_name, std::string pod_namespace,
                                                            bool wait, Deadline deadline) {
  const auto until = DeadlineOrDefault(deadline);
  auto job = [this, pod = std::move(pod_name), ns = std::move(pod_namespace), wait, until] {
    return DoGetInfo(pod, ns, wait, until);
  };
  co_return co_await pool_.Run<std::string>(std::move(job));
}

Result<std::string> SandboxManager::DoGetInfo(const std::string& pod, const std::string& ns, bool wait,
                                              Clock::time_point deadline) {
  std::unique_lock lock(mu_);
  auto lookup = [&]() -> std::optional<std::string> {
    for (const auto& [id, entry] : entries_) {
      // pod name and namespace never change after CreateVM, so they are safe to read under mu_.
      if (entry->record.request.pod_name == pod && entry->record.request.pod_namespace == ns &&
          !entry->published_instance_id.empty()) {
        return entry->published_instance_id;
      }
    }
    return std::nullopt;
  };
  if (auto found = lookup()) return *found;
  if (!wait) return Fail(Code::kNotFound, "no pod VM for pod ", ns, "/", pod);
  std::optional<std::string> found;
  changed_.wait_until(lock, deadline, [&] { return (found = lookup()).has_value(); });
  if (found) return *found;
  return Fail(Code::kDeadlineExceeded, "no pod VM for pod ", ns, "/", pod, " before the deadline");
}

asio::awaitable<Result<std::size_t>> SandboxManager::Reconcile() {
  auto job = [this] { return DoReconcile(); };
  co_return co_await pool_.Run<std::size_t>(std::move(job));
}

Result<std::size_t> SandboxManager::DoReconcile() {
  const providers::OpContext ctx{Clock::now() + options_.default_timeout, {}};
  auto instances = provider_.ListInstances(options_.node_name, ctx);
  if (!instances) return std::unexpected(instances.error());
  std::size_t deleted = 0;
  for (const auto& instance : *instances) {
    bool accounted = false;
    if (auto entry = Find(instance.owner.sandbox_id)) {
      // Hold the sandbox's lock: a StartVM in progress may have created this instance just now.
      std::lock_guard op(entry->op);
      accounted = !entry->gone && entry->record.instance_id == instance.id;
    }
    if (accounted) continue;
    spdlog::warn("instance {} ({}) of sandbox {} has no record; deleting it", instance.id, instance.name,
                 instance.owner.sandbox_id);
    auto result = provider_.DeleteInstance(instance.id, ctx);
    if (!result && result.error().code != Code::kNotFound) {
      spdlog::error("cannot delete leaked instance {}: {}", instance.id, result.error().ToString());
      continue;
    }
    ++deleted;
  }
  return deleted;
}

}  // namespace pp::adaptor
