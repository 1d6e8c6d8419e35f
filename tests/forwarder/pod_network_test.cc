// The pod VM's end of the pod network (forwarder/pod_network.h): apf.json's pod-network turned into
// a tunnel spec, and, in namespaces this test makes, built from an apf.json text the way the
// forwarder builds it at start. A "node" with a CNI-like veth into a "pod" netns, a "vm" joined to
// the node by a veth underlay; pp::netlink::SetUpNodeTunnel builds the node end, SetUpPodNetwork
// the VM end in the VM's pod netns; then ping and TCP both ways, a forwarder restart, and a pod
// netns that does not exist yet. iproute2 reads back what was built (an independent reader).
#include "forwarder/pod_network.h"

#include <gtest/gtest.h>
#include <linux/rtnetlink.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <optional>
#include <sstream>
#include <string>

#include "common/base/file.h"
#include "common/netlink/route_socket.h"
#include "common/podvm/apf_config.h"
#include "forwarder/forwarder_cli.h"
#include "tests/common/netlink/netns_fixture.h"

namespace pp::forwarder {
namespace {

using netlink::testing::Ping;
using netlink::testing::Sh;
using netlink::testing::ShOutput;
using netlink::testing::TcpEcho;
using netlink::testing::TestNetns;

#define SKIP_UNLESS_ROOT() \
  if (::geteuid() != 0)    \
  GTEST_SKIP() << "needs root (CAP_NET_ADMIN) to make network namespaces and devices"

podvm::PodNetwork Parse(const std::string& pod_network_json) {
  podvm::ApfConfig apf;
  std::string error;
  EXPECT_TRUE(podvm::ParseApfConfig("{\"pod-network\": " + pod_network_json + "}", apf, error))
      << error;
  return apf.pod_network.value_or(podvm::PodNetwork{});
}

// A pod-network as cloud-api-adaptor's node writes it (reference: its tunneler.Config JSON tags),
// with our podipv6. `extra` goes before the closing brace.
std::string PodNetworkJson(const std::string& mac, const std::string& extra = "") {
  return R"({
    "podip": "10.244.1.5/24",
    "podipv6": "fd00:244::5/64",
    "pod-hw-addr": ")" +
         mac + R"(",
    "interface": "eth0",
    "worker-node-ip": "192.168.77.1/24",
    "tunnel-type": "vxlan",
    "routes": [
      {"dst": "", "gw": "10.244.1.1", "dev": "eth0"},
      {"dst": "10.244.1.0/24", "gw": "", "dev": "eth0", "protocol": "kernel", "scope": "link"},
      {"dst": "10.96.0.0/12", "gw": "10.244.1.1", "dev": "eth0", "protocol": "static"}
    ],
    "routes6": [
      {"dst": "::/0", "gw": "fd00:244::1", "dev": "eth0"}
    ],
    "neighbors": [
      {"ip": "10.244.1.1", "hw-addr": "ee:ee:ee:ee:ee:ee", "dev": "eth0", "state": "permanent"},
      {"ip": "10.244.1.9", "hw-addr": "ee:ee:ee:ee:ee:09", "dev": "eth0", "state": "stale"}
    ],
    "mtu": 1450,
    "index": 1,
    "vxlan-port": 0,
    "vxlan-id": 555001,
    "dedicated": false,
    "external-net-via-pod-vm": false)" +
         extra + "}";
}

TEST(PodTunnelFromApfTest, ConvertsCaasPodNetwork) {
  auto spec = PodTunnelFromApf(
      Parse(PodNetworkJson("02:42:0a:f4:01:05",
                           R"(, "neighbors6": [{"ip": "fd00:244::1", "hw-addr": "ee:ee:ee:ee:ee:01",
                                                "dev": "eth0", "state": "permanent"}])")),
      "/run/netns/x");
  ASSERT_TRUE(spec) << spec.error().ToString();
  EXPECT_EQ(spec->pod_netns, "/run/netns/x");
  EXPECT_EQ(spec->pod.name, "eth0");
  EXPECT_EQ(spec->pod.mac, "02:42:0a:f4:01:05");
  EXPECT_EQ(spec->pod.mtu, 1450u);
  EXPECT_EQ(spec->pod.ipv4, std::vector<std::string>{"10.244.1.5/24"});
  EXPECT_EQ(spec->pod.ipv6, std::vector<std::string>{"fd00:244::5/64"});
  EXPECT_EQ(spec->vni, 555001u);
  EXPECT_EQ(spec->node_ip, "192.168.77.1") << "the remote VTEP is an address, not a prefix";
  EXPECT_EQ(spec->dst_port, 4789) << "vxlan-port 0 is IANA's port";
  EXPECT_EQ(spec->mtu, 0u)
      << "the tunnel MTU is left to SetUpPodTunnel (pod MTU, capped by the underlay)";
  // The kernel's prefix route is left out (the address brings it back); defaults in both forms;
  // IPv6 routes come from our "routes6".
  const std::vector<netlink::Route> routes = {
      {"", "10.244.1.1", "eth0", AF_INET, -1, -1},
      {"10.96.0.0/12", "10.244.1.1", "eth0", AF_INET, -1, RTPROT_STATIC},
      {"", "fd00:244::1", "eth0", AF_INET6, -1, -1},
  };
  EXPECT_EQ(spec->pod.routes, routes);
  // Only permanent neighbours are configuration; IPv6 ones come from our "neighbors6".
  const std::vector<netlink::Neighbour> neighbours = {{"10.244.1.1", "ee:ee:ee:ee:ee:ee", "eth0"},
                                                      {"fd00:244::1", "ee:ee:ee:ee:ee:01", "eth0"}};
  EXPECT_EQ(spec->pod.neighbours, neighbours);
}

TEST(PodTunnelFromApfTest, MapsScopesProtocolsAndPort) {
  auto spec =
      PodTunnelFromApf(Parse(R"({"podip": "10.244.1.5/32", "pod-hw-addr": "02:00:00:00:00:01",
      "interface": "eth0", "worker-node-ip": "10.0.0.1/16", "vxlan-id": 7, "vxlan-port": 8472,
      "routes": [{"dst": "169.254.1.1/32", "dev": "eth0", "scope": "link", "protocol": "boot"},
                 {"dst": "0.0.0.0/0", "gw": "169.254.1.1", "scope": "universe", "protocol": "dhcp"},
                 {"dst": "10.1.0.0/16", "scope": "host"}, {"dst": "10.2.0.0/16", "scope": "site"},
                 {"dst": "10.3.0.0/16", "scope": "nowhere"}]})"));
  ASSERT_TRUE(spec) << spec.error().ToString();
  EXPECT_EQ(spec->pod_netns, "/run/netns/podns");
  EXPECT_EQ(spec->dst_port, 8472);
  EXPECT_EQ(spec->node_ip, "10.0.0.1");
  ASSERT_EQ(spec->pod.routes.size(), 5u);
  EXPECT_EQ(spec->pod.routes[0],
            (netlink::Route{"169.254.1.1/32", "", "eth0", AF_INET, RT_SCOPE_LINK, RTPROT_BOOT}));
  EXPECT_EQ(spec->pod.routes[1],
            (netlink::Route{"", "169.254.1.1", "eth0", AF_INET, RT_SCOPE_UNIVERSE, RTPROT_DHCP}));
  EXPECT_EQ(spec->pod.routes[2].scope, RT_SCOPE_HOST);
  EXPECT_EQ(spec->pod.routes[3].scope, RT_SCOPE_SITE);
  EXPECT_EQ(spec->pod.routes[4].scope, RT_SCOPE_NOWHERE);
  EXPECT_TRUE(spec->pod.ipv6.empty());
}

TEST(PodTunnelFromApfTest, RefusesWhatItCannotBuildNamingTheKey) {
  const std::string base =
      R"("podip": "10.244.1.5/24", "pod-hw-addr": "02:00:00:00:00:01", "interface": "eth0")";
  const std::string node = R"("worker-node-ip": "10.0.0.1/16")";
  const std::string vni = R"("vxlan-id": 7)";
  const struct {
    std::string json, key, why;
  } cases[] = {
      {"{" + base + "," + node + "," + vni + R"(, "tunnel-type": "geneve"})",
       "pod-network.tunnel-type", "vxlan"},
      {"{" + base + "," + node + "}", "pod-network.vxlan-id", "missing"},
      {"{" + base + "," + vni + "}", "pod-network.worker-node-ip", "missing"},
      {R"({"pod-hw-addr": "02:00:00:00:00:01", "interface": "eth0", )" + node + "," + vni + "}",
       "pod-network.podip", "missing"},
      {R"({"podip": "fd00::5/64", "pod-hw-addr": "02:00:00:00:00:01", "interface": "eth0", )" +
           node + "," + vni + "}",
       "pod-network.podip", "IPv4"},
      {R"({"podip": "10.244.1.5/24", "interface": "eth0", )" + node + "," + vni + "}",
       "pod-network.pod-hw-addr", "missing"},
      {R"({"podip": "10.244.1.5/24", "pod-hw-addr": "02:00:00:00:00:01", )" + node + "," + vni +
           "}",
       "pod-network.interface", "missing"},
      {"{" + base + "," + node + "," + vni + R"(, "dedicated": true})", "pod-network.dedicated",
       "not supported"},
      {"{" + base + "," + node + "," + vni + R"(, "external-net-via-pod-vm": true})",
       "pod-network.external-net-via-pod-vm", "not supported"},
      {"{" + base + "," + node + "," + vni +
           R"(, "routes": [{"dst": "10.9.0.0/16", "dev": "eth1"}]})",
       "pod-network.routes[0].dev", "eth1"},
      {"{" + base + "," + node + "," + vni +
           R"(, "routes": [{"dst": "10.9.0.0/16", "gw": "fd00::1"}]})",
       "pod-network.routes[0].gw", "family"},
      {"{" + base + "," + node + "," + vni +
           R"(, "neighbors": [{"ip": "10.244.1.1", "dev": "eth0"}]})",
       "pod-network.neighbors[0].hw-addr", "MAC"},
      {"{" + base + "," + node + "," + vni +
           R"(, "neighbors": [{"ip": "10.244.1.1", "hw-addr": "02:00:00:00:00:02", "dev": "eth7"}]})",
       "pod-network.neighbors[0].dev", "eth7"},
  };
  for (const auto& c : cases) {
    auto spec = PodTunnelFromApf(Parse(c.json));
    ASSERT_FALSE(spec) << c.json;
    EXPECT_EQ(spec.error().code, Code::kInvalidArgument) << c.json;
    EXPECT_NE(spec.error().message.find(c.key), std::string::npos) << spec.error().message;
    EXPECT_NE(spec.error().message.find(c.why), std::string::npos) << spec.error().message;
  }
}

TEST(SetUpPodNetworkTest, NoPodNetworkBuildsNothing) {
  podvm::ApfConfig apf;
  PodNetworkOptions options;
  options.pod_netns = "/run/netns/ppfw-never-made";
  auto built = SetUpPodNetwork(apf, options);
  ASSERT_TRUE(built) << built.error().ToString();
  EXPECT_FALSE(*built);
  struct stat st {};
  EXPECT_NE(::stat(options.pod_netns.c_str(), &st), 0);
}

// The forwarder's start: a pod network it cannot build is fatal (exit 1, the reason on stderr)
// before anything listens, and nothing is made.
TEST(ForwarderStartTest, APodNetworkItCannotBuildStopsTheForwarderBeforeItListens) {
  char dir_template[] = "/tmp/ppfw-apf-XXXXXX";
  ASSERT_NE(::mkdtemp(dir_template), nullptr);
  const std::string dir = dir_template;
  const std::string config = dir + "/apf.json";
  const std::string netns = "/run/netns/ppfw" + std::to_string(::getpid()) + "-never";
  ASSERT_TRUE(WriteFileAtomic(
      config,
      R"({"pod-network": )" + PodNetworkJson("02:00:00:00:00:01", R"(, "dedicated": true)") + "}",
      0600));
  for (const std::string& pod_namespace : {netns, std::string()}) {
    std::ostringstream out, err;
    const std::vector<const char*> argv = {"agent-protocol-forwarder",
                                           "-config",
                                           config.c_str(),
                                           "-disable-tls",
                                           "-listen",
                                           "127.0.0.1:1",
                                           "-pod-namespace",
                                           pod_namespace.c_str()};
    EXPECT_EQ(ForwarderMain(static_cast<int>(argv.size()), argv.data(), out, err), 1);
    const std::string want =
        pod_namespace.empty() ? "-pod-namespace is empty" : "pod-network.dedicated";
    EXPECT_NE(err.str().find(want), std::string::npos) << err.str();
    struct stat st {};
    EXPECT_NE(::stat(netns.c_str(), &st), 0) << netns << " was made";
  }
  std::filesystem::remove_all(dir);
}

// A path under /run/netns that no one made: removed (unmounted, deleted) whatever the test does.
class NetnsPath {
 public:
  explicit NetnsPath(const std::string& suffix)
      : path_("/run/netns/ppfw" + std::to_string(::getpid()) + "-" + suffix) {
    std::error_code ignored;
    std::filesystem::create_directories("/run/netns", ignored);
    (void)RemoveNetns(path_);
  }
  ~NetnsPath() { (void)RemoveNetns(path_); }
  NetnsPath(const NetnsPath&) = delete;
  NetnsPath& operator=(const NetnsPath&) = delete;
  const std::string& path() const { return path_; }
  std::string name() const { return path_.substr(path_.rfind('/') + 1); }
  bool exists() const {
    struct stat st {};
    return ::lstat(path_.c_str(), &st) == 0;
  }

 private:
  std::string path_;
};

// node <-> pod: the CNI's veth. node <-> vm: the underlay (MTU 1500).
class PodNetworkTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (::geteuid() != 0) return;
    node_.emplace("node");
    pod_.emplace("pod");
    vm_.emplace("vm");
    ASSERT_TRUE(node_->ok() && pod_->ok() && vm_->ok()) << "ip netns add failed";
    const std::string n = "ip -n " + node_->name() + " ", p = "ip -n " + pod_->name() + " ",
                      v = "ip -n " + vm_->name() + " ";
    for (const std::string& cmd :
         {n + "link add cnihost mtu 1450 type veth peer name eth0 mtu 1450 netns " + pod_->name(),
          n + "addr add 10.244.1.1/24 dev cnihost", n + "addr add fd00:244::1/64 dev cnihost nodad",
          n + "link set cnihost up", p + "addr add 10.244.1.5/24 dev eth0",
          p + "addr add fd00:244::5/64 dev eth0 nodad", p + "link set eth0 up",
          p + "route add default via 10.244.1.1", p + "-6 route add default via fd00:244::1",
          n + "link add ul0 type veth peer name ul0 netns " + vm_->name(),
          n + "addr add 192.168.77.1/24 dev ul0", n + "link set ul0 up",
          v + "addr add 192.168.77.2/24 dev ul0", v + "link set ul0 up"}) {
      ASSERT_EQ(Sh(cmd), 0) << cmd;
    }
    auto node = netlink::RouteSocket::OpenIn(node_->path());
    ASSERT_TRUE(node) << node.error().ToString();
    auto pod = netlink::SetUpNodeTunnel(*node, NodeSpec());
    ASSERT_TRUE(pod) << pod.error().ToString();
    pod_mac_ = pod->mac;
    node_up_ = true;
  }

  void TearDown() override {
    if (!node_up_) return;
    auto node = netlink::RouteSocket::OpenIn(node_->path());
    ASSERT_TRUE(node);
    EXPECT_TRUE(netlink::TearDownNodeTunnel(*node, NodeSpec()));
  }

  netlink::NodeTunnelSpec NodeSpec() const {
    netlink::NodeTunnelSpec spec;
    spec.pod_netns = pod_->path();
    spec.vni = 555001;
    spec.vm_ip = "192.168.77.2";
    return spec;
  }

  // apf.json as process-user-data writes it, parsed as the forwarder parses it.
  podvm::ApfConfig Apf(const std::string& extra = "") const {
    const std::string text = R"({"pod-network": )" + PodNetworkJson(pod_mac_, extra) +
                             R"(, "pod-namespace": "default", "pod-name": "web-0"})";
    podvm::ApfConfig apf;
    std::string error;
    EXPECT_TRUE(podvm::ParseApfConfig(text, apf, error)) << error;
    return apf;
  }

  PodNetworkOptions Options(const std::string& pod_netns) const {
    PodNetworkOptions options;
    options.pod_netns = pod_netns;
    options.vm_netns = vm_->path();
    options.underlay_wait = std::chrono::seconds(5);
    options.poll = std::chrono::milliseconds(100);
    return options;
  }

  // Both directions, both families; 1 MiB of TCP each way.
  void ExpectTraffic(const std::string& vmpod) {
    EXPECT_TRUE(Ping(node_->path(), "10.244.1.5")) << "node -> pod VM";
    EXPECT_TRUE(Ping(vmpod, "10.244.1.1")) << "pod VM -> node";
    EXPECT_TRUE(Ping(node_->path(), "fd00:244::5")) << "node -> pod VM over IPv6";
    EXPECT_TRUE(Ping(vmpod, "fd00:244::1")) << "pod VM -> node over IPv6";
    EXPECT_TRUE(TcpEcho(vmpod, "10.244.1.5", node_->path(), 1 << 20)) << "node -> pod VM over TCP";
    EXPECT_TRUE(TcpEcho(node_->path(), "10.244.1.1", vmpod, 1 << 20)) << "pod VM -> node over TCP";
    EXPECT_TRUE(TcpEcho(vmpod, "fd00:244::5", node_->path(), 1 << 20))
        << "node -> pod VM over TCP/IPv6";
    EXPECT_TRUE(TcpEcho(node_->path(), "fd00:244::1", vmpod, 1 << 20))
        << "pod VM -> node over TCP/IPv6";
  }

  std::optional<TestNetns> node_, pod_, vm_;
  std::string pod_mac_;
  bool node_up_ = false;
};

TEST_F(PodNetworkTest, BuildsTheVmEndFromApfJsonAndTrafficFlowsBothWays) {
  SKIP_UNLESS_ROOT();
  TestNetns vmpod("vmpod");  // exists already, as netns@podns.service makes it in production
  ASSERT_TRUE(vmpod.ok());
  auto built = SetUpPodNetwork(Apf(), Options(vmpod.path()));
  ASSERT_TRUE(built) << built.error().ToString();
  ASSERT_TRUE(*built);
  EXPECT_FALSE((*built)->created_netns);
  EXPECT_EQ((*built)->pod.mtu, 1450u);
  const std::string line = DescribePodNetwork(**built);
  for (const std::string& want :
       {std::string("eth0"), std::string("10.244.1.5/24"), std::string("fd00:244::5/64"),
        std::string("mtu 1450"), std::string("VXLAN 555001"), std::string("192.168.77.1:4789"),
        vmpod.path()})
    EXPECT_NE(line.find(want), std::string::npos) << want << " missing from: " << line;

  // iproute2 reads back what was built.
  const std::string ns = "ip -n " + vmpod.name() + " ";
  const std::string link = ShOutput(ns + "-d link show eth0");
  for (const std::string& want :
       {std::string("vxlan id 555001"), std::string("remote 192.168.77.1"),
        std::string("dstport 4789"), std::string("mtu 1450"), std::string("link/ether ") + pod_mac_,
        std::string("UP")})
    EXPECT_NE(link.find(want), std::string::npos) << want << " missing from: " << link;
  const std::string addrs = ShOutput(ns + "addr show eth0");
  EXPECT_NE(addrs.find("inet 10.244.1.5/24"), std::string::npos) << addrs;
  EXPECT_NE(addrs.find("inet6 fd00:244::5/64"), std::string::npos) << addrs;
  const std::string routes = ShOutput(ns + "route show");
  EXPECT_NE(routes.find("default via 10.244.1.1 dev eth0"), std::string::npos) << routes;
  EXPECT_NE(routes.find("10.96.0.0/12 via 10.244.1.1 dev eth0 proto static"), std::string::npos)
      << routes;
  EXPECT_NE(routes.find("10.244.1.0/24 dev eth0 proto kernel"), std::string::npos) << routes;
  EXPECT_NE(ShOutput(ns + "-6 route show").find("default via fd00:244::1 dev eth0"),
            std::string::npos);
  const std::string neigh = ShOutput(ns + "neigh show");
  EXPECT_NE(neigh.find("10.244.1.1 dev eth0 lladdr ee:ee:ee:ee:ee:ee PERMANENT"), std::string::npos)
      << neigh;
  EXPECT_EQ(neigh.find("10.244.1.9"), std::string::npos)
      << "a stale entry is not configuration: " << neigh;
  // The permanent entry for the gateway is the node's CNI veth in real life; here it is made up,
  // so replace it with the real one before sending traffic.
  ASSERT_EQ(Sh(ns + "neigh del 10.244.1.1 dev eth0"), 0);
  ExpectTraffic(vmpod.path());
}

TEST_F(PodNetworkTest, ARestartedForwarderBuildsItAgainAndTrafficStillFlows) {
  SKIP_UNLESS_ROOT();
  TestNetns vmpod("vmpod");
  ASSERT_TRUE(vmpod.ok());
  const std::string no_neighbour = R"(, "neighbors": [])";
  for (int run = 0; run < 2; ++run) {
    auto built = SetUpPodNetwork(Apf(no_neighbour), Options(vmpod.path()));
    ASSERT_TRUE(built) << "run " << run << ": " << built.error().ToString();
    ASSERT_TRUE(*built);
  }
  // One pod interface (a VXLAN device shows as eth0@<link>), no leftover transient device.
  EXPECT_EQ(
      ShOutput("ip -n " + vmpod.name() + " -o link show | awk -F': ' '{print $2}' | cut -d@ -f1"),
      "lo\neth0\n");
  EXPECT_EQ(ShOutput("ip -n " + vm_->name() + " -o link show | grep -c ppvx"), "0\n");
  ExpectTraffic(vmpod.path());
}

TEST_F(PodNetworkTest, AMissingPodNetnsIsCreatedWithLoUp) {
  SKIP_UNLESS_ROOT();
  NetnsPath vmpod("created");
  ASSERT_FALSE(vmpod.exists());
  auto built = SetUpPodNetwork(Apf(R"(, "neighbors": [])"), Options(vmpod.path()));
  ASSERT_TRUE(built) << built.error().ToString();
  ASSERT_TRUE(*built);
  EXPECT_TRUE((*built)->created_netns);
  EXPECT_NE(ShOutput("ip netns list").find(vmpod.name()), std::string::npos);
  EXPECT_NE(ShOutput("ip -n " + vmpod.name() + " link show lo").find("UP"), std::string::npos);
  ExpectTraffic(vmpod.path());
  // The second run (a restart) uses the namespace the first made.
  auto again = SetUpPodNetwork(Apf(R"(, "neighbors": [])"), Options(vmpod.path()));
  ASSERT_TRUE(again) << again.error().ToString();
  EXPECT_FALSE((*again)->created_netns);
  EXPECT_TRUE(Ping(node_->path(), "10.244.1.5"));
  ASSERT_TRUE(RemoveNetns(vmpod.path()));
  EXPECT_FALSE(vmpod.exists());
  EXPECT_EQ(ShOutput("ip netns list").find(vmpod.name()), std::string::npos);
}

TEST_F(PodNetworkTest, AFailedBuildRemovesTheNamespaceItCreated) {
  SKIP_UNLESS_ROOT();
  NetnsPath vmpod("failed");
  // A gateway on no link: the kernel refuses the route after the device is in place.
  auto built = SetUpPodNetwork(
      Apf(R"(, "routes": [{"dst": "10.99.0.0/16", "gw": "10.50.0.1", "dev": "eth0"}])"),
      Options(vmpod.path()));
  ASSERT_FALSE(built);
  EXPECT_NE(built.error().message.find("10.99.0.0/16 via 10.50.0.1"), std::string::npos)
      << built.error().ToString();
  EXPECT_FALSE(vmpod.exists()) << "the namespace this call made is left behind";
  EXPECT_EQ(ShOutput("ip -n " + vm_->name() + " -o link show | grep -c ppvx"), "0\n");
}

TEST_F(PodNetworkTest, TheVmsOwnNamespaceIsNeverTakenForThePods) {
  SKIP_UNLESS_ROOT();
  const std::string links = ShOutput("ip -n " + vm_->name() + " -o link show");
  auto built = SetUpPodNetwork(Apf(), Options(vm_->path()));
  ASSERT_FALSE(built);
  EXPECT_EQ(built.error().code, Code::kInvalidArgument) << built.error().ToString();
  EXPECT_NE(built.error().message.find("own network namespace"), std::string::npos);
  EXPECT_EQ(ShOutput("ip -n " + vm_->name() + " -o link show"), links) << "the VM's links are untouched";
}

TEST_F(PodNetworkTest, AnUnderlayThatNeverReachesTheNodeTimesOutAndMakesNothing) {
  SKIP_UNLESS_ROOT();
  NetnsPath vmpod("nounderlay");
  PodNetworkOptions options = Options(vmpod.path());
  options.underlay_wait = std::chrono::milliseconds(300);
  auto built = SetUpPodNetwork(Apf(R"(, "worker-node-ip": "10.123.0.1/16")"), options);
  ASSERT_FALSE(built);
  EXPECT_EQ(built.error().code, Code::kDeadlineExceeded) << built.error().ToString();
  EXPECT_NE(built.error().message.find("10.123.0.1"), std::string::npos)
      << built.error().ToString();
  EXPECT_FALSE(vmpod.exists());
  // A named host interface that does not exist: the message names it.
  options.host_interface = "ens9";
  built = SetUpPodNetwork(Apf(), options);
  ASSERT_FALSE(built);
  EXPECT_NE(built.error().message.find("ens9"), std::string::npos) << built.error().ToString();
  EXPECT_FALSE(vmpod.exists());
}

TEST_F(PodNetworkTest, ANamedHostInterfaceGivesTheTunnelsLocalAddress) {
  SKIP_UNLESS_ROOT();
  TestNetns vmpod("vmpod");
  ASSERT_TRUE(vmpod.ok());
  PodNetworkOptions options = Options(vmpod.path());
  options.host_interface = "ul0";
  auto built = SetUpPodNetwork(Apf(R"(, "neighbors": [])"), options);
  ASSERT_TRUE(built) << built.error().ToString();
  EXPECT_EQ((*built)->spec.local_ip, "192.168.77.2");
  EXPECT_NE(ShOutput("ip -d -n " + vmpod.name() + " link show eth0").find("local 192.168.77.2"),
            std::string::npos);
  EXPECT_TRUE(Ping(node_->path(), "10.244.1.5"));
}

TEST(EnsureNetnsTest, RefusesAPathThatIsNeitherANamespaceNorAnEmptyFile) {
  SKIP_UNLESS_ROOT();
  NetnsPath path("notns");
  ASSERT_TRUE(WriteFileAtomic(path.path(), "not a namespace", 0600));
  auto made = EnsureNetns(path.path());
  ASSERT_FALSE(made);
  EXPECT_EQ(made.error().code, Code::kInvalidArgument) << made.error().ToString();
  EXPECT_NE(made.error().message.find(path.path()), std::string::npos);
}

TEST(EnsureNetnsTest, ReusesTheEmptyFileOfACreateCutShort) {
  SKIP_UNLESS_ROOT();
  NetnsPath path("leftover");
  ASSERT_TRUE(WriteFileAtomic(path.path(), "", 0600));
  auto made = EnsureNetns(path.path());
  ASSERT_TRUE(made) << made.error().ToString();
  EXPECT_TRUE(*made);
  EXPECT_NE(ShOutput("ip -n " + path.name() + " link show lo").find("UP"), std::string::npos);
}

}  // namespace
}  // namespace pp::forwarder
