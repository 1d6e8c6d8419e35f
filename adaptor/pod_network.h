// The worker node's end of each pod's network: the pod's IP and MAC live in its pod VM, and a
// VXLAN tunnel (RFC 7348) carries the pod's frames between the CNI-made pod netns on the node and
// the VM, as cloud-api-adaptor does (its pkg/adaptor/cloud/cloudmgr and pkg/tunneler/vxlan).
//
// At CreateVM, Inspect() reads the pod netns (interface, addresses, MAC, MTU, routes, permanent
// neighbours) and the node's underlay address, and returns the "pod-network" section of the VM's
// apf.json, which the forwarder in the VM rebuilds. At StartVM, once the VM has an address,
// SetUp() makes the node end (pp::netlink::SetUpNodeTunnel); TearDown() takes it away at StopVM.
//
// VNIs: each sandbox's VNI is chosen by the SandboxManager from [vni_min, vni_max], kept in its
// record and never given to a second live sandbox, also across restarts (CAA's counter restarts at
// its minimum and can collide with a live tunnel).
//
// Thread-safe: every call opens its own netlink sockets.
#pragma once

#include <cstdint>
#include <string>

#include "common/base/error.h"
#include "common/podvm/apf_config.h"

namespace pp::adaptor {

struct PodNetworkOptions {
  std::string tunnel_type = "vxlan";  // -tunnel-type, TUNNEL_TYPE: the only kind, as in CAA
  uint16_t vxlan_port = 4789;         // -vxlan-port, VXLAN_PORT: IANA's VXLAN port (RFC 7348)
  uint32_t vni_min = 555000;          // -vxlan-min-id (CAA's default)
  uint32_t vni_max = (1u << 24) - 1;  // -vxlan-max-id (ours): the 24-bit VNI space's end
  std::string host_interface;         // -host-interface: the node's underlay; empty: the default route's
  std::string tunnel_name = "vxlan1";  // the tunnel's name in the pod netns (CAA's)
};

// Checks the options: INVALID_ARGUMENT naming the flag.
Result<void> CheckPodNetworkOptions(const PodNetworkOptions& options);

class NodeNetwork {
 public:
  explicit NodeNetwork(PodNetworkOptions options) : options_(std::move(options)) {}
  const PodNetworkOptions& options() const { return options_; }

  // Reads the pod netns at `netns_path` and this node's underlay address: the pod-network section
  // of apf.json for a tunnel with `vni`. Changes nothing. NOT_FOUND: no such netns or interface;
  // FAILED_PRECONDITION: no IPv4 on the pod's interface, more than one address of a family (one
  // pod IP per family is all a VM can stand in for), or no underlay address on the node;
  // ALREADY_EXISTS: the pod's interface is already tunnelled or redirected.
  Result<podvm::PodNetwork> Inspect(const std::string& netns_path, uint32_t vni) const;

  // Builds the node end towards the VM at `vm_ip`: all or nothing.
  Result<void> SetUp(const std::string& netns_path, const podvm::PodNetwork& network,
                     const std::string& vm_ip) const;

  // Takes the node end down, whatever of it is left; a netns that is gone is success.
  Result<void> TearDown(const std::string& netns_path, const podvm::PodNetwork& network) const;

 private:
  PodNetworkOptions options_;
};

}  // namespace pp::adaptor
