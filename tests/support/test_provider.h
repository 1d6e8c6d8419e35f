// TestProvider: a test-only stand-in for a real provider (no cloud or libvirtd reachable from a
// unit test). Instances live in memory; nothing is booted. Behaviour is keyed on the pod name so
// that end-to-end tests through the daemon can ask for failures:
//   slow-*   CreateInstance takes `slow_delay` (honouring the deadline and stop requests)
//   fail-*   CreateInstance fails FAILED_PRECONDITION (misconfigured: not retried)
//   flaky-*  the first two CreateInstance attempts fail UNAVAILABLE, then it succeeds
//   noip-*   the instance has no IP address
// Counters let tests check that nothing leaks.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <map>
#include <mutex>

#include "providers/provider.h"

namespace pp::testing {

class TestProvider final : public providers::Provider {
 public:
  std::chrono::milliseconds slow_delay{3000};

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

  std::size_t Live() const;
  int creates() const { return creates_.load(); }
  int deletes() const { return deletes_.load(); }
  int max_concurrent_creates() const { return max_concurrent_.load(); }

 private:
  mutable std::mutex mu_;
  std::condition_variable_any cv_;
  std::map<std::string, providers::Instance> instances_;  // guarded by mu_
  std::map<std::string, int> flaky_attempts_;             // guarded by mu_
  int next_id_ = 1;                                       // guarded by mu_
  std::atomic<int> creates_{0};
  std::atomic<int> deletes_{0};
  std::atomic<int> concurrent_{0};
  std::atomic<int> max_concurrent_{0};
};

}  // namespace pp::testing
