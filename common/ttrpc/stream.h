// Stream: the byte stream a ttrpc connection runs over, with the transport erased.
//
// The server and client speak ttrpc over anything that reads and writes bytes: a unix socket, TCP,
// or (next) a TLS stream. AsioStream adapts any Asio stream type. A Stream is used from one
// coroutine chain on its executor (a strand when the io_context has several threads); Close() must be
// called on that executor too.
#pragma once

#include "common/base/asio.h"
#include <cstddef>
#include <memory>
#include <string>
#include <string_view>
#include <system_error>
#include <utility>
#include <vector>

namespace pp::ttrpc {

class Stream {
 public:
  virtual ~Stream() = default;

  virtual asio::any_io_executor get_executor() = 0;

  // Reads at least one byte. An error (including EOF) ends the stream.
  virtual asio::awaitable<std::pair<std::error_code, std::size_t>> ReadSome(
      asio::mutable_buffer buffer) = 0;

  // Writes every buffer completely, or fails.
  virtual asio::awaitable<std::error_code> Write(const std::vector<asio::const_buffer>& buffers) = 0;

  // Writes what it can right now without blocking and returns the count (0 when the transport has
  // no such fast path). Only call it when no Write() is in progress.
  virtual std::size_t TryWrite(std::string_view data) {
    (void)data;
    return 0;
  }

  // Cancels pending operations and closes. Idempotent.
  virtual void Close() = 0;

  // For logs: "unix:/run/peerpod/hypervisor.sock", "tcp:10.0.0.1:15150", ...
  virtual std::string Describe() const = 0;
};

template <typename AsioStreamType>
class AsioStream final : public Stream {
 public:
  AsioStream(AsioStreamType stream, std::string description)
      : stream_(std::move(stream)), description_(std::move(description)) {}

  asio::any_io_executor get_executor() override { return stream_.get_executor(); }

  asio::awaitable<std::pair<std::error_code, std::size_t>> ReadSome(
      asio::mutable_buffer buffer) override {
    auto [ec, n] = co_await stream_.async_read_some(buffer, pp::kAwaitTuple);
    co_return std::pair{ec, n};
  }

  asio::awaitable<std::error_code> Write(const std::vector<asio::const_buffer>& buffers) override {
    auto [ec, n] = co_await asio::async_write(stream_, buffers, pp::kAwaitTuple);
    (void)n;
    co_return ec;
  }

  std::size_t TryWrite(std::string_view data) override {
    if constexpr (requires { stream_.non_blocking(true); }) {
      std::error_code ec;
      if (!non_blocking_) {
        stream_.non_blocking(true, ec);
        if (ec) return 0;
        non_blocking_ = true;
      }
      const std::size_t n = stream_.write_some(asio::buffer(data.data(), data.size()), ec);
      return ec ? 0 : n;
    } else {
      (void)data;
      return 0;
    }
  }

  void Close() override {
    std::error_code ignored;
    stream_.close(ignored);
  }

  std::string Describe() const override { return description_; }

  AsioStreamType& Native() { return stream_; }

 private:
  AsioStreamType stream_;
  std::string description_;
  bool non_blocking_ = false;
};

using UnixStream = AsioStream<asio::local::stream_protocol::socket>;
using TcpStream = AsioStream<asio::ip::tcp::socket>;

}  // namespace pp::ttrpc
