// The libvirt provider: one pod VM per sandbox on a libvirt host (local or remote URI), plain or
// confidential (AMD SEV-SNP, Intel TDX).
//
// Per VM it makes, in the configured storage pool, a qcow2 overlay `<name>-root.qcow2` on the base
// volume and a NoCloud ISO `<name>-cidata.iso` (uploaded from memory), defines and starts the
// domain, and waits for the VM's address in the network's DHCP leases. The instance id is the
// domain UUID; the owner (node, sandbox) is kept in the domain's <metadata> so ListInstances finds
// every VM of a node after the adaptor lost its state. Any failure undoes what the call made.
//
// Flags and environment keep cloud-api-adaptor's names (reference/caa.md section 6); additions:
// LIBVIRT_DOMAIN_TYPE (auto: kvm only when a probe guest really runs under KVM), LIBVIRT_CVM_FIRMWARE,
// LIBVIRT_TDX_QGS_SOCKET, LIBVIRT_IP_TIMEOUT. The launch security comes from the pod's
// machine_type annotation when it names one (none, sev-snp, tdx, auto), else from
// LIBVIRT_LAUNCH_SECURITY, else from DISABLECVM (true: none; false: auto). A confidential VM that
// the host cannot run is an error, never a plain VM.
#pragma once

#include <memory>
#include <string>

#include "providers/libvirt/domain_xml.h"
#include "providers/provider.h"

namespace pp::providers::libvirt {

struct LibvirtConfig {
  std::string uri = "qemu:///system";
  std::string pool = "default";
  std::string network = "default";
  std::string base_volume = "podvm-base.qcow2";
  std::string launch_security;  // "", none, auto, sev-snp, tdx
  std::string firmware = "/usr/share/OVMF/OVMF_CODE_4M.fd";  // plain VMs; "none": BIOS
  unsigned vcpus = 2;
  unsigned long long memory_mib = 8192;
  std::string cpuset;
  unsigned long long root_disk_gib = 10;
  std::string data_dir = "/var/lib/libvirt/images";  // accepted for compatibility; the pool decides
  bool disable_cvm = true;
  std::string domain_type = "auto";  // auto, kvm, qemu
  std::string cvm_firmware;
  std::string tdx_qgs_socket = "/var/run/tdx-qgs/qgs.socket";
  std::string ip_timeout = "3m";
  std::string kvm_module_dir = "/sys/module";  // tests point it elsewhere
};

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

// Checks the configuration (messages name the flag and variable).
Result<void> ValidateConfig(const LibvirtConfig& config);

Result<std::unique_ptr<Provider>> MakeLibvirtProvider(LibvirtConfig config);

std::unique_ptr<ProviderFactory> MakeLibvirtFactory();

}  // namespace pp::providers::libvirt
