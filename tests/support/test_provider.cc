#include "tests/support/test_provider.h"

#include <CLI/CLI.hpp>

namespace pp::testing {

using Clock = std::chrono::steady_clock;

void TestProvider::SetFaults(FaultFn faults) {
  std::lock_guard lock(mu_);
  faults_ = std::move(faults);
}

Result<void> TestProvider::Step(std::string_view step, const providers::OpContext& ctx,
                                std::unique_lock<std::mutex>& lock) {
  if (ctx.stop.stop_requested()) return Fail(Code::kCancelled, "test provider: cancelled before ", std::string(step));
  if (Clock::now() >= ctx.deadline) {
    return Fail(Code::kDeadlineExceeded, "test provider: deadline passed before ", std::string(step));
  }
  const Fault fault = faults_ ? faults_(step) : Fault::kNone;
  switch (fault) {
    case Fault::kNone: return {};
    case Fault::kFail: return Fail(Code::kInternal, "test provider: injected failure at ", std::string(step));
    case Fault::kFailRetryable:
      return Fail(Code::kUnavailable, "test provider: injected transient failure at ", std::string(step));
    case Fault::kStall:
      cv_.wait_until(lock, ctx.stop, ctx.deadline, [] { return false; });
      if (ctx.stop.stop_requested()) return Fail(Code::kCancelled, "test provider: cancelled in ", std::string(step));
      return Fail(Code::kDeadlineExceeded, "test provider: stalled in ", std::string(step));
  }
  return {};
}

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
  if (pod.starts_with("hang-")) {
    cv_.wait(lock, [this] { return release_hangs_; });
    return Fail(Code::kUnavailable, "test provider: hang released");
  }
  if (pod.starts_with("fail-")) {
    return Fail(Code::kFailedPrecondition, "test provider: injected failure for pod ", pod);
  }
  if (pod.starts_with("flaky-") && ++flaky_attempts_[spec.owner.sandbox_id] <= 2) {
    return Fail(Code::kUnavailable, "test provider: injected transient failure");
  }
  // Sleep in slices so both the deadline and a stop request end the wait promptly.
  const auto wake = Clock::now() + (pod.starts_with("slow-") ? slow_delay : std::chrono::milliseconds(0));
  cv_.wait_until(lock, ctx.stop, std::min(wake, ctx.deadline), [] { return false; });
  if (ctx.stop.stop_requested()) return Fail(Code::kCancelled, "test provider: create cancelled");
  if (Clock::now() < wake) return Fail(Code::kDeadlineExceeded, "test provider: deadline passed");

  // As a real provider does: a volume first, then the instance, then its address; a failure at any
  // step undoes the steps before it.
  if (auto ok = Step("create.volume", ctx, lock); !ok) return std::unexpected(ok.error());
  volumes_.insert(spec.name);
  if (auto ok = Step("create.instance", ctx, lock); !ok) {
    volumes_.erase(spec.name);
    return std::unexpected(ok.error());
  }
  providers::Instance instance;
  instance.id = "test-" + std::to_string(next_id_++);
  instance.name = spec.name;
  instance.owner = spec.owner;
  if (!pod.starts_with("noip-")) instance.ips = {instance_ip};
  instances_[instance.id] = instance;
  auto addressed = pod.starts_with("faillate-")
                       ? Result<void>(Fail(Code::kInternal, "test provider: injected failure after the instance existed"))
                       : Step("create.address", ctx, lock);
  if (!addressed) {
    instances_.erase(instance.id);
    volumes_.erase(spec.name);
    return std::unexpected(addressed.error());
  }
  creates_.fetch_add(1);
  return instance;
}

Result<void> TestProvider::DeleteInstance(const std::string& instance_id, const providers::OpContext& ctx) {
  std::unique_lock lock(mu_);
  if (auto ok = Step("delete", ctx, lock); !ok) return ok;
  const auto it = instances_.find(instance_id);
  if (it == instances_.end()) return {};  // the contract: an unknown id is success
  volumes_.erase(it->second.name);
  instances_.erase(it);
  deletes_.fetch_add(1);
  return {};
}

Result<void> TestProvider::DeleteLeftovers(const std::string& name, const providers::Owner& owner,
                                           const providers::OpContext& ctx) {
  std::unique_lock lock(mu_);
  if (auto ok = Step("leftovers", ctx, lock); !ok) return ok;
  bool foreign = false;
  for (auto it = instances_.begin(); it != instances_.end();) {
    if (it->second.name != name) {
      ++it;
    } else if (it->second.owner == owner) {
      it = instances_.erase(it);
    } else {
      foreign = true;
      ++it;
    }
  }
  if (!foreign) volumes_.erase(name);
  return {};
}

Result<std::vector<providers::Instance>> TestProvider::ListInstances(const std::string& node,
                                                                     const providers::OpContext& ctx) {
  std::unique_lock lock(mu_);
  if (auto ok = Step("list", ctx, lock); !ok) return std::unexpected(ok.error());
  std::vector<providers::Instance> out;
  for (const auto& [id, instance] : instances_) {
    if (instance.owner.node == node) out.push_back(instance);
  }
  return out;
}

Result<void> TestProvider::Verify(const providers::OpContext& ctx) {
  std::unique_lock lock(mu_);
  return Step("verify", ctx, lock);
}

void TestProvider::Inject(providers::Instance instance) {
  std::lock_guard lock(mu_);
  volumes_.insert(instance.name);
  instances_[instance.id] = std::move(instance);
}

void TestProvider::InjectVolume(const std::string& instance_name) {
  std::lock_guard lock(mu_);
  volumes_.insert(instance_name);
}

std::size_t TestProvider::Live() const {
  std::lock_guard lock(mu_);
  return instances_.size();
}

std::size_t TestProvider::Volumes() const {
  std::lock_guard lock(mu_);
  return volumes_.size();
}

void TestProvider::ReleaseHangs() {
  {
    std::lock_guard lock(mu_);
    release_hangs_ = true;
  }
  cv_.notify_all();
}

}  // namespace pp::testing
