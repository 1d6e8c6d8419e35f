// peerpodctl: the operator's view of the adaptor. It speaks to hypervisor.sock exactly as the kata
// shim does (one connection per call: CreateVM, StartVM, StopVM) and to a pod's agent.ttrpc as the
// shim does (grpc.Health), and reads the adaptor's sandbox records for `list`.
//
//   peerpodctl run                      create, start, check the agent, stop, with timings
//   peerpodctl create ID [--pod P] ...  CreateVM; prints the agent socket
//   peerpodctl start ID                 StartVM (boots the pod VM; returns when its agent answers)
//   peerpodctl check ID                 grpc.Health/Check and Version through the agent socket
//   peerpodctl stop ID                  StopVM
//   peerpodctl list                     the sandboxes the adaptor keeps
//   peerpodctl pools                    the warm pool VMs the adaptor keeps, by pool
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iomanip>
#include <iostream>
#include <map>
#include <tuple>
#include <algorithm>
#include <random>
#include <sstream>

#include "adaptor/sandbox_request.h"
#include "adaptor/sandbox_store.h"
#include "adaptor/warm_pool.h"
#include "agent/health.pb.h"
#include "common/base/asio.h"
#include "common/base/go_flags.h"
#include "common/ttrpc/client.h"
#include "hypervisor.pb.h"

namespace {

using Clock = std::chrono::steady_clock;
using pp::Result;

struct Options {
  std::string socket = "/run/peerpod/hypervisor.sock";
  std::string pods_dir = "/run/peerpod/pods";
  std::string pool_dir;  // default: "pool" beside pods_dir, as the adaptor's
  std::string id;
  std::string pod = "peerpodctl";
  std::string pod_namespace = "default";
  std::string machine_type;
  std::string image;
  unsigned vcpus = 0;
  unsigned memory_mib = 0;
  std::string initdata_file;
  std::string timeout = "10m";
  bool keep = false;
};

double Seconds(Clock::duration d) { return std::chrono::duration<double>(d).count(); }

std::string RandomId() {
  std::random_device rd;
  std::ostringstream out;
  for (int i = 0; i < 8; ++i) out << std::hex << std::setw(8) << std::setfill('0') << rd();
  return out.str();
}

// One call on a fresh connection, as the Go shim makes its hypervisor calls.
template <typename Response, typename Request>
asio::awaitable<Result<Response>> CallOnce(std::string socket, std::string service, std::string method,
                                           Request request, std::chrono::nanoseconds timeout) {
  auto stream = co_await pp::ttrpc::ConnectUnix(co_await asio::this_coro::executor, socket);
  if (!stream) co_return std::unexpected(stream.error());
  auto client = pp::ttrpc::Client::Create(std::move(*stream));
  auto response = co_await client->template Call<Response>(std::move(service), std::move(method), std::move(request),
                                                  pp::ttrpc::CallOptions{timeout, {}});
  client->Close();
  co_return response;
}

class Ctl {
 public:
  explicit Ctl(Options o) : o_(std::move(o)) {}

  asio::awaitable<Result<std::string>> Create() {
    hypervisor::CreateVMRequest req;
    req.set_id(o_.id);
    auto& a = *req.mutable_annotations();
    a[std::string(pp::adaptor::kAnnotationPodName)] = o_.pod;
    a[std::string(pp::adaptor::kAnnotationPodNamespace)] = o_.pod_namespace;
    a[std::string(pp::adaptor::kAnnotationMachineType)] = o_.machine_type;
    a[std::string(pp::adaptor::kAnnotationImage)] = o_.image;
    a[std::string(pp::adaptor::kAnnotationVcpus)] = o_.vcpus ? std::to_string(o_.vcpus) : "";
    a[std::string(pp::adaptor::kAnnotationMemory)] = o_.memory_mib ? std::to_string(o_.memory_mib) : "";
    a[std::string(pp::adaptor::kAnnotationGpus)] = "0";
    a[std::string(pp::adaptor::kAnnotationGpuModel)] = "";
    std::string initdata;
    if (!o_.initdata_file.empty()) {
      std::ifstream in(o_.initdata_file, std::ios::binary);
      if (!in) co_return pp::Fail(pp::Code::kNotFound, "cannot read ", o_.initdata_file);
      initdata.assign(std::istreambuf_iterator<char>(in), {});
    }
    a[std::string(pp::adaptor::kAnnotationInitdata)] = initdata;
    auto resp = co_await CallOnce<hypervisor::CreateVMResponse>(o_.socket, "hypervisor.Hypervisor", "CreateVM",
                                                                std::move(req), std::chrono::seconds(60));
    if (!resp) co_return std::unexpected(resp.error());
    co_return resp->agentsocketpath();
  }

  asio::awaitable<Result<void>> Start() {
    auto timeout = pp::ParseGoDuration(o_.timeout);
    if (!timeout) co_return std::unexpected(timeout.error());
    hypervisor::StartVMRequest req;
    req.set_id(o_.id);
    auto resp = co_await CallOnce<hypervisor::StartVMResponse>(o_.socket, "hypervisor.Hypervisor", "StartVM",
                                                               std::move(req), *timeout);
    if (!resp) co_return std::unexpected(resp.error());
    co_return Result<void>{};
  }

  asio::awaitable<Result<void>> Stop() {
    hypervisor::StopVMRequest req;
    req.set_id(o_.id);
    auto resp = co_await CallOnce<hypervisor::StopVMResponse>(o_.socket, "hypervisor.Hypervisor", "StopVM",
                                                              std::move(req), std::chrono::minutes(5));
    if (!resp) co_return std::unexpected(resp.error());
    co_return Result<void>{};
  }

  // hypervisor.Hypervisor/Version: is an adaptor answering on the socket?
  asio::awaitable<Result<void>> Ping() {
    auto resp = co_await CallOnce<hypervisor::VersionResponse>(o_.socket, "hypervisor.Hypervisor", "Version",
                                                               hypervisor::VersionRequest{}, std::chrono::seconds(5));
    if (!resp) co_return std::unexpected(resp.error());
    co_return Result<void>{};
  }

  // Health/Check and Health/Version on one agent connection, as the shim checks a new sandbox.
  asio::awaitable<Result<std::string>> Check(std::string agent_socket) {
    auto stream = co_await pp::ttrpc::ConnectUnix(co_await asio::this_coro::executor, agent_socket);
    if (!stream) co_return std::unexpected(stream.error());
    auto client = pp::ttrpc::Client::Create(std::move(*stream));
    const pp::ttrpc::CallOptions opts{std::chrono::seconds(30), {}};
    auto health = co_await client->Call<grpc::HealthCheckResponse>("grpc.Health", "Check", grpc::CheckRequest{}, opts);
    if (!health) {
      client->Close();
      co_return std::unexpected(health.error());
    }
    // No co_await inside a conditional expression: GCC 12 miscompiles it.
    auto version = co_await client->Call<grpc::VersionCheckResponse>("grpc.Health", "Version", grpc::CheckRequest{}, opts);
    client->Close();
    if (health->status() != grpc::HealthCheckResponse::SERVING) {
      co_return pp::Fail(pp::Code::kUnavailable, "the agent answered ",
                         grpc::HealthCheckResponse::ServingStatus_Name(health->status()));
    }
    if (!version) co_return std::unexpected(version.error());
    co_return "SERVING, agent " + version->agent_version();
  }

  std::string AgentSocket() const { return pp::adaptor::SandboxStore(o_.pods_dir).AgentSocketPath(o_.id); }
  const Options& options() const { return o_; }

 private:
  Options o_;
};

// Prints "... booting (N s)" every 5 s while a long step runs; ends when the timer is cancelled.
// `done` is checked too: a wait that completed just before cancel() would otherwise re-arm forever.
asio::awaitable<void> Ticker(std::shared_ptr<asio::steady_timer> timer, std::shared_ptr<bool> done, std::string what,
                            Clock::time_point started) {
  while (!*done) {
    timer->expires_after(std::chrono::seconds(5));
    auto [ec] = co_await timer->async_wait(pp::kAwaitTuple);
    if (ec || *done) co_return;
    std::printf("    ... %s (%.0f s)\n", what.c_str(), Seconds(Clock::now() - started));
    std::fflush(stdout);
  }
}

const char* StateName(pp::adaptor::SandboxState state) {
  switch (state) {
    case pp::adaptor::SandboxState::kCreated: return "created";
    case pp::adaptor::SandboxState::kStarting: return "starting";
    case pp::adaptor::SandboxState::kRunning: return "running";
  }
  return "?";
}

int Report(const char* step, const Result<void>& result, Clock::time_point started, const std::string& extra = {}) {
  const double s = Seconds(Clock::now() - started);
  if (!result) {
    std::printf("  FAIL %-9s %7.3f s  %s\n", step, s, result.error().ToString().c_str());
    return 1;
  }
  std::printf("  ok   %-9s %7.3f s  %s\n", step, s, extra.c_str());
  std::fflush(stdout);
  return 0;
}

asio::awaitable<int> Run(Ctl& ctl) {
  const auto& o = ctl.options();
  std::printf("peerpodctl: sandbox %s (pod %s/%s) through %s\n", o.id.c_str(), o.pod_namespace.c_str(), o.pod.c_str(),
              o.socket.c_str());
  const auto total = Clock::now();

  auto t = Clock::now();
  auto path = co_await ctl.Create();
  if (Report("CreateVM", path ? Result<void>{} : std::unexpected(path.error()), t, path ? *path : "")) co_return 1;

  t = Clock::now();
  std::printf("  ...  StartVM: creating the pod VM and waiting for its agent\n");
  std::fflush(stdout);
  auto timer = std::make_shared<asio::steady_timer>(co_await asio::this_coro::executor);
  auto done = std::make_shared<bool>(false);
  auto ticker = Ticker(timer, done, "booting", t);
  asio::co_spawn(co_await asio::this_coro::executor, std::move(ticker), asio::detached);
  auto started = co_await ctl.Start();
  *done = true;
  timer->cancel();
  int rc = Report("StartVM", started, t, "pod VM up, agent answered through the forwarder (mTLS)");
  const double boot = Seconds(Clock::now() - t);

  if (started) {
    t = Clock::now();
    auto check = co_await ctl.Check(*path);
    rc |= Report("Health", check ? Result<void>{} : std::unexpected(check.error()), t, check ? *check : "");
  }
  if (o.keep) {
    std::printf("peerpodctl: %s; stop it with: peerpodctl stop %s\n",
                rc == 0 ? "kept" : "kept as it failed, to look at", o.id.c_str());
    co_return rc;
  }
  t = Clock::now();
  // A StartVM that failed deleted its VM already: StopVM then only forgets the sandbox.
  rc |= Report("StopVM", co_await ctl.Stop(), t,
               started ? "pod VM and its volumes deleted" : "sandbox removed (the failed StartVM left no VM)");
  if (rc == 0) {
    std::printf("peerpodctl: PASS in %.1f s (boot to agent answer %.1f s)\n", Seconds(Clock::now() - total), boot);
  } else {
    std::printf("peerpodctl: FAIL after %.1f s\n", Seconds(Clock::now() - total));
  }
  co_return rc;
}

// Ctrl-C during `run`: the sandbox is stopped (StopVM also makes a StartVM in progress give up),
// so an interrupted demo leaves no VM behind.
asio::awaitable<void> StopAfterSignal(Ctl& ctl) { (void)co_await ctl.Stop(); }

// The records are the adaptor's; a pods dir that does not exist, or an adaptor that does not answer
// on --socket, most likely means the wrong flags: say so rather than show an empty table.
int List(Ctl& ctl, const Options& o) {
  std::error_code ec;
  if (!std::filesystem::is_directory(o.pods_dir, ec)) {
    std::fprintf(stderr, "peerpodctl: pods dir %s does not exist; give the adaptor's --pods-dir (PODS_DIR)\n",
                 o.pods_dir.c_str());
    return 1;
  }
  asio::io_context io;
  Result<void> reachable = std::unexpected(pp::Error{});
  asio::co_spawn(io, [&]() -> asio::awaitable<void> { reachable = co_await ctl.Ping(); }, asio::detached);
  io.run();
  if (!reachable) {
    std::fprintf(stderr, "peerpodctl: warning: no adaptor answers on %s (%s); these are the records in %s\n",
                 o.socket.c_str(), reachable.error().message.c_str(), o.pods_dir.c_str());
  }
  std::vector<pp::adaptor::UnreadableRecord> unreadable;
  const auto records = pp::adaptor::SandboxStore(o.pods_dir).LoadAll(&unreadable);
  for (const auto& u : unreadable) {
    std::fprintf(stderr, "peerpodctl: warning: sandbox %s has an unreadable record: %s\n", u.id.c_str(),
                 u.reason.c_str());
  }
  std::printf("%-20s %-28s %-9s %-38s %-15s %-18s %s\n", "SANDBOX", "POD", "STATE", "INSTANCE", "IP", "POD IP",
              "TUNNEL");
  for (const auto& r : records) {
    std::string id = r.request.id.substr(0, 20);
    std::string pod = r.request.pod_namespace + "/" + r.request.pod_name;
    // The pod network: the pod's address (which the VM answers for) and the tunnel's VNI and state.
    std::string pod_ip = "-", tunnel = "-";
    if (r.network) {
      pod_ip = r.network->pod_ip;
      const char* state = r.tunnel == pp::adaptor::TunnelState::kUp          ? "up"
                          : r.tunnel == pp::adaptor::TunnelState::kSettingUp ? "setting-up"
                                                                             : "down";
      tunnel = "vni " + std::to_string(r.network->vxlan_id) + " " + state;
    }
    std::printf("%-20s %-28s %-9s %-38s %-15s %-18s %s\n", id.c_str(), pod.c_str(), StateName(r.state),
                r.instance_id.c_str(), r.ips.empty() ? "-" : r.ips.front().c_str(), pod_ip.c_str(), tunnel.c_str());
  }
  return 0;
}

// The pool VM records, grouped by pool: what is ready for a claim and what is still booting. The
// sizes configured are the adaptor's (its -warm-pools flags); a record is one VM that exists or is
// being made.
int Pools(const Options& o) {
  const std::string dir = o.pool_dir.empty()
                              ? (std::filesystem::path(o.pods_dir).lexically_normal().parent_path() / "pool").string()
                              : o.pool_dir;
  std::error_code ec;
  if (!std::filesystem::is_directory(dir, ec)) {
    std::printf("no warm pool VMs: %s does not exist (the adaptor has no -warm-pool-size / -warm-pools, or "
                "give its --warm-pool-dir)\n", dir.c_str());
    return 0;
  }
  auto vms = pp::adaptor::LoadPoolVms(dir);
  std::sort(vms.begin(), vms.end(), [](const auto& a, const auto& b) {
    return std::tie(a.pool, a.state, a.name) < std::tie(b.pool, b.state, b.name);
  });
  std::map<std::string, std::pair<unsigned, unsigned>> counts;  // pool -> ready, booting
  for (const auto& vm : vms) {
    auto& [ready, booting] = counts[vm.pool];
    (vm.state == pp::adaptor::PoolVmState::kReady ? ready : booting) += 1;
  }
  for (const auto& [pool, c] : counts) std::printf("pool %s: %u ready, %u booting\n", pool.c_str(), c.first, c.second);
  std::printf("%-12s %-36s %-8s %-38s %-15s %-8s %s\n", "POOL", "VM", "STATE", "INSTANCE", "IP", "AGE", "SHAPE");
  const auto now = std::chrono::duration_cast<std::chrono::seconds>(
                       std::chrono::system_clock::now().time_since_epoch()).count();
  for (const auto& vm : vms) {
    const std::string age = std::to_string(std::max<long long>(0, now - vm.created_unix)) + "s";
    std::printf("%-12s %-36s %-8s %-38s %-15s %-8s %s\n", vm.pool.c_str(), vm.name.c_str(),
                vm.state == pp::adaptor::PoolVmState::kReady ? "ready" : "booting",
                vm.instance_id.empty() ? "-" : vm.instance_id.c_str(), vm.ips.empty() ? "-" : vm.ips.front().c_str(),
                age.c_str(), vm.shape.Describe().c_str());
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  Options o;
  CLI::App app{"peerpodctl: drive the peer-pods adaptor as the kata shim does", "peerpodctl"};
  app.add_option("--socket", o.socket, "the adaptor's hypervisor socket")
      ->envname("REMOTE_HYPERVISOR_ENDPOINT")
      ->capture_default_str();
  app.add_option("--pods-dir", o.pods_dir, "the adaptor's pods dir (agent sockets, records)")
      ->envname("PODS_DIR")
      ->capture_default_str();
  auto sandbox_flags = [&](CLI::App* sub) {
    sub->add_option("--pod", o.pod, "pod name")->capture_default_str();
    sub->add_option("--namespace", o.pod_namespace, "pod namespace")->capture_default_str();
    sub->add_option("--machine-type", o.machine_type, "machine_type annotation (libvirt: none, sev-snp, tdx)");
    sub->add_option("--image", o.image, "image annotation (libvirt: base volume)");
    sub->add_option("--vcpus", o.vcpus, "default_vcpus annotation");
    sub->add_option("--memory", o.memory_mib, "default_memory annotation (MiB)");
    sub->add_option("--initdata-file", o.initdata_file, "initdata TOML for the cc_init_data annotation");
  };
  auto* run = app.add_subcommand("run", "create, start, check the agent and stop one sandbox, with timings");
  sandbox_flags(run);
  run->add_option("--id", o.id, "sandbox id (default: random)");
  run->add_option("--timeout", o.timeout, "StartVM deadline (Go duration)")->capture_default_str();
  run->add_flag("--keep", o.keep, "leave the sandbox running");
  auto* create = app.add_subcommand("create", "CreateVM");
  sandbox_flags(create);
  create->add_option("id", o.id, "sandbox id")->required();
  auto* start = app.add_subcommand("start", "StartVM");
  start->add_option("id", o.id, "sandbox id")->required();
  start->add_option("--timeout", o.timeout, "deadline (Go duration)")->capture_default_str();
  auto* check = app.add_subcommand("check", "grpc.Health through the sandbox's agent socket");
  check->add_option("id", o.id, "sandbox id")->required();
  auto* stop = app.add_subcommand("stop", "StopVM");
  stop->add_option("id", o.id, "sandbox id")->required();
  auto* list = app.add_subcommand("list", "sandboxes the adaptor keeps");
  auto* pools = app.add_subcommand("pools", "warm pool VMs the adaptor keeps");
  pools->add_option("--warm-pool-dir", o.pool_dir, "the adaptor's pool dir (default: pool beside the pods dir)")
      ->envname("WARM_POOL_DIR");
  app.require_subcommand(1);
  if (const int exit = pp::ParseGoCommandLine(app, argc, argv); exit >= 0) return exit;

  if (pools->parsed()) return Pools(o);
  if (o.id.empty() && !list->parsed()) o.id = RandomId();
  Ctl ctl(o);
  if (list->parsed()) return List(ctl, o);
  if (check->parsed() && !std::filesystem::exists(ctl.AgentSocket())) {
    // No agent socket: say why in the adaptor's terms rather than with a raw ENOENT.
    std::vector<pp::adaptor::UnreadableRecord> unreadable;
    for (const auto& r : pp::adaptor::SandboxStore(o.pods_dir).LoadAll(&unreadable)) {
      if (r.request.id != o.id) continue;
      std::fprintf(stderr, "peerpodctl: sandbox %s is %s, not started: its agent socket appears with StartVM "
                   "(peerpodctl start %s)\n", o.id.c_str(), StateName(r.state), o.id.c_str());
      return 1;
    }
    std::fprintf(stderr, "peerpodctl: no sandbox %s in %s\n", o.id.c_str(), o.pods_dir.c_str());
    return 1;
  }
  asio::io_context io;
  int rc = 1;
  asio::signal_set signals(io, SIGINT, SIGTERM);
  int interrupted = 0;  // the signal, if one came
  if (run->parsed()) {
    signals.async_wait([&](std::error_code ec, int sig) {
      if (ec) return;
      interrupted = sig;
      std::printf("\npeerpodctl: signal %d: stopping sandbox %s\n", sig, ctl.options().id.c_str());
      std::fflush(stdout);
      asio::co_spawn(io, StopAfterSignal(ctl), asio::detached);
    });
  }
  auto body = [&]() -> asio::awaitable<void> {
    const auto t = Clock::now();
    if (run->parsed()) {
      rc = co_await Run(ctl);
      signals.cancel();
    } else if (create->parsed()) {
      auto path = co_await ctl.Create();
      rc = Report("CreateVM", path ? Result<void>{} : std::unexpected(path.error()), t, path ? *path : "");
    } else if (start->parsed()) {
      rc = Report("StartVM", co_await ctl.Start(), t);
    } else if (check->parsed()) {
      auto result = co_await ctl.Check(ctl.AgentSocket());
      rc = Report("Health", result ? Result<void>{} : std::unexpected(result.error()), t, result ? *result : "");
    } else if (stop->parsed()) {
      rc = Report("StopVM", co_await ctl.Stop(), t);
    }
  };
  asio::co_spawn(io, body(), asio::detached);
  io.run();
  return interrupted ? 128 + interrupted : rc;
}
