// The libvirt provider's configuration: flags with cloud-api-adaptor's environment names (see
// libvirt_provider.h for the list and the additions), their validation, and the factory that
// declares them and makes the provider.
#pragma once

#include <memory>
#include <string>

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

// Checks the configuration (messages name the flag and variable).
Result<void> ValidateConfig(const LibvirtConfig& config);

std::unique_ptr<ProviderFactory> MakeLibvirtFactory();

}  // namespace pp::providers::libvirt
