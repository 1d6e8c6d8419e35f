// The gcp provider against gce_fake.py: what it creates, batched polls, and every failure path
// leaving nothing behind in the fake.
#include "providers/gcp/gcp_provider.h"

#include <gtest/gtest.h>
#include <stdlib.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <filesystem>
#include <fstream>
#include <future>
#include <nlohmann/json.hpp>
#include <sstream>
#include <thread>

#include "tests/providers/gcp/gce_fixture.h"

namespace pp::providers::gcp {
namespace {

using namespace std::chrono_literals;
using Json = nlohmann::json;
using pp::testing::FakeCloudProcess;
using testing::SharedFake;

OpContext Budget(std::chrono::milliseconds d = 60s) {
  return OpContext{std::chrono::steady_clock::now() + d, {}};
}

InstanceSpec Spec(const std::string& name, Owner owner = {"node-a", "sandbox-a"}) {
  InstanceSpec s;
  s.name = name;
  s.owner = std::move(owner);
  s.user_data = "#cloud-config\nwrite_files: []\n";
  return s;
}

class GcpProviderTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(SharedFake().running());
    SharedFake().Reset();
    config_ = SharedFake().Config();
  }
  void TearDown() override {
    SharedFake().Reset();
    // Whatever a failed test left, so that the next ones start clean.
    if (auto p = MakeGcpProvider(SharedFake().Config()); p) {
      for (const auto& i : SharedFake().Instances("podvm-")) {
        (void)(*p)->DeleteInstance(
            i["zone"].get<std::string>() + "/" + i["name"].get<std::string>(), Budget());
      }
    }
  }
  std::unique_ptr<Provider> Make() {
    auto p = MakeGcpProvider(config_);
    EXPECT_TRUE(p.has_value()) << p.error().message;
    return p ? std::move(*p) : nullptr;
  }
  static bool Left(const std::string& name) {
    for (const auto& i : SharedFake().Instances(name)) {
      if (i["name"] == name) return true;
    }
    return false;
  }
  static Json FakeInstance(const std::string& name) {
    for (const auto& i : SharedFake().Instances(name)) {
      if (i["name"] == name) return i;
    }
    return Json::object();
  }

  GcpConfig config_;
};

TEST_F(GcpProviderTest, ACreatedInstanceRunsWithAnAddressAndADeleteRemovesIt) {
  auto p = Make();
  auto created = p->CreateInstance(Spec("podvm-basic-1"), Budget());
  ASSERT_TRUE(created.has_value()) << created.error().message;
  EXPECT_EQ(created->id, "us-central1-a/podvm-basic-1");
  ASSERT_EQ(created->ips.size(), 1u);
  EXPECT_TRUE(created->ips[0].starts_with("127."));
  const Json i = FakeInstance("podvm-basic-1");
  EXPECT_EQ(i["status"], "RUNNING");
  EXPECT_EQ(i["machine_type"], "n2d-standard-2");
  EXPECT_EQ(i["ip"], created->ips[0]);
  ASSERT_TRUE(p->DeleteInstance(created->id, Budget()).has_value());
  EXPECT_FALSE(Left("podvm-basic-1"));
  // CAA's id form (the bare name) is taken to be in the first zone; malformed ids are refused.
  EXPECT_TRUE(p->DeleteInstance("podvm-basic-1", Budget()).has_value());
  auto bad = p->DeleteInstance("us-central1-a/../x", Budget());
  ASSERT_FALSE(bad.has_value());
  EXPECT_EQ(bad.error().code, Code::kInvalidArgument);
}

TEST_F(GcpProviderTest, ManyCreatesShareOneListPerPollInsteadOfAGetEach) {
  auto p = Make();
  const int lists = SharedFake().Calls("instances.list");
  const int gets = SharedFake().Calls("instances.get");
  const int image_gets = SharedFake().Calls("images.get");
  constexpr int kCount = 8;
  std::vector<std::future<Result<Instance>>> creates;
  for (int n = 0; n < kCount; ++n) {
    creates.push_back(std::async(std::launch::async, [&, n] {
      return p->CreateInstance(Spec("podvm-many-" + std::to_string(n)), Budget());
    }));
  }
  std::vector<std::string> ids;
  for (auto& f : creates) {
    auto r = f.get();
    ASSERT_TRUE(r.has_value()) << r.error().message;
    ids.push_back(r->id);
  }
  // One poll loop per instance would have made at least kCount * 2 (--boot-polls) gets.
  EXPECT_EQ(SharedFake().Calls("instances.get") - gets, 0);
  EXPECT_LT(SharedFake().Calls("instances.list") - lists, kCount * 2);
  // The image's size is looked up once for all of them.
  EXPECT_EQ(SharedFake().Calls("images.get") - image_gets, 1);
  for (const auto& id : ids) EXPECT_TRUE(p->DeleteInstance(id, Budget()).has_value());
  EXPECT_TRUE(SharedFake().Instances("podvm-many-").empty());
}

TEST_F(GcpProviderTest, WithoutBatchingEveryInstancePollsOnItsOwn) {
  config_.batch_poll = false;
  auto p = Make();
  const int lists = SharedFake().Calls("instances.list");
  constexpr int kCount = 4;
  std::vector<std::future<Result<Instance>>> creates;
  for (int n = 0; n < kCount; ++n) {
    creates.push_back(std::async(std::launch::async, [&, n] {
      return p->CreateInstance(Spec("podvm-alone-" + std::to_string(n)), Budget());
    }));
  }
  std::vector<std::string> ids;
  for (auto& f : creates) {
    auto r = f.get();
    ASSERT_TRUE(r.has_value()) << r.error().message;
    ids.push_back(r->id);
  }
  // Each instance watched itself through --boot-polls (2) observations: the cloud bench's naive client.
  EXPECT_GE(SharedFake().Calls("instances.list") - lists, kCount * 2);
  for (const auto& id : ids) EXPECT_TRUE(p->DeleteInstance(id, Budget()).has_value());
  EXPECT_TRUE(SharedFake().Instances("podvm-alone-").empty());
}

TEST_F(GcpProviderTest, ThrottlingAndServerErrorsAreRetriedWithTheSameRequestId) {
  auto p = Make();
  SharedFake().SetFaults(Json::array({
      {{"action", "instances.insert"},
       {"count", 1},
       {"status", 429},
       {"headers", {{"Retry-After", "0"}}},
       {"body", R"({"error":{"code":429,"errors":[{"reason":"rateLimitExceeded"}]}})"}},
      {{"action", "instances.insert"}, {"count", 1}, {"status", 503}, {"body", "busy"}},
      {{"action", "zoneOperations.wait"}, {"count", 1}, {"status", 500}, {"body", "{}"}},
      {{"action", "instances.list"}, {"count", 1}, {"status", 503}, {"body", "{}"}},
  }));
  const int inserts = SharedFake().Calls("instances.insert");
  auto created = p->CreateInstance(Spec("podvm-retry-1"), Budget());
  ASSERT_TRUE(created.has_value()) << created.error().message;
  EXPECT_EQ(SharedFake().Calls("instances.insert") - inserts, 3);
  EXPECT_EQ(SharedFake().Instances("podvm-retry-1").size(), 1u);
  ASSERT_TRUE(p->DeleteInstance(created->id, Budget()).has_value());
}

// A fake of its own that throttles every action past 4 calls a second (429 rateLimitExceeded,
// Retry-After: 1), as a busy project's API does: concurrent creates still all succeed.
TEST(GcpThrottledTest, AThrottlingApiSlowsCreatesDownWithoutFailingThem) {
  testing::GceFake fake({"--rate-limit", "4"});
  ASSERT_TRUE(fake.running());
  GcpConfig config = fake.Config();
  config.retry.max_attempts = 10;
  auto p = MakeGcpProvider(config);
  ASSERT_TRUE(p.has_value()) << p.error().message;
  std::vector<std::future<Result<Instance>>> creates;
  for (int n = 0; n < 4; ++n) {
    creates.push_back(std::async(std::launch::async, [&, n] {
      return (*p)->CreateInstance(Spec("podvm-throttled-" + std::to_string(n)), Budget(120s));
    }));
  }
  for (auto& f : creates) {
    auto r = f.get();
    ASSERT_TRUE(r.has_value()) << r.error().message;
    EXPECT_TRUE((*p)->DeleteInstance(r->id, Budget(120s)).has_value());
  }
  EXPECT_GT(fake.Stats()["throttled"].get<int>(), 0);
  EXPECT_TRUE(fake.Instances("podvm-").empty());
}

// The fake's instance runner hook (what the end-to-end test runs the pod VM's processes with) gets
// the instance's address and the user-data the provider sent, and hears of the delete.
TEST(GcpRunnerTest, TheFakesRunnerStartsAndStopsEachInstanceWithItsUserData) {
  const std::string dir =
      std::filesystem::temp_directory_path() / ("pp-gce-runner-" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  const std::string script = dir + "/runner.sh";
  std::ofstream(script) << "#!/bin/sh\nset -e\nif [ \"$1\" = start ]; then cp \"$3\" " << dir
                        << "/user-data; fi\necho \"$1 $2\" >> " << dir << "/log\n";
  std::filesystem::permissions(script, std::filesystem::perms::owner_all);
  {
    testing::GceFake fake({"--runner", script});
    ASSERT_TRUE(fake.running());
    auto p = MakeGcpProvider(fake.Config());
    ASSERT_TRUE(p.has_value()) << p.error().message;
    const InstanceSpec spec = Spec("podvm-runner-1");
    auto created = (*p)->CreateInstance(spec, Budget());
    ASSERT_TRUE(created.has_value()) << created.error().message;
    ASSERT_TRUE((*p)->DeleteInstance(created->id, Budget()).has_value());
    std::ifstream log(dir + "/log");
    std::stringstream lines;
    lines << log.rdbuf();
    EXPECT_EQ(lines.str(), "start " + created->ips[0] + "\nstop " + created->ips[0] + "\n");
    std::ifstream user_data(dir + "/user-data");
    std::stringstream text;
    text << user_data.rdbuf();
    EXPECT_EQ(text.str(), spec.user_data);
  }
  std::filesystem::remove_all(dir);
}

// The fake making its own key (--write-key), as an end-to-end test starts it: the key file is all
// the provider needs for credentials (GCP_CREDENTIALS as a path).
TEST(GcpWrittenKeyTest, AFakeThatWritesItsOwnKeyServesAProviderGivenThatFile) {
  const std::string key = SharedFake().dir() + "/written-key.json";
  std::filesystem::remove(key);
  pp::testing::FakeCloudProcess keyed("gce_fake.py", {"--write-key", key});
  ASSERT_TRUE(keyed.running());
  ASSERT_TRUE(FakeCloudProcess::WaitFor([&] { return std::filesystem::exists(key); }, 30s));
  GcpConfig config = SharedFake().Config();
  config.credentials = key;
  config.compute_endpoint = keyed.url() + "/compute/v1";
  config.ca_bundle = keyed.ca_bundle();
  auto p = MakeGcpProvider(config);
  ASSERT_TRUE(p.has_value()) << p.error().message;
  auto created = (*p)->CreateInstance(Spec("podvm-keyed-1"), Budget());
  ASSERT_TRUE(created.has_value()) << created.error().message;
  EXPECT_TRUE((*p)->DeleteInstance(created->id, Budget()).has_value());
}

TEST_F(GcpProviderTest, PersistentServerErrorsFailAndLeaveNothing) {
  auto p = Make();
  SharedFake().SetFaults(Json::array(
      {{{"action", "instances.insert"}, {"count", 100}, {"status", 503}, {"body", "{}"}}}));
  auto created = p->CreateInstance(Spec("podvm-5xx-1"), Budget());
  ASSERT_FALSE(created.has_value());
  EXPECT_EQ(created.error().code, Code::kUnavailable) << created.error().message;
  SharedFake().SetFaults(Json::array());
  EXPECT_FALSE(Left("podvm-5xx-1"));
}

TEST_F(GcpProviderTest, ATimeoutWhileTheInsertIsPendingDeletesTheInstance) {
  auto p = Make();
  SharedFake().SetFaults(
      Json::array({{{"action", "zoneOperations.wait"}, {"count", 1}, {"delay_ms", 3000}}}));
  auto created = p->CreateInstance(Spec("podvm-timeout-1"), Budget(1000ms));
  ASSERT_FALSE(created.has_value());
  EXPECT_EQ(created.error().code, Code::kDeadlineExceeded) << created.error().message;
  EXPECT_FALSE(Left("podvm-timeout-1"));
}

// The insert call itself cut by the deadline while the API still works on it: the provider sends
// it again with the same requestId to learn its operation, and deletes the instance.
TEST_F(GcpProviderTest, AnInsertCutShortByTheDeadlineIsResolvedAndDeleted) {
  auto p = Make();
  SharedFake().SetFaults(
      Json::array({{{"action", "instances.insert"}, {"count", 1}, {"delay_ms", 1500}}}));
  const int inserts = SharedFake().Calls("instances.insert");
  auto created = p->CreateInstance(Spec("podvm-late-1"), Budget(700ms));
  ASSERT_FALSE(created.has_value());
  EXPECT_EQ(created.error().code, Code::kDeadlineExceeded) << created.error().message;
  EXPECT_EQ(SharedFake().Calls("instances.insert") - inserts, 2);  // the cut one and its replay
  EXPECT_FALSE(Left("podvm-late-1"));
  // The first request, answered late, finds its requestId known and makes nothing more.
}

TEST_F(GcpProviderTest, MalformedAnswersFailTheCreateAndLeaveNothing) {
  auto p = Make();
  SharedFake().SetFaults(Json::array(
      {{{"action", "zoneOperations.wait"}, {"count", 1}, {"status", 200}, {"body", "{not json"}}}));
  auto created = p->CreateInstance(Spec("podvm-malformed-1"), Budget());
  ASSERT_FALSE(created.has_value());
  EXPECT_NE(created.error().message.find("not JSON"), std::string::npos) << created.error().message;
  EXPECT_FALSE(Left("podvm-malformed-1"));

  // A malformed poll answer is only a failed poll: the next one succeeds.
  SharedFake().SetFaults(Json::array(
      {{{"action", "instances.list"}, {"count", 1}, {"status", 200}, {"body", "[1,2"}}}));
  auto second = p->CreateInstance(Spec("podvm-malformed-2"), Budget());
  ASSERT_TRUE(second.has_value()) << second.error().message;
  ASSERT_TRUE(p->DeleteInstance(second->id, Budget()).has_value());
}

TEST_F(GcpProviderTest, AnOversizedAnswerFailsTheCreateAndLeavesNothing) {
  config_.max_response_bytes = 64 * 1024;
  auto p = Make();
  const std::string big =
      R"({"name":"operation-x","status":"RUNNING","pad":")" + std::string(100 * 1024, 'x') + "\"}";
  SharedFake().SetFaults(Json::array(
      {{{"action", "zoneOperations.wait"}, {"count", 1}, {"status", 200}, {"body", big}}}));
  auto created = p->CreateInstance(Spec("podvm-oversized-1"), Budget());
  ASSERT_FALSE(created.has_value());
  EXPECT_NE(created.error().message.find("larger than"), std::string::npos)
      << created.error().message;
  EXPECT_FALSE(Left("podvm-oversized-1"));
}

TEST_F(GcpProviderTest, AnExhaustedTypeFallsBackToTheNextType) {
  config_.machine_types = {"n2d-standard-2", "n2d-standard-4"};
  auto p = Make();
  SharedFake().Configure({{"exhausted", {"us-central1-a/n2d-standard-2"}}});
  InstanceSpec spec = Spec("podvm-fallback-type");
  spec.vcpus = 2;
  spec.memory_mib = 4096;
  auto created = p->CreateInstance(spec, Budget());
  ASSERT_TRUE(created.has_value()) << created.error().message;
  EXPECT_EQ(FakeInstance("podvm-fallback-type")["machine_type"], "n2d-standard-4");
  ASSERT_TRUE(p->DeleteInstance(created->id, Budget()).has_value());
}

TEST_F(GcpProviderTest, AnExhaustedZoneFallsBackToTheNextZoneBeforeALargerType) {
  config_.zones = {"us-central1-a", "us-central1-b"};
  config_.machine_types = {"n2d-standard-2", "n2d-standard-4"};
  auto p = Make();
  SharedFake().Configure({{"exhausted", {"us-central1-a/n2d-standard-2"}}});
  InstanceSpec spec = Spec("podvm-fallback-zone");
  spec.vcpus = 2;
  spec.memory_mib = 4096;
  auto created = p->CreateInstance(spec, Budget());
  ASSERT_TRUE(created.has_value()) << created.error().message;
  EXPECT_EQ(created->id, "us-central1-b/podvm-fallback-zone");
  EXPECT_EQ(FakeInstance("podvm-fallback-zone")["machine_type"], "n2d-standard-2");
  ASSERT_TRUE(p->DeleteInstance(created->id, Budget()).has_value());
}

TEST_F(GcpProviderTest, WhenEveryTypeAndZoneIsExhaustedTheErrorSaysWhatWasTried) {
  config_.zones = {"us-central1-a", "us-central1-b"};
  config_.machine_types = {"n2d-standard-2", "n2d-standard-4"};
  auto p = Make();
  SharedFake().Configure({{"exhausted",
                           {"us-central1-a/n2d-standard-2", "us-central1-a/n2d-standard-4",
                            "us-central1-b/n2d-standard-2", "us-central1-b/n2d-standard-4"}}});
  InstanceSpec spec = Spec("podvm-exhausted");
  spec.vcpus = 2;
  spec.memory_mib = 4096;
  auto created = p->CreateInstance(spec, Budget());
  ASSERT_FALSE(created.has_value());
  EXPECT_EQ(created.error().code, Code::kResourceExhausted);
  for (const char* tried : {"us-central1-a/n2d-standard-2 (ZONE_RESOURCE_POOL_EXHAUSTED)",
                            "us-central1-b/n2d-standard-2 (ZONE_RESOURCE_POOL_EXHAUSTED)",
                            "us-central1-a/n2d-standard-4 (ZONE_RESOURCE_POOL_EXHAUSTED)",
                            "us-central1-b/n2d-standard-4 (ZONE_RESOURCE_POOL_EXHAUSTED)"}) {
    EXPECT_NE(created.error().message.find(tried), std::string::npos) << created.error().message;
  }
  EXPECT_FALSE(Left("podvm-exhausted"));
}

TEST_F(GcpProviderTest, AnExpiredTokenIsReplacedWithoutFailingTheCall) {
  auto p = Make();
  const int tokens = SharedFake().Calls("token");
  auto created = p->CreateInstance(Spec("podvm-token-1"), Budget());
  ASSERT_TRUE(created.has_value()) << created.error().message;
  SharedFake().RevokeTokens();
  ASSERT_TRUE(p->DeleteInstance(created->id, Budget()).has_value());
  EXPECT_EQ(SharedFake().Calls("token") - tokens, 2);
  EXPECT_FALSE(Left("podvm-token-1"));
}

TEST_F(GcpProviderTest, AnInstanceThatNeverRunsIsDeleted) {
  auto p = Make();
  SharedFake().Configure({{"stuck", "^podvm-stuck-"}});
  auto created = p->CreateInstance(Spec("podvm-stuck-1"), Budget(1500ms));
  ASSERT_FALSE(created.has_value());
  EXPECT_EQ(created.error().code, Code::kDeadlineExceeded);
  EXPECT_NE(created.error().message.find("did not reach RUNNING"), std::string::npos)
      << created.error().message;
  EXPECT_FALSE(Left("podvm-stuck-1"));
}

TEST_F(GcpProviderTest, AStopWhileTheInsertIsPendingCancelsAndDeletes) {
  auto p = Make();
  SharedFake().SetFaults(
      Json::array({{{"action", "zoneOperations.wait"}, {"count", 1}, {"delay_ms", 2000}}}));
  std::stop_source stop;
  auto create = std::async(std::launch::async, [&] {
    return p->CreateInstance(Spec("podvm-stop-1"),
                             OpContext{std::chrono::steady_clock::now() + 60s, stop.get_token()});
  });
  ASSERT_TRUE(FakeCloudProcess::WaitFor([] { return Left("podvm-stop-1"); }, 30s));
  stop.request_stop();
  auto created = create.get();
  ASSERT_FALSE(created.has_value());
  EXPECT_EQ(created.error().code, Code::kCancelled) << created.error().message;
  EXPECT_FALSE(Left("podvm-stop-1"));
}

TEST_F(GcpProviderTest, ADeleteWhileTheInsertIsPendingWinsAndTheCreateFailsCleanly) {
  auto p = Make();
  SharedFake().SetFaults(
      Json::array({{{"action", "zoneOperations.wait"}, {"count", 1}, {"delay_ms", 1500}}}));
  auto create = std::async(std::launch::async,
                           [&] { return p->CreateInstance(Spec("podvm-race-1"), Budget()); });
  ASSERT_TRUE(FakeCloudProcess::WaitFor([] { return Left("podvm-race-1"); }, 30s));
  auto deleted = p->DeleteInstance("us-central1-a/podvm-race-1", Budget());
  EXPECT_TRUE(deleted.has_value()) << deleted.error().message;
  auto created = create.get();
  ASSERT_FALSE(created.has_value());
  EXPECT_EQ(created.error().code, Code::kUnavailable) << created.error().message;
  EXPECT_FALSE(Left("podvm-race-1"));
}

TEST_F(GcpProviderTest, ABodyTheApiRefusesIsInvalidAndLeavesNothing) {
  config_.machine_type = "e2-medium";  // SEV_SNP needs N2D: the API refuses the body
  auto p = Make();
  auto created = p->CreateInstance(Spec("podvm-refused-1"), Budget());
  ASSERT_FALSE(created.has_value());
  EXPECT_EQ(created.error().code, Code::kInvalidArgument) << created.error().message;
  EXPECT_NE(created.error().message.find("not supported for machine type e2-medium"),
            std::string::npos);
  EXPECT_FALSE(Left("podvm-refused-1"));
}

TEST_F(GcpProviderTest, UserDataTooLargeForMetadataIsRefusedBeforeAnyInsert) {
  auto p = Make();
  const int inserts = SharedFake().Calls("instances.insert");
  InstanceSpec spec = Spec("podvm-bigdata-1");
  spec.user_data.assign(200 * 1024, 'x');  // 267 KB of base64
  auto created = p->CreateInstance(spec, Budget());
  ASSERT_FALSE(created.has_value());
  EXPECT_EQ(created.error().code, Code::kInvalidArgument);
  EXPECT_EQ(created.error().message.find("xxxx"),
            std::string::npos);  // user-data never in a message
  EXPECT_EQ(SharedFake().Calls("instances.insert") - inserts, 0);
}

TEST_F(GcpProviderTest, AGpuPodGetsAConfidentialH100TypeThatCannotMigrate) {
  config_.confidential_type = "TDX";
  config_.machine_type = "c3-standard-4";
  config_.machine_types = {"c3-standard-4", "a3-highgpu-1g"};
  auto p = Make();
  InstanceSpec spec = Spec("podvm-gpu-1");
  spec.gpus = 1;
  auto created = p->CreateInstance(spec, Budget());
  ASSERT_TRUE(created.has_value())
      << created.error().message;  // the fake demands TERMINATE for GPUs
  EXPECT_EQ(FakeInstance("podvm-gpu-1")["machine_type"], "a3-highgpu-1g");
  ASSERT_TRUE(p->DeleteInstance(created->id, Budget()).has_value());
}

TEST_F(GcpProviderTest, ATypeOutsideTheTableIsLookedUpOnce) {
  config_.disable_cvm = true;
  config_.machine_type = "e2-medium";
  config_.machine_types = {"e2-medium", "custom-fake-6"};
  auto p = Make();
  const int gets = SharedFake().Calls("machineTypes.get");
  auto verified = p->Verify(Budget());
  ASSERT_TRUE(verified.has_value()) << verified.error().message;
  InstanceSpec spec = Spec("podvm-custom-1");
  spec.vcpus = 5;
  spec.memory_mib = 8192;
  auto created = p->CreateInstance(spec, Budget());
  ASSERT_TRUE(created.has_value()) << created.error().message;
  EXPECT_EQ(FakeInstance("podvm-custom-1")["machine_type"], "custom-fake-6");
  EXPECT_EQ(SharedFake().Calls("machineTypes.get") - gets, 1);
  ASSERT_TRUE(p->DeleteInstance(created->id, Budget()).has_value());
}

TEST_F(GcpProviderTest, VerifyNamesAWrongProjectImageOrType) {
  ASSERT_TRUE(Make()->Verify(Budget()).has_value());
  config_.project_id = "other-project";
  auto project = Make()->Verify(Budget());
  ASSERT_FALSE(project.has_value());
  EXPECT_EQ(project.error().code, Code::kFailedPrecondition);
  EXPECT_NE(project.error().message.find("GCP_PROJECT_ID"), std::string::npos);
  config_ = SharedFake().Config();
  config_.image_name = "no-such-image";
  auto image = Make()->Verify(Budget());
  ASSERT_FALSE(image.has_value());
  EXPECT_EQ(image.error().code, Code::kFailedPrecondition);
  EXPECT_NE(image.error().message.find("PODVM_IMAGE_NAME"), std::string::npos);
  config_ = SharedFake().Config();
  config_.machine_types = {"no-such-type-2"};
  auto type = Make()->Verify(Budget());
  ASSERT_FALSE(type.has_value());
  EXPECT_EQ(type.error().code, Code::kFailedPrecondition);
}

TEST_F(GcpProviderTest, ListInstancesFollowsPagesAndReportsExactOwners) {
  auto p = Make();
  const Owner a1{"Node.A", "sandbox-1"}, a2{"Node.A", "sandbox-2"}, b{"node-b", "sandbox-3"};
  std::vector<std::string> ids;
  for (const auto& [name, owner] : std::vector<std::pair<std::string, Owner>>{
           {"podvm-list-1", a1}, {"podvm-list-2", a2}, {"podvm-list-3", b}}) {
    auto created = p->CreateInstance(Spec(name, owner), Budget());
    ASSERT_TRUE(created.has_value()) << created.error().message;
    ids.push_back(created->id);
  }
  SharedFake().Configure({{"page_size", 1}});
  const int lists = SharedFake().Calls("instances.list");
  auto mine = p->ListInstances("Node.A", Budget());
  ASSERT_TRUE(mine.has_value()) << mine.error().message;
  ASSERT_EQ(mine->size(), 2u);
  EXPECT_EQ((*mine)[0].owner, a1);
  EXPECT_EQ((*mine)[1].owner, a2);
  EXPECT_EQ((*mine)[0].id, ids[0]);
  EXPECT_EQ(SharedFake().Calls("instances.list") - lists, 2);  // two pages of one
  // A node whose label value is the same once sanitised is still another node.
  auto lookalike = p->ListInstances("node-a", Budget());
  ASSERT_TRUE(lookalike.has_value());
  EXPECT_TRUE(lookalike->empty());
  for (const auto& id : ids) ASSERT_TRUE(p->DeleteInstance(id, Budget()).has_value());
}

TEST_F(GcpProviderTest, DeleteLeftoversRemovesOnlyItsOwnersInstance) {
  auto p = Make();
  const Owner mine{"node-a", "sandbox-a"}, theirs{"node-b", "sandbox-a"};
  auto created = p->CreateInstance(Spec("podvm-leftover-1", mine), Budget());
  ASSERT_TRUE(created.has_value()) << created.error().message;
  ASSERT_TRUE(p->DeleteLeftovers("podvm-leftover-1", theirs, Budget()).has_value());
  EXPECT_TRUE(Left("podvm-leftover-1"));
  ASSERT_TRUE(p->DeleteLeftovers("podvm-leftover-1", mine, Budget()).has_value());
  EXPECT_FALSE(Left("podvm-leftover-1"));
  EXPECT_TRUE(p->DeleteLeftovers("Not A Name", mine, Budget()).has_value());
}

TEST_F(GcpProviderTest, AnotherOwnersInstanceOfTheSameNameIsNeverTouched) {
  auto p = Make();
  auto theirs = p->CreateInstance(Spec("podvm-taken-1", {"node-b", "s"}), Budget());
  ASSERT_TRUE(theirs.has_value()) << theirs.error().message;
  auto mine = p->CreateInstance(Spec("podvm-taken-1", {"node-a", "s"}), Budget());
  ASSERT_FALSE(mine.has_value());
  EXPECT_EQ(mine.error().code, Code::kAlreadyExists) << mine.error().message;
  EXPECT_TRUE(Left("podvm-taken-1"));
  ASSERT_TRUE(p->DeleteInstance(theirs->id, Budget()).has_value());
}

// The factory: CAA's flag names with their environment fallbacks, and what it refuses.
class FactoryTest : public ::testing::Test {
 protected:
  Result<std::unique_ptr<Provider>> Parse(std::vector<std::string> args) {
    auto factory = MakeGcpFactory();
    CLI::App app;
    factory->AddFlags(app);
    args.insert(args.begin(), "gcp");
    std::vector<const char*> argv;
    for (auto& a : args) argv.push_back(a.c_str());
    try {
      app.parse(static_cast<int>(argv.size()), argv.data());
    } catch (const CLI::ParseError& e) {
      return Fail(Code::kInvalidArgument, e.what());
    }
    return factory->Create();
  }
  void SetUp() override {
    key_path_ = SharedFake().dir() + "/factory-key.json";
    std::ofstream(key_path_) << SharedFake().key_json();
  }
  std::string key_path_;
};

TEST_F(FactoryTest, CaaFlagsAndVariablesMakeAProvider) {
  ::setenv("GCP_CREDENTIALS", key_path_.c_str(), 1);
  ::setenv("GCP_NETWORK", "default", 1);
  auto p =
      Parse({"--zone", "us-central1-a,us-central1-b", "--confidential-type", "TDX",
             "--machine-type", "c3-standard-4", "--machine-types", "c3-standard-4,c3-standard-8",
             "--tags", "team=ai,env=test", "--compute-endpoint", SharedFake().url() + "/compute/v1",
             "--gcp-ca-bundle", SharedFake().ca_bundle(), "--gcp-poll-interval", "100ms"});
  ::unsetenv("GCP_CREDENTIALS");
  ::unsetenv("GCP_NETWORK");
  ASSERT_TRUE(p.has_value()) << p.error().message;  // the project came from the key
  EXPECT_TRUE((*p)->Verify(Budget()).has_value());
}

TEST_F(FactoryTest, RefusalsNameTheFlagAndVariable) {
  const auto refused = [&](std::vector<std::string> args, const std::string& needle) {
    // Go's flag package keeps a repeated flag's last value; this parse takes the first, so the
    // defaults go after the flags under test.
    std::vector<std::string> all = args;
    for (const auto& [flag, value] :
         std::vector<std::pair<std::string, std::string>>{{"--gcp-credentials", key_path_},
                                                          {"--network", "default"},
                                                          {"--zone", "us-central1-a"},
                                                          {"--confidential-type", "SEV_SNP"}}) {
      if (std::find(args.begin(), args.end(), flag) == args.end()) {
        all.push_back(flag);
        all.push_back(value);
      }
    }
    auto p = Parse(all);
    ASSERT_FALSE(p.has_value()) << needle;
    EXPECT_NE(p.error().message.find(needle), std::string::npos) << p.error().message;
  };
  refused({"--zone", "nowhere"}, "GCP_ZONE");
  refused({"--confidential-type", "SGX"}, "GCP_CONFIDENTIAL_TYPE");
  refused({"--tags", "Bad Key=x"}, "TAGS");
  refused({"--tags", "peerpods-node=x"}, "TAGS");
  refused({"--network", ""}, "GCP_NETWORK");
  refused({"--gcp-poll-interval", "soon"}, "GCP_POLL_INTERVAL");
  refused({"--gcp-credentials", R"({"type": "authorized_user"})"}, "authorized_user");
  auto plain = Parse({"--gcp-credentials", key_path_, "--network", "default", "--zone",
                      "us-central1-a", "--disable-cvm", "true"});
  EXPECT_TRUE(plain.has_value()) << plain.error().message;
}

}  // namespace
}  // namespace pp::providers::gcp
