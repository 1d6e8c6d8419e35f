// agent-protocol-forwarder: in the pod VM, relays the node's agent calls (TCP, mutual TLS) to the
// kata-agent's unix socket. Flags and apf.json as cloud-api-adaptor's forwarder has them.
#include <spdlog/spdlog.h>

#include <CLI/CLI.hpp>
#include <csignal>
#include <iostream>

#include "common/base/file.h"
#include "common/base/go_flags.h"
#include "common/podvm/apf_config.h"
#include "common/tls/context.h"
#include "common/tls/settings.h"
#include "forwarder/forwarder.h"

namespace {

// TLS material: manual files win, else apf.json's (auto mode, delivered through user-data).
pp::Result<std::shared_ptr<asio::ssl::context>> ServerTls(const pp::podvm::ApfConfig& apf, const std::string& ca,
                                                          const std::string& cert, const std::string& key) {
  pp::tls::Material material{apf.tls_client_ca, apf.tls_server_cert, apf.tls_server_key};
  if (!ca.empty() || !cert.empty() || !key.empty()) {
    auto files = pp::tls::LoadMaterialFiles(ca, cert, key);
    if (!files) return std::unexpected(files.error());
    material = std::move(*files);
  }
  if (material.ca_pem.empty() || material.cert_pem.empty() || material.key_pem.empty()) {
    return pp::Fail(pp::Code::kFailedPrecondition,
                    "no TLS material: give -ca-cert-file, -cert-file and -cert-key, or an apf.json with "
                    "tls-client-ca, tls-server-cert and tls-server-key (or -disable-tls)");
  }
  auto settings = pp::tls::ParseTlsSettingsList(apf.tls_min_version, apf.tls_cipher_suites);
  if (!settings) return std::unexpected(settings.error());
  return pp::tls::MakeServerContext(material, *settings);
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"agent-protocol-forwarder: relays kata-agent calls from the node into this pod VM"};
  std::string listen = "0.0.0.0:15150", agent_socket = "/run/kata-containers/agent.sock";
  std::string pod_netns = "/run/netns/podns", config_path = "/run/peerpod/apf.json";
  std::string ca_file, cert_file, key_file;
  bool disable_tls = false, version = false;
  app.add_option("--listen", listen, "address:port to listen on")->capture_default_str();
  app.add_option("--kata-agent-socket", agent_socket, "the kata-agent's unix socket")->capture_default_str();
  app.add_option("--pod-namespace", pod_netns, "network namespace containers join (empty: none)")->capture_default_str();
  app.add_option("--config", config_path, "apf.json written by process-user-data")->capture_default_str();
  app.add_option("--ca-cert-file", ca_file, "CA that signs the node's client certificate");
  app.add_option("--cert-file", cert_file, "this forwarder's certificate");
  app.add_option("--cert-key", key_file, "this forwarder's private key");
  app.add_flag("--disable-tls", disable_tls, "accept plaintext connections (testing only)");
  app.add_flag("--version", version, "print the version");
  auto args = pp::NormalizeGoFlags(argc, argv);
  std::vector<const char*> cargs;
  for (const auto& a : args) cargs.push_back(a.c_str());
  CLI11_PARSE(app, static_cast<int>(cargs.size()), cargs.data());
  if (version) {
    std::cout << "agent-protocol-forwarder " << PP_VERSION << "\n";
    return 0;
  }

  pp::podvm::ApfConfig apf;
  if (auto text = pp::ReadFile(config_path, 1 << 20); text) {
    std::string error;
    if (!pp::podvm::ParseApfConfig(*text, apf, error)) {
      spdlog::error("{}: {}", config_path, error);
      return 2;
    }
    if (!apf.pod_namespace.empty()) pod_netns = apf.pod_namespace;
  } else if (text.error().code != pp::Code::kNotFound) {
    spdlog::error("{}", text.error().message);
    return 2;
  }

  pp::forwarder::ForwarderOptions options;
  const auto colon = listen.rfind(':');
  std::error_code ec;
  const auto address = asio::ip::make_address(listen.substr(0, colon == std::string::npos ? 0 : colon), ec);
  if (colon == std::string::npos || ec) {
    spdlog::error("-listen {}: expected <ip>:<port>", listen);
    return 2;
  }
  options.listen = {address, static_cast<unsigned short>(std::stoi(listen.substr(colon + 1)))};
  options.agent_socket = agent_socket;
  options.pod_netns = pod_netns;
  if (disable_tls) {
    spdlog::warn("TLS IS DISABLED: anyone who reaches {} can drive the kata-agent", listen);
  } else {
    auto tls = ServerTls(apf, ca_file, cert_file, key_file);
    if (!tls) {
      spdlog::error("{}", tls.error().message);
      return 2;
    }
    options.tls = std::move(*tls);
  }

  asio::io_context io(1);
  pp::forwarder::Forwarder forwarder(io.get_executor(), std::move(options));
  int status = 0;
  asio::co_spawn(io, [&]() -> asio::awaitable<void> {
    auto bound = co_await forwarder.Start();
    if (!bound && bound.error().code != pp::Code::kCancelled) {
      spdlog::error("{}", bound.error().message);
      status = 1;
      io.stop();
    }
  }, asio::detached);
  asio::signal_set signals(io, SIGINT, SIGTERM);
  signals.async_wait([&](std::error_code err, int) {
    if (err) return;
    spdlog::info("shutting down");
    forwarder.Shutdown();
    io.stop();
  });
  io.run();
  return status;
}
