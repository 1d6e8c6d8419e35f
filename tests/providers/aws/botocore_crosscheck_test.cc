// Our SigV4 signer and EC2 form encoding against botocore (python3-botocore), an implementation no
// one here wrote: the same random-ish requests signed by both give the same canonical request,
// string to sign and Authorization header; the same RunInstances/DescribeInstances inputs
// flattened by both give the same wire parameters, and botocore's model validator accepts them.
#include <gtest/gtest.h>

#include <map>
#include <random>

#include "common/podvm/encoding.h"
#include "providers/aws/ec2_query.h"
#include "providers/aws/sigv4.h"
#include "tests/providers/aws/oracle.h"

namespace pp::providers::aws {
namespace {

using nlohmann::json;

class Gen {
 public:
  explicit Gen(unsigned seed) : rng_(seed) {}
  std::size_t Int(std::size_t lo, std::size_t hi) {
    return std::uniform_int_distribution<std::size_t>(lo, hi)(rng_);
  }
  bool Coin() { return Int(0, 1) == 1; }
  template <typename T>
  const T& Pick(const std::vector<T>& v) {
    return v[Int(0, v.size() - 1)];
  }
  // Printable ASCII with the characters form encoding and signing get wrong, plus UTF-8.
  std::string Text(std::size_t max) {
    static const std::vector<std::string> kPieces = {"a",
                                                     "Z",
                                                     "0",
                                                     "9",
                                                     "-",
                                                     "_",
                                                     ".",
                                                     "~",
                                                     " ",
                                                     "+",
                                                     "/",
                                                     "=",
                                                     "&",
                                                     "%",
                                                     "*",
                                                     "?",
                                                     "#",
                                                     "\"",
                                                     "'",
                                                     ",",
                                                     ";",
                                                     ":",
                                                     "\xe1\x88\xb4",
                                                     "\xc3\xa9",
                                                     "\xf0\x9f\x94\x92"};
    std::string s;
    const std::size_t n = Int(1, max);
    for (std::size_t i = 0; i < n; ++i) s += Pick(kPieces);
    return s;
  }
  std::string Id(std::string prefix) {
    static const char kHex[] = "0123456789abcdef";
    for (int i = 0; i < 17; ++i) prefix += kHex[Int(0, 15)];
    return prefix;
  }

 private:
  std::mt19937 rng_;
};

TEST(BotocoreCrossCheck, TwoHundredRandomRequestsSignAlike) {
  Gen g(20261201);
  struct Mine {
    SignedParts parts;
  };
  std::vector<json> cases;
  std::vector<SignedParts> ours;
  for (int i = 0; i < 200; ++i) {
    SigningInput in;
    const bool get = g.Int(0, 4) == 0;
    in.method = get ? "GET" : "POST";
    QueryParams params;
    for (std::size_t k = 0, n = g.Int(0, 6); k < n; ++k) {
      params.emplace_back(g.Pick(std::vector<std::string>{
                              "ImageId", "InstanceId.1", "Filter.1.Value.2",
                              "TagSpecification.1.Tag.3.Value", "UserData", "ClientToken"}) +
                              (k ? std::to_string(k) : ""),
                          g.Text(24));
    }
    const std::string form = EncodeQueryBody(
        g.Pick(std::vector<std::string>{"RunInstances", "DescribeInstances", "TerminateInstances"}),
        kEc2Version, params);
    const std::string host = g.Pick(std::vector<std::string>{
        "ec2.us-east-1.amazonaws.com", "ec2.eu-west-3.amazonaws.com", "127.0.0.1:8443",
        "vpce-1a2b.ec2.us-gov-west-1.vpce.amazonaws.com"});
    in.path = g.Pick(std::vector<std::string>{"/", "/", "/", "/api/v1", "/a b/c~d/"});
    std::string body;
    if (get) {
      in.query = form;
    } else {
      body = form;
      in.headers.emplace_back("Content-Type", "application/x-www-form-urlencoded; charset=utf-8");
    }
    in.headers.emplace_back("Host", host);
    if (g.Coin()) in.headers.emplace_back("X-Amz-Meta-Note", "  spaced   out \t value ");
    in.body = body;
    Credentials creds{g.Pick(std::vector<std::string>{"AKIDEXAMPLE", "ASIAFAKE123"}), g.Text(40),
                      ""};
    if (g.Coin()) creds.session_token = g.Text(80);
    SigningParams p;
    p.region = g.Pick(
        std::vector<std::string>{"us-east-1", "eu-west-3", "ap-southeast-2", "us-gov-west-1"});
    p.service = g.Pick(std::vector<std::string>{"ec2", "sts"});
    p.time = std::chrono::system_clock::from_time_t(1420070400 +
                                                    static_cast<std::time_t>(g.Int(0, 500000000)));
    ours.push_back(SignHeaders(in, creds, p));

    json c;
    c["method"] = in.method;
    // The path as it goes on the wire; both encode it once more for the canonical request.
    c["url"] = "https://" + host + in.path + (in.query.empty() ? "" : "?" + in.query);
    c["headers"] = json::array();
    for (const auto& [k, v] : in.headers) c["headers"].push_back({k, v});
    c["body"] = body;
    c["amz_date"] = AmzDate(p.time);
    c["access_key"] = creds.access_key_id;
    c["secret_key"] = creds.secret_access_key;
    c["token"] = creds.session_token;
    c["region"] = p.region;
    c["service"] = p.service;
    cases.push_back(std::move(c));
  }
  const auto theirs = testing::RunBotocoreOracle("sign", cases);
  ASSERT_EQ(theirs.size(), ours.size());
  for (std::size_t i = 0; i < ours.size(); ++i) {
    EXPECT_EQ(ours[i].canonical_request, theirs[i]["canonical_request"]) << "case " << i;
    EXPECT_EQ(ours[i].string_to_sign, theirs[i]["string_to_sign"]) << "case " << i;
    EXPECT_EQ(ours[i].signature, theirs[i]["signature"]) << "case " << i;
    EXPECT_EQ(ours[i].headers.back().second, theirs[i]["authorization"]) << "case " << i;
  }
}

std::map<std::string, std::string> AsMap(const QueryParams& params) {
  return {params.begin(), params.end()};
}

TEST(BotocoreCrossCheck, RunInstancesFlattensAsBotocoresEc2Serializer) {
  Gen g(7);
  std::vector<json> cases;
  std::vector<QueryParams> ours;
  for (int i = 0; i < 60; ++i) {
    RunInstancesRequest r;
    r.image_id = g.Id("ami-");
    r.instance_type = g.Pick(std::vector<std::string>{"m6a.large", "c6a.2xlarge", "r6a.xlarge"});
    r.user_data = g.Text(200);
    r.subnet_id = g.Coin() ? g.Id("subnet-") : "";
    for (std::size_t k = 0, n = g.Int(0, 3); k < n; ++k)
      r.security_group_ids.push_back(g.Id("sg-"));
    r.key_name = g.Coin() ? g.Text(10) : "";
    r.public_ip = g.Coin();
    r.sev_snp = g.Coin();
    if (g.Coin()) {
      r.root_device_name = "/dev/xvda";
      r.root_volume_gib = g.Int(8, 500);
    }
    for (std::size_t k = 0, n = g.Int(0, 5); k < n; ++k)
      r.tags.emplace_back(g.Text(12), g.Text(20));
    r.client_token = g.Id("tok");
    QueryParams mine = RunInstancesParams(r);

    json in = {{"ImageId", r.image_id},
               {"InstanceType", r.instance_type},
               {"MinCount", 1},
               {"MaxCount", 1},
               {"ClientToken", r.client_token},
               {"UserData", podvm::Base64Encode(r.user_data)},
               {"MetadataOptions", {{"HttpTokens", "required"}, {"HttpEndpoint", "enabled"}}}};
    if (!r.key_name.empty()) in["KeyName"] = r.key_name;
    if (r.public_ip) {
      json nic = {
          {"DeviceIndex", 0}, {"AssociatePublicIpAddress", true}, {"DeleteOnTermination", true}};
      if (!r.subnet_id.empty()) nic["SubnetId"] = r.subnet_id;
      if (!r.security_group_ids.empty()) nic["Groups"] = r.security_group_ids;
      in["NetworkInterfaces"] = json::array({nic});
    } else {
      if (!r.subnet_id.empty()) in["SubnetId"] = r.subnet_id;
      if (!r.security_group_ids.empty()) in["SecurityGroupIds"] = r.security_group_ids;
    }
    if (r.root_volume_gib) {
      in["BlockDeviceMappings"] = json::array(
          {{{"DeviceName", r.root_device_name},
            {"Ebs", {{"VolumeSize", r.root_volume_gib}, {"DeleteOnTermination", true}}}}});
    }
    if (!r.tags.empty()) {
      json tags = json::array();
      for (const auto& [k, v] : r.tags) tags.push_back({{"Key", k}, {"Value", v}});
      in["TagSpecifications"] = json::array({{{"ResourceType", "instance"}, {"Tags", tags}}});
    }
    cases.push_back({{"action", "RunInstances"},
                     {"params", in},
                     {"our_body", EncodeQueryBody("RunInstances", kEc2Version, mine)}});
    ours.push_back(std::move(mine));
  }
  const auto theirs = testing::RunBotocoreOracle("serialize", cases);
  ASSERT_EQ(theirs.size(), ours.size());
  for (std::size_t i = 0; i < ours.size(); ++i) {
    ASSERT_FALSE(theirs[i].contains("error")) << theirs[i]["error"];
    std::map<std::string, std::string> mine = AsMap(ours[i]);
    // Debian's 2022 model predates SEV-SNP; everything else must match exactly.
    const bool sev = mine.erase("CpuOptions.AmdSevSnp") == 1;
    std::map<std::string, std::string> want =
        theirs[i]["body"].get<std::map<std::string, std::string>>();
    want.erase("Action");
    want.erase("Version");
    EXPECT_EQ(mine, want) << "case " << i;
    std::map<std::string, std::string> decoded =
        theirs[i]["decoded"].get<std::map<std::string, std::string>>();
    EXPECT_EQ(decoded["Action"], "RunInstances");
    decoded.erase("Action");
    decoded.erase("Version");
    decoded.erase("CpuOptions.AmdSevSnp");
    EXPECT_EQ(decoded, mine) << "a form parser reads our body differently, case " << i;
    EXPECT_EQ(sev, AsMap(ours[i]).count("CpuOptions.AmdSevSnp") == 1);
  }
}

TEST(BotocoreCrossCheck, DescribeInstancesFiltersAndIdsFlattenAsBotocore) {
  QueryParams mine;
  AddList(mine, "InstanceId", {"i-0123456789abcdef0", "i-0fedcba9876543210"});
  AddFilters(mine, {{"tag:peerpods.node", {"node a"}},
                    {"instance-state-name", {"pending", "running", "stopped"}}});
  json in = {{"InstanceIds", {"i-0123456789abcdef0", "i-0fedcba9876543210"}},
             {"Filters",
              {{{"Name", "tag:peerpods.node"}, {"Values", {"node a"}}},
               {{"Name", "instance-state-name"}, {"Values", {"pending", "running", "stopped"}}}}}};
  const auto theirs =
      testing::RunBotocoreOracle("serialize", {{{"action", "DescribeInstances"}, {"params", in}}});
  ASSERT_EQ(theirs.size(), 1u);
  auto want = theirs[0]["body"].get<std::map<std::string, std::string>>();
  want.erase("Action");
  want.erase("Version");
  EXPECT_EQ(AsMap(mine), want);
}

}  // namespace
}  // namespace pp::providers::aws
