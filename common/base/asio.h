// Asio, as the project uses it: standalone Asio 1.22 with C++20 coroutines.
#pragma once

#include <asio.hpp>
#include <asio/experimental/as_tuple.hpp>

namespace pp {

// `co_await op(..., pp::kAwaitTuple)` yields (error_code, results...) instead of throwing.
inline constexpr auto kAwaitTuple = asio::experimental::as_tuple(asio::use_awaitable);

}  // namespace pp
