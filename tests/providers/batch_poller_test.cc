#include "providers/batch_poller.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <condition_variable>
#include <cstdio>
#include <deque>
#include <future>
#include <mutex>
#include <optional>
#include <set>
#include <stdexcept>
#include <thread>

namespace pp::providers {
namespace {

using ::testing::HasSubstr;
using State = BatchPoller::State;
using namespace std::chrono_literals;

// Bounds for awaiting a condition; a test that hits one fails, none is a sleep.
constexpr auto kBound = 30s;
constexpr auto kInterval = 2ms;

template <typename Pred>
bool Await(Pred pred) {
  const auto until = std::chrono::steady_clock::now() + kBound;
  while (!pred()) {
    if (std::chrono::steady_clock::now() >= until) return false;
    std::this_thread::sleep_for(1ms);  // polling another thread's progress, bounded
  }
  return true;
}

template <typename T>
bool Ready(std::future<T>& f) {
  return f.wait_for(kBound) == std::future_status::ready;
}

OpContext Ctx(std::chrono::steady_clock::duration budget = 1h, std::stop_token stop = {}) {
  return OpContext{std::chrono::steady_clock::now() + budget, std::move(stop)};
}

bool IsRunning(const State& s) { return s.state == "running"; }

State Running(const std::string& ip) { return State{"running", {ip}, ""}; }
State Pending() { return State{"pending", {}, ""}; }

// The cloud as the poll function sees it: per id a steady state (absent: not seen), optionally a
// script consumed one poll at a time before it, and scripted failures of whole calls.
class FakeCloud {
 public:
  void Set(const std::string& id, std::optional<State> state) {
    std::lock_guard lock(mu_);
    steady_[id] = std::move(state);
  }
  void Script(const std::string& id, std::deque<std::optional<State>> script) {
    std::lock_guard lock(mu_);
    scripts_[id] = std::move(script);
  }
  void FailNext(int calls, Error error) {
    std::lock_guard lock(mu_);
    fail_next_ = calls;
    fail_with_ = std::move(error);
  }
  void FailAlways(Error error) { FailNext(1 << 30, std::move(error)); }

  std::vector<std::vector<std::string>> calls() const {
    std::lock_guard lock(mu_);
    return calls_;
  }
  std::size_t call_count() const {
    std::lock_guard lock(mu_);
    return calls_.size();
  }
  std::vector<std::chrono::steady_clock::duration> budgets() const {
    std::lock_guard lock(mu_);
    return budgets_;
  }

  BatchPoller::PollFn Fn() {
    return [this](const std::vector<std::string>& ids,
                  const OpContext& ctx) -> Result<std::map<std::string, State>> {
      std::lock_guard lock(mu_);
      calls_.push_back(ids);
      budgets_.push_back(ctx.deadline - std::chrono::steady_clock::now());
      if (fail_next_ > 0) {
        --fail_next_;
        return std::unexpected(fail_with_);
      }
      std::map<std::string, State> out;
      for (const std::string& id : ids) {
        std::optional<State> state;
        auto script = scripts_.find(id);
        if (script != scripts_.end() && !script->second.empty()) {
          state = script->second.front();
          script->second.pop_front();
        } else if (auto steady = steady_.find(id); steady != steady_.end()) {
          state = steady->second;
        }
        if (state) out.emplace(id, *state);
      }
      return out;
    };
  }

 private:
  mutable std::mutex mu_;
  std::map<std::string, std::optional<State>> steady_;
  std::map<std::string, std::deque<std::optional<State>>> scripts_;
  int fail_next_ = 0;
  Error fail_with_;
  std::vector<std::vector<std::string>> calls_;
  std::vector<std::chrono::steady_clock::duration> budgets_;
};

std::string Id(int i) {
  char buf[16];
  std::snprintf(buf, sizeof buf, "i-%03d", i);
  return buf;
}

// Every call asks for at most max_batch ids, each once, in order.
void ExpectWellFormed(const std::vector<std::vector<std::string>>& calls, std::size_t max_batch) {
  for (const auto& call : calls) {
    EXPECT_FALSE(call.empty());
    EXPECT_LE(call.size(), max_batch);
    EXPECT_TRUE(std::is_sorted(call.begin(), call.end()));
    EXPECT_EQ(std::set<std::string>(call.begin(), call.end()).size(), call.size());
  }
}

TEST(BatchPoller, HundredWaitersCostPollsPerRoundNotPerWaiter) {
  FakeCloud cloud;
  BatchPoller poller(cloud.Fn(), kInterval, 50);
  std::vector<std::future<Result<State>>> waiters;
  for (int i = 0; i < 100; ++i) {
    waiters.push_back(std::async(std::launch::async,
                                 [&poller, i] { return poller.Wait(Id(i), IsRunning, Ctx()); }));
  }
  ASSERT_TRUE(Await([&] { return poller.waiting() == 100; }));
  for (int i = 0; i < 100; ++i) cloud.Set(Id(i), Running("10.0.0." + std::to_string(i)));
  // Counted from when every instance runs (setting 100 states may span several 2 ms rounds on a
  // loaded machine).
  const std::size_t before = cloud.call_count();

  for (int i = 0; i < 100; ++i) {
    ASSERT_TRUE(Ready(waiters[i]));
    auto got = waiters[i].get();
    ASSERT_TRUE(got.has_value()) << got.error().ToString();
    EXPECT_EQ(got->state, "running");
    EXPECT_EQ(got->ips, std::vector<std::string>{"10.0.0." + std::to_string(i)});
  }
  // Once every instance runs, at most the round in flight (2 calls of 50) and one full round: 100
  // waiters woken by 4 calls, where one poll loop per waiter would make 100.
  EXPECT_LE(cloud.call_count() - before, 4u);
  ExpectWellFormed(cloud.calls(), 50);
  EXPECT_EQ(poller.polls(), cloud.call_count());
  EXPECT_EQ(poller.waiting(), 0u);
}

TEST(BatchPoller, RoundIsChunkedByMaxBatch) {
  FakeCloud cloud;
  BatchPoller poller(cloud.Fn(), kInterval, 3);
  std::vector<std::future<Result<State>>> waiters;
  std::vector<std::string> ids;
  for (int i = 0; i < 10; ++i) {
    ids.push_back(Id(i));
    waiters.push_back(std::async(std::launch::async,
                                 [&poller, i] { return poller.Wait(Id(i), IsRunning, Ctx()); }));
  }
  ASSERT_TRUE(Await([&] { return poller.waiting() == 10; }));
  const std::size_t mark = cloud.call_count();
  // The round in flight may predate some waiters (at most 4 calls); the next one has them all.
  ASSERT_TRUE(Await([&] { return cloud.call_count() >= mark + 8; }));
  const std::vector<std::vector<std::string>> full_round = {
      {ids[0], ids[1], ids[2]}, {ids[3], ids[4], ids[5]}, {ids[6], ids[7], ids[8]}, {ids[9]}};
  auto calls = cloud.calls();
  auto found = std::search(calls.begin() + static_cast<std::ptrdiff_t>(mark), calls.end(),
                           full_round.begin(), full_round.end());
  EXPECT_NE(found, calls.end()) << "no round of 3+3+3+1 ids after all 10 waited";
  ExpectWellFormed(calls, 3);

  for (const auto& id : ids) cloud.Set(id, Running("10.0.0.1"));
  for (auto& w : waiters) {
    ASSERT_TRUE(Ready(w));
    EXPECT_TRUE(w.get().has_value());
  }
}

TEST(BatchPoller, IdNotSeenAtFirstIsNotGone) {
  FakeCloud cloud;
  cloud.Script("i-new", {std::nullopt, std::nullopt, std::nullopt, Pending(), Pending()});
  cloud.Set("i-new", Running("192.0.2.7"));
  BatchPoller poller(cloud.Fn(), kInterval, 10);
  auto got = poller.Wait("i-new", IsRunning, Ctx());
  ASSERT_TRUE(got.has_value()) << got.error().ToString();
  EXPECT_EQ(got->ips, std::vector<std::string>{"192.0.2.7"});
  EXPECT_GE(cloud.call_count(), 6u);
}

TEST(BatchPoller, FailingPollIsRetried) {
  FakeCloud cloud;
  cloud.FailNext(3, Error{Code::kUnavailable, "DescribeInstances: 503"});
  cloud.Set("i-1", Running("192.0.2.1"));
  BatchPoller poller(cloud.Fn(), kInterval, 10);
  auto got = poller.Wait("i-1", IsRunning, Ctx());
  ASSERT_TRUE(got.has_value()) << got.error().ToString();
  EXPECT_EQ(got->state, "running");
  EXPECT_EQ(poller.polls(), 4u);
}

TEST(BatchPoller, ThrowingPollIsAFailedPoll) {
  FakeCloud cloud;
  cloud.Set("i-1", Running("192.0.2.1"));
  int calls = 0;
  auto inner = cloud.Fn();
  BatchPoller poller(
      [&](const std::vector<std::string>& ids,
          const OpContext& ctx) -> Result<std::map<std::string, State>> {
        if (calls++ == 0) throw std::runtime_error("bad response");
        return inner(ids, ctx);
      },
      kInterval, 10);
  auto got = poller.Wait("i-1", IsRunning, Ctx());
  ASSERT_TRUE(got.has_value()) << got.error().ToString();
  EXPECT_EQ(poller.polls(), 2u);
}

TEST(BatchPoller, DeadlineHonoured) {
  FakeCloud cloud;
  cloud.Set("i-slow", Pending());
  BatchPoller poller(cloud.Fn(), kInterval, 10);
  auto waiter =
      std::async(std::launch::async, [&] { return poller.Wait("i-slow", IsRunning, Ctx(50ms)); });
  ASSERT_TRUE(Ready(waiter));
  auto got = waiter.get();
  ASSERT_FALSE(got.has_value());
  EXPECT_EQ(got.error().code, Code::kDeadlineExceeded);
  EXPECT_THAT(got.error().message, HasSubstr("i-slow"));
  EXPECT_EQ(poller.waiting(), 0u);
}

TEST(BatchPoller, ContextAlreadyEndedFailsAtOnce) {
  FakeCloud cloud;
  BatchPoller poller(cloud.Fn(), kInterval, 10);
  auto late = poller.Wait("i-1", IsRunning, Ctx(-1s));
  ASSERT_FALSE(late.has_value());
  EXPECT_EQ(late.error().code, Code::kDeadlineExceeded);
  std::stop_source stopped;
  stopped.request_stop();
  auto cancelled = poller.Wait("i-1", IsRunning, Ctx(1h, stopped.get_token()));
  ASSERT_FALSE(cancelled.has_value());
  EXPECT_EQ(cancelled.error().code, Code::kCancelled);
}

TEST(BatchPoller, StopWakesTheWaiterWithTheLastPollError) {
  FakeCloud cloud;
  cloud.FailAlways(Error{Code::kAborted, "RequestLimitExceeded"});
  BatchPoller poller(cloud.Fn(), kInterval, 10);
  std::stop_source stop;
  auto waiter = std::async(
      std::launch::async, [&] { return poller.Wait("i-1", IsRunning, Ctx(1h, stop.get_token())); });
  ASSERT_TRUE(Await([&] { return poller.waiting() == 1 && poller.polls() >= 1; }));
  stop.request_stop();
  ASSERT_TRUE(Ready(waiter));
  auto got = waiter.get();
  ASSERT_FALSE(got.has_value());
  EXPECT_EQ(got.error().code, Code::kCancelled);
  EXPECT_THAT(got.error().message, HasSubstr("ABORTED: RequestLimitExceeded"));
  EXPECT_EQ(poller.waiting(), 0u);
}

TEST(BatchPoller, StopWithTheLastStateSeen) {
  FakeCloud cloud;
  cloud.Set("i-1", State{"stopping", {}, ""});
  BatchPoller poller(cloud.Fn(), kInterval, 10);
  std::stop_source stop;
  auto waiter = std::async(
      std::launch::async, [&] { return poller.Wait("i-1", IsRunning, Ctx(1h, stop.get_token())); });
  ASSERT_TRUE(Await([&] { return poller.waiting() == 1 && poller.polls() >= 1; }));
  stop.request_stop();
  ASSERT_TRUE(Ready(waiter));
  auto got = waiter.get();
  ASSERT_FALSE(got.has_value());
  EXPECT_EQ(got.error().code, Code::kCancelled);
  EXPECT_THAT(got.error().message, HasSubstr("last state stopping"));
  EXPECT_THAT(got.error().message, ::testing::Not(HasSubstr("poll failed")));
}

TEST(BatchPoller, TwoWaitersOnOneIdBothWake) {
  FakeCloud cloud;
  cloud.Set("i-1", Pending());
  BatchPoller poller(cloud.Fn(), kInterval, 10);
  auto a = std::async(std::launch::async, [&] { return poller.Wait("i-1", IsRunning, Ctx()); });
  auto b = std::async(std::launch::async, [&] { return poller.Wait("i-1", IsRunning, Ctx()); });
  // A third waiter on the same id with its own predicate ends first, on its own.
  auto seen = poller.Wait(
      "i-1", [](const State& s) { return s.state == "pending"; }, Ctx());
  ASSERT_TRUE(seen.has_value());
  EXPECT_EQ(seen->state, "pending");
  ASSERT_TRUE(Await([&] { return poller.waiting() == 2; }));
  cloud.Set("i-1", Running("192.0.2.9"));
  for (auto* w : {&a, &b}) {
    ASSERT_TRUE(Ready(*w));
    auto got = w->get();
    ASSERT_TRUE(got.has_value()) << got.error().ToString();
    EXPECT_EQ(got->ips, std::vector<std::string>{"192.0.2.9"});
  }
  for (const auto& call : cloud.calls()) EXPECT_EQ(call, std::vector<std::string>{"i-1"});
}

TEST(BatchPoller, PollContextIsBounded) {
  FakeCloud cloud;
  cloud.Script("i-1", {Pending()});
  cloud.Set("i-1", Running("192.0.2.1"));
  BatchPoller poller(cloud.Fn(), kInterval, 10);
  ASSERT_TRUE(poller.Wait("i-1", IsRunning, Ctx()).has_value());
  for (auto budget : cloud.budgets()) {
    EXPECT_GT(budget, 0s);
    EXPECT_LE(budget, 15s);
  }
}

TEST(BatchPoller, IdleThreadPollsNothing) {
  FakeCloud cloud;
  cloud.Set("i-1", Running("192.0.2.1"));
  BatchPoller poller(cloud.Fn(), kInterval, 10);
  ASSERT_TRUE(poller.Wait("i-1", IsRunning, Ctx()).has_value());
  const std::size_t after = poller.polls();
  // Another waiter's round proves the thread is alive and has had time to poll for nobody.
  cloud.Set("i-2", Running("192.0.2.2"));
  ASSERT_TRUE(poller.Wait("i-2", IsRunning, Ctx()).has_value());
  for (std::size_t i = after; i < cloud.call_count(); ++i)
    EXPECT_EQ(cloud.calls()[i], std::vector<std::string>{"i-2"});
}

TEST(BatchPoller, DestructionCancelsPendingWaiters) {
  FakeCloud cloud;
  auto poller = std::make_unique<BatchPoller>(cloud.Fn(), kInterval, 10);
  BatchPoller* p = poller.get();
  std::vector<std::future<Result<State>>> waiters;
  for (int i = 0; i < 5; ++i) {
    waiters.push_back(
        std::async(std::launch::async, [p, i] { return p->Wait(Id(i), IsRunning, Ctx()); }));
  }
  ASSERT_TRUE(Await([&] { return p->waiting() == 5; }));
  poller.reset();
  for (auto& w : waiters) {
    ASSERT_TRUE(Ready(w));
    auto got = w.get();
    ASSERT_FALSE(got.has_value());
    EXPECT_EQ(got.error().code, Code::kCancelled);
    EXPECT_THAT(got.error().message, HasSubstr("shutting down"));
  }
}

TEST(BatchPoller, DestructionStopsAPollInFlight) {
  std::mutex mu;
  std::condition_variable_any cv;
  bool entered = false;
  auto poller = std::make_unique<BatchPoller>(
      [&](const std::vector<std::string>&,
          const OpContext& ctx) -> Result<std::map<std::string, State>> {
        std::unique_lock lock(mu);
        entered = true;
        cv.notify_all();
        cv.wait(lock, ctx.stop, [] { return false; });  // a slow cloud: returns only when stopped
        return Fail(Code::kCancelled, "stopped");
      },
      kInterval, 10);
  BatchPoller* p = poller.get();
  auto waiter = std::async(std::launch::async, [p] { return p->Wait("i-1", IsRunning, Ctx()); });
  {
    std::unique_lock lock(mu);
    ASSERT_TRUE(cv.wait_for(lock, kBound, [&] { return entered; }));
  }
  auto destroyed = std::async(std::launch::async, [&] { poller.reset(); });
  ASSERT_TRUE(Ready(destroyed));
  ASSERT_TRUE(Ready(waiter));
  EXPECT_EQ(waiter.get().error().code, Code::kCancelled);
}

}  // namespace
}  // namespace pp::providers
