#include "forwarder/agent_rewrites.h"

#include <gtest/gtest.h>

#include "adaptor/agent_proxy.h"
#include "agent/agent.pb.h"

namespace pp::forwarder {
namespace {

TEST(AgentRewritesTest, CreateSandboxLosesItsDnsAndKeepsTheRest) {
  grpc::CreateSandboxRequest request;
  request.set_hostname("pod");
  request.add_dns("nameserver 10.96.0.10");
  request.set_sandbox_id("sb");
  request.add_storages()->set_driver("image_guest_pull");
  std::string payload = request.SerializeAsString();
  ASSERT_TRUE(DropSandboxDns(payload));
  grpc::CreateSandboxRequest out;
  ASSERT_TRUE(out.ParseFromString(payload));
  EXPECT_EQ(out.dns_size(), 0);
  EXPECT_EQ(out.hostname(), "pod");
  EXPECT_EQ(out.sandbox_id(), "sb");
  EXPECT_EQ(out.storages(0).driver(), "image_guest_pull");
}

TEST(AgentRewritesTest, CreateContainerJoinsThePodNetnsOnce) {
  grpc::CreateContainerRequest request;
  request.set_container_id("c1");
  auto* linux = request.mutable_oci()->mutable_linux();
  auto* pid = linux->add_namespaces();
  pid->set_type("pid");
  auto* net = linux->add_namespaces();
  net->set_type("network");
  net->set_path("/proc/1/ns/net");
  (*request.mutable_oci()->mutable_annotations())["a"] = "b";
  std::string payload = request.SerializeAsString();
  ASSERT_TRUE(JoinPodNetns(payload, "/run/netns/podns"));
  grpc::CreateContainerRequest out;
  ASSERT_TRUE(out.ParseFromString(payload));
  ASSERT_EQ(out.oci().linux().namespaces_size(), 2);
  EXPECT_EQ(out.oci().linux().namespaces(0).type(), "pid");
  EXPECT_EQ(out.oci().linux().namespaces(1).type(), "network");
  EXPECT_EQ(out.oci().linux().namespaces(1).path(), "/run/netns/podns");
  EXPECT_EQ(out.oci().annotations().at("a"), "b");
  EXPECT_EQ(out.container_id(), "c1");
}

TEST(AgentRewritesTest, UndecodableRequestsAreRefusedNotForwarded) {
  std::string garbage = "\xff\xff\xff";
  EXPECT_EQ(DropSandboxDns(garbage).error().code, Code::kInvalidArgument);
  EXPECT_EQ(JoinPodNetns(garbage, "/x").error().code, Code::kInvalidArgument);
  EXPECT_EQ(adaptor::AddGpuCdiAnnotation(garbage).error().code, Code::kInvalidArgument);
}

TEST(AgentRewritesTest, NodeSideAddsTheGpuCdiAnnotation) {
  grpc::CreateContainerRequest request;
  request.set_container_id("c1");
  (*request.mutable_oci()->mutable_annotations())["keep"] = "me";
  std::string payload = request.SerializeAsString();
  ASSERT_TRUE(adaptor::AddGpuCdiAnnotation(payload));
  grpc::CreateContainerRequest out;
  ASSERT_TRUE(out.ParseFromString(payload));
  EXPECT_EQ(out.oci().annotations().at("cdi.k8s.io/peer-pods"), "nvidia.com/gpu=all");
  EXPECT_EQ(out.oci().annotations().at("keep"), "me");
}

}  // namespace
}  // namespace pp::forwarder
