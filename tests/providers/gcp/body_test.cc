// The instances.insert body, label and name rules, reference forms and the machine-type table.
#include "providers/gcp/body.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "common/podvm/encoding.h"
#include "providers/gcp/machine_types.h"
#include "tests/providers/gcp/gce_fixture.h"

namespace pp::providers::gcp {
namespace {

using Json = nlohmann::json;

InstanceBodyParams Params() {
  InstanceBodyParams p;
  p.project = "proj";
  p.zone = "us-central1-a";
  p.name = "podvm-nginx-0123abcd";
  p.machine_type = "n2d-standard-2";
  p.source_image = ResolveImage("proj", "podvm-image");
  p.disk_type = "pd-balanced";
  p.disk_size_gb = 20;
  p.network = ResolveNetwork("default");
  p.subnetwork = ResolveSubnetwork("proj", "us-central1-a", "pods");
  p.confidential_type = "SEV_SNP";
  p.user_data = "#cloud-config\nwrite_files: []\n";
  p.owner = {"Worker-1.example.com", "0123abcd-ffff"};
  p.extra_labels = {{"team", "ai"}};
  return p;
}

TEST(InstanceBodyTest, ASevSnpInstanceCarriesEveryFieldTheApiNeeds) {
  const Json b = Json::parse(BuildInstanceBody(Params()));
  EXPECT_EQ(b["name"], "podvm-nginx-0123abcd");
  EXPECT_EQ(b["machineType"], "zones/us-central1-a/machineTypes/n2d-standard-2");
  ASSERT_EQ(b["disks"].size(), 1u);
  const Json& disk = b["disks"][0];
  EXPECT_EQ(disk["boot"], true);
  EXPECT_EQ(disk["autoDelete"], true);
  EXPECT_EQ(disk["type"], "PERSISTENT");
  EXPECT_EQ(disk["initializeParams"]["sourceImage"], "projects/proj/global/images/podvm-image");
  EXPECT_EQ(disk["initializeParams"]["diskType"], "zones/us-central1-a/diskTypes/pd-balanced");
  EXPECT_EQ(disk["initializeParams"]["diskSizeGb"], "20");
  const Json& nic = b["networkInterfaces"][0];
  EXPECT_EQ(nic["network"], "global/networks/default");
  EXPECT_EQ(nic["subnetwork"], "projects/proj/regions/us-central1/subnetworks/pods");
  EXPECT_FALSE(nic.contains("accessConfigs"));
  EXPECT_EQ(b["confidentialInstanceConfig"]["enableConfidentialCompute"], true);
  EXPECT_EQ(b["confidentialInstanceConfig"]["confidentialInstanceType"], "SEV_SNP");
  EXPECT_EQ(b["minCpuPlatform"], "AMD Milan");
  EXPECT_EQ(b["scheduling"]["onHostMaintenance"], "TERMINATE");

  std::map<std::string, std::string> meta;
  for (const auto& item : b["metadata"]["items"]) meta[item["key"]] = item["value"];
  std::string user_data, error;
  ASSERT_TRUE(podvm::Base64Decode(meta.at("user-data"), 1 << 20, user_data, error)) << error;
  EXPECT_EQ(user_data, Params().user_data);
  EXPECT_EQ(meta.at("user-data-encoding"), "base64");
  EXPECT_EQ(meta.at("peerpods-node"), "Worker-1.example.com");  // exact, for ListInstances
  EXPECT_EQ(meta.at("peerpods-sandbox"), "0123abcd-ffff");

  EXPECT_EQ(b["labels"]["peerpods-node"], "worker-1-example-com");  // label rules
  EXPECT_EQ(b["labels"]["peerpods-sandbox"], "0123abcd-ffff");
  EXPECT_EQ(b["labels"]["team"], "ai");
  for (const auto& [k, v] : b["labels"].items()) {
    EXPECT_TRUE(IsValidLabelKey(k)) << k;
    EXPECT_TRUE(IsValidLabelValue(v.get<std::string>())) << v;
  }
}

TEST(InstanceBodyTest, TdxHasNoCpuPlatformAndAPlainVmNoConfidentialConfig) {
  InstanceBodyParams p = Params();
  p.confidential_type = "TDX";
  p.machine_type = "c3-standard-4";
  Json b = Json::parse(BuildInstanceBody(p));
  EXPECT_EQ(b["confidentialInstanceConfig"]["confidentialInstanceType"], "TDX");
  EXPECT_FALSE(b.contains("minCpuPlatform"));
  EXPECT_EQ(b["scheduling"]["onHostMaintenance"], "TERMINATE");

  p.confidential_type.clear();  // DISABLECVM
  b = Json::parse(BuildInstanceBody(p));
  EXPECT_FALSE(b.contains("confidentialInstanceConfig"));
  EXPECT_FALSE(b.contains("scheduling"));
  p.terminate_on_maintenance = true;  // a GPU VM cannot live-migrate either
  b = Json::parse(BuildInstanceBody(p));
  EXPECT_EQ(b["scheduling"]["onHostMaintenance"], "TERMINATE");
}

TEST(InstanceBodyTest, APublicAddressIsAOneToOneNatAccessConfig) {
  InstanceBodyParams p = Params();
  p.public_ip = true;
  p.subnetwork.clear();
  p.disk_size_gb = 0;
  const Json b = Json::parse(BuildInstanceBody(p));
  const Json& ac = b["networkInterfaces"][0]["accessConfigs"][0];
  EXPECT_EQ(ac["type"], "ONE_TO_ONE_NAT");
  EXPECT_EQ(ac["networkTier"], "STANDARD");
  EXPECT_FALSE(b["networkInterfaces"][0].contains("subnetwork"));
  EXPECT_FALSE(b["disks"][0]["initializeParams"].contains("diskSizeGb"));
}

// Google's own API model (its compute.proto) accepts every body we build, field names, types and
// enum values alike; and refuses a body with one mistake, so that the check is known to bite.
TEST(InstanceBodyTest, GooglesApiModelAcceptsEveryShapeOfBody) {
  std::vector<InstanceBodyParams> shapes;
  shapes.push_back(Params());  // SEV-SNP, subnetwork, labels
  InstanceBodyParams tdx = Params();
  tdx.confidential_type = "TDX";
  tdx.machine_type = "a3-highgpu-1g";
  tdx.terminate_on_maintenance = true;
  shapes.push_back(tdx);
  InstanceBodyParams plain = Params();
  plain.confidential_type.clear();
  plain.public_ip = true;
  plain.subnetwork.clear();
  plain.disk_size_gb = 0;
  shapes.push_back(plain);
  for (const auto& p : shapes) {
    const std::string body = BuildInstanceBody(p);
    EXPECT_EQ(testing::ComputeModelViolations("Instance", body), "") << body;
  }
  Json wrong = Json::parse(BuildInstanceBody(Params()));
  wrong["confidentialInstanceConfig"]["confidentialInstanceType"] = "SNP";
  wrong["disks"][0]["initializeParams"]["diskSizeGb"] = true;
  const std::string violations = testing::ComputeModelViolations("Instance", wrong.dump());
  EXPECT_NE(violations.find("ConfidentialInstanceType"), std::string::npos) << violations;
  EXPECT_NE(violations.find("diskSizeGb"), std::string::npos) << violations;
}

TEST(LabelTest, ValuesAreSanitisedToTheLabelRulesAndLongOnesStayDistinct) {
  EXPECT_EQ(LabelValue("Node_1.Example"), "node_1-example");
  EXPECT_EQ(LabelValue(""), "");
  const std::string a = LabelValue(std::string(80, 'a') + "1");
  const std::string b = LabelValue(std::string(80, 'a') + "2");
  EXPECT_EQ(a.size(), 63u);
  EXPECT_NE(a, b);
  EXPECT_TRUE(IsValidLabelValue(a));
  EXPECT_TRUE(IsValidLabelKey("peerpods-node"));
  EXPECT_FALSE(IsValidLabelKey("1abc"));
  EXPECT_FALSE(IsValidLabelKey("Abc"));
  EXPECT_FALSE(IsValidLabelKey(""));
  EXPECT_FALSE(IsValidLabelValue("a.b"));
}

TEST(NamingTest, InstanceAndZoneNames) {
  EXPECT_TRUE(IsValidInstanceName("podvm-a-1"));
  EXPECT_FALSE(IsValidInstanceName("podvm-"));
  EXPECT_FALSE(IsValidInstanceName("1podvm"));
  EXPECT_FALSE(IsValidInstanceName("Podvm"));
  EXPECT_FALSE(IsValidInstanceName(std::string(64, 'a')));
  EXPECT_TRUE(IsValidZoneName("us-central1-a"));
  EXPECT_TRUE(IsValidZoneName("europe-west4-b"));
  EXPECT_FALSE(IsValidZoneName("uscentral"));
  EXPECT_FALSE(IsValidZoneName("us-central1-"));
  EXPECT_FALSE(IsValidZoneName("../x-y"));
  EXPECT_EQ(RegionOfZone("europe-west4-b"), "europe-west4");
}

TEST(ReferenceTest, ImageNetworkAndSubnetworkFormsAsCaaAcceptsThem) {
  EXPECT_EQ(ResolveImage("p", "img"), "projects/p/global/images/img");
  EXPECT_EQ(ResolveImage("p", "projects/other/global/images/img"),
            "projects/other/global/images/img");
  const std::string url = "https://www.googleapis.com/compute/v1/projects/other/global/images/img";
  EXPECT_EQ(ResolveImage("p", url), url);
  EXPECT_EQ(ImageProjectAndName("p", "img"), (std::pair<std::string, std::string>{"p", "img"}));
  EXPECT_EQ(ImageProjectAndName("p", url), (std::pair<std::string, std::string>{"other", "img"}));
  EXPECT_EQ(ImageProjectAndName("p", "/projects/o2/global/images/i2"),
            (std::pair<std::string, std::string>{"o2", "i2"}));
  EXPECT_EQ(ResolveNetwork("default"), "global/networks/default");
  EXPECT_EQ(ResolveNetwork("projects/p/global/networks/n"), "projects/p/global/networks/n");
  EXPECT_EQ(ResolveSubnetwork("p", "us-east1-b", "s"), "projects/p/regions/us-east1/subnetworks/s");
  EXPECT_EQ(ResolveSubnetwork("p", "us-east1-b", "regions/r/subnetworks/s"),
            "regions/r/subnetworks/s");
  EXPECT_EQ(ResolveSubnetwork("p", "us-east1-b", ""), "");
}

TEST(MachineTypeTableTest, KnownShapesIncludingConfidentialH100) {
  auto n2d = KnownMachineType("n2d-standard-4");
  ASSERT_TRUE(n2d.has_value());
  EXPECT_EQ(n2d->vcpus, 4u);
  EXPECT_EQ(n2d->memory_mib, 16384u);
  EXPECT_EQ(KnownMachineType("c3-standard-8")->memory_mib, 32768u);
  EXPECT_EQ(KnownMachineType("e2-medium")->memory_mib, 4096u);
  auto a3 = KnownMachineType("a3-highgpu-1g");
  ASSERT_TRUE(a3.has_value());
  EXPECT_EQ(a3->gpus, 1u);
  EXPECT_EQ(a3->gpu_model, "H100");
  EXPECT_EQ(a3->vcpus, 26u);
  EXPECT_FALSE(KnownMachineType("n2d-standard-").has_value());
  EXPECT_FALSE(KnownMachineType("n2d-standard-4x").has_value());
  EXPECT_FALSE(KnownMachineType("custom-fake-6").has_value());
}

}  // namespace
}  // namespace pp::providers::gcp
