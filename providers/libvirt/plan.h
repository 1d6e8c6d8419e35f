// PlanDomain: the pure decision of what domain a pod gets on a host (no I/O), and the host facts
// it decides from.
#pragma once

#include <string>
#include <string_view>

#include "providers/libvirt/domain_xml.h"
#include "providers/libvirt/factory.h"
#include "providers/provider.h"

namespace pp::providers::libvirt {

// What the provider learns about its host once: the domain type it will use and what confidential
// guests the host can run.
struct HostFacts {
  std::string domain_type;  // kvm or qemu
  HostSecurity security;
};

// The domain a pod gets on such a host (everything but the disk paths): vCPUs and memory from the
// pod or the configuration, the launch security from the pod's machine_type annotation,
// LIBVIRT_LAUNCH_SECURITY or DISABLECVM, the initdata bound to SNP hostData / TDX mrConfigId.
// FAILED_PRECONDITION when a confidential VM is asked for and the host cannot run it, or when
// confidential VMs are disabled: never a plain VM instead.
Result<DomainSpec> PlanDomain(const LibvirtConfig& config, const InstanceSpec& spec, const HostFacts& host);

// True for none, auto, sev-snp and tdx, in any case.
bool IsLaunchSecurityName(std::string_view value);

}  // namespace pp::providers::libvirt
