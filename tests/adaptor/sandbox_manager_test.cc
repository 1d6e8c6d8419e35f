#include "adaptor/sandbox_manager.h"

#include <gtest/gtest.h>

#include <atomic>
#include <filesystem>
#include <functional>
#include <future>
#include <fstream>
#include <random>

#include "agent/health.pb.h"
#include "common/ttrpc/server.h"
#include "common/ttrpc/service.h"
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

  // Waits (bounded) until `done` holds.
  template <typename F>
  bool Eventually(F done, std::chrono::milliseconds limit = 10s) {
    const auto until = Clock::now() + limit;
    while (!done()) {
      if (Clock::now() >= until) return false;
      std::this_thread::sleep_for(5ms);
    }
    return true;
  }

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
  EXPECT_EQ(io_.Run(m->Reconcile())->deleted, 0u);  // the running instance is accounted for
  ASSERT_TRUE(Stop(*m, "s1"));
  EXPECT_EQ(provider_.Live(), 0u);
}

TEST_F(SandboxManagerTest, ReconcileDeletesOnlyThisNodesUnaccountedInstances) {
  auto m = NewManager();
  ASSERT_TRUE(Create(*m, "s1", "pod"));
  ASSERT_TRUE(Start(*m, "s1"));
  provider_.Inject({"leak-1", "podvm-x", {"10.0.0.9"}, {"node-a", "gone-sandbox"}});
  provider_.Inject({"other-1", "podvm-y", {"10.0.0.8"}, {"node-b", "theirs"}});
  // A second VM of a live sandbox whose (readable) record names another: a create that timed out
  // after the VM was made, then a retry.
  provider_.Inject({"stray-1", "podvm-z", {"10.0.0.7"}, {"node-a", "s1"}});
  auto deleted = io_.Run(m->Reconcile());
  ASSERT_TRUE(deleted);
  EXPECT_EQ(deleted->orphans, 2u);
  EXPECT_EQ(deleted->deleted, 2u);
  EXPECT_EQ(provider_.Live(), 2u);  // ours (recorded) and node-b's
}

TEST_F(SandboxManagerTest, ReconcileWaitsOutItsGracePeriodBeforeDeleting) {
  SandboxManager::Options options;
  options.node_name = "node-a";
  options.reconcile_grace = std::chrono::hours(1);
  auto m = std::make_unique<SandboxManager>(options, SandboxStore(pods_), provider_, pool_);
  provider_.Inject({"leak-1", "podvm-x", {"10.0.0.9"}, {"node-a", "gone-sandbox"}});
  for (int pass = 0; pass < 2; ++pass) {  // seen twice, still within the grace period
    auto report = io_.Run(m->Reconcile());
    ASSERT_TRUE(report);
    EXPECT_EQ(report->orphans, 1u);
    EXPECT_EQ(report->found, pass == 0 ? 1u : 0u) << "found once, however many passes see it";
    EXPECT_EQ(report->waiting, 1u);
    EXPECT_EQ(report->deleted, 0u);
  }
  EXPECT_EQ(provider_.Live(), 1u);
  options.reconcile_grace = std::chrono::nanoseconds(0);
  m = std::make_unique<SandboxManager>(options, SandboxStore(pods_), provider_, pool_);
  auto report = io_.Run(m->Reconcile());
  ASSERT_TRUE(report);
  EXPECT_EQ(report->deleted, 1u);
  EXPECT_EQ(provider_.Live(), 0u);
}

TEST_F(SandboxManagerTest, CreateVMPastThePerNodeLimitIsResourceExhaustedUntilOneLeaves) {
  SandboxManager::Options options;
  options.node_name = "node-a";
  options.limit_per_node = 2;
  auto m = std::make_unique<SandboxManager>(options, SandboxStore(pods_), provider_, pool_);
  ASSERT_TRUE(Create(*m, "s1", "pod1"));
  ASSERT_TRUE(Create(*m, "s2", "pod2"));
  ASSERT_TRUE(Create(*m, "s1", "pod1")) << "a repeated CreateVM of a live sandbox is not a new one";
  auto third = Create(*m, "s3", "pod3");
  ASSERT_FALSE(third);
  EXPECT_EQ(third.error().code, Code::kResourceExhausted);
  EXPECT_NE(third.error().message.find("-peerpods-limit-per-node"), std::string::npos) << third.error().message;
  EXPECT_FALSE(std::filesystem::exists(pods_ + "/s3"));
  EXPECT_EQ(m->limit_rejections(), 1u);
  ASSERT_TRUE(Stop(*m, "s2"));
  ASSERT_TRUE(Create(*m, "s3", "pod3"));
  // Recovered records count too: a restarted adaptor at its limit refuses as well.
  m = std::make_unique<SandboxManager>(options, SandboxStore(pods_), provider_, pool_);
  EXPECT_EQ(Create(*m, "s4", "pod4").error().code, Code::kResourceExhausted);
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

TEST_F(SandboxManagerTest, RefusesAnnotationsThatWouldMakeAnUnreadableRecord) {
  auto m = NewManager();
  auto request = Request("big", "pod");
  (*request.mutable_annotations())["example.com/unknown"] = std::string(2 << 20, 'x');  // fits in a frame
  auto created = io_.Run(m->CreateVM(request));
  ASSERT_FALSE(created);
  EXPECT_EQ(created.error().code, Code::kInvalidArgument);
  EXPECT_NE(created.error().message.find("annotations hold"), std::string::npos) << created.error().message;
  EXPECT_FALSE(std::filesystem::exists(pods_ + "/big"));
}

TEST_F(SandboxManagerTest, NeverReconcilesAwayTheVMOfAnUnreadableRecord) {
  {
    auto m = NewManager();
    ASSERT_TRUE(Create(*m, "s1", "pod"));
    ASSERT_TRUE(Start(*m, "s1"));
  }
  std::ofstream(pods_ + "/s1/sandbox.json", std::ios::trunc) << "{broken";
  auto m = NewManager();
  EXPECT_TRUE(m->Snapshot().empty());
  auto deleted = io_.Run(m->Reconcile());
  ASSERT_TRUE(deleted);
  EXPECT_EQ(deleted->deleted, 0u);
  EXPECT_EQ(provider_.Live(), 1u);  // left alone: its record is unreadable, not absent
  auto again = Create(*m, "s1", "pod");
  ASSERT_FALSE(again);
  EXPECT_EQ(again.error().code, Code::kFailedPrecondition);
  // StopVM of that sandbox deletes the instances tagged with it, then its directory.
  ASSERT_TRUE(Stop(*m, "s1"));
  EXPECT_EQ(provider_.Live(), 0u);
  EXPECT_FALSE(std::filesystem::exists(pods_ + "/s1"));
}

TEST_F(SandboxManagerTest, LeftoversOfAStartVMCutShortAreRemoved) {
  {
    auto m = NewManager();
    ASSERT_TRUE(Create(*m, "s1", "pod"));
    ASSERT_TRUE(Create(*m, "s2", "pod2"));
  }
  // As if the process died inside StartVM after the provider made a volume: the record says
  // "starting" and the volume has no instance.
  for (const char* id : {"s1", "s2"}) {
    auto path = pods_ + "/" + id + "/sandbox.json";
    std::ifstream in(path);
    std::string text((std::istreambuf_iterator<char>(in)), {});
    const auto at = text.find("\"state\": \"created\"");
    ASSERT_NE(at, std::string::npos) << text;
    text.replace(at, std::string("\"state\": \"created\"").size(), "\"state\": \"starting\"");
    std::ofstream(path, std::ios::trunc) << text;
  }
  provider_.InjectVolume(InstanceName("pod", "s1"));
  provider_.InjectVolume(InstanceName("pod2", "s2"));
  auto m = NewManager();
  ASSERT_TRUE(Stop(*m, "s2"));  // StopVM removes them
  EXPECT_EQ(provider_.Volumes(), 1u);
  ASSERT_TRUE(io_.Run(m->Reconcile()));  // and so does the reconciliation
  EXPECT_EQ(provider_.Volumes(), 0u);
  ASSERT_TRUE(Stop(*m, "s1"));
}

TEST_F(SandboxManagerTest, GetInfoWaitingHoldsNoPoolThread) {
  BlockingPool one_thread{1, 8};
  SandboxManager::Options options;
  options.node_name = "node-a";
  SandboxManager m(options, SandboxStore(pods_), provider_, one_thread);
  auto waiting = asio::co_spawn(io_.io(), m.GetInfo("pod", "ns", true, Clock::now() + 30s), asio::use_future);
  // With the only pool thread parked in GetInfo this CreateVM could not run.
  auto created = asio::co_spawn(io_.io(), m.CreateVM(Request("s1", "pod")), asio::use_future);
  ASSERT_EQ(created.wait_for(5s), std::future_status::ready);
  ASSERT_TRUE(created.get());
  ASSERT_TRUE(io_.Run(m.StartVM("s1", std::nullopt)));
  ASSERT_EQ(waiting.wait_for(5s), std::future_status::ready);
  EXPECT_TRUE(waiting.get());
  ASSERT_TRUE(io_.Run(m.StopVM("s1", std::nullopt)));
}

// A StartVM whose caller gave up (the server cancels a handler when its deadline passes) still
// deletes the instance it made when its agent never answers.
class SandboxManagerAgentTest : public SandboxManagerTest {
 protected:
  SandboxManagerAgentTest() {
    // A port on which nothing listens: the agent never answers.
    asio::io_context io;
    asio::ip::tcp::acceptor acceptor(io, {asio::ip::make_address("127.0.0.1"), 0});
    AgentConnectorOptions options;
    options.disable_tls = true;
    options.forwarder_port = acceptor.local_endpoint().port();
    options.proxy_timeout = 1500ms;
    connector_ = std::move(*AgentConnector::Create(io_.executor(), options));
  }
  std::unique_ptr<SandboxManager> NewConnectedManager() {
    SandboxManager::Options options;
    options.node_name = "node-a";
    return std::make_unique<SandboxManager>(options, SandboxStore(pods_), provider_, pool_, connector_.get());
  }
  std::unique_ptr<AgentConnector> connector_;
};

TEST_F(SandboxManagerAgentTest, CleanupRunsAfterTheCallerWasCancelled) {
  auto m = NewConnectedManager();
  ASSERT_TRUE(Create(*m, "s1", "pod"));
  asio::cancellation_signal cancel;
  auto started = asio::co_spawn(io_.io(), m->StartVM("s1", Clock::now() + 3s),
                                asio::bind_cancellation_slot(cancel.slot(), asio::use_future));
  ASSERT_TRUE(Eventually([&] { return provider_.Live() == 1u; }));
  asio::post(io_.io(), [&] { cancel.emit(asio::cancellation_type::terminal); });
  const auto answer = started.get();
  ASSERT_FALSE(answer);
  // The work went on without its caller: the agent never answered, so the instance is deleted.
  EXPECT_TRUE(Eventually([&] { return provider_.Live() == 0u && m->Snapshot().at(0).state == SandboxState::kCreated; }));
  ASSERT_TRUE(pool_.WaitIdle(Clock::now() + 10s));
  ASSERT_TRUE(Stop(*m, "s1"));
}

// Posts `fn` to `io` after `depth` more turns of its queue.
void PostAfter(asio::io_context& io, int depth, std::function<void()> fn) {
  if (depth == 0) {
    asio::post(io, std::move(fn));
    return;
  }
  asio::post(io, [&io, depth, fn = std::move(fn)]() mutable { PostAfter(io, depth - 1, std::move(fn)); });
}

TEST_F(SandboxManagerAgentTest, StopVMFinishesAfterTheCallerWasCancelled) {
  auto m = NewConnectedManager();
  // The server cancels a handler whose deadline passed while it is suspended, as runtime-rs's 1 s
  // StopVM deadline can. The cancellation lands at each of StopVM's first suspensions in turn (the
  // hop to the agent proxies among them); the old code then threw at its next co_await and never
  // deleted anything.
  for (int depth = 0; depth < 8; ++depth) {
    const std::string id = "s" + std::to_string(depth);
    ASSERT_TRUE(Create(*m, id, "noip-pod"));
    provider_.Inject({"test-" + id, InstanceName("noip-pod", id), {"127.0.0.1"}, {"node-a", id}});
    asio::cancellation_signal cancel;
    std::promise<void> answered;
    asio::post(io_.io(), [&] {
      asio::co_spawn(io_.io(), m->StopVM(id, Clock::now() + 1s),
                     asio::bind_cancellation_slot(cancel.slot(),
                                                  [&](std::exception_ptr, Result<void>) { answered.set_value(); }));
      PostAfter(io_.io(), depth, [&] { cancel.emit(asio::cancellation_type::terminal); });
    });
    ASSERT_EQ(answered.get_future().wait_for(10s), std::future_status::ready);
    EXPECT_TRUE(Eventually([&] { return !std::filesystem::exists(pods_ + "/" + id); })) << "depth " << depth;
  }
  EXPECT_TRUE(m->Snapshot().empty());
  // The StopVMs went on without their callers: let them finish before the manager goes.
  ASSERT_TRUE(pool_.WaitIdle(Clock::now() + 10s));
  std::promise<void> io_turn;
  asio::post(io_.io(), [&] { io_turn.set_value(); });
  io_turn.get_future().wait();
}

TEST_F(SandboxManagerAgentTest, StartVMOfARunningRecordChecksItsAgentPath) {
  {
    auto m = NewManager();  // no connector: the record ends "running" with no agent proxy
    ASSERT_TRUE(Create(*m, "s1", "pod"));
    ASSERT_TRUE(Start(*m, "s1"));
  }
  auto m = NewConnectedManager();
  auto again = Start(*m, "s1", Clock::now() + 5s);
  ASSERT_FALSE(again) << "answered OK with no agent.ttrpc behind it";
  EXPECT_EQ(provider_.Live(), 0u);  // its agent never answered: the instance went
  ASSERT_TRUE(Stop(*m, "s1"));
}

// A shim that retries StartVM while the first is still waiting for the agent: the retry answers
// only once the agent path works, and the VM stays. Before, the retry answered OK at once (the
// first's proxy existed but its agent did not answer yet), and when the shim then stopped the
// sandbox the first StartVM failed and deleted the VM it was about to report.
TEST_F(SandboxManagerTest, ConcurrentStartVMsOfOneSandboxShareOneAgentPath) {
  ttrpc::Server agent(io_.executor(), {});  // stands where the forwarder and agent would be
  std::atomic<bool> serving{false};         // the agent answers only once the "VM" booted
  agent.Register("grpc.Health", "Check",
                 ttrpc::Unary<grpc::CheckRequest, grpc::HealthCheckResponse>(
                     [&serving](ttrpc::CallContext&, grpc::CheckRequest) -> asio::awaitable<Result<grpc::HealthCheckResponse>> {
                       if (!serving) co_return Fail(Code::kUnavailable, "agent not up yet");
                       grpc::HealthCheckResponse response;
                       response.set_status(grpc::HealthCheckResponse::SERVING);
                       co_return response;
                     }));
  auto endpoint = agent.ListenTcp({asio::ip::make_address("127.0.0.1"), 0});
  ASSERT_TRUE(endpoint);
  AgentConnectorOptions connector_options;
  connector_options.disable_tls = true;
  connector_options.forwarder_port = endpoint->port();
  auto connector = std::move(*AgentConnector::Create(io_.executor(), connector_options));
  SandboxManager::Options options;
  options.node_name = "node-a";
  SandboxManager m(options, SandboxStore(pods_), provider_, pool_, connector.get());
  ASSERT_TRUE(Create(m, "s1", "pod"));
  auto first = asio::co_spawn(io_.io(), m.StartVM("s1", Clock::now() + 30s), asio::use_future);
  ASSERT_TRUE(Eventually([&] { return provider_.Live() == 1u; }));
  auto second = asio::co_spawn(io_.io(), m.StartVM("s1", Clock::now() + 30s), asio::use_future);
  EXPECT_EQ(second.wait_for(500ms), std::future_status::timeout) << "the retry answered before the agent did";
  serving = true;
  auto a = first.get();
  auto b = second.get();
  EXPECT_TRUE(a) << a.error().ToString();
  EXPECT_TRUE(b) << b.error().ToString();
  EXPECT_EQ(provider_.creates(), 1);
  EXPECT_EQ(provider_.Live(), 1u);
  ASSERT_TRUE(io_.Run(m.StopVM("s1", std::nullopt)));
  io_.Run(connector->DisconnectAll());
  io_.Run(agent.Shutdown(1s));
}

// 100 randomized lifecycles with faults and stalls at every provider step and StopVMs racing
// StartVMs: every call is answered, and nothing is left.
TEST_F(SandboxManagerTest, RandomizedFaultsLeaveNothingBehind) {
  std::mt19937 rng(20261201);
  std::mutex rng_mu;
  auto faults = [&](std::string_view) {
    std::lock_guard lock(rng_mu);
    const int roll = std::uniform_int_distribution<int>(0, 99)(rng);
    using F = pp::testing::TestProvider::Fault;
    return roll < 8 ? F::kFail : roll < 16 ? F::kFailRetryable : roll < 19 ? F::kStall : F::kNone;
  };
  provider_.SetFaults(faults);
  SandboxManager::Options options;
  options.node_name = "node-a";
  options.initial_backoff = 5ms;
  options.max_backoff = 20ms;
  options.default_timeout = 1s;  // bounds a stalled cleanup delete
  auto m = std::make_unique<SandboxManager>(options, SandboxStore(pods_), provider_, pool_);
  for (int round = 0; round < 100; ++round) {
    const std::string id = "r" + std::to_string(round);
    ASSERT_TRUE(Create(*m, id, "pod" + std::to_string(round)));
    int delay_ms, stops;
    {
      std::lock_guard lock(rng_mu);
      delay_ms = std::uniform_int_distribution<int>(0, 30)(rng);
      stops = std::uniform_int_distribution<int>(0, 2)(rng);
    }
    auto start = asio::co_spawn(io_.io(), m->StartVM(id, Clock::now() + 200ms), asio::use_future);
    std::this_thread::sleep_for(std::chrono::milliseconds(delay_ms));
    std::vector<std::future<Result<void>>> stopping;
    for (int i = 0; i < stops; ++i) {
      stopping.push_back(asio::co_spawn(io_.io(), m->StopVM(id, Clock::now() + 200ms), asio::use_future));
    }
    ASSERT_EQ(start.wait_for(10s), std::future_status::ready) << "StartVM unanswered in round " << round;
    (void)start.get();
    for (auto& f : stopping) {
      ASSERT_EQ(f.wait_for(10s), std::future_status::ready) << "StopVM unanswered in round " << round;
      (void)f.get();
    }
    // The shim retries StopVM until it succeeds.
    provider_.SetFaults(nullptr);
    ASSERT_TRUE(Stop(*m, id)) << "round " << round;
    provider_.SetFaults(faults);
  }
  provider_.SetFaults(nullptr);
  EXPECT_EQ(provider_.Live(), 0u);
  EXPECT_EQ(provider_.Volumes(), 0u);
  EXPECT_TRUE(m->Snapshot().empty());
  EXPECT_TRUE(std::filesystem::is_empty(pods_));
}

}  // namespace
}  // namespace pp::adaptor
