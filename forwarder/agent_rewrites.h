// The pod VM side's rewrites of agent calls (CAA's forwarder interceptor): the pod's DNS comes from
// the VM, and containers join the pod network namespace built for the VXLAN tunnel.
#pragma once

#include <string>

#include "common/base/error.h"

namespace pp::forwarder {

// grpc.CreateSandboxRequest: clears `dns`.
Result<void> DropSandboxDns(std::string& payload);

// grpc.CreateContainerRequest: appends {type: "network", path: netns_path} to OCI.Linux.Namespaces,
// replacing a network namespace already there.
Result<void> JoinPodNetns(std::string& payload, const std::string& netns_path);

}  // namespace pp::forwarder
