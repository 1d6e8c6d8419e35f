// WarmPool and the claims of SandboxManager, with the TEST stand-in provider (instances in memory)
// and a stand-in PoolChannel (no VM here answers a provisioning call; the real channel, over mutual
// TLS to real pool VMs, is exercised by the libvirt end-to-end test).
#include "adaptor/warm_pool.h"

#include <gtest/gtest.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <future>
#include <set>

#include "adaptor/metrics.h"
#include "adaptor/sandbox_manager.h"
#include "common/podvm/initdata.h"
#include "tests/support/test_provider.h"
#include "tests/support/test_util.h"

namespace pp::adaptor {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

constexpr char kInitdataA[] = "version = \"0.1.0\"\nalgorithm = \"sha384\"\n[data]\n\"aa.toml\" = '''a'''\n";
constexpr char kInitdataB[] = "version = \"0.1.0\"\nalgorithm = \"sha384\"\n[data]\n\"aa.toml\" = '''b'''\n";

// TEST STAND-IN for the pool VMs' provisioning endpoints: every VM the provider made answers as
// itself with the initdata it was booted with, unless a test says otherwise.
class FakeChannel final : public PoolChannel {
 public:
  Result<std::string> PoolUserData(const std::string& vm_name, const std::string& initdata) const override {
    std::lock_guard lock(mu_);
    initdata_[vm_name] = InitdataDigest(initdata);
    return "#cloud-config pool VM " + vm_name;
  }
  Result<void> Check(const std::string& vm_name, const std::string&, const std::string& digest,
                     Clock::time_point) const override {
    std::lock_guard lock(mu_);
    ++checks_;
    if (dead_.count(vm_name)) return Fail(Code::kUnavailable, "connection refused");
    if (initdata_[vm_name] != digest) return Fail(Code::kFailedPrecondition, "other initdata");
    return {};
  }
  Result<void> Claim(const std::string& vm_name, const std::string&, const std::string& sandbox_id,
                     const std::string& user_data, Clock::time_point) const override {
    std::lock_guard lock(mu_);
    if (fail_claims_) return Fail(Code::kUnavailable, "claim refused by the test");
    if (!claimed_.emplace(vm_name, sandbox_id).second) return Fail(Code::kFailedPrecondition, "already claimed");
    user_data_[vm_name] = user_data;
    return {};
  }
  void Kill(const std::string& vm) {
    std::lock_guard lock(mu_);
    dead_.insert(vm);
  }
  void FailClaims(bool fail) {
    std::lock_guard lock(mu_);
    fail_claims_ = fail;
  }
  std::map<std::string, std::string> claimed() const {
    std::lock_guard lock(mu_);
    return claimed_;
  }
  int checks() const {
    std::lock_guard lock(mu_);
    return checks_;
  }

 private:
  mutable std::mutex mu_;
  mutable std::map<std::string, std::string> initdata_, claimed_, user_data_;
  mutable int checks_ = 0;
  std::set<std::string> dead_;
  bool fail_claims_ = false;
};

template <typename F>
bool Eventually(F done, std::chrono::milliseconds limit = 10s) {
  const auto until = Clock::now() + limit;
  while (!done()) {
    if (Clock::now() >= until) return false;
    std::this_thread::sleep_for(5ms);
  }
  return true;
}

class WarmPoolTest : public ::testing::Test {
 protected:
  // Checks an hour apart unless a test asks: whatever a pool does between them must be woken by
  // what happened (a take, a boot that ended), not by a timer.
  std::unique_ptr<WarmPool> NewPool(std::vector<PoolSpec> pools, std::function<bool(const std::string&)> held = {},
                                    std::chrono::nanoseconds check_interval = std::chrono::hours(1)) {
    WarmPool::Options o;
    o.node_name = "node-a";
    o.dir = dir_ / "pool";
    o.pools = std::move(pools);
    o.check_interval = check_interval;
    o.boot_timeout = 5s;
    o.initial_backoff = 20ms;
    o.max_backoff = 100ms;
    o.ready_poll = 10ms;
    o.metrics = &metrics_;
    auto pool = std::make_unique<WarmPool>(std::move(o), provider_, channel_, std::move(held));
    EXPECT_TRUE(pool->Start());
    return pool;
  }
  static unsigned Ready(const WarmPool& pool, const std::string& name) {
    unsigned n = 0;
    for (const auto& status : pool.Snapshot()) {
      if (status.name != name) continue;
      for (const auto& vm : status.vms) n += vm.state == PoolVmState::kReady;
    }
    return n;
  }
  std::size_t Records() const {
    std::size_t n = 0;
    for ([[maybe_unused]] const auto& e : std::filesystem::directory_iterator(dir_ / "pool")) ++n;
    return n;
  }

  pp::testing::TempDir dir_;
  pp::testing::TestProvider provider_;
  FakeChannel channel_;
  Metrics metrics_{"test"};
};

PoolSpec Spec(std::string name, unsigned size, unsigned vcpus = 0, std::string initdata = "") {
  PoolSpec spec{std::move(name), size, {}, std::move(initdata)};
  spec.shape.vcpus = vcpus;
  spec.shape.initdata_digest = InitdataDigest(spec.initdata);
  return spec;
}

TEST(PoolSpecs, ParsesFlagsInCaasStyleAndNamesWhatIsWrong) {
  auto none = ParsePoolSpecs("", 0);
  ASSERT_TRUE(none);
  EXPECT_TRUE(none->empty());
  auto pools = ParsePoolSpecs(R"([{"name": "gpu", "size": 2, "vcpus": 4, "memory": 8192, "gpus": 1,
      "image": "podvm-gpu", "initdata": ")" + podvm::EncodeInitdata(kInitdataA) + R"("}])", 3);
  ASSERT_TRUE(pools) << pools.error().message;
  ASSERT_EQ(pools->size(), 2u);
  EXPECT_EQ((*pools)[0].name, "default");
  EXPECT_EQ((*pools)[0].size, 3u);
  EXPECT_EQ((*pools)[0].shape, PoolShape{});
  EXPECT_EQ((*pools)[1].shape.vcpus, 4u);
  EXPECT_EQ((*pools)[1].shape.memory_mib, 8192u);
  EXPECT_EQ((*pools)[1].initdata, kInitdataA);  // decoded, as the pod's request carries it
  EXPECT_EQ((*pools)[1].shape.initdata_digest, InitdataDigest(kInitdataA));
  EXPECT_EQ((*pools)[1].shape.initdata_digest.rfind("sha256:", 0), 0u);

  for (const auto& [text, expected] : std::vector<std::pair<std::string, std::string>>{
           {"{}", "not a JSON array"},
           {R"([{"name":"a"}])", "[0].size: required"},
           {R"([{"name":"Bad_Name","size":1}])", "[0].name"},
           {R"([{"name":"a","size":65}])", "[0].size"},
           {R"([{"name":"a","size":1,"colour":"red"}])", "unknown key \"colour\""},
           {R"([{"name":"a","size":1},{"name":"a","size":1}])", "[1].name: \"a\" used twice"},
           {R"([{"name":"a","size":1,"initdata":"bm90IGd6aXA="}])", "[0].initdata"},
           {R"([{"name":"a","size":-1}])", "[0].size"}}) {
    auto bad = ParsePoolSpecs(text, 0);
    ASSERT_FALSE(bad) << text;
    EXPECT_EQ(bad.error().code, Code::kInvalidArgument);
    EXPECT_NE(bad.error().message.find(expected), std::string::npos) << bad.error().message;
  }
  EXPECT_FALSE(ParsePoolSpecs("", 65));
}

TEST(PoolSpecs, ASandboxShapeIncludesItsInitdataDigest) {
  SandboxRequest a, b;
  a.vcpus = b.vcpus = 2;
  a.initdata = kInitdataA;
  b.initdata = kInitdataB;
  EXPECT_NE(ShapeOf(a), ShapeOf(b));
  b.initdata = kInitdataA;
  EXPECT_EQ(ShapeOf(a), ShapeOf(b));
  EXPECT_EQ(ShapeOf(SandboxRequest{}), PoolShape{});
}

TEST(PoolRecords, RoundTripAndRefuseGarbage) {
  PoolVmRecord r;
  r.name = "podvm-pool-default-0011aabb";
  r.pool = "default";
  r.owner_id = "pool-0011aabb";
  r.shape.vcpus = 2;
  r.shape.initdata_digest = InitdataDigest(kInitdataA);
  r.state = PoolVmState::kReady;
  r.instance_id = "i-1";
  r.ips = {"10.0.0.2"};
  r.created_unix = 1700000000;
  auto back = ParsePoolVm(SerializePoolVm(r));
  ASSERT_TRUE(back) << back.error().message;
  EXPECT_EQ(back->name, r.name);
  EXPECT_EQ(back->shape, r.shape);
  EXPECT_EQ(back->state, PoolVmState::kReady);
  EXPECT_EQ(back->ips, r.ips);
  EXPECT_FALSE(ParsePoolVm("{"));
  EXPECT_FALSE(ParsePoolVm(R"({"name":"x"})"));
}

TEST_F(WarmPoolTest, FillsEachPoolToItsSizeAndRecordsEveryVm) {
  auto pool = NewPool({Spec("small", 2, 1), Spec("big", 1, 4, kInitdataA)}, {}, 100ms);
  ASSERT_TRUE(Eventually([&] { return Ready(*pool, "small") == 2 && Ready(*pool, "big") == 1; }));
  EXPECT_EQ(provider_.Live(), 3u);
  EXPECT_EQ(Records(), 3u);
  std::this_thread::sleep_for(300ms);  // a few check intervals: no more than the sizes
  EXPECT_EQ(provider_.Live(), 3u);
  EXPECT_GE(channel_.checks(), 3);
  for (const auto& status : pool->Snapshot()) {
    for (const auto& vm : status.vms) {
      EXPECT_EQ(vm.name.rfind("podvm-pool-" + status.name + "-", 0), 0u);
      EXPECT_EQ(vm.owner_id.rfind("pool-", 0), 0u);
      EXPECT_EQ(vm.shape, status.shape);
    }
  }
  const auto text = metrics_.Exposition();
  EXPECT_NE(text.find("peerpods_warm_pool_vms{pool=\"small\",state=\"ready\"} 2"), std::string::npos) << text;
  EXPECT_NE(text.find("peerpods_warm_pool_target{pool=\"big\"} 1"), std::string::npos);
}

TEST_F(WarmPoolTest, ConcurrentTakesNeverGetTheSameVmAndThePoolRefills) {
  auto pool = NewPool({Spec("p", 3)});
  ASSERT_TRUE(Eventually([&] { return Ready(*pool, "p") == 3; }));
  std::vector<std::future<std::optional<PoolVmRecord>>> takes;
  for (int i = 0; i < 8; ++i) takes.push_back(std::async(std::launch::async, [&] { return pool->Take(PoolShape{}); }));
  std::set<std::string> names;
  int got = 0;
  for (auto& f : takes) {
    auto vm = f.get();
    if (!vm) continue;
    ++got;
    EXPECT_TRUE(names.insert(vm->name).second) << vm->name << " given twice";
    EXPECT_EQ(vm->state, PoolVmState::kClaimed);
    pool->Release(*vm);
  }
  EXPECT_EQ(got, 3);
  // Taken VMs keep their places until their claims settle: nothing boots meanwhile.
  std::this_thread::sleep_for(200ms);
  EXPECT_EQ(provider_.creates(), 3);
  for (const auto& name : names) pool->Settle(name);
  // Released VMs belong to their sandboxes now: the pool makes three new ones.
  ASSERT_TRUE(Eventually([&] { return Ready(*pool, "p") == 3; }));
  EXPECT_EQ(provider_.Live(), 6u);
  for (const auto& status : pool->Snapshot()) {
    for (const auto& vm : status.vms) EXPECT_EQ(names.count(vm.name), 0u);
  }
  EXPECT_EQ(Records(), 3u);
}

TEST_F(WarmPoolTest, AMissOnShapeOrInitdataGivesNothingAndIsCountedByReason) {
  auto pool = NewPool({Spec("p", 1, 2, kInitdataA)});
  ASSERT_TRUE(Eventually([&] { return Ready(*pool, "p") == 1; }));
  PoolShape other_vcpus;
  other_vcpus.vcpus = 4;
  other_vcpus.initdata_digest = InitdataDigest(kInitdataA);
  EXPECT_FALSE(pool->Take(other_vcpus));
  PoolShape other_initdata;
  other_initdata.vcpus = 2;
  other_initdata.initdata_digest = InitdataDigest(kInitdataB);
  EXPECT_FALSE(pool->Take(other_initdata));
  PoolShape none = other_initdata;
  none.initdata_digest = "";
  EXPECT_FALSE(pool->Take(none));
  PoolShape match = other_initdata;
  match.initdata_digest = InitdataDigest(kInitdataA);
  auto vm = pool->Take(match);
  ASSERT_TRUE(vm);
  EXPECT_FALSE(pool->Take(match));  // the only one is out
  const auto text = metrics_.Exposition();
  EXPECT_NE(text.find("peerpods_warm_pool_misses_total{reason=\"shape\"} 1"), std::string::npos) << text;
  EXPECT_NE(text.find("peerpods_warm_pool_misses_total{reason=\"initdata\"} 2"), std::string::npos) << text;
  EXPECT_NE(text.find("peerpods_warm_pool_misses_total{reason=\"empty\"} 1"), std::string::npos) << text;
  pool->Discard(*vm);
}

TEST_F(WarmPoolTest, ADiscardedVmIsDeletedAndReplaced) {
  auto pool = NewPool({Spec("p", 1)});
  ASSERT_TRUE(Eventually([&] { return Ready(*pool, "p") == 1; }));
  auto vm = pool->Take(PoolShape{});
  ASSERT_TRUE(vm);
  pool->Discard(*vm);
  ASSERT_TRUE(Eventually([&] {
    auto snap = pool->Snapshot();
    return Ready(*pool, "p") == 1 && snap[0].vms.size() == 1 && snap[0].vms[0].name != vm->name;
  }));
  EXPECT_EQ(provider_.Live(), 1u);
  EXPECT_FALSE(std::filesystem::exists(dir_ / ("pool/" + vm->name + ".json")));
}

TEST_F(WarmPoolTest, AVmThatFailsItsHealthCheckIsReplaced) {
  auto pool = NewPool({Spec("p", 2)}, {}, 100ms);
  ASSERT_TRUE(Eventually([&] { return Ready(*pool, "p") == 2; }));
  const std::string sick = pool->Snapshot()[0].vms[0].name;
  channel_.Kill(sick);
  ASSERT_TRUE(Eventually([&] {
    const auto snapshot = pool->Snapshot();
    for (const auto& vm : snapshot[0].vms) {
      if (vm.name == sick) return false;
    }
    return Ready(*pool, "p") == 2;
  }));
  EXPECT_EQ(provider_.Live(), 2u);
  EXPECT_NE(metrics_.Exposition().find("peerpods_warm_pool_vms_deleted_total{pool=\"p\",reason=\"unhealthy\"} 1"),
            std::string::npos) << metrics_.Exposition();
}

TEST_F(WarmPoolTest, ABootThatFailsLeavesNothingAndIsRetriedWithBackoff) {
  std::atomic<int> failures{0};
  provider_.SetFaults([&](std::string_view step) {
    if (step == "create.instance" && failures.fetch_add(1) < 3) return pp::testing::TestProvider::Fault::kFail;
    return pp::testing::TestProvider::Fault::kNone;
  });
  auto pool = NewPool({Spec("p", 1)});
  ASSERT_TRUE(Eventually([&] { return Ready(*pool, "p") == 1; }));
  EXPECT_GE(failures.load(), 4);
  EXPECT_EQ(provider_.Live(), 1u);
  EXPECT_EQ(provider_.Volumes(), 1u);
  EXPECT_EQ(Records(), 1u);
}

TEST_F(WarmPoolTest, VmsSurviveARestartAndAConfigurationChangeDrainsThem) {
  std::set<std::string> before;
  {
    auto pool = NewPool({Spec("p", 2), Spec("q", 1, 2)});
    ASSERT_TRUE(Eventually([&] { return Ready(*pool, "p") == 2 && Ready(*pool, "q") == 1; }));
    for (const auto& s : pool->Snapshot())
      for (const auto& vm : s.vms) before.insert(vm.name);
  }
  const int creates = provider_.creates();
  {
    auto pool = NewPool({Spec("p", 2), Spec("q", 1, 2)});  // same configuration: the same VMs
    std::this_thread::sleep_for(300ms);
    EXPECT_EQ(Ready(*pool, "p"), 2u);
    EXPECT_EQ(Ready(*pool, "q"), 1u);
    EXPECT_EQ(provider_.creates(), creates);
    std::set<std::string> now;
    for (const auto& s : pool->Snapshot())
      for (const auto& vm : s.vms) now.insert(vm.name);
    EXPECT_EQ(now, before);
  }
  // p shrinks to 1, q changes shape (vcpus 2 -> 4): one p VM and the q VM go; a new q VM comes.
  auto pool = NewPool({Spec("p", 1), Spec("q", 1, 4)});
  ASSERT_TRUE(Eventually([&] {
    auto snap = pool->Snapshot();
    return snap[0].vms.size() == 1 && snap[1].vms.size() == 1 && Ready(*pool, "q") == 1 && provider_.Live() == 2;
  }));
  EXPECT_EQ(pool->Snapshot()[1].vms[0].shape.vcpus, 4u);
  EXPECT_EQ(Records(), 2u);
}

TEST_F(WarmPoolTest, ARecordWhoseVmASandboxHoldsIsDroppedNotDeleted) {
  std::string held;
  {
    auto pool = NewPool({Spec("p", 1)});
    ASSERT_TRUE(Eventually([&] { return Ready(*pool, "p") == 1; }));
    held = pool->Snapshot()[0].vms[0].instance_id;
  }
  // As after a crash between the sandbox's record and the pool's forgetting the VM.
  auto pool = NewPool({Spec("p", 1)}, [&](const std::string& id) { return id == held; });
  ASSERT_TRUE(Eventually([&] { return Ready(*pool, "p") == 1; }));
  EXPECT_NE(pool->Snapshot()[0].vms[0].instance_id, held);
  EXPECT_EQ(provider_.Live(), 2u);  // the held VM is the sandbox's, untouched
  EXPECT_EQ(Records(), 1u);
}

TEST_F(WarmPoolTest, ABootCutShortByARestartHasItsLeftoversRemoved) {
  std::filesystem::create_directories(dir_ / "pool");
  PoolVmRecord r;
  r.name = "podvm-pool-p-deadbeef";
  r.pool = "p";
  r.owner_id = "pool-deadbeef";
  r.state = PoolVmState::kBooting;
  {
    std::ofstream(dir_ / ("pool/" + r.name + ".json")) << SerializePoolVm(r);
  }
  provider_.InjectVolume(r.name);  // made before the process died, no instance yet
  auto pool = NewPool({Spec("p", 1)});
  ASSERT_TRUE(Eventually([&] { return Ready(*pool, "p") == 1 && provider_.Volumes() == 1u; }));
  EXPECT_FALSE(std::filesystem::exists(dir_ / ("pool/" + r.name + ".json")));
  EXPECT_NE(pool->Snapshot()[0].vms[0].name, r.name);
}

// --- claims through SandboxManager ---

hypervisor::CreateVMRequest Request(const std::string& id, const std::string& initdata = "", unsigned vcpus = 0) {
  hypervisor::CreateVMRequest request;
  request.set_id(id);
  (*request.mutable_annotations())[std::string(kAnnotationPodName)] = "pod-" + id;
  (*request.mutable_annotations())[std::string(kAnnotationPodNamespace)] = "ns";
  if (!initdata.empty()) (*request.mutable_annotations())[std::string(kAnnotationInitdata)] = initdata;
  if (vcpus) (*request.mutable_annotations())[std::string(kAnnotationVcpus)] = std::to_string(vcpus);
  return request;
}

class WarmClaimTest : public WarmPoolTest {
 protected:
  void SetUp() override {
    SandboxManager::Options options;
    options.node_name = "node-a";
    options.initial_backoff = 10ms;
    options.max_backoff = 20ms;
    options.metrics = &metrics_;
    manager_ = std::make_unique<SandboxManager>(options, SandboxStore(dir_ / "pods"), provider_, blocking_);
    pool_ = NewPool({Spec("p", 2, 0, kInitdataA)}, [this](const std::string& id) { return manager_->HoldsInstance(id, false); });
    manager_->SetWarmPool(pool_.get(), &channel_);
    ASSERT_TRUE(Eventually([&] { return Ready(*pool_, "p") == 2; }));
  }
  void TearDown() override {
    pool_->Stop();
  }
  Result<void> CreateAndStart(const std::string& id, const std::string& initdata = kInitdataA, unsigned vcpus = 0) {
    auto created = io_.Run(manager_->CreateVM(Request(id, initdata, vcpus)));
    if (!created) return std::unexpected(created.error());
    return io_.Run(manager_->StartVM(id, std::nullopt));
  }
  SandboxRecord RecordOf(const std::string& id) {
    for (auto& r : manager_->Snapshot())
      if (r.request.id == id) return r;
    return {};
  }

  BlockingPool blocking_{8, 64};
  pp::testing::IoThread io_;
  std::unique_ptr<SandboxManager> manager_;
  std::unique_ptr<WarmPool> pool_;
};

TEST_F(WarmClaimTest, StartVMClaimsAReadyVmOfItsShapeAndThePoolRefills) {
  const auto ready = pool_->Snapshot()[0].vms;
  const int creates = provider_.creates();
  ASSERT_TRUE(CreateAndStart("s1"));
  const auto record = RecordOf("s1");
  EXPECT_EQ(record.state, SandboxState::kRunning);
  EXPECT_EQ(record.instance_name.rfind("podvm-pool-p-", 0), 0u);
  EXPECT_TRUE(record.instance_name == ready[0].name || record.instance_name == ready[1].name);
  EXPECT_EQ(channel_.claimed().at(record.instance_name), "s1");
  EXPECT_TRUE(Eventually([&] { return Ready(*pool_, "p") == 2 && provider_.creates() == creates + 1; }));
  const auto snapshot = pool_->Snapshot();
  for (const auto& vm : snapshot[0].vms) EXPECT_NE(vm.name, record.instance_name);
  // Reconciliation leaves pool VMs and the claimed VM (whose owner tag still says "pool") alone.
  auto report = io_.Run(manager_->Reconcile());
  ASSERT_TRUE(report);
  EXPECT_EQ(report->orphans, 0u);
  // StopVM deletes the claimed VM: it is never given to another pod.
  ASSERT_TRUE(io_.Run(manager_->StopVM("s1", std::nullopt)));
  EXPECT_EQ(provider_.Live(), 2u);
  EXPECT_NE(metrics_.Exposition().find("peerpods_warm_pool_claims_total{outcome=\"ok\",pool=\"p\"} 1"),
            std::string::npos)
      << metrics_.Exposition();
}

TEST_F(WarmClaimTest, OtherInitdataOrShapeBootsAFreshVm) {
  const int creates = provider_.creates();
  ASSERT_TRUE(CreateAndStart("s1", kInitdataB));
  EXPECT_EQ(RecordOf("s1").instance_name.rfind("podvm-pod-s1", 0), 0u);
  ASSERT_TRUE(CreateAndStart("s2", kInitdataA, 2));
  EXPECT_EQ(RecordOf("s2").instance_name.rfind("podvm-pod-s2", 0), 0u);
  EXPECT_EQ(provider_.creates(), creates + 2);
  EXPECT_TRUE(channel_.claimed().empty());
  EXPECT_EQ(Ready(*pool_, "p"), 2u);
}

TEST_F(WarmClaimTest, AFailedClaimDeletesThePoolVmAndBootsAFreshOne) {
  channel_.FailClaims(true);
  const auto before = pool_->Snapshot()[0].vms;
  ASSERT_TRUE(CreateAndStart("s1"));
  const auto record = RecordOf("s1");
  EXPECT_EQ(record.instance_name.rfind("podvm-pod-s1", 0), 0u);  // cold
  // The pool VM that refused is gone; the pool refilled; nothing else is alive.
  ASSERT_TRUE(Eventually([&] { return Ready(*pool_, "p") == 2 && provider_.Live() == 3u; }));
  std::set<std::string> ids;
  const auto snapshot = pool_->Snapshot();
  for (const auto& vm : snapshot[0].vms) ids.insert(vm.instance_id);
  ids.insert(record.instance_id);
  EXPECT_EQ(ids.size(), 3u);
  EXPECT_NE(metrics_.Exposition().find("peerpods_warm_pool_claims_total{outcome=\"error\",pool=\"p\"} 1"),
            std::string::npos);
  ASSERT_TRUE(io_.Run(manager_->StopVM("s1", std::nullopt)));
  EXPECT_EQ(provider_.Live(), 2u);
  (void)before;
}

TEST_F(WarmClaimTest, ConcurrentStartVMsClaimDistinctVms) {
  std::vector<std::future<Result<void>>> starts;
  for (int i = 0; i < 4; ++i) {
    starts.push_back(std::async(std::launch::async, [this, i] { return CreateAndStart("c" + std::to_string(i)); }));
  }
  for (auto& f : starts) ASSERT_TRUE(f.get());
  std::set<std::string> names;
  int warm = 0;
  for (int i = 0; i < 4; ++i) {
    const auto r = RecordOf("c" + std::to_string(i));
    EXPECT_TRUE(names.insert(r.instance_id).second);
    warm += r.instance_name.rfind("podvm-pool-", 0) == 0;
  }
  EXPECT_GE(warm, 2);  // both ready VMs went, to different sandboxes; the rest booted (or refilled)
  EXPECT_EQ(channel_.claimed().size(), static_cast<std::size_t>(warm));
  for (int i = 0; i < 4; ++i) ASSERT_TRUE(io_.Run(manager_->StopVM("c" + std::to_string(i), std::nullopt)));
}

}  // namespace
}  // namespace pp::adaptor
