// apf.json: the agent-protocol-forwarder's configuration, in cloud-api-adaptor's JSON schema
// (reference/caa.md section 4), so that a config written by either implementation drives the other.
//
// The adaptor renders it (SerializeApfConfig) into the pod VM's user-data; process-user-data
// validates it before writing /run/peerpod/apf.json; the forwarder parses it at start.
//
// Standard library + nlohmann-json only (no pp::base), so the fuzz target can build it with clang.
// Parse errors name the offending key and never quote values (the TLS key lives in this file).
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace pp::podvm {

// Upper bound on an apf.json document; larger input is refused before parsing.
inline constexpr std::size_t kMaxApfConfigBytes = 1024 * 1024;

// One route of the pod's network namespace. Empty strings mean "not set" (as in CAA's Go types).
struct Route {
  std::string dst;       // "dst": CIDR prefix ("" = default route)
  std::string gw;        // "gw": IP address ("" = no gateway, a link route)
  std::string dev;       // "dev": interface name
  std::string protocol;  // "protocol": "" | "kernel" | "boot" | "static" | "dhcp"
  std::string scope;  // "scope": "" (universe) | "universe" | "site" | "link" | "host" | "nowhere"
  friend bool operator==(const Route&, const Route&) = default;
};

// A permanent ARP/NDP entry copied from the node's pod interface.
struct Neighbor {
  std::string ip;       // "ip": IP address
  std::string hw_addr;  // "hw-addr": MAC, "aa:bb:cc:dd:ee:ff"
  std::string dev;      // "dev"
  std::string state;    // "state": "" | none | incomplete | reachable | stale | delay | probe |
                        // failed | noarp | permanent
  friend bool operator==(const Neighbor&, const Neighbor&) = default;
};

// "pod-network": what the VM side needs to rebuild the pod's interface behind a VXLAN tunnel.
struct PodNetwork {
  std::string pod_ip;          // "podip": CIDR prefix, e.g. "10.244.1.5/24"
  // "podipv6": the pod's IPv6 prefix on a dual-stack cluster, e.g. "fd00:10:244:1::5/64". Our
  // extension (CAA is IPv4 only); written only when set, and ignored by CAA's forwarder, whose
  // encoding/json decoder skips unknown keys.
  std::string pod_ipv6;
  std::string pod_hw_addr;     // "pod-hw-addr": MAC
  std::string interface;       // "interface": pod-side interface name, e.g. "eth0"
  std::string worker_node_ip;  // "worker-node-ip": CIDR prefix
  std::string tunnel_type;     // "tunnel-type": "vxlan"
  std::vector<Route> routes;       // "routes": IPv4 only, so that CAA's forwarder can add them all
  std::vector<Neighbor> neighbors;  // "neighbors": IPv4 only, likewise
  // "routes6", "neighbors6": a dual-stack pod's IPv6 routes and neighbours. Our extension, beside
  // "podipv6": CAA's forwarder (which gives the interface no IPv6 address) skips these keys, where
  // an IPv6 gateway in "routes" would be unreachable for it and fail its setup. Written only when set.
  std::vector<Route> routes6;
  std::vector<Neighbor> neighbors6;
  int mtu = 0;         // 0..65535, 0 = not set
  int index = 0;       // >= 0
  int vxlan_port = 0;  // 0..65535, 0 = not set
  int vxlan_id = 0;    // 0..16777215 (24-bit VNI), 0 = not set
  bool dedicated = false;
  bool external_net_via_pod_vm = false;
  friend bool operator==(const PodNetwork&, const PodNetwork&) = default;
};

struct ApfConfig {
  std::optional<PodNetwork> pod_network;  // "pod-network"; absent or null = no pod network
  std::string pod_namespace;              // "pod-namespace"
  std::string pod_name;                   // "pod-name"
  std::string tls_server_key;             // "tls-server-key": PEM (secret)
  std::string tls_server_cert;            // "tls-server-cert": PEM
  std::string tls_client_ca;              // "tls-client-ca": PEM
  std::string tls_min_version;            // "tls-min-version": "" | "VersionTLS12" | "VersionTLS13"
  std::vector<std::string> tls_cipher_suites;  // "tls-cipher-suites": IANA names
  friend bool operator==(const ApfConfig&, const ApfConfig&) = default;
};

// Parses an apf.json document. On success fills `out` and returns true; `notes` (if given) gets one
// line per ignored key (the legacy SecureComms keys "sc-pp-prv"/"sc-wn-pub" are ignored silently).
// On failure returns false, `error` says what is wrong and where ("pod-network.routes[1].gw: not an
// IP address"), and `out` is unspecified. A wrong JSON type, an out-of-range number, a malformed
// address, prefix or MAC, or an unknown enum name is an error; null counts as absent.
bool ParseApfConfig(std::string_view json, ApfConfig& out, std::string& error,
                    std::vector<std::string>* notes = nullptr);

// Renders `config` as CAA's Go encoder would (same key order and omitempty rules), pretty-printed.
// ParseApfConfig(SerializeApfConfig(c)) yields c for every c that ParseApfConfig can produce.
std::string SerializeApfConfig(const ApfConfig& config);

}  // namespace pp::podvm
