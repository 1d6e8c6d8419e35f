// The pod VM's end of the pod network: apf.json's "pod-network" (written by the node, in
// cloud-api-adaptor's schema) turned into a VXLAN tunnel endpoint inside the pod network namespace
// that the agent's containers join. What cloud-api-adaptor's forwarder does at start
// (src/cloud-api-adaptor/pkg/podnetwork/podnode.go and tunneler/vxlan/podnode.go), on pp::netlink.
//
// Threading: SetUpPodNetwork blocks (it waits for the VM's underlay) and runs before the
// forwarder's io_context; it switches no namespace of the calling thread (netns.h: a namespace is
// made on a thread of its own).
#pragma once

#include <chrono>
#include <optional>
#include <string>

#include "common/base/error.h"
#include "common/netlink/tunnel.h"
#include "common/podvm/apf_config.h"

namespace pp::forwarder {

inline constexpr std::string_view kDefaultPodNetns = "/run/netns/podns";

// apf.json's pod-network as the tunnel it describes, to be built in `pod_netns`. Pure: no I/O.
// Addresses keep their prefix ("10.244.1.5/24"); worker-node-ip loses it (the remote VTEP is an
// address); a route to 0.0.0.0/0 or ::/0 becomes a default route; route protocol and scope names
// become RTPROT_* and RT_SCOPE_* numbers; vxlan-port 0 is IANA's 4789 (RFC 7348 section 5).
// Routes with protocol "kernel" are left out: the kernel makes them again when the addresses are
// added (cloud-api-adaptor's node copies them; adding them would collide).
// INVALID_ARGUMENT naming the pod-network key at fault for: a tunnel-type other than "" or
// "vxlan", no podip, no vxlan-id, no worker-node-ip, no interface or pod-hw-addr, a route or
// neighbour on another device than the pod's interface, and dedicated or external-net-via-pod-vm
// (cloud-api-adaptor's secondary-NIC modes, which this forwarder does not support).
Result<netlink::PodTunnelSpec> PodTunnelFromApf(
    const podvm::PodNetwork& network, std::string pod_netns = std::string(kDefaultPodNetns));

// Makes sure a network namespace is mounted at `path`. If something is mounted there already (the
// production image's netns@podns.service runs `ip netns add podns`) it is used as it is, and
// `created` is false. Otherwise it is made as `ip netns add` makes one (iproute2 ip/ipnetns.c,
// netns_add): the directory made a shared mount point, an empty file bind-mounted with a new
// network namespace (unshare(2) CLONE_NEWNET on a thread of its own), lo brought up in it; on
// failure nothing of it is left. INVALID_ARGUMENT if `path` is something else than a namespace or
// an empty file (a leftover of a create cut short, reused).
Result<bool> EnsureNetns(const std::string& path);

// Takes down a namespace EnsureNetns made (unmount, remove the file), as `ip netns del` does.
// Idempotent: NOT_FOUND never, a missing path is success.
Result<void> RemoveNetns(const std::string& path);

struct PodNetworkOptions {
  std::string pod_netns = std::string(kDefaultPodNetns);
  // The VM's interface toward the node (-host-interface); empty: the primary one (the one carrying
  // the IPv4 default route, or the only one besides lo). Its address becomes the tunnel's local end
  // only when named here; else the kernel picks it from the route to the node.
  std::string host_interface;
  // The VM's namespace, where the tunnel's UDP socket lives; empty: the calling thread's (tests
  // name one they made).
  std::string vm_netns;
  // How long to wait for the underlay (the interface, its IPv4 address, a route to the node), as
  // cloud-api-adaptor waits 3 minutes for the primary interface and its address; and how often to
  // look.
  std::chrono::milliseconds underlay_wait = std::chrono::minutes(3);
  std::chrono::milliseconds poll = std::chrono::seconds(1);
};

// What SetUpPodNetwork built, read back from the pod namespace.
struct BuiltPodNetwork {
  netlink::PodTunnelSpec spec;
  netlink::InterfaceConfig pod;  // as the kernel has it now: the MTU actually chosen
  bool created_netns = false;
};

// Nothing (nullopt) when apf.json has no pod-network. Otherwise: converts it (PodTunnelFromApf),
// waits for the underlay (DEADLINE_EXCEEDED naming what is missing when it does not come), makes
// sure the pod namespace exists (EnsureNetns), takes down what an earlier run of the forwarder
// built (a supervisor restarts it; TearDownPodTunnel), and builds the tunnel (SetUpPodTunnel). On
// failure nothing is left that this call made (a namespace it created is removed too).
Result<std::optional<BuiltPodNetwork>> SetUpPodNetwork(const podvm::ApfConfig& apf,
                                                       const PodNetworkOptions& options);

// One log line: "pod network: eth0 10.244.1.5/24 fd00::5/64 mac ... mtu 1450 in /run/netns/podns,
// VXLAN 555001 to 192.168.1.10:4789".
std::string DescribePodNetwork(const BuiltPodNetwork& built);

}  // namespace pp::forwarder
