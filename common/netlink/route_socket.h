// RouteSocket: a NETLINK_ROUTE socket bound to one network namespace, and the operations the pod
// network needs on that namespace: links (VXLAN create, move, rename, MAC/MTU/up, delete),
// addresses, routes, neighbours, tc redirects, and reading an interface's configuration.
//
// The socket is bound to the namespace it was created in (OpenIn enters it for the duration of
// socket() only, see netns.h), so a RouteSocket may be used from any thread, but from one at a
// time: libnl sockets are not thread-safe (https://www.infradead.org/~tgr/libnl/doc/core.html,
// "Sockets").
//
// Every mutating call either succeeds or leaves the namespace as it found it (each is one netlink
// request, which the kernel applies whole or not at all). Errors are pp::Error: ALREADY_EXISTS for
// EEXIST, NOT_FOUND for a missing link or namespace, PERMISSION_DENIED without CAP_NET_ADMIN.
#pragma once

#include <cstdint>
#include <string>

#include "common/base/error.h"
#include "common/base/handle.h"
#include "common/netlink/types.h"

struct nl_sock;

namespace pp::netlink {

class RouteSocket {
 public:
  static Result<RouteSocket> Open();                            // the calling thread's namespace
  static Result<RouteSocket> OpenIn(const std::string& netns);  // the namespace at that path

  // Links.
  Result<int> LinkIndex(const std::string& name);
  Result<std::string> LinkMac(const std::string& name);
  // The VNI of the VXLAN device `name`: NOT_FOUND without such a link, FAILED_PRECONDITION when it
  // is not a VXLAN device.
  Result<uint32_t> VxlanId(const std::string& name);
  // Creates a VXLAN device (down). ALREADY_EXISTS if the name is taken.
  Result<void> CreateVxlan(const VxlanSpec& spec);
  // Moves `name` into the namespace `netns_fd` refers to, named `new_name` there (empty: same
  // name). The kernel moves and renames in one step, so a name taken in the target fails and leaves
  // the link where it was.
  Result<void> MoveLink(const std::string& name, int netns_fd, const std::string& new_name = "");
  // Sets the link's MAC (if not empty) and MTU (if not 0); does not change up/down.
  Result<void> SetLinkAttributes(const std::string& name, const std::string& mac, uint32_t mtu);
  Result<void> SetLinkUp(const std::string& name);
  Result<void> DeleteLink(const std::string& name);

  // The largest MTU a VXLAN device may have so that its packets to `remote` leave unfragmented: the
  // MTU of the route the kernel picks for `remote` (its mtu metric, else its device's), minus the
  // encapsulation (RFC 7348 section 5: inner Ethernet 14 + VXLAN 8 + UDP 8 + outer IPv4 20 or
  // IPv6 40). NOT_FOUND when no route reaches `remote`.
  Result<uint32_t> TunnelMtuTowards(const std::string& remote);

  // Adds "10.244.1.5/24" to a link, without duplicate address detection for IPv6 (the address is
  // the pod's, already checked on the node; DAD would only delay it, RFC 4862 section 5.4).
  Result<void> AddAddress(const std::string& device, const std::string& prefix);
  // Adds `route`, replacing one to the same destination (same table, metric and TOS) if any.
  Result<void> AddRoute(const Route& route);
  Result<void> AddPermanentNeighbour(const Neighbour& neighbour);

  // The interface that carries the IPv4 default route, or else the only non-loopback interface;
  // FAILED_PRECONDITION if there is none, or it has no IPv4 address.
  Result<InterfaceConfig> ReadPrimaryInterface();
  Result<InterfaceConfig> ReadInterface(const std::string& name);

  // tc: an ingress qdisc on `from` with a u32 match-all filter whose mirred action redirects every
  // packet arriving on `from` to the egress of `to` (tc-mirred(8), tc-u32(8)). ALREADY_EXISTS if
  // `from` already has an ingress qdisc: someone else redirects it, we do not stack on top.
  Result<void> AddIngressRedirect(const std::string& from, const std::string& to);
  // Deletes the ingress qdisc of `from`, and with it every filter under it. NOT_FOUND if none.
  Result<void> DeleteIngressRedirect(const std::string& from);
  Result<bool> HasIngressQdisc(const std::string& device);

  nl_sock* get() const { return sock_.get(); }

 private:
  static void Free(nl_sock* sock);
  using SockHandle = CHandle<nl_sock, &RouteSocket::Free>;
  explicit RouteSocket(SockHandle sock) : sock_(std::move(sock)) {}
  SockHandle sock_;
};

}  // namespace pp::netlink
