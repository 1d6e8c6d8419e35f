// BatchPoller: many waiters, one poll. When many sandboxes start together each CreateInstance waits
// for its instance to run; instead of one poll loop per instance (100 pods = 100 DescribeInstances
// every few seconds, which throttles the account) one thread polls every pending id in batches
// (EC2 DescribeInstances with InstanceId.1..N, one instances.list per zone, one ARM list per
// resource group) and wakes the waiters whose instance changed.
//
// The poll function gets the ids being waited for (at most `max_batch` per call) and returns what
// it learned of each: an id missing from the answer is "not seen yet" (eventual consistency right
// after a create), not gone. A failed poll is retried at the next interval; waiters see the error
// only if their deadline passes.
#pragma once

#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "common/base/error.h"
#include "providers/provider.h"

namespace pp::providers {

// What one poll learned of one instance, in the provider's own words.
struct PolledInstance {
  std::string state;             // the cloud's state name: "pending", "running", "Succeeded", "DONE", ...
  std::vector<std::string> ips;  // addresses known so far
  std::string detail;            // e.g. an error message for a failed instance
};

class BatchPoller {
 public:
  using State = PolledInstance;
  using PollFn = std::function<Result<std::map<std::string, State>>(const std::vector<std::string>& ids,
                                                                    const OpContext& ctx)>;
  // done(state) true: the wait ends with that state (running, or a terminal failure the caller
  // inspects).
  using DoneFn = std::function<bool(const State&)>;

  BatchPoller(PollFn poll, std::chrono::milliseconds interval, std::size_t max_batch);
  ~BatchPoller();  // stops the polling thread; waiters still waiting get CANCELLED

  // Waits until done(state) for `id`, or the context ends (DEADLINE_EXCEEDED / CANCELLED, with the
  // last poll error if any). Thread-safe; many waiters at once.
  Result<State> Wait(const std::string& id, const DoneFn& done, const OpContext& ctx);

  // Polls made so far (for tests and the bench).
  std::size_t polls() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace pp::providers
