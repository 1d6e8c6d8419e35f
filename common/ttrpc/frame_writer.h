// FrameWriter: the sending half of a ttrpc connection, shared by the server, the client and the relay.
//
// Frames are queued whole and sent in batches (one gathered write for everything queued meanwhile).
// When nothing is queued or being written, a frame goes out at once through Stream::TryWrite and the
// write loop is not woken. Not thread-safe: use it on the stream's executor only.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "common/base/asio.h"
#include "common/ttrpc/stream.h"

namespace pp::ttrpc {

class FrameWriter {
 public:
  // `on_written` runs after each batch left (backpressure waiters use it to resume).
  FrameWriter(Stream& stream, std::function<void()> on_written = {});

  void Send(std::string frame);
  std::size_t QueuedBytes() const { return queued_bytes_; }

  // The write loop. Returns after Finish() once everything queued is sent (no error), or at the
  // first write error, or after Abort() (operation_aborted). It never closes the stream.
  asio::awaitable<std::error_code> Run();

  void Finish();  // flush what is queued, then end Run()
  void Abort();   // drop what is queued, end Run() now

 private:
  Stream& stream_;
  std::function<void()> on_written_;
  asio::steady_timer signal_;  // wakes Run(): a frame was queued, or Finish()/Abort()
  std::vector<std::string> pending_;
  std::size_t queued_bytes_ = 0;
  bool writing_ = false;
  bool finishing_ = false;
  bool aborted_ = false;
};

}  // namespace pp::ttrpc
