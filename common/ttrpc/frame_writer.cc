#include "common/ttrpc/frame_writer.h"

namespace pp::ttrpc {

FrameWriter::FrameWriter(Stream& stream, std::function<void()> on_written)
    : stream_(stream),
      on_written_(std::move(on_written)),
      signal_(stream.get_executor(), std::chrono::steady_clock::time_point::max()) {}

void FrameWriter::Send(std::string frame) {
  if (aborted_ || finishing_) return;
  if (!writing_ && pending_.empty()) {
    const std::size_t n = stream_.TryWrite(frame);
    if (n == frame.size()) return;
    frame.erase(0, n);
  }
  queued_bytes_ += frame.size();
  pending_.push_back(std::move(frame));
  signal_.cancel();
}

void FrameWriter::Finish() {
  finishing_ = true;
  signal_.cancel();
}

void FrameWriter::Abort() {
  aborted_ = true;
  pending_.clear();
  queued_bytes_ = 0;
  signal_.cancel();
}

asio::awaitable<std::error_code> FrameWriter::Run() {
  std::vector<std::string> batch;
  std::vector<asio::const_buffer> buffers;
  while (!aborted_) {
    if (pending_.empty()) {
      if (finishing_) co_return std::error_code{};
      co_await signal_.async_wait(kAwaitTuple);
      continue;
    }
    batch.swap(pending_);
    buffers.clear();
    for (const auto& frame : batch) buffers.emplace_back(asio::buffer(frame));
    writing_ = true;
    const std::error_code ec = co_await stream_.Write(buffers);
    writing_ = false;
    for (const auto& frame : batch) queued_bytes_ -= std::min(queued_bytes_, frame.size());
    batch.clear();
    if (on_written_) on_written_();
    if (ec) co_return ec;
  }
  co_return asio::error::operation_aborted;
}

}  // namespace pp::ttrpc
