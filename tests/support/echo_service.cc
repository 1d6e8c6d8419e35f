#include "tests/support/echo_service.h"

#include "common/ttrpc/service.h"
#include "ttrpctest.pb.h"

namespace pp::testing {

void RegisterEchoService(ttrpc::Server& server) {
  server.Register("ttrpctest.Test", "Echo",
                  ttrpc::Unary<ttrpctest::EchoRequest, ttrpctest::EchoResponse>(
                      [](ttrpc::CallContext& ctx, ttrpctest::EchoRequest request)
                          -> asio::awaitable<Result<ttrpctest::EchoResponse>> {
                        if (request.sleep_ms() > 0) {
                          // Cancelled by the server when the deadline passes; then the reply
                          // (DEADLINE_EXCEEDED) has already gone out.
                          asio::steady_timer timer(co_await asio::this_coro::executor,
                                                   std::chrono::milliseconds(request.sleep_ms()));
                          auto [ec] = co_await timer.async_wait(kAwaitTuple);
                          if (ec) co_return Fail(Code::kCancelled, "sleep cancelled");
                        }
                        if (request.fail_code() != 0) {
                          co_return std::unexpected(
                              Error{static_cast<Code>(request.fail_code()), request.fail_message()});
                        }
                        ttrpctest::EchoResponse response;
                        response.set_payload(std::move(*request.mutable_payload()));
                        for (const auto& [key, value] : ctx.metadata) {
                          auto* pair = response.add_metadata();
                          pair->set_key(key);
                          pair->set_value(value);
                        }
                        const auto left = ctx.Remaining();
                        response.set_deadline_remaining_ms(
                            left ? std::chrono::duration_cast<std::chrono::milliseconds>(*left).count() : -1);
                        co_return response;
                      }));
}

}  // namespace pp::testing
