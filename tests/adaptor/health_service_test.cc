// HealthServer (adaptor/health_service.h) as kubelet's gRPC probe and grpc_health_probe see it:
// Check and Watch over a real gRPC channel on loopback, and peerpods-health-probe's exit codes.
#include "adaptor/health_service.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <grpc/grpc.h>
#include <grpcpp/generic/generic_stub.h>
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <future>
#include <string>
#include <thread>
#include <vector>

#include "common/base/handle.h"
#include "grpc/health/v1/health.grpc.pb.h"
#include "tests/support/log_capture.h"

namespace pp::adaptor {
namespace {

using grpc::health::v1::Health;
using grpc::health::v1::HealthCheckRequest;
using grpc::health::v1::HealthCheckResponse;
using Clock = std::chrono::steady_clock;

constexpr auto kRpcTimeout = std::chrono::seconds(5);
const std::string kService(kHealthServiceName);

std::chrono::system_clock::time_point Deadline(std::chrono::milliseconds d = kRpcTimeout) {
  return std::chrono::system_clock::now() + d;
}

std::unique_ptr<HealthServer> StartOnLoopback() {
  auto server = HealthServer::Start("127.0.0.1:0");
  EXPECT_TRUE(server.has_value()) << server.error().ToString();
  if (!server) return nullptr;
  EXPECT_GT((*server)->port(), 0);
  return std::move(*server);
}

std::unique_ptr<Health::Stub> Client(int port) {
  grpc::ChannelArguments args;
  args.SetInt(GRPC_ARG_ENABLE_HTTP_PROXY, 0);
  return Health::NewStub(grpc::CreateCustomChannel("127.0.0.1:" + std::to_string(port),
                                                   grpc::InsecureChannelCredentials(), args));
}

struct CheckResult {
  grpc::StatusCode code;
  HealthCheckResponse::ServingStatus status;
};

CheckResult Check(Health::Stub& stub, const std::string& service) {
  grpc::ClientContext context;
  context.set_deadline(Deadline());
  HealthCheckRequest request;
  request.set_service(service);
  HealthCheckResponse response;
  const grpc::Status status = stub.Check(&context, request, &response);
  return {status.error_code(), response.status()};
}

// Holds a TCP port on 127.0.0.1 with a plain socket (no SO_REUSEPORT): listening, or only bound so
// that a connection to it is refused.
class HeldPort {
 public:
  explicit HeldPort(bool listen) : fd_(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0)) {
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t size = sizeof addr;
    if (::bind(fd_.get(), reinterpret_cast<sockaddr*>(&addr), size) != 0) return;
    if (listen && ::listen(fd_.get(), 1) != 0) return;
    if (::getsockname(fd_.get(), reinterpret_cast<sockaddr*>(&addr), &size) != 0) return;
    port_ = ntohs(addr.sin_port);
  }
  int port() const { return port_; }

 private:
  ScopedFd fd_;
  int port_ = 0;
};

struct ProbeRun {
  int exit_code = -1;  // -1: killed after the test's own bound
  std::string stderr_text;
};

// Runs peerpods-health-probe with `args`; stderr is captured. Killed (exit_code -1) if it has not
// exited within `bound`.
ProbeRun RunProbe(std::vector<std::string> args,
                  std::chrono::milliseconds bound = std::chrono::seconds(10)) {
  ProbeRun run;
  int pipe_fds[2];
  if (::pipe2(pipe_fds, O_CLOEXEC) != 0) return run;
  ScopedFd read_end(pipe_fds[0]);
  ScopedFd write_end(pipe_fds[1]);
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, write_end.get(), 2);
  args.insert(args.begin(), PEERPODS_HEALTH_PROBE);
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  pid_t pid = -1;
  const int spawned = ::posix_spawn(&pid, argv[0], &actions, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  write_end.Reset();
  if (spawned != 0) return run;

  const auto deadline = Clock::now() + bound;
  char buffer[512];
  for (;;) {
    const auto left =
        std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
    if (left.count() <= 0) break;
    pollfd p{read_end.get(), POLLIN, 0};
    if (::poll(&p, 1, static_cast<int>(left.count())) <= 0) break;
    const ssize_t n = ::read(read_end.get(), buffer, sizeof buffer);
    if (n <= 0) break;  // EOF: the probe exited
    run.stderr_text.append(buffer, static_cast<std::size_t>(n));
  }
  int status = 0;
  if (Clock::now() >= deadline) ::kill(pid, SIGKILL);
  ::waitpid(pid, &status, 0);
  run.exit_code = WIFEXITED(status) && Clock::now() < deadline ? WEXITSTATUS(status) : -1;
  return run;
}

TEST(HealthServerTest, BothServicesAreNotServingFromStart) {
  auto server = StartOnLoopback();
  ASSERT_NE(server, nullptr);
  auto stub = Client(server->port());
  for (const std::string& service : {std::string(), kService}) {
    const CheckResult r = Check(*stub, service);
    EXPECT_EQ(r.code, grpc::StatusCode::OK) << "service \"" << service << "\"";
    EXPECT_EQ(r.status, HealthCheckResponse::NOT_SERVING) << "service \"" << service << "\"";
  }
}

TEST(HealthServerTest, SetServingTurnsBothServicesServingAndBack) {
  auto server = StartOnLoopback();
  ASSERT_NE(server, nullptr);
  auto stub = Client(server->port());
  server->SetServing(true);
  for (const std::string& service : {std::string(), kService}) {
    EXPECT_EQ(Check(*stub, service).status, HealthCheckResponse::SERVING)
        << "service \"" << service << "\"";
  }
  server->SetServing(false);
  for (const std::string& service : {std::string(), kService}) {
    EXPECT_EQ(Check(*stub, service).status, HealthCheckResponse::NOT_SERVING)
        << "service \"" << service << "\"";
  }
}

TEST(HealthServerTest, UnknownServiceIsNotFound) {
  auto server = StartOnLoopback();
  ASSERT_NE(server, nullptr);
  server->SetServing(true);
  EXPECT_EQ(Check(*Client(server->port()), "no-such-service").code, grpc::StatusCode::NOT_FOUND);
}

TEST(HealthServerTest, OtherMethodsAreUnimplemented) {
  // As a gRPC server without them answers; kubelet reads UNIMPLEMENTED as "no health service".
  auto server = StartOnLoopback();
  ASSERT_NE(server, nullptr);
  grpc::ChannelArguments args;
  args.SetInt(GRPC_ARG_ENABLE_HTTP_PROXY, 0);
  grpc::GenericStub stub(grpc::CreateCustomChannel("127.0.0.1:" + std::to_string(server->port()),
                                                   grpc::InsecureChannelCredentials(), args));
  grpc::ClientContext context;
  context.set_deadline(Deadline());
  grpc::Slice empty("");
  const grpc::ByteBuffer request(&empty, 1);
  grpc::ByteBuffer response;
  std::promise<grpc::Status> done;
  stub.UnaryCall(&context, "/grpc.health.v1.Health/List", grpc::StubOptions(), &request, &response,
                 [&done](grpc::Status status) { done.set_value(std::move(status)); });
  EXPECT_EQ(done.get_future().get().error_code(), grpc::StatusCode::UNIMPLEMENTED);
}

TEST(HealthServerTest, ListensOnAllAddressesWhenAsked) {
  // The daemon's form, 0.0.0.0:<port>, reached here through loopback.
  auto server = HealthServer::Start("0.0.0.0:0");
  ASSERT_TRUE(server.has_value()) << server.error().ToString();
  (*server)->SetServing(true);
  EXPECT_EQ(Check(*Client((*server)->port()), kService).status, HealthCheckResponse::SERVING);
}

TEST(HealthServerTest, WatchStreamsEveryChange) {
  auto server = StartOnLoopback();
  ASSERT_NE(server, nullptr);
  auto stub = Client(server->port());
  grpc::ClientContext context;
  context.set_deadline(Deadline());
  HealthCheckRequest request;
  request.set_service(kService);
  auto reader = stub->Watch(&context, request);
  HealthCheckResponse response;
  ASSERT_TRUE(reader->Read(&response));
  EXPECT_EQ(response.status(), HealthCheckResponse::NOT_SERVING);
  server->SetServing(true);
  ASSERT_TRUE(reader->Read(&response));
  EXPECT_EQ(response.status(), HealthCheckResponse::SERVING);
  server->SetServing(false);
  ASSERT_TRUE(reader->Read(&response));
  EXPECT_EQ(response.status(), HealthCheckResponse::NOT_SERVING);
  context.TryCancel();
}

TEST(HealthServerTest, WatchOfUnknownServiceSaysServiceUnknown) {
  auto server = StartOnLoopback();
  ASSERT_NE(server, nullptr);
  auto stub = Client(server->port());
  grpc::ClientContext context;
  context.set_deadline(Deadline());
  HealthCheckRequest request;
  request.set_service("no-such-service");
  auto reader = stub->Watch(&context, request);
  HealthCheckResponse response;
  ASSERT_TRUE(reader->Read(&response));
  EXPECT_EQ(response.status(), HealthCheckResponse::SERVICE_UNKNOWN);
  context.TryCancel();
}

TEST(HealthServerTest, ShutdownWithAWatchOpenReturnsPromptlyAndEndsTheWatch) {
  auto server = StartOnLoopback();
  ASSERT_NE(server, nullptr);
  server->SetServing(true);
  auto stub = Client(server->port());
  grpc::ClientContext context;
  context.set_deadline(Deadline());
  HealthCheckRequest request;
  request.set_service(kService);
  auto reader = stub->Watch(&context, request);
  HealthCheckResponse response;
  ASSERT_TRUE(reader->Read(&response));
  ASSERT_EQ(response.status(), HealthCheckResponse::SERVING);

  const auto start = Clock::now();
  server->Shutdown();
  EXPECT_LT(Clock::now() - start, kHealthShutdownGrace + std::chrono::seconds(2));

  // The watcher is told NOT_SERVING (if the message made it out before the cancel), then the call
  // ends: well before the client's own deadline.
  while (reader->Read(&response)) EXPECT_EQ(response.status(), HealthCheckResponse::NOT_SERVING);
  const grpc::Status status = reader->Finish();
  EXPECT_FALSE(status.ok());
  EXPECT_NE(status.error_code(), grpc::StatusCode::DEADLINE_EXCEEDED) << status.error_message();
  EXPECT_LT(Clock::now() - start, std::chrono::seconds(4));
}

TEST(HealthServerTest, ShutdownIsIdempotentAndStopsListening) {
  auto server = StartOnLoopback();
  ASSERT_NE(server, nullptr);
  const int port = server->port();
  server->Shutdown();
  server->Shutdown();
  server->SetServing(true);  // ignored, no crash
  EXPECT_EQ(Check(*Client(port), kService).code, grpc::StatusCode::UNAVAILABLE);
  server.reset();  // the destructor's Shutdown() is a third call
}

TEST(HealthServerTest, PortHeldByAnotherSocketIsRefusedNamingPortAndFlag) {
  HeldPort held(/*listen=*/true);
  ASSERT_GT(held.port(), 0);
  auto server = HealthServer::Start("127.0.0.1:" + std::to_string(held.port()));
  ASSERT_FALSE(server.has_value());
  EXPECT_EQ(server.error().code, Code::kUnavailable) << server.error().ToString();
  const std::string& message = server.error().message;
  EXPECT_NE(message.find("port " + std::to_string(held.port()) + " is in use"), std::string::npos)
      << message;
  EXPECT_NE(message.find("-health-port"), std::string::npos) << message;
  EXPECT_NE(message.find("HEALTH_PORT"), std::string::npos) << message;
}

TEST(HealthServerTest, GrpcLogLinesGoThroughTheProcessLogger) {
  // The daemon may log JSON, one object per line: gRPC's own stderr lines would break that.
  pp::testing::LogCapture logs;
  HeldPort held(/*listen=*/true);
  ASSERT_GT(held.port(), 0);
  ASSERT_FALSE(HealthServer::Start("127.0.0.1:" + std::to_string(held.port())).has_value());
  EXPECT_GE(logs.Count("grpc: "), 1u);
}

TEST(HealthServerTest, SecondHealthServerOnTheSamePortIsRefused) {
  // gRPC would share the port through SO_REUSEPORT unless told not to.
  auto first = StartOnLoopback();
  ASSERT_NE(first, nullptr);
  auto second = HealthServer::Start("127.0.0.1:" + std::to_string(first->port()));
  ASSERT_FALSE(second.has_value());
  EXPECT_EQ(second.error().code, Code::kUnavailable) << second.error().ToString();
}

TEST(HealthServerTest, BadAddressesAreRefusedClearly) {
  auto empty = HealthServer::Start("");
  ASSERT_FALSE(empty.has_value());
  EXPECT_EQ(empty.error().code, Code::kInvalidArgument);

  auto bad_port = HealthServer::Start("127.0.0.1:notaport");
  ASSERT_FALSE(bad_port.has_value());
  EXPECT_EQ(bad_port.error().code, Code::kInvalidArgument) << bad_port.error().ToString();
  EXPECT_NE(bad_port.error().message.find("HEALTH_PORT"), std::string::npos);

  // 192.0.2.0/24 is TEST-NET-1 (RFC 5737): never an address of this host. Nothing is sent.
  auto elsewhere = HealthServer::Start("192.0.2.1:0");
  ASSERT_FALSE(elsewhere.has_value());
  EXPECT_EQ(elsewhere.error().code, Code::kInvalidArgument) << elsewhere.error().ToString();
}

// peerpods-health-probe keeps grpc-ecosystem/grpc-health-probe's exit codes (its main.go):
// 0 SERVING, 1 invalid arguments, 2 connection failure, 3 RPC failure, 4 not SERVING.

TEST(HealthProbeTest, ServingExitsZero) {
  auto server = StartOnLoopback();
  ASSERT_NE(server, nullptr);
  server->SetServing(true);
  const std::string addr = "127.0.0.1:" + std::to_string(server->port());
  for (const std::string& service : {std::string(), kService}) {
    const ProbeRun run = RunProbe({"-addr", addr, "-service", service, "-timeout", "5s"});
    EXPECT_EQ(run.exit_code, 0) << run.stderr_text;
    EXPECT_NE(run.stderr_text.find("status: SERVING"), std::string::npos) << run.stderr_text;
  }
}

TEST(HealthProbeTest, NotServingExitsFour) {
  auto server = StartOnLoopback();
  ASSERT_NE(server, nullptr);
  const ProbeRun run =
      RunProbe({"-addr=127.0.0.1:" + std::to_string(server->port()), "-timeout=5s"});
  EXPECT_EQ(run.exit_code, 4) << run.stderr_text;
  EXPECT_NE(run.stderr_text.find("NOT_SERVING"), std::string::npos) << run.stderr_text;
}

TEST(HealthProbeTest, UnknownServiceExitsThree) {
  auto server = StartOnLoopback();
  ASSERT_NE(server, nullptr);
  server->SetServing(true);
  const ProbeRun run = RunProbe(
      {"-addr", "127.0.0.1:" + std::to_string(server->port()), "-service", "no-such-service"});
  EXPECT_EQ(run.exit_code, 3) << run.stderr_text;
}

TEST(HealthProbeTest, NoServerExitsTwoWithinItsTimeout) {
  HeldPort closed(/*listen=*/false);  // bound, not listening: connections are refused
  ASSERT_GT(closed.port(), 0);
  const auto start = Clock::now();
  const ProbeRun run = RunProbe(
      {"-addr", "127.0.0.1:" + std::to_string(closed.port()), "-connect-timeout", "300ms"});
  EXPECT_EQ(run.exit_code, 2) << run.stderr_text;
  EXPECT_LT(Clock::now() - start, std::chrono::seconds(5));
}

TEST(HealthProbeTest, InvalidArgumentsExitOne) {
  EXPECT_EQ(RunProbe({}).exit_code, 1);                                          // no -addr
  EXPECT_EQ(RunProbe({"-addr", "127.0.0.1:1", "-timeout", "0s"}).exit_code, 1);  // zero timeout
  EXPECT_EQ(RunProbe({"-no-such-flag"}).exit_code, 1);
}

}  // namespace
}  // namespace pp::adaptor
