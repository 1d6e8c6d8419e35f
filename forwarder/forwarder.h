// Forwarder: the agent-protocol-forwarder's core. Accepts the node's connections on TCP (mutual TLS
// unless disabled) and relays each to the kata-agent's unix socket, rewriting CreateSandbox (DNS
// dropped) and CreateContainer (joins the pod network namespace, when one is configured).
//
// It starts listening only once the agent socket answers, so a connection accepted means the agent
// is reachable. Every connection gets its own agent connection; frames pass through undecoded.
// Threading: one io_context; Start() and Shutdown() from its thread.
#pragma once

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "common/base/accept_throttle.h"
#include "common/base/asio.h"
#include "common/base/error.h"
#include "common/ttrpc/relay.h"

namespace asio::ssl {
class context;
}

namespace pp::forwarder {

struct ForwarderOptions {
  asio::ip::tcp::endpoint listen;
  std::string agent_socket = "/run/kata-containers/agent.sock";
  std::string pod_netns;                      // empty: containers keep their namespaces
  std::shared_ptr<asio::ssl::context> tls;    // server context; null: plaintext (-disable-tls)
  // TLS handshakes in progress at once; at the cap the forwarder stops accepting (new connections
  // wait in the kernel's listen queue) until one ends. Each must finish within handshake_timeout.
  std::size_t max_handshakes = 32;
  std::chrono::milliseconds handshake_timeout{10000};
  // While the agent socket does not answer: one log line when the wait starts, then one per
  // interval.
  std::chrono::milliseconds wait_log_interval{10000};
  // Pauses and log bounds when accept fails (out of descriptors or memory).
  AcceptThrottle::Options accept_throttle{};
};

class Forwarder {
 public:
  explicit Forwarder(asio::any_io_executor executor, ForwarderOptions options);
  ~Forwarder();

  // Waits (forever, with capped backoff, until Shutdown) for the agent socket to accept a connection,
  // logging when the wait starts and every wait_log_interval after ("still waiting for the
  // kata-agent at <path> (<n> s)"), then listens. Returns the bound endpoint (port 0 picks one), or
  // the listen error.
  asio::awaitable<Result<asio::ip::tcp::endpoint>> Start();

  void Shutdown();

  // TLS handshakes in progress (0 without TLS).
  std::size_t HandshakesInProgress() const { return handshakes_; }

 private:
  asio::awaitable<void> AcceptLoop();
  asio::awaitable<void> Serve(asio::ip::tcp::socket socket);

  asio::any_io_executor executor_;
  ForwarderOptions options_;
  asio::ip::tcp::acceptor acceptor_;
  asio::steady_timer accept_pause_;  // the accept loop's pause after EMFILE and the like
  asio::steady_timer handshake_freed_;  // wakes the accept loop waiting for a handshake slot
  std::size_t handshakes_ = 0;
  std::vector<std::weak_ptr<ttrpc::Relay>> relays_;
  bool shut_down_ = false;
};

// The interception rules as a relay takes them (exposed for tests).
ttrpc::Relay::Options AgentRelayOptions(const std::string& pod_netns);

}  // namespace pp::forwarder
