// The services the kata shim (and CAA's peer-pod controller) call on the hypervisor socket:
// hypervisor.Hypervisor {CreateVM, StartVM, StopVM, Version} and podvminfo.PodVMInfo {GetInfo}.
// Thin: each method decodes, asks the SandboxManager, and encodes.
#pragma once

#include "adaptor/sandbox_manager.h"
#include "common/ttrpc/server.h"

namespace pp::adaptor {

inline constexpr std::string_view kHypervisorService = "hypervisor.Hypervisor";
inline constexpr std::string_view kPodVMInfoService = "podvminfo.PodVMInfo";

// Registers both services on `server`; `manager` must outlive it.
void RegisterHypervisorService(ttrpc::Server& server, SandboxManager& manager);

}  // namespace pp::adaptor
