// HealthServer: the daemon's gRPC health endpoint (grpc.health.v1.Health, Check and Watch), for
// kubelet's native gRPC probes (`grpc: {port: 8001}` in a pod spec; Kubernetes docs, "Configure
// Liveness, Readiness and Startup Probes", section "Define a gRPC liveness probe").
//
// It is gRPC's own default health service (grpc::EnableDefaultHealthCheckService), which implements
// grpc.health.v1 as published in grpc/grpc-proto (grpc/health/v1/health.proto) with the semantics
// of grpc/grpc's doc/health-checking.md: Check answers the status of a known service and NOT_FOUND
// for any other; Watch sends the current status at once and every change after it. The known
// services are "" (the server as a whole) and kHealthServiceName; both are NOT_SERVING from Start()
// until SetServing(true), which the daemon calls once the provider is verified and the recorded
// sandboxes are reloaded.
//
// Threading: every method may be called from any thread; gRPC serves the calls on its own threads.
// No gRPC header is included here, so the daemon compiles without them.
#pragma once

#include <chrono>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>

#include "common/base/error.h"

namespace grpc {
class CallbackGenericService;
class Server;
}  // namespace grpc

namespace pp::adaptor {

// The service name the daemon reports under besides "" (CAA's process name).
inline constexpr std::string_view kHealthServiceName = "cloud-api-adaptor";

// How long Shutdown() lets open calls run before cancelling them. A Check takes microseconds; a
// Watch never ends by itself.
inline constexpr std::chrono::milliseconds kHealthShutdownGrace{200};

class HealthServer {
 public:
  // Listens on `address` ("0.0.0.0:8001", "[::]:8001", "127.0.0.1:0" for a free port: see port())
  // in plaintext, with both services NOT_SERVING. The port is never shared (SO_REUSEPORT is off),
  // so a port another socket holds is refused: UNAVAILABLE "health: port N is in use ...". A port
  // the process may not bind is PERMISSION_DENIED, an address that is not "host:port" or not on
  // this host INVALID_ARGUMENT, anything else INTERNAL; every message names the address and
  // -health-port / HEALTH_PORT. On failure nothing is left listening.
  //
  // Process-wide, once: turns on gRPC's default health service (a global switch of gRPC's) and
  // sends gRPC's own log lines to spdlog's default logger, prefixed "grpc: ".
  static Result<std::unique_ptr<HealthServer>> Start(std::string address);

  // Shutdown().
  ~HealthServer();
  HealthServer(const HealthServer&) = delete;
  HealthServer& operator=(const HealthServer&) = delete;

  // The TCP port bound (the chosen one when the address asked for port 0).
  int port() const { return port_; }

  // SERVING or NOT_SERVING for "" and kHealthServiceName alike; watchers get the change. After
  // Shutdown() it does nothing.
  void SetServing(bool serving);

  // Stops the server: every service turns NOT_SERVING (watchers are told), the listener closes,
  // calls still open (a Watch) are cancelled after kHealthShutdownGrace, and it returns once gRPC
  // has finished them. Bounded; idempotent; safe from any thread.
  void Shutdown();

 private:
  HealthServer(std::unique_ptr<grpc::CallbackGenericService> unknown_methods,
               std::unique_ptr<grpc::Server> server, int port);

  // Answers every method but the health service's with UNIMPLEMENTED, as gRPC would without it.
  // gRPC 1.51 refuses to start a server with no service of its own ("At least one of the completion
  // queues must be frequently polled"): its default health service runs on a queue it polls itself.
  // Must outlive server_.
  const std::unique_ptr<grpc::CallbackGenericService> unknown_methods_;
  std::mutex mu_;                         // orders SetServing against Shutdown
  std::unique_ptr<grpc::Server> server_;  // null once shut down; guarded by mu_
  const int port_;
};

}  // namespace pp::adaptor
