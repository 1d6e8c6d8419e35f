// The tc redirect that splices a pod's CNI interface to its VXLAN tunnel, as CAA does it: an
// ingress qdisc on each side and one u32 filter matching every packet ("match u32 0 0") whose
// mirred action sends it out of the other interface and steals it (tc-mirred(8), tc-u32(8)). u32,
// as CAA uses, rather than matchall: cls_matchall is its own kernel option
// (CONFIG_NET_CLS_MATCHALL) that some kernels lack, the one these tests were written on among them.
#include <linux/if_ether.h>
#include <linux/pkt_cls.h>
#include <linux/pkt_sched.h>
#include <linux/tc_act/tc_mirred.h>
#include <netlink/route/act/mirred.h>
#include <netlink/route/cls/u32.h>
#include <netlink/route/tc.h>

#include "common/netlink/libnl.h"
#include "common/netlink/route_socket.h"

namespace pp::netlink {
namespace {

constexpr uint32_t kIngressHandle = TC_HANDLE(0xffff, 0);

Result<Qdisc> IngressQdisc(int index) {
  Qdisc qdisc(rtnl_qdisc_alloc());
  if (!qdisc) return Fail(Code::kResourceExhausted, "netlink: out of memory");
  rtnl_tc_set_ifindex(TC_CAST(qdisc.get()), index);
  rtnl_tc_set_parent(TC_CAST(qdisc.get()), TC_H_INGRESS);
  rtnl_tc_set_handle(TC_CAST(qdisc.get()), kIngressHandle);
  if (int err = rtnl_tc_set_kind(TC_CAST(qdisc.get()), "ingress"); err < 0)
    return std::unexpected(NlError("netlink: tc kind ingress", err));
  return qdisc;
}

}  // namespace

Result<void> RouteSocket::AddIngressRedirect(const std::string& from, const std::string& to) {
  auto from_index = LinkIndex(from);
  if (!from_index) return std::unexpected(from_index.error());
  auto to_index = LinkIndex(to);
  if (!to_index) return std::unexpected(to_index.error());

  auto qdisc = IngressQdisc(*from_index);
  if (!qdisc) return std::unexpected(qdisc.error());
  // NLM_F_EXCL: an existing ingress qdisc is someone else's (or a tunnel already built): refuse.
  if (int err = rtnl_qdisc_add(get(), qdisc->get(), NLM_F_CREATE | NLM_F_EXCL); err < 0)
    return std::unexpected(NlError("netlink: add ingress qdisc on " + from, err));

  auto filter = [&]() -> Result<void> {
    Cls cls(rtnl_cls_alloc());
    Act act(rtnl_act_alloc());
    if (!cls || !act) return Fail(Code::kResourceExhausted, "netlink: out of memory");
    rtnl_tc_set_ifindex(TC_CAST(cls.get()), *from_index);
    rtnl_tc_set_parent(TC_CAST(cls.get()), kIngressHandle);
    if (int err = rtnl_tc_set_kind(TC_CAST(cls.get()), "u32"); err < 0)
      return std::unexpected(NlError("netlink: tc kind u32", err));
    rtnl_cls_set_protocol(cls.get(), ETH_P_ALL);
    rtnl_cls_set_prio(cls.get(), 1);
    rtnl_u32_set_cls_terminal(cls.get());
    rtnl_u32_add_key_uint32(cls.get(), 0, 0, 0,
                            0);  // value 0 under mask 0 at offset 0: every packet
    if (int err = rtnl_tc_set_kind(TC_CAST(act.get()), "mirred"); err < 0)
      return std::unexpected(NlError("netlink: tc action mirred", err));
    rtnl_mirred_set_action(act.get(), TCA_EGRESS_REDIR);
    rtnl_mirred_set_policy(act.get(), TC_ACT_STOLEN);
    rtnl_mirred_set_ifindex(act.get(), static_cast<uint32_t>(*to_index));
    // The classifier takes its own reference to the action; ours goes with `act`.
    if (int err = rtnl_u32_add_action(cls.get(), act.get()); err < 0)
      return std::unexpected(NlError("netlink: tc add mirred action", err));
    if (int err = rtnl_cls_add(get(), cls.get(), NLM_F_CREATE | NLM_F_EXCL); err < 0)
      return std::unexpected(NlError("netlink: add tc redirect " + from + " -> " + to, err));
    return {};
  }();
  if (!filter) {
    (void)rtnl_qdisc_delete(get(), qdisc->get());  // undo: nothing half-built stays on `from`
    return filter;
  }
  return {};
}

Result<void> RouteSocket::DeleteIngressRedirect(const std::string& from) {
  auto index = LinkIndex(from);
  if (!index) return std::unexpected(index.error());
  // The kernel's answer for a missing ingress qdisc varies (ENOENT, EINVAL by version); asking
  // first gives the caller a NOT_FOUND it can rely on for an idempotent teardown.
  auto present = HasIngressQdisc(from);
  if (!present) return std::unexpected(present.error());
  if (!*present) return Fail(Code::kNotFound, "netlink: ", from, " has no ingress qdisc");
  auto qdisc = IngressQdisc(*index);
  if (!qdisc) return std::unexpected(qdisc.error());
  // Deleting the ingress qdisc destroys the filters (and their actions) attached under it.
  if (int err = rtnl_qdisc_delete(get(), qdisc->get()); err < 0)
    return std::unexpected(NlError("netlink: delete ingress qdisc on " + from, err));
  return {};
}

Result<bool> RouteSocket::HasIngressQdisc(const std::string& device) {
  auto index = LinkIndex(device);
  if (!index) return std::unexpected(index.error());
  nl_cache* raw = nullptr;
  if (int err = rtnl_qdisc_alloc_cache(get(), &raw); err < 0)
    return std::unexpected(NlError("netlink: dump qdiscs", err));
  NlCache cache(raw);
  Qdisc found(rtnl_qdisc_get_by_parent(cache.get(), *index, TC_H_INGRESS));
  return found != nullptr;
}

}  // namespace pp::netlink
