#include "adaptor/daemon.h"

#include <spdlog/spdlog.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <atomic>
#include <mutex>
#include <csignal>
#include <filesystem>
#include <iostream>
#include <thread>

#include "adaptor/health_service.h"
#include "adaptor/hypervisor_service.h"
#include "adaptor/metrics.h"
#include "adaptor/probe_server.h"
#include "adaptor/sandbox_manager.h"
#include "adaptor/agent_proxy.h"
#include "common/base/backoff.h"
#include "common/base/blocking_pool.h"
#include "common/base/file.h"
#include "common/base/log.h"
#include "common/ttrpc/server.h"

namespace pp::adaptor {
namespace {

std::string HostName() {
  char buffer[256] = {};
  if (::gethostname(buffer, sizeof buffer - 1) != 0) return "localhost";
  return buffer;
}

// What can be checked before serving: a socket path that fits, a pods dir we can write.
Result<void> CheckStartConditions(const Config& config) {
  if (config.socket.size() >= kMaxUnixSocketPath) {
    return Fail(Code::kInvalidArgument, "-socket / REMOTE_HYPERVISOR_ENDPOINT: ", std::to_string(config.socket.size()),
                "-byte path; a unix socket path holds at most ", std::to_string(kMaxUnixSocketPath - 1), " bytes");
  }
  std::error_code ec;
  std::filesystem::create_directories(config.pods_dir, ec);
  if (ec) {
    return Fail(Code::kFailedPrecondition, "-pods-dir / PODS_DIR: cannot create ", config.pods_dir, ": ",
                ec.message());
  }
  const std::string probe = config.pods_dir + "/.write-check";
  if (auto written = WriteFileAtomic(probe, "", 0600); !written) {
    return Fail(Code::kFailedPrecondition, "-pods-dir / PODS_DIR: ", config.pods_dir, " is not writable: ",
                written.error().message);
  }
  std::filesystem::remove(probe, ec);
  return {};
}

// Checks the provider until it works, saying so at warn level while it does not: a broken setup
// shows in the log before the first pod, not when it fails.
asio::awaitable<void> WatchProvider(providers::Provider& provider, BlockingPool& pool, const std::atomic<bool>& stopping,
                                    const std::function<void(const std::string&)>& not_ready) {
  Backoff backoff(std::chrono::seconds(5), std::chrono::minutes(1));
  auto timer = asio::steady_timer(co_await asio::this_coro::executor);
  for (int attempt = 1; !stopping; ++attempt) {
    auto job = [&provider] { return provider.Verify({std::chrono::steady_clock::now() + std::chrono::seconds(30), {}}); };
    auto verified = co_await pool.Run<void>(std::move(job));
    if (verified) {
      if (attempt > 1) spdlog::info("provider: reachable and configured now");
      else spdlog::debug("provider: configuration verified");
      co_return;
    }
    if (stopping) co_return;
    const auto wait = backoff.Next();
    spdlog::warn("provider not ready: {}; pods cannot start until this is fixed (checking again in {} s)",
                 verified.error().ToString(), std::chrono::duration_cast<std::chrono::seconds>(wait).count());
    not_ready("provider not ready: " + verified.error().ToString());
    timer.expires_after(wait);
    (void)co_await timer.async_wait(kAwaitTuple);
  }
}

// Reconciles this node's instances against the records: at start (retrying until the provider can
// list them), then every `interval` (0: at start only). Each pass that finds something says so.
asio::awaitable<void> Reconcile(SandboxManager& manager, std::chrono::nanoseconds interval,
                                std::chrono::nanoseconds grace, const std::atomic<bool>& stopping,
                                Metrics& metrics) {
  Backoff backoff(std::chrono::seconds(2), std::chrono::minutes(1));
  auto timer = asio::steady_timer(co_await asio::this_coro::executor);
  bool first = true;
  while (!stopping) {
    auto reconciled = co_await manager.Reconcile();
    std::chrono::nanoseconds wait = interval;
    metrics.ReconcileRun(reconciled.has_value(), reconciled ? reconciled->found : 0, reconciled ? reconciled->deleted : 0);
    if (reconciled) {
      backoff.Reset();
      const auto& r = *reconciled;
      if (r.orphans > 0) {
        spdlog::warn("reconciliation: {} instance(s) no record accounts for: {} deleted, {} within the grace period, "
                     "{} failed to delete", r.orphans, r.deleted, r.waiting, r.failed);
      } else if (first) {
        spdlog::info("reconciliation: every instance of this node has its record");
      }
      first = false;
      if (interval.count() == 0) {
        // At start only: but an orphan within its grace period is looked at again once it is over.
        if (r.waiting + r.failed == 0) co_return;
        wait = std::max<std::chrono::nanoseconds>(grace, std::chrono::seconds(1));
      }
    } else {
      wait = backoff.Next();
      spdlog::warn("cannot reconcile this node's instances: {}; retrying in {} s", reconciled.error().ToString(),
                   std::chrono::duration_cast<std::chrono::seconds>(wait).count());
    }
    timer.expires_after(wait);
    (void)co_await timer.async_wait(kAwaitTuple);
  }
}

}  // namespace

int RunDaemon(const Config& config, std::unique_ptr<providers::Provider> provider, std::string provider_name) {
  ConfigureLogging(config.log_level, config.log_format);
  for (const auto& [flag, value] : config.pending) {
    spdlog::warn("-{} is accepted for compatibility but has no effect in this version", flag);
  }
  const auto grace = std::chrono::duration_cast<std::chrono::milliseconds>(config.shutdown_grace_value);
  if (auto ok = CheckStartConditions(config); !ok) {
    std::cerr << "cloud-api-adaptor: " << ok.error().message << "\n";
    return ok.error().code == Code::kInvalidArgument ? 2 : 1;
  }

  asio::io_context io(static_cast<int>(config.io_threads));
  // Metrics: every provider call is counted by operation and error class through the decorator.
  auto metrics = std::make_shared<Metrics>(PP_VERSION);
  metrics->SetLimit(config.limit_per_node);
  provider = std::make_unique<MeteredProvider>(std::move(provider), provider_name, metrics);
  // Jobs on the pool call into the manager: the pool is drained (below) before the manager goes.
  auto pool = std::make_unique<BlockingPool>(config.blocking_threads, 1024);
  SandboxManager::Options options;
  options.node_name = config.node_name.empty() ? HostName() : config.node_name;
  options.limit_per_node = config.limit_per_node;
  options.metrics = metrics.get();
  options.provider_name = provider_name;
  options.reconcile_grace = config.reconcile_grace_value;
  std::unique_ptr<AgentConnector> connector;
  if (config.connect_agents) {
    AgentConnectorOptions agent;
    agent.forwarder_port = config.forwarder_port;
    agent.proxy_timeout = config.proxy_timeout_value;
    agent.disable_tls = config.disable_tls;
    agent.tls_dir = config.tls_dir;
    agent.ca_cert_file = config.ca_cert_file;
    agent.cert_file = config.cert_file;
    agent.cert_key = config.cert_key;
    agent.tls_min_version = config.tls_min_version;
    agent.tls_cipher_suites = config.tls_cipher_suites;
    agent.on_connection = [metrics](int delta) {
      if (delta > 0) metrics->AgentConnectionOpened();
      else metrics->AgentConnectionClosed();
    };
    agent.on_bytes = [metrics](std::size_t to_vm, std::size_t from_vm) { metrics->AgentBytes(to_vm, from_vm); };
    auto created = AgentConnector::Create(io.get_executor(), std::move(agent));
    if (!created) {
      std::cerr << "cloud-api-adaptor: agent TLS: " << created.error().message << "\n";
      return 2;
    }
    connector = std::move(*created);
  }
  const NodeNetwork network(config.network);
  SandboxManager manager(options, SandboxStore(config.pods_dir), *provider, *pool, connector.get(), &network);
  std::unique_ptr<WarmPool> warm_pool;
  // Also with no pool configured when pool VMs are recorded: they are drained (deleted).
  if (!config.pools.empty() || !LoadPoolVms(config.warm_pool_dir).empty()) {
    if (!connector) {
      std::cerr << "cloud-api-adaptor: warm pools need the agent path to pod VMs\n";
      return 2;
    }
    WarmPool::Options pool_options;
    pool_options.node_name = options.node_name;
    pool_options.dir = config.warm_pool_dir;
    pool_options.pools = config.pools;
    pool_options.check_interval = config.warm_pool_check_interval_value;
    pool_options.boot_timeout = std::max<std::chrono::nanoseconds>(config.proxy_timeout_value, std::chrono::minutes(1));
    pool_options.metrics = metrics.get();
    warm_pool = std::make_unique<WarmPool>(std::move(pool_options), *provider, *connector,
                                           [&manager](const std::string& id) { return manager.HoldsInstance(id, false); });
    manager.SetWarmPool(warm_pool.get(), connector.get());
  }

  if (config.cloud_config_verify) {
    auto verified = provider->Verify({std::chrono::steady_clock::now() + std::chrono::minutes(2), {}});
    if (!verified) {
      std::cerr << "cloud-api-adaptor: provider configuration check failed: " << verified.error().ToString() << "\n";
      return 1;
    }
  }

  // grpc.health.v1 for kubelet: NOT_SERVING until the provider is verified and every recorded
  // sandbox's agent proxy is back, then SERVING. Started before the socket, so that a port in use
  // leaves no socket behind.
  std::unique_ptr<HealthServer> health;
  if (config.health_port != 0) {
    // [::] takes IPv4 too (IPV6_V6ONLY off, ipv6(7)); a node without IPv6 gets 0.0.0.0.
    auto started = HealthServer::Start("[::]:" + std::to_string(config.health_port));
    if (!started && started.error().code != Code::kUnavailable && started.error().code != Code::kPermissionDenied) {
      started = HealthServer::Start("0.0.0.0:" + std::to_string(config.health_port));
    }
    if (!started) {
      std::cerr << "cloud-api-adaptor: " << started.error().message << "\n";
      return 1;
    }
    health = std::move(*started);
  }
  // /startup, /readyz, /livez, /metrics (the sandbox counts are taken at each scrape).
  std::shared_ptr<ProbeServer> probe;
  if (config.probe_port != 0) {
    ProbeServer::Options probe_options;
    probe_options.port = config.probe_port;
    auto started = ProbeServer::Start(io.get_executor(), probe_options, [metrics, &manager] {
      const auto counts = manager.CountByState();
      metrics->SetSandboxes(counts.created, counts.starting, counts.running);
      return metrics->Exposition();
    });
    if (!started) {
      if (health) health->Shutdown();
      std::cerr << "cloud-api-adaptor: " << started.error().message << "\n";
      return 1;
    }
    probe = std::move(*started);
    probe->SetReady(false, "checking the provider");
  }
  std::atomic<bool> provider_verified{config.cloud_config_verify}, sandboxes_resumed{false};
  std::mutex ready_mu;
  bool shutting_down = false;  // guarded by ready_mu
  auto update_ready = [&] {
    std::lock_guard lock(ready_mu);
    if (shutting_down) return;
    if (sandboxes_resumed && probe) probe->SetStarted();
    if (provider_verified && sandboxes_resumed) {
      if (health) health->SetServing(true);
      if (probe) probe->SetReady(true, "");
    }
  };
  auto not_ready = [&](const std::string& reason) {
    std::lock_guard lock(ready_mu);
    if (probe && !shutting_down) probe->SetReady(false, reason);
  };

  if (warm_pool) {
    // Before reconciliation's first pass (its records account for its VMs) and before the socket
    // exists (a pool dir it cannot make leaves nothing behind).
    if (auto started = warm_pool->Start(); !started) {
      if (probe) probe->Shutdown();
      if (health) health->Shutdown();
      std::cerr << "cloud-api-adaptor: " << started.error().message << "\n";
      return 1;
    }
  }

  ttrpc::Server::Options server_options;
  server_options.single_threaded = config.io_threads == 1;
  ttrpc::Server server(io.get_executor(), server_options);
  RegisterHypervisorService(server, manager);
  if (auto listening = server.ListenUnix(config.socket, 0660); !listening) {
    std::cerr << "cloud-api-adaptor: " << listening.error().message << "\n";
    return 1;
  }
  spdlog::info("cloud-api-adaptor {} serving {} (node {}, pods in {}{})", PP_VERSION, config.socket,
               options.node_name, config.pods_dir,
               std::string(health ? ", gRPC health on port " + std::to_string(health->port()) : "") +
                   (probe ? ", probes and metrics on port " + std::to_string(probe->port()) : ""));

  std::atomic<bool> stopping{false};
  asio::co_spawn(io, [&]() -> asio::awaitable<void> {
    if (!config.cloud_config_verify) co_await WatchProvider(*provider, *pool, stopping, not_ready);
    provider_verified = !stopping;
    update_ready();
  }, asio::detached);
  asio::co_spawn(io, [&]() -> asio::awaitable<void> {
    co_await manager.ResumeAgents();
    sandboxes_resumed = true;
    update_ready();
    co_await Reconcile(manager, config.reconcile_interval_value, config.reconcile_grace_value, stopping, *metrics);
  }, asio::detached);

  asio::signal_set signals(io, SIGINT, SIGTERM);
  std::function<void(std::error_code, int)> on_signal = [&](std::error_code ec, int signal) {
    if (ec) return;
    if (stopping) {
      spdlog::warn("second signal {}: exiting now", signal);
      std::_Exit(130);
    }
    stopping = true;
    spdlog::info("signal {}: shutting down (grace {} ms)", signal, grace.count());
    signals.async_wait(on_signal);
    {  // kubelet sees NOT_SERVING first; bounded (the health server's own grace)
      std::lock_guard lock(ready_mu);
      shutting_down = true;
      if (health) health->Shutdown();
      if (probe) probe->SetReady(false, "shutting down");
    }
    manager.CancelAll();
    // Pool VMs are kept (recorded) for the next start; boots in progress give up.
    if (warm_pool) warm_pool->RequestStop();
    asio::co_spawn(io, [&]() -> asio::awaitable<void> {
      co_await server.Shutdown(grace);
      if (probe) probe->Shutdown();
      if (connector) co_await connector->DisconnectAll();
      // Whatever still waits (a provider call that never returns) does not hold the exit.
      io.stop();
    }, asio::detached);
  };
  signals.async_wait(on_signal);

  std::vector<std::jthread> workers;
  for (unsigned i = 1; i < config.io_threads; ++i) workers.emplace_back([&io] { io.run(); });
  io.run();
  workers.clear();
  // StartVMs told to give up by CancelAll() finish their cleanup here, within a second grace.
  if (!pool->WaitIdle(std::chrono::steady_clock::now() + grace)) {
    spdlog::error("{} provider call(s) still running after the grace period; exiting without them (recorded "
                  "VMs are kept; the next start reconciles)", pool->Running());
    spdlog::shutdown();
    std::_Exit(0);
  }
  pool.reset();
  spdlog::info("cloud-api-adaptor stopped");
  // Exit without destroying the provider: its threads may wait on a peer that never answers
  // (libvirt cannot abort a connection being opened), and there is nothing left to save.
  spdlog::shutdown();
  std::_Exit(0);
}

int AdaptorMain(int argc, const char* const* argv, providers::Registry& registry, bool connect_agents) {
  // A write(2) to a socket whose peer has gone raises SIGPIPE, which kills the process (write(2),
  // EPIPE). Asio and libcurl avoid it per call; libvirt's RPC client writes with plain write(2), so a
  // libvirtd that goes away mid-call would take the daemon with it. The error (EPIPE) is enough.
  std::signal(SIGPIPE, SIG_IGN);
  CLI::App app{"cloud-api-adaptor: creates a pod VM for each kata sandbox, through a provider",
               "cloud-api-adaptor"};
  GoFlagDefaults(app);
  app.require_subcommand(1);
  app.set_help_all_flag("--help-all", "show every provider's flags");
  auto* help = app.add_subcommand("help", "show usage, or a provider's flags: help <provider>");
  std::string help_topic;
  help->add_option("provider", help_topic, "a provider built into this binary");
  auto* version = app.add_subcommand("version", "print the version");
  Config config;
  config.connect_agents = connect_agents;
  std::vector<std::pair<CLI::App*, providers::ProviderFactory*>> commands;
  std::string built_in;
  for (auto* factory : registry.All()) {
    auto* command = app.add_subcommand(std::string(factory->Name()), std::string(factory->Description()));
    AddCommonFlags(*command, config);
    factory->AddFlags(*command);
    commands.emplace_back(command, factory);
    built_in += (built_in.empty() ? "" : ", ") + std::string(factory->Name());
  }
  if (built_in.empty()) built_in = "none";
  // A first word that names no command is most often a provider this binary was built without.
  if (argc > 1 && argv[1][0] != '-') {
    const std::string_view first = argv[1];
    bool known = first == "help" || first == "version";
    for (auto& [command, factory] : commands) known = known || first == factory->Name();
    if (!known) {
      std::cerr << "cloud-api-adaptor: unknown provider '" << first << "'; built in: " << built_in << "\n";
      return 2;
    }
  }
  const std::string usage = app.help();  // before parse: afterwards help() describes the subcommand
  std::vector<std::string> args;
  if (const int exit = ParseGoCommandLine(app, argc, argv, &args); exit >= 0) return exit;
  if (*help) {
    if (help_topic.empty()) {
      std::cout << usage;
      if (commands.empty()) std::cout << "\nNo provider is built into this binary.\n";
      return 0;
    }
    for (auto& [command, factory] : commands) {
      if (factory->Name() == help_topic) {
        std::cout << command->help();
        return 0;
      }
    }
    std::cerr << "cloud-api-adaptor: unknown provider '" << help_topic << "'; built in: " << built_in << "\n";
    return 2;
  }
  if (*version) {
    std::cout << "cloud-api-adaptor " << PP_VERSION << "\n";
    return 0;
  }
  for (auto& [command, factory] : commands) {
    if (!*command) continue;
    if (auto ok = FinishCommonFlags(config, args); !ok) {
      std::cerr << "cloud-api-adaptor: " << ok.error().message << "\n";
      return 2;
    }
    auto provider = factory->Create();
    if (!provider) {
      std::cerr << "cloud-api-adaptor " << factory->Name() << ": " << provider.error().message << "\n";
      return 2;
    }
    return RunDaemon(config, std::move(*provider), std::string(factory->Name()));
  }
  return 2;
}

}  // namespace pp::adaptor
