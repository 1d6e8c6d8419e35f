// BatchPoller: many waiters, one poll. When many sandboxes start together each CreateInstance waits
// for its instance to run; instead of one poll loop per instance (100 pods = 100 DescribeInstances
// every few seconds, which throttles the account) one thread polls every pending id in batches
// (EC2 DescribeInstances with InstanceId.1..N, one instances.list per zone, one ARM list per
// resource group) and wakes the waiters whose instance changed.
//
// The poll function gets the ids being waited for (at most `max_batch` per call, each id once, in
// sorted order; 0 means no limit) and returns what it learned of each: an id missing from the
// answer is "not seen yet" (eventual consistency right after a create), not gone. A failed poll is
// retried at the next interval; waiters see the error only if their context ends first.
//
// Threading: one polling thread per BatchPoller, started by the constructor and joined by the
// destructor. It sleeps on a condition variable while nobody waits; once someone does, it polls
// every `interval` (measured from the end of one round to the start of the next; the first round
// comes one interval after the first waiter, so a burst of creates shares it). A round polls every
// id waited for, in chunks of `max_batch`, one call after another. Each call gets an OpContext
// whose deadline is max(interval, 15 s) away and whose stop token is requested by the destructor.
// The poll and done functions run on the polling thread; done runs under the poller's lock, so it
// must be a cheap predicate that never throws nor calls back into the poller.
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
  std::string state;             // the cloud's own: "pending", "running", "Succeeded", "DONE"...
  std::vector<std::string> ips;  // addresses known so far
  std::string detail;            // e.g. an error message for a failed instance
};

class BatchPoller {
 public:
  using State = PolledInstance;
  using PollFn = std::function<Result<std::map<std::string, State>>(
      const std::vector<std::string>& ids, const OpContext& ctx)>;
  // done(state) true: the wait ends with that state (running, or a terminal failure the caller
  // inspects).
  using DoneFn = std::function<bool(const State&)>;

  BatchPoller(PollFn poll, std::chrono::milliseconds interval, std::size_t max_batch);
  // Stops the polling thread (requesting stop of a poll in flight) and joins it; waiters still
  // waiting get CANCELLED, and the destructor returns once they have all left Wait.
  ~BatchPoller();

  // Waits until done(state) for `id` and returns that state, or the context ends: DEADLINE_EXCEEDED
  // or CANCELLED (stop requested; woken at once by a stop_callback), whose message carries the last
  // state seen and the last poll error if no poll of the id succeeded since. A context already
  // ended fails at once. Thread-safe; many waiters at once, several on one id each get the state.
  Result<State> Wait(const std::string& id, const DoneFn& done, const OpContext& ctx);

  // Poll calls made so far (for tests and the bench).
  std::size_t polls() const;
  // Waiters registered and not yet woken (for tests: await this before scripting the cloud).
  std::size_t waiting() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace pp::providers
