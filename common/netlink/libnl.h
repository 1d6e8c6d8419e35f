// Internal to pp::netlink: RAII for libnl objects and libnl error codes as pp::Error.
// libnl objects are reference counted; each *_put/_free below drops the reference we hold
// (https://www.infradead.org/~tgr/libnl/doc/core.html, "Object reference counting").
#pragma once

#include <netlink/addr.h>
#include <netlink/cache.h>
#include <netlink/route/action.h>
#include <netlink/route/addr.h>
#include <netlink/route/classifier.h>
#include <netlink/route/link.h>
#include <netlink/route/neighbour.h>
#include <netlink/route/qdisc.h>
#include <netlink/route/route.h>

#include <string>
#include <string_view>

#include "common/base/error.h"
#include "common/base/handle.h"

namespace pp::netlink {

using NlAddr = CHandle<nl_addr, nl_addr_put>;
using NlCache = CHandle<nl_cache, nl_cache_free>;
using Link = CHandle<rtnl_link, rtnl_link_put>;
using Addr = CHandle<rtnl_addr, rtnl_addr_put>;
using RouteObj = CHandle<rtnl_route, rtnl_route_put>;
using Neigh = CHandle<rtnl_neigh, rtnl_neigh_put>;
using Qdisc = CHandle<rtnl_qdisc, rtnl_qdisc_put>;
using Cls = CHandle<rtnl_cls, rtnl_cls_put>;
using Act = CHandle<rtnl_act, rtnl_act_put>;

// A negative libnl return value as "<what>: <nl_geterror>", with the gRPC code a caller can act on.
Error NlError(std::string_view what, int err);

// "10.0.0.1/24", "fd00::1", "default" (with `family`) -> nl_addr. INVALID_ARGUMENT on bad text.
Result<NlAddr> ParseAddr(const std::string& text, int family = AF_UNSPEC);
// nl_addr -> "10.0.0.1/24" (prefix shown only when the address has one shorter than its length).
std::string AddrToString(const nl_addr* addr);

}  // namespace pp::netlink

namespace pp::netlink {

// The address alone, without a prefix: "10.0.0.1", "fd00::1", "aa:bb:cc:dd:ee:ff" for a MAC.
std::string IpToString(const nl_addr* addr);

// A link object from the kernel by name; NOT_FOUND names the link.
Result<Link> GetLink(nl_sock* sock, const std::string& name);

}  // namespace pp::netlink
