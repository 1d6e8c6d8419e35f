// ttrpc server: serves registered unary methods on any number of streams.
//
// Wire behaviour follows containerd/ttrpc (see reference/kata-ttrpc.md section 1): many concurrent
// calls per connection answered in any order, oversized frames answered RESOURCE_EXHAUSTED on their
// stream with the connection kept, even stream ids and unparsable requests INVALID_ARGUMENT, unknown
// service or method UNIMPLEMENTED, `timeout_nano` as the handler's deadline (DEADLINE_EXCEEDED is sent
// the moment it passes, whatever the handler is doing; the handler is cancelled).
//
// Threading: the io_context may run on several threads. Each connection lives on its own strand and
// its handlers run there as coroutines: a handler must never block; blocking work goes to a
// BlockingPool. Register() before serving. The Server must outlive its connections: destroy it only
// after Shutdown() completed and the io_context stopped.
#pragma once

#include <sys/types.h>

#include "common/base/asio.h"
#include <atomic>
#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "common/base/accept_throttle.h"
#include "common/base/error.h"
#include "common/ttrpc/stream.h"

namespace pp::ttrpc {

using Metadata = std::vector<std::pair<std::string, std::string>>;

struct CallContext {
  std::string service;
  std::string method;
  Metadata metadata;  // in wire order; keys may repeat
  std::optional<std::chrono::steady_clock::time_point> deadline;
  std::string peer;  // Stream::Describe() of the connection

  // Time left until the deadline (never negative), or nullopt without one.
  std::optional<std::chrono::nanoseconds> Remaining() const;
};

// A unary method: the request payload in, the response payload or an Error out. The Error's code and
// message reach the caller unchanged.
using Handler =
    std::function<asio::awaitable<Result<std::string>>(CallContext& ctx, std::string payload)>;

class Server {
 public:
  struct Options {
    // Requests in flight per connection before the server stops reading from it (backpressure).
    // Checked per frame: frames already read but over the limit wait in the buffer.
    std::size_t max_inflight_per_connection = 256;
    // Connections open at once. Over it, an accepted connection is closed at once, with a log line
    // (the first, then at most one a minute with the count).
    std::size_t max_connections = 128;
    // A frame whose header or data started arriving must be complete within this, or the connection
    // is closed. Idle time between frames is not limited: the Go shim and runtime-rs keep their
    // connections open.
    std::chrono::milliseconds frame_read_timeout{30000};
    // The io_context runs on one thread: connections need no strand of their own.
    bool single_threaded = false;
    // When accept fails for lack of descriptors or memory: pause (10 ms doubling to 1 s) and keep
    // accepting; log the first failure, then at most one line a minute.
    AcceptThrottle::Options accept_throttle{};
  };

  explicit Server(asio::any_io_executor executor, Options options);
  explicit Server(asio::any_io_executor executor) : Server(std::move(executor), Options{}) {}
  ~Server();
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  void Register(std::string service, std::string method, Handler handler);

  // Listens on a unix socket: creates missing parent directories (0755), replaces a stale socket
  // file (one nobody answers on), refuses when another process is serving the path or when the path
  // is not a socket, and sets `mode` on the socket. The file is removed by Shutdown().
  Result<void> ListenUnix(const std::string& path, mode_t mode = 0660);

  // Listens on TCP; port 0 picks a free port. Returns the bound endpoint.
  Result<asio::ip::tcp::endpoint> ListenTcp(const asio::ip::tcp::endpoint& endpoint);

  // Serves one connected stream until it closes. Use it for transports the server does not accept
  // itself (TLS after its handshake, socketpairs in tests).
  void Serve(std::unique_ptr<Stream> stream);

  // Graceful shutdown: stops accepting, closes idle connections, lets calls in flight finish and
  // their replies flush for up to `grace`, then closes whatever is left (cancelling its handlers).
  // New requests on a draining connection get UNAVAILABLE. Completes when every connection closed.
  asio::awaitable<void> Shutdown(std::chrono::milliseconds grace);

  std::size_t InflightCalls() const { return inflight_.load(); }

 private:
  class Connection;
  friend class Connection;
  using MethodMap = std::map<std::string, Handler, std::less<>>;

  asio::awaitable<void> AcceptUnix(std::shared_ptr<asio::local::stream_protocol::acceptor> acceptor,
                                   std::shared_ptr<asio::steady_timer> pause);
  asio::awaitable<void> AcceptTcp(std::shared_ptr<asio::ip::tcp::acceptor> acceptor,
                                  std::shared_ptr<asio::steady_timer> pause);
  // Whether a just-accepted connection may be served (fewer than max_connections open); logs a
  // refusal within bounds. The caller closes a refused socket.
  bool Admit(const std::string& where);
  // After a failed accept: logs within bounds and pauses when resources ran out; false to stop.
  asio::awaitable<bool> PauseAfterAcceptError(AcceptThrottle& throttle, std::error_code ec,
                                              asio::steady_timer& pause);
  asio::awaitable<void> DoShutdown(std::chrono::milliseconds grace);
  void ConnectionClosed();
  asio::any_io_executor ConnectionExecutor() const;

  asio::any_io_executor executor_;
  asio::strand<asio::any_io_executor> strand_;  // acceptors and shutdown state
  Options options_;
  std::map<std::string, MethodMap, std::less<>> services_;

  std::vector<std::shared_ptr<asio::local::stream_protocol::acceptor>> unix_acceptors_;
  std::vector<std::shared_ptr<asio::ip::tcp::acceptor>> tcp_acceptors_;
  std::vector<std::shared_ptr<asio::steady_timer>> accept_pauses_;  // cancelled by Shutdown
  RateLimiter refused_log_{std::chrono::minutes(1)};                // guarded by strand_
  std::vector<std::pair<std::string, ino_t>> socket_files_;  // removed at shutdown if still ours
  bool shutting_down_ = false;                               // guarded by strand_
  asio::steady_timer closed_signal_;                         // on strand_; cancelled per close

  std::mutex connections_mu_;
  std::vector<std::weak_ptr<Connection>> connections_;  // guarded by connections_mu_
  std::atomic<std::size_t> open_connections_{0};
  std::atomic<std::size_t> inflight_{0};
};

}  // namespace pp::ttrpc
