#include "bench/podnet/topology.h"

#include <poll.h>
#include <sys/eventfd.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include <array>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <mutex>
#include <sstream>
#include <thread>
#include <vector>

#include "common/base/handle.h"
#include "common/netlink/route_socket.h"

namespace pp::bench {
namespace {

// Every namespace this process has made and not yet deleted. Guarded by registry_mu; the signal
// watcher takes the lock too, so a namespace is never added while it deletes them.
std::mutex registry_mu;
std::vector<std::string>& Registry() {
  static std::vector<std::string> names;
  return names;
}

// `ip netns add`, recorded before anything can fail or be interrupted after it.
bool AddNetns(const std::string& name) {
  std::lock_guard lock(registry_mu);
  if (Sh("ip netns add " + name) != 0) return false;
  Registry().push_back(name);
  return Sh("ip -n " + name + " link set lo up") == 0;
}

void DeleteAllNetnsLocked() {
  for (const std::string& name : Registry()) (void)Sh("ip netns del " + name + " 2>/dev/null");
  Registry().clear();
}

}  // namespace

int Sh(const std::string& command) {
  const int status = std::system(command.c_str());
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

std::string ShOutput(const std::string& command) {
  std::string out;
  FILE* pipe = ::popen(command.c_str(), "r");
  if (pipe == nullptr) return out;
  std::array<char, 4096> buf{};
  size_t n = 0;
  while ((n = std::fread(buf.data(), 1, buf.size(), pipe)) > 0) out.append(buf.data(), n);
  ::pclose(pipe);
  return out;
}

struct SignalCleanup::State {
  ScopedFd signals;
  ScopedFd stop;  // eventfd: written by the destructor to end the watcher
  std::thread watcher;
};

Result<std::unique_ptr<SignalCleanup>> SignalCleanup::Start() {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  // Blocked in this thread and so in every thread started after it (pthread_sigmask(3)): the
  // signals then only ever surface through the signalfd (signalfd(2)).
  if (int err = ::pthread_sigmask(SIG_BLOCK, &set, nullptr); err != 0)
    return std::unexpected(ErrnoError("pthread_sigmask", err));
  auto self = std::unique_ptr<SignalCleanup>(new SignalCleanup());
  self->state_ = std::make_unique<State>();
  State& s = *self->state_;
  s.signals = ScopedFd(::signalfd(-1, &set, SFD_CLOEXEC));
  if (!s.signals) return std::unexpected(ErrnoError("signalfd", errno));
  s.stop = ScopedFd(::eventfd(0, EFD_CLOEXEC));
  if (!s.stop) return std::unexpected(ErrnoError("eventfd", errno));
  s.watcher = std::thread([&s] {
    std::array<pollfd, 2> fds{pollfd{s.signals.get(), POLLIN, 0}, pollfd{s.stop.get(), POLLIN, 0}};
    for (;;) {
      if (::poll(fds.data(), fds.size(), -1) < 0) continue;
      if (fds[1].revents != 0) return;
      if (fds[0].revents == 0) continue;
      signalfd_siginfo info{};
      if (::read(s.signals.get(), &info, sizeof info) != sizeof info) continue;
      std::lock_guard lock(registry_mu);
      std::fprintf(stderr, "\npodnetbench: signal %u, deleting the bench's namespaces\n",
                   info.ssi_signo);
      DeleteAllNetnsLocked();
      // The benchmark's threads may be blocked in send/recv on sockets of the deleted namespaces:
      // leave without unwinding them (the namespaces are freed when their last socket closes).
      std::_Exit(128 + static_cast<int>(info.ssi_signo));
    }
  });
  return self;
}

SignalCleanup::~SignalCleanup() {
  if (!state_) return;
  const uint64_t one = 1;
  (void)!::write(state_->stop.get(), &one, sizeof one);
  if (state_->watcher.joinable()) state_->watcher.join();
}

void RemoveStaleNamespaces() {
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator("/run/netns", ec)) {
    const std::string name = entry.path().filename().string();
    if (name.rfind("ppnb", 0) != 0) continue;
    const auto dash = name.find('-');
    if (dash == std::string::npos) continue;
    const std::string pid = name.substr(4, dash - 4);
    if (pid.empty() || pid.find_first_not_of("0123456789") != std::string::npos) continue;
    if (std::filesystem::exists("/proc/" + pid, ec)) continue;
    std::fprintf(stderr, "podnetbench: deleting %s, left by an earlier run\n", name.c_str());
    (void)Sh("ip netns del " + name + " 2>/dev/null");
  }
}

std::string Topology::Name(const std::string& suffix) {
  return "ppnb" + std::to_string(::getpid()) + "-" + suffix;
}

netlink::NodeTunnelSpec Topology::NodeSpec() const {
  netlink::NodeTunnelSpec spec;
  spec.pod_netns = tunpod();
  spec.vni = kVni;
  spec.vm_ip = kVmUnderlayIp;
  spec.local_ip = kNodeUnderlayIp;
  return spec;
}

netlink::PodTunnelSpec Topology::VmSpec() const {
  netlink::PodTunnelSpec spec;
  spec.pod_netns = vmpod();
  spec.pod = pod_;
  spec.vni = kVni;
  spec.node_ip = kNodeUnderlayIp;
  spec.local_ip = kVmUnderlayIp;
  return spec;
}

Result<void> Topology::Make(const TopologyOptions& o) {
  for (const char* suffix : {"node", "basepod", "tunpod", "vm", "vmpod"})
    if (!AddNetns(Name(suffix)))
      return Fail(Code::kInternal, "ip netns add ", Name(suffix), " failed");
  const std::string n = "ip -n " + Name("node") + " ", v = "ip -n " + Name("vm") + " ";
  const std::string cni = std::to_string(o.cni_mtu), ul = std::to_string(o.underlay_mtu);
  std::vector<std::string> commands;
  // Two identical CNI-style pods (a veth with its host end on the node, the node end as gateway):
  // basepod stays plain, tunpod gets the tunnel.
  for (const auto& [pod, host, ip, gw] :
       {std::array<std::string, 4>{"basepod", "cnibase", kBasePodIp, kBaseGateway},
        std::array<std::string, 4>{"tunpod", "cnitun", kPodIp, kPodGateway}}) {
    const std::string p = "ip -n " + Name(pod) + " ";
    for (const std::string& c :
         {n + "link add " + host + " mtu " + cni + " type veth peer name eth0 mtu " + cni +
              " netns " + Name(pod),
          n + "addr add " + gw + "/24 dev " + host, n + "link set " + host + " up",
          p + "addr add " + ip + "/24 dev eth0", p + "link set eth0 up",
          p + "route add default via " + gw})
      commands.push_back(c);
  }
  for (const std::string& c :
       {n + "link add ul0 mtu " + ul + " type veth peer name ul0 mtu " + ul + " netns " +
            Name("vm"),
        n + "addr add " + std::string(kNodeUnderlayIp) + "/24 dev ul0", n + "link set ul0 up",
        v + "addr add " + std::string(kVmUnderlayIp) + "/24 dev ul0", v + "link set ul0 up"})
    commands.push_back(c);
  for (const std::string& c : commands)
    if (Sh(c) != 0) return Fail(Code::kInternal, "topology: `", c, "` failed");

  // Our code, as the adaptor (node end, at StartVM) and the forwarder (VM end) call it.
  auto node_socket = netlink::RouteSocket::OpenIn(node());
  if (!node_socket) return std::unexpected(node_socket.error());
  auto pod = netlink::SetUpNodeTunnel(*node_socket, NodeSpec());
  if (!pod) return std::unexpected(pod.error());
  pod_ = *std::move(pod);
  node_end_ = true;
  auto vm = netlink::RouteSocket::OpenIn(Path("vm"));
  if (!vm) return std::unexpected(vm.error());
  if (auto r = netlink::SetUpPodTunnel(*vm, VmSpec()); !r) return r;
  vm_end_ = true;

  auto read_mtu = [](const std::string& netns, const std::string& dev) -> Result<uint32_t> {
    auto s = netlink::RouteSocket::OpenIn(netns);
    if (!s) return std::unexpected(s.error());
    auto c = s->ReadInterface(dev);
    if (!c) return std::unexpected(c.error());
    return c->mtu;
  };
  auto veth = read_mtu(basepod(), "eth0");
  if (!veth) return std::unexpected(veth.error());
  auto tunnel = read_mtu(vmpod(), pod_.name);
  if (!tunnel) return std::unexpected(tunnel.error());
  veth_mtu_ = *veth;
  tunnel_mtu_ = *tunnel;
  const std::string node_tunnel = ShOutput(
      "ip -n " + Name("tunpod") + " -o link show vxlan1 | sed -n 's/.* mtu \\([0-9]*\\).*/\\1/p'");
  node_tunnel_mtu_ = static_cast<uint32_t>(std::strtoul(node_tunnel.c_str(), nullptr, 10));
  return {};
}

Result<std::unique_ptr<Topology>> Topology::Build(const TopologyOptions& options) {
  auto t = std::unique_ptr<Topology>(new Topology());
  if (auto r = t->Make(options); !r) return std::unexpected(r.error());  // ~Topology cleans up
  return t;
}

Topology::~Topology() {
  if (vm_end_) {
    if (auto vm = netlink::RouteSocket::OpenIn(Path("vm")); vm) {
      if (auto r = netlink::TearDownPodTunnel(*vm, VmSpec()); !r)
        std::fprintf(stderr, "podnetbench: TearDownPodTunnel: %s\n", r.error().ToString().c_str());
    }
  }
  if (node_end_) {
    if (auto node_socket = netlink::RouteSocket::OpenIn(node()); node_socket) {
      if (auto r = netlink::TearDownNodeTunnel(*node_socket, NodeSpec()); !r)
        std::fprintf(stderr, "podnetbench: TearDownNodeTunnel: %s\n", r.error().ToString().c_str());
    }
  }
  std::lock_guard lock(registry_mu);
  DeleteAllNetnsLocked();
}

std::string Topology::Describe() const {
  std::ostringstream os;
  const std::string t = Name("tunpod"), vp = Name("vmpod"), nd = Name("node"), vm = Name("vm");
  for (const std::string& c :
       {"ip -d -n " + t + " link show vxlan1", "ip -d -n " + vp + " link show " + pod_.name,
        "tc -n " + t + " filter show dev eth0 ingress",
        "tc -n " + t + " filter show dev vxlan1 ingress", "ip -n " + nd + " -s link show cnibase",
        "ip -n " + nd + " -s link show cnitun", "ip -n " + nd + " -s link show ul0",
        "ip -n " + vp + " -s link show " + pod_.name}) {
    os << "$ " << c << "\n" << ShOutput(c + " 2>&1");
  }
  if (Sh("command -v ethtool >/dev/null 2>&1") == 0) {
    for (const std::string& c :
         {"ip netns exec " + t + " ethtool -k vxlan1", "ip netns exec " + t + " ethtool -k eth0",
          "ip netns exec " + nd + " ethtool -k ul0", "ip netns exec " + vm + " ethtool -k ul0",
          "ip netns exec " + vp + " ethtool -k " + pod_.name}) {
      os << "$ " << c << " | grep -E 'offload|checksum|segmentation'\n"
         << ShOutput(c + " 2>&1 | grep -E 'offload|checksum|segmentation' | grep -v fixed");
    }
  }
  return os.str();
}

}  // namespace pp::bench
