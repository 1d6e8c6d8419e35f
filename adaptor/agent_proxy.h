// AgentProxy: per sandbox, the unix socket the shim dials as its kata-agent (`agent.ttrpc`, 0600),
// relayed over TCP (mutual TLS unless disabled) to the agent-protocol-forwarder in the pod VM.
//
// Each shim connection gets its own upstream connection through a ttrpc::Relay: frames pass through
// undecoded, except CreateContainer when the pod asked for GPUs (the CDI annotation is added). When
// the forwarder goes away, calls in flight fail at once with UNAVAILABLE and the next call dials
// again (exponential backoff with jitter), so the pod keeps working across a forwarder restart.
// WaitReady() is StartVM's test: a grpc.Health/Check through the whole chain.
// Threading: the proxy and all its relays run on the executor given to Start(), which must be a
// strand (or a single-threaded io_context); WaitReady() and Shutdown() must be called on it.
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "common/base/asio.h"
#include "common/base/error.h"
#include "common/ttrpc/relay.h"

namespace asio::ssl {
class context;
}

namespace pp::adaptor {

// sizeof(sockaddr_un::sun_path) on Linux, the terminating NUL included.
inline constexpr std::size_t kMaxUnixSocketPath = 108;

inline constexpr std::string_view kGpuCdiAnnotation = "cdi.k8s.io/peer-pods";
inline constexpr std::string_view kGpuCdiValue = "nvidia.com/gpu=all";

struct AgentProxyOptions {
  std::string socket_path;  // <pods-dir>/<id>/agent.ttrpc
  std::string host;         // the pod VM's IP
  unsigned short port = 15150;
  std::shared_ptr<asio::ssl::context> tls;  // client context; null: plaintext (-disable-tls)
  std::string server_name;                  // expected SAN of the forwarder's certificate
  std::chrono::milliseconds dial_timeout{5000};   // one TCP connect + TLS handshake
  std::chrono::milliseconds redial_wait{30000};   // how long a call waits for a redial
  // A pod VM that vanishes without FIN or RST (host died, network cut) fails the calls relayed to
  // it within about this long, instead of hanging them (TCP_USER_TIMEOUT and keepalive).
  std::chrono::milliseconds peer_timeout{30000};
  bool gpus_requested = false;
  // Metrics hooks (optional), called on the proxy's executor: a shim connection opened or closed,
  // and bytes relayed to and from the pod VM.
  std::function<void(int delta)> on_connection;
  std::function<void(std::size_t to_vm, std::size_t from_vm)> on_bytes;
};

class AgentProxy : public std::enable_shared_from_this<AgentProxy> {
 public:
  // Its accept loop keeps the proxy alive until Shutdown() closed the listener.
  static Result<std::shared_ptr<AgentProxy>> Start(asio::any_io_executor executor, AgentProxyOptions options);
  ~AgentProxy();

  // Retries grpc.Health/Check through agent.ttrpc until it succeeds or `deadline` passes
  // (DEADLINE_EXCEEDED naming the last error).
  asio::awaitable<Result<void>> WaitReady(std::chrono::steady_clock::time_point deadline);

  // Stops listening, removes the socket, closes every relay. Idempotent.
  void Shutdown();

  const AgentProxyOptions& options() const { return options_; }
  const asio::any_io_executor& executor() const { return executor_; }

 private:
  AgentProxy(asio::any_io_executor executor, AgentProxyOptions options);
  asio::awaitable<void> AcceptLoop();

  asio::any_io_executor executor_;
  AgentProxyOptions options_;
  asio::local::stream_protocol::acceptor acceptor_;
  asio::steady_timer pause_timer_;  // the accept loop's pause after EMFILE and the like
  std::vector<std::weak_ptr<ttrpc::Relay>> relays_;
  bool shut_down_ = false;
};

// Node-side rewrite of a grpc.CreateContainerRequest payload: adds the CDI annotation that makes the
// pod VM's runtime expose its GPUs (CAA's behaviour when GPUs were requested).
Result<void> AddGpuCdiAnnotation(std::string& payload);

// Connects to host:port within `timeout`, then completes TLS (when `tls` is set) checking
// `server_name`. The stream lives on `executor`; a peer that vanishes is detected within about
// `peer_timeout` (SetPeerLivenessBound).
asio::awaitable<Result<std::unique_ptr<ttrpc::Stream>>> DialAgentForwarder(
    asio::any_io_executor executor, std::string host, unsigned short port,
    std::shared_ptr<asio::ssl::context> tls, std::string server_name, std::chrono::milliseconds timeout,
    std::chrono::milliseconds peer_timeout = std::chrono::seconds(30));

// Sets TCP keepalive and TCP_USER_TIMEOUT on `socket` so that a peer gone without FIN or RST ends
// the connection within about `bound` (at least a few seconds).
Result<void> SetPeerLivenessBound(asio::ip::tcp::socket& socket, std::chrono::milliseconds bound);
Result<void> SetPeerLivenessBound(int fd, std::chrono::milliseconds bound);

}  // namespace pp::adaptor
