// The libvirt XML the provider writes and reads, built and parsed with libxml2: pod VM domains
// (plain, AMD SEV-SNP, Intel TDX), storage volumes, and the two documents it reads back (domain
// capabilities, and a domain's own XML for its owner tags and disks). No libvirt calls here, so
// every document can be checked byte for byte and against libvirt's schema.
// Facts: reference/caa.md section 6, reference/cc.md sections 1 and 3.7.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/base/error.h"
#include "providers/provider.h"

namespace pp::providers::libvirt {

enum class LaunchSecurity { kNone, kSevSnp, kTdx };

std::string_view ToString(LaunchSecurity security);

// The namespace of the owner tags in <metadata>.
inline constexpr std::string_view kMetadataUri = "https://confidentialcontainers.org/peerpods/libvirt/1";

// What the host's QEMU + libvirt + KVM can do for confidential guests, from
// virConnectGetDomainCapabilities(..., "q35", "kvm") and the KVM module parameters.
struct HostSecurity {
  std::string emulator;  // the QEMU binary the capabilities are for
  bool sev_snp = false;
  unsigned cbitpos = 0;
  unsigned reduced_phys_bits = 0;
  bool tdx = false;
  std::string snp_missing;  // why not, when !sev_snp
  std::string tdx_missing;  // why not, when !tdx
};

// `kvm_module_dir` is /sys/module: libvirt before 11.10 may report TDX where KVM cannot run it, so
// kvm_intel/parameters/tdx (and kvm_amd/parameters/sev_snp) must agree.
Result<HostSecurity> ParseDomainCapabilities(std::string_view xml, const std::string& kvm_module_dir);

struct DomainSpec {
  std::string name;
  Owner owner;
  std::string pod_namespace;
  std::string pod_name;
  std::string domain_type = "kvm";  // "kvm" or "qemu" (TCG)
  unsigned vcpus = 2;
  std::string cpuset;  // empty: no pinning
  unsigned long long memory_mib = 8192;
  std::string root_disk;  // path of the qcow2 overlay
  std::string cidata;     // path of the NoCloud ISO
  std::string network;    // libvirt network name
  std::string firmware;   // UEFI code for plain VMs; empty: BIOS

  LaunchSecurity security = LaunchSecurity::kNone;
  std::string cvm_firmware;  // SNP: empty lets libvirt pick a stateless image; TDX: required
  // SEV-SNP
  unsigned cbitpos = 0;
  unsigned reduced_phys_bits = 0;
  std::uint64_t snp_policy = 0x30000;  // SMT allowed + the reserved bit that must be 1
  std::string host_data;               // 32 raw bytes (the initdata binding), or empty
  // TDX
  std::uint64_t tdx_policy = 0x10000000;  // SEPT_VE_DISABLE
  std::string mr_config_id;               // 48 raw bytes (the initdata binding), or empty
  std::string qgs_socket;                 // quote generation service socket, or empty
};

// The domain XML for `spec`; INVALID_ARGUMENT when the spec is inconsistent (a TDX domain without
// firmware, a binding of the wrong size, ...).
Result<std::string> BuildDomainXml(const DomainSpec& spec);

// A qcow2 copy-on-write overlay of `backing_path` (format `backing_format`).
std::string BuildOverlayVolumeXml(const std::string& name, unsigned long long capacity_bytes,
                                  const std::string& backing_path, const std::string& backing_format);
// A raw volume of exactly `bytes` (the cidata ISO is uploaded into it).
std::string BuildRawVolumeXml(const std::string& name, unsigned long long bytes);

// From a volume's XML: its format type ("qcow2", "raw", ...).
Result<std::string> ParseVolumeFormat(std::string_view xml);

// From a domain's XML (virDomainGetXMLDesc).
struct DomainFacts {
  std::string name;
  std::string uuid;
  std::optional<Owner> owner;           // absent: not ours
  std::vector<std::string> disk_files;  // every <disk type='file'> source
};
Result<DomainFacts> ParseDomainXml(std::string_view xml);

// The initdata binding for a TEE register of `size` bytes: HASH(algorithm of the document) over
// the exact TOML bytes, truncated or zero-padded (reference/cc.md 3.7). INVALID_ARGUMENT for a
// document that is not valid initdata.
Result<std::string> InitdataBinding(std::string_view toml, std::size_t size);

}  // namespace pp::providers::libvirt
