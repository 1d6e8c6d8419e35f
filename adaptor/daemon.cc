#include "adaptor/daemon.h"

#include <spdlog/spdlog.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <csignal>
#include <thread>

#include "adaptor/hypervisor_service.h"
#include "adaptor/sandbox_manager.h"
#include "common/base/blocking_pool.h"
#include "common/ttrpc/server.h"

namespace pp::adaptor {
namespace {

std::string HostName() {
  char buffer[256] = {};
  if (::gethostname(buffer, sizeof buffer - 1) != 0) return "localhost";
  return buffer;
}

}  // namespace

int RunDaemon(const Config& config, std::unique_ptr<providers::Provider> provider) {
  spdlog::set_level(spdlog::level::from_str(config.log_level));
  for (const auto& [flag, value] : config.pending) {
    spdlog::warn("-{} is accepted for compatibility but has no effect in this version", flag);
  }
  auto grace = ParseGoDuration(config.shutdown_grace);
  if (!grace) {
    spdlog::error("-shutdown-grace: {}", grace.error().message);
    return 2;
  }
  auto proxy_timeout = ParseGoDuration(config.proxy_timeout);
  if (!proxy_timeout) {
    spdlog::error("-proxy-timeout / PROXY_TIMEOUT: {}", proxy_timeout.error().message);
    return 2;
  }

  asio::io_context io(static_cast<int>(config.io_threads));
  // Jobs on the pool call into the manager: the pool is joined (below) before the manager goes.
  auto pool = std::make_unique<BlockingPool>(config.blocking_threads, 1024);
  SandboxManager::Options options;
  options.node_name = config.node_name.empty() ? HostName() : config.node_name;
  std::unique_ptr<AgentConnector> connector;
  if (config.connect_agents) {
    AgentConnectorOptions agent;
    agent.forwarder_port = static_cast<unsigned short>(config.forwarder_port);
    agent.proxy_timeout = *proxy_timeout;
    agent.disable_tls = config.disable_tls;
    agent.tls_dir = config.tls_dir;
    agent.ca_cert_file = config.ca_cert_file;
    agent.cert_file = config.cert_file;
    agent.cert_key = config.cert_key;
    agent.tls_min_version = config.tls_min_version;
    agent.tls_cipher_suites = config.tls_cipher_suites;
    auto created = AgentConnector::Create(io.get_executor(), std::move(agent));
    if (!created) {
      spdlog::error("agent TLS: {}", created.error().message);
      return 2;
    }
    connector = std::move(*created);
  }
  SandboxManager manager(options, SandboxStore(config.pods_dir), *provider, *pool, connector.get());

  if (config.cloud_config_verify) {
    auto verified = provider->Verify({std::chrono::steady_clock::now() + std::chrono::minutes(2), {}});
    if (!verified) {
      spdlog::error("provider configuration check failed: {}", verified.error().ToString());
      return 1;
    }
  }

  ttrpc::Server::Options server_options;
  server_options.single_threaded = config.io_threads == 1;
  ttrpc::Server server(io.get_executor(), server_options);
  RegisterHypervisorService(server, manager);
  if (auto listening = server.ListenUnix(config.socket, 0660); !listening) {
    spdlog::error("{}", listening.error().message);
    return 1;
  }
  spdlog::info("cloud-api-adaptor {} serving {} (node {}, pods in {})", PP_VERSION, config.socket,
               options.node_name, config.pods_dir);

  asio::co_spawn(io, [&]() -> asio::awaitable<void> {
    co_await manager.ResumeAgents();
    auto reconciled = co_await manager.Reconcile();
    if (!reconciled) spdlog::warn("cannot list this node's instances: {}", reconciled.error().ToString());
    else if (*reconciled > 0) spdlog::warn("deleted {} instance(s) no sandbox accounts for", *reconciled);
  }, asio::detached);

  asio::signal_set signals(io, SIGINT, SIGTERM);
  bool stopping = false;
  std::function<void(std::error_code, int)> on_signal = [&](std::error_code ec, int signal) {
    if (ec) return;
    if (stopping) {
      spdlog::warn("second signal {}: exiting now", signal);
      std::_Exit(130);
    }
    stopping = true;
    spdlog::info("signal {}: shutting down (grace {} ms)", signal,
                 std::chrono::duration_cast<std::chrono::milliseconds>(*grace).count());
    signals.async_wait(on_signal);
    manager.CancelAll();
    asio::co_spawn(io, [&]() -> asio::awaitable<void> {
      co_await server.Shutdown(std::chrono::duration_cast<std::chrono::milliseconds>(*grace));
      if (connector) co_await connector->DisconnectAll();
      std::error_code ignored;
      signals.cancel(ignored);
    }, asio::detached);
  };
  signals.async_wait(on_signal);

  std::vector<std::jthread> workers;
  for (unsigned i = 1; i < config.io_threads; ++i) workers.emplace_back([&io] { io.run(); });
  io.run();
  workers.clear();
  pool.reset();  // StartVMs told to give up by CancelAll() finish their cleanup here
  spdlog::info("cloud-api-adaptor stopped");
  return 0;
}

int AdaptorMain(int argc, const char* const* argv, providers::Registry& registry, bool connect_agents) {
  CLI::App app{"cloud-api-adaptor: creates a pod VM for each kata sandbox, through a provider"};
  app.require_subcommand(1);
  app.set_help_all_flag("--help-all", "show every provider's flags");
  auto* help = app.add_subcommand("help", "show usage");
  auto* version = app.add_subcommand("version", "print the version");
  Config config;
  config.connect_agents = connect_agents;
  std::vector<std::pair<CLI::App*, providers::ProviderFactory*>> commands;
  for (auto* factory : registry.All()) {
    auto* command = app.add_subcommand(std::string(factory->Name()), std::string(factory->Description()));
    AddCommonFlags(*command, config);
    factory->AddFlags(*command);
    commands.emplace_back(command, factory);
  }
  const std::string usage = app.help();  // before parse: afterwards help() describes the subcommand
  auto args = NormalizeGoFlags(argc, argv);
  std::vector<const char*> cargs;
  for (const auto& a : args) cargs.push_back(a.c_str());
  try {
    app.parse(static_cast<int>(cargs.size()), cargs.data());
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  if (*help) {
    std::cout << usage;
    if (commands.empty()) std::cout << "\nNo provider is built into this binary.\n";
    return 0;
  }
  if (*version) {
    std::cout << "cloud-api-adaptor " << PP_VERSION << "\n";
    return 0;
  }
  for (auto& [command, factory] : commands) {
    if (!*command) continue;
    auto provider = factory->Create();
    if (!provider) {
      std::cerr << "cloud-api-adaptor " << factory->Name() << ": " << provider.error().message << "\n";
      return 2;
    }
    return RunDaemon(config, std::move(*provider));
  }
  return 2;
}

}  // namespace pp::adaptor
