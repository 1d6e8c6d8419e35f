#include "providers/libvirt/factory.h"

#include <CLI/CLI.hpp>
#include <regex>

#include "common/base/go_flags.h"
#include "providers/libvirt/libvirt_provider.h"
#include "providers/libvirt/plan.h"

namespace pp::providers::libvirt {
namespace {

class LibvirtFactory final : public ProviderFactory {
 public:
  std::string_view Name() const override { return "libvirt"; }
  std::string_view Description() const override { return "pod VMs on a libvirt host (QEMU/KVM, SEV-SNP, TDX)"; }

  void AddFlags(CLI::App& app) override {
    LibvirtConfig& c = config_;
    app.add_option("--uri", c.uri, "libvirt connection URI")->envname("LIBVIRT_URI")->capture_default_str();
    app.add_option("--pool-name", c.pool, "storage pool of the base volume and the VMs' volumes")
        ->envname("LIBVIRT_POOL")
        ->capture_default_str();
    app.add_option("--network-name", c.network, "libvirt network the VMs join (DHCP gives their address)")
        ->envname("LIBVIRT_NET")
        ->capture_default_str();
    app.add_option("--vol-name", c.base_volume, "base volume (pod VM image) in the pool")
        ->envname("LIBVIRT_VOL_NAME")
        ->capture_default_str();
    app.add_option("--launch-security", c.launch_security, "none, auto, sev-snp or tdx")
        ->envname("LIBVIRT_LAUNCH_SECURITY");
    app.add_option("--firmware", c.firmware, "UEFI firmware of plain VMs; \"none\" boots with BIOS")
        ->envname("LIBVIRT_EFI_FIRMWARE")
        ->capture_default_str();
    app.add_option("--cpu", c.vcpus, "vCPUs of a VM when the pod does not say")
        ->envname("LIBVIRT_CPU")
        ->check(CLI::Range(1, 512))
        ->capture_default_str();
    app.add_option("--memory", c.memory_mib, "memory (MiB) of a VM when the pod does not say")
        ->envname("LIBVIRT_MEMORY")
        ->check(CLI::Range(64, 4 * 1024 * 1024))
        ->capture_default_str();
    app.add_option("--cpuset", c.cpuset, "host CPUs the vCPUs may run on, e.g. 0-3,8")->envname("LIBVIRT_CPUSET");
    app.add_option("--root-disk-size", c.root_disk_gib, "root disk size in GiB (at least the base volume's)")
        ->envname("LIBVIRT_ROOT_DISK_SIZE")
        ->capture_default_str();
    app.add_option("--data-dir", c.data_dir, "accepted for compatibility; volumes live in the pool")
        ->capture_default_str();
    app.add_option("--disable-cvm", c.disable_cvm, "create plain VMs unless asked otherwise (true/false)")
        ->envname("DISABLECVM")
        ->capture_default_str();
    app.add_option("--domain-type", c.domain_type, "auto (kvm when a probe guest runs under KVM), kvm or qemu")
        ->envname("LIBVIRT_DOMAIN_TYPE")
        ->check(CLI::IsMember({"auto", "kvm", "qemu"}))
        ->capture_default_str();
    app.add_option("--cvm-firmware", c.cvm_firmware, "firmware of confidential VMs (SNP: OVMF.amdsev.fd, TDX: TDVF)")
        ->envname("LIBVIRT_CVM_FIRMWARE");
    app.add_option("--tdx-qgs-socket", c.tdx_qgs_socket, "TDX quote generation service socket (used when present)")
        ->envname("LIBVIRT_TDX_QGS_SOCKET")
        ->capture_default_str();
    app.add_option("--ip-timeout", c.ip_timeout, "how long a new VM may take to get an address (Go duration)")
        ->envname("LIBVIRT_IP_TIMEOUT")
        ->capture_default_str();
  }

  Result<std::unique_ptr<Provider>> Create() override { return MakeLibvirtProvider(config_); }

 private:
  LibvirtConfig config_;
};

}  // namespace

Result<void> ValidateConfig(const LibvirtConfig& c) {
  if (c.uri.empty()) return Fail(Code::kInvalidArgument, "libvirt: -uri (LIBVIRT_URI) is empty");
  if (c.pool.empty()) return Fail(Code::kInvalidArgument, "libvirt: -pool-name (LIBVIRT_POOL) is empty");
  if (c.network.empty()) return Fail(Code::kInvalidArgument, "libvirt: -network-name (LIBVIRT_NET) is empty");
  if (c.base_volume.empty()) return Fail(Code::kInvalidArgument, "libvirt: -vol-name (LIBVIRT_VOL_NAME) is empty");
  if (c.vcpus == 0) return Fail(Code::kInvalidArgument, "libvirt: -cpu (LIBVIRT_CPU) must be positive");
  if (c.memory_mib == 0) return Fail(Code::kInvalidArgument, "libvirt: -memory (LIBVIRT_MEMORY) must be positive");
  if (!c.cpuset.empty() && !std::regex_match(c.cpuset, std::regex(R"(^(\d+(-\d+)?)(,\d+(-\d+)?)*$)"))) {
    return Fail(Code::kInvalidArgument, "libvirt: -cpuset (LIBVIRT_CPUSET) '", c.cpuset,
                "' is not a CPU list like 0-3,8");
  }
  if (c.root_disk_gib > 64 * 1024) {
    return Fail(Code::kInvalidArgument, "libvirt: -root-disk-size (LIBVIRT_ROOT_DISK_SIZE) is in GiB; ",
                std::to_string(c.root_disk_gib), " is too large");
  }
  if (!c.launch_security.empty() && !IsLaunchSecurityName(c.launch_security)) {
    return Fail(Code::kInvalidArgument, "libvirt: -launch-security (LIBVIRT_LAUNCH_SECURITY) '", c.launch_security,
                "' is not one of none, auto, sev-snp, tdx",
                c.launch_security == "s390-pv" ? " (s390-pv is for s390x hosts, which this build does not support)" : "");
  }
  if (auto d = ParseGoDuration(c.ip_timeout); !d || *d <= std::chrono::nanoseconds(0)) {
    return Fail(Code::kInvalidArgument, "libvirt: -ip-timeout (LIBVIRT_IP_TIMEOUT) '", c.ip_timeout,
                "' is not a positive Go duration like 3m");
  }
  return {};
}

std::unique_ptr<ProviderFactory> MakeLibvirtFactory() { return std::make_unique<LibvirtFactory>(); }

}  // namespace pp::providers::libvirt
