#include "common/ttrpc/client.h"

#include <spdlog/spdlog.h>

#include "common/ttrpc/codec.h"
#include "common/ttrpc/frame.h"

namespace pp::ttrpc {

struct Client::Pending {
  explicit Pending(const asio::any_io_executor& ex)
      : signal(ex, std::chrono::steady_clock::time_point::max()) {}
  asio::steady_timer signal;  // cancelled when `result` is set
  std::optional<Result<std::string>> result;
};

std::shared_ptr<Client> Client::Create(std::unique_ptr<Stream> stream) {
  std::shared_ptr<Client> client(new Client(std::move(stream)));
  asio::co_spawn(client->executor_, client->ReadLoop(), [client](std::exception_ptr) {});
  asio::co_spawn(client->executor_, client->WriteLoop(), [client](std::exception_ptr) {});
  return client;
}

Client::Client(std::unique_ptr<Stream> stream)
    : stream_(std::move(stream)), executor_(stream_->get_executor()), writer_(*stream_) {}

Client::~Client() = default;

asio::awaitable<Result<std::string>> Client::Call(std::string service, std::string method,
                                                  std::string payload, CallOptions options) {
  if (closed_) co_return Fail(Code::kUnavailable, "ttrpc: closed");
  ::ttrpc::Request request;
  request.set_service(service);
  request.set_method(method);
  request.set_payload(std::move(payload));
  std::optional<std::chrono::steady_clock::time_point> deadline;
  if (options.timeout) {
    const auto timeout = std::max(*options.timeout, std::chrono::nanoseconds(1));
    request.set_timeout_nano(timeout.count());
    deadline = std::chrono::steady_clock::now() + timeout;
  }
  for (auto& [key, value] : options.metadata) {
    auto* kv = request.add_metadata();
    kv->set_key(std::move(key));
    kv->set_value(std::move(value));
  }
  if (request.ByteSizeLong() > kMaxDataLength) {
    co_return Fail(Code::kResourceExhausted, "ttrpc: request of ", std::to_string(request.ByteSizeLong()),
                   " bytes exceeds the maximum message size of ", std::to_string(kMaxDataLength));
  }
  const std::uint32_t id = next_id_;
  next_id_ += 2;
  Pending pending(executor_);
  if (deadline) pending.signal.expires_at(*deadline);
  pending_.emplace(id, &pending);
  writer_.Send(EncodeRequestFrame(id, request));

  // The timer ends by reaching the deadline, by a reply (cancel), or by the caller's cancellation.
  (void)co_await pending.signal.async_wait(pp::kAwaitTuple);
  pending_.erase(id);
  if (pending.result) co_return std::move(*pending.result);
  if (deadline && std::chrono::steady_clock::now() >= *deadline) {
    co_return Fail(Code::kDeadlineExceeded, "ttrpc: ", service, "/", method, ": deadline exceeded");
  }
  co_return Fail(Code::kCancelled, "ttrpc: ", service, "/", method, ": cancelled");
}

void Client::OnFrame(std::uint32_t stream_id, std::uint8_t type, std::string_view data) {
  if (type != static_cast<std::uint8_t>(MessageType::kResponse)) return;
  const auto it = pending_.find(stream_id);
  if (it == pending_.end()) {
    spdlog::debug("ttrpc: {}: reply for unknown stream {}", stream_->Describe(), stream_id);
    return;
  }
  Pending& call = *it->second;
  ::ttrpc::Response response;
  if (!ParseResponse(data, response)) {
    call.result = Fail(Code::kInternal, "ttrpc: unparsable response on stream ", std::to_string(stream_id));
  } else if (response.has_status() && response.status().code() != 0) {
    call.result = std::unexpected(
        Error{static_cast<Code>(response.status().code()), std::move(*response.mutable_status()->mutable_message())});
  } else {
    call.result = std::move(*response.mutable_payload());
  }
  pending_.erase(it);
  call.signal.cancel();
}

asio::awaitable<void> Client::ReadLoop() {
  FrameReader reader;
  while (!closed_) {
    while (auto frame = reader.Next()) {
      if (frame->oversized) {
        // Fail just that call; the stream itself is still in sync.
        if (auto it = pending_.find(frame->header.stream_id); it != pending_.end()) {
          it->second->result = Fail(Code::kResourceExhausted, "ttrpc: reply exceeds maximum message size");
          it->second->signal.cancel();
          pending_.erase(it);
        }
        continue;
      }
      OnFrame(frame->header.stream_id, frame->header.type, frame->data);
    }
    auto region = reader.Prepare();
    auto [ec, n] = co_await stream_->ReadSome(asio::buffer(region.data(), region.size()));
    if (ec) break;
    reader.Commit(n);
  }
  Close();
}

asio::awaitable<void> Client::WriteLoop() {
  (void)co_await writer_.Run();
  Close();
}

void Client::Close() {
  if (closed_) return;
  closed_ = true;
  for (auto& [id, call] : pending_) {
    call->result = Fail(Code::kUnavailable, "ttrpc: closed");
    call->signal.cancel();
  }
  pending_.clear();
  writer_.Abort();
  stream_->Close();
}

asio::awaitable<Result<std::unique_ptr<Stream>>> ConnectUnix(asio::any_io_executor executor,
                                                             std::string path) {
  asio::local::stream_protocol::socket socket(asio::make_strand(executor));
  auto [ec] = co_await socket.async_connect(asio::local::stream_protocol::endpoint(path),
                                            pp::kAwaitTuple);
  if (ec) co_return Fail(Code::kUnavailable, "connect to ", path, ": ", ec.message());
  co_return std::make_unique<UnixStream>(std::move(socket), "unix:" + path);
}

}  // namespace pp::ttrpc
