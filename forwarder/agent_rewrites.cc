#include "forwarder/agent_rewrites.h"

#include "agent/agent.pb.h"

namespace pp::forwarder {

Result<void> DropSandboxDns(std::string& payload) {
  grpc::CreateSandboxRequest request;
  if (!request.ParseFromString(payload)) return Fail(Code::kInvalidArgument, "CreateSandbox: cannot decode the request");
  request.clear_dns();
  payload = request.SerializeAsString();
  return {};
}

Result<void> JoinPodNetns(std::string& payload, const std::string& netns_path) {
  grpc::CreateContainerRequest request;
  if (!request.ParseFromString(payload)) {
    return Fail(Code::kInvalidArgument, "CreateContainer: cannot decode the request");
  }
  auto* namespaces = request.mutable_oci()->mutable_linux()->mutable_namespaces();
  for (int i = namespaces->size() - 1; i >= 0; --i) {
    if (namespaces->Get(i).type() == "network") namespaces->DeleteSubrange(i, 1);
  }
  auto* netns = namespaces->Add();
  netns->set_type("network");
  netns->set_path(netns_path);
  payload = request.SerializeAsString();
  return {};
}

}  // namespace pp::forwarder
