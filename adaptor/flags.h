// Command-line flags of cloud-api-adaptor, with CAA's names and environment variables so that an
// existing peer-pods ConfigMap keeps working (reference/caa.md section 7).
#pragma once

#include <chrono>
#include <string>
#include <string_view>
#include <vector>

#include "adaptor/pod_network.h"
#include "adaptor/warm_pool.h"
#include "common/base/error.h"
#include "common/base/go_flags.h"

namespace CLI {
class App;
}

namespace pp::adaptor {

struct Config {
  std::string socket = "/run/peerpod/hypervisor.sock";   // -socket, REMOTE_HYPERVISOR_ENDPOINT
  std::string pods_dir = "/run/peerpod/pods";            // -pods-dir, PODS_DIR
  std::string node_name;                                 // NODE_NAME, else the host name
  std::string forwarder_port_text = "15150";             // -forwarder-port, FORWARDER_PORT
  unsigned short forwarder_port = 15150;                 // ... checked by FinishCommonFlags
  std::string proxy_timeout = "5m";                      // -proxy-timeout, PROXY_TIMEOUT (Go duration)
  bool cloud_config_verify = false;                      // -cloud-config-verify, CLOUD_CONFIG_VERIFY
  unsigned io_threads = 1;                               // -io-threads
  unsigned blocking_threads = 32;                        // -blocking-threads
  std::string shutdown_grace = "10s";                    // -shutdown-grace
  std::string log_level = "info";                        // -log-level, LOG_LEVEL
  std::string log_format = "text";                       // -log-format, LOG_FORMAT: text or json
  bool disable_tls = false;                              // -disable-tls
  std::string tls_dir = "/run/peerpod/tls";              // -tls-dir: the auto-mode CA
  std::string ca_cert_file, cert_file, cert_key;         // CACERT_FILE, CERT_FILE, CERT_KEY (manual)
  std::string tls_min_version, tls_cipher_suites;        // TLS_MIN_VERSION, TLS_CIPHER_SUITES
  // The pod network (reference/caa.md section 5).
  std::string tunnel_type = "vxlan";           // -tunnel-type, TUNNEL_TYPE
  std::string vxlan_port_text = "4789";        // -vxlan-port, VXLAN_PORT
  std::string vxlan_min_id_text = "555000";    // -vxlan-min-id (flag only, as in CAA)
  std::string vxlan_max_id_text = "16777215";  // -vxlan-max-id (ours)
  std::string host_interface;                  // -host-interface (flag only, as in CAA)
  PodNetworkOptions network;                   // set by FinishCommonFlags
  std::string probe_port_text = "8000";        // -probe-port, PROBE_PORT: /startup /readyz /livez /metrics (0: off)
  unsigned short probe_port = 8000;
  std::string health_port_text = "8001";       // -health-port, HEALTH_PORT: grpc.health.v1 (0: off)
  unsigned short health_port = 8001;
  std::string limit_per_node_text = "10";      // -peerpods-limit-per-node, PEERPODS_LIMIT_PER_NODE (CAA's)
  std::string reconcile_interval = "5m";       // -reconcile-interval, RECONCILE_INTERVAL (0: at start only)
  std::string reconcile_grace = "2m";          // -reconcile-grace, RECONCILE_GRACE
  // Warm pools (adaptor/warm_pool.h).
  std::string warm_pool_size_text = "0";           // -warm-pool-size, WARM_POOL_SIZE: the "default" pool
  std::string warm_pools;                          // -warm-pools, WARM_POOLS: JSON array of pools
  std::string warm_pool_check_interval = "30s";    // -warm-pool-check-interval, WARM_POOL_CHECK_INTERVAL
  std::string warm_pool_dir;                       // -warm-pool-dir, WARM_POOL_DIR (default <pods-dir>/../pool)
  std::vector<PoolSpec> pools;                     // set by FinishCommonFlags
  std::chrono::nanoseconds warm_pool_check_interval_value{};
  // Set by FinishCommonFlags from the text above.
  std::chrono::nanoseconds proxy_timeout_value{}, shutdown_grace_value{};
  std::chrono::nanoseconds reconcile_interval_value{}, reconcile_grace_value{};
  std::size_t limit_per_node = 10;
  bool connect_agents = true;  // run an agent proxy per sandbox (off only in test daemons)
  // Accepted for compatibility with CAA ConfigMaps; each is used by the part that lands with it
  // (pod network, limits). Setting one today logs that it has no effect yet.
  std::vector<std::pair<std::string, std::string>> pending;  // (flag, value) given but not yet used
};

// Declares the common flags on `app` (a provider's subcommand), bound to `config`.
void AddCommonFlags(CLI::App& app, Config& config);

// Checks and converts what AddCommonFlags took as text. `args` is the command line as parsed, so
// that a message names what supplied a bad value: the flag (`-forwarder-port`) or the environment
// variable (`FORWARDER_PORT`). INVALID_ARGUMENT names the fix.
Result<void> FinishCommonFlags(Config& config, const std::vector<std::string>& args);

}  // namespace pp::adaptor
