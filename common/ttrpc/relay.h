// Relay: carries ttrpc calls from one downstream connection (the caller) to one upstream connection
// (toward the kata-agent), frame by frame.
//
// Frames pass through unchanged (stream ids included) without decoding their payload, except the
// Requests whose service/method `intercept` selects: those are decoded, given to `rewrite`, and
// re-encoded. A rewrite error is answered to the caller on that stream and the call goes no further.
//
// The upstream is dialed when the first call needs it, and again after it breaks: when it breaks,
// every call in flight fails at once with UNAVAILABLE (none hangs) and the next call re-dials, waiting
// for at most `dial_wait`. Each direction has a bounded queue: a reader stops reading while the
// other side's queue is over `max_queued_bytes`. Everything runs on the downstream's executor; the
// dialer must return streams on that executor too. The relay ends when the downstream closes.
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_set>

#include "common/base/asio.h"
#include "common/base/error.h"
#include "common/ttrpc/frame_writer.h"
#include "common/ttrpc/stream.h"

namespace pp::ttrpc {

class Relay : public std::enable_shared_from_this<Relay> {
 public:
  using Dialer = std::function<asio::awaitable<Result<std::unique_ptr<Stream>>>()>;
  struct Options {
    std::function<bool(std::string_view service, std::string_view method)> intercept;
    std::function<Result<void>(std::string_view service, std::string_view method, std::string& payload)>
        rewrite;
    std::size_t max_queued_bytes = 8u << 20;
    std::chrono::milliseconds dial_wait{30000};
    // Called on the relay's executor with the bytes of each frame forwarded: (to the upstream, to
    // the downstream), header included. For metrics; optional.
    std::function<void(std::size_t to_upstream, std::size_t to_downstream)> on_bytes;
    // Called once when the relay is gone (its last reference dropped, on whichever thread).
    std::function<void()> on_gone;
  };

  // Starts relaying. `upstream` may be an already connected stream (or null: dial on demand).
  static std::shared_ptr<Relay> Start(std::unique_ptr<Stream> downstream, Dialer dial, Options options,
                                      std::unique_ptr<Stream> upstream = nullptr);

  // Closes both sides (thread-safe). In-flight calls are not answered.
  void Close();

  Relay(std::unique_ptr<Stream> downstream, Dialer dial, Options options);  // use Start()
  ~Relay();

 private:
  struct Upstream;
  asio::awaitable<void> DownstreamLoop();
  asio::awaitable<void> DownstreamWriter();
  asio::awaitable<void> UpstreamLoop(std::shared_ptr<Upstream> upstream);
  asio::awaitable<void> UpstreamWriter(std::shared_ptr<Upstream> upstream);
  asio::awaitable<std::shared_ptr<Upstream>> EnsureUpstream(std::uint32_t stream_id);
  void Attach(std::unique_ptr<Stream> stream);
  void LoseUpstream(const std::shared_ptr<Upstream>& upstream, std::string_view why);
  void Answer(std::uint32_t stream_id, Code code, std::string_view message);
  void CloseNow();

  std::unique_ptr<Stream> downstream_;
  asio::any_io_executor executor_;
  Dialer dial_;
  Options options_;
  FrameWriter down_writer_;
  asio::steady_timer down_space_;  // cancelled when the downstream queue drained a batch
  std::shared_ptr<Upstream> upstream_;
  std::unordered_set<std::uint32_t> inflight_;  // calls sent upstream and not yet answered
  std::string last_dial_error_;
  bool closed_ = false;
};

}  // namespace pp::ttrpc
