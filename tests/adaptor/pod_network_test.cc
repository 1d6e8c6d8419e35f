// The node end of the pod network, driven through the SandboxManager as the daemon drives it, with
// real netlink in namespaces this test makes. The whole test process first moves into a network
// namespace of its own (unshare in main), so the "node" namespace, where the tunnels' UDP sockets
// and the transient devices live, is private to it too: nothing touches the host's network.
//
// Topology: node (this process) --veth ppcni0/eth0-- pod netns (10.244.9.5/24, default via
// 10.244.9.1, fd00:9::5/64) and node --veth ppul0/ppul1-- "vm" netns (192.168.77.2/24), the
// address the test provider gives every instance.
#include <gtest/gtest.h>
#include <arpa/inet.h>
#include <sched.h>
#include <unistd.h>

#include <filesystem>
#include <future>

#include "adaptor/sandbox_manager.h"
#include "tests/common/netlink/netns_fixture.h"
#include "tests/support/test_provider.h"
#include "tests/support/test_util.h"

namespace pp::adaptor {
namespace {

using namespace std::chrono_literals;
using netlink::testing::Sh;
using netlink::testing::ShOutput;
using netlink::testing::TestNetns;

constexpr char kVmIp[] = "192.168.77.2";

hypervisor::CreateVMRequest Request(const std::string& id, const std::string& netns) {
  hypervisor::CreateVMRequest request;
  request.set_id(id);
  request.set_networknamespacepath(netns);
  (*request.mutable_annotations())[std::string(kAnnotationPodName)] = "pod-" + id;
  (*request.mutable_annotations())[std::string(kAnnotationPodNamespace)] = "ns";
  return request;
}

// A CNI-made pod netns: a veth from the node, the pod's addresses and its default route.
class PodNetns {
 public:
  PodNetns(const std::string& suffix, int n, bool ipv4 = true) : netns_(suffix), host_("ppcni" + std::to_string(n)) {
    const std::string ns = netns_.name();
    const std::string net = "10.244." + std::to_string(n);
    ok_ = netns_.ok() && Sh("ip link add " + host_ + " type veth peer name eth0 netns " + ns) == 0 &&
          Sh("ip link set " + host_ + " up") == 0 && Sh("ip addr add " + net + ".1/24 dev " + host_) == 0 &&
          Sh("ip -n " + ns + " link set eth0 address 0a:58:0a:f4:0" + std::to_string(n) + ":05 up") == 0 &&
          Sh("ip -n " + ns + " addr add fd00:" + std::to_string(n) + "::5/64 dev eth0 nodad") == 0 &&
          Sh("ip -n " + ns + " route add default via fd00:" + std::to_string(n) + "::1 dev eth0") == 0;
    if (ok_ && ipv4) {
      ok_ = Sh("ip -n " + ns + " addr add " + net + ".5/24 dev eth0") == 0 &&
            Sh("ip -n " + ns + " route add default via " + net + ".1") == 0;
    }
  }
  ~PodNetns() { (void)Sh("ip link del " + host_ + " 2>/dev/null"); }
  bool ok() const { return ok_; }
  std::string path() const { return netns_.path(); }
  std::string Run(const std::string& command) const { return ShOutput("ip -n " + netns_.name() + " " + command + " 2>&1"); }
  std::string Tc(const std::string& command) const {
    return ShOutput("ip netns exec " + netns_.name() + " tc " + command + " 2>&1");
  }

 private:
  TestNetns netns_;
  std::string host_;
  bool ok_ = false;
};

class PodNetworkTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (::geteuid() != 0) GTEST_SKIP() << "needs root (CAP_NET_ADMIN) to make network namespaces and devices";
    ASSERT_TRUE(vm_.ok());
    ASSERT_EQ(Sh("ip link add ppul0 type veth peer name ppul1 netns " + vm_.name()), 0);
    ASSERT_EQ(Sh("ip addr add 192.168.77.1/24 dev ppul0 && ip link set ppul0 up"), 0);
    ASSERT_EQ(Sh("ip -n " + vm_.name() + " addr add " + kVmIp + "/24 dev ppul1 && ip -n " + vm_.name() +
                 " link set ppul1 up"),
              0);
    provider_.instance_ip = kVmIp;
  }
  void TearDown() override { (void)Sh("ip link del ppul0 2>/dev/null"); }

  std::unique_ptr<SandboxManager> NewManager(PodNetworkOptions options = {}) {
    options.host_interface = "ppul0";
    // Kept for the fixture's life: an earlier manager (a "process" a test restarts) may still use its own.
    networks_.push_back(std::make_unique<NodeNetwork>(options));
    SandboxManager::Options manager;
    manager.node_name = "node-a";
    manager.initial_backoff = 10ms;
    manager.max_backoff = 20ms;
    return std::make_unique<SandboxManager>(manager, SandboxStore(pods_), provider_, pool_, nullptr, networks_.back().get());
  }
  Result<std::string> Create(SandboxManager& m, const std::string& id, const std::string& netns) {
    return io_.Run(m.CreateVM(Request(id, netns)));
  }
  Result<void> Start(SandboxManager& m, const std::string& id) { return io_.Run(m.StartVM(id, std::nullopt)); }
  Result<void> Stop(SandboxManager& m, const std::string& id) { return io_.Run(m.StopVM(id, std::nullopt)); }

  // Nothing of ours left in the node namespace: no transient tunnel, no VXLAN device at all.
  static bool NodeIsClean() { return ShOutput("ip -d link show type vxlan").empty(); }

  std::vector<std::unique_ptr<NodeNetwork>> networks_;  // outlives the pool and every manager's jobs
  TestNetns vm_{"vm"};
  pp::testing::TempDir dir_;
  std::string pods_ = dir_ / "pods";
  pp::testing::TestProvider provider_;
  BlockingPool pool_{4, 64};
  pp::testing::IoThread io_;
};

// CAA's forwarder (pkg/podnetwork/podnode.go), for a pod prefix that is not /32, deletes the route
// the kernel made with the address and adds the listed "routes", gateway-less ones first: each
// gateway must then be inside a gateway-less route's destination. IPv4 only: it sets no IPv6.
bool CaaVmCanAddEveryRoute(const podvm::PodNetwork& net, std::string& why) {
  auto inside = [](const std::string& ip, const std::string& prefix) {
    const auto slash = prefix.find('/');
    in_addr a{}, p{};
    if (::inet_pton(AF_INET, ip.c_str(), &a) != 1 || ::inet_pton(AF_INET, prefix.substr(0, slash).c_str(), &p) != 1)
      return false;
    const int bits = std::stoi(prefix.substr(slash + 1));
    const uint32_t mask = bits == 0 ? 0 : htonl(~uint32_t{0} << (32 - bits));
    return (a.s_addr & mask) == (p.s_addr & mask);
  };
  for (const auto& r : net.routes) {
    if (r.dst.find(':') != std::string::npos || r.gw.find(':') != std::string::npos) {
      why = "an IPv6 route in routes: " + r.dst;
      return false;
    }
    if (r.gw.empty()) continue;
    bool reachable = false;
    for (const auto& link : net.routes) reachable = reachable || (link.gw.empty() && inside(r.gw, link.dst));
    if (!reachable) {
      why = "gateway " + r.gw + " of " + r.dst + " is on no gateway-less route";
      return false;
    }
  }
  for (const auto& n : net.neighbors) {
    if (n.ip.find(':') != std::string::npos) {
      why = "an IPv6 neighbour in neighbors: " + n.ip;
      return false;
    }
  }
  return true;
}

TEST_F(PodNetworkTest, CreateVMReadsThePodNetnsIntoTheRecordAsCaaWritesIt) {
  PodNetns pod("pod", 9);
  ASSERT_TRUE(pod.ok());
  auto m = NewManager();
  ASSERT_TRUE(Create(*m, "s1", pod.path()));
  auto records = m->Snapshot();
  ASSERT_EQ(records.size(), 1u);
  ASSERT_TRUE(records[0].network.has_value());
  const podvm::PodNetwork& net = *records[0].network;
  EXPECT_EQ(net.pod_ip, "10.244.9.5/24");
  EXPECT_EQ(net.pod_ipv6, "fd00:9::5/64");  // dual stack: CAA would carry IPv4 only
  EXPECT_EQ(net.pod_hw_addr, "0a:58:0a:f4:09:05");
  EXPECT_EQ(net.interface, "eth0");
  EXPECT_EQ(net.worker_node_ip, "192.168.77.1/24");
  EXPECT_EQ(net.tunnel_type, "vxlan");
  EXPECT_EQ(net.vxlan_id, 555000);
  EXPECT_EQ(net.index, 0);
  EXPECT_EQ(net.vxlan_port, 4789);
  EXPECT_EQ(net.mtu, 1500);
  // As CAA's node writes them: the kernel's subnet route too (its VM side needs it), IPv4 only.
  ASSERT_EQ(net.routes.size(), 2u);
  EXPECT_EQ(net.routes[0], (podvm::Route{"10.244.9.0/24", "", "eth0", "kernel", "link"}));
  EXPECT_EQ(net.routes[1], (podvm::Route{"0.0.0.0/0", "10.244.9.1", "eth0", "boot", ""}));
  std::string why;
  EXPECT_TRUE(CaaVmCanAddEveryRoute(net, why)) << why;
  // IPv6 in our extension keys, beside podipv6.
  ASSERT_EQ(net.routes6.size(), 1u);
  EXPECT_EQ(net.routes6[0], (podvm::Route{"::/0", "fd00:9::1", "eth0", "boot", ""}));
  EXPECT_EQ(records[0].tunnel, TunnelState::kNone);
  // CreateVM changes nothing in the pod netns.
  EXPECT_EQ(pod.Run("link show vxlan1").find("vxlan1:"), std::string::npos);
  // The record keeps it across a restart, read back through the same checks as apf.json.
  auto reloaded = NewManager()->Snapshot();
  ASSERT_EQ(reloaded.size(), 1u);
  EXPECT_EQ(reloaded[0].network, records[0].network);
  ASSERT_TRUE(Stop(*m, "s1"));
}

TEST_F(PodNetworkTest, StartVMTunnelsThePodToItsVmAndStopVMLeavesNothing) {
  PodNetns pod("pod", 9);
  ASSERT_TRUE(pod.ok());
  auto m = NewManager();
  ASSERT_TRUE(Create(*m, "s1", pod.path()));
  ASSERT_TRUE(Start(*m, "s1"));
  EXPECT_EQ(m->Snapshot().at(0).tunnel, TunnelState::kUp);
  // iproute2 reads back what we built: VNI, remote (the VM), port, MTU (1500 underlay - 50).
  const std::string link = pod.Run("-d link show vxlan1");
  EXPECT_NE(link.find("vxlan id 555000 remote 192.168.77.2"), std::string::npos) << link;
  EXPECT_NE(link.find("dstport 4789"), std::string::npos) << link;
  EXPECT_NE(link.find("mtu 1450"), std::string::npos) << link;
  EXPECT_NE(pod.Tc("filter show dev eth0 ingress").find("mirred"), std::string::npos);
  EXPECT_NE(pod.Tc("filter show dev vxlan1 ingress").find("mirred"), std::string::npos);
  EXPECT_TRUE(NodeIsClean()) << "the tunnel moved into the pod netns";

  ASSERT_TRUE(Stop(*m, "s1"));
  EXPECT_EQ(provider_.Live(), 0u);
  EXPECT_EQ(pod.Run("link show vxlan1").find("vxlan1:"), std::string::npos);
  EXPECT_EQ(pod.Tc("qdisc show dev eth0").find("ingress"), std::string::npos);
  EXPECT_NE(pod.Run("addr show eth0").find("10.244.9.5/24"), std::string::npos) << "the CNI's interface stays";
  EXPECT_TRUE(NodeIsClean());
}

TEST_F(PodNetworkTest, AStartedTunnelSurvivesARestartAndTheNextProcessTakesItDown) {
  PodNetns pod("pod", 9);
  ASSERT_TRUE(pod.ok());
  {
    auto m = NewManager();
    ASSERT_TRUE(Create(*m, "s1", pod.path()));
    ASSERT_TRUE(Start(*m, "s1"));
  }  // the process "dies": nothing is torn down
  EXPECT_NE(pod.Run("-d link show vxlan1").find("vxlan id 555000"), std::string::npos);
  auto m = NewManager();
  // The restarted process gives a new sandbox another VNI: 555000 is still live.
  PodNetns other("other", 10);
  ASSERT_TRUE(other.ok());
  ASSERT_TRUE(Create(*m, "s2", other.path()));
  EXPECT_EQ(m->Snapshot().size(), 2u);
  for (const auto& record : m->Snapshot()) {
    if (record.request.id == "s2") {
      EXPECT_EQ(record.network->vxlan_id, 555001);
    }
  }
  ASSERT_TRUE(Start(*m, "s2"));
  EXPECT_NE(other.Run("-d link show vxlan1").find("vxlan id 555001"), std::string::npos);
  ASSERT_TRUE(Stop(*m, "s1"));
  EXPECT_EQ(pod.Run("link show vxlan1").find("vxlan1:"), std::string::npos);
  EXPECT_NE(other.Run("-d link show vxlan1").find("vxlan id 555001"), std::string::npos) << "the other pod's stays";
  ASSERT_TRUE(Stop(*m, "s2"));
  EXPECT_TRUE(NodeIsClean());
}

TEST_F(PodNetworkTest, TheNodesOwnNetnsIsNeverTakenForAPods) {
  auto m = NewManager();
  auto created = Create(*m, "s1", "/proc/self/ns/net");
  ASSERT_FALSE(created);
  EXPECT_EQ(created.error().code, Code::kInvalidArgument) << created.error().ToString();
  EXPECT_NE(created.error().message.find("own network namespace"), std::string::npos);
  EXPECT_TRUE(m->Snapshot().empty());
}

TEST_F(PodNetworkTest, ConcurrentCreateVMsForOnePodNetnsGiveItToOneSandbox) {
  PodNetns pod("pod", 9);
  ASSERT_TRUE(pod.ok());
  auto m = NewManager();
  for (int round = 0; round < 20; ++round) {
    const std::string a = "a" + std::to_string(round), b = "b" + std::to_string(round);
    auto first = std::async(std::launch::async, [&] { return Create(*m, a, pod.path()); });
    auto second = std::async(std::launch::async, [&] { return Create(*m, b, pod.path()); });
    const auto ra = first.get(), rb = second.get();
    ASSERT_NE(ra.has_value(), rb.has_value()) << "round " << round;
    const auto& refused = ra ? rb : ra;
    EXPECT_EQ(refused.error().code, Code::kAlreadyExists) << refused.error().ToString();
    ASSERT_TRUE(Stop(*m, ra ? a : b));
  }
  EXPECT_TRUE(m->Snapshot().empty());
}

TEST_F(PodNetworkTest, AForeignTunnelOfTheSameNameIsNeverTakenDown) {
  PodNetns pod("pod", 9);
  ASSERT_TRUE(pod.ok());
  auto m = NewManager();
  ASSERT_TRUE(Create(*m, "s1", pod.path()));
  // Between CreateVM and StartVM someone else makes a vxlan1 (VNI 999) in the pod netns.
  ASSERT_EQ(pod.Run("link add vxlan1 type vxlan id 999 dstport 4789"), "");
  auto started = Start(*m, "s1");
  ASSERT_FALSE(started);
  EXPECT_EQ(provider_.Live(), 0u) << "the VM made for the pod is deleted";
  EXPECT_NE(pod.Run("-d link show vxlan1").find("vxlan id 999"), std::string::npos) << "not ours to remove";
  EXPECT_EQ(pod.Tc("qdisc show dev eth0").find("ingress"), std::string::npos) << "ours is undone";
  ASSERT_TRUE(Stop(*m, "s1"));
  EXPECT_NE(pod.Run("-d link show vxlan1").find("vxlan id 999"), std::string::npos) << "StopVM leaves it too";
  EXPECT_TRUE(NodeIsClean());
}

TEST_F(PodNetworkTest, ANetnsThatDoesNotExistFailsCreateVMWithNothingRecorded) {
  auto m = NewManager();
  auto created = Create(*m, "s1", "/run/netns/pp-no-such-netns");
  ASSERT_FALSE(created);
  EXPECT_EQ(created.error().code, Code::kNotFound) << created.error().ToString();
  EXPECT_NE(created.error().message.find("/run/netns/pp-no-such-netns"), std::string::npos);
  EXPECT_TRUE(m->Snapshot().empty());
  EXPECT_FALSE(std::filesystem::exists(pods_ + "/s1"));
}

TEST_F(PodNetworkTest, APodNetnsWithoutIpv4IsRefused) {
  PodNetns pod("v6only", 9, /*ipv4=*/false);
  ASSERT_TRUE(pod.ok());
  auto m = NewManager();
  auto created = Create(*m, "s1", pod.path());
  ASSERT_FALSE(created);
  EXPECT_EQ(created.error().code, Code::kFailedPrecondition) << created.error().ToString();
  EXPECT_NE(created.error().message.find("IPv4"), std::string::npos) << created.error().message;
  EXPECT_TRUE(m->Snapshot().empty());
}

TEST_F(PodNetworkTest, AnInterfaceAlreadyTunnelledIsRefusedAndItsTunnelKept) {
  PodNetns pod("pod", 9);
  ASSERT_TRUE(pod.ok());
  auto m = NewManager();
  ASSERT_TRUE(Create(*m, "s1", pod.path()));
  ASSERT_TRUE(Start(*m, "s1"));
  // A second sandbox for the same pod netns, while the first lives: refused by the manager.
  auto twice = Create(*m, "s2", pod.path());
  ASSERT_FALSE(twice);
  EXPECT_EQ(twice.error().code, Code::kAlreadyExists) << twice.error().ToString();
  // A fresh process that does not know the first sandbox (its record lost): refused by what the
  // kernel holds, and the tunnel it found is not touched.
  std::filesystem::rename(pods_, pods_ + ".moved");
  auto stranger = NewManager();
  auto refused = Create(*stranger, "s3", pod.path());
  ASSERT_FALSE(refused);
  EXPECT_EQ(refused.error().code, Code::kAlreadyExists) << refused.error().ToString();
  EXPECT_NE(pod.Run("-d link show vxlan1").find("vxlan id 555000"), std::string::npos);
  std::filesystem::rename(pods_ + ".moved", pods_);
  ASSERT_TRUE(Stop(*m, "s1"));
  EXPECT_TRUE(NodeIsClean());
}

TEST_F(PodNetworkTest, AForeignRedirectMakesStartVMFailWithoutItsVmAndWithoutTouchingIt) {
  PodNetns pod("pod", 9);
  ASSERT_TRUE(pod.ok());
  auto m = NewManager();
  ASSERT_TRUE(Create(*m, "s1", pod.path()));
  // Between CreateVM and StartVM someone else puts an ingress qdisc on the pod's interface.
  ASSERT_EQ(pod.Tc("qdisc add dev eth0 ingress"), "");
  auto started = Start(*m, "s1");
  ASSERT_FALSE(started);
  EXPECT_EQ(started.error().code, Code::kAlreadyExists) << started.error().ToString();
  EXPECT_EQ(provider_.Live(), 0u) << "the VM made for the pod is deleted";
  EXPECT_NE(pod.Tc("qdisc show dev eth0").find("ingress"), std::string::npos) << "not ours to remove";
  EXPECT_EQ(pod.Run("link show vxlan1").find("vxlan1:"), std::string::npos);
  EXPECT_TRUE(NodeIsClean());
  ASSERT_TRUE(Stop(*m, "s1"));
}

TEST_F(PodNetworkTest, AnExhaustedVniRangeIsRefusedUntilASandboxLeaves) {
  PodNetns first("first", 9), second("second", 10);
  ASSERT_TRUE(first.ok() && second.ok());
  PodNetworkOptions options;
  options.vni_min = options.vni_max = 4242;
  auto m = NewManager(options);
  ASSERT_TRUE(Create(*m, "s1", first.path()));
  auto exhausted = Create(*m, "s2", second.path());
  ASSERT_FALSE(exhausted);
  EXPECT_EQ(exhausted.error().code, Code::kResourceExhausted) << exhausted.error().ToString();
  EXPECT_NE(exhausted.error().message.find("-vxlan-max-id"), std::string::npos);
  EXPECT_FALSE(std::filesystem::exists(pods_ + "/s2"));
  ASSERT_TRUE(Stop(*m, "s1"));
  ASSERT_TRUE(Create(*m, "s2", second.path()));
  EXPECT_EQ(m->Snapshot().at(0).network->vxlan_id, 4242);
  ASSERT_TRUE(Stop(*m, "s2"));
}

TEST_F(PodNetworkTest, ASandboxWithoutNetnsHasNoPodNetwork) {
  auto m = NewManager();
  ASSERT_TRUE(Create(*m, "s1", ""));
  ASSERT_TRUE(Start(*m, "s1"));
  EXPECT_FALSE(m->Snapshot().at(0).network.has_value());
  ASSERT_TRUE(Stop(*m, "s1"));
}

TEST(PodNetworkOptionsTest, RefusesWhatCannotWork) {
  PodNetworkOptions options;
  EXPECT_TRUE(CheckPodNetworkOptions(options));
  options.tunnel_type = "routing";
  EXPECT_EQ(CheckPodNetworkOptions(options).error().code, Code::kInvalidArgument);
  options = {};
  options.vni_min = 10;
  options.vni_max = 9;
  EXPECT_FALSE(CheckPodNetworkOptions(options));
  options.vni_max = 1u << 24;
  EXPECT_FALSE(CheckPodNetworkOptions(options));
}

}  // namespace
}  // namespace pp::adaptor

int main(int argc, char** argv) {
  ::testing::InitGoogleTest(&argc, argv);
  // Before any thread starts (threads inherit it): a network namespace of this process's own.
  if (::geteuid() == 0) {
    if (::unshare(CLONE_NEWNET) != 0 || pp::netlink::testing::Sh("ip link set lo up") != 0) {
      std::perror("unshare(CLONE_NEWNET)");
      return 1;
    }
  }
  return RUN_ALL_TESTS();
}
