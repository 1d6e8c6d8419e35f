#include "adaptor/flags.h"

#include <CLI/CLI.hpp>
#include <charconv>
#include <cmath>

namespace pp::adaptor {
namespace {

// CAA flags whose feature lands in a later part (agent proxy, TLS, pod network, limits).
struct PendingFlag {
  const char* flag;
  const char* env;
};
constexpr PendingFlag kPendingFlags[] = {
    {"pause-image", "PAUSE_IMAGE"},           {"ca-cert-file", "CACERT_FILE"},
    {"cert-file", "CERT_FILE"},               {"cert-key", "CERT_KEY"},
    {"tls-skip-verify", "TLS_SKIP_VERIFY"},   {"tls-min-version", "TLS_MIN_VERSION"},
    {"tls-cipher-suites", "TLS_CIPHER_SUITES"}, {"tunnel-type", "TUNNEL_TYPE"},
    {"vxlan-port", "VXLAN_PORT"},             {"initdata", "INITDATA"},
    {"peerpods-limit-per-node", "PEERPODS_LIMIT_PER_NODE"},
    {"enable-scratch-space", "ENABLE_SCRATCH_SPACE"},
    {"ext-network-via-podvm", "EXTERNAL_NETWORK_VIA_PODVM"},
    {"pod-subnet-cidrs", "POD_SUBNET_CIDRS"}, {"disable-tls", ""},
    {"host-interface", ""},                   {"vxlan-min-id", ""},
};

}  // namespace

void AddCommonFlags(CLI::App& app, Config& config) {
  app.add_option("--socket", config.socket, "unix socket the kata shim calls")
      ->envname("REMOTE_HYPERVISOR_ENDPOINT")
      ->capture_default_str();
  app.add_option("--pods-dir", config.pods_dir, "directory of per-pod state and agent sockets")
      ->envname("PODS_DIR")
      ->capture_default_str();
  app.add_option("--node-name", config.node_name, "this node's name, tagged on every instance")
      ->envname("NODE_NAME");
  app.add_option("--forwarder-port", config.forwarder_port, "agent-protocol-forwarder port in pod VMs")
      ->envname("FORWARDER_PORT")
      ->check(CLI::Range(1, 65535))
      ->capture_default_str();
  app.add_option("--proxy-timeout", config.proxy_timeout, "how long to wait for a pod VM's agent")
      ->envname("PROXY_TIMEOUT")
      ->capture_default_str();
  app.add_flag("--cloud-config-verify", config.cloud_config_verify,
               "verify the provider's configuration at start")
      ->envname("CLOUD_CONFIG_VERIFY");
  app.add_option("--io-threads", config.io_threads, "threads serving sockets")
      ->check(CLI::Range(1, 64))
      ->capture_default_str();
  app.add_option("--blocking-threads", config.blocking_threads, "threads for provider calls")
      ->check(CLI::Range(1, 1024))
      ->capture_default_str();
  app.add_option("--shutdown-grace", config.shutdown_grace, "how long calls in flight may take at shutdown")
      ->capture_default_str();
  app.add_option("--log-level", config.log_level, "trace, debug, info, warn, error")
      ->envname("LOG_LEVEL")
      ->check(CLI::IsMember({"trace", "debug", "info", "warn", "error"}))
      ->capture_default_str();
  for (const auto& pending : kPendingFlags) {
    auto* option = app.add_option_function<std::string>(
        std::string("--") + pending.flag,
        [&config, flag = std::string(pending.flag)](const std::string& value) {
          config.pending.emplace_back(flag, value);
        },
        "accepted for CAA compatibility; no effect yet");
    if (*pending.env) option->envname(pending.env);
    option->group("Compatibility");
  }
}

std::vector<std::string> NormalizeGoFlags(int argc, const char* const* argv) {
  std::vector<std::string> out;
  bool rest = false;
  for (int i = 0; i < argc; ++i) {
    std::string arg = argv[i];
    if (i > 0 && !rest) {
      if (arg == "--") {
        rest = true;
      } else if (arg.size() > 2 && arg[0] == '-' && arg[1] != '-' && !std::isdigit(static_cast<unsigned char>(arg[1]))) {
        arg.insert(0, "-");
      }
    }
    out.push_back(std::move(arg));
  }
  return out;
}

Result<std::chrono::nanoseconds> ParseGoDuration(std::string_view text) {
  const std::string original(text);
  if (text == "0") return std::chrono::nanoseconds(0);
  if (text.empty()) return Fail(Code::kInvalidArgument, "empty duration");
  if (text.front() == '-') return Fail(Code::kInvalidArgument, "duration \"", original, "\" is negative");
  if (text.front() == '+') text.remove_prefix(1);
  long double total = 0;
  while (!text.empty()) {
    std::size_t i = 0;
    while (i < text.size() && (std::isdigit(static_cast<unsigned char>(text[i])) || text[i] == '.')) ++i;
    if (i == 0) return Fail(Code::kInvalidArgument, "duration \"", original, "\": expected a number");
    long double number = 0;
    const auto [end, ec] = std::from_chars(text.data(), text.data() + i, number);
    if (ec != std::errc() || end != text.data() + i) {
      return Fail(Code::kInvalidArgument, "duration \"", original, "\": bad number");
    }
    text.remove_prefix(i);
    std::size_t j = 0;
    while (j < text.size() && !std::isdigit(static_cast<unsigned char>(text[j])) && text[j] != '.') ++j;
    const std::string_view unit = text.substr(0, j);
    text.remove_prefix(j);
    long double scale = 0;
    if (unit == "ns") scale = 1;
    else if (unit == "us" || unit == "\u00b5s") scale = 1e3;
    else if (unit == "ms") scale = 1e6;
    else if (unit == "s") scale = 1e9;
    else if (unit == "m") scale = 60e9;
    else if (unit == "h") scale = 3600e9;
    else return Fail(Code::kInvalidArgument, "duration \"", original, "\": unknown unit \"", std::string(unit), "\" (use ns, us, ms, s, m, h)");
    total += number * scale;
  }
  if (total > 9.2e18L) return Fail(Code::kInvalidArgument, "duration \"", original, "\" is too long");
  return std::chrono::nanoseconds(static_cast<long long>(std::llround(total)));
}

}  // namespace pp::adaptor
