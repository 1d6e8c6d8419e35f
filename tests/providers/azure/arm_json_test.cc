#include "providers/azure/arm_json.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "providers/azure/arm_client.h"
#include "providers/azure/sizes.h"

namespace pp::providers::azure {
namespace {

using nlohmann::json;

TEST(ArmJsonTest, ReadsAnArmErrorPlainAndNested) {
  ArmError e;
  std::string error;
  ASSERT_TRUE(ParseArmError(
      R"({"error":{"code":"SkuNotAvailable","message":"no","details":[{"code":"A"}]}})", e, error));
  EXPECT_EQ(e.code, "SkuNotAvailable");
  EXPECT_EQ(e.message, "no");
  EXPECT_EQ(e.detail_codes, std::vector<std::string>{"A"});
  ASSERT_TRUE(ParseArmError(R"({"error":{"error":{"code":"Inner","message":"m"}}})", e, error));
  EXPECT_EQ(e.code, "Inner");
  ASSERT_TRUE(ParseArmError(R"({"code":"Top","message":"m"})", e, error));
  EXPECT_EQ(e.code, "Top");
}

TEST(ArmJsonTest, RefusesWhatIsNotAnArmError) {
  ArmError e;
  std::string error;
  for (const char* body :
       {"", "not json", "[]", "{}", R"({"error":"invalid_client"})", R"({"error":{"code":7}})"}) {
    EXPECT_FALSE(ParseArmError(body, e, error)) << body;
    EXPECT_FALSE(error.empty());
  }
}

TEST(ArmJsonTest, ReadsAsyncOperationStatuses) {
  AsyncOperation op;
  std::string error;
  ASSERT_TRUE(ParseAsyncOperation(R"({"status":"InProgress"})", op, error));
  EXPECT_FALSE(op.Terminal());
  ASSERT_TRUE(ParseAsyncOperation(R"({"status":"succeeded"})", op, error));
  EXPECT_TRUE(op.Terminal());
  EXPECT_TRUE(op.Succeeded());
  ASSERT_TRUE(ParseAsyncOperation(
      R"({"status":"Failed","error":{"code":"AllocationFailed","message":"x"}})", op, error));
  EXPECT_TRUE(op.Terminal());
  ASSERT_TRUE(op.error.has_value());
  EXPECT_EQ(op.error->code, "AllocationFailed");
  ASSERT_TRUE(ParseAsyncOperation(R"({"status":"Canceled"})", op, error));
  EXPECT_TRUE(op.Terminal());
  EXPECT_FALSE(op.Succeeded());
  EXPECT_FALSE(ParseAsyncOperation(R"({"status":5})", op, error));
  EXPECT_FALSE(ParseAsyncOperation(R"({})", op, error));
}

TEST(ArmJsonTest, ReadsAVmAndAPageWithItsNextLink) {
  const std::string vm =
      R"({"id":"/subscriptions/s/resourceGroups/r/providers/Microsoft.Compute/virtualMachines/a",
    "name":"a","tags":{"peerpods.node":"n","n":5},"properties":{"provisioningState":"Creating",
    "hardwareProfile":{"vmSize":"Standard_DC2as_v5"},
    "networkProfile":{"networkInterfaces":[{"id":"/nic/a-net"},{"x":1}]},
    "storageProfile":{"osDisk":{"name":"a-disk"}}}})";
  VmPage page;
  std::string error;
  ASSERT_TRUE(ParseVmPage(R"({"value":[)" + vm + R"(],"nextLink":"https://m/next"})", page, error))
      << error;
  ASSERT_EQ(page.vms.size(), 1u);
  const VmInfo& v = page.vms[0];
  EXPECT_EQ(v.name, "a");
  EXPECT_EQ(v.provisioning_state, "Creating");
  EXPECT_EQ(v.tags, (std::map<std::string, std::string>{{"peerpods.node", "n"}}));
  EXPECT_EQ(v.nic_ids, std::vector<std::string>{"/nic/a-net"});
  EXPECT_EQ(v.os_disk_name, "a-disk");
  EXPECT_EQ(v.vm_size, "Standard_DC2as_v5");
  EXPECT_EQ(page.next_link, "https://m/next");
  EXPECT_FALSE(ParseVmPage(R"({"value":{}})", page, error));
  EXPECT_FALSE(ParseVmPage(R"({"value":[{"properties":{}}]})", page, error))
      << "a VM without a name";
}

TEST(ArmJsonTest, ReadsNicAddresses) {
  NicInfo nic;
  std::string error;
  ASSERT_TRUE(
      ParseNic(R"({"properties":{"ipConfigurations":[{"properties":{"privateIPAddress":"10.0.0.4",
      "publicIPAddress":{"id":"/pip/x"}}},{"properties":{}}]}})",
               nic, error));
  EXPECT_EQ(nic.private_ips, std::vector<std::string>{"10.0.0.4"});
  EXPECT_EQ(nic.public_ip_ids, std::vector<std::string>{"/pip/x"});
  EXPECT_FALSE(ParseNic(R"({"properties":{}})", nic, error));
}

TEST(ArmJsonTest, ReadsTokenLifetimesFromEitherField) {
  TokenReply t;
  std::string error;
  ASSERT_TRUE(ParseTokenReply(R"({"access_token":"a","expires_in":3599})", 0, t, error));
  EXPECT_EQ(t.expires_in_s, 3599);
  ASSERT_TRUE(
      ParseTokenReply(R"({"access_token":"a","expires_in":"86399"})", 0, t, error));  // IMDS
  EXPECT_EQ(t.expires_in_s, 86399);
  ASSERT_TRUE(ParseTokenReply(R"({"access_token":"a","expires_on":"1000100"})", 1000000, t, error));
  EXPECT_EQ(t.expires_in_s, 100);
  EXPECT_FALSE(ParseTokenReply(R"({"access_token":"a"})", 0, t, error));
  EXPECT_FALSE(ParseTokenReply(R"({"access_token":"a","expires_in":0})", 0, t, error));
  EXPECT_FALSE(ParseTokenReply(R"({"access_token":"a","expires_in":"12x"})", 0, t, error));
  EXPECT_FALSE(ParseTokenReply(R"({"expires_in":5})", 0, t, error));
  EXPECT_EQ(error.find("a\""), std::string::npos);
}

VmBodyParams Params() {
  VmBodyParams p;
  p.location = "eastus";
  p.vm_size = "Standard_DC2as_v5";
  p.computer_name = "podvm-a-12345678";
  p.admin_username = "peerpod";
  p.ssh_public_key = "ssh-rsa AAAA test";
  p.image =
      "/subscriptions/s/resourceGroups/r/providers/Microsoft.Compute/galleries/g/images/i/versions/"
      "1";
  p.os_disk_name = "podvm-a-12345678-disk";
  p.nic_name = "podvm-a-12345678-net";
  p.subnet_id = "/subnets/s";
  p.user_data_b64 = "I2Nsb3VkLWNvbmZpZw==";
  p.tags = {{"peerpods.node", "n"}};
  return p;
}

TEST(VmBodyTest, AConfidentialVmWithEverythingDeletedWithIt) {
  const json b = json::parse(BuildVmBody(Params()));
  const json& p = b["properties"];
  EXPECT_EQ(b["location"], "eastus");
  EXPECT_EQ(b["tags"]["peerpods.node"], "n");
  EXPECT_FALSE(b.contains("zones"));
  EXPECT_EQ(p["securityProfile"]["securityType"], "ConfidentialVM");
  EXPECT_EQ(p["securityProfile"]["uefiSettings"]["vTpmEnabled"], true);
  EXPECT_EQ(p["securityProfile"]["uefiSettings"]["secureBootEnabled"], false);
  EXPECT_EQ(
      p["storageProfile"]["osDisk"]["managedDisk"]["securityProfile"]["securityEncryptionType"],
      "VMGuestStateOnly");
  EXPECT_EQ(p["storageProfile"]["osDisk"]["deleteOption"], "Delete");
  EXPECT_FALSE(p["storageProfile"]["osDisk"].contains("diskSizeGB"));
  EXPECT_EQ(p["storageProfile"]["imageReference"]["id"], Params().image);
  const json& nic = p["networkProfile"]["networkInterfaceConfigurations"][0];
  EXPECT_EQ(nic["name"], "podvm-a-12345678-net");
  EXPECT_EQ(nic["properties"]["deleteOption"], "Delete");
  EXPECT_EQ(nic["properties"]["ipConfigurations"][0]["properties"]["subnet"]["id"], "/subnets/s");
  EXPECT_FALSE(nic["properties"].contains("networkSecurityGroup"));
  EXPECT_FALSE(nic["properties"]["ipConfigurations"][0]["properties"].contains(
      "publicIPAddressConfiguration"));
  EXPECT_EQ(p["userData"], "I2Nsb3VkLWNvbmZpZw==");
  EXPECT_EQ(p["hardwareProfile"]["vmSize"], "Standard_DC2as_v5");
  EXPECT_EQ(p["osProfile"]["linuxConfiguration"]["ssh"]["publicKeys"][0]["path"],
            "/home/peerpod/.ssh/authorized_keys");
}

TEST(VmBodyTest, OptionsShowWhereTheyBelong) {
  VmBodyParams params = Params();
  params.confidential = false;
  params.zone = "2";
  params.root_volume_gib = 40;
  params.nsg_id = "/nsg/x";
  params.public_ip = true;
  params.image = "/CommunityGalleries/cg/Images/podvm/Versions/latest";
  const json b = json::parse(BuildVmBody(params));
  const json& p = b["properties"];
  EXPECT_FALSE(p.contains("securityProfile"));
  EXPECT_FALSE(p["storageProfile"]["osDisk"]["managedDisk"].contains("securityProfile"));
  EXPECT_EQ(b["zones"], json::array({"2"}));
  EXPECT_EQ(p["storageProfile"]["osDisk"]["diskSizeGB"], 40);
  EXPECT_EQ(p["storageProfile"]["imageReference"]["communityGalleryImageId"], params.image);
  EXPECT_FALSE(p["storageProfile"]["imageReference"].contains("id"));
  const json& nic = p["networkProfile"]["networkInterfaceConfigurations"][0]["properties"];
  EXPECT_EQ(nic["networkSecurityGroup"]["id"], "/nsg/x");
  EXPECT_EQ(nic["ipConfigurations"][0]["properties"]["publicIPAddressConfiguration"]["properties"]
               ["deleteOption"],
            "Delete");
  params = Params();
  params.secure_boot = true;
  EXPECT_EQ(json::parse(BuildVmBody(
                params))["properties"]["securityProfile"]["uefiSettings"]["secureBootEnabled"],
            true);
}

http::Response Answer(long status, std::string body, http::Headers headers = {}) {
  http::Response r;
  r.status = status;
  r.body = std::move(body);
  r.headers = std::move(headers);
  return r;
}

Code CodeOf(const http::Response& r) {
  auto verdict = ClassifyArm(r);
  return verdict ? Code::kOk : verdict.error().code;
}

std::string Err(const char* code) {
  return std::string(R"({"error":{"code":")") + code + R"(","message":"m"}})";
}

TEST(ClassifyArmTest, MapsStatusesAndCodesToTheTaxonomy) {
  EXPECT_EQ(CodeOf(Answer(200, "{}")), Code::kOk);
  EXPECT_EQ(CodeOf(Answer(202, "")), Code::kOk);
  EXPECT_EQ(CodeOf(Answer(429, Err("TooManyRequests"))), Code::kAborted);
  EXPECT_EQ(CodeOf(Answer(409, "", {{"x-ms-ratelimit-remaining-subscription-writes", "0"}})),
            Code::kAborted);
  EXPECT_EQ(CodeOf(Answer(503, "")), Code::kUnavailable);
  EXPECT_EQ(CodeOf(Answer(500, "<html>")), Code::kUnavailable);
  EXPECT_EQ(CodeOf(Answer(404, Err("ResourceNotFound"))), Code::kNotFound);
  EXPECT_EQ(CodeOf(Answer(404, Err("ResourceGroupNotFound"))), Code::kFailedPrecondition);
  EXPECT_EQ(CodeOf(Answer(404, Err("ImageNotFound"))), Code::kFailedPrecondition);
  for (const char* code : {"SkuNotAvailable", "AllocationFailed", "ZonalAllocationFailed",
                           "OverconstrainedAllocationRequest", "QuotaExceeded"}) {
    EXPECT_EQ(CodeOf(Answer(409, Err(code))), Code::kResourceExhausted) << code;
  }
  for (const char* code :
       {"AuthorizationFailed", "InvalidParameter", "LinkedAuthorizationFailed"}) {
    EXPECT_EQ(CodeOf(Answer(400, Err(code))), Code::kFailedPrecondition) << code;
  }
  EXPECT_EQ(
      CodeOf(Answer(
          409,
          R"({"error":{"code":"OperationNotAllowed","message":"Operation could not be )"
          R"(completed as it results in exceeding approved standardDCASv5Family Cores quota."}})")),
      Code::kResourceExhausted);
  EXPECT_EQ(CodeOf(Answer(409, Err("OperationNotAllowed"))), Code::kUnavailable);
  EXPECT_EQ(CodeOf(Answer(403, "")), Code::kFailedPrecondition);
  EXPECT_EQ(CodeOf(Answer(401, Err("ExpiredAuthenticationToken"))), Code::kUnauthenticated);
  EXPECT_EQ(CodeOf(Answer(400, Err("FakeModelViolation"))), Code::kInvalidArgument);
  auto verdict = ClassifyArm(Answer(409, Err("SkuNotAvailable")));
  ASSERT_FALSE(verdict);
  EXPECT_NE(verdict.error().message.find("SkuNotAvailable"), std::string::npos);
}

TEST(SizesTest, KnowsTheConfidentialShapes) {
  auto dc2 = FindKnownSize("standard_dc2as_v5");
  ASSERT_TRUE(dc2);
  EXPECT_EQ(dc2->vcpus, 2u);
  EXPECT_EQ(dc2->memory_mib, 8192u);
  auto ec4 = FindKnownSize("Standard_EC4es_v5");
  ASSERT_TRUE(ec4);
  EXPECT_EQ(ec4->memory_mib, 32u * 1024);
  auto gpu = FindKnownSize("Standard_NCC40ads_H100_v5");
  ASSERT_TRUE(gpu);
  EXPECT_EQ(gpu->gpus, 1u);
  EXPECT_EQ(gpu->gpu_model, "H100");
  EXPECT_FALSE(FindKnownSize("Standard_B1s"));
  std::vector<InstanceType> sizes;
  ASSERT_TRUE(ParseVmSizes(R"({"value":[{"name":"Standard_B1s","numberOfCores":1,"memoryInMB":1024},
      {"name":"Standard_NCC40ads_H100_v5","numberOfCores":40,"memoryInMB":327680},{"name":"x"}]})",
                           sizes));
  ASSERT_EQ(sizes.size(), 2u);
  EXPECT_EQ(sizes[0].memory_mib, 1024u);
  EXPECT_EQ(sizes[1].gpus, 1u);
}

}  // namespace
}  // namespace pp::providers::azure
