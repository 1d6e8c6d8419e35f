#include <arpa/inet.h>
#include <netlink/errno.h>

#include "common/netlink/libnl.h"

namespace pp::netlink {

Error NlError(std::string_view what, int err) {
  if (err < 0) err = -err;
  Code code = Code::kInternal;
  switch (err) {
    case NLE_EXIST:
      code = Code::kAlreadyExists;
      break;
    case NLE_OBJ_NOTFOUND:
    case NLE_NODEV:
      code = Code::kNotFound;
      break;
    case NLE_PERM:
    case NLE_NOACCESS:
      code = Code::kPermissionDenied;
      break;
    case NLE_INVAL:
    case NLE_RANGE:
      code = Code::kInvalidArgument;
      break;
    case NLE_BUSY:
      code = Code::kFailedPrecondition;
      break;
    case NLE_NOMEM:
      code = Code::kResourceExhausted;
      break;
    case NLE_OPNOTSUPP:
    case NLE_AF_NOSUPPORT:
      code = Code::kUnimplemented;
      break;
    default:
      break;
  }
  std::string message(what);
  message += ": ";
  message += nl_geterror(err);
  return Error{code, std::move(message)};
}

Result<NlAddr> ParseAddr(const std::string& text, int family) {
  nl_addr* raw = nullptr;
  if (int err = nl_addr_parse(text.c_str(), family, &raw); err < 0)
    return Fail(Code::kInvalidArgument, "netlink: bad address '", text, "': ", nl_geterror(err));
  return NlAddr(raw);
}

std::string AddrToString(const nl_addr* addr) {
  char buf[128];
  return nl_addr2str(addr, buf, sizeof buf);
}

std::string IpToString(const nl_addr* addr) {
  const int family = nl_addr_get_family(addr);
  if (family == AF_INET || family == AF_INET6) {
    char buf[INET6_ADDRSTRLEN] = {};
    if (::inet_ntop(family, nl_addr_get_binary_addr(addr), buf, sizeof buf) != nullptr) return buf;
  }
  char buf[128];
  return nl_addr2str(addr, buf, sizeof buf);
}

Result<Link> GetLink(nl_sock* sock, const std::string& name) {
  rtnl_link* raw = nullptr;
  if (int err = rtnl_link_get_kernel(sock, 0, name.c_str(), &raw); err < 0) {
    if (err == -NLE_NODEV || err == -NLE_OBJ_NOTFOUND)
      return Fail(Code::kNotFound, "netlink: no link named ", name);
    return std::unexpected(NlError("netlink: get link " + name, err));
  }
  return Link(raw);
}

}  // namespace pp::netlink
