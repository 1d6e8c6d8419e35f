// The two ends of a pod's VXLAN tunnel (RFC 7348), built the way cloud-api-adaptor builds them so a
// pod VM made by either can talk to a node run by either.
//
// Node end (in the worker node, at StartVM): a VXLAN device created in the node's namespace (so its
// UDP socket lives on the node's underlay), moved into the pod's CNI-made namespace as
// `tunnel_name`, and a tc redirect both ways between the CNI interface and the tunnel. The CNI
// interface keeps its address and stays where CNI put it, so kube-proxy, the CNI and network
// policies on the node keep seeing the pod's traffic; the pod's frames are carried whole to the VM.
//
// VM end (in the pod VM, before the agent's containers start): a VXLAN device created in the VM's
// namespace, moved into the pod namespace the containers join, named like the pod's interface and
// given its MAC, MTU, addresses, routes and permanent neighbours.
//
// Both SetUp calls build all or nothing (a failure takes down what the call made, see
// common/base/undo.h); both TearDown calls are idempotent and take down what SetUp made, whatever
// of it is left. Threading: see route_socket.h (one thread at a time per socket); these functions
// open their own sockets in the pod namespace and switch no thread's namespace beyond that.
#pragma once

#include <cstdint>
#include <string>

#include "common/base/error.h"
#include "common/netlink/route_socket.h"
#include "common/netlink/types.h"

namespace pp::netlink {

struct NodeTunnelSpec {
  std::string pod_netns;      // CreateVM's networkNamespacePath, e.g. /run/netns/cni-...
  std::string pod_interface;  // the CNI interface; empty: the pod netns's primary interface
  std::string tunnel_name = "vxlan1";  // the tunnel's name inside the pod netns (CAA's)
  uint32_t vni = 0;
  std::string vm_ip;     // remote VTEP: the pod VM's underlay address
  std::string local_ip;  // optional: the node's underlay address
  uint16_t dst_port = 4789;
  uint32_t mtu = 0;  // 0: the CNI interface's, at most what the underlay carries
};

// `node` is a socket in the node's namespace (where the tunnel's UDP traffic flows). Returns the
// pod interface it spliced to the tunnel, as read before any change (for apf.json). Errors:
// NOT_FOUND for a missing netns or interface; FAILED_PRECONDITION for a pod netns without IPv4;
// ALREADY_EXISTS if the pod interface is already redirected or the names are taken.
Result<InterfaceConfig> SetUpNodeTunnel(RouteSocket& node, const NodeTunnelSpec& spec);
// Takes down only what SetUp made: the transient tunnel (its name holds the VNI), a tunnel named
// `tunnel_name` whose VNI is `spec.vni`, and with it the redirect on the pod interface. Another
// tunnel, or a redirect without our tunnel, is someone else's and stays. A pod netns that is gone
// (or no longer a namespace file) is success.
Result<void> TearDownNodeTunnel(RouteSocket& node, const NodeTunnelSpec& spec);

struct PodTunnelSpec {
  std::string pod_netns = "/run/netns/podns";
  InterfaceConfig pod;  // from the node: name, MAC, MTU, addresses, routes, neighbours
  uint32_t vni = 0;
  std::string node_ip;   // remote VTEP: the worker node's underlay address
  std::string local_ip;  // optional: the VM's underlay address
  uint16_t dst_port = 4789;
  uint32_t mtu = 0;  // 0: pod.mtu, at most what the underlay carries
};

// `vm` is a socket in the VM's namespace (where the tunnel's UDP traffic flows). Errors:
// INVALID_ARGUMENT for a pod interface without name, MAC or IPv4; NOT_FOUND for a missing netns;
// whatever the kernel refuses (a route through an unreachable gateway) with the step named.
Result<void> SetUpPodTunnel(RouteSocket& vm, const PodTunnelSpec& spec);
Result<void> TearDownPodTunnel(RouteSocket& vm, const PodTunnelSpec& spec);

// The transient name of a tunnel in the underlay namespace before it moves: unique per VNI, so two
// pods being set up at once do not collide (at most 15 bytes: "ppvx" + 8 digits).
std::string TransientTunnelName(uint32_t vni);

}  // namespace pp::netlink
