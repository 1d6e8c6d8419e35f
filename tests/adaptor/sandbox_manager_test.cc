#include "adaptor/sandbox_manager.h"

#include <gtest/gtest.h>

#include "tests/support/test_provider.h"
#include "tests/support/test_util.h"

namespace pp::adaptor {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

hypervisor::CreateVMRequest Request(const std::string& id, const std::string& pod) {
  hypervisor::CreateVMRequest request;
  request.set_id(id);
  (*request.mutable_annotations())[std::string(kAnnotationPodName)] = pod;
  (*request.mutable_annotations())[std::string(kAnnotationPodNamespace)] = "ns";
  return request;
}

class SandboxManagerTest : public ::testing::Test {
 protected:
  SandboxManagerTest() { provider_.slow_delay = 3s; }

  std::unique_ptr<SandboxManager> NewManager() {
    SandboxManager::Options options;
    options.node_name = "node-a";
    options.initial_backoff = 10ms;
    options.max_backoff = 20ms;
    return std::make_unique<SandboxManager>(options, SandboxStore(pods_), provider_, pool_);
  }
  Result<std::string> Create(SandboxManager& m, const std::string& id, const std::string& pod) {
    return io_.Run(m.CreateVM(Request(id, pod)));
  }
  Result<void> Start(SandboxManager& m, const std::string& id, Deadline deadline = std::nullopt) {
    return io_.Run(m.StartVM(id, deadline));
  }
  Result<void> Stop(SandboxManager& m, const std::string& id) { return io_.Run(m.StopVM(id, std::nullopt)); }

  pp::testing::TempDir dir_;
  std::string pods_ = dir_ / "pods";
  pp::testing::TestProvider provider_;
  BlockingPool pool_{8, 64};
  pp::testing::IoThread io_;
};

TEST_F(SandboxManagerTest, CreateVMPlansPersistsAndIsIdempotent) {
  auto m = NewManager();
  auto path = Create(*m, "s1", "pod");
  ASSERT_TRUE(path) << path.error().ToString();
  EXPECT_EQ(*path, pods_ + "/s1/agent.ttrpc");
  EXPECT_TRUE(std::filesystem::exists(pods_ + "/s1/sandbox.json"));
  EXPECT_EQ(provider_.creates(), 0);  // CreateVM does not create the VM
  EXPECT_EQ(*Create(*m, "s1", "pod"), *path);
  auto other = Create(*m, "s1", "another-pod");
  ASSERT_FALSE(other);
  EXPECT_EQ(other.error().code, Code::kAlreadyExists);
}

TEST_F(SandboxManagerTest, StartAndStopManageTheInstanceAndPodDirectory) {
  auto m = NewManager();
  ASSERT_TRUE(Create(*m, "s1", "pod"));
  ASSERT_TRUE(Start(*m, "s1"));
  ASSERT_TRUE(Start(*m, "s1"));  // a repeated StartVM does not make a second VM
  EXPECT_EQ(provider_.creates(), 1);
  EXPECT_EQ(provider_.Live(), 1u);
  auto snapshot = m->Snapshot();
  ASSERT_EQ(snapshot.size(), 1u);
  EXPECT_EQ(snapshot[0].state, SandboxState::kRunning);
  EXPECT_EQ(snapshot[0].instance_name, "podvm-pod-s1");
  ASSERT_TRUE(Stop(*m, "s1"));
  EXPECT_EQ(provider_.Live(), 0u);
  EXPECT_FALSE(std::filesystem::exists(pods_ + "/s1"));
  EXPECT_TRUE(Stop(*m, "s1"));  // unknown now: still success
  auto unknown = Start(*m, "s1");
  ASSERT_FALSE(unknown);
  EXPECT_EQ(unknown.error().code, Code::kNotFound);
}

TEST_F(SandboxManagerTest, RetriesTransientFailures) {
  auto m = NewManager();
  ASSERT_TRUE(Create(*m, "s1", "flaky-pod"));
  ASSERT_TRUE(Start(*m, "s1"));
  EXPECT_EQ(provider_.Live(), 1u);
}

TEST_F(SandboxManagerTest, PermanentFailureLeavesNothingAndStopStillWorks) {
  auto m = NewManager();
  ASSERT_TRUE(Create(*m, "s1", "fail-pod"));
  auto started = Start(*m, "s1");
  ASSERT_FALSE(started);
  EXPECT_EQ(started.error().code, Code::kFailedPrecondition);
  EXPECT_EQ(provider_.Live(), 0u);
  ASSERT_TRUE(Stop(*m, "s1"));
  EXPECT_FALSE(std::filesystem::exists(pods_ + "/s1"));
}

TEST_F(SandboxManagerTest, FailureAfterTheInstanceExistsDeletesIt) {
  auto m = NewManager();
  ASSERT_TRUE(Create(*m, "s1", "noip-pod"));
  auto started = Start(*m, "s1");
  ASSERT_FALSE(started);
  EXPECT_EQ(started.error().code, Code::kUnavailable);
  EXPECT_EQ(provider_.creates(), 1);
  EXPECT_EQ(provider_.Live(), 0u);
  EXPECT_TRUE(m->Snapshot().at(0).instance_id.empty());
}

TEST_F(SandboxManagerTest, DeadlineEndsStartVMWithoutLeaking) {
  auto m = NewManager();
  ASSERT_TRUE(Create(*m, "s1", "slow-pod"));
  auto started = Start(*m, "s1", Clock::now() + 100ms);
  ASSERT_FALSE(started);
  EXPECT_EQ(started.error().code, Code::kDeadlineExceeded);
  EXPECT_EQ(provider_.Live(), 0u);
}

TEST_F(SandboxManagerTest, StopVMDuringStartVMCancelsItAndCleansUp) {
  auto m = NewManager();
  ASSERT_TRUE(Create(*m, "s1", "slow-pod"));
  auto start = asio::co_spawn(io_.io(), m->StartVM("s1", std::nullopt), asio::use_future);
  std::this_thread::sleep_for(50ms);  // let StartVM reach the provider; Stop must win either way
  ASSERT_TRUE(Stop(*m, "s1"));
  auto started = start.get();
  ASSERT_FALSE(started);
  EXPECT_EQ(provider_.Live(), 0u);
  EXPECT_FALSE(std::filesystem::exists(pods_ + "/s1"));
}

TEST_F(SandboxManagerTest, DifferentSandboxesStartInParallelTheSameOneSerially) {
  provider_.slow_delay = 300ms;
  auto m = NewManager();
  ASSERT_TRUE(Create(*m, "a", "slow-a"));
  ASSERT_TRUE(Create(*m, "b", "slow-b"));
  auto fa = asio::co_spawn(io_.io(), m->StartVM("a", std::nullopt), asio::use_future);
  auto fb = asio::co_spawn(io_.io(), m->StartVM("b", std::nullopt), asio::use_future);
  ASSERT_TRUE(fa.get());
  ASSERT_TRUE(fb.get());
  EXPECT_EQ(provider_.max_concurrent_creates(), 2);

  pp::testing::TestProvider serial;
  serial.slow_delay = 200ms;
  SandboxManager::Options options;
  options.node_name = "node-a";
  SandboxManager m2(options, SandboxStore(dir_ / "pods2"), serial, pool_);
  ASSERT_TRUE(io_.Run(m2.CreateVM(Request("c", "slow-c"))));
  auto f1 = asio::co_spawn(io_.io(), m2.StartVM("c", std::nullopt), asio::use_future);
  auto f2 = asio::co_spawn(io_.io(), m2.StartVM("c", std::nullopt), asio::use_future);
  ASSERT_TRUE(f1.get());
  ASSERT_TRUE(f2.get());
  EXPECT_EQ(serial.max_concurrent_creates(), 1);
  EXPECT_EQ(serial.creates(), 1);
}

TEST_F(SandboxManagerTest, RestartedManagerKnowsItsSandboxesAndTheirInstances) {
  std::string instance_id;
  {
    auto m = NewManager();
    ASSERT_TRUE(Create(*m, "s1", "pod"));
    ASSERT_TRUE(Start(*m, "s1"));
    ASSERT_TRUE(Create(*m, "s2", "pod2"));
    instance_id = m->Snapshot().at(0).instance_id;
  }
  auto m = NewManager();
  EXPECT_EQ(m->Snapshot().size(), 2u);
  auto info = io_.Run(m->GetInfo("pod", "ns", false, std::nullopt));
  ASSERT_TRUE(info);
  EXPECT_EQ(*info, instance_id);
  EXPECT_EQ(*Create(*m, "s1", "pod"), pods_ + "/s1/agent.ttrpc");  // same request, same answer
  EXPECT_EQ(*io_.Run(m->Reconcile()), 0u);  // the running instance is accounted for
  ASSERT_TRUE(Stop(*m, "s1"));
  EXPECT_EQ(provider_.Live(), 0u);
}

TEST_F(SandboxManagerTest, ReconcileDeletesOnlyThisNodesUnaccountedInstances) {
  auto m = NewManager();
  ASSERT_TRUE(Create(*m, "s1", "pod"));
  ASSERT_TRUE(Start(*m, "s1"));
  provider_.Inject({"leak-1", "podvm-x", {"10.0.0.9"}, {"node-a", "gone-sandbox"}});
  provider_.Inject({"other-1", "podvm-y", {"10.0.0.8"}, {"node-b", "theirs"}});
  auto deleted = io_.Run(m->Reconcile());
  ASSERT_TRUE(deleted);
  EXPECT_EQ(*deleted, 1u);
  EXPECT_EQ(provider_.Live(), 2u);  // ours (recorded) and node-b's
}

TEST_F(SandboxManagerTest, GetInfoWaitsForStartVM) {
  auto m = NewManager();
  ASSERT_TRUE(Create(*m, "s1", "pod"));
  auto missing = io_.Run(m->GetInfo("pod", "ns", false, std::nullopt));
  ASSERT_FALSE(missing);
  EXPECT_EQ(missing.error().code, Code::kNotFound);
  auto timed_out = io_.Run(m->GetInfo("pod", "ns", true, Clock::now() + 100ms));
  ASSERT_FALSE(timed_out);
  EXPECT_EQ(timed_out.error().code, Code::kDeadlineExceeded);
  auto waiting = asio::co_spawn(io_.io(), m->GetInfo("pod", "ns", true, Clock::now() + 30s), asio::use_future);
  ASSERT_TRUE(Start(*m, "s1"));
  auto info = waiting.get();
  ASSERT_TRUE(info) << info.error().ToString();
  EXPECT_EQ(*info, m->Snapshot().at(0).instance_id);
}

}  // namespace
}  // namespace pp::adaptor
