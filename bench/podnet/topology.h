// The pod network benchmark's test topology: network namespaces the bench makes (with `ip`, as
// the CNI and the underlay would), around the two tunnel ends that our code builds.
//
//   node ---- cnibase veth ---- basepod      baseline: the plain CNI path
//   node ---- cnitun veth  ---- tunpod       the CNI's pod netns; our node tunnel end lives here
//   node ---- ul0 underlay ---- vm           VXLAN's UDP packets
//                                vm's vmpod  our VM tunnel end, carrying tunpod's IP, MAC, routes
//
// Every namespace this process makes is recorded in a process-wide registry the moment it exists,
// so it is deleted on every path: Topology's destructor, a failed Build, and SIGINT/SIGTERM (see
// CleanupOnSignals). Deleting a namespace takes every device in it along.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "common/base/error.h"
#include "common/netlink/tunnel.h"

namespace pp::bench {

// Runs `command` through /bin/sh; returns its exit status (-1 if it did not exit).
int Sh(const std::string& command);
// Runs `command` and returns its stdout.
std::string ShOutput(const std::string& command);

// Blocks SIGINT and SIGTERM in the calling thread (call it before starting any thread, so every
// thread inherits the mask) and starts a watcher that, on either signal, deletes every namespace
// in the registry and exits with 128 + signal. The watcher stops when the returned object dies.
class SignalCleanup {
 public:
  static Result<std::unique_ptr<SignalCleanup>> Start();
  ~SignalCleanup();
  SignalCleanup(const SignalCleanup&) = delete;
  SignalCleanup& operator=(const SignalCleanup&) = delete;

 private:
  SignalCleanup() = default;
  struct State;
  std::unique_ptr<State> state_;
};

// Deletes namespaces named like ours ("ppnb<pid>-...") whose process is gone: what a run killed
// with SIGKILL left behind.
void RemoveStaleNamespaces();

struct TopologyOptions {
  uint32_t cni_mtu = 1500;       // both CNI veths (baseline and tunnelled pod), both ends
  uint32_t underlay_mtu = 1500;  // the node <-> vm veth
};

// Addresses (fixed: everything lives in namespaces this process made).
inline constexpr const char* kPodIp = "10.244.0.5";       // tunpod's eth0 and, tunnelled, vmpod's
inline constexpr const char* kPodGateway = "10.244.0.1";  // node end of the tunnelled pod's veth
inline constexpr const char* kBasePodIp = "10.244.1.5";
inline constexpr const char* kBaseGateway = "10.244.1.1";
inline constexpr const char* kNodeUnderlayIp = "192.168.200.1";
inline constexpr const char* kVmUnderlayIp = "192.168.200.2";
inline constexpr uint32_t kVni = 4242;

class Topology {
 public:
  // Makes the namespaces and devices, then both tunnel ends with netlink::SetUpNodeTunnel and
  // netlink::SetUpPodTunnel exactly as the adaptor and the forwarder call them. On failure nothing
  // is left.
  static Result<std::unique_ptr<Topology>> Build(const TopologyOptions& options);
  // Tears both tunnel ends down with our code, then deletes the namespaces.
  ~Topology();
  Topology(const Topology&) = delete;
  Topology& operator=(const Topology&) = delete;

  std::string node() const { return Path("node"); }
  std::string basepod() const { return Path("basepod"); }
  std::string tunpod() const { return Path("tunpod"); }
  std::string vmpod() const { return Path("vmpod"); }

  // The MTUs as the kernel has them: the baseline pod's eth0, and the VM end of the tunnel.
  uint32_t veth_mtu() const { return veth_mtu_; }
  uint32_t tunnel_mtu() const { return tunnel_mtu_; }
  // The node end of the tunnel (in tunpod), for the report.
  uint32_t node_tunnel_mtu() const { return node_tunnel_mtu_; }

  // `ip -d link`, `tc filter` and offload details of the tunnel devices, for investigating.
  std::string Describe() const;

  static std::string Name(const std::string& suffix);
  static std::string Path(const std::string& suffix) { return "/run/netns/" + Name(suffix); }

 private:
  Topology() = default;
  netlink::NodeTunnelSpec NodeSpec() const;
  netlink::PodTunnelSpec VmSpec() const;
  Result<void> Make(const TopologyOptions& options);

  netlink::InterfaceConfig pod_;  // what SetUpNodeTunnel read from tunpod
  bool node_end_ = false, vm_end_ = false;
  uint32_t veth_mtu_ = 0, tunnel_mtu_ = 0, node_tunnel_mtu_ = 0;
};

}  // namespace pp::bench
