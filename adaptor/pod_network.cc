#include "adaptor/pod_network.h"

#include <arpa/inet.h>
#include <linux/rtnetlink.h>
#include <sys/socket.h>

#include <charconv>

#include "common/netlink/netns.h"
#include "common/netlink/route_socket.h"
#include "common/netlink/tunnel.h"

namespace pp::adaptor {
namespace {

// apf.json names the route protocol and scope as CAA's netops package does (its JSON text forms of
// the kernel's RTPROT_* and RT_SCOPE_* values, include/uapi/linux/rtnetlink.h).
std::string ProtocolName(int protocol) {
  switch (protocol) {
    case RTPROT_KERNEL: return "kernel";
    case RTPROT_BOOT: return "boot";
    case RTPROT_STATIC: return "static";
    case RTPROT_DHCP: return "dhcp";
    default: return "";  // a routing daemon's own number: the VM adds it as `ip route add` would
  }
}

std::string ScopeName(int scope) {
  switch (scope) {
    case RT_SCOPE_UNIVERSE: return "";  // Go's zero value, which omitempty leaves out
    case RT_SCOPE_SITE: return "site";
    case RT_SCOPE_LINK: return "link";
    case RT_SCOPE_HOST: return "host";
    case RT_SCOPE_NOWHERE: return "nowhere";
    default: return "";
  }
}

// The node's underlay address, "192.168.122.1/24": the first IPv4 address of -host-interface, else
// of the interface that carries this namespace's default route.
Result<std::string> NodeAddress(const PodNetworkOptions& options) {
  auto node = netlink::RouteSocket::Open();
  if (!node) return std::unexpected(node.error());
  auto config = options.host_interface.empty() ? node->ReadPrimaryInterface()
                                               : node->ReadInterface(options.host_interface);
  if (!config) {
    return Fail(config.error().code, "pod network: cannot find this node's underlay address (",
                options.host_interface.empty() ? "the default route's interface" : "-host-interface " + options.host_interface,
                "): ", config.error().message, "; set -host-interface to the interface pod VMs are reached through");
  }
  if (config->ipv4.empty()) {
    return Fail(Code::kFailedPrecondition, "pod network: the node's interface ", config->name,
                " has no IPv4 address for the tunnel; set -host-interface to one that has");
  }
  return config->ipv4.front();
}

std::string AddressOf(const std::string& prefix) { return prefix.substr(0, prefix.find('/')); }

bool IsIpv6(const std::string& ip) { return ip.find(':') != std::string::npos; }

// The subnet of an IPv4 prefix, "10.244.1.5/24" -> "10.244.1.0/24": the route the kernel makes with
// the address. Empty for a /32 (no such route) or text that is not an IPv4 prefix.
std::string Ipv4Subnet(const std::string& prefix) {
  const auto slash = prefix.find('/');
  if (slash == std::string::npos) return "";
  in_addr addr{};
  if (::inet_pton(AF_INET, prefix.substr(0, slash).c_str(), &addr) != 1) return "";
  int bits = 0;
  const std::string_view tail = std::string_view(prefix).substr(slash + 1);
  if (std::from_chars(tail.data(), tail.data() + tail.size(), bits).ec != std::errc()) return "";
  if (bits <= 0 || bits >= 32) return "";
  addr.s_addr &= htonl(~uint32_t{0} << (32 - bits));
  char text[INET_ADDRSTRLEN] = {};
  ::inet_ntop(AF_INET, &addr, text, sizeof text);
  return std::string(text) + "/" + std::to_string(bits);
}

}  // namespace

Result<void> CheckPodNetworkOptions(const PodNetworkOptions& options) {
  if (options.tunnel_type != "vxlan") {
    return Fail(Code::kInvalidArgument, "-tunnel-type / TUNNEL_TYPE: \"", options.tunnel_type,
                "\" is not supported; the only tunnel type is vxlan");
  }
  if (options.vxlan_port == 0) return Fail(Code::kInvalidArgument, "-vxlan-port / VXLAN_PORT: must be 1 to 65535");
  constexpr uint32_t kMaxVni = (1u << 24) - 1;  // RFC 7348 section 5: a 24-bit VNI
  if (options.vni_min == 0 || options.vni_min > kMaxVni || options.vni_max > kMaxVni || options.vni_max < options.vni_min) {
    return Fail(Code::kInvalidArgument, "-vxlan-min-id ", std::to_string(options.vni_min), " and -vxlan-max-id ",
                std::to_string(options.vni_max), ": need 1 <= min <= max <= ", std::to_string(kMaxVni));
  }
  return {};
}

Result<podvm::PodNetwork> NodeNetwork::Inspect(const std::string& netns_path, uint32_t vni) const {
  auto own = netlink::IsCurrentNetns(netns_path);
  if (!own) return Fail(own.error().code, "pod network namespace ", netns_path, ": ", own.error().message);
  if (*own) {
    // The tc redirect would take this node's own interface away from it.
    return Fail(Code::kInvalidArgument, "pod network namespace ", netns_path,
                " is this node's own network namespace, not a pod's");
  }
  auto pod = netlink::RouteSocket::OpenIn(netns_path);
  if (!pod) {
    return Fail(pod.error().code, "pod network namespace ", netns_path, ": ", pod.error().message);
  }
  // CAA's rule: the pod's interface is the one its default route leaves by.
  auto read = pod->ReadPrimaryInterface();
  if (!read) return Fail(read.error().code, "pod network namespace ", netns_path, ": ", read.error().message);
  const netlink::InterfaceConfig& config = *read;
  if (config.ipv4.size() != 1 || config.ipv6.size() > 1) {
    return Fail(Code::kFailedPrecondition, "pod network namespace ", netns_path, ": interface ", config.name, " has ",
                std::to_string(config.ipv4.size()), " IPv4 and ", std::to_string(config.ipv6.size()),
                " IPv6 addresses; a pod VM stands in for exactly one IPv4 address and at most one IPv6 address");
  }
  if (auto tunnel = pod->LinkIndex(options_.tunnel_name); tunnel) {
    return Fail(Code::kAlreadyExists, "pod network namespace ", netns_path, " already has a ", options_.tunnel_name,
                ": its pod is tunnelled to another VM already");
  }
  auto redirected = pod->HasIngressQdisc(config.name);
  if (!redirected) return std::unexpected(redirected.error());
  if (*redirected) {
    return Fail(Code::kAlreadyExists, "pod network namespace ", netns_path, ": interface ", config.name,
                " already has an ingress qdisc (tunnelled or redirected by someone else); not stacking on it");
  }
  auto node = NodeAddress(options_);
  if (!node) return std::unexpected(node.error());

  podvm::PodNetwork net;
  net.pod_ip = config.ipv4.front();
  if (!config.ipv6.empty()) net.pod_ipv6 = config.ipv6.front();
  net.pod_hw_addr = config.mac;
  net.interface = config.name;
  net.worker_node_ip = *node;
  net.tunnel_type = options_.tunnel_type;
  // CAA's node writes the kernel's subnet route of the pod's address too, and CAA's VM side needs
  // it: for a prefix that is not /32 it deletes the route the kernel made with the address, then
  // adds the listed ones (pkg/podnetwork/podnode.go); without it the gateway is unreachable there.
  if (const std::string subnet = Ipv4Subnet(net.pod_ip); !subnet.empty()) {
    net.routes.push_back({subnet, "", config.name, "kernel", "link"});
  }
  for (const auto& r : config.routes) {
    podvm::Route route;
    route.dst = !r.destination.empty() ? r.destination : (r.family == AF_INET6 ? "::/0" : "0.0.0.0/0");
    route.gw = r.gateway;
    route.dev = r.device;
    route.protocol = ProtocolName(r.protocol);
    route.scope = ScopeName(r.scope);
    // IPv6 goes in our extension key: CAA's VM has no IPv6 address to reach an IPv6 gateway with.
    (r.family == AF_INET6 ? net.routes6 : net.routes).push_back(std::move(route));
  }
  for (const auto& n : config.neighbours) {
    (IsIpv6(n.ip) ? net.neighbors6 : net.neighbors).push_back({n.ip, n.mac, n.device, "permanent"});
  }
  net.mtu = static_cast<int>(config.mtu);
  net.index = static_cast<int>(vni - options_.vni_min);  // CAA's: the VNI's offset from the minimum
  net.vxlan_port = options_.vxlan_port;
  net.vxlan_id = static_cast<int>(vni);
  return net;
}

Result<void> NodeNetwork::SetUp(const std::string& netns_path, const podvm::PodNetwork& network,
                                const std::string& vm_ip) const {
  auto node = netlink::RouteSocket::Open();
  if (!node) return std::unexpected(node.error());
  netlink::NodeTunnelSpec spec;
  spec.pod_netns = netns_path;
  spec.pod_interface = network.interface;
  spec.tunnel_name = options_.tunnel_name;
  spec.vni = static_cast<uint32_t>(network.vxlan_id);
  spec.vm_ip = vm_ip;
  // The node end the VM was told (worker-node-ip): the tunnel's packets leave from that address.
  spec.local_ip = AddressOf(network.worker_node_ip);
  spec.dst_port = static_cast<uint16_t>(network.vxlan_port);
  auto made = netlink::SetUpNodeTunnel(*node, spec);
  if (!made) {
    return Fail(made.error().code, "pod network: tunnel ", std::to_string(spec.vni), " to ", vm_ip, ": ",
                made.error().message);
  }
  // The pod's interface as read now, against what the VM was told at CreateVM: a CNI that changed
  // the pod's address in between would leave the VM answering for an address the node no longer has.
  if (made->ipv4.empty() || made->ipv4.front() != network.pod_ip || made->mac != network.pod_hw_addr) {
    (void)netlink::TearDownNodeTunnel(*node, spec);
    return Fail(Code::kFailedPrecondition, "pod network: interface ", network.interface, " in ", netns_path,
                " changed its address or MAC since CreateVM; the pod VM was built for ", network.pod_ip);
  }
  return {};
}

Result<void> NodeNetwork::TearDown(const std::string& netns_path, const podvm::PodNetwork& network) const {
  auto node = netlink::RouteSocket::Open();
  if (!node) return std::unexpected(node.error());
  netlink::NodeTunnelSpec spec;
  spec.pod_netns = netns_path;
  spec.pod_interface = network.interface;
  spec.tunnel_name = options_.tunnel_name;
  spec.vni = static_cast<uint32_t>(network.vxlan_id);
  return netlink::TearDownNodeTunnel(*node, spec);
}

}  // namespace pp::adaptor
