// podvm-test-agent: a TEST AGENT that stands where the kata-agent stands in a production pod VM.
//
// It serves grpc.Health and a handful of grpc.AgentService calls on the kata-agent's unix socket,
// so that the test image can show the agent path (node -> agent-protocol-forwarder -> agent)
// working end to end where no real kata-agent runs. It runs no containers: the AgentService calls
// it knows get empty OK replies, every other method UNIMPLEMENTED (the server's answer for
// unregistered methods). Calls are logged by method only; payloads (container specs, environment,
// secrets) never reach the log.
#include <spdlog/spdlog.h>

#include <CLI/CLI.hpp>
#include <chrono>
#include <csignal>
#include <string>
#include <vector>

#include "agent/agent.pb.h"
#include "agent/health.pb.h"
#include "common/base/go_flags.h"
#include "common/ttrpc/server.h"
#include "common/ttrpc/service.h"
#include "google/protobuf/empty.pb.h"

#ifndef PP_VERSION
#error "PP_VERSION must be defined by the build"
#endif

namespace {

constexpr char kAgentService[] = "grpc.AgentService";
constexpr char kHealthService[] = "grpc.Health";
constexpr char kAgentVersion[] = "podvm-test-agent " PP_VERSION;

// Registers service/method with a fixed reply; the request is parsed (a malformed one is answered
// INVALID_ARGUMENT) but not looked at.
template <typename Req, typename Resp>
void Answer(pp::ttrpc::Server& server, const char* service, const char* method, Resp reply) {
  server.Register(service, method,
                  pp::ttrpc::Unary<Req, Resp>(
                      [reply = std::move(reply)](pp::ttrpc::CallContext& ctx,
                                                 Req) -> asio::awaitable<pp::Result<Resp>> {
                        spdlog::info("test agent: {}/{}", ctx.service, ctx.method);
                        co_return reply;
                      }));
}

void RegisterTestAgent(pp::ttrpc::Server& server) {
  grpc::HealthCheckResponse serving;
  serving.set_status(grpc::HealthCheckResponse::SERVING);
  Answer<grpc::CheckRequest>(server, kHealthService, "Check", serving);

  grpc::VersionCheckResponse version;
  version.set_agent_version(kAgentVersion);
  version.set_grpc_version(PP_VERSION);
  Answer<grpc::CheckRequest>(server, kHealthService, "Version", version);

  grpc::GuestDetailsResponse details;
  details.mutable_agent_details()->set_version(kAgentVersion);
  details.mutable_agent_details()->set_init_daemon(true);
  Answer<grpc::GuestDetailsRequest>(server, kAgentService, "GetGuestDetails", details);

  using google::protobuf::Empty;
  Answer<grpc::CreateSandboxRequest>(server, kAgentService, "CreateSandbox", Empty{});
  Answer<grpc::DestroySandboxRequest>(server, kAgentService, "DestroySandbox", Empty{});
  Answer<grpc::CreateContainerRequest>(server, kAgentService, "CreateContainer", Empty{});
  Answer<grpc::StartContainerRequest>(server, kAgentService, "StartContainer", Empty{});
  Answer<grpc::RemoveContainerRequest>(server, kAgentService, "RemoveContainer", Empty{});
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{
      "podvm-test-agent: a TEST AGENT for the test pod VM image, standing where the kata-agent "
      "stands in production. Answers grpc.Health and empty OK replies to CreateSandbox, "
      "DestroySandbox, GetGuestDetails, CreateContainer, StartContainer and RemoveContainer; "
      "runs no containers; every other method is UNIMPLEMENTED."};
  std::string socket = "/run/kata-containers/agent.sock";
  app.add_option("--socket", socket, "unix socket to serve ttrpc on (parent dirs are created)")
      ->capture_default_str();
  if (const int exit = pp::ParseGoCommandLine(app, argc, argv); exit >= 0) return exit;

  asio::io_context io(1);
  pp::ttrpc::Server server(io.get_executor(), {.single_threaded = true});
  RegisterTestAgent(server);
  if (auto listening = server.ListenUnix(socket, 0600); !listening) {
    spdlog::error("test agent: {}", listening.error().ToString());
    return 1;
  }
  spdlog::warn("TEST AGENT {} serving on {}: this is not a kata-agent and runs no containers",
               kAgentVersion, socket);

  asio::signal_set signals(io, SIGINT, SIGTERM);
  signals.async_wait([&](std::error_code ec, int signal) {
    if (ec) return;
    spdlog::info("test agent: signal {}, shutting down", signal);
    asio::co_spawn(
        io,
        [&]() -> asio::awaitable<void> {
          co_await server.Shutdown(std::chrono::seconds(2));
          io.stop();
        },
        asio::detached);
  });
  io.run();
  return 0;
}
