#include "adaptor/sandbox_store.h"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <fstream>

#include "common/base/file.h"
#include "tests/support/test_util.h"

namespace pp::adaptor {
namespace {

SandboxRecord Record(const std::string& id) {
  hypervisor::CreateVMRequest request;
  request.set_id(id);
  (*request.mutable_annotations())[std::string(kAnnotationPodName)] = "pod";
  (*request.mutable_annotations())[std::string(kAnnotationPodNamespace)] = "ns";
  (*request.mutable_annotations())[std::string(kAnnotationInitdata)] = "version = \"0.1.0\"\nalgorithm = \"sha256\"\n[data]\n\"aa.toml\" = \"secret\"\n";
  SandboxRecord record;
  record.request = *ParseCreateVM(request);
  record.instance_name = InstanceName("pod", id);
  record.state = SandboxState::kRunning;
  record.instance_id = "i-123";
  record.ips = {"10.0.0.5"};
  record.created_unix = 1700000000;
  return record;
}

TEST(SandboxStoreTest, SavesAndLoadsRecordsWithTightModes) {
  pp::testing::TempDir dir;
  SandboxStore store(dir / "pods");
  ASSERT_TRUE(store.Save(Record("a")));
  ASSERT_TRUE(store.Save(Record("b")));
  struct stat st{};
  ASSERT_EQ(::stat(store.PodDir("a").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0700u);
  ASSERT_EQ(::stat((store.PodDir("a") + "/sandbox.json").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);

  auto loaded = store.LoadAll();
  ASSERT_EQ(loaded.size(), 2u);
  const auto& a = loaded[0].request.id == "a" ? loaded[0] : loaded[1];
  EXPECT_EQ(a.request, Record("a").request);
  EXPECT_EQ(a.instance_id, "i-123");
  EXPECT_EQ(a.ips, std::vector<std::string>{"10.0.0.5"});
  EXPECT_EQ(a.state, SandboxState::kRunning);
  EXPECT_EQ(store.AgentSocketPath("a"), dir / "pods/a/agent.ttrpc");
}

TEST(SandboxStoreTest, SkipsBrokenRecordsWithoutDeletingThem) {
  pp::testing::TempDir dir;
  SandboxStore store(dir / "pods");
  ASSERT_TRUE(store.Save(Record("good")));
  std::filesystem::create_directories(dir / "pods/bad");
  std::ofstream(dir / "pods/bad/sandbox.json") << "{not json";
  std::filesystem::create_directories(dir / "pods/evil");
  auto evil = SerializeRecord(Record("good"));  // its id does not match its directory
  std::ofstream(dir / "pods/evil/sandbox.json") << evil;
  std::vector<UnreadableRecord> unreadable;
  auto loaded = store.LoadAll(&unreadable);
  ASSERT_EQ(loaded.size(), 1u);
  EXPECT_EQ(loaded[0].request.id, "good");
  EXPECT_TRUE(std::filesystem::exists(dir / "pods/bad/sandbox.json"));
  ASSERT_EQ(unreadable.size(), 2u);  // reported, so that their VMs are left alone
  EXPECT_TRUE(store.HasPodDir("bad"));
}

TEST(SandboxStoreTest, NeverWritesARecordItCouldNotReadBack) {
  pp::testing::TempDir dir;
  SandboxStore store(dir / "pods");
  auto record = Record("big");
  record.request.annotations["example.com/x"] = std::string(kMaxRecordBytes, 'x');
  auto saved = store.Save(record);
  ASSERT_FALSE(saved);
  EXPECT_EQ(saved.error().code, Code::kResourceExhausted);
  EXPECT_FALSE(std::filesystem::exists(dir / "pods/big/sandbox.json"));
}

TEST(SandboxStoreTest, KeepsTheLeftoversMark) {
  auto record = Record("x");
  record.leftovers = true;
  auto parsed = ParseRecord(SerializeRecord(record));
  ASSERT_TRUE(parsed);
  EXPECT_TRUE(parsed->leftovers);
  EXPECT_FALSE(ParseRecord(SerializeRecord(Record("x")))->leftovers);
}

TEST(SandboxStoreTest, KeepsThePodNetworkAndTunnelStateAndChecksThem) {
  auto record = Record("x");
  EXPECT_EQ(SerializeRecord(record).find("podNetwork"), std::string::npos);
  podvm::PodNetwork net;
  net.pod_ip = "10.244.1.5/24";
  net.pod_ipv6 = "fd00::5/64";
  net.pod_hw_addr = "0a:58:0a:f4:01:05";
  net.interface = "eth0";
  net.worker_node_ip = "192.168.122.1/24";
  net.tunnel_type = "vxlan";
  net.routes = {{"0.0.0.0/0", "10.244.1.1", "eth0", "boot", ""}};
  net.mtu = 1500;
  net.vxlan_port = 4789;
  net.vxlan_id = 555007;
  record.network = net;
  for (auto state : {TunnelState::kNone, TunnelState::kSettingUp, TunnelState::kUp}) {
    record.tunnel = state;
    auto parsed = ParseRecord(SerializeRecord(record));
    ASSERT_TRUE(parsed) << parsed.error().message;
    EXPECT_EQ(parsed->network, record.network);
    EXPECT_EQ(parsed->tunnel, state);
  }
  // A record on disk is outside input: a bad address or state is refused, not half-loaded.
  auto json = SerializeRecord(record);
  auto bad = json;
  bad.replace(bad.find("10.244.1.5/24"), 13, "10.244.1.500/24");
  EXPECT_EQ(ParseRecord(bad).error().code, Code::kDataLoss);
  bad = json;
  bad.replace(bad.find("\"up\""), 4, "\"sideways\"");
  EXPECT_EQ(ParseRecord(bad).error().code, Code::kDataLoss);
}

TEST(SandboxStoreTest, RejectsRecordsThatWouldNotPassCreateVM) {
  auto json = SerializeRecord(Record("x"));
  const auto pos = json.find("\"id\": \"x\"");
  ASSERT_NE(pos, std::string::npos);
  json.replace(pos, 9, "\"id\": \"../x\"");
  auto parsed = ParseRecord(json);
  ASSERT_FALSE(parsed);
  EXPECT_EQ(parsed.error().code, Code::kDataLoss);
}

TEST(SandboxStoreTest, RemoveDeletesThePodDirectoryAndIsIdempotent) {
  pp::testing::TempDir dir;
  SandboxStore store(dir / "pods");
  ASSERT_TRUE(store.Save(Record("a")));
  ASSERT_TRUE(store.Remove("a"));
  EXPECT_FALSE(std::filesystem::exists(store.PodDir("a")));
  EXPECT_TRUE(store.Remove("a"));
}

}  // namespace
}  // namespace pp::adaptor
