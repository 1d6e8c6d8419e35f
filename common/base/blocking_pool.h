// BlockingPool: a fixed set of threads for calls that block (libvirt, curl, file system sweeps),
// so that they never run on an I/O thread.
//
// The queue is bounded: when `max_queued` jobs are already waiting, Run() fails at once with
// RESOURCE_EXHAUSTED instead of queueing without limit. The awaiting coroutine resumes on its own
// executor with the job's result. A job is not interrupted by cancellation of the awaiting
// coroutine; jobs take a deadline themselves where that matters. Destruction finishes the running
// jobs, fails the queued ones with CANCELLED and joins the threads.
#pragma once

#include "common/base/asio.h"
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <deque>
#include <functional>
#include <memory>
#include <optional>
#include <mutex>
#include <thread>
#include <vector>

#include "common/base/asio.h"
#include "common/base/error.h"

namespace pp {

class BlockingPool {
 public:
  BlockingPool(std::size_t threads, std::size_t max_queued);
  ~BlockingPool();
  BlockingPool(const BlockingPool&) = delete;
  BlockingPool& operator=(const BlockingPool&) = delete;

  // Runs `fn` (returning Result<T>) on a pool thread. If the awaiting coroutine is cancelled (its
  // call's deadline passed) it resumes at once with CANCELLED and the job's result is dropped.
  // Pass `fn` as a named local (std::move(local)), not a temporary lambda: GCC 12 can destroy a
  // temporary with captures in a co_await operand twice.
  template <typename T, typename Fn>
  asio::awaitable<Result<T>> Run(Fn fn) {
    struct State {
      State(const asio::any_io_executor& ex, Fn f)
          : done(ex, std::chrono::steady_clock::time_point::max()), fn(std::move(f)) {}
      asio::steady_timer done;  // cancelled once `result` is set
      Fn fn;
      std::optional<Result<T>> result;
    };
    auto executor = co_await asio::this_coro::executor;
    auto state = std::make_shared<State>(executor, std::move(fn));
    Submit(MakeJob([state, executor](const Error* refused) {
      Result<T> r = refused ? Result<T>(std::unexpected(*refused)) : state->fn();
      asio::post(executor, [state, r = std::move(r)]() mutable {
        state->result = std::move(r);
        state->done.cancel();
      });
    }));
    (void)co_await state->done.async_wait(kAwaitTuple);
    if (state->result) co_return std::move(*state->result);
    co_return std::unexpected(Error{Code::kCancelled, "cancelled while waiting for a blocking operation"});
  }

  std::size_t Queued() const;

  // Waits until no job is queued or running, at most until `until`. False when some still are (a
  // provider call that never returns): the caller may then exit without joining them.
  bool WaitIdle(std::chrono::steady_clock::time_point until);
  // Jobs running now.
  std::size_t Running() const;

 private:
  // A job is called with nullptr to run, or with the reason it is refused (queue full, stopping).
  // (Hand-rolled rather than std::move_only_function, which GCC 12 relocates incorrectly.)
  struct JobBase {
    virtual ~JobBase() = default;
    virtual void operator()(const Error* refused) = 0;
  };
  using Job = std::unique_ptr<JobBase>;
  template <typename F>
  static Job MakeJob(F f) {
    struct Impl final : JobBase {
      explicit Impl(F g) : f(std::move(g)) {}
      void operator()(const Error* refused) override { f(refused); }
      F f;
    };
    return std::make_unique<Impl>(std::move(f));
  }
  void Submit(Job job);
  void Worker();

  const std::size_t max_queued_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::condition_variable idle_;  // with mu_: a job finished
  std::deque<Job> queue_;  // guarded by mu_, at most max_queued_
  std::size_t running_ = 0;  // guarded by mu_
  bool stopping_ = false;  // guarded by mu_
  std::vector<std::jthread> threads_;
};

}  // namespace pp
