// Typed handlers: adapt `awaitable<Result<Resp>>(CallContext&, Req)` to a raw ttrpc Handler.
#pragma once

#include <utility>

#include "common/ttrpc/server.h"

namespace pp::ttrpc {

// A request payload that does not parse as Req is answered INVALID_ARGUMENT without calling `fn`.
template <typename Req, typename Resp, typename Fn>
Handler Unary(Fn fn) {
  return [fn = std::move(fn)](CallContext& ctx, std::string payload) -> asio::awaitable<Result<std::string>> {
    Req request;
    if (!request.ParseFromString(payload)) {
      co_return Fail(Code::kInvalidArgument, "ttrpc: error unmarshalling payload of ", ctx.service, "/",
                     ctx.method);
    }
    Result<Resp> response = co_await fn(ctx, std::move(request));
    if (!response) co_return std::unexpected(std::move(response.error()));
    co_return response->SerializeAsString();
  };
}

}  // namespace pp::ttrpc
