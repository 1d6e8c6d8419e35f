#include "adaptor/flags.h"

#include <CLI/CLI.hpp>
#include <filesystem>
#include <tuple>

#include "common/base/log.h"

namespace pp::adaptor {
namespace {

// CAA flags whose feature lands in a later part (agent proxy, TLS, pod network, limits).
struct PendingFlag {
  const char* flag;
  const char* env;
};
constexpr PendingFlag kPendingFlags[] = {
    {"pause-image", "PAUSE_IMAGE"},           {"tls-skip-verify", "TLS_SKIP_VERIFY"},
    {"initdata", "INITDATA"},
    {"enable-scratch-space", "ENABLE_SCRATCH_SPACE"},
    {"ext-network-via-podvm", "EXTERNAL_NETWORK_VIA_PODVM"},
    {"pod-subnet-cidrs", "POD_SUBNET_CIDRS"},
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
  app.add_option("--forwarder-port", config.forwarder_port_text, "agent-protocol-forwarder port in pod VMs")
      ->envname("FORWARDER_PORT")
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
  app.add_option("--log-level", config.log_level, "trace, debug, info, warn (or warning), error")
      ->envname("LOG_LEVEL")
      ->capture_default_str();
  app.add_option("--log-format", config.log_format, "text, or json (one object per line, for log collectors)")
      ->envname("LOG_FORMAT")
      ->capture_default_str();
  app.add_flag("--disable-tls", config.disable_tls, "plaintext to pod VMs (testing only; logged loudly)");
  app.add_option("--tls-dir", config.tls_dir, "where the auto-mode CA is kept")->capture_default_str();
  app.add_option("--ca-cert-file", config.ca_cert_file, "manual TLS: CA of the pod VMs' certificates")
      ->envname("CACERT_FILE");
  app.add_option("--cert-file", config.cert_file, "manual TLS: the adaptor's client certificate")->envname("CERT_FILE");
  app.add_option("--cert-key", config.cert_key, "manual TLS: the adaptor's client key")->envname("CERT_KEY");
  app.add_option("--tls-min-version", config.tls_min_version, "VersionTLS12 or VersionTLS13")
      ->envname("TLS_MIN_VERSION");
  app.add_option("--tls-cipher-suites", config.tls_cipher_suites, "TLS 1.2 cipher suites, IANA names, comma-separated")
      ->envname("TLS_CIPHER_SUITES");
  app.add_option("--probe-port", config.probe_port_text,
                 "HTTP port of /startup, /readyz, /livez and /metrics, on all addresses; 0: off")
      ->envname("PROBE_PORT")
      ->capture_default_str();
  app.add_option("--health-port", config.health_port_text,
                 "port of the gRPC health service (grpc.health.v1) for kubelet's gRPC probes, on all addresses; 0: off")
      ->envname("HEALTH_PORT")
      ->capture_default_str();
  app.add_option("--peerpods-limit-per-node", config.limit_per_node_text,
                 "most sandboxes this node runs; CreateVM past it is RESOURCE_EXHAUSTED (0: no limit)")
      ->envname("PEERPODS_LIMIT_PER_NODE")
      ->capture_default_str();
  app.add_option("--reconcile-interval", config.reconcile_interval,
                 "how often to look for VMs no record accounts for (Go duration; 0: only at start)")
      ->envname("RECONCILE_INTERVAL")
      ->capture_default_str();
  app.add_option("--reconcile-grace", config.reconcile_grace,
                 "how long a VM no record accounts for is left before it is deleted")
      ->envname("RECONCILE_GRACE")
      ->capture_default_str();
  app.add_option("--tunnel-type", config.tunnel_type, "pod network tunnel: vxlan (the only kind)")
      ->envname("TUNNEL_TYPE")
      ->capture_default_str();
  app.add_option("--vxlan-port", config.vxlan_port_text, "UDP port of the pod network's VXLAN tunnels")
      ->envname("VXLAN_PORT")
      ->capture_default_str();
  app.add_option("--vxlan-min-id", config.vxlan_min_id_text, "lowest VXLAN id (VNI) given to a pod")
      ->capture_default_str();
  app.add_option("--vxlan-max-id", config.vxlan_max_id_text, "highest VXLAN id (VNI) given to a pod")
      ->capture_default_str();
  app.add_option("--host-interface", config.host_interface,
                 "node interface pod VMs are reached through (default: the default route's)");
  app.add_option("--warm-pool-size", config.warm_pool_size_text,
                 "pod VMs of the provider's default shape kept booted for claims (the pool \"default\"); 0: none")
      ->envname("WARM_POOL_SIZE")
      ->capture_default_str();
  app.add_option("--warm-pools", config.warm_pools,
                 "warm pools of other shapes, a JSON array: [{\"name\":\"gpu\",\"size\":2,\"vcpus\":4,\"memory\":8192,"
                 "\"gpus\":1,\"instance-type\":\"\",\"image\":\"\",\"initdata\":\"<as the pod annotation>\"}]")
      ->envname("WARM_POOLS");
  app.add_option("--warm-pool-check-interval", config.warm_pool_check_interval,
                 "how often each ready pool VM is checked (Go duration)")
      ->envname("WARM_POOL_CHECK_INTERVAL")
      ->capture_default_str();
  app.add_option("--warm-pool-dir", config.warm_pool_dir,
                 "where pool VMs are recorded (default: \"pool\" beside the pods dir)")
      ->envname("WARM_POOL_DIR");
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

Result<void> FinishCommonFlags(Config& config, const std::vector<std::string>& args) {
  auto port = ParseUnsignedFlag(config.forwarder_port_text, 1, 65535,
                                FlagOrEnvName(args, "forwarder-port", "FORWARDER_PORT"));
  if (!port) return std::unexpected(port.error());
  config.forwarder_port = static_cast<unsigned short>(*port);
  if (auto ok = CheckLogOptions(config.log_level, config.log_format, FlagOrEnvName(args, "log-level", "LOG_LEVEL"),
                                FlagOrEnvName(args, "log-format", "LOG_FORMAT"));
      !ok) {
    return ok;
  }
  auto proxy_timeout = ParseGoDuration(config.proxy_timeout);
  if (!proxy_timeout) {
    return Fail(Code::kInvalidArgument, FlagOrEnvName(args, "proxy-timeout", "PROXY_TIMEOUT"), ": ",
                proxy_timeout.error().message);
  }
  config.proxy_timeout_value = *proxy_timeout;
  auto grace = ParseGoDuration(config.shutdown_grace);
  if (!grace) return Fail(Code::kInvalidArgument, "-shutdown-grace: ", grace.error().message);
  config.shutdown_grace_value = *grace;

  auto probe_port = ParseUnsignedFlag(config.probe_port_text, 0, 65535, FlagOrEnvName(args, "probe-port", "PROBE_PORT"));
  if (!probe_port) return std::unexpected(probe_port.error());
  config.probe_port = static_cast<unsigned short>(*probe_port);
  auto health_port = ParseUnsignedFlag(config.health_port_text, 0, 65535, FlagOrEnvName(args, "health-port", "HEALTH_PORT"));
  if (!health_port) return std::unexpected(health_port.error());
  config.health_port = static_cast<unsigned short>(*health_port);
  auto limit = ParseUnsignedFlag(config.limit_per_node_text, 0, 100000,
                                 FlagOrEnvName(args, "peerpods-limit-per-node", "PEERPODS_LIMIT_PER_NODE"));
  if (!limit) return std::unexpected(limit.error());
  config.limit_per_node = static_cast<std::size_t>(*limit);
  for (auto [text, value, flag, env] :
       {std::tuple{&config.reconcile_interval, &config.reconcile_interval_value, "reconcile-interval", "RECONCILE_INTERVAL"},
        std::tuple{&config.reconcile_grace, &config.reconcile_grace_value, "reconcile-grace", "RECONCILE_GRACE"}}) {
    auto parsed = ParseGoDuration(*text);
    if (!parsed) return Fail(Code::kInvalidArgument, FlagOrEnvName(args, flag, env), ": ", parsed.error().message);
    *value = *parsed;
  }

  auto pool_size = ParseUnsignedFlag(config.warm_pool_size_text, 0, 64, FlagOrEnvName(args, "warm-pool-size", "WARM_POOL_SIZE"));
  if (!pool_size) return std::unexpected(pool_size.error());
  auto pools = ParsePoolSpecs(config.warm_pools, static_cast<unsigned>(*pool_size));
  if (!pools) return std::unexpected(pools.error());
  config.pools = std::move(*pools);
  auto check = ParseGoDuration(config.warm_pool_check_interval);
  if (!check || check->count() <= 0) {
    return Fail(Code::kInvalidArgument, FlagOrEnvName(args, "warm-pool-check-interval", "WARM_POOL_CHECK_INTERVAL"), ": ",
                check ? "must be more than 0" : check.error().message);
  }
  config.warm_pool_check_interval_value = *check;
  if (config.warm_pool_dir.empty()) {
    config.warm_pool_dir = (std::filesystem::path(config.pods_dir).lexically_normal().parent_path() / "pool").string();
  }
  if (!config.pools.empty() && (config.disable_tls || !config.cert_file.empty() || !config.ca_cert_file.empty())) {
    return Fail(Code::kInvalidArgument, "warm pools need the automatic TLS mode (each pool VM gets its own "
                "certificate from the adaptor's CA): drop -disable-tls and CACERT_FILE/CERT_FILE/CERT_KEY, or the pools");
  }

  auto vxlan_port = ParseUnsignedFlag(config.vxlan_port_text, 1, 65535, FlagOrEnvName(args, "vxlan-port", "VXLAN_PORT"));
  if (!vxlan_port) return std::unexpected(vxlan_port.error());
  constexpr unsigned long long kMaxVni = (1u << 24) - 1;  // RFC 7348 section 5: 24 bits
  auto vni_min = ParseUnsignedFlag(config.vxlan_min_id_text, 1, kMaxVni, "-vxlan-min-id");
  if (!vni_min) return std::unexpected(vni_min.error());
  auto vni_max = ParseUnsignedFlag(config.vxlan_max_id_text, 1, kMaxVni, "-vxlan-max-id");
  if (!vni_max) return std::unexpected(vni_max.error());
  config.network.tunnel_type = config.tunnel_type;
  config.network.vxlan_port = static_cast<uint16_t>(*vxlan_port);
  config.network.vni_min = static_cast<uint32_t>(*vni_min);
  config.network.vni_max = static_cast<uint32_t>(*vni_max);
  config.network.host_interface = config.host_interface;
  if (auto ok = CheckPodNetworkOptions(config.network); !ok) {
    if (config.tunnel_type != "vxlan") {
      return Fail(Code::kInvalidArgument, FlagOrEnvName(args, "tunnel-type", "TUNNEL_TYPE"), ": \"",
                  config.tunnel_type, "\" is not supported; the only tunnel type is vxlan");
    }
    return ok;
  }
  return {};
}

}  // namespace pp::adaptor
