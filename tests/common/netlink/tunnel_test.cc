// The pod network's VXLAN tunnel end to end in namespaces this test makes: a "node" with a CNI-like
// veth into a "pod" netns, a "vm" joined to the node by a veth underlay, and the VM's pod netns.
// Our code builds the node end (tunnel into the pod netns, tc redirect both ways) and the VM end
// (tunnel carrying the pod's IP, MAC, routes and neighbours); the test then pings and echoes TCP
// both ways, and checks that teardown leaves nothing. The CNI and the underlay are set up with
// `ip`, standing in for what our code does not own.
#include "common/netlink/tunnel.h"

#include <gtest/gtest.h>
#include <linux/rtnetlink.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <latch>
#include <optional>
#include <thread>

#include "common/netlink/netns.h"
#include "common/netlink/route_socket.h"
#include "tests/common/netlink/netns_fixture.h"

namespace pp::netlink {
namespace {

using testing::Ping;
using testing::Sh;
using testing::ShOutput;
using testing::TcpEcho;
using testing::TestNetns;

constexpr uint32_t kVni = 555001;

#define SKIP_UNLESS_ROOT() \
  if (::geteuid() != 0)    \
  GTEST_SKIP() << "needs root (CAP_NET_ADMIN) to make network namespaces and devices"

// node <-> pod: the CNI's veth. node <-> vm: the underlay. vmpod: the VM's pod netns (empty).
class TunnelTest : public ::testing::Test {
 protected:
  // The CNI veth's MTU and the underlay's.
  explicit TunnelTest(uint32_t pod_mtu = 1450, uint32_t underlay_mtu = 1500)
      : pod_mtu_(std::to_string(pod_mtu)), underlay_mtu_(std::to_string(underlay_mtu)) {}

  void SetUp() override {
    if (::geteuid() != 0) return;
    node_.emplace("node");
    pod_.emplace("pod");
    vm_.emplace("vm");
    vmpod_.emplace("vmpod");
    ASSERT_TRUE(node_->ok() && pod_->ok() && vm_->ok() && vmpod_->ok()) << "ip netns add failed";
    const std::string n = "ip -n " + node_->name() + " ", p = "ip -n " + pod_->name() + " ",
                      v = "ip -n " + vm_->name() + " ";
    for (const std::string& cmd :
         {n + "link add cnihost mtu " + pod_mtu_ + " type veth peer name eth0 mtu " + pod_mtu_ +
              " netns " + pod_->name(),
          n + "addr add 10.244.1.1/24 dev cnihost", n + "addr add fd00:244::1/64 dev cnihost nodad",
          n + "link set cnihost up", p + "addr add 10.244.1.5/24 dev eth0",
          p + "addr add fd00:244::5/64 dev eth0 nodad", p + "link set eth0 up",
          p + "route add default via 10.244.1.1", p + "-6 route add default via fd00:244::1",
          n + "link add ul0 mtu " + underlay_mtu_ + " type veth peer name ul0 mtu " +
              underlay_mtu_ + " netns " + vm_->name(),
          n + "addr add 192.168.77.1/24 dev ul0", n + "link set ul0 up",
          v + "addr add 192.168.77.2/24 dev ul0", v + "link set ul0 up"}) {
      ASSERT_EQ(Sh(cmd), 0) << cmd;
    }
    auto node = RouteSocket::OpenIn(node_->path());
    ASSERT_TRUE(node) << node.error().ToString();
    auto mac = node->LinkMac("cnihost");
    ASSERT_TRUE(mac) << mac.error().ToString();
    gateway_mac_ = *mac;
    // A permanent neighbour, as some CNIs (Calico) make for their gateway: the VM end must carry
    // it.
    ASSERT_EQ(Sh(p + "neigh add 10.244.1.1 lladdr " + gateway_mac_ + " dev eth0 nud permanent"), 0);
  }

  NodeTunnelSpec NodeSpec() const {
    NodeTunnelSpec spec;
    spec.pod_netns = pod_->path();
    spec.vni = kVni;
    spec.vm_ip = "192.168.77.2";
    spec.local_ip = "192.168.77.1";
    return spec;
  }

  PodTunnelSpec VmSpec(const InterfaceConfig& pod) const {
    PodTunnelSpec spec;
    spec.pod_netns = vmpod_->path();
    spec.pod = pod;
    spec.vni = kVni;
    spec.node_ip = "192.168.77.1";
    spec.local_ip = "192.168.77.2";
    return spec;
  }

  // Device names in a namespace, one per line.
  static std::string Links(const TestNetns& ns) {
    return ShOutput("ip -n " + ns.name() + " -o link show | awk -F': ' '{print $2}'");
  }

  std::string pod_mtu_, underlay_mtu_;
  // Made in SetUp, only as root.
  std::optional<TestNetns> node_, pod_, vm_, vmpod_;
  std::string gateway_mac_;
};

TEST_F(TunnelTest, PodAndVmReachEachOtherBothWaysAndTeardownLeavesNothing) {
  SKIP_UNLESS_ROOT();
  auto node = RouteSocket::OpenIn(node_->path());
  ASSERT_TRUE(node) << node.error().ToString();
  auto pod = SetUpNodeTunnel(*node, NodeSpec());
  ASSERT_TRUE(pod) << pod.error().ToString();

  // What the node read from the CNI's pod netns: the VM end is built from exactly this.
  EXPECT_EQ(pod->name, "eth0");
  EXPECT_EQ(pod->mtu, 1450u);
  EXPECT_EQ(pod->ipv4, std::vector<std::string>{"10.244.1.5/24"});
  EXPECT_EQ(pod->ipv6, std::vector<std::string>{"fd00:244::5/64"});
  auto has_route = [&](const std::string& gw) {
    return std::any_of(pod->routes.begin(), pod->routes.end(),
                       [&](const Route& r) { return r.destination.empty() && r.gateway == gw; });
  };
  EXPECT_TRUE(has_route("10.244.1.1"));
  EXPECT_TRUE(has_route("fd00:244::1"));
  ASSERT_EQ(pod->neighbours.size(), 1u);
  EXPECT_EQ(pod->neighbours[0].ip, "10.244.1.1");
  EXPECT_EQ(pod->neighbours[0].mac, gateway_mac_);
  EXPECT_NE(Links(*pod_).find("vxlan1"), std::string::npos);
  // iproute2 as the independent reader of what we asked the kernel for.
  const std::string details = ShOutput("ip -d -n " + pod_->name() + " link show vxlan1");
  for (const char* want : {"vxlan id 555001", "remote 192.168.77.2", "local 192.168.77.1",
                           "dstport 4789", "mtu 1450", "UP"}) {
    EXPECT_NE(details.find(want), std::string::npos) << want << " missing from: " << details;
  }
  EXPECT_NE(ShOutput("tc -n " + pod_->name() + " filter show dev eth0 ingress")
                .find("Redirect to device vxlan1"),
            std::string::npos);
  EXPECT_NE(ShOutput("tc -n " + pod_->name() + " filter show dev vxlan1 ingress")
                .find("Redirect to device eth0"),
            std::string::npos);

  // The control: with only the node end built, the pod's address is unreachable from the node, so
  // the replies below can only have come through the tunnel from the VM end.
  EXPECT_FALSE(Ping(node_->path(), "10.244.1.5", 1)) << "traffic to the pod bypasses the tunnel";

  auto vm = RouteSocket::OpenIn(vm_->path());
  ASSERT_TRUE(vm) << vm.error().ToString();
  const PodTunnelSpec vm_spec = VmSpec(*pod);
  auto built = SetUpPodTunnel(*vm, vm_spec);
  ASSERT_TRUE(built) << built.error().ToString();
  auto vm_pod = RouteSocket::OpenIn(vmpod_->path());
  ASSERT_TRUE(vm_pod);
  auto carried = vm_pod->ReadInterface("eth0");
  ASSERT_TRUE(carried) << carried.error().ToString();
  EXPECT_EQ(carried->mac, pod->mac) << "the VM end must answer for the pod's MAC";
  EXPECT_EQ(carried->ipv4, pod->ipv4);
  EXPECT_EQ(carried->ipv6, pod->ipv6);
  EXPECT_EQ(carried->mtu, 1450u);
  EXPECT_EQ(carried->neighbours.size(), 1u);

  // Node-side peer (the CNI veth's host end) <-> the pod's address inside the "VM".
  EXPECT_TRUE(Ping(node_->path(), "10.244.1.5"));
  EXPECT_TRUE(Ping(vmpod_->path(), "10.244.1.1"));
  EXPECT_TRUE(Ping(node_->path(), "fd00:244::5"));
  EXPECT_TRUE(Ping(vmpod_->path(), "fd00:244::1"));
  // 1 MiB each way: full-size segments at the tunnel's MTU, not just a handshake.
  EXPECT_TRUE(TcpEcho(vmpod_->path(), "10.244.1.5", node_->path(), 1 << 20))
      << "node -> pod VM over IPv4";
  EXPECT_TRUE(TcpEcho(node_->path(), "10.244.1.1", vmpod_->path(), 1 << 20))
      << "pod VM -> node over IPv4";
  EXPECT_TRUE(TcpEcho(vmpod_->path(), "fd00:244::5", node_->path(), 1 << 20))
      << "node -> pod VM over IPv6";
  EXPECT_TRUE(TcpEcho(node_->path(), "fd00:244::1", vmpod_->path(), 1 << 20))
      << "pod VM -> node over IPv6";

  auto vm_down = TearDownPodTunnel(*vm, vm_spec);
  ASSERT_TRUE(vm_down) << vm_down.error().ToString();
  auto node_down = TearDownNodeTunnel(*node, NodeSpec());
  ASSERT_TRUE(node_down) << node_down.error().ToString();
  EXPECT_EQ(Links(*pod_).find("vxlan1"), std::string::npos);
  EXPECT_EQ(Links(*node_).find("ppvx"), std::string::npos);
  EXPECT_EQ(Links(*vm_).find("ppvx"), std::string::npos);
  EXPECT_EQ(Links(*vmpod_), "lo\n");
  EXPECT_EQ(ShOutput("tc -n " + pod_->name() + " qdisc show dev eth0").find("ingress"),
            std::string::npos);
  EXPECT_EQ(ShOutput("tc -n " + pod_->name() + " filter show dev eth0 ingress"), "");
  EXPECT_EQ(ShOutput("ip -n " + vmpod_->name() + " route show"), "");
  EXPECT_EQ(ShOutput("ip -n " + vmpod_->name() + " -6 route show table main"), "");
  // The CNI's own configuration is untouched: the pod netns still has its address and routes.
  auto after = RouteSocket::OpenIn(pod_->path())->ReadPrimaryInterface();
  ASSERT_TRUE(after) << after.error().ToString();
  EXPECT_EQ(after->ipv4, pod->ipv4);
  EXPECT_EQ(after->routes, pod->routes);
  // Teardown twice is harmless (a retried StopVM).
  auto node_again = TearDownNodeTunnel(*node, NodeSpec());
  EXPECT_TRUE(node_again) << node_again.error().ToString();
  auto vm_again = TearDownPodTunnel(*vm, vm_spec);
  EXPECT_TRUE(vm_again) << vm_again.error().ToString();
}

// What MtuTest::BuildAndEcho saw: the tunnel MTUs at both ends and whether 1 MiB echoed each way.
struct Built {
  uint32_t node_mtu = 0, vm_mtu = 0;
  bool echo_to_vm = false, echo_to_node = false;
};

class MtuTest : public TunnelTest {
 protected:
  MtuTest(uint32_t pod_mtu, uint32_t underlay_mtu) : TunnelTest(pod_mtu, underlay_mtu) {}

  void BuildAndEcho(Built& out) {
    auto node = RouteSocket::OpenIn(node_->path());
    auto vm = RouteSocket::OpenIn(vm_->path());
    ASSERT_TRUE(node && vm);
    auto pod = SetUpNodeTunnel(*node, NodeSpec());
    ASSERT_TRUE(pod) << pod.error().ToString();
    auto built = SetUpPodTunnel(*vm, VmSpec(*pod));
    ASSERT_TRUE(built) << built.error().ToString();
    auto in_pod = RouteSocket::OpenIn(pod_->path())->ReadInterface("vxlan1");
    auto in_vm = RouteSocket::OpenIn(vmpod_->path())->ReadInterface("eth0");
    ASSERT_TRUE(in_pod && in_vm);
    out.node_mtu = in_pod->mtu;
    out.vm_mtu = in_vm->mtu;
    out.echo_to_vm = TcpEcho(vmpod_->path(), "10.244.1.5", node_->path(), 1 << 20);
    out.echo_to_node = TcpEcho(node_->path(), "10.244.1.1", vmpod_->path(), 1 << 20);
    EXPECT_TRUE(TearDownPodTunnel(*vm, VmSpec(*pod)));
    EXPECT_TRUE(TearDownNodeTunnel(*node, NodeSpec()));
  }
};

// No fixed 1450 cap: a jumbo-frame underlay carries a jumbo-frame pod network whole.
class JumboUnderlayTest : public MtuTest {
 protected:
  JumboUnderlayTest() : MtuTest(8950, 9000) {}
};

TEST_F(JumboUnderlayTest, TheTunnelTakesThePodsJumboMtu) {
  SKIP_UNLESS_ROOT();
  Built built;
  ASSERT_NO_FATAL_FAILURE(BuildAndEcho(built));
  EXPECT_EQ(built.node_mtu, 8950u);
  EXPECT_EQ(built.vm_mtu, 8950u);
  EXPECT_TRUE(built.echo_to_vm);
  EXPECT_TRUE(built.echo_to_node);
}

// A pod MTU as large as the underlay's: the tunnel is lowered by VXLAN's 50 bytes so its own
// packets leave whole, and TCP (which sizes segments from both ends' MTUs) still flows both ways.
class FullSizePodTest : public MtuTest {
 protected:
  FullSizePodTest() : MtuTest(1500, 1500) {}
};

TEST_F(FullSizePodTest, TheTunnelIsLoweredToWhatTheUnderlayCarries) {
  SKIP_UNLESS_ROOT();
  Built built;
  ASSERT_NO_FATAL_FAILURE(BuildAndEcho(built));
  EXPECT_EQ(built.node_mtu, 1450u);
  EXPECT_EQ(built.vm_mtu, 1450u);
  EXPECT_TRUE(built.echo_to_vm);
  EXPECT_TRUE(built.echo_to_node);
}

// Calico's pod network: a /32 address, its gateway 169.254.1.1 reachable only through an on-link
// route, the default route through it, and a permanent neighbour entry for it. The VM end must add
// the on-link route before the one that needs it, whatever order the node read them in.
TEST_F(TunnelTest, TheVmEndCarriesACalicoStylePodNetwork) {
  SKIP_UNLESS_ROOT();
  InterfaceConfig calico;
  calico.name = "eth0";
  calico.mac = "02:42:0a:f4:01:05";
  calico.mtu = 1400;
  calico.ipv4 = {"10.244.1.5/32"};
  calico.routes = {{"", "169.254.1.1", "eth0", AF_INET, -1, -1},
                   {"169.254.1.1/32", "", "eth0", AF_INET, RT_SCOPE_LINK, -1}};
  calico.neighbours = {{"169.254.1.1", "ee:ee:ee:ee:ee:ee", "eth0"}};
  auto vm = RouteSocket::OpenIn(vm_->path());
  ASSERT_TRUE(vm);
  auto built = SetUpPodTunnel(*vm, VmSpec(calico));
  ASSERT_TRUE(built) << built.error().ToString();

  const std::string routes = ShOutput("ip -n " + vmpod_->name() + " route show");
  EXPECT_NE(routes.find("default via 169.254.1.1 dev eth0"), std::string::npos) << routes;
  EXPECT_NE(routes.find("169.254.1.1 dev eth0"), std::string::npos) << routes;
  EXPECT_NE(ShOutput("ip -n " + vmpod_->name() + " neigh show")
                .find("169.254.1.1 dev eth0 lladdr "
                      "ee:ee:ee:ee:ee:ee PERMANENT"),
            std::string::npos);
  auto carried = RouteSocket::OpenIn(vmpod_->path())->ReadInterface("eth0");
  ASSERT_TRUE(carried) << carried.error().ToString();
  EXPECT_EQ(carried->ipv4, calico.ipv4);
  EXPECT_EQ(carried->mac, calico.mac);
  EXPECT_EQ(carried->mtu, 1400u);
  EXPECT_EQ(carried->routes.size(), 2u);
  auto down = TearDownPodTunnel(*vm, VmSpec(calico));
  ASSERT_TRUE(down) << down.error().ToString();
  EXPECT_EQ(ShOutput("ip -n " + vmpod_->name() + " route show"), "");
  EXPECT_EQ(ShOutput("ip -n " + vmpod_->name() + " neigh show"), "");
}

TEST_F(TunnelTest, AnInterfaceAlreadyTunnelledIsRefusedAndTheFirstTunnelStays) {
  SKIP_UNLESS_ROOT();
  auto node = RouteSocket::OpenIn(node_->path());
  ASSERT_TRUE(node);
  ASSERT_TRUE(SetUpNodeTunnel(*node, NodeSpec()));
  NodeTunnelSpec second = NodeSpec();
  second.vni = kVni + 1;
  second.tunnel_name = "vxlan2";
  auto again = SetUpNodeTunnel(*node, second);
  ASSERT_FALSE(again);
  EXPECT_EQ(again.error().code, Code::kAlreadyExists) << again.error().ToString();
  EXPECT_EQ(Links(*node_).find("ppvx"), std::string::npos);
  EXPECT_EQ(Links(*pod_).find("vxlan2"), std::string::npos);
  EXPECT_NE(Links(*pod_).find("vxlan1"), std::string::npos);
  EXPECT_TRUE(TearDownNodeTunnel(*node, NodeSpec()));
}

TEST_F(TunnelTest, ANamedPodInterfaceThatDoesNotExistIsNotFound) {
  SKIP_UNLESS_ROOT();
  auto node = RouteSocket::OpenIn(node_->path());
  ASSERT_TRUE(node);
  NodeTunnelSpec spec = NodeSpec();
  spec.pod_interface = "eth9";
  auto made = SetUpNodeTunnel(*node, spec);
  ASSERT_FALSE(made);
  EXPECT_EQ(made.error().code, Code::kNotFound) << made.error().ToString();
  EXPECT_NE(made.error().message.find("eth9"), std::string::npos) << made.error().ToString();
  EXPECT_EQ(Links(*pod_).find("vxlan1"), std::string::npos);
}

TEST_F(TunnelTest, ATakenTunnelNameInThePodNetnsUndoesTheNodeEnd) {
  SKIP_UNLESS_ROOT();
  ASSERT_EQ(Sh("ip -n " + pod_->name() + " link add vxlan1 type veth peer name taken1"), 0);
  auto node = RouteSocket::OpenIn(node_->path());
  ASSERT_TRUE(node);
  auto made = SetUpNodeTunnel(*node, NodeSpec());
  ASSERT_FALSE(made);
  EXPECT_EQ(made.error().code, Code::kAlreadyExists) << made.error().ToString();
  EXPECT_EQ(Links(*node_).find("ppvx"), std::string::npos)
      << "the tunnel was left in the node netns";
  EXPECT_EQ(ShOutput("tc -n " + pod_->name() + " qdisc show dev eth0").find("ingress"),
            std::string::npos);
}

TEST_F(TunnelTest, AFailedVmEndStepRemovesTheTunnel) {
  SKIP_UNLESS_ROOT();
  auto node = RouteSocket::OpenIn(node_->path());
  ASSERT_TRUE(node);
  auto pod = SetUpNodeTunnel(*node, NodeSpec());
  ASSERT_TRUE(pod);
  InterfaceConfig bad = *pod;
  // A gateway that is on no link: the kernel refuses the route after device, addresses and the
  // on-link routes are in place, so everything before it must be taken down.
  bad.routes.push_back({"10.99.0.0/16", "10.50.0.1", "eth0", AF_INET, -1, -1});
  auto vm = RouteSocket::OpenIn(vm_->path());
  ASSERT_TRUE(vm);
  auto built = SetUpPodTunnel(*vm, VmSpec(bad));
  ASSERT_FALSE(built);
  EXPECT_NE(built.error().message.find("10.99.0.0/16 via 10.50.0.1"), std::string::npos)
      << built.error().ToString();
  EXPECT_EQ(Links(*vmpod_), "lo\n");
  EXPECT_EQ(Links(*vm_).find("ppvx"), std::string::npos);
  EXPECT_TRUE(TearDownNodeTunnel(*node, NodeSpec()));
}

TEST(TunnelInputTest, APodNetnsThatDoesNotExistIsNotFoundAndLeavesNothing) {
  SKIP_UNLESS_ROOT();
  TestNetns node("nx-node");
  ASSERT_TRUE(node.ok());
  auto sock = RouteSocket::OpenIn(node.path());
  ASSERT_TRUE(sock);
  NodeTunnelSpec spec;
  spec.pod_netns = "/run/netns/ppnl-no-such-netns";
  spec.vni = kVni;
  spec.vm_ip = "192.168.77.2";
  auto made = SetUpNodeTunnel(*sock, spec);
  ASSERT_FALSE(made);
  EXPECT_EQ(made.error().code, Code::kNotFound) << made.error().ToString();
  EXPECT_NE(made.error().message.find("/run/netns/ppnl-no-such-netns"), std::string::npos);
  EXPECT_EQ(ShOutput("ip -n " + node.name() + " -o link show | awk -F': ' '{print $2}'"), "lo\n");
}

TEST(TunnelInputTest, APodNetnsWithoutIPv4IsRefusedBeforeAnythingIsMade) {
  SKIP_UNLESS_ROOT();
  TestNetns node("v6-node"), pod("v6-pod");
  ASSERT_TRUE(node.ok() && pod.ok());
  ASSERT_EQ(
      Sh("ip -n " + node.name() + " link add cnihost type veth peer name eth0 netns " + pod.name()),
      0);
  ASSERT_EQ(Sh("ip -n " + pod.name() + " addr add fd00:244::5/64 dev eth0 nodad"), 0);
  ASSERT_EQ(Sh("ip -n " + pod.name() + " link set eth0 up"), 0);
  auto sock = RouteSocket::OpenIn(node.path());
  ASSERT_TRUE(sock);
  NodeTunnelSpec spec;
  spec.pod_netns = pod.path();
  spec.vni = kVni;
  spec.vm_ip = "192.168.77.2";
  auto made = SetUpNodeTunnel(*sock, spec);
  ASSERT_FALSE(made);
  EXPECT_EQ(made.error().code, Code::kFailedPrecondition) << made.error().ToString();
  EXPECT_NE(made.error().message.find("no IPv4"), std::string::npos) << made.error().ToString();
  EXPECT_EQ(
      ShOutput("ip -n " + pod.name() + " -o link show | awk -F': ' '{print $2}'").find("vxlan"),
      std::string::npos);
  EXPECT_EQ(
      ShOutput("ip -n " + node.name() + " -o link show | awk -F': ' '{print $2}'").find("ppvx"),
      std::string::npos);
}

TEST(NetnsTest, AGuardMovesOnlyThisThreadAndBringsItBack) {
  SKIP_UNLESS_ROOT();
  TestNetns other("guard");
  ASSERT_TRUE(other.ok());
  auto inode = [](const std::string& path) {
    struct stat st {};
    return ::stat(path.c_str(), &st) == 0 ? st.st_ino : 0;
  };
  const auto home = inode("/proc/thread-self/ns/net");
  // A thread that already runs keeps its namespace (one made inside the guard would inherit the
  // guard's: clone(2) copies the creating thread's namespaces).
  std::latch entered(1), looked(1);
  ino_t elsewhere = 0;
  std::thread bystander([&] {
    entered.wait();
    elsewhere = inode("/proc/thread-self/ns/net");
    looked.count_down();
  });
  {
    auto guard = NetnsGuard::Enter(other.path());
    entered.count_down();
    if (!guard) {
      bystander.join();
      FAIL() << guard.error().ToString();
    }
    EXPECT_EQ(inode("/proc/thread-self/ns/net"), inode(other.path()));
    looked.wait();
    EXPECT_EQ(elsewhere, home) << "setns moved a thread other than the caller's";
  }
  bystander.join();
  EXPECT_EQ(inode("/proc/thread-self/ns/net"), home);
  auto missing = NetnsGuard::Enter("/run/netns/ppnl-no-such-netns");
  ASSERT_FALSE(missing);
  EXPECT_EQ(missing.error().code, Code::kNotFound);
  EXPECT_EQ(inode("/proc/thread-self/ns/net"), home);
}

// No root needed: input checks that happen before any request.
TEST(NetnsTest, OpenNetnsNamesAMissingPathAndRefusesAFileThatIsNoNamespace) {
  auto missing = OpenNetns("/run/netns/ppnl-no-such-netns");
  ASSERT_FALSE(missing);
  EXPECT_EQ(missing.error().code, Code::kNotFound);
  EXPECT_NE(missing.error().message.find("/run/netns/ppnl-no-such-netns"), std::string::npos);
  auto not_ns = OpenNetns("/proc/self/status");
  ASSERT_FALSE(not_ns);
  EXPECT_EQ(not_ns.error().code, Code::kInvalidArgument) << not_ns.error().ToString();
  EXPECT_TRUE(OpenNetns("/proc/self/ns/net"));
}

TEST(RouteSocketTest, CreateVxlanRejectsAVniOutside24Bits) {
  auto sock = RouteSocket::Open();
  ASSERT_TRUE(sock) << sock.error().ToString();
  for (uint32_t vni : {0u, 1u << 24}) {
    auto made = sock->CreateVxlan({"ppvxbad", vni, "192.0.2.1", "", 4789, 0});
    ASSERT_FALSE(made);
    EXPECT_EQ(made.error().code, Code::kInvalidArgument) << made.error().ToString();
  }
}

}  // namespace
}  // namespace pp::netlink
