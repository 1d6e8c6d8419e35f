// WarmPool: pods that start in about a second. Per node, pools of pod VMs booted ahead of demand
// with no pod identity; a StartVM whose sandbox has a pool's shape claims a ready VM instead of
// booting one, and the pool refills in the background.
//
// Contracts:
// - A pool VM boots with only what it needs to accept one claim from this adaptor: its own server
//   certificate (SAN = its name) and the adaptor's CA (pool.json), plus the pool's initdata. The
//   claim (PoolChannel::Claim) delivers the pod's configuration over mutual TLS; the VM refuses a
//   second claim. A claimed VM belongs to its sandbox until StopVM deletes it: never reused.
// - Pools are keyed by shape AND by the digest of the initdata the VM was launched with: initdata
//   is measured at launch (SNP HOST_DATA, TDX MRCONFIGID) and cannot be changed by a claim, so a
//   sandbox is only given a VM launched exactly as its own cold VM would have been.
// - Pool VMs are recorded on disk (one JSON file each in the pool dir, written before the provider
//   is called) and carry an owner whose sandbox id is "pool-<8 hex>": they survive an adaptor
//   restart, are accounted for by reconciliation (Accounts()), and never count against the
//   per-node sandbox limit. A record whose pool is no longer configured with the same shape, or
//   beyond its pool's size, is drained (its VM deleted).
// - A ready VM is checked every `check_interval`; one that does not answer (twice, 1 s apart) is
//   deleted and replaced. A boot that fails deletes what it made and is retried with backoff.
// Threading: Take/Release/Discard/Accounts/Snapshot are thread-safe and never call the provider.
// The maintainer and each boot, check or delete run on the pool's own threads (a boot blocks for
// a whole VM boot: it must not hold a BlockingPool thread that StartVMs need).
#pragma once

#include <chrono>
#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <list>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "adaptor/sandbox_request.h"
#include "common/base/error.h"
#include "providers/provider.h"

namespace pp::adaptor {

class Metrics;

// What a VM is launched with: everything a claim cannot change. Empty / zero fields mean the
// provider's default, exactly as in a sandbox's request.
struct PoolShape {
  std::string instance_type;
  unsigned vcpus = 0;
  unsigned long long memory_mib = 0;
  unsigned gpus = 0;
  std::string gpu_model;
  std::string image;
  // "sha256:<hex>" of the exact initdata TOML bytes; "" for none. Equal bytes give an equal
  // launch measurement whatever the initdata's own `algorithm`.
  std::string initdata_digest;
  friend bool operator==(const PoolShape&, const PoolShape&) = default;
  // One line for logs and peerpodctl: "vcpus=2 memory=2048MiB image=default initdata=sha256:ab12…".
  std::string Describe() const;
};

std::string InitdataDigest(std::string_view initdata_toml);  // "" for empty
PoolShape ShapeOf(const SandboxRequest& request);

// One configured pool.
struct PoolSpec {
  std::string name;  // [a-z0-9-], 1..20 characters: part of its VMs' names
  unsigned size = 0;
  PoolShape shape;
  std::string initdata;  // the TOML its VMs are launched with (shape.initdata_digest is its digest)
};

// Parses -warm-pools / WARM_POOLS: a JSON array of
//   {"name": "gpu", "size": 2, "instance-type": "", "vcpus": 0, "memory": 0, "gpus": 0,
//    "gpu-model": "", "image": "", "initdata": "<base64(gzip(TOML)), as the pod annotation>"}
// (only "name" and "size" required), and adds a pool named "default" of the provider's default
// shape and no initdata when `default_size` (-warm-pool-size) is not 0. Names must be unique; sizes
// at most 64 each. INVALID_ARGUMENT names the entry and key to fix.
Result<std::vector<PoolSpec>> ParsePoolSpecs(std::string_view json, unsigned default_size);

enum class PoolVmState { kBooting, kReady, kClaimed };

// A pool VM as recorded in <pool dir>/<name>.json.
struct PoolVmRecord {
  std::string name;   // podvm-pool-<pool>-<8 hex>
  std::string pool;
  std::string owner_id;  // the provider owner's sandbox id: "pool-<8 hex>"
  PoolShape shape;
  PoolVmState state = PoolVmState::kBooting;  // kClaimed is never written
  std::string instance_id;                    // set once the provider returned it
  std::vector<std::string> ips;
  std::int64_t created_unix = 0;
};
std::string SerializePoolVm(const PoolVmRecord& record);
Result<PoolVmRecord> ParsePoolVm(std::string_view json);
// Every readable record in `dir` (unreadable ones are logged and left alone).
std::vector<PoolVmRecord> LoadPoolVms(const std::string& dir);

// How the adaptor talks to pool VMs (AgentConnector in the daemon; a stand-in in unit tests).
class PoolChannel {
 public:
  virtual ~PoolChannel() = default;
  // The boot user-data of a pool VM: pool.json (its key pair, the CA) and `initdata`. Secret.
  virtual Result<std::string> PoolUserData(const std::string& vm_name, const std::string& initdata) const = 0;
  // Whether the VM answers its provisioning endpoint as `vm_name`, launched with `initdata_digest`.
  virtual Result<void> Check(const std::string& vm_name, const std::string& ip, const std::string& initdata_digest,
                             std::chrono::steady_clock::time_point deadline) const = 0;
  // Delivers a pod's user-data to the VM. The VM then serves the agent path as that pod.
  virtual Result<void> Claim(const std::string& vm_name, const std::string& ip, const std::string& sandbox_id,
                             const std::string& user_data, std::chrono::steady_clock::time_point deadline) const = 0;
};

class WarmPool {
 public:
  struct Options {
    std::string node_name;
    std::string dir;  // the pool records
    std::vector<PoolSpec> pools;
    std::chrono::nanoseconds check_interval = std::chrono::seconds(30);
    std::chrono::nanoseconds boot_timeout = std::chrono::minutes(5);  // create + first answer
    std::chrono::milliseconds initial_backoff{2000};
    std::chrono::milliseconds max_backoff{60000};
    std::chrono::milliseconds ready_poll{250};  // how often a booting VM is asked whether it answers
    Metrics* metrics = nullptr;                 // optional
  };

  // Loads the records in options.dir. `held_by_sandbox(instance_id)` says whether a sandbox record
  // holds the instance (a claim recorded by the sandbox just before a crash): such a pool record is
  // dropped, the VM left to its sandbox. Start() begins the maintenance.
  WarmPool(Options options, providers::Provider& provider, const PoolChannel& channel,
           std::function<bool(const std::string&)> held_by_sandbox);
  ~WarmPool();  // Stop()s

  Result<void> Start();  // creates the dir; starts the maintainer
  // Stops the maintainer, boots (a VM that exists stays recorded; one cut short before it existed
  // has its leftovers removed at the next start) and checks; joins them. Idempotent.
  void Stop();
  // Asks the maintainer and every boot and check to stop, without waiting (a daemon that is about
  // to exit). Idempotent.
  void RequestStop();

  // A VM is lent out for a claim: a ready VM of a pool with `shape`, now kClaimed (no check, drain
  // or second Take touches it). nullopt on a miss (counted by reason: no pool has this shape, a
  // pool has the shape but another initdata, or no VM of the pool is ready).
  std::optional<PoolVmRecord> Take(const PoolShape& shape);
  // The sandbox has recorded the VM as its own: the pool removes its record. Call it before the
  // claim is delivered. The VM keeps its place in the pool until Settle().
  void Release(const PoolVmRecord& vm);
  // The StartVM that took `vm_name` is over (its claim delivered and its agent answering, or failed):
  // the pool forgets the VM and boots its replacement. Refilling only now keeps the new boot off the
  // host's CPUs while the claim and the pod's first agent calls run. A name the pool does not hold
  // as taken is ignored.
  void Settle(const std::string& vm_name);
  // The VM was taken but the sandbox did not record it (it failed before): deleted and replaced.
  void Discard(const PoolVmRecord& vm);

  // True when the instance (by provider id, or by name for a boot whose id is not recorded yet)
  // is one of the pool's, claimed-but-not-released included.
  bool Accounts(const providers::Instance& instance) const;

  struct PoolStatus {
    std::string name;
    unsigned size = 0;
    PoolShape shape;
    std::vector<PoolVmRecord> vms;
  };
  std::vector<PoolStatus> Snapshot() const;
  bool empty() const { return options_.pools.empty(); }

 private:
  struct Vm {
    PoolVmRecord record;
    std::chrono::steady_clock::time_point next_check{};
    bool busy = false;      // a boot, check or delete thread owns it
    bool deleting = false;  // to be deleted (never taken again); next_check: when to retry
    bool checking = false;  // busy with a health check only: it may still be taken
  };
  void Maintain(std::stop_token stop);
  // A new VM, or (resumed) one recorded as booting before a restart.
  void Boot(std::stop_token stop, std::string name, bool resumed);
  void CheckVm(std::stop_token stop, std::string name);
  void Delete(std::string name, std::string why);
  void Spawn(std::function<void(std::stop_token)> fn);  // mu_ held
  Result<void> Save(const PoolVmRecord& record) const;
  void RemoveRecord(const std::string& name) const;
  const PoolSpec* SpecOf(const std::string& pool) const;
  void UpdateGauges();  // mu_ held
  void Wake();          // mu_ held: the maintainer looks again now

  const Options options_;
  providers::Provider& provider_;
  const PoolChannel& channel_;
  std::function<bool(const std::string&)> held_by_sandbox_;

  mutable std::mutex mu_;
  std::condition_variable_any wake_;
  std::map<std::string, Vm> vms_;                          // by name; guarded by mu_
  std::map<std::string, std::chrono::steady_clock::time_point> not_before_;  // pool -> next boot (backoff)
  std::map<std::string, std::chrono::milliseconds> backoff_;                 // pool -> current backoff
  // Boot, check and delete threads, each with its "finished" flag; guarded by mu_.
  std::list<std::pair<std::jthread, std::shared_ptr<std::atomic<bool>>>> workers_;
  std::jthread maintainer_;
  bool stopped_ = false;  // guarded by mu_
  bool woken_ = false;    // guarded by mu_: something changed since the maintainer last looked
};

}  // namespace pp::adaptor
