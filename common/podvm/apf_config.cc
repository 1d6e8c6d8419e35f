#include "common/podvm/apf_config.h"

#include <arpa/inet.h>

#include <algorithm>
#include <array>
#include <cstdint>
#include <initializer_list>
#include <limits>
#include <nlohmann/json.hpp>

#include "common/podvm/encoding.h"

namespace pp::podvm {
namespace {

using Json = nlohmann::json;
using OrderedJson = nlohmann::ordered_json;

// Keys of CAA's Go structs. Anything else is reported as a note and ignored.
constexpr std::array kTopKeys = {"pod-network",     "pod-namespace",    "pod-name",
                                 "tls-server-key",  "tls-server-cert",  "tls-client-ca",
                                 "tls-min-version", "tls-cipher-suites"};
constexpr std::array kLegacyKeys = {"sc-pp-prv", "sc-wn-pub"};  // SecureComms, removed upstream
constexpr std::array kNetworkKeys = {"podip",
                                     "podipv6",
                                     "pod-hw-addr",
                                     "interface",
                                     "worker-node-ip",
                                     "tunnel-type",
                                     "routes",
                                     "neighbors",
                                     "routes6",
                                     "neighbors6",
                                     "mtu",
                                     "index",
                                     "vxlan-port",
                                     "vxlan-id",
                                     "dedicated",
                                     "external-net-via-pod-vm"};
constexpr std::array kRouteKeys = {"dst", "gw", "dev", "protocol", "scope"};
constexpr std::array kNeighborKeys = {"ip", "hw-addr", "dev", "state"};
// The names CAA's netops package accepts in JSON.
constexpr std::array kRouteProtocols = {"kernel", "boot", "static", "dhcp"};
constexpr std::array kRouteScopes = {"universe", "site", "link", "host", "nowhere"};
constexpr std::array kNeighborStates = {"none",  "incomplete", "reachable", "stale",    "delay",
                                        "probe", "failed",     "noarp",     "permanent"};
constexpr std::array kTlsVersions = {"VersionTLS12", "VersionTLS13"};

template <std::size_t N>
bool Contains(const std::array<const char*, N>& names, std::string_view name) {
  return std::any_of(names.begin(), names.end(), [&](const char* n) { return name == n; });
}

bool Fail(std::string& error, const std::string& where, const std::string& what) {
  error = "apf.json: " + where + ": " + what;
  return false;
}

template <std::size_t N>
void NoteUnknownKeys(const Json& object, const std::array<const char*, N>& known,
                     const std::string& where, std::vector<std::string>* notes) {
  for (const auto& [key, value] : object.items()) {
    if (Contains(known, key)) continue;
    if (where.empty() && Contains(kLegacyKeys, key)) continue;
    if (notes != nullptr)
      notes->push_back("apf.json: ignoring unknown key \"" + where + Printable(key) + "\"");
  }
}

// Each getter leaves `out` untouched when the key is absent or null.
bool GetString(const Json& object, const char* key, const std::string& where, std::string& out,
               std::string& error) {
  const auto it = object.find(key);
  if (it == object.end() || it->is_null()) return true;
  if (!it->is_string())
    return Fail(error, where + key, std::string("must be a string, not ") + it->type_name());
  out = it->get<std::string>();
  return true;
}

bool GetBool(const Json& object, const char* key, const std::string& where, bool& out,
             std::string& error) {
  const auto it = object.find(key);
  if (it == object.end() || it->is_null()) return true;
  if (!it->is_boolean())
    return Fail(error, where + key, std::string("must be true or false, not ") + it->type_name());
  out = it->get<bool>();
  return true;
}

bool GetInt(const Json& object, const char* key, const std::string& where, std::int64_t min,
            std::int64_t max, int& out, std::string& error) {
  const auto it = object.find(key);
  if (it == object.end() || it->is_null()) return true;
  const std::string range = " (" + std::to_string(min) + ".." + std::to_string(max) + ")";
  if (it->is_number_unsigned()) {
    if (it->get<std::uint64_t>() > static_cast<std::uint64_t>(max))
      return Fail(error, where + key, "out of range" + range);
    out = static_cast<int>(it->get<std::uint64_t>());
    return true;
  }
  if (it->is_number_integer()) {
    const auto v = it->get<std::int64_t>();
    if (v < min || v > max) return Fail(error, where + key, "out of range" + range);
    out = static_cast<int>(v);
    return true;
  }
  return Fail(error, where + key,
              std::string("must be an integer, not ") +
                  (it->is_number() ? "a non-integer number" : it->type_name()));
}

bool IsAddress(const std::string& text) {
  unsigned char buffer[16];
  return inet_pton(AF_INET, text.c_str(), buffer) == 1 ||
         inet_pton(AF_INET6, text.c_str(), buffer) == 1;
}

// "addr/bits" as Go's netip.ParsePrefix accepts it: no zone, decimal bits without leading zeros.
bool IsPrefix(const std::string& text) {
  const auto slash = text.find('/');
  if (slash == std::string::npos) return false;
  const std::string addr = text.substr(0, slash);
  const std::string bits = text.substr(slash + 1);
  if (bits.empty() || bits.size() > 3 || (bits.size() > 1 && bits[0] == '0')) return false;
  if (!std::all_of(bits.begin(), bits.end(), [](char c) { return c >= '0' && c <= '9'; }))
    return false;
  unsigned char buffer[16];
  int max = 0;
  if (inet_pton(AF_INET, addr.c_str(), buffer) == 1) {
    max = 32;
  } else if (inet_pton(AF_INET6, addr.c_str(), buffer) == 1) {
    max = 128;
  } else {
    return false;
  }
  return std::stoi(bits) <= max;
}

// Hex octets separated by ':' or '-' (one kind), 6, 8 or 20 octets, as Go's net.ParseMAC.
bool IsMac(const std::string& text) {
  const std::size_t octets = (text.size() + 1) / 3;
  if (text.size() != octets * 3 - 1 || (octets != 6 && octets != 8 && octets != 20)) return false;
  const char sep = text[2];
  if (sep != ':' && sep != '-') return false;
  for (std::size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (i % 3 == 2) {
      if (c != sep) return false;
    } else if (!std::isxdigit(static_cast<unsigned char>(c))) {
      return false;
    }
  }
  return true;
}

// The kernel's dev_valid_name: 1..15 bytes, not "." or "..", no '/', ':' or whitespace.
bool IsInterfaceName(const std::string& name) {
  if (name.empty() || name.size() > 15 || name == "." || name == "..") return false;
  return std::none_of(name.begin(), name.end(), [](char c) {
    return c == '/' || c == ':' || std::isspace(static_cast<unsigned char>(c)) || c == '\0';
  });
}

enum class Kind { kAddress, kPrefix, kMac, kInterface };

bool GetChecked(const Json& object, const char* key, const std::string& where, Kind kind,
                std::string& out, std::string& error) {
  if (!GetString(object, key, where, out, error)) return false;
  if (out.empty()) return true;
  switch (kind) {
    case Kind::kAddress:
      return IsAddress(out) || Fail(error, where + key, "not an IP address");
    case Kind::kPrefix:
      return IsPrefix(out) || Fail(error, where + key, "not a CIDR prefix like 10.0.0.5/24");
    case Kind::kMac:
      return IsMac(out) || Fail(error, where + key, "not a MAC address like 0a:58:0a:f4:01:05");
    case Kind::kInterface:
      return IsInterfaceName(out) ||
             Fail(error, where + key,
                  "not a valid interface name (1-15 bytes, no '/', ':' or spaces)");
  }
  return false;
}

template <std::size_t N>
bool GetEnum(const Json& object, const char* key, const std::string& where,
             const std::array<const char*, N>& names, std::string& out, std::string& error) {
  if (!GetString(object, key, where, out, error)) return false;
  if (out.empty() || Contains(names, out)) return true;
  std::string list;
  for (const char* n : names) list += std::string(list.empty() ? "" : ", ") + n;
  return Fail(error, where + key, "unknown value (expected one of " + list + ")");
}

bool ExpectObject(const Json& value, const std::string& where, std::string& error) {
  return value.is_object() ||
         Fail(error, where, std::string("must be an object, not ") + value.type_name());
}

bool ParseRoute(const Json& value, const std::string& where, Route& route, std::string& error,
                std::vector<std::string>* notes) {
  if (!ExpectObject(value, where, error)) return false;
  NoteUnknownKeys(value, kRouteKeys, where + ".", notes);
  const std::string w = where + ".";
  return GetChecked(value, "dst", w, Kind::kPrefix, route.dst, error) &&
         GetChecked(value, "gw", w, Kind::kAddress, route.gw, error) &&
         GetChecked(value, "dev", w, Kind::kInterface, route.dev, error) &&
         GetEnum(value, "protocol", w, kRouteProtocols, route.protocol, error) &&
         GetEnum(value, "scope", w, kRouteScopes, route.scope, error);
}

bool ParseNeighbor(const Json& value, const std::string& where, Neighbor& neighbor,
                   std::string& error, std::vector<std::string>* notes) {
  if (!ExpectObject(value, where, error)) return false;
  NoteUnknownKeys(value, kNeighborKeys, where + ".", notes);
  const std::string w = where + ".";
  return GetChecked(value, "ip", w, Kind::kAddress, neighbor.ip, error) &&
         GetChecked(value, "hw-addr", w, Kind::kMac, neighbor.hw_addr, error) &&
         GetChecked(value, "dev", w, Kind::kInterface, neighbor.dev, error) &&
         GetEnum(value, "state", w, kNeighborStates, neighbor.state, error);
}

// Parses the array under `key` element by element with `parse`.
template <typename T, typename Parse>
bool GetArray(const Json& object, const char* key, const std::string& where, std::vector<T>& out,
              std::string& error, Parse parse) {
  const auto it = object.find(key);
  if (it == object.end() || it->is_null()) return true;
  if (!it->is_array())
    return Fail(error, where + key, std::string("must be an array, not ") + it->type_name());
  out.clear();
  out.reserve(it->size());
  for (std::size_t i = 0; i < it->size(); ++i) {
    T item{};
    if (!parse((*it)[i], where + key + "[" + std::to_string(i) + "]", item)) return false;
    out.push_back(std::move(item));
  }
  return true;
}

bool ParsePodNetwork(const Json& value, PodNetwork& net, std::string& error,
                     std::vector<std::string>* notes) {
  const std::string w = "pod-network.";
  if (!ExpectObject(value, "pod-network", error)) return false;
  NoteUnknownKeys(value, kNetworkKeys, w, notes);
  constexpr std::int64_t kMaxPort = 65535;
  constexpr std::int64_t kMaxVni = (1 << 24) - 1;
  return GetChecked(value, "podip", w, Kind::kPrefix, net.pod_ip, error) &&
         GetChecked(value, "podipv6", w, Kind::kPrefix, net.pod_ipv6, error) &&
         GetChecked(value, "pod-hw-addr", w, Kind::kMac, net.pod_hw_addr, error) &&
         GetChecked(value, "interface", w, Kind::kInterface, net.interface, error) &&
         GetChecked(value, "worker-node-ip", w, Kind::kPrefix, net.worker_node_ip, error) &&
         GetString(value, "tunnel-type", w, net.tunnel_type, error) &&
         GetArray(value, "routes", w, net.routes, error,
                  [&](const Json& v, const std::string& where, Route& r) {
                    return ParseRoute(v, where, r, error, notes);
                  }) &&
         GetArray(value, "neighbors", w, net.neighbors, error,
                  [&](const Json& v, const std::string& where, Neighbor& n) {
                    return ParseNeighbor(v, where, n, error, notes);
                  }) &&
         GetArray(value, "routes6", w, net.routes6, error,
                  [&](const Json& v, const std::string& where, Route& r) {
                    return ParseRoute(v, where, r, error, notes);
                  }) &&
         GetArray(value, "neighbors6", w, net.neighbors6, error,
                  [&](const Json& v, const std::string& where, Neighbor& n) {
                    return ParseNeighbor(v, where, n, error, notes);
                  }) &&
         GetInt(value, "mtu", w, 0, kMaxPort, net.mtu, error) &&
         GetInt(value, "index", w, 0, std::numeric_limits<int>::max(), net.index, error) &&
         GetInt(value, "vxlan-port", w, 0, kMaxPort, net.vxlan_port, error) &&
         GetInt(value, "vxlan-id", w, 0, kMaxVni, net.vxlan_id, error) &&
         GetBool(value, "dedicated", w, net.dedicated, error) &&
         GetBool(value, "external-net-via-pod-vm", w, net.external_net_via_pod_vm, error);
}

}  // namespace

bool ParseApfConfig(std::string_view json, ApfConfig& out, std::string& error,
                    std::vector<std::string>* notes) {
  out = ApfConfig{};
  if (json.size() > kMaxApfConfigBytes) {
    error = "apf.json: " + std::to_string(json.size()) + " bytes is more than the limit of " +
            std::to_string(kMaxApfConfigBytes);
    return false;
  }
  const Json doc = Json::parse(json, nullptr, /*allow_exceptions=*/false);
  if (doc.is_discarded()) {
    error = "apf.json: not valid JSON";
    return false;
  }
  if (!doc.is_object()) {
    error = std::string("apf.json: the document must be a JSON object, not ") + doc.type_name();
    return false;
  }
  NoteUnknownKeys(doc, kTopKeys, "", notes);
  if (const auto it = doc.find("pod-network"); it != doc.end() && !it->is_null()) {
    PodNetwork net;
    if (!ParsePodNetwork(*it, net, error, notes)) return false;
    out.pod_network = std::move(net);
  }
  return GetString(doc, "pod-namespace", "", out.pod_namespace, error) &&
         GetString(doc, "pod-name", "", out.pod_name, error) &&
         GetString(doc, "tls-server-key", "", out.tls_server_key, error) &&
         GetString(doc, "tls-server-cert", "", out.tls_server_cert, error) &&
         GetString(doc, "tls-client-ca", "", out.tls_client_ca, error) &&
         GetEnum(doc, "tls-min-version", "", kTlsVersions, out.tls_min_version, error) &&
         GetArray(doc, "tls-cipher-suites", "", out.tls_cipher_suites, error,
                  [&](const Json& v, const std::string& where, std::string& suite) {
                    if (!v.is_string())
                      return Fail(error, where,
                                  std::string("must be a string, not ") + v.type_name());
                    suite = v.get<std::string>();
                    return true;
                  });
}

std::string SerializeApfConfig(const ApfConfig& config) {
  OrderedJson doc;
  if (config.pod_network) {
    const PodNetwork& net = *config.pod_network;
    OrderedJson n;
    n["podip"] = net.pod_ip;
    if (!net.pod_ipv6.empty()) n["podipv6"] = net.pod_ipv6;
    n["pod-hw-addr"] = net.pod_hw_addr;
    n["interface"] = net.interface;
    n["worker-node-ip"] = net.worker_node_ip;
    n["tunnel-type"] = net.tunnel_type;
    // Go always writes dst/gw (netip types ignore omitempty); the rest is omitempty.
    auto route_json = [](const Route& r) {
      OrderedJson route;
      route["dst"] = r.dst;
      route["gw"] = r.gw;
      if (!r.dev.empty()) route["dev"] = r.dev;
      if (!r.protocol.empty()) route["protocol"] = r.protocol;
      if (!r.scope.empty()) route["scope"] = r.scope;
      return route;
    };
    auto neighbor_json = [](const Neighbor& nb) {
      OrderedJson neighbor;
      neighbor["ip"] = nb.ip;
      if (!nb.hw_addr.empty()) neighbor["hw-addr"] = nb.hw_addr;
      if (!nb.dev.empty()) neighbor["dev"] = nb.dev;
      if (!nb.state.empty()) neighbor["state"] = nb.state;
      return neighbor;
    };
    n["routes"] = OrderedJson::array();
    for (const Route& r : net.routes) n["routes"].push_back(route_json(r));
    n["neighbors"] = OrderedJson::array();
    for (const Neighbor& nb : net.neighbors) n["neighbors"].push_back(neighbor_json(nb));
    if (!net.routes6.empty()) {
      n["routes6"] = OrderedJson::array();
      for (const Route& r : net.routes6) n["routes6"].push_back(route_json(r));
    }
    if (!net.neighbors6.empty()) {
      n["neighbors6"] = OrderedJson::array();
      for (const Neighbor& nb : net.neighbors6) n["neighbors6"].push_back(neighbor_json(nb));
    }
    n["mtu"] = net.mtu;
    n["index"] = net.index;
    if (net.vxlan_port != 0) n["vxlan-port"] = net.vxlan_port;
    if (net.vxlan_id != 0) n["vxlan-id"] = net.vxlan_id;
    n["dedicated"] = net.dedicated;
    n["external-net-via-pod-vm"] = net.external_net_via_pod_vm;
    doc["pod-network"] = std::move(n);
  } else {
    doc["pod-network"] = nullptr;
  }
  doc["pod-namespace"] = config.pod_namespace;
  doc["pod-name"] = config.pod_name;
  if (!config.tls_server_key.empty()) doc["tls-server-key"] = config.tls_server_key;
  if (!config.tls_server_cert.empty()) doc["tls-server-cert"] = config.tls_server_cert;
  if (!config.tls_client_ca.empty()) doc["tls-client-ca"] = config.tls_client_ca;
  if (!config.tls_min_version.empty()) doc["tls-min-version"] = config.tls_min_version;
  if (!config.tls_cipher_suites.empty()) doc["tls-cipher-suites"] = config.tls_cipher_suites;
  // Strings that are not UTF-8 (never produced by the parser) are replaced rather than thrown on.
  return doc.dump(2, ' ', false, OrderedJson::error_handler_t::replace) + "\n";
}

}  // namespace pp::podvm
