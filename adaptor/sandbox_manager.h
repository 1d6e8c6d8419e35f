// SandboxManager: the life of each sandbox from CreateVM to StopVM, and the instance behind it.
//
// Contracts:
// - CreateVM validates and plans; it persists the record and returns the agent socket path. The
//   same request again gives the same answer; a different request for a live id ALREADY_EXISTS.
// - StartVM creates the instance through the provider, retrying retryable and throttled errors with
//   backoff until the deadline. Any failure after an instance exists deletes that instance.
// - StopVM asks a StartVM in progress to give up, deletes the instance, then the pod directory. An
//   unknown id is success (the shim may retry). If the instance cannot be deleted the call fails and
//   the record stays, so a retry or a restart can finish the job: no VM is forgotten. The deletion
//   runs to completion even when the caller stops waiting (runtime-rs allows StopVM one second);
//   so does the cleanup of a StartVM that failed after its instance existed.
// - A sandbox directory whose record cannot be read is never reconciled: its VM is left alone and
//   reported. StopVM of such a sandbox deletes the instances tagged with its id, then the directory.
// - A record that says a StartVM may have been cut short (the process died in it) has its
//   provider leftovers removed before the next create, at StopVM, and by Reconcile().
// - Calls for one sandbox are serialized; calls for different sandboxes run in parallel. All provider
//   and file-system work runs on the BlockingPool; the coroutines never block their thread.
// - On construction the manager loads the records its store holds; Reconcile() deletes instances this
//   node owns that no record accounts for (left by a crash between create and record).
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "adaptor/agent_connector.h"
#include "adaptor/metrics.h"
#include "adaptor/pod_network.h"
#include "adaptor/sandbox_request.h"
#include "adaptor/sandbox_store.h"
#include "adaptor/warm_pool.h"
#include "common/base/asio.h"
#include "common/base/blocking_pool.h"
#include "hypervisor.pb.h"
#include "providers/provider.h"

namespace pp::adaptor {

using Deadline = std::optional<std::chrono::steady_clock::time_point>;

class SandboxManager {
 public:
  struct Options {
    std::string node_name;
    Limits limits;
    // Budget of a StartVM/StopVM that arrives without a deadline; also of cleanup deletes.
    std::chrono::seconds default_timeout{600};
    std::chrono::milliseconds initial_backoff{500};
    std::chrono::milliseconds max_backoff{15000};
    // At most this many sandboxes on this node (-peerpods-limit-per-node); 0: no limit.
    std::size_t limit_per_node = 0;
    // Reconcile() deletes an instance no record accounts for only once it has been seen so for
    // this long (-reconcile-grace): a record being written, or a provider's list that lags, is not
    // a leak.
    std::chrono::nanoseconds reconcile_grace{0};
    // Metrics (optional): StartVM latency by outcome under `provider_name`, limit rejections.
    Metrics* metrics = nullptr;
    std::string provider_name;
  };

  struct StateCounts {
    std::uint64_t created = 0, starting = 0, running = 0;
  };

  struct ReconcileReport {
    std::size_t orphans = 0;   // instances of this node that no record accounts for
    std::size_t found = 0;     // of them, seen for the first time by this pass
    std::size_t deleted = 0;   // of them, deleted now
    std::size_t waiting = 0;   // of them, still within the grace period
    std::size_t failed = 0;    // of them, whose deletion failed (retried next time)
  };

  // `connector` (optional) renders each VM's user-data and runs its agent proxy: StartVM then
  // returns only once the agent answers through agent.ttrpc, and StopVM stops the proxy first.
  // `network` (optional) gives a sandbox whose CreateVM names a pod netns its pod network: read at
  // CreateVM (a netns that cannot carry one fails CreateVM), the node's tunnel end built at StartVM
  // once the VM has an address, and taken down before its instance is deleted.
  SandboxManager(Options options, SandboxStore store, providers::Provider& provider,
                 BlockingPool& pool, AgentConnector* connector = nullptr,
                 const NodeNetwork* network = nullptr);
  ~SandboxManager();

  asio::awaitable<Result<std::string>> CreateVM(hypervisor::CreateVMRequest request);
  asio::awaitable<Result<void>> StartVM(std::string id, Deadline deadline);
  asio::awaitable<Result<void>> StopVM(std::string id, Deadline deadline);

  // The instance id of the pod's VM. NOT_FOUND when no such pod has a started VM; with `wait`,
  // waits for StartVM until the deadline (DEADLINE_EXCEEDED) without holding a pool thread.
  asio::awaitable<Result<std::string>> GetInfo(std::string pod_name, std::string pod_namespace,
                                               bool wait, Deadline deadline);

  // Deletes this node's instances that no record accounts for (except those of a sandbox whose
  // directory holds an unreadable record) and removes the leftovers of StartVMs cut short.
  // Fails when the provider cannot list (the caller retries later). Calls are serialized.
  asio::awaitable<Result<ReconcileReport>> Reconcile();

  // Warm pools: StartVM claims a ready VM of the sandbox's shape from `pool` and delivers the pod's
  // configuration through `channel`; a miss or a failed claim (whose VM is deleted) boots a fresh
  // VM. Reconcile() leaves the pool's VMs alone. Call before serving; both outlive the manager's use.
  void SetWarmPool(WarmPool* pool, const PoolChannel* channel) {
    warm_pool_ = pool;
    pool_channel_ = channel;
  }

  // Whether a live sandbox's record holds the instance; with `busy_holds`, a sandbox busy in a call
  // counts as holding it (it may be recording it right now).
  bool HoldsInstance(const std::string& instance_id, bool busy_holds) const;

  // CreateVMs refused because the node was at its limit, since start.
  std::uint64_t limit_rejections() const { return limit_rejections_.load(); }

  // After a restart: restarts the agent proxy of every sandbox recorded as running.
  asio::awaitable<void> ResumeAgents();

  // Asks every StartVM in progress to give up (daemon shutdown): each deletes what it created.
  void CancelAll();

  // The sandboxes by state, without waiting: a sandbox busy in a call counts as starting. For
  // metrics scrapes.
  StateCounts CountByState() const;

  // "namespace/name" of the sandbox's pod; empty for an unknown sandbox. For log lines.
  std::string PodOf(const std::string& id) const;

  // Copies of the current records, for tests and diagnostics.
  std::vector<SandboxRecord> Snapshot() const;

 private:
  struct Entry;
  struct Waiter;
  std::shared_ptr<Entry> Find(const std::string& id) const;
  asio::awaitable<Result<void>> StartAndConnect(std::string id, std::chrono::steady_clock::time_point until);
  asio::awaitable<Result<void>> DisconnectAndStop(std::string id, std::chrono::steady_clock::time_point until);
  asio::awaitable<Result<std::string>> WaitForInfo(std::string pod, std::string ns,
                                                   std::chrono::steady_clock::time_point deadline);
  std::optional<std::string> LookupPublishedLocked(const std::string& pod, const std::string& ns) const;
  void Publish(Entry& entry, std::string instance_id);  // sets published_instance_id, wakes waiters
  Result<std::string> DoCreate(SandboxRequest request);
  // The record once its instance runs; `second` is false when it already ran before this call.
  Result<std::pair<SandboxRecord, bool>> DoStart(const std::string& id,
                                                 std::chrono::steady_clock::time_point deadline);
  // Deletes the instance of a sandbox whose agent never answered.
  Result<void> DoAbandonStart(const std::string& id);
  Result<void> DoStop(const std::string& id, std::chrono::steady_clock::time_point deadline);
  // StopVM of a sandbox that has a directory but no usable record.
  Result<void> DoStopUnreadable(const std::string& id, std::chrono::steady_clock::time_point deadline);
  // Removes provider leftovers of a StartVM cut short (op held); clears the flag on success.
  Result<void> DeleteLeftovers(Entry& entry, const providers::OpContext& ctx);
  Result<ReconcileReport> DoReconcile();
  // Settles the pool VM the sandbox's StartVM took, if any (the pool refills).
  void SettlePoolClaim(const std::string& id);
  // StartVM from a warm pool (op held): true when the record now holds a claimed VM that serves the
  // pod, false on a miss or a failed claim (its VM deleted); an error only when that VM could not
  // be deleted or the record not saved.
  Result<bool> ClaimFromPool(Entry& entry, const providers::OpContext& ctx, const providers::OpContext& cleanup);
  // Deletes the instance recorded in `entry` (op held) and clears it from the record; the pod's
  // tunnel end goes first.
  Result<void> DeleteRecordedInstance(Entry& entry, const providers::OpContext& ctx);
  // Takes down the node end of the sandbox's tunnel if the record says one may exist (op held).
  Result<void> TearDownTunnel(Entry& entry);
  // The pod network of a new sandbox: a VNI no live sandbox holds, and what the pod netns holds.
  Result<std::optional<podvm::PodNetwork>> PlanNetwork(const SandboxRequest& request);
  void ReleaseVni(const SandboxRecord& record);  // mu_ not held
  std::chrono::steady_clock::time_point DeadlineOrDefault(Deadline deadline) const;

  const Options options_;
  const SandboxStore store_;
  providers::Provider& provider_;
  BlockingPool& pool_;
  AgentConnector* connector_;
  const NodeNetwork* network_;
  WarmPool* warm_pool_ = nullptr;
  const PoolChannel* pool_channel_ = nullptr;

  mutable std::mutex mu_;
  std::condition_variable_any changed_;  // with mu_: a sandbox left (wakes StartVM's retry sleep)
  std::map<std::string, std::shared_ptr<Entry>> entries_;  // guarded by mu_
  std::vector<std::weak_ptr<Waiter>> waiters_;              // guarded by mu_: GetInfo(wait) callers
  // Guarded by mu_: VNI -> pod netns path of each sandbox in entries_ and of one being created, so
  // that neither a VNI nor a pod netns is given to two sandboxes, also by concurrent CreateVMs.
  std::map<uint32_t, std::string> vnis_;
  std::atomic<std::uint64_t> limit_rejections_{0};
  std::mutex reconcile_mu_;  // serializes DoReconcile
  std::map<std::string, std::chrono::steady_clock::time_point> orphan_since_;  // guarded by reconcile_mu_
};

}  // namespace pp::adaptor
