#include <gtest/gtest.h>

#include "providers/libvirt/libvirt_provider.h"

namespace pp::providers::libvirt {
namespace {

HostFacts PlainHost() {
  HostFacts h;
  h.domain_type = "qemu";
  h.security.snp_missing = "libvirt reports no SEV support";
  h.security.tdx_missing = "libvirt reports no TDX support";
  return h;
}

HostFacts SnpHost() {
  HostFacts h;
  h.domain_type = "kvm";
  h.security.sev_snp = true;
  h.security.cbitpos = 51;
  h.security.reduced_phys_bits = 1;
  h.security.tdx_missing = "no TDX";
  return h;
}

HostFacts TdxHost() {
  HostFacts h;
  h.domain_type = "kvm";
  h.security.tdx = true;
  h.security.snp_missing = "no SEV";
  return h;
}

InstanceSpec Pod(std::string machine_type = "") {
  InstanceSpec s;
  s.name = "podvm-web-12345678";
  s.owner = {"node-a", "1234567890abcdef"};
  s.pod_name = "web";
  s.pod_namespace = "default";
  s.instance_type = std::move(machine_type);
  return s;
}

const std::string kInitdata = "version = \"0.1.0\"\nalgorithm = \"sha384\"\n[data]\n\"aa.toml\" = \"x\"\n";

TEST(PlanDomain, DefaultsArePlainVmsWithTheConfiguredSize) {
  LibvirtConfig c;
  auto plan = PlanDomain(c, Pod(), PlainHost());
  ASSERT_TRUE(plan.has_value()) << plan.error().ToString();
  EXPECT_EQ(plan->security, LaunchSecurity::kNone);
  EXPECT_EQ(plan->domain_type, "qemu");
  EXPECT_EQ(plan->vcpus, 2u);
  EXPECT_EQ(plan->memory_mib, 8192u);
  EXPECT_EQ(plan->firmware, "/usr/share/OVMF/OVMF_CODE_4M.fd");
  InstanceSpec sized = Pod();
  sized.vcpus = 1;
  sized.memory_mib = 512;
  c.firmware = "none";
  plan = PlanDomain(c, sized, PlainHost());
  ASSERT_TRUE(plan.has_value());
  EXPECT_EQ(plan->vcpus, 1u);
  EXPECT_EQ(plan->memory_mib, 512u);
  EXPECT_EQ(plan->firmware, "") << "\"none\" boots with BIOS";
}

TEST(PlanDomain, ConfidentialRequestOnAPlainHostIsRefusedNeverDowngraded) {
  LibvirtConfig c;
  c.disable_cvm = false;
  for (const char* asked : {"sev-snp", "tdx", "auto"}) {
    auto plan = PlanDomain(c, Pod(asked), PlainHost());
    ASSERT_FALSE(plan.has_value()) << asked;
    EXPECT_EQ(plan.error().code, Code::kFailedPrecondition);
    EXPECT_NE(plan.error().message.find("not creating a plain VM"), std::string::npos) << plan.error().message;
    EXPECT_NE(plan.error().message.find("machine_type"), std::string::npos) << "names who asked";
  }
  c.launch_security = "sev-snp";
  auto plan = PlanDomain(c, Pod(), PlainHost());
  ASSERT_FALSE(plan.has_value());
  EXPECT_NE(plan.error().message.find("LIBVIRT_LAUNCH_SECURITY"), std::string::npos);
  EXPECT_NE(plan.error().message.find("no SEV support"), std::string::npos) << "says why the host cannot";
  c.launch_security.clear();
  plan = PlanDomain(c, Pod(), PlainHost());  // DISABLECVM=false alone means auto
  ASSERT_FALSE(plan.has_value());
  EXPECT_NE(plan.error().message.find("DISABLECVM=false"), std::string::npos);
}

TEST(PlanDomain, DisableCvmRefusesAPodAskingForOne) {
  LibvirtConfig c;  // DISABLECVM=true
  auto plan = PlanDomain(c, Pod("sev-snp"), SnpHost());
  ASSERT_FALSE(plan.has_value());
  EXPECT_EQ(plan.error().code, Code::kFailedPrecondition);
  EXPECT_NE(plan.error().message.find("DISABLECVM=true"), std::string::npos);
  // The operator's explicit choice wins over the default, and pods may then name it.
  c.launch_security = "sev-snp";
  plan = PlanDomain(c, Pod(), SnpHost());
  ASSERT_TRUE(plan.has_value()) << plan.error().ToString();
  EXPECT_EQ(plan->security, LaunchSecurity::kSevSnp);
  plan = PlanDomain(c, Pod("SEV-SNP"), SnpHost());
  ASSERT_TRUE(plan.has_value()) << "names are matched without case";
  EXPECT_EQ(plan->security, LaunchSecurity::kSevSnp);
}

TEST(PlanDomain, AConfidentialNodeNeverStepsDownToAPlainVm) {
  LibvirtConfig c;
  c.launch_security = "sev-snp";
  auto plan = PlanDomain(c, Pod("none"), SnpHost());
  ASSERT_FALSE(plan.has_value());
  EXPECT_EQ(plan.error().code, Code::kFailedPrecondition);
  EXPECT_NE(plan.error().message.find("confidential VMs only"), std::string::npos) << plan.error().message;
  c.launch_security.clear();
  c.disable_cvm = false;
  EXPECT_FALSE(PlanDomain(c, Pod("None"), SnpHost()).has_value());
  // A machine_type that names no launch security (a cloud instance type) leaves the node's choice.
  plan = PlanDomain(c, Pod("m6a.large"), SnpHost());
  ASSERT_TRUE(plan.has_value());
  EXPECT_EQ(plan->security, LaunchSecurity::kSevSnp);
}

TEST(PlanDomain, SnpTakesCapabilitiesAndBindsInitdata) {
  LibvirtConfig c;
  c.disable_cvm = false;
  InstanceSpec pod = Pod("sev-snp");
  pod.initdata = kInitdata;
  auto plan = PlanDomain(c, pod, SnpHost());
  ASSERT_TRUE(plan.has_value()) << plan.error().ToString();
  EXPECT_EQ(plan->security, LaunchSecurity::kSevSnp);
  EXPECT_EQ(plan->domain_type, "kvm");
  EXPECT_EQ(plan->cbitpos, 51u);
  EXPECT_EQ(plan->reduced_phys_bits, 1u);
  auto binding = InitdataBinding(kInitdata, 32);
  ASSERT_TRUE(binding.has_value());
  EXPECT_EQ(plan->host_data, *binding);
  EXPECT_TRUE(plan->mr_config_id.empty());
}

TEST(PlanDomain, TdxNeedsItsFirmwareAndBindsInitdata) {
  LibvirtConfig c;
  c.disable_cvm = false;
  InstanceSpec pod = Pod("tdx");
  pod.initdata = kInitdata;
  auto plan = PlanDomain(c, pod, TdxHost());
  ASSERT_FALSE(plan.has_value());
  EXPECT_NE(plan.error().message.find("LIBVIRT_CVM_FIRMWARE"), std::string::npos);
  c.cvm_firmware = "/usr/share/ovmf/OVMF.inteltdx.fd";
  plan = PlanDomain(c, pod, TdxHost());
  ASSERT_TRUE(plan.has_value()) << plan.error().ToString();
  EXPECT_EQ(plan->security, LaunchSecurity::kTdx);
  EXPECT_EQ(plan->mr_config_id.size(), 48u);
  EXPECT_TRUE(BuildDomainXml([&] {
                auto d = *plan;
                d.root_disk = "/r.qcow2";
                d.cidata = "/c.iso";
                return d;
              }())
                  .has_value());
}

TEST(PlanDomain, AutoPrefersSnpThenTdx) {
  LibvirtConfig c;
  c.disable_cvm = false;
  c.cvm_firmware = "/fw.fd";
  auto snp = PlanDomain(c, Pod("auto"), SnpHost());
  ASSERT_TRUE(snp.has_value());
  EXPECT_EQ(snp->security, LaunchSecurity::kSevSnp);
  auto tdx = PlanDomain(c, Pod("auto"), TdxHost());
  ASSERT_TRUE(tdx.has_value());
  EXPECT_EQ(tdx->security, LaunchSecurity::kTdx);
  // A plain node accepts a pod that asks for a plain VM.
  LibvirtConfig plain_node;
  auto plain = PlanDomain(plain_node, Pod("none"), SnpHost());
  ASSERT_TRUE(plain.has_value());
  EXPECT_EQ(plain->security, LaunchSecurity::kNone);
}

TEST(PlanDomain, BadInitdataIsRefused) {
  LibvirtConfig c;
  c.disable_cvm = false;
  InstanceSpec pod = Pod("sev-snp");
  pod.initdata = "version = \"9\"\n";
  auto plan = PlanDomain(c, pod, SnpHost());
  ASSERT_FALSE(plan.has_value());
  EXPECT_EQ(plan.error().code, Code::kInvalidArgument);
}

TEST(LibvirtConfig, ValidationNamesTheVariable) {
  LibvirtConfig c;
  EXPECT_TRUE(ValidateConfig(c).has_value());
  c.cpuset = "0-3,x";
  EXPECT_NE(ValidateConfig(c).error().message.find("LIBVIRT_CPUSET"), std::string::npos);
  c = {};
  c.launch_security = "s390-pv";
  EXPECT_NE(ValidateConfig(c).error().message.find("s390x"), std::string::npos);
  c = {};
  c.ip_timeout = "soon";
  EXPECT_NE(ValidateConfig(c).error().message.find("LIBVIRT_IP_TIMEOUT"), std::string::npos);
  c = {};
  c.pool.clear();
  EXPECT_NE(ValidateConfig(c).error().message.find("LIBVIRT_POOL"), std::string::npos);
  c = {};
  c.cpuset = "0-3,8";
  EXPECT_TRUE(ValidateConfig(c).has_value());
}

}  // namespace
}  // namespace pp::providers::libvirt
