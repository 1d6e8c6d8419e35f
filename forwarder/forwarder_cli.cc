#include "forwarder/forwarder_cli.h"

#include <spdlog/spdlog.h>

#include <CLI/CLI.hpp>
#include <csignal>
#include <ostream>

#include "common/base/file.h"
#include "common/base/go_flags.h"
#include "common/podvm/apf_config.h"
#include "common/podvm/encoding.h"
#include "common/tls/context.h"
#include "common/tls/settings.h"
#include "forwarder/pod_network.h"
#include "forwarder/pool_mode.h"

#ifndef PP_VERSION
#define PP_VERSION "0.0.0"
#endif

namespace pp::forwarder {
namespace {

constexpr std::string_view kListenForms = "expected <ip>:<port> or [<ipv6>]:<port>";

Error InFile(const std::string& file, std::string_view key, const Error& error) {
  return Error{error.code, file + ": " + std::string(key) + ": " + error.message};
}

// apf.json's TLS keys, each checked on its own so that an error names the key and the file.
Result<std::shared_ptr<asio::ssl::context>> ApfServerTls(const podvm::ApfConfig& apf,
                                                         const std::string& file) {
  const struct {
    std::string_view key;
    const std::string& value;
  } parts[] = {{"tls-client-ca", apf.tls_client_ca},
               {"tls-server-cert", apf.tls_server_cert},
               {"tls-server-key", apf.tls_server_key}};
  for (const auto& part : parts) {
    if (part.value.empty()) {
      return Fail(
          Code::kFailedPrecondition, file, ": ", part.key,
          " is missing; apf.json needs tls-client-ca, tls-server-cert and tls-server-key (or give "
          "-ca-cert-file, -cert-file and -cert-key, or -disable-tls)");
    }
  }
  if (auto ok = tls::CheckCertificatesPem(apf.tls_client_ca, "the CA certificate"); !ok) {
    return std::unexpected(InFile(file, "tls-client-ca", ok.error()));
  }
  if (auto ok = tls::CheckCertificatesPem(apf.tls_server_cert, "the certificate"); !ok) {
    return std::unexpected(InFile(file, "tls-server-cert", ok.error()));
  }
  if (auto ok = tls::CheckPrivateKeyPem(apf.tls_server_key, "the private key"); !ok) {
    return std::unexpected(InFile(file, "tls-server-key", ok.error()));
  }
  if (auto ok = tls::ParseTlsSettingsList(apf.tls_min_version, {}); !ok) {
    return std::unexpected(InFile(file, "tls-min-version", ok.error()));
  }
  for (std::size_t i = 0; i < apf.tls_cipher_suites.size(); ++i) {
    if (auto ok = tls::ParseTlsSettingsList("", {apf.tls_cipher_suites[i]}); !ok) {
      return std::unexpected(
          InFile(file, "tls-cipher-suites[" + std::to_string(i) + "]", ok.error()));
    }
  }
  auto settings = tls::ParseTlsSettingsList(apf.tls_min_version, apf.tls_cipher_suites);
  if (!settings)
    return std::unexpected(InFile(file, "tls-min-version, tls-cipher-suites", settings.error()));
  auto context = tls::MakeServerContext(
      {apf.tls_client_ca, apf.tls_server_cert, apf.tls_server_key}, *settings);
  // Each part parsed on its own: what is left is how they fit together (certificate and key).
  if (!context)
    return std::unexpected(InFile(file, "tls-server-cert, tls-server-key", context.error()));
  return context;
}

// TLS material: manual files win (their errors name the file), else apf.json's (auto mode,
// delivered through user-data).
Result<std::shared_ptr<asio::ssl::context>> ServerTls(const podvm::ApfConfig& apf, bool have_apf,
                                                      const ForwarderFlags& flags) {
  if (flags.ca_file.empty() && flags.cert_file.empty() && flags.key_file.empty()) {
    if (!have_apf) {
      return Fail(
          Code::kFailedPrecondition, "no TLS material: ", flags.config_path,
          " does not exist; give -ca-cert-file, -cert-file and -cert-key, or an apf.json with "
          "tls-client-ca, tls-server-cert and tls-server-key (or -disable-tls)");
    }
    return ApfServerTls(apf, flags.config_path);
  }
  auto files = tls::LoadMaterialFiles(flags.ca_file, flags.cert_file, flags.key_file);
  if (!files) return std::unexpected(files.error());
  auto settings = tls::ParseTlsSettingsList(apf.tls_min_version, apf.tls_cipher_suites);
  if (!settings)
    return std::unexpected(
        InFile(flags.config_path, "tls-min-version, tls-cipher-suites", settings.error()));
  return tls::MakeServerContext(*files, *settings);
}

bool AllDigits(std::string_view text) {
  return !text.empty() && text.find_first_not_of("0123456789") == std::string_view::npos;
}

int Run(int argc, const char* const* argv, std::ostream& out, std::ostream& err) {
  CLI::App app{"agent-protocol-forwarder: relays kata-agent calls from the node into this pod VM",
               "agent-protocol-forwarder"};
  GoFlagDefaults(app);
  ForwarderFlags flags;
  AddForwarderFlags(app, flags);
  if (const int exit = ParseGoCommandLine(app, argc, argv, nullptr, &out, &err); exit >= 0) return exit;
  if (flags.version) {
    out << "agent-protocol-forwarder " << PP_VERSION << "\n";
    return 0;
  }
  if (IsPoolMode(flags)) return RunPoolMode(flags, err);
  podvm::ApfConfig apf;
  auto options = BuildForwarderOptions(flags, &apf);
  if (!options) {
    err << "agent-protocol-forwarder: " << options.error().message << "\n";
    return 2;
  }
  // CAA's order: the pod network first, fatal on error (the supervisor starts us again), so that a
  // listener that answers means the containers' network is in place.
  PodNetworkOptions network;
  network.pod_netns = options->pod_netns;
  network.host_interface = flags.host_interface;
  auto built = SetUpPodNetwork(apf, network);
  if (!built) {
    err << "agent-protocol-forwarder: " << built.error().message << "\n";
    return 1;
  }
  if (*built) spdlog::info("{}", DescribePodNetwork(**built));
  if (!options->tls) {
    spdlog::warn("TLS IS DISABLED: anyone who reaches {} can drive the kata-agent", flags.listen);
  }

  asio::io_context io(1);
  Forwarder forwarder(io.get_executor(), std::move(*options));
  int status = 0;
  asio::co_spawn(
      io,
      [&]() -> asio::awaitable<void> {
        auto bound = co_await forwarder.Start();
        if (!bound && bound.error().code != Code::kCancelled) {
          err << "agent-protocol-forwarder: " << bound.error().message << "\n";
          status = 1;
          io.stop();
        }
      },
      asio::detached);
  asio::signal_set signals(io, SIGINT, SIGTERM);
  signals.async_wait([&](std::error_code ec, int) {
    if (ec) return;
    spdlog::info("shutting down");
    forwarder.Shutdown();
    io.stop();
  });
  io.run();
  return status;
}

}  // namespace

void AddForwarderFlags(CLI::App& app, ForwarderFlags& flags) {
  app.add_option("--listen", flags.listen, "<ip>:<port> or [<ipv6>]:<port> to listen on")
      ->capture_default_str();
  app.add_option("--kata-agent-socket", flags.agent_socket, "the kata-agent's unix socket")
      ->capture_default_str();
  app.add_option("--pod-namespace", flags.pod_netns,
                 "network namespace containers join (empty: none)")
      ->capture_default_str();
  app.add_option("--host-interface", flags.host_interface,
                 "the VM's interface toward the worker node (default: the primary one)");
  app.add_option("--config", flags.config_path, "apf.json written by process-user-data")
      ->capture_default_str();
  app.add_option("--pool-config", flags.pool_config_path,
                 "a pool VM's pool.json, used when -config does not exist")
      ->capture_default_str();
  app.add_option("--output-dir", flags.output_dir,
                 "where a pool VM's claim writes the pod's files (as process-user-data)")
      ->capture_default_str();
  app.add_option("--ca-cert-file", flags.ca_file, "CA that signs the node's client certificate");
  app.add_option("--cert-file", flags.cert_file, "this forwarder's certificate");
  app.add_option("--cert-key", flags.key_file, "this forwarder's private key");
  app.add_flag("--disable-tls", flags.disable_tls, "accept plaintext connections (testing only)");
  app.add_flag("--version", flags.version, "print the version");
}

Result<asio::ip::tcp::endpoint> ParseListenAddress(std::string_view text) {
  const std::string shown = "-listen \"" + podvm::Printable(text) + "\": ";
  std::string_view host, port;
  std::error_code ec;
  asio::ip::address address;
  if (text.starts_with('[')) {
    const auto close = text.find("]:");
    if (close == std::string_view::npos) return Fail(Code::kInvalidArgument, shown, kListenForms);
    host = text.substr(1, close - 1);
    port = text.substr(close + 2);
    address = asio::ip::make_address_v6(std::string(host), ec);
    if (ec) {
      return Fail(Code::kInvalidArgument, shown, "\"", podvm::Printable(host),
                  "\" is not an IPv6 address");
    }
  } else {
    const auto colon = text.rfind(':');
    if (colon == std::string_view::npos) {
      return Fail(Code::kInvalidArgument, shown, "no ':' before the port; ", kListenForms);
    }
    host = text.substr(0, colon);
    port = text.substr(colon + 1);
    if (host.empty()) {
      return Fail(Code::kInvalidArgument, shown,
                  "the IP address is missing (0.0.0.0 listens on every IPv4 address)");
    }
    if (host.find(':') != std::string_view::npos) {
      return Fail(Code::kInvalidArgument, shown,
                  "an IPv6 address needs brackets, as in [::]:15150");
    }
    address = asio::ip::make_address_v4(std::string(host), ec);
    if (ec) {
      return Fail(Code::kInvalidArgument, shown, "\"", podvm::Printable(host),
                  "\" is not an IPv4 address (host names are not resolved)");
    }
  }
  // Digits only, at most five of them: no sign, no spaces, no wrap-around.
  const int number = AllDigits(port) && port.size() <= 5 ? std::stoi(std::string(port)) : 0;
  if (number < 1 || number > 65535) {
    return Fail(Code::kInvalidArgument, shown, "port \"", podvm::Printable(port),
                "\" is not a number in 1..65535");
  }
  return asio::ip::tcp::endpoint(address, static_cast<unsigned short>(number));
}

Result<ForwarderOptions> BuildForwarderOptions(const ForwarderFlags& flags,
                                               podvm::ApfConfig* apf_out) {
  auto text = ReadFile(flags.config_path, podvm::kMaxApfConfigBytes);
  if (!text && text.error().code != Code::kNotFound) return std::unexpected(text.error());
  return ForwarderOptionsFromApf(flags, text ? &*text : nullptr, apf_out);
}

Result<ForwarderOptions> ForwarderOptionsFromApf(const ForwarderFlags& flags,
                                                 const std::string* apf_json,
                                                 podvm::ApfConfig* apf_out) {
  ForwarderOptions options;
  auto listen = ParseListenAddress(flags.listen);
  if (!listen) return std::unexpected(listen.error());
  options.listen = *listen;
  options.agent_socket = flags.agent_socket;
  options.pod_netns = flags.pod_netns;

  podvm::ApfConfig apf;
  const bool have_apf = apf_json != nullptr;
  if (have_apf) {
    std::string error;
    if (!podvm::ParseApfConfig(*apf_json, apf, error)) {
      // The parser's messages start with "apf.json: "; name the file itself instead.
      constexpr std::string_view kPrefix = "apf.json: ";
      if (error.starts_with(kPrefix)) error.erase(0, kPrefix.size());
      return Fail(Code::kInvalidArgument, flags.config_path, ": ", error);
    }
    // apf.json's "pod-namespace" is the pod's Kubernetes namespace (CAA's cloudmgr writes the
    // sandbox's namespace annotation there); the network namespace is -pod-namespace's.
  }
  if (!flags.disable_tls) {
    auto tls = ServerTls(apf, have_apf, flags);
    if (!tls) return std::unexpected(tls.error());
    options.tls = std::move(*tls);
  }
  if (apf_out != nullptr) *apf_out = std::move(apf);
  return options;
}

int ForwarderMain(int argc, const char* const* argv, std::ostream& out, std::ostream& err) {
  // Nothing a user types may abort the program: whatever escapes (CLI11, the standard library,
  // Asio) becomes a message and an exit code.
  try {
    return Run(argc, argv, out, err);
  } catch (const std::exception& e) {
    err << "agent-protocol-forwarder: " << e.what() << "\n";
  } catch (...) {
    err << "agent-protocol-forwarder: unexpected exception\n";
  }
  return 1;
}

}  // namespace pp::forwarder
