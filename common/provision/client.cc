#include "common/provision/client.h"

#include <asio/experimental/awaitable_operators.hpp>
#include <optional>
#include <utility>

#include "common/base/asio.h"
#include "common/provision/server.h"
#include "common/tls/stream.h"
#include "common/ttrpc/client.h"

namespace pp::provision {
namespace {

namespace v1 = peerpods::provision::v1;
using Clock = std::chrono::steady_clock;

Error DeadlineExceeded(const std::string& what) {
  return Error{Code::kDeadlineExceeded, "provisioning: " + what + ": deadline exceeded"};
}

// One call on a fresh connection. Every step is bounded by what is left of `deadline`.
asio::awaitable<Result<std::string>> CallOnce(Target target, std::string method,
                                              std::string payload, Clock::time_point deadline) {
  using namespace asio::experimental::awaitable_operators;
  auto executor = co_await asio::this_coro::executor;
  std::error_code ec;
  const auto address = asio::ip::make_address(target.address, ec);
  if (ec) {
    co_return Fail(Code::kInvalidArgument, "provisioning: pool VM address \"", target.address,
                   "\" is not an IP address");
  }
  const std::string where = target.address + ":" + std::to_string(target.port);
  asio::ip::tcp::socket socket(executor);
  asio::steady_timer timer(executor, deadline);
  auto connected = co_await (socket.async_connect({address, target.port}, kAwaitTuple) ||
                             timer.async_wait(kAwaitTuple));
  if (connected.index() == 1) co_return std::unexpected(DeadlineExceeded("connect to " + where));
  if (auto [err] = std::get<0>(connected); err) {
    co_return Fail(Code::kUnavailable, "provisioning: connect to ", where, ": ", err.message());
  }
  socket.set_option(asio::ip::tcp::no_delay(true), ec);
  std::unique_ptr<ttrpc::Stream> stream;
  if (target.tls) {
    // Rounded up, so that a handshake cut short by it ends at or after the deadline.
    const auto left = std::chrono::ceil<std::chrono::milliseconds>(deadline - Clock::now());
    if (left.count() <= 0)
      co_return std::unexpected(DeadlineExceeded("TLS handshake with " + where));
    auto handshaken =
        co_await tls::TlsConnect(std::move(socket), target.tls, target.server_name, left);
    if (!handshaken) {
      if (Clock::now() >= deadline) {
        co_return std::unexpected(DeadlineExceeded("TLS handshake with " + where));
      }
      // Refused certificates (UNAUTHENTICATED) included: the VM cannot be provisioned over this.
      co_return Fail(Code::kUnavailable, "provisioning: ", handshaken.error().message);
    }
    stream = std::move(*handshaken);
  } else {
    stream = std::make_unique<ttrpc::TcpStream>(std::move(socket), "tcp:" + where);
  }
  const auto left = deadline - Clock::now();
  if (left.count() <= 0) co_return std::unexpected(DeadlineExceeded(method + " on " + where));
  auto client = ttrpc::Client::Create(std::move(stream));
  ttrpc::CallOptions options;
  options.timeout = std::chrono::duration_cast<std::chrono::nanoseconds>(left);
  auto reply = co_await client->Call(kServiceName, method, std::move(payload), std::move(options));
  client->Close();
  if (!reply && reply.error().code == Code::kDeadlineExceeded) {
    co_return std::unexpected(DeadlineExceeded(method + " on " + where));
  }
  if (!reply && reply.error().code == Code::kUnavailable) {
    // Under TLS 1.3 a server that refused our certificate closes the connection after the
    // handshake: that is where it shows.
    co_return Fail(Code::kUnavailable, "provisioning: ", method, " on ", where, ": ",
                   reply.error().message, " (the connection closed: refused or restarting?)");
  }
  co_return reply;
}

// Runs one call on a private io_context on this thread.
Result<std::string> Call(const Target& target, const std::string& method, std::string payload,
                         Clock::time_point deadline) {
  asio::io_context io(1);
  std::optional<Result<std::string>> result;
  asio::co_spawn(io, CallOnce(target, method, std::move(payload), deadline),
                 [&](std::exception_ptr error, Result<std::string> reply) {
                   if (error) {
                     result =
                         Fail(Code::kInternal, "provisioning: ", method, " failed unexpectedly");
                   } else {
                     result = std::move(reply);
                   }
                   // Whatever is left (a TLS close_notify) is not worth waiting for.
                   io.stop();
                 });
  io.run();
  if (!result) return Fail(Code::kInternal, "provisioning: ", method, " did not complete");
  return std::move(*result);
}

}  // namespace

Result<v1::CheckResponse> Check(const Target& target, Clock::time_point deadline) {
  auto raw = Call(target, "Check", v1::CheckRequest{}.SerializeAsString(), deadline);
  if (!raw) return std::unexpected(std::move(raw.error()));
  v1::CheckResponse response;
  if (!response.ParseFromString(*raw)) {
    return Fail(Code::kInternal, "provisioning: cannot parse the Check response of ",
                target.address);
  }
  return response;
}

Result<void> Claim(const Target& target, const v1::ClaimRequest& request,
                   Clock::time_point deadline) {
  auto raw = Call(target, "Claim", request.SerializeAsString(), deadline);
  if (!raw) return std::unexpected(std::move(raw.error()));
  return {};
}

}  // namespace pp::provision
