#include "providers/libvirt/plan.h"

#include <algorithm>
#include <cctype>
#include <filesystem>

namespace pp::providers::libvirt {
namespace {

// What a launch-security request names, and who asked for it (for the error message).
struct SecurityRequest {
  std::string value;  // none, auto, sev-snp, tdx
  std::string source;
};

std::string Lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return std::tolower(c); });
  return s;
}

bool IsSecurityName(std::string_view v) { return v == "none" || v == "auto" || v == "sev-snp" || v == "tdx"; }

}  // namespace

bool IsLaunchSecurityName(std::string_view value) { return IsSecurityName(Lower(std::string(value))); }

Result<DomainSpec> PlanDomain(const LibvirtConfig& config, const InstanceSpec& spec, const HostFacts& host) {
  // The node's choice: LIBVIRT_LAUNCH_SECURITY when set, else DISABLECVM (true: none, false: auto).
  // A node that makes confidential VMs makes only those; a pod may name which kind (or ask for the
  // host's choice) but never step down to a plain VM, and a plain node refuses confidential asks.
  SecurityRequest request;
  if (!config.launch_security.empty()) {
    request = {Lower(config.launch_security), "LIBVIRT_LAUNCH_SECURITY=" + config.launch_security};
  } else {
    request = {config.disable_cvm ? "none" : "auto", config.disable_cvm ? "DISABLECVM=true" : "DISABLECVM=false"};
  }
  if (const std::string pod = Lower(spec.instance_type); IsSecurityName(pod)) {
    if (pod != "none" && request.value == "none") {
      return Fail(Code::kFailedPrecondition, "libvirt: the pod's machine_type annotation asks for a confidential VM (",
                  pod, ") but this node makes plain VMs only (", request.source, ")");
    }
    if (pod == "none" && request.value != "none") {
      return Fail(Code::kFailedPrecondition, "libvirt: the pod's machine_type annotation asks for a plain VM but this "
                  "node makes confidential VMs only (", request.source, ")");
    }
    request = {pod, "the pod's machine_type annotation"};
  }

  DomainSpec d;
  d.name = spec.name;
  d.owner = spec.owner;
  d.pod_name = spec.pod_name;
  d.pod_namespace = spec.pod_namespace;
  d.vcpus = spec.vcpus ? spec.vcpus : config.vcpus;
  d.memory_mib = spec.memory_mib ? spec.memory_mib : config.memory_mib;
  d.cpuset = config.cpuset;
  d.network = config.network;
  d.domain_type = host.domain_type;
  d.firmware = config.firmware == "none" ? "" : config.firmware;

  const HostSecurity& hs = host.security;
  if (request.value == "auto") {
    if (hs.sev_snp) {
      request.value = "sev-snp";
    } else if (hs.tdx) {
      request.value = "tdx";
    } else {
      return Fail(Code::kFailedPrecondition, "libvirt: ", request.source,
                  " asks for a confidential VM, but this host can run neither SEV-SNP (", hs.snp_missing,
                  ") nor TDX (", hs.tdx_missing, "); not creating a plain VM instead");
    }
  }
  std::size_t binding_size = 0;
  if (request.value == "sev-snp") {
    if (!hs.sev_snp) {
      return Fail(Code::kFailedPrecondition, "libvirt: ", request.source, " asks for SEV-SNP, but this host cannot run it: ",
                  hs.snp_missing, "; not creating a plain VM instead");
    }
    d.security = LaunchSecurity::kSevSnp;
    d.cbitpos = hs.cbitpos;
    d.reduced_phys_bits = hs.reduced_phys_bits;
    binding_size = 32;
  } else if (request.value == "tdx") {
    if (!hs.tdx) {
      return Fail(Code::kFailedPrecondition, "libvirt: ", request.source, " asks for TDX, but this host cannot run it: ",
                  hs.tdx_missing, "; not creating a plain VM instead");
    }
    if (config.cvm_firmware.empty()) {
      return Fail(Code::kFailedPrecondition, "libvirt: TDX needs its firmware (TDVF): set LIBVIRT_CVM_FIRMWARE");
    }
    d.security = LaunchSecurity::kTdx;
    std::error_code ec;
    if (std::filesystem::exists(config.tdx_qgs_socket, ec)) d.qgs_socket = config.tdx_qgs_socket;
    binding_size = 48;
  } else if (request.value != "none") {
    return Fail(Code::kInvalidArgument, "libvirt: unknown launch security '", request.value, "' from ", request.source,
                " (none, auto, sev-snp or tdx)");
  }
  if (d.security != LaunchSecurity::kNone) {
    d.domain_type = "kvm";
    d.cvm_firmware = config.cvm_firmware;
    if (!spec.initdata.empty()) {
      // Bind the initdata to the hardware: the TEE reports its digest, the verifier compares.
      auto binding = InitdataBinding(spec.initdata, binding_size);
      if (!binding) return std::unexpected(binding.error());
      (d.security == LaunchSecurity::kSevSnp ? d.host_data : d.mr_config_id) = std::move(*binding);
    }
  }
  return d;
}

}  // namespace pp::providers::libvirt
