// ProbeServer: the daemon's HTTP listener (-probe-port, CAA's PROBE_PORT, default 8000) for the
// kubelet's probes and Prometheus:
//   GET /startup  200 "ok" once SetStarted() was called (latched), 503 "starting" before
//                 (CAA: pkg/adaptor/proxy startup probe; the kubelet's startupProbe)
//   GET /readyz   200 "ok" while SetReady(true), 503 with the one-line reason of SetReady(false)
//   GET /livez    200 "ok" whenever it is answered at all: it is served on the daemon's event loop,
//                 so a loop that no longer runs fails the kubelet's livenessProbe by its timeout
//   GET /metrics  200, Content-Type "text/plain; version=0.0.4", the metrics source's text
// Anything else: 404 for another path, 405 (Allow: GET) for another method on a known path, 400 for
// a malformed request, 431 for a request head over `max_head_bytes`. The query is ignored.
// Every response closes the connection (Connection: close); a client that has not sent a whole
// request head within `read_timeout` is dropped; at most `max_connections` are served at once and
// further ones are closed at accept. Request bodies are never read.
//
// Threading: the listener and its connections run on a strand of the executor given to Start().
// SetStarted(), SetReady() and Shutdown() are thread-safe. The metrics source runs on that strand.
#pragma once

#include <atomic>
#include <chrono>
#include <cstddef>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "common/base/asio.h"
#include "common/base/error.h"

namespace pp::adaptor {

// The answer to one request: pure, for tests.
struct ProbeResponse {
  int status = 200;
  std::string content_type = "text/plain; charset=utf-8";
  std::string body;
  bool allow_get = false;  // add "Allow: GET" (405)
};
// "HTTP/1.1 <status> <reason>" and headers, Content-Length and Connection: close included.
std::string SerializeResponse(const ProbeResponse& response);

class ProbeServer : public std::enable_shared_from_this<ProbeServer> {
 public:
  using MetricsSource = std::function<std::string()>;

  struct Options {
    // "" listens on every address: [::] accepting IPv4 too, or 0.0.0.0 where IPv6 is off.
    std::string address;
    unsigned short port = 8000;                    // 0 picks a free port (tests)
    std::chrono::milliseconds read_timeout{5000};  // for the whole request head
    std::chrono::milliseconds write_timeout{5000};
    std::size_t max_head_bytes = 8192;
    std::size_t max_connections = 32;
  };

  // Binds and starts accepting; the accept loop keeps the server alive until Shutdown(). Fails
  // UNAVAILABLE naming the port when it cannot listen. `metrics` may be empty (then /metrics
  // answers an empty exposition).
  static Result<std::shared_ptr<ProbeServer>> Start(asio::any_io_executor executor, Options options,
                                                    MetricsSource metrics);
  ~ProbeServer();

  // /startup answers 200 from now on, for good.
  void SetStarted();
  // /readyz answers 200 while `ready`, else 503 with `reason` (line breaks become spaces).
  void SetReady(bool ready, std::string reason);
  // Stops listening and closes every connection. Idempotent.
  void Shutdown();

  unsigned short port() const { return port_; }
  // Connections being served now.
  std::size_t open_connections() const { return open_.load(); }

  // The answer to `method` `path` in the current state (what a connection sends).
  ProbeResponse Respond(std::string_view method, std::string_view path) const;

 private:
  ProbeServer(asio::any_io_executor executor, Options options, MetricsSource metrics);
  asio::awaitable<void> AcceptLoop();
  asio::awaitable<void> Serve(asio::ip::tcp::socket socket);

  asio::strand<asio::any_io_executor> strand_;
  Options options_;
  MetricsSource metrics_;
  asio::ip::tcp::acceptor acceptor_;
  asio::steady_timer pause_timer_;  // the accept loop's pause after EMFILE and the like
  std::vector<std::weak_ptr<asio::ip::tcp::socket>> connections_;  // guarded by strand_
  unsigned short port_ = 0;
  std::atomic<bool> started_{false};
  std::atomic<std::size_t> open_{0};
  mutable std::mutex mu_;
  bool ready_ = false;                  // guarded by mu_
  std::string not_ready_ = "starting";  // guarded by mu_
  std::atomic<bool> shut_down_{false};
};

}  // namespace pp::adaptor
