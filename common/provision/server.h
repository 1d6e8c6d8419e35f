// ProvisionServer: the pool VM's side of proto/provision.proto. Until one claim succeeds, the pool
// VM's forwarder serves peerpods.provision.v1.Provision on its -listen address over mutual TLS
// with the pool credential from pool.json; the adaptor's client certificate must chain to the
// pool's tls-client-ca.
//
//   Check  answers the VM's name and the digest of the initdata it was launched with.
//   Claim  INVALID_ARGUMENT unless pool_vm is this VM's name; FAILED_PRECONDITION "already
//          claimed" once a claim succeeded or while one is being handled; otherwise the
//          ClaimHandler decides (it validates the pod's user-data and writes its files). Its error
//          reaches the adaptor unchanged and leaves the VM claimable; its success makes the VM the
//          pod's for good: the reply is sent, then (WaitForClaim) the listener and every connection
//          close. A claim after that reaches no provisioning server: the address then serves the
//          pod's agent path, whose certificate does not carry the pool VM's name, so the
//          adaptor's client fails it UNAVAILABLE at the handshake.
//
// Threading: one io_context (the forwarder's); construct, Listen, WaitForClaim and Shutdown on its
// thread. The ClaimHandler runs there too, at most one at a time. Destroy the object only after
// Stop() completed, or after the io_context stopped running.
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <string>

#include "common/base/asio.h"
#include "common/base/error.h"
#include "common/ttrpc/server.h"
#include "provision.pb.h"

namespace asio::ssl {
class context;
}

namespace pp::provision {

inline constexpr char kServiceName[] = "peerpods.provision.v1.Provision";

struct ProvisionServerOptions {
  asio::ip::tcp::endpoint listen;           // port 0 picks one (tests)
  std::string pool_vm;                      // this VM's name (pool.json "pool-vm")
  std::string initdata_digest;              // "sha256:<hex>" or "" (CheckResponse)
  std::shared_ptr<asio::ssl::context> tls;  // server context; null: plaintext (-disable-tls)
  std::size_t max_handshakes = 32;          // over it, new connections are closed at once
  std::chrono::milliseconds handshake_timeout{10000};
  std::chrono::milliseconds close_grace{2000};  // for the claim's reply to flush
};

// Called for a Claim whose pool_vm matched, while no other claim is in flight or done. Success
// means the pod's configuration is in place; an error means nothing changed.
using ClaimHandler = std::function<Result<void>(const peerpods::provision::v1::ClaimRequest&)>;

class ProvisionServer {
 public:
  ProvisionServer(asio::any_io_executor executor, ProvisionServerOptions options,
                  ClaimHandler on_claim);
  ~ProvisionServer();
  ProvisionServer(const ProvisionServer&) = delete;
  ProvisionServer& operator=(const ProvisionServer&) = delete;

  // Binds and starts accepting. Returns the bound endpoint, or UNAVAILABLE naming the address.
  Result<asio::ip::tcp::endpoint> Listen();

  // Completes once a claim succeeded, its reply was flushed and the listener and connections are
  // closed, with the claiming sandbox's id; or CANCELLED after Shutdown().
  asio::awaitable<Result<std::string>> WaitForClaim();

  // Stops accepting and closes every connection. Idempotent.
  void Shutdown();

  // Shutdown(), then waits until no handshake or connection is left (handshakes end within
  // handshake_timeout): the object may be destroyed afterwards while the io_context runs on.
  asio::awaitable<void> Stop();

 private:
  asio::awaitable<void> AcceptLoop();
  asio::awaitable<void> Serve(asio::ip::tcp::socket socket);
  asio::awaitable<Result<peerpods::provision::v1::ClaimResponse>> OnClaim(
      ttrpc::CallContext& ctx, peerpods::provision::v1::ClaimRequest request);

  enum class State { kWaiting, kClaiming, kClaimed };

  asio::any_io_executor executor_;
  ProvisionServerOptions options_;
  ClaimHandler on_claim_;
  ttrpc::Server rpc_;
  asio::ip::tcp::acceptor acceptor_;
  asio::steady_timer claimed_signal_;   // cancelled when a claim succeeded or on Shutdown
  asio::steady_timer handshake_ended_;  // cancelled whenever a handshake ends (for Stop)
  std::size_t handshakes_ = 0;
  State state_ = State::kWaiting;
  std::string claimed_by_;
  bool shut_down_ = false;
};

}  // namespace pp::provision
