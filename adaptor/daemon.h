// The cloud-api-adaptor daemon: serves the hypervisor socket until SIGINT or SIGTERM.
//
// Start: load sandbox records, listen on the socket (0660), verify the provider if asked, and
// delete this node's instances that no record accounts for. Stop: graceful server shutdown within
// the grace period; StartVMs still running give up and delete what they created; a second signal
// exits at once. Pod VMs of recorded sandboxes are kept: a restarted adaptor picks them up.
#pragma once

#include <memory>

#include "adaptor/flags.h"
#include "providers/provider.h"

namespace pp::adaptor {

// Returns the process exit code.
int RunDaemon(const Config& config, std::unique_ptr<providers::Provider> provider, std::string provider_name);

// `cloud-api-adaptor <provider> [flags] | help | version` over the providers in `registry`.
// `connect_agents` false leaves out the agent path (test daemons whose instances have no VM).
int AdaptorMain(int argc, const char* const* argv, providers::Registry& registry, bool connect_agents = true);

}  // namespace pp::adaptor
