// TestProvider: a test-only stand-in for a real provider (no cloud or libvirtd reachable from a
// unit test). Instances live in memory; nothing is booted. It keeps the provider contract
// (providers/provider.h) as a real provider does: a failed create leaves nothing, deleting an
// unknown id is success, every call honours its OpContext.
//
// Like the libvirt provider it makes a "volume" before the instance (named after the instance), so
// that tests can see leftovers. Behaviour is keyed on the pod name so that end-to-end tests
// through the daemon can ask for failures:
//   slow-*   CreateInstance takes `slow_delay` (honouring the deadline and stop requests)
//   fail-*   CreateInstance fails FAILED_PRECONDITION (misconfigured: not retried)
//   faillate-*  CreateInstance fails once its volume and instance exist (and undoes them)
//   flaky-*  the first two CreateInstance attempts fail UNAVAILABLE, then it succeeds
//   noip-*   the instance has no IP address
//   hang-*   CreateInstance never returns, whatever its OpContext says (a provider that hangs)
// and on `faults`, which can fail or stall any step. Counters let tests check that nothing leaks.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <map>
#include <mutex>
#include <set>
#include <string_view>

#include "providers/provider.h"

namespace pp::testing {

class TestProvider final : public providers::Provider {
 public:
  // What `faults` may ask of a step.
  enum class Fault { kNone, kFail, kFailRetryable, kStall };
  // Steps: "create.volume", "create.instance", "create.address", "delete", "list", "leftovers".
  // kStall waits until the call's deadline or stop request, then fails DEADLINE_EXCEEDED/CANCELLED.
  using FaultFn = std::function<Fault(std::string_view step)>;

  std::chrono::milliseconds slow_delay{3000};
  // The address every instance gets (a pod network test points its tunnel at a test-made netns).
  std::string instance_ip = "127.0.0.1";

  // Thread-safe; may be replaced while calls run.
  void SetFaults(FaultFn faults);

  Result<providers::Instance> CreateInstance(const providers::InstanceSpec& spec,
                                             const providers::OpContext& ctx) override;
  Result<void> DeleteInstance(const std::string& instance_id, const providers::OpContext& ctx) override;
  Result<void> DeleteLeftovers(const std::string& name, const providers::Owner& owner,
                               const providers::OpContext& ctx) override;
  Result<std::vector<providers::Instance>> ListInstances(const std::string& node,
                                                         const providers::OpContext& ctx) override;
  Result<void> Verify(const providers::OpContext& ctx) override;

  // Adds an instance as if an earlier process had created it (for leak reconciliation tests).
  void Inject(providers::Instance instance);
  // Adds a volume as if a process had died between making it and making its instance.
  void InjectVolume(const std::string& instance_name);

  std::size_t Live() const;
  std::size_t Volumes() const;
  int creates() const { return creates_.load(); }
  int deletes() const { return deletes_.load(); }
  int max_concurrent_creates() const { return max_concurrent_.load(); }
  // Ends every hang-* create (at the end of a test).
  void ReleaseHangs();

 private:
  Result<void> Step(std::string_view step, const providers::OpContext& ctx, std::unique_lock<std::mutex>& lock);

  mutable std::mutex mu_;
  std::condition_variable_any cv_;
  FaultFn faults_;                                        // guarded by mu_
  std::map<std::string, providers::Instance> instances_;  // guarded by mu_
  std::set<std::string> volumes_;                         // guarded by mu_: by instance name
  std::map<std::string, int> flaky_attempts_;             // guarded by mu_
  int next_id_ = 1;                                       // guarded by mu_
  bool release_hangs_ = false;                            // guarded by mu_
  std::atomic<int> creates_{0};
  std::atomic<int> deletes_{0};
  std::atomic<int> concurrent_{0};
  std::atomic<int> max_concurrent_{0};
};

}  // namespace pp::testing
