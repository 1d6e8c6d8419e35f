#include "common/netlink/route_socket.h"

#include <linux/if.h>
#include <linux/if_addr.h>
#include <linux/neighbour.h>
#include <linux/rtnetlink.h>
#include <netlink/route/link/vxlan.h>

#include "common/netlink/libnl.h"
#include "common/netlink/netns.h"

namespace pp::netlink {

void RouteSocket::Free(nl_sock* sock) { nl_socket_free(sock); }

Result<RouteSocket> RouteSocket::Open() {
  SockHandle sock(nl_socket_alloc());
  if (!sock) return Fail(Code::kResourceExhausted, "netlink: cannot allocate a socket");
  if (int err = nl_connect(sock.get(), NETLINK_ROUTE); err < 0)
    return std::unexpected(NlError("netlink: connect NETLINK_ROUTE", err));
  return RouteSocket(std::move(sock));
}

Result<RouteSocket> RouteSocket::OpenIn(const std::string& netns) {
  // The socket belongs to the namespace current at socket(2) (nl_connect); leaving right after is
  // what keeps the guard's scope to this thread and these lines.
  auto guard = NetnsGuard::Enter(netns);
  if (!guard) return std::unexpected(guard.error());
  return Open();
}

Result<int> RouteSocket::LinkIndex(const std::string& name) {
  auto link = GetLink(get(), name);
  if (!link) return std::unexpected(link.error());
  return rtnl_link_get_ifindex(link->get());
}

Result<std::string> RouteSocket::LinkMac(const std::string& name) {
  auto link = GetLink(get(), name);
  if (!link) return std::unexpected(link.error());
  const nl_addr* mac = rtnl_link_get_addr(link->get());
  if (mac == nullptr) return Fail(Code::kFailedPrecondition, "netlink: link ", name, " has no MAC");
  return IpToString(mac);
}

Result<uint32_t> RouteSocket::VxlanId(const std::string& name) {
  auto link = GetLink(get(), name);
  if (!link) return std::unexpected(link.error());
  uint32_t vni = 0;
  if (rtnl_link_is_vxlan(link->get()) == 0 || rtnl_link_vxlan_get_id(link->get(), &vni) < 0)
    return Fail(Code::kFailedPrecondition, "netlink: link ", name, " is not a VXLAN device");
  return vni;
}

Result<void> RouteSocket::CreateVxlan(const VxlanSpec& spec) {
  // RFC 7348 section 5: the VNI is 24 bits.
  if (spec.vni == 0 || spec.vni > 0xFFFFFF)
    return Fail(Code::kInvalidArgument, "netlink: VXLAN id ", std::to_string(spec.vni),
                " is not in 1..16777215");
  if (spec.name.empty() || spec.name.size() >= IFNAMSIZ)
    return Fail(Code::kInvalidArgument, "netlink: bad interface name '", spec.name, "'");
  Link link(rtnl_link_vxlan_alloc());
  if (!link) return Fail(Code::kResourceExhausted, "netlink: cannot allocate a VXLAN link");
  rtnl_link_set_name(link.get(), spec.name.c_str());
  rtnl_link_vxlan_set_id(link.get(), spec.vni);
  // A unicast "group" is the remote VTEP: the kernel sends every frame there (IFLA_VXLAN_GROUP,
  // Documentation/networking/vxlan.rst; iproute2's `remote` sets the same attribute).
  auto remote = ParseAddr(spec.remote);
  if (!remote) return std::unexpected(remote.error());
  rtnl_link_vxlan_set_group(link.get(), remote->get());
  if (!spec.local.empty()) {
    auto local = ParseAddr(spec.local);
    if (!local) return std::unexpected(local.error());
    rtnl_link_vxlan_set_local(link.get(), local->get());
  }
  rtnl_link_vxlan_set_port(link.get(), spec.dst_port);
  if (spec.mtu != 0) rtnl_link_set_mtu(link.get(), spec.mtu);
  if (int err = rtnl_link_add(get(), link.get(), NLM_F_CREATE | NLM_F_EXCL); err < 0)
    return std::unexpected(NlError("netlink: create VXLAN " + spec.name, err));
  return {};
}

Result<void> RouteSocket::MoveLink(const std::string& name, int netns_fd,
                                   const std::string& new_name) {
  auto link = GetLink(get(), name);
  if (!link) return std::unexpected(link.error());
  Link change(rtnl_link_alloc());
  if (!change) return Fail(Code::kResourceExhausted, "netlink: out of memory");
  rtnl_link_set_ns_fd(change.get(), netns_fd);
  // IFLA_IFNAME with IFLA_NET_NS_FD names the link in the target namespace (rtnetlink do_setlink
  // passes it to __dev_change_net_namespace), so there is no moment with a clashing name.
  if (!new_name.empty()) rtnl_link_set_name(change.get(), new_name.c_str());
  if (int err = rtnl_link_change(get(), link->get(), change.get(), 0); err < 0)
    return std::unexpected(NlError("netlink: move " + name + " to another namespace", err));
  return {};
}

Result<void> RouteSocket::SetLinkAttributes(const std::string& name, const std::string& mac,
                                            uint32_t mtu) {
  auto link = GetLink(get(), name);
  if (!link) return std::unexpected(link.error());
  Link change(rtnl_link_alloc());
  if (!change) return Fail(Code::kResourceExhausted, "netlink: out of memory");
  if (!mac.empty()) {
    auto lladdr = ParseAddr(mac, AF_LLC);
    if (!lladdr) return std::unexpected(lladdr.error());
    rtnl_link_set_addr(change.get(), lladdr->get());
  }
  if (mtu != 0) rtnl_link_set_mtu(change.get(), mtu);
  if (int err = rtnl_link_change(get(), link->get(), change.get(), 0); err < 0)
    return std::unexpected(NlError("netlink: set MAC/MTU of " + name, err));
  return {};
}

Result<void> RouteSocket::SetLinkUp(const std::string& name) {
  auto link = GetLink(get(), name);
  if (!link) return std::unexpected(link.error());
  Link change(rtnl_link_alloc());
  if (!change) return Fail(Code::kResourceExhausted, "netlink: out of memory");
  rtnl_link_set_flags(change.get(), IFF_UP);
  if (int err = rtnl_link_change(get(), link->get(), change.get(), 0); err < 0)
    return std::unexpected(NlError("netlink: set " + name + " up", err));
  return {};
}

Result<void> RouteSocket::DeleteLink(const std::string& name) {
  auto link = GetLink(get(), name);
  if (!link) return std::unexpected(link.error());
  if (int err = rtnl_link_delete(get(), link->get()); err < 0)
    return std::unexpected(NlError("netlink: delete " + name, err));
  return {};
}

Result<uint32_t> RouteSocket::TunnelMtuTowards(const std::string& remote) {
  auto dst = ParseAddr(remote);
  if (!dst) return std::unexpected(dst.error());
  rtnl_route* raw = nullptr;
  // RTM_GETROUTE for one address: the kernel's own choice, policy rules included.
  if (int err = rtnl_route_lookup(get(), dst->get(), &raw); err < 0) {
    Error e = NlError("netlink: no route to the VXLAN remote " + remote, err);
    if (e.code == Code::kInternal) e.code = Code::kNotFound;  // ENETUNREACH and friends
    return std::unexpected(std::move(e));
  }
  RouteObj route(raw);
  uint32_t mtu = 0;
  if (rtnl_route_get_metric(route.get(), RTAX_MTU, &mtu) < 0 || mtu == 0) {
    if (rtnl_route_get_nnexthops(route.get()) < 1)
      return Fail(Code::kNotFound, "netlink: the route to ", remote, " has no next hop");
    rtnl_link* raw_link = nullptr;
    const int index = rtnl_route_nh_get_ifindex(rtnl_route_nexthop_n(route.get(), 0));
    if (int err = rtnl_link_get_kernel(get(), index, nullptr, &raw_link); err < 0)
      return std::unexpected(NlError("netlink: the link towards " + remote, err));
    Link link(raw_link);
    mtu = rtnl_link_get_mtu(link.get());
  }
  const uint32_t overhead = nl_addr_get_family(dst->get()) == AF_INET6 ? 70 : 50;
  if (mtu <= overhead + 68)  // 68: the least an IPv4 link may carry (RFC 791)
    return Fail(Code::kFailedPrecondition, "netlink: the underlay towards ", remote, " has MTU ",
                std::to_string(mtu), ", too small for VXLAN");
  return mtu - overhead;
}

Result<void> RouteSocket::AddAddress(const std::string& device, const std::string& prefix) {
  auto index = LinkIndex(device);
  if (!index) return std::unexpected(index.error());
  auto local = ParseAddr(prefix);
  if (!local) return std::unexpected(local.error());
  Addr addr(rtnl_addr_alloc());
  if (!addr) return Fail(Code::kResourceExhausted, "netlink: out of memory");
  rtnl_addr_set_ifindex(addr.get(), *index);
  rtnl_addr_set_local(addr.get(), local->get());
  rtnl_addr_set_prefixlen(addr.get(), static_cast<int>(nl_addr_get_prefixlen(local->get())));
  if (nl_addr_get_family(local->get()) == AF_INET6) rtnl_addr_set_flags(addr.get(), IFA_F_NODAD);
  if (int err = rtnl_addr_add(get(), addr.get(), NLM_F_CREATE | NLM_F_EXCL); err < 0)
    return std::unexpected(NlError("netlink: add " + prefix + " to " + device, err));
  return {};
}

Result<void> RouteSocket::AddRoute(const Route& route) {
  auto index = LinkIndex(route.device);
  if (!index) return std::unexpected(index.error());
  const int family = route.family != 0 ? route.family : AF_INET;
  auto dst = ParseAddr(route.destination.empty() ? "default" : route.destination, family);
  if (!dst) return std::unexpected(dst.error());
  RouteObj obj(rtnl_route_alloc());
  if (!obj) return Fail(Code::kResourceExhausted, "netlink: out of memory");
  rtnl_route_set_family(obj.get(), static_cast<uint8_t>(family));
  rtnl_route_set_table(obj.get(), RT_TABLE_MAIN);
  rtnl_route_set_dst(obj.get(), dst->get());
  rtnl_route_set_protocol(obj.get(),
                          static_cast<uint8_t>(route.protocol >= 0 ? route.protocol : RTPROT_BOOT));
  if (route.scope >= 0)
    rtnl_route_set_scope(obj.get(), static_cast<uint8_t>(route.scope));
  else
    rtnl_route_set_scope(obj.get(), route.gateway.empty() ? RT_SCOPE_LINK : RT_SCOPE_UNIVERSE);
  rtnl_nexthop* nh = rtnl_route_nh_alloc();
  if (nh == nullptr) return Fail(Code::kResourceExhausted, "netlink: out of memory");
  rtnl_route_nh_set_ifindex(nh, *index);
  if (!route.gateway.empty()) {
    auto gw = ParseAddr(route.gateway, family);
    if (!gw) {
      rtnl_route_nh_free(nh);
      return std::unexpected(gw.error());
    }
    rtnl_route_nh_set_gateway(nh, gw->get());
  }
  rtnl_route_add_nexthop(obj.get(), nh);  // the route owns nh from here
  // NLM_F_REPLACE: a route to the same destination replaces the one there, which is the kernel's
  // prefix route of a non-/32 pod address when a PTP-style CNI routes its own subnet through the
  // gateway (CAA's VM side deletes that route first, pkg/podnetwork/podnode.go).
  if (int err = rtnl_route_add(get(), obj.get(), NLM_F_CREATE | NLM_F_REPLACE); err < 0) {
    const std::string what = (route.destination.empty() ? "default" : route.destination) +
                             (route.gateway.empty() ? "" : " via " + route.gateway) + " dev " +
                             route.device;
    return std::unexpected(NlError("netlink: add route " + what, err));
  }
  return {};
}

Result<void> RouteSocket::AddPermanentNeighbour(const Neighbour& neighbour) {
  auto index = LinkIndex(neighbour.device);
  if (!index) return std::unexpected(index.error());
  auto ip = ParseAddr(neighbour.ip);
  if (!ip) return std::unexpected(ip.error());
  auto mac = ParseAddr(neighbour.mac, AF_LLC);
  if (!mac) return std::unexpected(mac.error());
  Neigh neigh(rtnl_neigh_alloc());
  if (!neigh) return Fail(Code::kResourceExhausted, "netlink: out of memory");
  rtnl_neigh_set_ifindex(neigh.get(), *index);
  rtnl_neigh_set_dst(neigh.get(), ip->get());
  rtnl_neigh_set_lladdr(neigh.get(), mac->get());
  rtnl_neigh_set_state(neigh.get(), NUD_PERMANENT);
  if (int err = rtnl_neigh_add(get(), neigh.get(), NLM_F_CREATE | NLM_F_EXCL); err < 0)
    return std::unexpected(
        NlError("netlink: add neighbour " + neighbour.ip + " on " + neighbour.device, err));
  return {};
}

}  // namespace pp::netlink
