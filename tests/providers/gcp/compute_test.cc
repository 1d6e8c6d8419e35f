// The Compute client: error classification, the parsers, operations polled to DONE, requestId,
// and a refused token refreshed once.
#include "providers/gcp/compute.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "providers/gcp/body.h"
#include "tests/providers/gcp/gce_fixture.h"

namespace pp::providers::gcp {
namespace {

using namespace std::chrono_literals;
using Json = nlohmann::json;
using testing::SharedFake;

OpContext Budget(std::chrono::seconds s = 30s) {
  return OpContext{std::chrono::steady_clock::now() + s, {}};
}

http::Response Answer(long status, const std::string& body, http::Headers headers = {}) {
  http::Response r;
  r.status = status;
  r.body = body;
  r.headers = std::move(headers);
  return r;
}

std::string GoogleError(long code, const std::string& reason, const std::string& status = "") {
  return Json{
      {"error",
       {{"code", code},
        {"message", "because " + reason},
        {"status", status},
        {"errors", Json::array({{{"domain", "global"}, {"reason", reason}, {"message", "m"}}})}}}}
      .dump();
}

Code Classified(long status, const std::string& body) {
  auto r = ClassifyResponse(Answer(status, body), "test");
  return r ? Code::kOk : r.error().code;
}

TEST(ClassifyTest, GoogleErrorsMapToTheProviderTaxonomy) {
  EXPECT_EQ(Classified(200, "{}"), Code::kOk);
  EXPECT_EQ(Classified(429, GoogleError(429, "rateLimitExceeded", "RESOURCE_EXHAUSTED")),
            Code::kAborted);
  EXPECT_EQ(Classified(429, "not json"), Code::kAborted);
  EXPECT_EQ(Classified(403, GoogleError(403, "rateLimitExceeded")), Code::kAborted);
  EXPECT_EQ(Classified(403, GoogleError(403, "userRateLimitExceeded")), Code::kAborted);
  EXPECT_EQ(Classified(500, GoogleError(500, "backendError")), Code::kUnavailable);
  EXPECT_EQ(Classified(503, "<html>busy</html>"), Code::kUnavailable);
  EXPECT_EQ(Classified(404, GoogleError(404, "notFound")), Code::kNotFound);
  EXPECT_EQ(Classified(403, GoogleError(403, "quotaExceeded")), Code::kResourceExhausted);
  EXPECT_EQ(Classified(403, GoogleError(403, "QUOTA_EXCEEDED")), Code::kResourceExhausted);
  EXPECT_EQ(Classified(503, GoogleError(503, "ZONE_RESOURCE_POOL_EXHAUSTED")),
            Code::kResourceExhausted);
  EXPECT_EQ(Classified(403, GoogleError(403, "forbidden")), Code::kFailedPrecondition);
  EXPECT_EQ(Classified(401, GoogleError(401, "authError")), Code::kUnauthenticated);
  EXPECT_EQ(Classified(409, GoogleError(409, "alreadyExists")), Code::kAlreadyExists);
  EXPECT_EQ(Classified(400, GoogleError(400, "invalid")), Code::kInvalidArgument);
  EXPECT_EQ(Classified(400, GoogleError(400, "resourceNotReady")), Code::kUnavailable);
}

TEST(ClassifyTest, TheMessageNamesTheCallTheReasonAndABoundedMessage) {
  const std::string huge(5000, 'x');
  const std::string body = Json{{"error",
                                 {{"code", 403},
                                  {"message", huge},
                                  {"errors", Json::array({{{"reason", "forbidden"}}})}}}}
                               .dump();
  auto r = ClassifyResponse(Answer(403, body), "gcp: instances.insert of podvm-a");
  ASSERT_FALSE(r.has_value());
  EXPECT_TRUE(
      r.error().message.starts_with("gcp: instances.insert of podvm-a: HTTP 403 forbidden: xxx"));
  EXPECT_LT(r.error().message.size(), 500u);
}

TEST(OperationTest, ADoneOperationsErrorsKeepTheirCodes) {
  const auto op = [](const std::string& code, long http = 0) {
    Json j = {{"name", "operation-1"},
              {"status", "DONE"},
              {"zone", "https://compute.googleapis.com/compute/v1/projects/p/zones/us-central1-a"},
              {"error", {{"errors", Json::array({{{"code", code}, {"message", "m"}}})}}}};
    if (http) j["httpErrorStatusCode"] = http;
    auto parsed = ParseOperation(j.dump());
    EXPECT_TRUE(parsed.has_value());
    EXPECT_EQ(parsed->zone, "us-central1-a");
    auto failed = OperationError(*parsed, "insert");
    return failed ? Code::kOk : failed.error().code;
  };
  EXPECT_EQ(op("ZONE_RESOURCE_POOL_EXHAUSTED", 503), Code::kResourceExhausted);
  EXPECT_EQ(op("ZONE_RESOURCE_POOL_EXHAUSTED_WITH_DETAILS"), Code::kResourceExhausted);
  EXPECT_EQ(op("QUOTA_EXCEEDED", 403), Code::kResourceExhausted);
  EXPECT_EQ(op("RESOURCE_NOT_FOUND", 404), Code::kNotFound);
  EXPECT_EQ(op("PERMISSIONS_ERROR", 403), Code::kFailedPrecondition);
  EXPECT_EQ(op("INTERNAL_ERROR", 500), Code::kUnavailable);
  EXPECT_EQ(op("INVALID_FIELD_VALUE", 400), Code::kInvalidArgument);

  auto ok = ParseOperation(R"({"name":"operation-2","status":"DONE","zone":"zones/us-east1-b"})");
  ASSERT_TRUE(ok.has_value());
  EXPECT_TRUE(ok->Done());
  EXPECT_TRUE(OperationError(*ok, "x").has_value());
}

TEST(OperationTest, MalformedOperationsAreRefused) {
  EXPECT_FALSE(ParseOperation("").has_value());
  EXPECT_FALSE(ParseOperation("[]").has_value());
  EXPECT_FALSE(ParseOperation(R"({"name":"op"})").has_value());
  EXPECT_FALSE(ParseOperation(R"({"name":"op","status":"SLEEPING"})").has_value());
  // A name that would walk the next request's path elsewhere.
  EXPECT_FALSE(
      ParseOperation(R"({"name":"../../x","status":"RUNNING","zone":"zones/a-b1-c"})").has_value());
  EXPECT_FALSE(
      ParseOperation(R"({"name":"op","status":"RUNNING","zone":"zones/a?b"})").has_value());
  auto no_details = ParseOperation(R"({"name":"op","status":"DONE","error":{}})");
  ASSERT_TRUE(no_details.has_value());
  EXPECT_FALSE(OperationError(*no_details, "x").has_value());
}

TEST(InstanceParseTest, ReadsStateAddressesOwnerAndNeverKeepsUserData) {
  const Json j = {
      {"name", "podvm-a"},
      {"id", "123456789012345678"},
      {"status", "RUNNING"},
      {"zone", "https://compute.googleapis.com/compute/v1/projects/p/zones/us-central1-a"},
      {"machineType",
       "https://compute.googleapis.com/compute/v1/projects/p/zones/us-central1-a/machineTypes/"
       "n2d-standard-2"},
      {"networkInterfaces",
       Json::array({{{"networkIP", "10.0.0.5"},
                     {"accessConfigs", Json::array({{{"natIP", "34.1.2.3"}}})}}})},
      {"labels", {{"peerpods-node", "node-1"}}},
      {"metadata",
       {{"items", Json::array({{{"key", "user-data"}, {"value", "c2VjcmV0"}},
                               {{"key", "peerpods-node"}, {"value", "Node.1"}}})}}}};
  auto i = ParseInstance(j.dump());
  ASSERT_TRUE(i.has_value()) << i.error().message;
  EXPECT_EQ(i->zone, "us-central1-a");
  EXPECT_EQ(i->machine_type, "n2d-standard-2");
  EXPECT_EQ(i->network_ip, "10.0.0.5");
  EXPECT_EQ(i->nat_ip, "34.1.2.3");
  EXPECT_EQ(i->labels.at("peerpods-node"), "node-1");
  EXPECT_EQ(i->metadata.at("peerpods-node"), "Node.1");
  EXPECT_FALSE(i->metadata.contains("user-data"));

  auto list =
      ParseInstanceList(Json{{"items", Json::array({j, j})}, {"nextPageToken", "abc"}}.dump());
  ASSERT_TRUE(list.has_value());
  EXPECT_EQ(list->items.size(), 2u);
  EXPECT_EQ(list->next_page_token, "abc");
  auto empty = ParseInstanceList(R"({"kind":"compute#instanceList"})");
  ASSERT_TRUE(empty.has_value());
  EXPECT_TRUE(empty->items.empty());
  EXPECT_FALSE(ParseInstanceList(R"({"items": {"a": 1}})").has_value());
  EXPECT_FALSE(ParseInstanceList(R"({"items": [{"status": "RUNNING"}]})").has_value());
  EXPECT_FALSE(ParseInstance("{").has_value());
}

TEST(MachineTypeParseTest, ReadsCpusMemoryAndAccelerators) {
  auto m = ParseMachineType(
      R"({"name":"a3-highgpu-1g","guestCpus":26,"memoryMb":239616,
          "accelerators":[{"guestAcceleratorType":"nvidia-h100-80gb","guestAcceleratorCount":1}]})");
  ASSERT_TRUE(m.has_value());
  EXPECT_EQ(m->vcpus, 26u);
  EXPECT_EQ(m->memory_mib, 239616u);
  EXPECT_EQ(m->gpus, 1u);
  EXPECT_EQ(m->gpu_model, "H100");
  EXPECT_FALSE(ParseMachineType(R"({"name":"x","guestCpus":0,"memoryMb":1})").has_value());
  EXPECT_EQ(*ParseImageDiskSizeGb(R"({"diskSizeGb":"20"})"), 20u);
  EXPECT_FALSE(ParseImageDiskSizeGb(R"({"diskSizeGb":"-1"})").has_value());
}

class ComputeClientTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(SharedFake().running());
    SharedFake().Reset();
    http::ClientOptions options;
    options.ca_bundle = SharedFake().ca_bundle();
    client_ = std::make_unique<http::Client>(options);
    auto key = ParseServiceAccountKey(SharedFake().key_json());
    ASSERT_TRUE(key.has_value());
    tokens_ = MakeServiceAccountTokenSource(*key, *client_, {});
    ComputeOptions o;
    o.endpoint = SharedFake().url() + "/compute/v1";
    o.project = testing::kProject;
    o.op_poll_initial = 10ms;
    o.op_poll_max = 50ms;
    o.retry.initial = 10ms;
    compute_ = std::make_unique<ComputeClient>(*client_, *tokens_, o);
  }

  std::string Body(const std::string& name) {
    InstanceBodyParams p;
    p.project = testing::kProject;
    p.zone = "us-central1-a";
    p.name = name;
    p.machine_type = "e2-medium";
    p.source_image = ResolveImage(testing::kProject, "podvm-image");
    p.network = "global/networks/default";
    p.owner = {"compute-test", "sandbox"};
    return BuildInstanceBody(p);
  }

  Result<Operation> Insert(const std::string& name, const std::string& request_id) {
    auto r = compute_->Call(
        "POST", compute_->ProjectPath("/zones/us-central1-a/instances?requestId=" + request_id),
        Body(name), "insert", Budget());
    if (!r) return std::unexpected(r.error());
    return ParseOperation(r->body);
  }

  void Delete(const std::string& name) {
    auto r =
        compute_->Call("DELETE", compute_->ProjectPath("/zones/us-central1-a/instances/" + name),
                       "", "delete", Budget());
    ASSERT_TRUE(r.has_value()) << r.error().message;
    auto op = ParseOperation(r->body);
    ASSERT_TRUE(op.has_value());
    ASSERT_TRUE(compute_->WaitOperation(*op, "delete", Budget()).has_value());
  }

  std::unique_ptr<http::Client> client_;
  std::unique_ptr<TokenSource> tokens_;
  std::unique_ptr<ComputeClient> compute_;
};

TEST_F(ComputeClientTest, AnInsertsOperationIsPolledThroughPendingAndRunningToDone) {
  const int waits = SharedFake().Calls("zoneOperations.wait");
  auto op = Insert("podvm-compute-op", "11111111-2222-4333-8444-555555555555");
  ASSERT_TRUE(op.has_value()) << op.error().message;
  EXPECT_EQ(op->status, "PENDING");
  auto done = compute_->WaitOperation(*op, "insert", Budget());
  ASSERT_TRUE(done.has_value()) << done.error().message;
  EXPECT_TRUE(done->Done());
  EXPECT_TRUE(OperationError(*done, "insert").has_value());
  EXPECT_EQ(SharedFake().Calls("zoneOperations.wait") - waits, 2);  // RUNNING, then DONE
  Delete("podvm-compute-op");
  EXPECT_TRUE(SharedFake().Instances("podvm-compute-op").empty());
}

// The fake's answers fit Google's model of the API too: what our parsers are tested against is
// shaped like the real thing.
TEST_F(ComputeClientTest, TheFakesAnswersFitGooglesApiModel) {
  auto op = compute_->Call("POST",
                           compute_->ProjectPath("/zones/us-central1-a/instances?requestId="
                                                 "22222222-2222-4333-8444-555555555555"),
                           Body("podvm-compute-model"), "insert", Budget());
  ASSERT_TRUE(op.has_value()) << op.error().message;
  EXPECT_EQ(testing::ComputeModelViolations("Operation", op->body), "") << op->body;
  auto got = compute_->Call(
      "GET", compute_->ProjectPath("/zones/us-central1-a/instances/podvm-compute-model"), "", "get",
      Budget());
  ASSERT_TRUE(got.has_value());
  EXPECT_EQ(testing::ComputeModelViolations("Instance", got->body), "") << got->body;
  auto list = compute_->Call("GET", compute_->ProjectPath("/zones/us-central1-a/instances"), "",
                             "list", Budget());
  ASSERT_TRUE(list.has_value());
  EXPECT_EQ(testing::ComputeModelViolations("InstanceList", list->body), "") << list->body;
  auto type = compute_->Call(
      "GET", compute_->ProjectPath("/zones/us-central1-a/machineTypes/a3-highgpu-1g"), "",
      "machineTypes.get", Budget());
  ASSERT_TRUE(type.has_value());
  EXPECT_EQ(testing::ComputeModelViolations("MachineType", type->body), "") << type->body;
  auto parsed = ParseOperation(op->body);
  ASSERT_TRUE(parsed.has_value());
  ASSERT_TRUE(compute_->WaitOperation(*parsed, "insert", Budget()).has_value());
  Delete("podvm-compute-model");

  // A DONE operation that failed for capacity, as the fake reports it.
  SharedFake().Configure({{"exhausted", {"us-central1-a/e2-medium"}}});
  auto refused = Insert("podvm-compute-model", "33333333-2222-4333-8444-555555555555");
  ASSERT_TRUE(refused.has_value()) << refused.error().message;
  auto waited = compute_->Call(
      "POST", compute_->ProjectPath("/zones/us-central1-a/operations/" + refused->name + "/wait"),
      "", "wait", Budget());
  auto done = compute_->Call(
      "POST", compute_->ProjectPath("/zones/us-central1-a/operations/" + refused->name + "/wait"),
      "", "wait", Budget());
  ASSERT_TRUE(waited.has_value() && done.has_value());
  ASSERT_NE(done->body.find("ZONE_RESOURCE_POOL_EXHAUSTED"), std::string::npos) << done->body;
  EXPECT_EQ(testing::ComputeModelViolations("Operation", done->body), "") << done->body;
}

TEST_F(ComputeClientTest, TheFakeRefusesBodiesOutsideTheApiModelAsTheApiDoes) {
  Json body = Json::parse(Body("podvm-compute-strict"));
  body["networkInterfaces"][0]["stackType"] = "IPV4_Only";  // what CAA sends
  auto r = compute_->Call("POST", compute_->ProjectPath("/zones/us-central1-a/instances"),
                          body.dump(), "insert", Budget());
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().code, Code::kInvalidArgument);
  EXPECT_NE(r.error().message.find("StackType"), std::string::npos) << r.error().message;
  EXPECT_TRUE(SharedFake().Instances("podvm-compute-strict").empty());
}

TEST_F(ComputeClientTest, TheSameRequestIdNeverMakesTwoInstances) {
  const std::string id = "aaaaaaaa-bbbb-4ccc-8ddd-eeeeeeeeeeee";
  auto first = Insert("podvm-compute-idem", id);
  auto again = Insert("podvm-compute-idem", id);
  ASSERT_TRUE(first.has_value() && again.has_value());
  EXPECT_EQ(first->name, again->name);
  EXPECT_EQ(SharedFake().Instances("podvm-compute-idem").size(), 1u);
  auto other = Insert("podvm-compute-idem", "aaaaaaaa-bbbb-4ccc-8ddd-ffffffffffff");
  ASSERT_FALSE(other.has_value());
  EXPECT_EQ(other.error().code, Code::kAlreadyExists);
  ASSERT_TRUE(compute_->WaitOperation(*first, "insert", Budget()).has_value());
  Delete("podvm-compute-idem");
}

TEST_F(ComputeClientTest, ARefusedTokenIsRefreshedOnceAndTheCallSucceeds) {
  ASSERT_TRUE(
      compute_->Call("GET", compute_->ProjectPath(""), "", "projects.get", Budget()).has_value());
  EXPECT_EQ(tokens_->fetches(), 1u);
  SharedFake().RevokeTokens();  // the cached token expired early, as far as the API is concerned
  auto r = compute_->Call("GET", compute_->ProjectPath(""), "", "projects.get", Budget());
  ASSERT_TRUE(r.has_value()) << r.error().message;
  EXPECT_EQ(tokens_->fetches(), 2u);
}

TEST_F(ComputeClientTest, ATokenRefusedTwiceIsAMisconfiguration) {
  SharedFake().SetFaults(Json::array({{{"action", "projects.get"},
                                       {"count", 2},
                                       {"status", 401},
                                       {"body", GoogleError(401, "authError")}}}));
  auto r = compute_->Call("GET", compute_->ProjectPath(""), "", "projects.get", Budget());
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().code, Code::kFailedPrecondition) << r.error().message;
}

TEST_F(ComputeClientTest, ThrottlingAndServerErrorsAreRetriedHonouringRetryAfter) {
  SharedFake().SetFaults(Json::array(
      {{{"action", "projects.get"},
        {"count", 1},
        {"status", 429},
        {"body", GoogleError(429, "rateLimitExceeded")},
        {"headers", {{"Retry-After", "1"}}}},
       {{"action", "projects.get"},
        {"count", 1},
        {"status", 403},
        {"body", GoogleError(403, "userRateLimitExceeded")}},
       {{"action", "projects.get"}, {"count", 1}, {"status", 503}, {"body", "unavailable"}}}));
  const auto start = std::chrono::steady_clock::now();
  auto r = compute_->Call("GET", compute_->ProjectPath(""), "", "projects.get", Budget());
  ASSERT_TRUE(r.has_value()) << r.error().message;
  // Retry-After: 1 was waited for (a lower bound, not a timing assertion on speed).
  EXPECT_GE(std::chrono::steady_clock::now() - start, 1s);
  EXPECT_GE(compute_->calls(), 4u);
}

}  // namespace
}  // namespace pp::providers::gcp
