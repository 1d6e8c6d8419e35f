#include "common/base/blocking_pool.h"

#include <gtest/gtest.h>

#include <latch>

#include "tests/support/test_util.h"

namespace pp {
namespace {

TEST(BlockingPoolTest, RunsOffTheCallingThreadAndResumesOnIt) {
  pp::testing::IoThread io;
  BlockingPool pool(2, 8);
  auto [io_thread, job_thread, resumed_thread, value] = io.Run([&]() -> asio::awaitable<std::tuple<std::thread::id, std::thread::id, std::thread::id, int>> {
    const auto self = std::this_thread::get_id();
    std::thread::id job;
    auto r = co_await pool.Run<int>([&]() -> Result<int> {
      job = std::this_thread::get_id();
      return 42;
    });
    co_return std::tuple{self, job, std::this_thread::get_id(), r.value_or(-1)};
  }());
  EXPECT_EQ(value, 42);
  EXPECT_NE(job_thread, io_thread);
  EXPECT_EQ(resumed_thread, io_thread);
}

TEST(BlockingPoolTest, RefusesWhenTheQueueIsFull) {
  pp::testing::IoThread io;
  BlockingPool pool(1, 1);
  std::latch release(1);
  std::latch started(1);
  auto blocker = asio::co_spawn(io.io(), pool.Run<int>([&]() -> Result<int> {
    started.count_down();
    release.wait();
    return 1;
  }), asio::use_future);
  started.wait();
  auto queued = asio::co_spawn(io.io(), pool.Run<int>([]() -> Result<int> { return 2; }), asio::use_future);
  while (pool.Queued() == 0) std::this_thread::yield();
  auto refused = io.Run(pool.Run<int>([]() -> Result<int> { return 3; }));
  ASSERT_FALSE(refused);
  EXPECT_EQ(refused.error().code, Code::kResourceExhausted);
  release.count_down();
  EXPECT_EQ(*blocker.get(), 1);
  EXPECT_EQ(*queued.get(), 2);
}

}  // namespace
}  // namespace pp
