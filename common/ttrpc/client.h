// ttrpc client: unary calls over one stream, many in flight at once.
//
// Stream ids are odd and increase by 2 from 1, as containerd/ttrpc and ttrpc-rust do. A Response
// with no status or with status code 0 is success. When the stream ends every pending call fails
// at once with UNAVAILABLE "ttrpc: closed"; a call whose timeout passes fails DEADLINE_EXCEEDED and
// its late reply is dropped. A request over 4 MiB is refused locally with RESOURCE_EXHAUSTED.
//
// Threading: a Client lives on its stream's executor; call it only from coroutines running there.
#pragma once

#include "common/base/asio.h"
#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "common/base/error.h"
#include "common/ttrpc/frame_writer.h"
#include "common/ttrpc/server.h"
#include "common/ttrpc/stream.h"

namespace pp::ttrpc {

struct CallOptions {
  std::optional<std::chrono::nanoseconds> timeout;  // sent as timeout_nano and enforced locally
  Metadata metadata;
};

class Client : public std::enable_shared_from_this<Client> {
 public:
  // Starts the client's read and write loops on the stream's executor.
  static std::shared_ptr<Client> Create(std::unique_ptr<Stream> stream);
  ~Client();

  // Arguments are taken by value: a coroutine starts later, when its caller's temporaries are gone.
  asio::awaitable<Result<std::string>> Call(std::string service, std::string method,
                                            std::string payload, CallOptions options = {});

  // Typed form: serializes `request`, parses the reply into Response.
  template <typename Response, typename Request>
  asio::awaitable<Result<Response>> Call(std::string service, std::string method, Request request,
                                         CallOptions options = {}) {
    auto raw = co_await Call(service, method, request.SerializeAsString(), std::move(options));
    if (!raw) co_return std::unexpected(std::move(raw.error()));
    Response response;
    if (!response.ParseFromString(*raw)) {
      co_return Fail(Code::kInternal, "ttrpc: cannot parse ", service, "/", method, " response");
    }
    co_return response;
  }

  // Fails pending calls with UNAVAILABLE and closes the stream. Idempotent.
  void Close();

  bool IsClosed() const { return closed_; }
  const asio::any_io_executor& get_executor() const { return executor_; }

 private:
  struct Pending;
  explicit Client(std::unique_ptr<Stream> stream);
  asio::awaitable<void> ReadLoop();
  asio::awaitable<void> WriteLoop();
  void OnFrame(std::uint32_t stream_id, std::uint8_t type, std::string_view data);

  std::unique_ptr<Stream> stream_;
  asio::any_io_executor executor_;
  FrameWriter writer_;
  std::unordered_map<std::uint32_t, Pending*> pending_;  // owned by the waiting Call frames
  std::uint32_t next_id_ = 1;
  bool closed_ = false;
};

// Connects to a unix socket; the result's executor is a new strand of `executor`.
asio::awaitable<Result<std::unique_ptr<Stream>>> ConnectUnix(asio::any_io_executor executor,
                                                             std::string path);

}  // namespace pp::ttrpc
