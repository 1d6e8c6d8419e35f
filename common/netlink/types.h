// Plain descriptions of network configuration, as pp::netlink reads it from one namespace and
// writes it into another. Addresses are text in the forms `ip` prints and apf.json carries:
// "10.244.1.5/24", "fd00::5/64", "10.244.1.1", MACs as "aa:bb:cc:dd:ee:ff".
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace pp::netlink {

struct Route {
  std::string destination;  // prefix; empty for a default route
  std::string gateway;      // empty for an on-link route
  std::string device;       // interface name
  int family = 0;           // AF_INET or AF_INET6
  int scope = -1;           // RT_SCOPE_*; -1: link without a gateway, else universe
  int protocol = -1;        // RTPROT_*; -1: RTPROT_BOOT, as `ip route add`
  friend bool operator==(const Route&, const Route&) = default;
};

struct Neighbour {
  std::string ip;
  std::string mac;
  std::string device;
  friend bool operator==(const Neighbour&, const Neighbour&) = default;
};

// One interface of a namespace and what routes through it: what a pod VM needs to stand in for it.
struct InterfaceConfig {
  std::string name;
  int index = 0;
  std::string mac;
  uint32_t mtu = 0;
  std::vector<std::string> ipv4;  // "10.244.1.5/24", global scope
  std::vector<std::string> ipv6;  // "fd00::5/64", global scope (link-local addresses are left out)
  std::vector<Route> routes;      // main table, through this interface, kernel-made routes left out
  std::vector<Neighbour> neighbours;  // NUD_PERMANENT entries on this interface
};

struct VxlanSpec {
  std::string name;
  uint32_t vni = 0;          // 24 bits (RFC 7348 section 5)
  std::string remote;        // the far VTEP's underlay IP
  std::string local;         // optional: our underlay IP
  uint16_t dst_port = 4789;  // IANA's VXLAN port (RFC 7348 section 5)
  uint32_t mtu = 0;          // 0: the kernel's choice
};

}  // namespace pp::netlink
