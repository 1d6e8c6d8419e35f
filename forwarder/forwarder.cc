#include "forwarder/forwarder.h"

#include <spdlog/spdlog.h>

#include "common/base/accept_throttle.h"
#include "common/base/backoff.h"
#include "common/tls/stream.h"
#include "forwarder/agent_rewrites.h"

namespace pp::forwarder {
namespace {

asio::awaitable<Result<std::unique_ptr<ttrpc::Stream>>> DialAgent(asio::any_io_executor executor, std::string path) {
  asio::local::stream_protocol::socket socket(executor);
  auto [ec] = co_await socket.async_connect(asio::local::stream_protocol::endpoint(path), kAwaitTuple);
  if (ec) co_return Fail(Code::kUnavailable, "kata-agent at ", path, ": ", ec.message());
  co_return std::make_unique<ttrpc::UnixStream>(std::move(socket), "unix:" + path);
}

}  // namespace

ttrpc::Relay::Options AgentRelayOptions(const std::string& pod_netns) {
  ttrpc::Relay::Options options;
  options.intercept = [netns = !pod_netns.empty()](std::string_view service, std::string_view method) {
    return service == "grpc.AgentService" &&
           (method == "CreateSandbox" || (netns && method == "CreateContainer"));
  };
  options.rewrite = [pod_netns](std::string_view, std::string_view method, std::string& payload) {
    if (method == "CreateSandbox") return DropSandboxDns(payload);
    return JoinPodNetns(payload, pod_netns);
  };
  return options;
}

Forwarder::Forwarder(asio::any_io_executor executor, ForwarderOptions options)
    : executor_(std::move(executor)),
      options_(std::move(options)),
      acceptor_(executor_),
      accept_pause_(executor_),
      handshake_freed_(executor_, std::chrono::steady_clock::time_point::max()) {}

Forwarder::~Forwarder() = default;

asio::awaitable<Result<asio::ip::tcp::endpoint>> Forwarder::Start() {
  using Clock = std::chrono::steady_clock;
  Backoff backoff(std::chrono::milliseconds(20), std::chrono::milliseconds(1000));
  const auto started = Clock::now();
  auto next_report = started + options_.wait_log_interval;
  for (bool waiting = false;;) {
    auto probe = co_await DialAgent(executor_, options_.agent_socket);
    if (probe) {
      (*probe)->Close();
      if (waiting) {
        spdlog::info("the kata-agent at {} answered after {} s", options_.agent_socket,
                     std::chrono::duration_cast<std::chrono::seconds>(Clock::now() - started)
                         .count());
      }
      break;
    }
    if (shut_down_) co_return Fail(Code::kCancelled, "shut down before the kata-agent answered");
    // One line when the wait starts, then one per interval however often we probe: the VM's console
    // shows that the forwarder is alive and what it waits for, without a line per attempt.
    const auto now = Clock::now();
    if (!waiting) {
      waiting = true;
      spdlog::info("waiting for the {}", probe.error().message);  // "kata-agent at <path>: <why>"
    } else if (now >= next_report) {
      spdlog::info("still waiting for the kata-agent at {} ({} s)", options_.agent_socket,
                   std::chrono::duration_cast<std::chrono::seconds>(now - started).count());
      next_report = now + options_.wait_log_interval;
    }
    asio::steady_timer timer(executor_, backoff.Next());
    co_await timer.async_wait(kAwaitTuple);
  }
  std::error_code ec;
  acceptor_.open(options_.listen.protocol(), ec);
  if (!ec) acceptor_.set_option(asio::socket_base::reuse_address(true), ec);
  if (!ec) acceptor_.bind(options_.listen, ec);
  if (!ec) acceptor_.listen(asio::socket_base::max_listen_connections, ec);
  if (ec) {
    co_return Fail(Code::kUnavailable, "listen on ", options_.listen.address().to_string(), ":",
                   std::to_string(options_.listen.port()), ": ", ec.message());
  }
  auto bound = acceptor_.local_endpoint(ec);
  spdlog::info("agent-protocol-forwarder listening on {}:{} ({}), relaying to {}", bound.address().to_string(),
               bound.port(), options_.tls ? "mutual TLS" : "PLAINTEXT, TLS DISABLED", options_.agent_socket);
  asio::co_spawn(executor_, AcceptLoop(), asio::detached);
  co_return bound;
}

asio::awaitable<void> Forwarder::AcceptLoop() {
  std::error_code ignored;
  const auto local = acceptor_.local_endpoint(ignored);
  AcceptThrottle throttle("agent-protocol-forwarder: accept on " + local.address().to_string() +
                              ":" + std::to_string(local.port()),
                          options_.accept_throttle);
  while (acceptor_.is_open()) {
    // A peer that opens connections and never finishes a handshake must not make us hold an
    // unbounded number of them: at the cap, new connections wait in the kernel's listen queue.
    while (options_.tls && handshakes_ >= options_.max_handshakes && acceptor_.is_open()) {
      co_await handshake_freed_.async_wait(kAwaitTuple);
    }
    if (!acceptor_.is_open()) break;
    auto [ec, socket] = co_await acceptor_.async_accept(kAwaitTuple);
    if (ec) {
      if (ec == asio::error::operation_aborted || !acceptor_.is_open()) break;
      const auto pause = throttle.OnError(ec);
      if (!pause) break;
      if (pause->count() > 0) {
        accept_pause_.expires_after(*pause);
        co_await accept_pause_.async_wait(kAwaitTuple);
      }
      continue;
    }
    throttle.OnSuccess();
    asio::co_spawn(executor_, Serve(std::move(socket)), asio::detached);
  }
}

asio::awaitable<void> Forwarder::Serve(asio::ip::tcp::socket socket) {
  std::error_code ec;
  const auto peer = socket.remote_endpoint(ec);
  const std::string where = "tcp:" + peer.address().to_string() + ":" + std::to_string(peer.port());
  socket.set_option(asio::ip::tcp::no_delay(true), ec);
  std::unique_ptr<ttrpc::Stream> downstream;
  if (options_.tls) {
    ++handshakes_;
    auto accepted = co_await tls::TlsAccept(std::move(socket), options_.tls, options_.handshake_timeout);
    --handshakes_;
    handshake_freed_.cancel();
    if (!accepted) {
      spdlog::warn("refused {}: {}", where, accepted.error().message);
      co_return;
    }
    downstream = std::move(*accepted);
  } else {
    downstream = std::make_unique<ttrpc::TcpStream>(std::move(socket), where);
  }
  if (shut_down_) co_return;
  auto executor = downstream->get_executor();
  ttrpc::Relay::Dialer dial = [executor, path = options_.agent_socket] { return DialAgent(executor, path); };
  std::erase_if(relays_, [](const auto& weak) { return weak.expired(); });
  relays_.push_back(ttrpc::Relay::Start(std::move(downstream), std::move(dial), AgentRelayOptions(options_.pod_netns)));
}

void Forwarder::Shutdown() {
  if (shut_down_) return;
  shut_down_ = true;
  std::error_code ignored;
  acceptor_.close(ignored);
  accept_pause_.cancel();
  handshake_freed_.cancel();
  for (auto& weak : relays_) {
    if (auto relay = weak.lock()) relay->Close();
  }
  relays_.clear();
}

}  // namespace pp::forwarder
