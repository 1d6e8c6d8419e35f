// Metrics: the exposition carries exactly the contract's series with the values the calls left, the
// error classes follow the provider taxonomy, and MeteredProvider counts what a provider did.
#include "adaptor/metrics.h"

#include <gtest/gtest.h>

#include <set>
#include <sstream>
#include <thread>

#include "tests/support/test_provider.h"

namespace pp::adaptor {
namespace {

using providers::OpContext;

bool HasLine(const std::string& text, const std::string& line) {
  std::istringstream in(text);
  for (std::string l; std::getline(in, l);) {
    if (l == line) return true;
  }
  return false;
}

#define EXPECT_LINE(text, line) \
  EXPECT_TRUE(HasLine(text, line)) << "missing line: " << (line) << "\nin:\n" << (text)

std::set<std::string> MetricNames(const std::string& text) {
  std::set<std::string> names;
  std::istringstream in(text);
  for (std::string l; std::getline(in, l);) {
    if (l.rfind("# TYPE ", 0) == 0) names.insert(l.substr(7, l.find(' ', 7) - 7));
  }
  return names;
}

OpContext Ctx() {
  return OpContext{std::chrono::steady_clock::now() + std::chrono::seconds(10), {}};
}

TEST(MetricsTest, ExpositionHoldsExactlyTheContractsMetricsAtZero) {
  Metrics m("1.2.3");
  // Without a provider, the families labelled by provider have no series and are not exposed.
  const std::set<std::string> without_provider{"peerpods_sandboxes",
                                               "peerpods_agent_proxy_connections",
                                               "peerpods_agent_proxy_bytes_total",
                                               "peerpods_reconcile_runs_total",
                                               "peerpods_reconcile_orphans_found_total",
                                               "peerpods_reconcile_orphans_deleted_total",
                                               "peerpods_limit_per_node",
                                               "peerpods_limit_rejections_total",
                                               "peerpods_build_info",
                                               "peerpods_warm_pool_misses_total"};
  EXPECT_EQ(MetricNames(m.Exposition()), without_provider);
  m.RegisterProvider("libvirt");
  std::set<std::string> all = without_provider;
  all.insert({"peerpods_startvm_duration_seconds", "peerpods_provider_calls_total",
              "peerpods_provider_errors_total", "peerpods_provider_up"});
  const std::string text = m.Exposition();
  EXPECT_EQ(MetricNames(text), all);
  EXPECT_LINE(text, "peerpods_build_info{version=\"1.2.3\"} 1");
  EXPECT_LINE(text, "peerpods_sandboxes{state=\"created\"} 0");
  EXPECT_LINE(text, "peerpods_sandboxes{state=\"starting\"} 0");
  EXPECT_LINE(text, "peerpods_sandboxes{state=\"running\"} 0");
  EXPECT_LINE(text, "peerpods_agent_proxy_connections 0");
  EXPECT_LINE(text, "peerpods_agent_proxy_bytes_total{direction=\"to_vm\"} 0");
  EXPECT_LINE(text, "peerpods_agent_proxy_bytes_total{direction=\"from_vm\"} 0");
  EXPECT_LINE(text, "peerpods_reconcile_runs_total{result=\"ok\"} 0");
  EXPECT_LINE(text, "peerpods_reconcile_runs_total{result=\"error\"} 0");
  EXPECT_LINE(text, "peerpods_limit_rejections_total 0");
  for (const char* reason : {"shape", "initdata", "empty"}) {
    EXPECT_LINE(text, std::string("peerpods_warm_pool_misses_total{reason=\"") + reason + "\"} 0");
  }
  // A configured pool's series exist at zero once the pool is declared.
  m.SetPoolTarget("gpu", 2);
  const std::string pooled = m.Exposition();
  all.insert({"peerpods_warm_pool_vms", "peerpods_warm_pool_target", "peerpods_warm_pool_claims_total",
              "peerpods_warm_pool_refill_seconds", "peerpods_warm_pool_vms_deleted_total"});
  EXPECT_EQ(MetricNames(pooled), all);
  EXPECT_LINE(pooled, "peerpods_warm_pool_target{pool=\"gpu\"} 2");
  EXPECT_LINE(pooled, "peerpods_warm_pool_vms{pool=\"gpu\",state=\"ready\"} 0");
  EXPECT_LINE(pooled, "peerpods_warm_pool_claims_total{outcome=\"ok\",pool=\"gpu\"} 0");
  EXPECT_LINE(pooled, "peerpods_warm_pool_vms_deleted_total{pool=\"gpu\",reason=\"unhealthy\"} 0");
}

TEST(MetricsTest, RegisterProviderCreatesItsSeriesAtZero) {
  Metrics m("v");
  m.RegisterProvider("aws");
  const std::string text = m.Exposition();
  for (const char* op : {"create", "delete", "list", "verify"}) {
    EXPECT_LINE(text, std::string("peerpods_provider_calls_total{operation=\"") + op +
                          "\",provider=\"aws\"} 0");
  }
  for (const char* c : {"unavailable", "throttled", "not_found", "capacity", "misconfigured",
                        "deadline", "cancelled", "other"}) {
    EXPECT_LINE(text, std::string("peerpods_provider_errors_total{class=\"") + c +
                          "\",provider=\"aws\"} 0");
  }
  EXPECT_LINE(text, "peerpods_provider_up{provider=\"aws\"} 0");
  EXPECT_LINE(text, "peerpods_startvm_duration_seconds_count{outcome=\"ok\",provider=\"aws\"} 0");
  EXPECT_LINE(text,
              "peerpods_startvm_duration_seconds_count{outcome=\"error\",provider=\"aws\"} 0");
}

TEST(MetricsTest, ValuesAfterCalls) {
  Metrics m("v");
  m.SetSandboxes(4, 2, 7);
  m.ObserveStartVM("libvirt", true, 0.5);
  m.ObserveStartVM("libvirt", true, 42);
  m.ObserveStartVM("libvirt", true, 3600);
  m.ObserveStartVM("libvirt", false, 600);
  m.ProviderCall("libvirt", ProviderOp::kCreate);
  m.ProviderCall("libvirt", ProviderOp::kCreate);
  m.ProviderCall("libvirt", ProviderOp::kList);
  m.ProviderError("libvirt", ProviderErrorClass::kCapacity);
  m.SetProviderUp("libvirt", true);
  m.AgentConnectionOpened();
  m.AgentConnectionOpened();
  m.AgentConnectionClosed();
  m.AgentBytes(1000, 0);
  m.AgentBytes(24, 5);
  m.ReconcileRun(true, 3, 2);
  m.ReconcileRun(false, 1, 0);
  m.ReconcileRun(true, 0, 0);
  m.SetLimit(10);
  m.LimitRejection();
  m.LimitRejection();
  const std::string text = m.Exposition();

  EXPECT_LINE(text, "peerpods_sandboxes{state=\"created\"} 4");
  EXPECT_LINE(text, "peerpods_sandboxes{state=\"starting\"} 2");
  EXPECT_LINE(text, "peerpods_sandboxes{state=\"running\"} 7");
  // Buckets are cumulative: 0.5 s in every one, 42 s from le=45, 3600 s in +Inf alone.
  EXPECT_LINE(
      text,
      "peerpods_startvm_duration_seconds_bucket{outcome=\"ok\",provider=\"libvirt\",le=\"1\"} 1");
  EXPECT_LINE(
      text,
      "peerpods_startvm_duration_seconds_bucket{outcome=\"ok\",provider=\"libvirt\",le=\"30\"} 1");
  EXPECT_LINE(
      text,
      "peerpods_startvm_duration_seconds_bucket{outcome=\"ok\",provider=\"libvirt\",le=\"45\"} 2");
  EXPECT_LINE(
      text,
      "peerpods_startvm_duration_seconds_bucket{outcome=\"ok\",provider=\"libvirt\",le=\"600\"} 2");
  EXPECT_LINE(text,
              "peerpods_startvm_duration_seconds_bucket{outcome=\"ok\",provider=\"libvirt\",le=\"+"
              "Inf\"} 3");
  EXPECT_LINE(text,
              "peerpods_startvm_duration_seconds_count{outcome=\"ok\",provider=\"libvirt\"} 3");
  EXPECT_LINE(text,
              "peerpods_startvm_duration_seconds_sum{outcome=\"ok\",provider=\"libvirt\"} 3642.5");
  EXPECT_LINE(text,
              "peerpods_startvm_duration_seconds_bucket{outcome=\"error\",provider=\"libvirt\",le="
              "\"300\"} 0");
  EXPECT_LINE(text,
              "peerpods_startvm_duration_seconds_bucket{outcome=\"error\",provider=\"libvirt\",le="
              "\"600\"} 1");
  EXPECT_LINE(text,
              "peerpods_startvm_duration_seconds_count{outcome=\"error\",provider=\"libvirt\"} 1");
  EXPECT_LINE(text, "peerpods_provider_calls_total{operation=\"create\",provider=\"libvirt\"} 2");
  EXPECT_LINE(text, "peerpods_provider_calls_total{operation=\"list\",provider=\"libvirt\"} 1");
  EXPECT_LINE(text, "peerpods_provider_errors_total{class=\"capacity\",provider=\"libvirt\"} 1");
  EXPECT_LINE(text, "peerpods_provider_up{provider=\"libvirt\"} 1");
  EXPECT_LINE(text, "peerpods_agent_proxy_connections 1");
  EXPECT_LINE(text, "peerpods_agent_proxy_bytes_total{direction=\"to_vm\"} 1024");
  EXPECT_LINE(text, "peerpods_agent_proxy_bytes_total{direction=\"from_vm\"} 5");
  EXPECT_LINE(text, "peerpods_reconcile_runs_total{result=\"ok\"} 2");
  EXPECT_LINE(text, "peerpods_reconcile_runs_total{result=\"error\"} 1");
  EXPECT_LINE(text, "peerpods_reconcile_orphans_found_total 4");
  EXPECT_LINE(text, "peerpods_reconcile_orphans_deleted_total 2");
  EXPECT_LINE(text, "peerpods_limit_per_node 10");
  EXPECT_LINE(text, "peerpods_limit_rejections_total 2");

  m.SetProviderUp("libvirt", false);
  EXPECT_LINE(m.Exposition(), "peerpods_provider_up{provider=\"libvirt\"} 0");
}

TEST(MetricsTest, ConcurrentCallsLoseNoCount) {
  Metrics m("v");
  constexpr int kThreads = 4;
  constexpr int kEach = 2000;
  {
    std::vector<std::jthread> threads;
    for (int t = 0; t < kThreads; ++t) {
      threads.emplace_back([&m] {
        for (int i = 0; i < kEach; ++i) {
          m.ProviderCall("gcp", ProviderOp::kDelete);
          m.AgentBytes(1, 2);
          m.ObserveStartVM("gcp", true, 3);
        }
      });
    }
  }
  const std::string text = m.Exposition();
  EXPECT_LINE(text, "peerpods_provider_calls_total{operation=\"delete\",provider=\"gcp\"} 8000");
  EXPECT_LINE(text, "peerpods_agent_proxy_bytes_total{direction=\"from_vm\"} 16000");
  EXPECT_LINE(text,
              "peerpods_startvm_duration_seconds_count{outcome=\"ok\",provider=\"gcp\"} 8000");
}

TEST(MetricsTest, ErrorClassFollowsTheProviderTaxonomy) {
  EXPECT_EQ(ErrorClass(Code::kUnavailable), ProviderErrorClass::kUnavailable);
  EXPECT_EQ(ErrorClass(Code::kAborted), ProviderErrorClass::kThrottled);
  EXPECT_EQ(ErrorClass(Code::kNotFound), ProviderErrorClass::kNotFound);
  EXPECT_EQ(ErrorClass(Code::kResourceExhausted), ProviderErrorClass::kCapacity);
  EXPECT_EQ(ErrorClass(Code::kFailedPrecondition), ProviderErrorClass::kMisconfigured);
  EXPECT_EQ(ErrorClass(Code::kInvalidArgument), ProviderErrorClass::kMisconfigured);
  EXPECT_EQ(ErrorClass(Code::kPermissionDenied), ProviderErrorClass::kMisconfigured);
  EXPECT_EQ(ErrorClass(Code::kUnauthenticated), ProviderErrorClass::kMisconfigured);
  EXPECT_EQ(ErrorClass(Code::kDeadlineExceeded), ProviderErrorClass::kDeadline);
  EXPECT_EQ(ErrorClass(Code::kCancelled), ProviderErrorClass::kCancelled);
  for (Code c : {Code::kUnknown, Code::kInternal, Code::kAlreadyExists, Code::kOutOfRange,
                 Code::kUnimplemented, Code::kDataLoss, Code::kOk, static_cast<Code>(99)}) {
    EXPECT_EQ(ErrorClass(c), ProviderErrorClass::kOther) << CodeName(c);
  }
  EXPECT_EQ(ErrorClassName(ProviderErrorClass::kNotFound), "not_found");
  EXPECT_EQ(ErrorClassName(ProviderErrorClass::kMisconfigured), "misconfigured");
  EXPECT_EQ(ProviderOpName(ProviderOp::kVerify), "verify");
}

TEST(MeteredProviderTest, CountsCallsAndErrorsOfTheInnerProvider) {
  auto metrics = std::make_shared<Metrics>("v");
  auto inner = std::make_unique<pp::testing::TestProvider>();
  auto* test = inner.get();
  MeteredProvider provider(std::move(inner), "test", metrics);

  providers::InstanceSpec spec;
  spec.name = "podvm-a";
  spec.owner = {"node-1", "sandbox-a"};
  spec.pod_name = "a";
  auto created = provider.CreateInstance(spec, Ctx());
  ASSERT_TRUE(created.has_value()) << created.error().ToString();
  EXPECT_EQ(test->Live(), 1u);  // the call reached the inner provider

  spec.name = "podvm-b";
  spec.pod_name = "fail-b";  // FAILED_PRECONDITION: misconfigured
  auto failed = provider.CreateInstance(spec, Ctx());
  ASSERT_FALSE(failed.has_value());
  EXPECT_EQ(failed.error().code, Code::kFailedPrecondition);  // passed through unchanged

  auto listed = provider.ListInstances("node-1", Ctx());
  ASSERT_TRUE(listed.has_value());
  EXPECT_EQ(listed->size(), 1u);

  test->SetFaults([](std::string_view step) {
    return step == "list" ? pp::testing::TestProvider::Fault::kFailRetryable
                          : pp::testing::TestProvider::Fault::kNone;
  });
  EXPECT_FALSE(provider.ListInstances("node-1", Ctx()).has_value());  // UNAVAILABLE
  test->SetFaults(nullptr);

  EXPECT_TRUE(provider.DeleteInstance(created->id, Ctx()).has_value());
  EXPECT_TRUE(provider.DeleteLeftovers("podvm-a", spec.owner, Ctx()).has_value());
  EXPECT_EQ(test->Live(), 0u);

  const std::string text = metrics->Exposition();
  EXPECT_LINE(text, "peerpods_provider_calls_total{operation=\"create\",provider=\"test\"} 2");
  EXPECT_LINE(text, "peerpods_provider_calls_total{operation=\"list\",provider=\"test\"} 2");
  EXPECT_LINE(text, "peerpods_provider_calls_total{operation=\"delete\",provider=\"test\"} 2");
  EXPECT_LINE(text, "peerpods_provider_calls_total{operation=\"verify\",provider=\"test\"} 0");
  EXPECT_LINE(text, "peerpods_provider_errors_total{class=\"misconfigured\",provider=\"test\"} 1");
  EXPECT_LINE(text, "peerpods_provider_errors_total{class=\"unavailable\",provider=\"test\"} 1");
  EXPECT_LINE(text, "peerpods_provider_errors_total{class=\"other\",provider=\"test\"} 0");
  // Every call says whether the provider is up: the last one (a delete) was answered.
  EXPECT_LINE(text, "peerpods_provider_up{provider=\"test\"} 1");
}

TEST(MeteredProviderTest, EveryCallSaysWhetherTheProviderIsUp) {
  auto metrics = std::make_shared<Metrics>("v");
  auto inner = std::make_unique<pp::testing::TestProvider>();
  auto* test = inner.get();
  MeteredProvider provider(std::move(inner), "test", metrics);
  ASSERT_TRUE(provider.ListInstances("node-1", Ctx()).has_value());
  EXPECT_LINE(metrics->Exposition(), "peerpods_provider_up{provider=\"test\"} 1");
  test->SetFaults([](std::string_view step) {
    return step == "list" ? pp::testing::TestProvider::Fault::kFailRetryable
                          : pp::testing::TestProvider::Fault::kNone;
  });
  EXPECT_FALSE(provider.ListInstances("node-1", Ctx()).has_value());  // UNAVAILABLE: down
  EXPECT_LINE(metrics->Exposition(), "peerpods_provider_up{provider=\"test\"} 0");
  test->SetFaults(nullptr);
  providers::InstanceSpec spec;
  spec.name = "podvm-c";
  spec.owner = {"node-1", "sandbox-c"};
  spec.pod_name = "c";
  ASSERT_TRUE(provider.CreateInstance(spec, Ctx()).has_value());  // answered: up again
  EXPECT_LINE(metrics->Exposition(), "peerpods_provider_up{provider=\"test\"} 1");
}

TEST(MeteredProviderTest, VerifySetsProviderUp) {
  auto metrics = std::make_shared<Metrics>("v");
  MeteredProvider provider(std::make_unique<pp::testing::TestProvider>(), "test", metrics);
  ASSERT_TRUE(provider.Verify(Ctx()).has_value());
  EXPECT_LINE(metrics->Exposition(), "peerpods_provider_up{provider=\"test\"} 1");

  // A stop request: CANCELLED says nothing about the provider, up stays as it was.
  std::stop_source stop;
  stop.request_stop();
  auto cancelled = provider.ListInstances(
      "n", OpContext{std::chrono::steady_clock::now() + std::chrono::seconds(5), stop.get_token()});
  ASSERT_FALSE(cancelled.has_value());
  EXPECT_EQ(cancelled.error().code, Code::kCancelled);
  const std::string text = metrics->Exposition();
  EXPECT_LINE(text, "peerpods_provider_errors_total{class=\"cancelled\",provider=\"test\"} 1");
  EXPECT_LINE(text, "peerpods_provider_up{provider=\"test\"} 1");
}

// A provider whose instances are always gone already.
class GoneProvider final : public providers::Provider {
 public:
  Result<providers::Instance> CreateInstance(const providers::InstanceSpec&,
                                             const OpContext&) override {
    return Fail(Code::kResourceExhausted, "gone: no capacity");
  }
  Result<void> DeleteInstance(const std::string& id, const OpContext&) override {
    return Fail(Code::kNotFound, "gone: instance ", id, " does not exist");
  }
  Result<void> DeleteLeftovers(const std::string&, const providers::Owner&,
                               const OpContext&) override {
    return Fail(Code::kNotFound, "gone: nothing");
  }
  Result<std::vector<providers::Instance>> ListInstances(const std::string&,
                                                         const OpContext&) override {
    return Fail(Code::kNotFound, "gone: no such network");
  }
  Result<void> Verify(const OpContext&) override {
    return Fail(Code::kPermissionDenied, "gone: denied");
  }
};

TEST(MeteredProviderTest, NotFoundOnDeleteIsACallNotAnError) {
  auto metrics = std::make_shared<Metrics>("v");
  MeteredProvider provider(std::make_unique<GoneProvider>(), "gone", metrics);
  auto deleted = provider.DeleteInstance("i-1", Ctx());
  ASSERT_FALSE(deleted.has_value());
  EXPECT_EQ(deleted.error().code, Code::kNotFound);  // the caller still sees what happened
  EXPECT_FALSE(provider.DeleteLeftovers("podvm-x", {"n", "s"}, Ctx()).has_value());
  EXPECT_FALSE(provider.ListInstances("n", Ctx()).has_value());  // NOT_FOUND elsewhere is an error
  EXPECT_FALSE(provider.CreateInstance({}, Ctx()).has_value());
  EXPECT_FALSE(provider.Verify(Ctx()).has_value());

  const std::string text = metrics->Exposition();
  EXPECT_LINE(text, "peerpods_provider_calls_total{operation=\"delete\",provider=\"gone\"} 2");
  EXPECT_LINE(text, "peerpods_provider_errors_total{class=\"not_found\",provider=\"gone\"} 1");
  EXPECT_LINE(text, "peerpods_provider_errors_total{class=\"capacity\",provider=\"gone\"} 1");
  EXPECT_LINE(text, "peerpods_provider_errors_total{class=\"misconfigured\",provider=\"gone\"} 1");
  EXPECT_LINE(text, "peerpods_provider_up{provider=\"gone\"} 0");
}

}  // namespace
}  // namespace pp::adaptor
