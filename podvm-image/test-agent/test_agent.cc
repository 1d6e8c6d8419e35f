// podvm-test-agent: a TEST AGENT that stands where the kata-agent stands in a production pod VM.
//
// It serves grpc.Health and a handful of grpc.AgentService calls on the kata-agent's unix socket,
// so that the test image can show the agent path (node -> agent-protocol-forwarder -> agent)
// working end to end where no real kata-agent runs. It runs no containers: the AgentService calls
// it knows get empty OK replies, every other method UNIMPLEMENTED (the server's answer for
// unregistered methods). Calls are logged by method only; payloads (container specs, arguments,
// environment, secrets) never reach the log.
//
// TEST ONLY, NO ISOLATION: ExecProcess runs process.Args directly in the VM, as root, in the
// agent's own namespaces, with process.Env as its whole environment (PATH searched as the agent's)
// and process.Cwd; stdin is /dev/null. It exists so that a test can run a program inside the pod
// VM the way an init container would run there, through the real agent path (shim -> adaptor
// proxy -> mTLS -> forwarder -> agent). WaitProcess answers the exit status once the process has
// exited (128 + the signal when a signal ended it, as a shell says). ReadStdout/ReadStderr return
// what the process wrote and nobody has read yet (at most 64 KiB is kept per stream; more is
// dropped and counted in the log), waiting while there is nothing and the stream is open, and an
// empty read once the process closed the stream and all was read: the end, as the kata-agent
// signals it. Processes are found by (container_id, exec_id); their records stay until the agent
// exits.
#include <fcntl.h>
#include <spawn.h>
#include <spdlog/spdlog.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <array>
#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstring>
#include <map>
#include <memory>
#include <string>
#include <utility>
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

// ---- TEST-ONLY process execution (see the top of this file)

constexpr std::size_t kStreamLimit = 64 * 1024;  // unread output kept per stream

struct OutputStream {
  std::string unread;
  std::size_t dropped = 0;
  bool closed = false;  // the process closed its end (or exited) and the pipe is drained
};

struct ExecProcess {
  explicit ExecProcess(const asio::any_io_executor& ex)
      : changed(ex, asio::steady_timer::time_point::max()) {}
  pid_t pid = -1;
  bool exited = false;
  int status = 0;
  OutputStream out, err;
  asio::steady_timer changed;  // cancelled whenever output arrives or the process exits

  void Notify() { changed.cancel(); }
  asio::awaitable<void> WaitForChange() {
    std::error_code ec;
    co_await changed.async_wait(asio::redirect_error(asio::use_awaitable, ec));
  }
};

class ProcessTable {
 public:
  explicit ProcessTable(asio::any_io_executor ex) : ex_(std::move(ex)) {}

  pp::Result<std::shared_ptr<ExecProcess>> Start(const grpc::ExecProcessRequest& req) {
    const auto key = Key(req.container_id(), req.exec_id());
    if (req.exec_id().empty()) return pp::Fail(pp::Code::kInvalidArgument, "exec_id is empty");
    if (!req.has_process() || req.process().args().empty()) {
      return pp::Fail(pp::Code::kInvalidArgument, "process.Args is empty");
    }
    if (processes_.contains(key)) return pp::Fail(pp::Code::kAlreadyExists, "exec_id already used");
    std::array<int, 2> out{-1, -1}, err{-1, -1};
    if (::pipe2(out.data(), O_CLOEXEC) != 0)
      return pp::Fail(pp::Code::kInternal, "pipe2: ", std::strerror(errno));
    if (::pipe2(err.data(), O_CLOEXEC) != 0) {
      const int e = errno;
      ::close(out[0]);
      ::close(out[1]);
      return pp::Fail(pp::Code::kInternal, "pipe2: ", std::strerror(e));
    }
    const auto& process = req.process();
    std::vector<std::string> args(process.args().begin(), process.args().end());
    std::vector<std::string> env(process.env().begin(), process.env().end());
    if (env.empty()) env.emplace_back("PATH=/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin");
    std::vector<char*> argv, envp;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    for (auto& e : env) envp.push_back(e.data());
    envp.push_back(nullptr);

    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_adddup2(&actions, out[1], 1);
    posix_spawn_file_actions_adddup2(&actions, err[1], 2);
    if (!process.cwd().empty())
      posix_spawn_file_actions_addchdir_np(&actions, process.cwd().c_str());
    pid_t pid = -1;
    const int spawned = ::posix_spawnp(&pid, argv[0], &actions, nullptr, argv.data(), envp.data());
    posix_spawn_file_actions_destroy(&actions);
    ::close(out[1]);
    ::close(err[1]);
    if (spawned != 0) {
      ::close(out[0]);
      ::close(err[0]);
      // The program's name only: arguments may carry secrets.
      return pp::Fail(pp::Code::kInvalidArgument, "cannot run ", args[0], ": ",
                      std::strerror(spawned));
    }
    const int pidfd = static_cast<int>(::syscall(SYS_pidfd_open, pid, 0));
    if (pidfd < 0) {
      const int e = errno;
      ::kill(pid, SIGKILL);
      ::waitpid(pid, nullptr, 0);
      ::close(out[0]);
      ::close(err[0]);
      return pp::Fail(pp::Code::kInternal, "pidfd_open: ", std::strerror(e));
    }
    auto p = std::make_shared<ExecProcess>(ex_);
    p->pid = pid;
    processes_[key] = p;
    asio::co_spawn(ex_, Drain(p, &ExecProcess::out, asio::posix::stream_descriptor(ex_, out[0])),
                   asio::detached);
    asio::co_spawn(ex_, Drain(p, &ExecProcess::err, asio::posix::stream_descriptor(ex_, err[0])),
                   asio::detached);
    asio::co_spawn(ex_, Reap(p, asio::posix::stream_descriptor(ex_, pidfd)), asio::detached);
    return p;
  }

  pp::Result<std::shared_ptr<ExecProcess>> Find(const std::string& container_id,
                                                const std::string& exec_id) const {
    auto it = processes_.find(Key(container_id, exec_id));
    if (it == processes_.end()) return pp::Fail(pp::Code::kNotFound, "no such process (exec_id)");
    return it->second;
  }

 private:
  static std::string Key(const std::string& container_id, const std::string& exec_id) {
    return container_id + '\0' + exec_id;
  }

  // Reads one of the process's pipes until EOF, keeping at most kStreamLimit unread bytes.
  static asio::awaitable<void> Drain(std::shared_ptr<ExecProcess> p,
                                     OutputStream ExecProcess::*which,
                                     asio::posix::stream_descriptor pipe) {
    std::array<char, 16384> buf;
    OutputStream& stream = (*p).*which;
    for (;;) {
      std::error_code ec;
      const std::size_t n = co_await pipe.async_read_some(
          asio::buffer(buf), asio::redirect_error(asio::use_awaitable, ec));
      const std::size_t room = kStreamLimit - std::min(kStreamLimit, stream.unread.size());
      stream.unread.append(buf.data(), std::min(n, room));
      stream.dropped += n - std::min(n, room);
      if (ec) break;
      if (n > 0) p->Notify();
    }
    if (stream.dropped > 0) {
      spdlog::warn(
          "test agent: pid {} wrote {} bytes more than the {} kept unread on one stream; dropped",
          p->pid, stream.dropped, kStreamLimit);
    }
    stream.closed = true;
    p->Notify();
  }

  // Waits for the process's exit on its pidfd (readable once it exited), then reaps it.
  static asio::awaitable<void> Reap(std::shared_ptr<ExecProcess> p,
                                    asio::posix::stream_descriptor pidfd) {
    std::error_code ec;
    co_await pidfd.async_wait(asio::posix::stream_descriptor::wait_read,
                              asio::redirect_error(asio::use_awaitable, ec));
    int status = 0;
    while (::waitpid(p->pid, &status, 0) < 0 && errno == EINTR) {
    }
    p->status = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    p->exited = true;
    spdlog::info("test agent: TEST-ONLY process pid {} exited with status {}", p->pid, p->status);
    p->Notify();
  }

  asio::any_io_executor ex_;
  std::map<std::string, std::shared_ptr<ExecProcess>> processes_;
};

asio::awaitable<pp::Result<grpc::ReadStreamResponse>> ReadStream(ProcessTable& table,
                                                                 const grpc::ReadStreamRequest& req,
                                                                 OutputStream ExecProcess::*which) {
  auto p = table.Find(req.container_id(), req.exec_id());
  if (!p) co_return std::unexpected(p.error());
  auto process = *p;  // keeps the record alive across the waits
  OutputStream& stream = (*process).*which;
  while (stream.unread.empty() && !stream.closed) co_await process->WaitForChange();
  grpc::ReadStreamResponse resp;
  const std::size_t n = req.len() == 0 ? stream.unread.size()
                                       : std::min<std::size_t>(req.len(), stream.unread.size());
  resp.set_data(stream.unread.substr(0, n));
  stream.unread.erase(0, n);
  co_return resp;
}

void RegisterTestOnlyExec(pp::ttrpc::Server& server, const std::shared_ptr<ProcessTable>& table) {
  using pp::ttrpc::CallContext;
  server.Register(
      kAgentService, "ExecProcess",
      pp::ttrpc::Unary<grpc::ExecProcessRequest, google::protobuf::Empty>(
          [table](CallContext& ctx, grpc::ExecProcessRequest req)
              -> asio::awaitable<pp::Result<google::protobuf::Empty>> {
            auto p = table->Start(req);
            if (!p) {
              spdlog::warn("test agent: {}/{}: {}", ctx.service, ctx.method, p.error().ToString());
              co_return std::unexpected(p.error());
            }
            spdlog::warn(
                "test agent: {}/{}: TEST ONLY, started pid {} directly in the VM, no isolation",
                ctx.service, ctx.method, (*p)->pid);
            co_return google::protobuf::Empty{};
          }));
  server.Register(kAgentService, "WaitProcess",
                  pp::ttrpc::Unary<grpc::WaitProcessRequest, grpc::WaitProcessResponse>(
                      [table](CallContext& ctx, grpc::WaitProcessRequest req)
                          -> asio::awaitable<pp::Result<grpc::WaitProcessResponse>> {
                        spdlog::info("test agent: {}/{}", ctx.service, ctx.method);
                        auto p = table->Find(req.container_id(), req.exec_id());
                        if (!p) co_return std::unexpected(p.error());
                        auto process = *p;
                        while (!process->exited) co_await process->WaitForChange();
                        grpc::WaitProcessResponse resp;
                        resp.set_status(process->status);
                        co_return resp;
                      }));
  server.Register(kAgentService, "ReadStdout",
                  pp::ttrpc::Unary<grpc::ReadStreamRequest, grpc::ReadStreamResponse>(
                      [table](CallContext& ctx, grpc::ReadStreamRequest req)
                          -> asio::awaitable<pp::Result<grpc::ReadStreamResponse>> {
                        spdlog::debug("test agent: {}/{}", ctx.service, ctx.method);
                        co_return co_await ReadStream(*table, req, &ExecProcess::out);
                      }));
  server.Register(kAgentService, "ReadStderr",
                  pp::ttrpc::Unary<grpc::ReadStreamRequest, grpc::ReadStreamResponse>(
                      [table](CallContext& ctx, grpc::ReadStreamRequest req)
                          -> asio::awaitable<pp::Result<grpc::ReadStreamResponse>> {
                        spdlog::debug("test agent: {}/{}", ctx.service, ctx.method);
                        co_return co_await ReadStream(*table, req, &ExecProcess::err);
                      }));
}

void RegisterTestAgent(pp::ttrpc::Server& server, const std::shared_ptr<ProcessTable>& table) {
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
  RegisterTestOnlyExec(server, table);
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{
      "podvm-test-agent: a TEST AGENT for the test pod VM image, standing where the kata-agent "
      "stands in production. Answers grpc.Health and empty OK replies to CreateSandbox, "
      "DestroySandbox, GetGuestDetails, CreateContainer, StartContainer and RemoveContainer; "
      "runs no containers; TEST ONLY: ExecProcess runs process.Args directly in the VM with no "
      "isolation (WaitProcess, ReadStdout, ReadStderr follow it); every other method is "
      "UNIMPLEMENTED."};
  std::string socket = "/run/kata-containers/agent.sock";
  app.add_option("--socket", socket, "unix socket to serve ttrpc on (parent dirs are created)")
      ->capture_default_str();
  if (const int exit = pp::ParseGoCommandLine(app, argc, argv); exit >= 0) return exit;

  asio::io_context io(1);
  pp::ttrpc::Server server(io.get_executor(), {.single_threaded = true});
  auto table = std::make_shared<ProcessTable>(io.get_executor());
  RegisterTestAgent(server, table);
  if (auto listening = server.ListenUnix(socket, 0600); !listening) {
    spdlog::error("test agent: {}", listening.error().ToString());
    return 1;
  }
  spdlog::warn(
      "TEST AGENT {} serving on {}: this is not a kata-agent and runs no containers; its "
      "ExecProcess runs programs directly in the VM with NO ISOLATION (tests only)",
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
