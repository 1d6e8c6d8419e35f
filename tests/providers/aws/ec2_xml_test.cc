// The EC2/STS XML readers, the error classifier and the form encoding, on bodies shaped as AWS
// documents them (EC2 API Reference examples) and on bodies no one should trust.
#include "providers/aws/ec2_xml.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "providers/aws/ec2_client.h"
#include "providers/aws/ec2_query.h"

namespace pp::providers::aws {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

std::string Corpus(const std::string& name) {
  std::ifstream in(std::string(PP_SOURCE_DIR) + "/tests/fuzz/corpus_ec2xml/" + name);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

TEST(Ec2XmlTest, ReadsDescribeInstancesAcrossReservations) {
  std::string error;
  auto page = ParseInstancesXml(Corpus("describe_instances.xml"), error);
  ASSERT_TRUE(page) << error;
  ASSERT_EQ(page->instances.size(), 1u);
  const Ec2Instance& i = page->instances[0];
  EXPECT_EQ(i.id, "i-1234567890abcdef0");
  EXPECT_EQ(i.state, "running");
  EXPECT_EQ(i.private_ip, "10.0.0.12");
  EXPECT_EQ(i.public_ip, "54.194.252.215");
  EXPECT_EQ(i.instance_type, "m6a.large");
  EXPECT_EQ(i.tags.at("Name"), "podvm-a-1");
  EXPECT_EQ(i.tags.at("peerpods.node"), "node-a");
  EXPECT_EQ(page->next_token, "abc");
}

TEST(Ec2XmlTest, ReadsRunInstancesAndRefusesOneWithoutAnInstance) {
  std::string error;
  auto page = ParseInstancesXml(Corpus("run_instances.xml"), error);
  ASSERT_TRUE(page) << error;
  EXPECT_EQ(page->instances.at(0).state, "pending");
  EXPECT_FALSE(
      ParseInstancesXml("<RunInstancesResponse><instancesSet/></RunInstancesResponse>", error));
  EXPECT_THAT(error, HasSubstr("no instance"));
}

TEST(Ec2XmlTest, ReadsTypesImagesTerminateAndSts) {
  std::string error;
  auto types = ParseInstanceTypesXml(Corpus("types.xml"), error);
  ASSERT_TRUE(types) << error;
  EXPECT_EQ(types->types.at(0).gpus, 1u);
  EXPECT_EQ(types->types.at(0).gpu_model, "A10G");
  EXPECT_EQ(types->types.at(0).memory_mib, 16384u);
  EXPECT_TRUE(types->types.at(0).sev_snp);
  auto terminated = ParseTerminateXml(
      "<TerminateInstancesResponse><instancesSet><item><instanceId>i-1</instanceId></item></"
      "instancesSet>"
      "</TerminateInstancesResponse>",
      error);
  ASSERT_TRUE(terminated) << error;
  EXPECT_EQ(*terminated, std::vector<std::string>{"i-1"});
  auto sts = ParseAssumeRoleWithWebIdentityXml(Corpus("sts.xml"), error);
  ASSERT_TRUE(sts) << error;
  EXPECT_EQ(sts->access_key_id, "ASIAFAKE");
  EXPECT_EQ(std::chrono::system_clock::to_time_t(sts->expiration),
            1796155200);  // 2026-12-01T20:00:00Z
}

TEST(Ec2XmlTest, ADocumentTypeDeclarationIsRefused) {
  // Entity expansion (billion laughs) and external entities need a DTD; AWS never sends one.
  std::string error;
  EXPECT_FALSE(ParseImagesXml(Corpus("entities.xml"), error));
  EXPECT_THAT(error, HasSubstr("malformed"));
  EXPECT_FALSE(ParseImagesXml(
      "<!DOCTYPE r [<!ENTITY a \"x\">]><DescribeImagesResponse><imagesSet><item><imageId>&a;"
      "</imageId></item></imagesSet></DescribeImagesResponse>",
      error));
  EXPECT_FALSE(ParseErrorXml(
      "<!DOCTYPE Response [<!ENTITY a \"x\">]><Response><Errors><Error><Code>&a;</Code>"
      "</Error></Errors></Response>"));
}

TEST(Ec2XmlTest, MalformedBodiesAreErrorsThatDoNotQuoteTheBody) {
  std::string error;
  for (const std::string& body :
       {std::string(""), std::string("<oops"), std::string("{\"json\":1}"),
        std::string("<DescribeInstancesResponse><reservationSet><item><instancesSet><item>"
                    "<instanceState><name>secret-ish</name></instanceState></item>"
                    "</instancesSet></item></reservationSet></DescribeInstancesResponse>")}) {
    error.clear();
    EXPECT_FALSE(ParseInstancesXml(body, error)) << body;
    EXPECT_THAT(error, HasSubstr("malformed"));
    EXPECT_THAT(error, Not(HasSubstr("secret-ish")));
  }
  EXPECT_FALSE(ParseAssumeRoleWithWebIdentityXml(
      "<AssumeRoleWithWebIdentityResponse><AssumeRoleWithWebIdentityResult><Credentials><"
      "AccessKeyId>A</AccessKeyId>"
      "<SecretAccessKey>TOPSECRET</SecretAccessKey></Credentials></AssumeRoleWithWebIdentityResult>"
      "</AssumeRoleWithWebIdentityResponse>",
      error));
  EXPECT_THAT(error, Not(HasSubstr("TOPSECRET")));
  EXPECT_FALSE(ParseInstanceTypesXml(
      "<DescribeInstanceTypesResponse><instanceTypeSet><item><instanceType>x</"
      "instanceType><vCpuInfo><defaultVCpus>-1"
      "</defaultVCpus></vCpuInfo></item></instanceTypeSet></DescribeInstanceTypesResponse>",
      error));
}

TEST(Ec2XmlTest, Iso8601) {
  EXPECT_EQ(std::chrono::system_clock::to_time_t(*ParseIso8601("2026-12-01T20:00:00Z")),
            1796155200);
  EXPECT_TRUE(ParseIso8601("2026-12-01T20:00:00+00:00"));
  EXPECT_FALSE(ParseIso8601("2026-13-01T20:00:00Z"));
  EXPECT_FALSE(ParseIso8601("2026-12-01T20:00:00+02:00"));
  EXPECT_FALSE(ParseIso8601("yesterday"));
}

http::Response Reply(long status, const std::string& code) {
  http::Response r;
  r.status = status;
  if (!code.empty()) {
    r.body = "<Response><Errors><Error><Code>" + code +
             "</Code><Message>m</Message></Error></Errors>"
             "<RequestID>x</RequestID></Response>";
  }
  return r;
}

TEST(ClassifyTest, MapsEc2ErrorsToTheProviderTaxonomy) {
  const std::vector<std::tuple<long, std::string, Code>> cases = {
      {200, "", Code::kOk},
      {503, "RequestLimitExceeded", Code::kAborted},
      {400, "Throttling", Code::kAborted},
      {400, "ThrottlingException", Code::kAborted},
      {429, "", Code::kAborted},
      {500, "InternalError", Code::kUnavailable},
      {503, "", Code::kUnavailable},
      {502, "", Code::kUnavailable},
      {500, "InsufficientInstanceCapacity", Code::kResourceExhausted},
      {400, "InstanceLimitExceeded", Code::kResourceExhausted},
      {401, "AuthFailure", Code::kFailedPrecondition},
      {403, "UnauthorizedOperation", Code::kFailedPrecondition},
      {400, "InvalidAMIID.NotFound", Code::kFailedPrecondition},
      {400, "InvalidAMIID.Malformed", Code::kFailedPrecondition},
      {400, "InvalidInstanceID.NotFound", Code::kNotFound},
      {400, "ExpiredToken", Code::kUnauthenticated},
      {400, "RequestExpired", Code::kUnauthenticated},
      {400, "InvalidParameterValue", Code::kInvalidArgument},
      {400, "", Code::kInvalidArgument},
  };
  for (const auto& [status, code, want] : cases) {
    std::string got_code;
    auto r = ClassifyAwsResponse(Reply(status, code), "ec2 Test", &got_code);
    if (want == Code::kOk) {
      EXPECT_TRUE(r);
      continue;
    }
    ASSERT_FALSE(r) << code;
    EXPECT_EQ(r.error().code, want) << status << " " << code << ": " << r.error().message;
    EXPECT_EQ(got_code, code);
    EXPECT_THAT(r.error().message, HasSubstr("ec2 Test"));
  }
}

TEST(ClassifyTest, KeepsOnlyTheFirstLineOfAnErrorMessage) {
  http::Response r;
  r.status = 403;
  r.body =
      "<Response><Errors><Error><Code>SignatureDoesNotMatch</Code><Message>The request signature "
      "we "
      "calculated does not match.\n\nThe Canonical String for this request should have been\n"
      "x-amz-security-token:SESSIONTOKEN</Message></Error></Errors></Response>";
  auto e = ClassifyAwsResponse(r, "ec2 Test");
  ASSERT_FALSE(e);
  EXPECT_THAT(e.error().message, HasSubstr("does not match"));
  EXPECT_THAT(e.error().message, Not(HasSubstr("SESSIONTOKEN")));
}

TEST(Ec2QueryTest, FormEncodingFollowsSigV4UriEncode) {
  EXPECT_EQ(
      EncodeQueryBody("RunInstances", kEc2Version,
                      {{"UserData", "a+b/c=="}, {"Tag.1.Value", "x y&z~"}}),
      "Action=RunInstances&Version=2016-11-15&UserData=a%2Bb%2Fc%3D%3D&Tag.1.Value=x%20y%26z~");
  QueryParams p;
  AddList(p, "InstanceId", {"i-1", "i-2"});
  AddFilters(p, {{"tag:peerpods.node", {"n"}}});
  EXPECT_EQ(p, (QueryParams{{"InstanceId.1", "i-1"},
                            {"InstanceId.2", "i-2"},
                            {"Filter.1.Name", "tag:peerpods.node"},
                            {"Filter.1.Value.1", "n"}}));
}

TEST(Ec2QueryTest, RunInstancesCarriesTheConfidentialVmSettings) {
  RunInstancesRequest r;
  r.image_id = "ami-1";
  r.instance_type = "m6a.large";
  r.user_data = "#cloud-config\n";
  r.subnet_id = "subnet-1";
  r.security_group_ids = {"sg-1", "sg-2"};
  r.client_token = "tok";
  r.tags = {{"Name", "podvm-x"}};
  const QueryParams p = RunInstancesParams(r);
  const std::map<std::string, std::string> m(p.begin(), p.end());
  EXPECT_EQ(m.at("CpuOptions.AmdSevSnp"), "enabled");
  EXPECT_EQ(m.at("MetadataOptions.HttpTokens"), "required");
  EXPECT_EQ(m.at("UserData"), "I2Nsb3VkLWNvbmZpZwo=");
  EXPECT_EQ(m.at("SubnetId"), "subnet-1");
  EXPECT_EQ(m.at("SecurityGroupId.2"), "sg-2");
  EXPECT_EQ(m.at("TagSpecification.1.ResourceType"), "instance");
  EXPECT_EQ(m.at("TagSpecification.1.Tag.1.Value"), "podvm-x");
  r.sev_snp = false;
  r.public_ip = true;
  const QueryParams q = RunInstancesParams(r);
  const std::map<std::string, std::string> n(q.begin(), q.end());
  EXPECT_FALSE(n.contains("CpuOptions.AmdSevSnp"));
  EXPECT_FALSE(n.contains("SubnetId"));
  EXPECT_EQ(n.at("NetworkInterface.1.SubnetId"), "subnet-1");
  EXPECT_EQ(n.at("NetworkInterface.1.SecurityGroupId.1"), "sg-1");
  EXPECT_EQ(n.at("NetworkInterface.1.AssociatePublicIpAddress"), "true");
}

TEST(Ec2ClientTest, HostOfAnEndpoint) {
  EXPECT_EQ(HostOf("https://ec2.us-east-1.amazonaws.com/"), "ec2.us-east-1.amazonaws.com");
  EXPECT_EQ(HostOf("https://127.0.0.1:8443"), "127.0.0.1:8443");
  EXPECT_EQ(HostOf("https://EC2.example:443/x"), "ec2.example");
  EXPECT_EQ(HostOf("not a url"), "");
}

}  // namespace
}  // namespace pp::providers::aws
