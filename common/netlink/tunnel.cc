#include "common/netlink/tunnel.h"

#include <linux/rtnetlink.h>

#include <algorithm>

#include "common/base/undo.h"
#include "common/netlink/netns.h"

namespace pp::netlink {
namespace {

// Creates the VXLAN device in the underlay namespace and moves it into `netns_path` as
// `final_name`. On success the device exists only there; on failure nowhere.
Result<void> CreateAndMove(RouteSocket& underlay, const VxlanSpec& vxlan,
                           const std::string& netns_path, const std::string& final_name) {
  auto netns = OpenNetns(netns_path);
  if (!netns) return std::unexpected(netns.error());
  if (auto created = underlay.CreateVxlan(vxlan); !created) return created;
  if (auto moved = underlay.MoveLink(vxlan.name, netns->get(), final_name); !moved) {
    (void)underlay.DeleteLink(vxlan.name);
    return moved;
  }
  return {};
}

// The tunnel's MTU: the caller's if set, else the pod interface's, lowered to what the underlay
// carries unfragmented. No fixed cap (CAA's 1450): a jumbo-frame underlay gives a jumbo tunnel.
Result<uint32_t> TunnelMtu(RouteSocket& underlay, uint32_t requested, uint32_t pod_mtu,
                           const std::string& remote) {
  if (requested != 0) return requested;
  auto fits = underlay.TunnelMtuTowards(remote);
  if (!fits) return std::unexpected(fits.error());
  return pod_mtu != 0 ? std::min(pod_mtu, *fits) : *fits;
}

bool IsNotFound(const Result<void>& r) { return !r && r.error().code == Code::kNotFound; }

}  // namespace

std::string TransientTunnelName(uint32_t vni) { return "ppvx" + std::to_string(vni); }

Result<InterfaceConfig> SetUpNodeTunnel(RouteSocket& node, const NodeTunnelSpec& spec) {
  auto pod = RouteSocket::OpenIn(spec.pod_netns);
  if (!pod) return std::unexpected(pod.error());
  // Read first and refuse early: a pod netns without IPv4 or an interface already redirected fails
  // before anything is made.
  auto read = spec.pod_interface.empty() ? pod->ReadPrimaryInterface()
                                         : pod->ReadInterface(spec.pod_interface);
  if (!read) return std::unexpected(read.error());
  InterfaceConfig config = *std::move(read);
  if (config.ipv4.empty())
    return Fail(Code::kFailedPrecondition, "netlink: interface ", config.name, " in ",
                spec.pod_netns, " has no IPv4 address; the pod network needs the pod's IPv4");
  auto redirected = pod->HasIngressQdisc(config.name);
  if (!redirected) return std::unexpected(redirected.error());
  if (*redirected)
    return Fail(Code::kAlreadyExists, "netlink: ", config.name, " in ", spec.pod_netns,
                " already has an ingress qdisc (already tunnelled?)");

  auto mtu = TunnelMtu(node, spec.mtu, config.mtu, spec.vm_ip);
  if (!mtu) return std::unexpected(mtu.error());
  VxlanSpec vxlan{
      TransientTunnelName(spec.vni), spec.vni, spec.vm_ip, spec.local_ip, spec.dst_port, *mtu};
  Undo undo("netlink");
  if (auto made = CreateAndMove(node, vxlan, spec.pod_netns, spec.tunnel_name); !made)
    return std::unexpected(made.error());
  RouteSocket& in_pod = *pod;
  undo.Add("delete " + spec.tunnel_name, [&] { (void)in_pod.DeleteLink(spec.tunnel_name); });
  if (auto up = in_pod.SetLinkUp(spec.tunnel_name); !up) return std::unexpected(up.error());
  // Deleting the tunnel takes its own ingress qdisc with it; the pod interface's needs undoing.
  if (auto r = in_pod.AddIngressRedirect(config.name, spec.tunnel_name); !r)
    return std::unexpected(r.error());
  undo.Add("delete ingress of " + config.name,
           [&] { (void)in_pod.DeleteIngressRedirect(config.name); });
  if (auto r = in_pod.AddIngressRedirect(spec.tunnel_name, config.name); !r)
    return std::unexpected(r.error());
  undo.Commit();
  return config;
}

Result<void> TearDownNodeTunnel(RouteSocket& node, const NodeTunnelSpec& spec) {
  // A tunnel whose move failed half-way would still sit in the node's namespace (its name holds
  // our VNI, so it is ours).
  if (auto r = node.DeleteLink(TransientTunnelName(spec.vni)); !r && !IsNotFound(r)) return r;
  auto pod = RouteSocket::OpenIn(spec.pod_netns);
  if (!pod) {
    // The pod netns is gone (the CNI deleted it, or its path is being unmounted: no longer a
    // namespace file): so is everything we put in it.
    if (pod.error().code == Code::kNotFound || pod.error().code == Code::kInvalidArgument) return {};
    return std::unexpected(pod.error());
  }
  // Only what is ours: a tunnel of this name with our VNI, and with it the redirect SetUp put on
  // the pod's interface (made only once the tunnel was there). A tunnel with another VNI, or a
  // redirect without our tunnel, belongs to someone else and stays.
  auto vni = pod->VxlanId(spec.tunnel_name);
  if (!vni) {
    const Code code = vni.error().code;
    return code == Code::kNotFound || code == Code::kFailedPrecondition ? Result<void>{}
                                                                        : std::unexpected(vni.error());
  }
  if (*vni != spec.vni) return {};
  std::string pod_interface = spec.pod_interface;
  if (pod_interface.empty()) {
    // The CNI interface is the one the tunnel redirects to: find it by the same rule as SetUp.
    auto primary = pod->ReadPrimaryInterface();
    if (primary) pod_interface = primary->name;
  }
  if (!pod_interface.empty()) {
    if (auto r = pod->DeleteIngressRedirect(pod_interface); !r && !IsNotFound(r)) return r;
  }
  if (auto r = pod->DeleteLink(spec.tunnel_name); !r && !IsNotFound(r)) return r;
  return {};
}

Result<void> SetUpPodTunnel(RouteSocket& vm, const PodTunnelSpec& spec) {
  const InterfaceConfig& pod_if = spec.pod;
  if (pod_if.name.empty() || pod_if.mac.empty())
    return Fail(Code::kInvalidArgument, "netlink: the pod interface needs a name and a MAC");
  if (pod_if.ipv4.empty())
    return Fail(Code::kInvalidArgument, "netlink: the pod interface ", pod_if.name,
                " has no IPv4 address");
  auto pod = RouteSocket::OpenIn(spec.pod_netns);
  if (!pod) return std::unexpected(pod.error());
  auto tunnel_mtu = TunnelMtu(vm, spec.mtu, pod_if.mtu, spec.node_ip);
  if (!tunnel_mtu) return std::unexpected(tunnel_mtu.error());
  const uint32_t mtu = *tunnel_mtu;

  VxlanSpec vxlan{
      TransientTunnelName(spec.vni), spec.vni, spec.node_ip, spec.local_ip, spec.dst_port, mtu};
  Undo undo("netlink");
  if (auto made = CreateAndMove(vm, vxlan, spec.pod_netns, pod_if.name); !made) return made;
  RouteSocket& in_pod = *pod;
  // Addresses, routes and neighbours on the device go with it: deleting it is the whole undo.
  undo.Add("delete " + pod_if.name, [&] { (void)in_pod.DeleteLink(pod_if.name); });
  if (auto r = in_pod.SetLinkAttributes(pod_if.name, pod_if.mac, mtu); !r) return r;
  for (const auto& list : {pod_if.ipv4, pod_if.ipv6})
    for (const auto& prefix : list)
      if (auto r = in_pod.AddAddress(pod_if.name, prefix); !r) return r;
  if (auto r = in_pod.SetLinkUp("lo"); !r) return r;
  if (auto r = in_pod.SetLinkUp(pod_if.name); !r) return r;
  // On-link routes first: a gateway must be reachable when the route through it is added (the
  // Calico pattern: 169.254.1.1 dev eth0 scope link, then default via 169.254.1.1).
  for (bool with_gateway : {false, true}) {
    for (Route route : pod_if.routes) {
      if (route.gateway.empty() == with_gateway) continue;
      route.device = pod_if.name;
      if (auto r = in_pod.AddRoute(route); !r) return r;
    }
  }
  for (Neighbour neighbour : pod_if.neighbours) {
    neighbour.device = pod_if.name;
    if (auto r = in_pod.AddPermanentNeighbour(neighbour); !r) return r;
  }
  undo.Commit();
  return {};
}

Result<void> TearDownPodTunnel(RouteSocket& vm, const PodTunnelSpec& spec) {
  // A process that died between create and move leaves the tunnel in the VM's namespace.
  if (auto r = vm.DeleteLink(TransientTunnelName(spec.vni)); !r && !IsNotFound(r)) return r;
  auto pod = RouteSocket::OpenIn(spec.pod_netns);
  if (!pod)
    return pod.error().code == Code::kNotFound ? Result<void>{} : std::unexpected(pod.error());
  if (auto r = pod->DeleteLink(spec.pod.name); !r && !IsNotFound(r)) return r;
  return {};
}

}  // namespace pp::netlink
