#include "adaptor/sandbox_request.h"

#include <gtest/gtest.h>

namespace pp::adaptor {
namespace {

hypervisor::CreateVMRequest Valid(std::string id = "sandbox-1") {
  hypervisor::CreateVMRequest request;
  request.set_id(std::move(id));
  auto& a = *request.mutable_annotations();
  a[std::string(kAnnotationPodName)] = "nginx";
  a[std::string(kAnnotationPodNamespace)] = "default";
  a[std::string(kAnnotationMachineType)] = "";
  a[std::string(kAnnotationImage)] = "";
  a[std::string(kAnnotationVcpus)] = "2";
  a[std::string(kAnnotationMemory)] = "2048";
  a[std::string(kAnnotationInitdata)] = "";
  a[std::string(kAnnotationGpus)] = "0";
  a[std::string(kAnnotationGpuModel)] = "";
  request.set_networknamespacepath("/var/run/netns/cni-1");
  return request;
}

Code CodeOf(const hypervisor::CreateVMRequest& request) {
  auto parsed = ParseCreateVM(request);
  return parsed ? Code::kOk : parsed.error().code;
}

TEST(SandboxRequestTest, ParsesTheNineAnnotationsTheShimSends) {
  auto parsed = ParseCreateVM(Valid());
  ASSERT_TRUE(parsed) << parsed.error().ToString();
  EXPECT_EQ(parsed->pod_name, "nginx");
  EXPECT_EQ(parsed->pod_namespace, "default");
  EXPECT_EQ(parsed->vcpus, 2u);
  EXPECT_EQ(parsed->memory_mib, 2048u);
  EXPECT_EQ(parsed->gpus, 0u);
  EXPECT_EQ(parsed->netns_path, "/var/run/netns/cni-1");
}

TEST(SandboxRequestTest, SandboxIdBecomesAPathSoItIsStrict) {
  for (const std::string& bad : std::vector<std::string>{"", "a/b", "..", "a b", "a\nb", "ü", std::string(129, 'a')}) {
    auto request = Valid(bad);
    auto parsed = ParseCreateVM(request);
    ASSERT_FALSE(parsed) << bad;
    EXPECT_EQ(parsed.error().code, Code::kInvalidArgument);
    EXPECT_NE(parsed.error().message.find("sandbox id"), std::string::npos);
  }
  EXPECT_EQ(CodeOf(Valid(std::string(128, 'A'))), Code::kOk);
  EXPECT_EQ(CodeOf(Valid("Az09_-")), Code::kOk);
}

TEST(SandboxRequestTest, PodNameAndNamespaceAreRequired) {
  for (auto key : {kAnnotationPodName, kAnnotationPodNamespace}) {
    auto missing = Valid();
    missing.mutable_annotations()->erase(std::string(key));
    EXPECT_EQ(CodeOf(missing), Code::kInvalidArgument);
    auto empty = Valid();
    (*empty.mutable_annotations())[std::string(key)] = "";
    auto parsed = ParseCreateVM(empty);
    ASSERT_FALSE(parsed);
    EXPECT_NE(parsed.error().message.find(std::string(key)), std::string::npos);
  }
}

TEST(SandboxRequestTest, SizesAreParsedWithBounds) {
  struct Case {
    std::string_view key;
    std::string value;
    Code code;
  };
  const Case cases[] = {
      {kAnnotationVcpus, "abc", Code::kInvalidArgument},     {kAnnotationVcpus, "-1", Code::kInvalidArgument},
      {kAnnotationVcpus, "1000000", Code::kInvalidArgument}, {kAnnotationVcpus, "2x", Code::kInvalidArgument},
      {kAnnotationVcpus, "", Code::kOk},                     {kAnnotationVcpus, "0", Code::kOk},
      {kAnnotationVcpus, "512", Code::kOk},                  {kAnnotationMemory, "1", Code::kInvalidArgument},
      {kAnnotationMemory, "99999999999", Code::kInvalidArgument},
      {kAnnotationMemory, "99999999999999999999999", Code::kInvalidArgument},
      {kAnnotationMemory, "64", Code::kOk},                  {kAnnotationGpus, "x", Code::kInvalidArgument},
      {kAnnotationGpus, "1000", Code::kInvalidArgument},     {kAnnotationGpus, "8", Code::kOk},
  };
  for (const auto& c : cases) {
    auto request = Valid();
    (*request.mutable_annotations())[std::string(c.key)] = c.value;
    EXPECT_EQ(CodeOf(request), c.code) << c.key << "=" << c.value;
  }
}

// A valid initdata document of exactly `n` bytes.
std::string InitdataOfSize(std::size_t n) {
  const std::string head = "version = \"0.1.0\"\nalgorithm = \"sha256\"\n[data]\n\"pad\" = \"";
  const std::string tail = "\"\n";
  return head + std::string(n - head.size() - tail.size(), 's') + tail;
}

TEST(SandboxRequestTest, InitdataIsBoundedAndNeverEchoed) {
  auto request = Valid();
  (*request.mutable_annotations())[std::string(kAnnotationInitdata)] = InitdataOfSize(64 * 1024);
  EXPECT_EQ(CodeOf(request), Code::kOk);
  (*request.mutable_annotations())[std::string(kAnnotationInitdata)] = InitdataOfSize(64 * 1024 + 1);
  auto parsed = ParseCreateVM(request);
  ASSERT_FALSE(parsed);
  EXPECT_EQ(parsed.error().code, Code::kInvalidArgument);
  EXPECT_EQ(parsed.error().message.find("sss"), std::string::npos);
}

TEST(SandboxRequestTest, InitdataMustBeAnInitdataDocument) {
  auto request = Valid();
  (*request.mutable_annotations())[std::string(kAnnotationInitdata)] = "secret [not toml";
  auto parsed = ParseCreateVM(request);
  ASSERT_FALSE(parsed);
  EXPECT_EQ(parsed.error().code, Code::kInvalidArgument);
  EXPECT_EQ(parsed.error().message.find("secret"), std::string::npos) << "the document is never echoed";
  (*request.mutable_annotations())[std::string(kAnnotationInitdata)] = "version = \"2\"\nalgorithm = \"sha256\"\n";
  EXPECT_EQ(CodeOf(request), Code::kInvalidArgument);
}

TEST(SandboxRequestTest, NetnsMustBeAbsoluteWhenGiven) {
  auto request = Valid();
  request.set_networknamespacepath("relative/path");
  EXPECT_EQ(CodeOf(request), Code::kInvalidArgument);
  request.set_networknamespacepath("");
  EXPECT_EQ(CodeOf(request), Code::kOk);
}

TEST(SandboxRequestTest, InstanceNameIsAValidHostName) {
  EXPECT_EQ(InstanceName("nginx", "0123456789abcdef"), "podvm-nginx-01234567");
  EXPECT_EQ(InstanceName("My_Pod.x", "ABCDEFGHxyz"), "podvm-my-pod-x-abcdefgh");
  const std::string long_name = InstanceName(std::string(300, 'p'), "0123456789");
  EXPECT_EQ(long_name.size(), 63u);
  EXPECT_TRUE(long_name.ends_with("-01234567"));
}

}  // namespace
}  // namespace pp::adaptor
