#include "adaptor/agent_proxy.h"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

#include <algorithm>

#include "common/base/accept_throttle.h"
#include "common/base/backoff.h"

#include <spdlog/spdlog.h>
#include <sys/stat.h>
#include <unistd.h>

#include <asio/experimental/awaitable_operators.hpp>

#include "agent/agent.pb.h"
#include "agent/health.pb.h"
#include "common/tls/stream.h"
#include "common/ttrpc/client.h"

namespace pp::adaptor {
namespace {

using Clock = std::chrono::steady_clock;

}  // namespace

Result<void> AddGpuCdiAnnotation(std::string& payload) {
  grpc::CreateContainerRequest request;
  if (!request.ParseFromString(payload)) {
    return Fail(Code::kInvalidArgument, "CreateContainer: cannot decode the request");
  }
  (*request.mutable_oci()->mutable_annotations())[std::string(kGpuCdiAnnotation)] = std::string(kGpuCdiValue);
  payload = request.SerializeAsString();
  return {};
}

Result<void> SetPeerLivenessBound(asio::ip::tcp::socket& socket, std::chrono::milliseconds bound) {
  return SetPeerLivenessBound(socket.native_handle(), bound);
}

Result<void> SetPeerLivenessBound(int fd, std::chrono::milliseconds bound) {
  // tcp(7): with data unacknowledged for TCP_USER_TIMEOUT the connection is aborted (RFC 5482);
  // with nothing in flight, keepalive probes (idle bound/3, then every bound/6, 3 of them) find a
  // peer that vanished without FIN or RST, and the user timeout ends them too.
  const int on = 1;
  const auto ms = static_cast<unsigned>(bound.count());
  const int idle = std::max(1, static_cast<int>(bound.count() / 3000));
  const int interval = std::max(1, static_cast<int>(bound.count() / 6000));
  const int count = 3;
  if (::setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &on, sizeof on) != 0 ||
      ::setsockopt(fd, IPPROTO_TCP, TCP_KEEPIDLE, &idle, sizeof idle) != 0 ||
      ::setsockopt(fd, IPPROTO_TCP, TCP_KEEPINTVL, &interval, sizeof interval) != 0 ||
      ::setsockopt(fd, IPPROTO_TCP, TCP_KEEPCNT, &count, sizeof count) != 0 ||
      ::setsockopt(fd, IPPROTO_TCP, TCP_USER_TIMEOUT, &ms, sizeof ms) != 0) {
    return std::unexpected(ErrnoError("agent connection: setsockopt", errno));
  }
  return {};
}

asio::awaitable<Result<std::unique_ptr<ttrpc::Stream>>> DialAgentForwarder(
    asio::any_io_executor executor, std::string host, unsigned short port,
    std::shared_ptr<asio::ssl::context> tls, std::string server_name, std::chrono::milliseconds timeout,
    std::chrono::milliseconds peer_timeout) {
  using namespace asio::experimental::awaitable_operators;
  std::error_code ec;
  const auto address = asio::ip::make_address(host, ec);
  if (ec) co_return Fail(Code::kInvalidArgument, "pod VM address \"", host, "\" is not an IP address");
  const asio::ip::tcp::endpoint endpoint(address, port);
  asio::ip::tcp::socket socket(executor);
  asio::steady_timer timer(executor, timeout);
  auto connected = co_await (socket.async_connect(endpoint, kAwaitTuple) || timer.async_wait(kAwaitTuple));
  const std::string where = host + ":" + std::to_string(port);
  if (connected.index() == 1) co_return Fail(Code::kUnavailable, "connect to ", where, ": timed out");
  if (auto [err] = std::get<0>(connected); err) co_return Fail(Code::kUnavailable, "connect to ", where, ": ", err.message());
  socket.set_option(asio::ip::tcp::no_delay(true), ec);
  if (auto bounded = SetPeerLivenessBound(socket, peer_timeout); !bounded) co_return std::unexpected(bounded.error());
  if (!tls) co_return std::make_unique<ttrpc::TcpStream>(std::move(socket), "tcp:" + where);
  co_return co_await tls::TlsConnect(std::move(socket), std::move(tls), std::move(server_name), timeout);
}

AgentProxy::AgentProxy(asio::any_io_executor executor, AgentProxyOptions options)
    : executor_(std::move(executor)), options_(std::move(options)), acceptor_(executor_), pause_timer_(executor_) {}

AgentProxy::~AgentProxy() { Shutdown(); }

Result<std::shared_ptr<AgentProxy>> AgentProxy::Start(asio::any_io_executor executor, AgentProxyOptions options) {
  std::shared_ptr<AgentProxy> proxy(new AgentProxy(std::move(executor), std::move(options)));
  const std::string& path = proxy->options_.socket_path;
  if (path.size() >= kMaxUnixSocketPath) {
    return Fail(Code::kFailedPrecondition, "agent proxy: socket path ", path, " is longer than ",
                std::to_string(kMaxUnixSocketPath - 1), " bytes; use a shorter -pods-dir");
  }
  ::unlink(path.c_str());  // a socket left by an earlier process serves nobody
  std::error_code ec;
  proxy->acceptor_.open(asio::local::stream_protocol(), ec);
  if (!ec) proxy->acceptor_.bind(asio::local::stream_protocol::endpoint(path), ec);
  if (!ec && ::chmod(path.c_str(), 0600) != 0) ec = std::error_code(errno, std::generic_category());
  if (!ec) proxy->acceptor_.listen(asio::socket_base::max_listen_connections, ec);
  if (ec) return Fail(Code::kInternal, "agent proxy: listen on ", path, ": ", ec.message());
  asio::co_spawn(proxy->executor_, proxy->AcceptLoop(), [proxy](std::exception_ptr) {});
  return proxy;
}

asio::awaitable<void> AgentProxy::AcceptLoop() {
  ttrpc::Relay::Options relay_options;
  relay_options.dial_wait = options_.redial_wait;
  if (options_.on_bytes) relay_options.on_bytes = options_.on_bytes;
  if (options_.on_connection) relay_options.on_gone = [f = options_.on_connection] { f(-1); };
  if (options_.gpus_requested) {
    relay_options.intercept = [](std::string_view service, std::string_view method) {
      return service == "grpc.AgentService" && method == "CreateContainer";
    };
    relay_options.rewrite = [](std::string_view, std::string_view, std::string& payload) {
      return AddGpuCdiAnnotation(payload);
    };
  }
  // Out of descriptors (EMFILE) used to end this loop for good: the sandbox then had no agent path
  // until a restart. Now it pauses, backing off, and accepts again.
  AcceptThrottle throttle("agent proxy: accept on " + options_.socket_path);
  while (acceptor_.is_open()) {
    auto [ec, socket] = co_await acceptor_.async_accept(executor_, kAwaitTuple);
    if (ec == asio::error::operation_aborted || !acceptor_.is_open()) break;
    if (ec) {
      const auto pause = throttle.OnError(ec);
      if (!pause) break;
      if (pause->count() > 0) {
        pause_timer_.expires_after(*pause);
        (void)co_await pause_timer_.async_wait(kAwaitTuple);
      }
      continue;
    }
    throttle.OnSuccess();
    auto downstream = std::make_unique<ttrpc::UnixStream>(std::move(socket), "unix:" + options_.socket_path);
    // The relay may outlive this proxy by a moment: its dialer holds copies, not `this`.
    ttrpc::Relay::Dialer dial = [executor = executor_, o = options_] {
      return DialAgentForwarder(executor, o.host, o.port, o.tls, o.server_name, o.dial_timeout, o.peer_timeout);
    };
    std::erase_if(relays_, [](const auto& weak) { return weak.expired(); });
    if (options_.on_connection) options_.on_connection(+1);
    relays_.push_back(ttrpc::Relay::Start(std::move(downstream), std::move(dial), relay_options));
  }
}

asio::awaitable<Result<void>> AgentProxy::WaitReady(Clock::time_point deadline) {
  Backoff backoff(std::chrono::milliseconds(100), std::chrono::milliseconds(5000));
  std::string last_error = "no attempt made";
  for (int attempt = 1; Clock::now() < deadline && !shut_down_; ++attempt) {
    auto stream = co_await ttrpc::ConnectUnix(executor_, options_.socket_path);
    if (stream) {
      auto client = ttrpc::Client::Create(std::move(*stream));
      ttrpc::CallOptions call;
      call.timeout = std::min<Clock::duration>(deadline - Clock::now(), std::chrono::seconds(30));
      auto health = co_await asio::co_spawn(
          client->get_executor(),
          client->Call<grpc::HealthCheckResponse>("grpc.Health", "Check", grpc::CheckRequest{}, std::move(call)),
          asio::use_awaitable);
      asio::post(client->get_executor(), [client] { client->Close(); });
      if (health) {
        spdlog::info("agent proxy {}: agent answered after {} attempt(s)", options_.socket_path, attempt);
        co_return Result<void>{};
      }
      last_error = health.error().message;
    } else {
      last_error = stream.error().message;
    }
    asio::steady_timer timer(executor_, std::min<Clock::time_point>(deadline, Clock::now() + backoff.Next()));
    co_await timer.async_wait(kAwaitTuple);
  }
  co_return Fail(Code::kDeadlineExceeded, "agent in pod VM ", options_.host, " did not answer: ", last_error);
}

void AgentProxy::Shutdown() {
  if (shut_down_) return;
  shut_down_ = true;
  std::error_code ignored;
  acceptor_.close(ignored);
  pause_timer_.cancel();
  ::unlink(options_.socket_path.c_str());
  for (auto& weak : relays_) {
    if (auto relay = weak.lock()) relay->Close();
  }
  relays_.clear();
}

}  // namespace pp::adaptor
