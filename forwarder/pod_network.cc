#include "forwarder/pod_network.h"

#include <fcntl.h>
#include <linux/rtnetlink.h>
#include <sched.h>
#include <spdlog/spdlog.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <filesystem>
#include <thread>
#include <utility>

#include "common/base/undo.h"
#include "common/netlink/netns.h"
#include "common/netlink/route_socket.h"

namespace pp::forwarder {
namespace {

constexpr uint16_t kVxlanPort = 4789;  // IANA's VXLAN port (RFC 7348 section 5)

std::unexpected<Error> Invalid(const std::string& key, const std::string& why) {
  return Fail(Code::kInvalidArgument, "apf.json: pod-network.", key, ": ", why);
}

int FamilyOf(const std::string& address) {
  return address.find(':') != std::string::npos ? AF_INET6 : AF_INET;
}

std::string WithoutPrefix(const std::string& prefix) { return prefix.substr(0, prefix.find('/')); }

// The names CAA's netops package writes (iproute2's rt_protos and rt_scopes files).
Result<int> Protocol(const std::string& name, const std::string& key) {
  if (name.empty()) return -1;  // RouteSocket::AddRoute's default: boot, as `ip route add`
  if (name == "boot") return RTPROT_BOOT;
  if (name == "static") return RTPROT_STATIC;
  if (name == "dhcp") return RTPROT_DHCP;
  if (name == "kernel") return RTPROT_KERNEL;
  return Invalid(key, "unknown route protocol");
}

Result<int> Scope(const std::string& name, const std::string& key) {
  if (name.empty()) return -1;  // link without a gateway, else universe, as `ip route add`
  if (name == "universe") return RT_SCOPE_UNIVERSE;
  if (name == "site") return RT_SCOPE_SITE;
  if (name == "link") return RT_SCOPE_LINK;
  if (name == "host") return RT_SCOPE_HOST;
  if (name == "nowhere") return RT_SCOPE_NOWHERE;
  return Invalid(key, "unknown route scope");
}

// A route or neighbour names a device; the VM end has one, the pod's interface.
Result<void> OnPodInterface(const std::string& dev, const std::string& interface,
                            const std::string& key) {
  if (dev.empty() || dev == interface) return {};
  return Invalid(key, "device \"" + dev + "\" is not the pod interface \"" + interface +
                          "\"; the pod VM carries only that one");
}

Result<netlink::Route> ConvertRoute(const podvm::Route& in, const std::string& interface,
                                    const std::string& key) {
  netlink::Route out;
  if (auto ok = OnPodInterface(in.dev, interface, key + ".dev"); !ok)
    return std::unexpected(ok.error());
  out.device = interface;
  out.gateway = in.gw;
  if (in.dst.empty() || in.dst == "0.0.0.0/0" || in.dst == "::/0") {
    out.family = !in.dst.empty() ? FamilyOf(in.dst) : !in.gw.empty() ? FamilyOf(in.gw) : AF_INET;
  } else {
    out.destination = in.dst;
    out.family = FamilyOf(in.dst);
  }
  if (!in.gw.empty() && FamilyOf(in.gw) != out.family)
    return Invalid(key + ".gw", "the gateway's address family differs from dst's");
  auto protocol = Protocol(in.protocol, key + ".protocol");
  if (!protocol) return std::unexpected(protocol.error());
  out.protocol = *protocol;
  auto scope = Scope(in.scope, key + ".scope");
  if (!scope) return std::unexpected(scope.error());
  out.scope = *scope;
  return out;
}

}  // namespace

Result<netlink::PodTunnelSpec> PodTunnelFromApf(const podvm::PodNetwork& network,
                                                std::string pod_netns) {
  if (!network.tunnel_type.empty() && network.tunnel_type != "vxlan")
    return Invalid("tunnel-type", "\"" + network.tunnel_type +
                                      "\" is not supported; the only tunnel type is vxlan");
  if (network.dedicated)
    return Invalid(
        "dedicated",
        "a dedicated tunnel interface (CAA's -host-interface on the node) is not supported");
  if (network.external_net_via_pod_vm)
    return Invalid("external-net-via-pod-vm",
                   "external network through the pod VM is not supported");
  if (network.pod_ip.empty())
    return Invalid("podip", "missing; the pod's IPv4 address is required");
  if (FamilyOf(network.pod_ip) != AF_INET)
    return Invalid("podip", "not an IPv4 prefix (a dual-stack pod's IPv6 goes in podipv6)");
  if (!network.pod_ipv6.empty() && FamilyOf(network.pod_ipv6) != AF_INET6)
    return Invalid("podipv6", "not an IPv6 prefix");
  if (network.interface.empty())
    return Invalid("interface", "missing; the pod interface's name is required");
  if (network.pod_hw_addr.empty())
    return Invalid("pod-hw-addr", "missing; the pod interface's MAC is required");
  if (network.vxlan_id <= 0) return Invalid("vxlan-id", "missing; the tunnel's VNI is required");
  if (network.worker_node_ip.empty())
    return Invalid("worker-node-ip",
                   "missing; the worker node's address is the tunnel's remote end");
  if (network.mtu < 0) return Invalid("mtu", "negative");

  netlink::PodTunnelSpec spec;
  spec.pod_netns = std::move(pod_netns);
  netlink::InterfaceConfig& pod = spec.pod;
  pod.name = network.interface;
  pod.mac = network.pod_hw_addr;
  pod.mtu = static_cast<uint32_t>(network.mtu);
  pod.ipv4 = {network.pod_ip};
  if (!network.pod_ipv6.empty()) pod.ipv6 = {network.pod_ipv6};
  // "routes6"/"neighbors6" are our dual-stack extension (see apf_config.h): the same forms.
  std::vector<std::pair<std::string, const podvm::Route*>> routes;
  for (std::size_t i = 0; i < network.routes.size(); ++i)
    routes.emplace_back("routes[" + std::to_string(i) + "]", &network.routes[i]);
  for (std::size_t i = 0; i < network.routes6.size(); ++i)
    routes.emplace_back("routes6[" + std::to_string(i) + "]", &network.routes6[i]);
  std::vector<std::pair<std::string, const podvm::Neighbor*>> neighbors;
  for (std::size_t i = 0; i < network.neighbors.size(); ++i)
    neighbors.emplace_back("neighbors[" + std::to_string(i) + "]", &network.neighbors[i]);
  for (std::size_t i = 0; i < network.neighbors6.size(); ++i)
    neighbors.emplace_back("neighbors6[" + std::to_string(i) + "]", &network.neighbors6[i]);
  for (const auto& [key, in_route] : routes) {
    auto route = ConvertRoute(*in_route, pod.name, key);
    if (!route) return std::unexpected(route.error());
    // The prefix route of each address: the kernel adds it again with the address.
    if (route->protocol == RTPROT_KERNEL) continue;
    pod.routes.push_back(*std::move(route));
  }
  for (const auto& [key, in_neighbor] : neighbors) {
    const podvm::Neighbor& in = *in_neighbor;
    if (auto ok = OnPodInterface(in.dev, pod.name, key + ".dev"); !ok)
      return std::unexpected(ok.error());
    // Only permanent entries are configuration (the node copies only those); anything else the
    // pod learns again by ARP or NDP.
    if (!in.state.empty() && in.state != "permanent") continue;
    if (in.hw_addr.empty())
      return Invalid(key + ".hw-addr", "missing; a permanent neighbour needs a MAC");
    pod.neighbours.push_back({in.ip, in.hw_addr, pod.name});
  }
  spec.vni = static_cast<uint32_t>(network.vxlan_id);
  spec.node_ip = WithoutPrefix(network.worker_node_ip);
  spec.dst_port = network.vxlan_port != 0 ? static_cast<uint16_t>(network.vxlan_port) : kVxlanPort;
  return spec;
}

Result<void> RemoveNetns(const std::string& path) {
  if (::umount2(path.c_str(), MNT_DETACH) != 0 && errno != EINVAL && errno != ENOENT)
    return std::unexpected(ErrnoError("unmount " + path, errno));
  if (::unlink(path.c_str()) != 0 && errno != ENOENT)
    return std::unexpected(ErrnoError("remove " + path, errno));
  return {};
}

namespace {

// iproute2 ip/ipnetns.c, netns_add: the directory becomes a shared mount point (bind-mounted onto
// itself first if it is not a mount point yet), so a namespace mounted in it later propagates to
// mount namespaces made after (the agent's containers', say).
Result<void> MakeSharedMountPoint(const std::string& dir) {
  for (bool bound = false;;) {
    if (::mount("", dir.c_str(), "none", MS_SHARED | MS_REC, nullptr) == 0) return {};
    if (errno != EINVAL || bound)
      return std::unexpected(ErrnoError("make " + dir + " a shared mount", errno));
    if (::mount(dir.c_str(), dir.c_str(), "none", MS_BIND | MS_REC, nullptr) != 0)
      return std::unexpected(ErrnoError("bind-mount " + dir + " onto itself", errno));
    bound = true;
  }
}

// On a thread of its own, which ends with it: unshare(2) moves only the calling thread into the
// new namespace, so the rest of the process keeps its own; the bind mount keeps the namespace
// alive after the thread is gone.
Result<void> MountNewNetns(const std::string& path) {
  Result<void> result;
  std::thread maker([&] {
    if (::unshare(CLONE_NEWNET) != 0) {
      result = std::unexpected(ErrnoError("unshare(CLONE_NEWNET)", errno));
      return;
    }
    if (::mount("/proc/thread-self/ns/net", path.c_str(), "none", MS_BIND, nullptr) != 0) {
      result = std::unexpected(ErrnoError("bind-mount a new network namespace on " + path, errno));
      return;
    }
    auto sock = netlink::RouteSocket::Open();
    if (!sock) {
      result = std::unexpected(sock.error());
      return;
    }
    result = sock->SetLinkUp("lo");
  });
  maker.join();
  return result;
}

}  // namespace

Result<bool> EnsureNetns(const std::string& path) {
  auto existing = netlink::OpenNetns(path);
  if (existing) return false;
  bool reuse_file = false;
  if (existing.error().code == Code::kInvalidArgument) {
    // An empty regular file is what a create cut short between the file and the mount leaves.
    struct stat st {};
    if (::stat(path.c_str(), &st) != 0 || !S_ISREG(st.st_mode) || st.st_size != 0)
      return Fail(
          Code::kInvalidArgument, "pod network: ", path,
          " exists and is not a network namespace; remove it or give another -pod-namespace");
    reuse_file = true;
  } else if (existing.error().code != Code::kNotFound) {
    return std::unexpected(existing.error());
  }
  const std::string dir = std::filesystem::path(path).parent_path().string();
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) return Fail(Code::kInternal, "pod network: create ", dir, ": ", ec.message());
  if (auto shared = MakeSharedMountPoint(dir); !shared) return std::unexpected(shared.error());
  if (!reuse_file) {
    ScopedFd file(::open(path.c_str(), O_RDONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0));
    if (!file) return std::unexpected(ErrnoError("create " + path, errno));
  }
  if (auto mounted = MountNewNetns(path); !mounted) {
    (void)RemoveNetns(path);
    return std::unexpected(mounted.error());
  }
  return true;
}

namespace {

std::string ElapsedSeconds(std::chrono::steady_clock::time_point since) {
  return std::to_string(
      std::chrono::duration_cast<std::chrono::seconds>(std::chrono::steady_clock::now() - since)
          .count());
}

// Waits until the VM's interface toward the node has an IPv4 address and a route reaches the node
// (TunnelMtuTowards needs that route to size the tunnel). Returns the tunnel's local address: the
// named host interface's, or empty for the kernel's choice.
Result<std::string> WaitForUnderlay(netlink::RouteSocket& vm, const PodNetworkOptions& options,
                                    const std::string& node_ip) {
  using Clock = std::chrono::steady_clock;
  const auto started = Clock::now();
  const auto deadline = started + options.underlay_wait;
  auto next_report = started;
  const std::string which = options.host_interface.empty() ? "the VM's primary interface"
                                                           : "interface " + options.host_interface;
  for (;;) {
    std::string missing;
    auto iface = options.host_interface.empty() ? vm.ReadPrimaryInterface()
                                                : vm.ReadInterface(options.host_interface);
    if (!iface) {
      missing = iface.error().message;
    } else if (iface->ipv4.empty()) {
      missing = iface->name + " has no IPv4 address yet";
    } else if (auto mtu = vm.TunnelMtuTowards(node_ip); !mtu) {
      missing = mtu.error().message;
    } else {
      if (Clock::now() > started + options.poll)
        spdlog::info("pod network: {} is ready after {} s", which, ElapsedSeconds(started));
      return options.host_interface.empty() ? std::string() : WithoutPrefix(iface->ipv4.front());
    }
    if (Clock::now() >= deadline)
      return Fail(Code::kDeadlineExceeded, "pod network: ", which, " toward the worker node ",
                  node_ip, " is not ready after ", ElapsedSeconds(started), " s: ", missing);
    if (Clock::now() >= next_report) {
      spdlog::info("pod network: waiting for {} toward the worker node {}: {}", which, node_ip,
                   missing);
      next_report = Clock::now() + std::chrono::seconds(10);
    }
    std::this_thread::sleep_for(options.poll);
  }
}

}  // namespace

Result<std::optional<BuiltPodNetwork>> SetUpPodNetwork(const podvm::ApfConfig& apf,
                                                       const PodNetworkOptions& options) {
  if (!apf.pod_network) return std::nullopt;
  if (options.pod_netns.empty())
    return Fail(
        Code::kInvalidArgument,
        "pod network: apf.json has a pod-network but -pod-namespace is empty; give the namespace "
        "the containers join");
  BuiltPodNetwork built;
  auto spec = PodTunnelFromApf(*apf.pod_network, options.pod_netns);
  if (!spec) return std::unexpected(spec.error());
  built.spec = *std::move(spec);
  auto vm = options.vm_netns.empty() ? netlink::RouteSocket::Open()
                                     : netlink::RouteSocket::OpenIn(options.vm_netns);
  if (!vm) return std::unexpected(vm.error());
  auto local = WaitForUnderlay(*vm, options, built.spec.node_ip);
  if (!local) return std::unexpected(local.error());
  built.spec.local_ip = *local;

  auto created = EnsureNetns(options.pod_netns);
  if (!created) return std::unexpected(created.error());
  built.created_netns = *created;
  // The tunnel takes the pod interface's name (eth0): in the VM's own namespace it would replace
  // the VM's own NIC, and a restart's teardown would delete that NIC.
  auto own = options.vm_netns.empty() ? netlink::IsCurrentNetns(options.pod_netns)
                                      : netlink::SameNetns(options.pod_netns, options.vm_netns);
  if (!own || *own) {
    if (*created) (void)RemoveNetns(options.pod_netns);
    if (!own) return std::unexpected(own.error());
    return Fail(Code::kInvalidArgument, "pod network: -pod-namespace ", options.pod_netns,
                " is the VM's own network namespace; the pod needs a namespace of its own");
  }
  Undo undo("pod network");
  if (built.created_netns)
    undo.Add("remove " + options.pod_netns, [&] { (void)RemoveNetns(options.pod_netns); });
  // A forwarder restarted by its supervisor finds what its previous run built: take it down and
  // build again from apf.json, which does not change during the VM's life.
  if (auto down = netlink::TearDownPodTunnel(*vm, built.spec); !down)
    return Fail(down.error().code,
                "pod network: take down an earlier tunnel: ", down.error().message);
  if (auto up = netlink::SetUpPodTunnel(*vm, built.spec); !up)
    return Fail(up.error().code, "pod network: ", up.error().message);
  auto pod = netlink::RouteSocket::OpenIn(options.pod_netns);
  auto read = pod ? pod->ReadInterface(built.spec.pod.name)
                  : Result<netlink::InterfaceConfig>(std::unexpected(pod.error()));
  if (!read) {
    (void)netlink::TearDownPodTunnel(*vm, built.spec);
    return Fail(read.error().code, "pod network: read back ", built.spec.pod.name, ": ",
                read.error().message);
  }
  built.pod = *std::move(read);
  undo.Commit();
  return built;
}

std::string DescribePodNetwork(const BuiltPodNetwork& built) {
  std::string text = "pod network: " + built.pod.name;
  for (const auto& list : {built.pod.ipv4, built.pod.ipv6})
    for (const auto& prefix : list) text += " " + prefix;
  text += " mac " + built.pod.mac + " mtu " + std::to_string(built.pod.mtu) + " in " +
          built.spec.pod_netns;
  if (built.created_netns) text += " (created)";
  text += ", VXLAN " + std::to_string(built.spec.vni) + " to " + built.spec.node_ip + ":" +
          std::to_string(built.spec.dst_port);
  if (!built.spec.local_ip.empty()) text += " from " + built.spec.local_ip;
  text += ", " + std::to_string(built.pod.routes.size()) + " routes, " +
          std::to_string(built.pod.neighbours.size()) + " neighbours";
  return text;
}

}  // namespace pp::forwarder
