#include "providers/batch_poller.h"

#include <algorithm>
#include <condition_variable>
#include <cstdint>
#include <exception>
#include <mutex>
#include <optional>
#include <stop_token>
#include <thread>
#include <utility>

namespace pp::providers {
namespace {

// A poll is one API call (with the HTTP client's own retries inside); a round must not hang on it
// for ever, but a slow or throttled cloud needs more than a short interval.
constexpr std::chrono::milliseconds kMinPollTimeout{15000};

}  // namespace

struct BatchPoller::Impl {
  // One Wait call. Lives on the waiter's stack; while `registered` the poll thread reaches it
  // through `waiting`. Every field but `id` and `done` is guarded by `mu`.
  struct Waiter {
    std::string id;
    const DoneFn* done = nullptr;
    std::optional<State> result;     // set when done(state) held
    std::optional<State> last_seen;  // the latest state polled, for the timeout message
    std::optional<Error>
        last_error;          // the latest failed poll of this id, unless one succeeded since
    bool cancelled = false;  // the poller is being destroyed
    bool registered = false;
    std::condition_variable cv;
  };

  Impl(PollFn poll_fn, std::chrono::milliseconds poll_interval, std::size_t batch)
      : poll(std::move(poll_fn)),
        interval(std::max(poll_interval, std::chrono::milliseconds(1))),
        poll_timeout(std::max(interval, kMinPollTimeout)),
        max_batch(batch == 0 ? SIZE_MAX : batch) {}

  void Run(const std::stop_token& stop);
  void PollRound(const std::stop_token& stop);
  Result<std::map<std::string, State>> PollOnce(const std::vector<std::string>& ids,
                                                const std::stop_token& stop);
  void Unregister(Waiter& w);  // mu held

  const PollFn poll;
  const std::chrono::milliseconds interval;
  const std::chrono::milliseconds poll_timeout;
  const std::size_t max_batch;

  mutable std::mutex mu;
  std::condition_variable wake;                 // the poll thread: a first waiter, or shutdown
  std::condition_variable all_gone;             // the destructor: the last waiter left Wait
  std::multimap<std::string, Waiter*> waiting;  // guarded by mu
  std::size_t in_wait = 0;                      // Wait calls not yet returned; guarded by mu
  std::size_t poll_count = 0;                   // guarded by mu
  bool stopping = false;                        // guarded by mu

  std::jthread thread;  // last: started once everything above exists
};

void BatchPoller::Impl::Unregister(Waiter& w) {
  if (!w.registered) return;
  auto [begin, end] = waiting.equal_range(w.id);
  for (auto it = begin; it != end; ++it) {
    if (it->second == &w) {
      waiting.erase(it);
      break;
    }
  }
  w.registered = false;
}

void BatchPoller::Impl::Run(const std::stop_token& stop) {
  std::unique_lock lock(mu);
  while (!stopping) {
    if (waiting.empty()) {
      wake.wait(lock, [this] { return stopping || !waiting.empty(); });
      continue;
    }
    // Sleep a full interval first: a burst of creates then lands in one round, and an instance
    // created a moment ago is not yet worth asking about.
    if (wake.wait_for(lock, interval, [this] { return stopping; })) break;
    if (waiting.empty()) continue;
    lock.unlock();
    PollRound(stop);
    lock.lock();
  }
}

Result<std::map<std::string, BatchPoller::State>> BatchPoller::Impl::PollOnce(
    const std::vector<std::string>& ids, const std::stop_token& stop) {
  OpContext ctx{std::chrono::steady_clock::now() + poll_timeout, stop};
  // The poll function is the provider's; an exception must not end the polling thread (and with it
  // the process), so it becomes an error like any failed poll.
  try {
    return poll(ids, ctx);
  } catch (const std::exception& e) {
    return Fail(Code::kInternal, "poll threw: ", e.what());
  } catch (...) {
    return Fail(Code::kInternal, "poll threw");
  }
}

void BatchPoller::Impl::PollRound(const std::stop_token& stop) {
  std::vector<std::string> ids;
  {
    std::lock_guard lock(mu);
    for (auto it = waiting.begin(); it != waiting.end(); it = waiting.upper_bound(it->first)) {
      ids.push_back(it->first);
    }
  }
  for (std::size_t start = 0; start < ids.size(); start += max_batch) {
    if (stop.stop_requested()) return;
    std::vector<std::string> chunk(
        ids.begin() + static_cast<std::ptrdiff_t>(start),
        ids.begin() + static_cast<std::ptrdiff_t>(std::min(ids.size(), start + max_batch)));
    auto polled = PollOnce(chunk, stop);

    std::lock_guard lock(mu);
    ++poll_count;
    for (const std::string& id : chunk) {
      const State* state = nullptr;
      if (polled.has_value()) {
        auto found = polled->find(id);
        // Missing from the answer: not seen yet (eventual consistency), not gone.
        if (found != polled->end()) state = &found->second;
      }
      auto [begin, end] = waiting.equal_range(id);
      for (auto it = begin; it != end;) {
        Waiter& w = *it->second;
        if (!polled.has_value()) {
          w.last_error = polled.error();
        } else {
          w.last_error.reset();
        }
        if (state == nullptr) {
          ++it;
          continue;
        }
        w.last_seen = *state;
        // done() runs under mu so that the waiter (and its DoneFn) cannot leave meanwhile; it must
        // be a cheap predicate that neither throws nor calls back into the poller.
        if (!(*w.done)(*state)) {
          ++it;
          continue;
        }
        w.result = *state;
        w.registered = false;
        it = waiting.erase(it);
        w.cv.notify_one();
      }
    }
  }
}

BatchPoller::BatchPoller(PollFn poll, std::chrono::milliseconds interval, std::size_t max_batch)
    : impl_(std::make_unique<Impl>(std::move(poll), interval, max_batch)) {
  impl_->thread = std::jthread([impl = impl_.get()](std::stop_token stop) { impl->Run(stop); });
}

BatchPoller::~BatchPoller() {
  {
    std::unique_lock lock(impl_->mu);
    impl_->stopping = true;
    for (auto& [id, w] : impl_->waiting) {
      w->cancelled = true;
      w->registered = false;
      w->cv.notify_one();
    }
    impl_->waiting.clear();
    impl_->wake.notify_one();
  }
  // The stop token reaches a poll in flight through its OpContext.
  impl_->thread.request_stop();
  impl_->thread.join();
  // Waiters woken above still touch Impl on their way out of Wait.
  std::unique_lock lock(impl_->mu);
  impl_->all_gone.wait(lock, [this] { return impl_->in_wait == 0; });
}

Result<BatchPoller::State> BatchPoller::Wait(const std::string& id, const DoneFn& done,
                                             const OpContext& ctx) {
  if (ctx.stop.stop_requested()) return Fail(Code::kCancelled, "waiting for ", id, ": cancelled");
  if (std::chrono::steady_clock::now() >= ctx.deadline) {
    return Fail(Code::kDeadlineExceeded, "waiting for ", id, ": deadline exceeded");
  }

  Impl& impl = *impl_;
  Impl::Waiter w;
  w.id = id;
  w.done = &done;
  {
    std::lock_guard lock(impl.mu);
    if (impl.stopping)
      return Fail(Code::kCancelled, "waiting for ", id, ": the poller is shutting down");
    ++impl.in_wait;
    w.registered = true;
    if (impl.waiting.empty()) impl.wake.notify_one();
    impl.waiting.emplace(id, &w);
  }

  Result<State> outcome = Fail(Code::kUnknown, "");
  {
    // Notified under mu, so the wake-up cannot fall between the waiter's check and its sleep.
    // Declared outside the lock: its destructor waits for a callback running on another thread,
    // and that callback takes mu.
    std::stop_callback on_stop(ctx.stop, [&] {
      std::lock_guard lock(impl.mu);
      w.cv.notify_one();
    });
    std::unique_lock lock(impl.mu);
    w.cv.wait_until(lock, ctx.deadline, [&] {
      return w.result.has_value() || w.cancelled || ctx.stop.stop_requested();
    });
    impl.Unregister(w);

    std::string last;
    if (w.last_seen)
      last = "; last state " + (w.last_seen->state.empty() ? "(none)" : w.last_seen->state);
    if (w.last_error) last += "; last poll failed: " + w.last_error->ToString();
    if (w.result) {
      outcome = std::move(*w.result);
    } else if (w.cancelled) {
      outcome = Fail(Code::kCancelled, "waiting for ", id, ": the poller is shutting down", last);
    } else if (ctx.stop.stop_requested()) {
      outcome = Fail(Code::kCancelled, "waiting for ", id, ": cancelled", last);
    } else {
      outcome = Fail(Code::kDeadlineExceeded, "waiting for ", id, ": deadline exceeded",
                     w.last_seen || w.last_error ? last : "; not seen by any poll yet");
    }
  }

  std::lock_guard lock(impl.mu);
  if (--impl.in_wait == 0 && impl.stopping) impl.all_gone.notify_all();
  return outcome;
}

std::size_t BatchPoller::polls() const {
  std::lock_guard lock(impl_->mu);
  return impl_->poll_count;
}

std::size_t BatchPoller::waiting() const {
  std::lock_guard lock(impl_->mu);
  return impl_->waiting.size();
}

}  // namespace pp::providers
