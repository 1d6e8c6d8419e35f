// Reading an interface's configuration: what CAA's Inspect gathers in the pod netns (link,
// addresses, routes, permanent neighbours), through libnl caches filled by one dump request each.
#include <linux/if.h>
#include <linux/neighbour.h>
#include <linux/rtnetlink.h>

#include "common/netlink/libnl.h"
#include "common/netlink/route_socket.h"

namespace pp::netlink {
namespace {

template <typename T>
void ForEach(nl_cache* cache, auto&& fn) {
  for (nl_object* obj = nl_cache_get_first(cache); obj != nullptr; obj = nl_cache_get_next(obj))
    fn(reinterpret_cast<T*>(obj));
}

std::string WithPrefix(const nl_addr* addr, int prefix_len) {
  return IpToString(addr) + "/" + std::to_string(prefix_len);
}

}  // namespace

Result<InterfaceConfig> RouteSocket::ReadPrimaryInterface() {
  nl_cache* raw = nullptr;
  if (int err = rtnl_route_alloc_cache(get(), AF_INET, 0, &raw); err < 0)
    return std::unexpected(NlError("netlink: dump routes", err));
  NlCache routes(raw);
  int index = 0;
  ForEach<rtnl_route>(routes.get(), [&](rtnl_route* r) {
    if (index != 0 || rtnl_route_get_table(r) != RT_TABLE_MAIN) return;
    if (nl_addr_get_prefixlen(rtnl_route_get_dst(r)) != 0 || rtnl_route_get_nnexthops(r) < 1)
      return;
    index = rtnl_route_nh_get_ifindex(rtnl_route_nexthop_n(r, 0));
  });
  if (int err = rtnl_link_alloc_cache(get(), AF_UNSPEC, &raw); err < 0)
    return std::unexpected(NlError("netlink: dump links", err));
  NlCache links(raw);
  if (index == 0) {
    // No default route: a pod netns with one interface besides lo still names it unambiguously.
    int candidates = 0;
    ForEach<rtnl_link>(links.get(), [&](rtnl_link* l) {
      if ((rtnl_link_get_flags(l) & IFF_LOOPBACK) != 0) return;
      ++candidates;
      index = rtnl_link_get_ifindex(l);
    });
    if (candidates != 1)
      return Fail(
          Code::kFailedPrecondition, "netlink: the namespace has no IPv4 default route and ",
          std::to_string(candidates), " interfaces besides lo; cannot tell which is the pod's");
  }
  char name[IFNAMSIZ] = {};
  if (rtnl_link_i2name(links.get(), index, name, sizeof name) == nullptr)
    return Fail(Code::kNotFound, "netlink: no link with index ", std::to_string(index));
  auto config = ReadInterface(name);
  if (!config) return config;
  if (config->ipv4.empty())
    return Fail(Code::kFailedPrecondition, "netlink: interface ", config->name,
                " has no IPv4 address; the pod network needs the pod's IPv4 address");
  return config;
}

Result<InterfaceConfig> RouteSocket::ReadInterface(const std::string& name) {
  auto link = GetLink(get(), name);
  if (!link) return std::unexpected(link.error());
  InterfaceConfig config;
  config.name = name;
  config.index = rtnl_link_get_ifindex(link->get());
  config.mtu = rtnl_link_get_mtu(link->get());
  if (const nl_addr* mac = rtnl_link_get_addr(link->get()); mac != nullptr)
    config.mac = IpToString(mac);

  nl_cache* raw = nullptr;
  if (int err = rtnl_addr_alloc_cache(get(), &raw); err < 0)
    return std::unexpected(NlError("netlink: dump addresses", err));
  NlCache addrs(raw);
  ForEach<rtnl_addr>(addrs.get(), [&](rtnl_addr* a) {
    if (rtnl_addr_get_ifindex(a) != config.index || rtnl_addr_get_scope(a) != RT_SCOPE_UNIVERSE)
      return;
    const std::string text = WithPrefix(rtnl_addr_get_local(a), rtnl_addr_get_prefixlen(a));
    (rtnl_addr_get_family(a) == AF_INET ? config.ipv4 : config.ipv6).push_back(text);
  });

  if (int err = rtnl_route_alloc_cache(get(), AF_UNSPEC, 0, &raw); err < 0)
    return std::unexpected(NlError("netlink: dump routes", err));
  NlCache routes(raw);
  ForEach<rtnl_route>(routes.get(), [&](rtnl_route* r) {
    // Kernel-made routes (the prefix route of each address, fe80::/64) come back by themselves
    // when the addresses are added on the other side; copying them would collide (EEXIST).
    if (rtnl_route_get_table(r) != RT_TABLE_MAIN || rtnl_route_get_protocol(r) == RTPROT_KERNEL)
      return;
    if (rtnl_route_get_type(r) != RTN_UNICAST || rtnl_route_get_nnexthops(r) != 1) return;
    rtnl_nexthop* nh = rtnl_route_nexthop_n(r, 0);
    if (rtnl_route_nh_get_ifindex(nh) != config.index) return;
    Route route;
    const nl_addr* dst = rtnl_route_get_dst(r);
    if (nl_addr_get_prefixlen(dst) != 0)
      route.destination = WithPrefix(dst, static_cast<int>(nl_addr_get_prefixlen(dst)));
    if (const nl_addr* gw = rtnl_route_nh_get_gateway(nh); gw != nullptr)
      route.gateway = IpToString(gw);
    route.device = name;
    route.family = rtnl_route_get_family(r);
    route.scope = rtnl_route_get_scope(r);
    route.protocol = rtnl_route_get_protocol(r);
    config.routes.push_back(std::move(route));
  });

  if (int err = rtnl_neigh_alloc_cache(get(), &raw); err < 0)
    return std::unexpected(NlError("netlink: dump neighbours", err));
  NlCache neighs(raw);
  ForEach<rtnl_neigh>(neighs.get(), [&](rtnl_neigh* n) {
    if (rtnl_neigh_get_ifindex(n) != config.index || (rtnl_neigh_get_state(n) & NUD_PERMANENT) == 0)
      return;
    const nl_addr* mac = rtnl_neigh_get_lladdr(n);
    if (mac == nullptr) return;
    config.neighbours.push_back({IpToString(rtnl_neigh_get_dst(n)), IpToString(mac), name});
  });
  return config;
}

}  // namespace pp::netlink
