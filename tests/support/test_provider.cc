#include "tests/support/test_provider.h"

#include <CLI/CLI.hpp>

namespace pp::testing {

Result<providers::Instance> TestProvider::CreateInstance(const providers::InstanceSpec& spec,
                                                         const providers::OpContext& ctx) {
  const int now = concurrent_.fetch_add(1) + 1;
  for (int seen = max_concurrent_.load(); now > seen && !max_concurrent_.compare_exchange_weak(seen, now);) {
  }
  struct Leave {
    std::atomic<int>& n;
    ~Leave() { n.fetch_sub(1); }
  } leave{concurrent_};

  const std::string& pod = spec.pod_name;
  std::unique_lock lock(mu_);
  if (pod.starts_with("fail-")) {
    return Fail(Code::kFailedPrecondition, "test provider: injected failure for pod ", pod);
  }
  if (pod.starts_with("flaky-") && ++flaky_attempts_[spec.owner.sandbox_id] <= 2) {
    return Fail(Code::kUnavailable, "test provider: injected transient failure");
  }
  // Sleep in slices so both the deadline and a stop request end the wait promptly.
  const auto wake = std::chrono::steady_clock::now() + (pod.starts_with("slow-") ? slow_delay : std::chrono::milliseconds(0));
  cv_.wait_until(lock, ctx.stop, std::min(wake, ctx.deadline), [] { return false; });
  if (ctx.stop.stop_requested()) return Fail(Code::kCancelled, "test provider: create cancelled");
  if (std::chrono::steady_clock::now() < wake) return Fail(Code::kDeadlineExceeded, "test provider: deadline passed");

  providers::Instance instance;
  instance.id = "test-" + std::to_string(next_id_++);
  instance.name = spec.name;
  instance.owner = spec.owner;
  if (!pod.starts_with("noip-")) instance.ips = {"127.0.0.1"};
  instances_[instance.id] = instance;
  creates_.fetch_add(1);
  return instance;
}

Result<void> TestProvider::DeleteInstance(const std::string& instance_id, const providers::OpContext&) {
  std::lock_guard lock(mu_);
  if (instances_.erase(instance_id) == 0) return Fail(Code::kNotFound, "test provider: no instance ", instance_id);
  deletes_.fetch_add(1);
  return {};
}

Result<void> TestProvider::DeleteLeftovers(const std::string& name, const providers::Owner& owner,
                                           const providers::OpContext&) {
  std::lock_guard lock(mu_);
  std::erase_if(instances_, [&](const auto& kv) { return kv.second.name == name && kv.second.owner == owner; });
  return {};
}

Result<std::vector<providers::Instance>> TestProvider::ListInstances(const std::string& node,
                                                                     const providers::OpContext&) {
  std::lock_guard lock(mu_);
  std::vector<providers::Instance> out;
  for (const auto& [id, instance] : instances_) {
    if (instance.owner.node == node) out.push_back(instance);
  }
  return out;
}

Result<void> TestProvider::Verify(const providers::OpContext&) { return {}; }

void TestProvider::Inject(providers::Instance instance) {
  std::lock_guard lock(mu_);
  instances_[instance.id] = std::move(instance);
}

std::size_t TestProvider::Live() const {
  std::lock_guard lock(mu_);
  return instances_.size();
}

}  // namespace pp::testing
