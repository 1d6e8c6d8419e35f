#include "adaptor/health_service.h"

#include <grpc/grpc.h>
#include <grpc/support/log.h>
#include <grpcpp/generic/async_generic_service.h>
#include <grpcpp/grpcpp.h>
#include <grpcpp/health_check_service_interface.h>
#include <netdb.h>
#include <spdlog/spdlog.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <mutex>
#include <utility>

#include "common/base/handle.h"

namespace pp::adaptor {
namespace {

constexpr std::string_view kFlagHint = "set another port with -health-port / HEALTH_PORT";

// gRPC writes its own log lines ("E1201 12:00:00.000 chttp2_server.cc:1045] ...") straight to
// stderr, which would break the daemon's JSON log format (one object per line); route them through
// the process's logger instead. gRPC's own verbosity (GRPC_VERBOSITY, default ERROR) still decides
// which lines are made at all.
void ForwardGrpcLog(gpr_log_func_args* args) {
  const spdlog::level::level_enum level =
      args->severity == GPR_LOG_SEVERITY_ERROR  ? spdlog::level::err
      : args->severity == GPR_LOG_SEVERITY_INFO ? spdlog::level::info
                                                : spdlog::level::debug;
  spdlog::log(level, "grpc: {}", args->message != nullptr ? args->message : "");
}

// gRPC's BuildAndStart says only that it failed (its reason goes to gRPC's log), so when it does we
// bind the same address ourselves, once, to learn why and tell the operator. The port is free again
// before we return.
Error ExplainListenFailure(const std::string& address) {
  const auto colon = address.rfind(':');
  if (colon == std::string::npos || colon + 1 == address.size()) {
    return Error{Code::kInvalidArgument,
                 "health: address \"" + address + "\" is not host:port; " + std::string(kFlagHint)};
  }
  std::string host = address.substr(0, colon);
  const std::string port = address.substr(colon + 1);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']')
    host = host.substr(1, host.size() - 2);

  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
  addrinfo* list = nullptr;
  if (int rc = ::getaddrinfo(host.empty() ? nullptr : host.c_str(), port.c_str(), &hints, &list);
      rc != 0) {
    return Error{Code::kInvalidArgument, "health: cannot listen on " + address + ": " +
                                             ::gai_strerror(rc) + "; " + std::string(kFlagHint)};
  }
  const CHandle<addrinfo, ::freeaddrinfo> found(list);
  int bind_errno = 0;
  for (addrinfo* ai = found.get(); ai != nullptr && bind_errno == 0; ai = ai->ai_next) {
    ScopedFd fd(::socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, ai->ai_protocol));
    if (!fd) continue;
    if (::bind(fd.get(), ai->ai_addr, ai->ai_addrlen) != 0) bind_errno = errno;
  }

  const std::string where = " (gRPC health checks on " + address + "); ";
  switch (bind_errno) {
    case EADDRINUSE:
      return Error{Code::kUnavailable, "health: port " + port + " is in use" + where +
                                           "free it or " + std::string(kFlagHint)};
    case EACCES:
    case EPERM:
      return Error{Code::kPermissionDenied, "health: not allowed to listen on port " + port +
                                                where + std::string(kFlagHint)};
    case EADDRNOTAVAIL:
      return Error{Code::kInvalidArgument, "health: " + host + " is not an address of this host" +
                                               where + std::string(kFlagHint)};
    case 0:
      return Error{Code::kInternal, "health: gRPC could not listen on " + address +
                                        " (its log says why); " + std::string(kFlagHint)};
    default:
      return Error{Code::kInternal, "health: cannot listen on port " + port + ": " +
                                        std::strerror(bind_errno) + where + std::string(kFlagHint)};
  }
}

}  // namespace

Result<std::unique_ptr<HealthServer>> HealthServer::Start(std::string address) {
  if (address.empty())
    return Fail(Code::kInvalidArgument, "health: empty listen address; ", kFlagHint);

  static std::once_flag log_forwarded;
  std::call_once(log_forwarded, [] { gpr_set_log_function(ForwardGrpcLog); });
  grpc::EnableDefaultHealthCheckService(true);
  auto unknown_methods = std::make_unique<grpc::CallbackGenericService>();
  grpc::ServerBuilder builder;
  builder.RegisterCallbackGenericService(unknown_methods.get());
  // gRPC sets SO_REUSEPORT by default, which would let a second daemon (or anything else with the
  // option) share the port and split kubelet's probes between two processes.
  builder.AddChannelArgument(GRPC_ARG_ALLOW_REUSEPORT, 0);
  int port = 0;
  builder.AddListeningPort(address, grpc::InsecureServerCredentials(), &port);
  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  if (!server || port == 0) {
    if (server) server->Shutdown(std::chrono::system_clock::now());
    return std::unexpected(ExplainListenFailure(address));
  }

  grpc::HealthCheckServiceInterface* health = server->GetHealthCheckService();
  if (health == nullptr) {
    server->Shutdown(std::chrono::system_clock::now());
    return Fail(Code::kInternal, "health: gRPC started without its default health service");
  }
  // gRPC registers "" as SERVING; the daemon is not ready yet.
  health->SetServingStatus("", false);
  health->SetServingStatus(std::string(kHealthServiceName), false);
  return std::unique_ptr<HealthServer>(
      new HealthServer(std::move(unknown_methods), std::move(server), port));
}

HealthServer::HealthServer(std::unique_ptr<grpc::CallbackGenericService> unknown_methods,
                           std::unique_ptr<grpc::Server> server, int port)
    : unknown_methods_(std::move(unknown_methods)), server_(std::move(server)), port_(port) {}

HealthServer::~HealthServer() { Shutdown(); }

void HealthServer::SetServing(bool serving) {
  std::lock_guard lock(mu_);
  if (!server_) return;
  grpc::HealthCheckServiceInterface* health = server_->GetHealthCheckService();
  health->SetServingStatus("", serving);
  health->SetServingStatus(std::string(kHealthServiceName), serving);
}

void HealthServer::Shutdown() {
  std::lock_guard lock(mu_);
  if (!server_) return;
  // NOT_SERVING to every watcher first, and no later SetServingStatus can undo it.
  server_->GetHealthCheckService()->Shutdown();
  server_->Shutdown(std::chrono::system_clock::now() + kHealthShutdownGrace);
  server_.reset();
}

}  // namespace pp::adaptor
