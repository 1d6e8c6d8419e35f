// Asio, as the project uses it: standalone Asio 1.22 with C++20 coroutines.
#pragma once

#include <asio.hpp>
#include <asio/experimental/as_tuple.hpp>
#include <chrono>
#include <exception>
#include <memory>
#include <optional>

#include "common/base/error.h"

namespace pp {

// `co_await op(..., pp::kAwaitTuple)` yields (error_code, results...) instead of throwing.
inline constexpr auto kAwaitTuple = asio::experimental::as_tuple(asio::use_awaitable);

// Runs `work` to completion on the caller's executor whatever happens to the caller. A coroutine
// whose call was cancelled (its deadline passed) throws operation_aborted at its next co_await,
// which would cut a cleanup in half; `work` runs as a coroutine of its own with no cancellation
// slot, so it always finishes. The caller gets its result, or CANCELLED when it stopped waiting
// first. Pass `work` as a named local (GCC 12 can destroy a temporary co_await operand twice).
template <typename T>
asio::awaitable<Result<T>> RunToCompletion(asio::awaitable<Result<T>> work) {
  struct State {
    explicit State(const asio::any_io_executor& ex) : done(ex, std::chrono::steady_clock::time_point::max()) {}
    asio::steady_timer done;  // cancelled once `result` is set
    std::optional<Result<T>> result;
  };
  auto executor = co_await asio::this_coro::executor;
  auto state = std::make_shared<State>(executor);
  auto finish = [state, executor](std::exception_ptr failed, Result<T> result) {
    if (failed) result = std::unexpected(Error{Code::kInternal, "operation ended by an exception"});
    asio::post(executor, [state, r = std::move(result)]() mutable {
      state->result = std::move(r);
      state->done.cancel();
    });
  };
  asio::co_spawn(executor, std::move(work), std::move(finish));
  (void)co_await state->done.async_wait(kAwaitTuple);
  if (state->result) co_return std::move(*state->result);
  co_return std::unexpected(Error{Code::kCancelled, "the caller stopped waiting; the operation goes on"});
}

}  // namespace pp
