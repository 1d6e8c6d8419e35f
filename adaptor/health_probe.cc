// peerpods-health-probe: one grpc.health.v1.Health/Check, with the command line and exit codes of
// grpc-ecosystem/grpc-health-probe (main.go there), so that what works with one works with the
// other:
//
//   peerpods-health-probe -addr host:port [-service NAME] [-connect-timeout 1s] [-rpc-timeout 1s]
//                         [-timeout D  (sets both)]
//
//   0  SERVING
//   1  invalid arguments
//   2  connection failed or timed out
//   3  the RPC failed or timed out (NOT_FOUND for a service the server does not know)
//   4  the RPC succeeded but the status is not SERVING
//
// Plaintext only (the daemon's health port is plaintext, as kubelet's gRPC probe requires). The
// last line on stderr says what happened, as grpc_health_probe's does.
#include <grpc/grpc.h>
#include <grpcpp/grpcpp.h>

#include <CLI/CLI.hpp>
#include <chrono>
#include <iostream>
#include <string>

#include "common/base/go_flags.h"
#include "grpc/health/v1/health.grpc.pb.h"

namespace {

using grpc::health::v1::HealthCheckResponse;

constexpr int kServing = 0;
constexpr int kInvalidArguments = 1;
constexpr int kConnectionFailure = 2;
constexpr int kRpcFailure = 3;
constexpr int kUnhealthy = 4;

std::chrono::system_clock::time_point After(std::chrono::nanoseconds d) {
  return std::chrono::system_clock::now() +
         std::chrono::duration_cast<std::chrono::system_clock::duration>(d);
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"Checks a gRPC server's health (grpc.health.v1.Health/Check); exit 0 when SERVING"};
  pp::GoFlagDefaults(app);
  std::string addr;
  std::string service;
  std::string connect_timeout = "1s";
  std::string rpc_timeout = "1s";
  std::string timeout;
  app.add_option("--addr", addr, "(required) tcp host:port to connect");
  app.add_option("--service", service,
                 "service name to check (default: \"\", the server as a whole)");
  app.add_option("--connect-timeout", connect_timeout, "timeout for establishing the connection")
      ->capture_default_str();
  app.add_option("--rpc-timeout", rpc_timeout, "timeout for the health check RPC")
      ->capture_default_str();
  app.add_option("--timeout", timeout, "sets both -connect-timeout and -rpc-timeout");
  if (int rc = pp::ParseGoCommandLine(app, argc, argv); rc >= 0)
    return rc == 0 ? 0 : kInvalidArguments;

  if (!timeout.empty()) connect_timeout = rpc_timeout = timeout;
  if (addr.empty()) {
    std::cerr << "error: -addr not specified\n";
    return kInvalidArguments;
  }
  auto connect_for = pp::ParseGoDuration(connect_timeout);
  auto rpc_for = pp::ParseGoDuration(rpc_timeout);
  for (const auto* d : {&connect_for, &rpc_for}) {
    if (!*d || (*d)->count() == 0) {
      std::cerr << "error: timeouts must be Go durations greater than zero (" << connect_timeout
                << ", " << rpc_timeout << ")\n";
      return kInvalidArguments;
    }
  }

  grpc::ChannelArguments args;
  // A probe of a node-local port never goes through an http_proxy the environment may name.
  args.SetInt(GRPC_ARG_ENABLE_HTTP_PROXY, 0);
  args.SetString(GRPC_ARG_PRIMARY_USER_AGENT_STRING, "peerpods-health-probe");
  auto channel = grpc::CreateCustomChannel(addr, grpc::InsecureChannelCredentials(), args);
  if (!channel->WaitForConnected(After(*connect_for))) {
    std::cerr << "timeout: failed to connect service \"" << addr << "\" within " << connect_timeout
              << "\n";
    return kConnectionFailure;
  }

  grpc::ClientContext context;
  context.set_deadline(After(*rpc_for));
  grpc::health::v1::HealthCheckRequest request;
  request.set_service(service);
  HealthCheckResponse response;
  const grpc::Status status =
      grpc::health::v1::Health::NewStub(channel)->Check(&context, request, &response);
  if (!status.ok()) {
    if (status.error_code() == grpc::StatusCode::UNIMPLEMENTED) {
      std::cerr << "error: this server does not implement the grpc health protocol "
                   "(grpc.health.v1.Health)\n";
    } else if (status.error_code() == grpc::StatusCode::DEADLINE_EXCEEDED) {
      std::cerr << "timeout: health rpc did not complete within " << rpc_timeout << "\n";
    } else {
      std::cerr << "error: health rpc failed: code " << status.error_code() << ": "
                << status.error_message() << "\n";
    }
    return kRpcFailure;
  }
  const std::string name = HealthCheckResponse::ServingStatus_Name(response.status());
  if (response.status() != HealthCheckResponse::SERVING) {
    std::cerr << "service unhealthy (responded with \"" << name << "\")\n";
    return kUnhealthy;
  }
  std::cerr << "status: " << name << "\n";
  return kServing;
}
