#include "common/ttrpc/relay.h"

#include <spdlog/spdlog.h>

#include "common/ttrpc/codec.h"
#include "common/ttrpc/frame.h"

namespace pp::ttrpc {

struct Relay::Upstream {
  explicit Upstream(std::unique_ptr<Stream> s)
      : stream(std::move(s)),
        space(stream->get_executor(), std::chrono::steady_clock::time_point::max()),
        writer(*stream, [this] { space.cancel(); }) {}
  std::unique_ptr<Stream> stream;
  asio::steady_timer space;  // cancelled when the upstream queue drained a batch
  FrameWriter writer;
  bool lost = false;
};

std::shared_ptr<Relay> Relay::Start(std::unique_ptr<Stream> downstream, Dialer dial, Options options,
                                    std::unique_ptr<Stream> upstream) {
  auto relay = std::make_shared<Relay>(std::move(downstream), std::move(dial), std::move(options));
  asio::dispatch(relay->executor_, [relay, upstream = std::move(upstream)]() mutable {
    if (upstream) relay->Attach(std::move(upstream));
    asio::co_spawn(relay->executor_, relay->DownstreamLoop(), [relay](std::exception_ptr) {});
    asio::co_spawn(relay->executor_, relay->DownstreamWriter(), [relay](std::exception_ptr) {});
  });
  return relay;
}

Relay::Relay(std::unique_ptr<Stream> downstream, Dialer dial, Options options)
    : downstream_(std::move(downstream)),
      executor_(downstream_->get_executor()),
      dial_(std::move(dial)),
      options_(std::move(options)),
      down_writer_(*downstream_, [this] { down_space_.cancel(); }),
      down_space_(executor_, std::chrono::steady_clock::time_point::max()) {}

void Relay::Close() {
  asio::dispatch(executor_, [self = shared_from_this()] { self->CloseNow(); });
}

Relay::~Relay() {
  if (options_.on_gone) options_.on_gone();
}

void Relay::CloseNow() {
  if (closed_) return;
  closed_ = true;
  down_writer_.Abort();
  downstream_->Close();
  down_space_.cancel();
  if (upstream_) {
    upstream_->lost = true;
    upstream_->writer.Abort();
    upstream_->stream->Close();
    upstream_->space.cancel();
    upstream_.reset();
  }
}

void Relay::Answer(std::uint32_t stream_id, Code code, std::string_view message) {
  down_writer_.Send(EncodeResponseFrame(stream_id, static_cast<std::int32_t>(code), message, {}));
}

void Relay::Attach(std::unique_ptr<Stream> stream) {
  auto upstream = std::make_shared<Upstream>(std::move(stream));
  upstream_ = upstream;
  auto self = shared_from_this();
  asio::co_spawn(executor_, UpstreamLoop(upstream), [self](std::exception_ptr) {});
  asio::co_spawn(executor_, UpstreamWriter(upstream), [self](std::exception_ptr) {});
}

void Relay::LoseUpstream(const std::shared_ptr<Upstream>& upstream, std::string_view why) {
  if (upstream->lost) return;
  upstream->lost = true;
  upstream->writer.Abort();
  upstream->stream->Close();
  upstream->space.cancel();
  if (upstream_ == upstream) upstream_.reset();
  if (closed_) return;
  if (!inflight_.empty()) {
    spdlog::warn("relay {}: upstream {} lost ({}); failing {} call(s) in flight", downstream_->Describe(),
                 upstream->stream->Describe(), why, inflight_.size());
  }
  for (const std::uint32_t id : inflight_) Answer(id, Code::kUnavailable, "agent connection lost: " + std::string(why));
  inflight_.clear();
}

asio::awaitable<std::shared_ptr<Relay::Upstream>> Relay::EnsureUpstream(std::uint32_t stream_id) {
  if (upstream_) co_return upstream_;
  const auto give_up = std::chrono::steady_clock::now() + options_.dial_wait;
  auto backoff = std::chrono::milliseconds(50);
  for (;;) {
    if (closed_) co_return nullptr;
    auto stream = co_await dial_();
    if (closed_) co_return nullptr;
    if (stream) {
      Attach(std::move(*stream));
      co_return upstream_;
    }
    last_dial_error_ = stream.error().message;
    if (std::chrono::steady_clock::now() + backoff >= give_up) break;
    asio::steady_timer wait(executor_, backoff);
    co_await wait.async_wait(kAwaitTuple);
    // Capped low: a pod VM's forwarder comes up moments after its agent, and a refused connect costs
    // the VM one RST; each second of cap would be up to a second added to a pod's start.
    backoff = std::min(backoff * 2, std::chrono::milliseconds(250));
  }
  Answer(stream_id, Code::kUnavailable, "agent unreachable: " + last_dial_error_);
  co_return nullptr;
}

asio::awaitable<void> Relay::DownstreamLoop() {
  FrameReader reader;
  std::string service;
  std::string method;
  while (!closed_) {
    while (auto frame = reader.Next()) {
      const FrameHeader& h = frame->header;
      if (frame->oversized) {
        Answer(h.stream_id, Code::kResourceExhausted,
               "message length " + std::to_string(h.length) + " exceed maximum message size of " +
                   std::to_string(kMaxDataLength));
        continue;
      }
      std::string out;
      const bool request = h.type == static_cast<std::uint8_t>(MessageType::kRequest);
      if (request && options_.intercept && PeekRequestMethod(frame->data, service, method) &&
          options_.intercept(service, method)) {
        ::ttrpc::Request decoded;
        if (!ParseRequest(frame->data, decoded)) {
          Answer(h.stream_id, Code::kInvalidArgument, "unmarshal request error: not a ttrpc Request");
          continue;
        }
        if (auto rewritten = options_.rewrite(service, method, *decoded.mutable_payload()); !rewritten) {
          Answer(h.stream_id, rewritten.error().code, rewritten.error().message);
          continue;
        }
        out = EncodeRequestFrame(h.stream_id, decoded);
      } else {
        out.reserve(kHeaderLength + frame->data.size());
        AppendFrame(out, h.stream_id, static_cast<MessageType>(h.type), h.flags, frame->data);
      }
      // `frame` points into the reader's buffer: from here on only `out` is used.
      auto upstream = co_await EnsureUpstream(h.stream_id);
      if (!upstream) continue;
      while (!upstream->lost && upstream->writer.QueuedBytes() > options_.max_queued_bytes) {
        co_await upstream->space.async_wait(kAwaitTuple);
      }
      if (upstream->lost) {
        if (request) Answer(h.stream_id, Code::kUnavailable, "agent connection lost");
        continue;
      }
      if (request) inflight_.insert(h.stream_id);
      if (options_.on_bytes) options_.on_bytes(out.size(), 0);
      upstream->writer.Send(std::move(out));
    }
    if (closed_) break;
    auto region = reader.Prepare();
    auto [ec, n] = co_await downstream_->ReadSome(asio::buffer(region.data(), region.size()));
    if (ec) break;
    reader.Commit(n);
  }
  // The caller left: nobody is waiting for answers any more.
  down_writer_.Finish();
  if (upstream_) LoseUpstream(upstream_, "caller closed");
}

asio::awaitable<void> Relay::DownstreamWriter() {
  const std::error_code ec = co_await down_writer_.Run();
  if (ec) spdlog::debug("relay {}: write: {}", downstream_->Describe(), ec.message());
  CloseNow();
}

asio::awaitable<void> Relay::UpstreamLoop(std::shared_ptr<Upstream> upstream) {
  FrameReader reader;
  std::string why = "closed by peer";
  while (!upstream->lost) {
    while (auto frame = reader.Next()) {
      const FrameHeader& h = frame->header;
      inflight_.erase(h.stream_id);
      if (frame->oversized) {
        Answer(h.stream_id, Code::kResourceExhausted, "agent reply exceeds the maximum message size");
        continue;
      }
      std::string out;
      out.reserve(kHeaderLength + frame->data.size());
      AppendFrame(out, h.stream_id, static_cast<MessageType>(h.type), h.flags, frame->data);
      if (options_.on_bytes) options_.on_bytes(0, out.size());
      down_writer_.Send(std::move(out));
    }
    while (!closed_ && !upstream->lost && down_writer_.QueuedBytes() > options_.max_queued_bytes) {
      co_await down_space_.async_wait(kAwaitTuple);
    }
    if (closed_ || upstream->lost) break;
    auto region = reader.Prepare();
    auto [ec, n] = co_await upstream->stream->ReadSome(asio::buffer(region.data(), region.size()));
    if (ec) {
      if (ec != asio::error::eof) why = ec.message();
      break;
    }
    reader.Commit(n);
  }
  LoseUpstream(upstream, why);
}

asio::awaitable<void> Relay::UpstreamWriter(std::shared_ptr<Upstream> upstream) {
  const std::error_code ec = co_await upstream->writer.Run();
  if (ec && ec != asio::error::operation_aborted) LoseUpstream(upstream, ec.message());
}

}  // namespace pp::ttrpc
