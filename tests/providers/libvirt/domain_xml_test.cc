#include "providers/libvirt/domain_xml.h"

#include <gtest/gtest.h>
#include <sys/wait.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>

#include "common/base/file.h"
#include "providers/libvirt/cidata.h"
#include "tests/support/test_util.h"

namespace pp::providers::libvirt {
namespace {

const std::string kGoldenDir = std::string(PP_SOURCE_DIR) + "/tests/providers/libvirt/golden";
const std::string kCvmSchema = std::string(PP_SOURCE_DIR) + "/tests/providers/libvirt/domain-cvm.rng";

DomainSpec PlainSpec() {
  DomainSpec s;
  s.name = "podvm-nginx-5e1f0a2b";
  s.owner = {"worker-1", "5e1f0a2bc3d4e5f60718293a4b5c6d7e"};
  s.pod_namespace = "default";
  s.pod_name = "nginx";
  s.domain_type = "qemu";
  s.vcpus = 1;
  s.memory_mib = 512;
  s.root_disk = "/var/lib/libvirt/images/podvm-nginx-5e1f0a2b-root.qcow2";
  s.cidata = "/var/lib/libvirt/images/podvm-nginx-5e1f0a2b-cidata.iso";
  s.network = "default";
  return s;
}

DomainSpec SnpSpec() {
  DomainSpec s = PlainSpec();
  s.domain_type = "kvm";
  s.vcpus = 2;
  s.memory_mib = 4096;
  s.security = LaunchSecurity::kSevSnp;
  s.cbitpos = 51;
  s.reduced_phys_bits = 1;
  s.host_data = std::string(32, '\x11');
  return s;
}

DomainSpec TdxSpec() {
  DomainSpec s = PlainSpec();
  s.domain_type = "kvm";
  s.vcpus = 2;
  s.memory_mib = 4096;
  s.security = LaunchSecurity::kTdx;
  s.cvm_firmware = "/usr/share/ovmf/OVMF.inteltdx.fd";
  s.mr_config_id = std::string(48, '\x22');
  s.qgs_socket = "/var/run/tdx-qgs/qgs.socket";
  return s;
}

// Runs a command; its exit status (-1 when it could not run).
int Shell(const std::string& command) {
  const int status = std::system((command + " >/dev/null 2>&1").c_str());
  return status == -1 || !WIFEXITED(status) ? -1 : WEXITSTATUS(status);
}

// Compares with the golden file (PP_UPDATE_GOLDEN=1 rewrites it) and validates the document:
// with libvirt's own virt-xml-validate, or, for launch security types newer than the installed
// schema, with that schema extended by tests/providers/libvirt/domain-cvm.rng.
void CheckGolden(const std::string& name, const std::string& xml, bool installed_schema) {
  const std::string path = kGoldenDir + "/" + name;
  if (std::getenv("PP_UPDATE_GOLDEN") != nullptr) {
    ASSERT_TRUE(WriteFileAtomic(path, xml, 0644).has_value());
  }
  auto golden = ReadFile(path, 1 << 20);
  ASSERT_TRUE(golden.has_value()) << path;
  EXPECT_EQ(xml, *golden) << "regenerate with PP_UPDATE_GOLDEN=1 after checking the difference";

  pp::testing::TempDir dir;
  const std::string file = dir.path() + "/" + name;
  ASSERT_TRUE(WriteFileAtomic(file, xml, 0644).has_value());
  EXPECT_EQ(Shell("xmllint --noout --relaxng " + kCvmSchema + " " + file), 0) << name << " fails the schema";
  if (installed_schema) {
    EXPECT_EQ(Shell("virt-xml-validate " + file + " domain"), 0) << name << " fails virt-xml-validate";
  }
}

TEST(DomainXml, PlainTcgMatchesGoldenAndValidates) {
  auto xml = BuildDomainXml(PlainSpec());
  ASSERT_TRUE(xml.has_value()) << xml.error().ToString();
  CheckGolden("plain-tcg.xml", *xml, true);
  EXPECT_EQ(xml->find("<cpu"), std::string::npos) << "TCG guests keep QEMU's default CPU model";
  EXPECT_EQ(xml->find("launchSecurity"), std::string::npos);
}

TEST(DomainXml, PlainKvmUefiMatchesGoldenAndValidates) {
  DomainSpec s = PlainSpec();
  s.domain_type = "kvm";
  s.firmware = "/usr/share/OVMF/OVMF_CODE_4M.fd";
  s.cpuset = "0-3,8";
  auto xml = BuildDomainXml(s);
  ASSERT_TRUE(xml.has_value()) << xml.error().ToString();
  CheckGolden("plain-kvm-uefi.xml", *xml, true);
}

TEST(DomainXml, SevSnpMatchesGoldenAndValidates) {
  auto xml = BuildDomainXml(SnpSpec());
  ASSERT_TRUE(xml.has_value()) << xml.error().ToString();
  CheckGolden("sev-snp.xml", *xml, false);
  EXPECT_NE(xml->find("<launchSecurity type=\"sev-snp\">"), std::string::npos);
  EXPECT_NE(xml->find("<policy>0x00030000</policy>"), std::string::npos);
  EXPECT_NE(xml->find("<loader stateless=\"yes\"/>"), std::string::npos) << "libvirt picks the SNP firmware";
}

TEST(DomainXml, TdxMatchesGoldenAndValidates) {
  auto xml = BuildDomainXml(TdxSpec());
  ASSERT_TRUE(xml.has_value()) << xml.error().ToString();
  CheckGolden("tdx.xml", *xml, false);
  EXPECT_NE(xml->find("<loader>/usr/share/ovmf/OVMF.inteltdx.fd</loader>"), std::string::npos) << "-bios, not pflash";
  EXPECT_NE(xml->find("<access mode=\"private\"/>"), std::string::npos);
  EXPECT_NE(xml->find("<on_reboot>destroy</on_reboot>"), std::string::npos);
}

TEST(DomainXml, SchemaChecksCanFail) {
  // The validations above must be able to say no.
  auto tdx = BuildDomainXml(TdxSpec());
  auto plain = BuildDomainXml(PlainSpec());
  ASSERT_TRUE(tdx.has_value() && plain.has_value());
  const std::string b64 = "<mrConfigId>";
  std::string short_id = *tdx;
  const auto at = short_id.find(b64) + b64.size();
  short_id.replace(at, short_id.find('<', at) - at, "AAAA");  // 3 bytes, not 48
  std::string bad_plain = *plain;
  bad_plain.replace(bad_plain.find("<on_crash>destroy"), 17, "<on_crash>explode");
  pp::testing::TempDir dir;
  ASSERT_TRUE(WriteFileAtomic(dir.path() + "/tdx.xml", short_id, 0644).has_value());
  ASSERT_TRUE(WriteFileAtomic(dir.path() + "/plain.xml", bad_plain, 0644).has_value());
  EXPECT_NE(Shell("xmllint --noout --relaxng " + kCvmSchema + " " + dir.path() + "/tdx.xml"), 0);
  EXPECT_NE(Shell("virt-xml-validate " + dir.path() + "/plain.xml domain"), 0);
}

TEST(DomainXml, RefusesInconsistentSpecs) {
  DomainSpec s = SnpSpec();
  s.domain_type = "qemu";
  EXPECT_EQ(BuildDomainXml(s).error().code, Code::kInvalidArgument) << "no SNP under TCG";
  s = SnpSpec();
  s.host_data = "short";
  EXPECT_EQ(BuildDomainXml(s).error().code, Code::kInvalidArgument);
  s = SnpSpec();
  s.snp_policy = 0;
  EXPECT_EQ(BuildDomainXml(s).error().code, Code::kInvalidArgument) << "policy bit 17 must be set";
  s = SnpSpec();
  s.cbitpos = 0;
  EXPECT_EQ(BuildDomainXml(s).error().code, Code::kInvalidArgument);
  DomainSpec t = TdxSpec();
  t.cvm_firmware.clear();
  EXPECT_EQ(BuildDomainXml(t).error().code, Code::kInvalidArgument);
  t = TdxSpec();
  t.mr_config_id = std::string(32, 'x');
  EXPECT_EQ(BuildDomainXml(t).error().code, Code::kInvalidArgument);
  DomainSpec p = PlainSpec();
  p.domain_type = "xen";
  EXPECT_EQ(BuildDomainXml(p).error().code, Code::kInvalidArgument);
  p = PlainSpec();
  p.memory_mib = 0;
  EXPECT_EQ(BuildDomainXml(p).error().code, Code::kInvalidArgument);
}

TEST(DomainXml, EscapesNamesInsteadOfPastingThem) {
  DomainSpec s = PlainSpec();
  s.pod_name = "a<b>&\"c'";
  auto xml = BuildDomainXml(s);
  ASSERT_TRUE(xml.has_value());
  EXPECT_NE(xml->find("a&lt;b&gt;&amp;"), std::string::npos);
  auto facts = ParseDomainXml(*xml);
  ASSERT_TRUE(facts.has_value());
  ASSERT_TRUE(facts->owner.has_value());
  EXPECT_EQ(facts->owner->sandbox_id, s.owner.sandbox_id);
}

TEST(DomainXml, ParsesOwnerAndDisksBack) {
  auto xml = BuildDomainXml(TdxSpec());
  ASSERT_TRUE(xml.has_value());
  auto facts = ParseDomainXml(*xml);
  ASSERT_TRUE(facts.has_value()) << facts.error().ToString();
  EXPECT_EQ(facts->name, "podvm-nginx-5e1f0a2b");
  ASSERT_TRUE(facts->owner.has_value());
  EXPECT_EQ(*facts->owner, (Owner{"worker-1", "5e1f0a2bc3d4e5f60718293a4b5c6d7e"}));
  EXPECT_EQ(facts->disk_files, (std::vector<std::string>{TdxSpec().root_disk, TdxSpec().cidata}));

  auto foreign = ParseDomainXml("<domain type='kvm'><name>other</name><uuid>u</uuid></domain>");
  ASSERT_TRUE(foreign.has_value());
  EXPECT_FALSE(foreign->owner.has_value()) << "a domain without our metadata is not ours";
  EXPECT_FALSE(ParseDomainXml("<not xml").has_value());
  EXPECT_FALSE(ParseDomainXml("<network/>").has_value());
}

TEST(DomainXml, VolumeDocuments) {
  const std::string overlay = BuildOverlayVolumeXml("v-root.qcow2", 10ULL << 30, "/pool/base.qcow2", "qcow2");
  EXPECT_NE(overlay.find("<backingStore>"), std::string::npos);
  EXPECT_NE(overlay.find("<path>/pool/base.qcow2</path>"), std::string::npos);
  auto format = ParseVolumeFormat(overlay);
  ASSERT_TRUE(format.has_value());
  EXPECT_EQ(*format, "qcow2");
  auto raw = ParseVolumeFormat(BuildRawVolumeXml("v-cidata.iso", 4096));
  ASSERT_TRUE(raw.has_value());
  EXPECT_EQ(*raw, "raw");
  pp::testing::TempDir dir;
  ASSERT_TRUE(WriteFileAtomic(dir.path() + "/vol.xml", overlay, 0644).has_value());
  EXPECT_EQ(Shell("virt-xml-validate " + dir.path() + "/vol.xml storagevol"), 0);
}

class DomainCaps : public ::testing::Test {
 protected:
  // A fake /sys/module with the KVM parameters given.
  std::string Modules(bool snp, bool tdx) {
    for (const auto& [module, param, on] : {std::tuple{"kvm_amd", "sev_snp", snp}, std::tuple{"kvm_intel", "tdx", tdx}}) {
      std::filesystem::create_directories(dir_.path() + "/" + module + "/parameters");
      EXPECT_TRUE(WriteFileAtomic(dir_.path() + "/" + module + "/parameters/" + param, on ? "Y\n" : "N\n", 0644));
    }
    return dir_.path();
  }
  pp::testing::TempDir dir_;
};

constexpr const char* kSnpCaps = R"(<domainCapabilities>
  <path>/usr/bin/qemu-system-x86_64</path><domain>kvm</domain><machine>pc-q35-9.1</machine><arch>x86_64</arch>
  <features>
    <sev supported='yes'><cbitpos>51</cbitpos><reducedPhysBits>1</reducedPhysBits><maxGuests>15</maxGuests></sev>
    <launchSecurity supported='yes'><enum name='sectype'><value>sev</value><value>sev-snp</value></enum></launchSecurity>
  </features>
</domainCapabilities>)";

constexpr const char* kTdxCaps = R"(<domainCapabilities>
  <path>/usr/bin/qemu-system-x86_64</path><domain>kvm</domain>
  <features><sev supported='no'/><tdx supported='yes'/>
    <launchSecurity supported='yes'><enum name='sectype'><value>tdx</value></enum></launchSecurity></features>
</domainCapabilities>)";

TEST_F(DomainCaps, SnpHost) {
  auto host = ParseDomainCapabilities(kSnpCaps, Modules(true, false));
  ASSERT_TRUE(host.has_value()) << host.error().ToString();
  EXPECT_TRUE(host->sev_snp);
  EXPECT_EQ(host->cbitpos, 51u);
  EXPECT_EQ(host->reduced_phys_bits, 1u);
  EXPECT_FALSE(host->tdx);
  EXPECT_EQ(host->emulator, "/usr/bin/qemu-system-x86_64");
}

TEST_F(DomainCaps, SnpListedButKvmHasItOff) {
  auto host = ParseDomainCapabilities(kSnpCaps, Modules(false, false));
  ASSERT_TRUE(host.has_value());
  EXPECT_FALSE(host->sev_snp);
  EXPECT_NE(host->snp_missing.find("sev_snp"), std::string::npos) << host->snp_missing;
}

TEST_F(DomainCaps, TdxHostAndTheOldLibvirtThatOverreports) {
  auto host = ParseDomainCapabilities(kTdxCaps, Modules(false, true));
  ASSERT_TRUE(host.has_value());
  EXPECT_TRUE(host->tdx);
  EXPECT_FALSE(host->sev_snp);
  // libvirt < 11.10 said tdx supported whenever QEMU had it: KVM must agree.
  host = ParseDomainCapabilities(kTdxCaps, Modules(false, false));
  ASSERT_TRUE(host.has_value());
  EXPECT_FALSE(host->tdx);
  EXPECT_NE(host->tdx_missing.find("kvm_intel"), std::string::npos);
}

TEST_F(DomainCaps, ThisMachinesLibvirtHasNeither) {
  // Debian bookworm's libvirt 9.0 on a host without SEV or TDX, as virsh domcapabilities prints.
  constexpr const char* caps = R"(<domainCapabilities><path>/usr/bin/qemu-system-x86_64</path>
    <domain>kvm</domain><features><sev supported='no'/><sgx supported='no'/></features></domainCapabilities>)";
  auto host = ParseDomainCapabilities(caps, Modules(false, false));
  ASSERT_TRUE(host.has_value());
  EXPECT_FALSE(host->sev_snp);
  EXPECT_FALSE(host->tdx);
  EXPECT_FALSE(host->snp_missing.empty());
  EXPECT_FALSE(host->tdx_missing.empty());
  EXPECT_FALSE(ParseDomainCapabilities("<domain/>", Modules(false, false)).has_value());
}

TEST(InitdataBinding, TruncatesOrPadsTheDigest) {
  const std::string toml = "version = \"0.1.0\"\nalgorithm = \"sha384\"\n[data]\n\"aa.toml\" = \"x\"\n";
  auto snp = InitdataBinding(toml, 32);
  auto tdx = InitdataBinding(toml, 48);
  ASSERT_TRUE(snp.has_value()) << snp.error().ToString();
  ASSERT_TRUE(tdx.has_value());
  EXPECT_EQ(snp->size(), 32u);
  EXPECT_EQ(*snp, tdx->substr(0, 32)) << "SNP takes the first 32 bytes of the SHA-384";
  const std::string sha256 = "version = \"0.1.0\"\nalgorithm = \"sha256\"\n[data]\n";
  auto padded = InitdataBinding(sha256, 48);
  ASSERT_TRUE(padded.has_value());
  EXPECT_EQ(padded->substr(32), std::string(16, '\0')) << "a SHA-256 is zero-padded to 48 bytes";
  EXPECT_EQ(InitdataBinding("not toml [", 32).error().code, Code::kInvalidArgument);
}

TEST(Cidata, IsoCarriesTheFilesUnderTheirNames) {
  const std::string user_data = "#cloud-config\nwrite_files: []\n";
  auto iso = MakeCidataIso(user_data, "podvm-x-12345678");
  ASSERT_TRUE(iso.has_value()) << iso.error().ToString();
  EXPECT_EQ(iso->size() % 2048, 0u);
  EXPECT_EQ(iso->substr(0x8001, 5), "CD001");
  EXPECT_EQ(iso->substr(0x8028, 6), "cidata") << "NoCloud finds the seed by its volume label";
  pp::testing::TempDir dir;
  ASSERT_TRUE(WriteFileAtomic(dir.path() + "/seed.iso", *iso, 0600).has_value());
  // xorriso (an independent ISO 9660 reader) lists the Rock Ridge names and extracts user-data.
  EXPECT_EQ(Shell("xorriso -indev " + dir.path() + "/seed.iso -osirrox on -extract /user-data " + dir.path() +
                "/out"),
            0);
  auto out = ReadFile(dir.path() + "/out", 1 << 20);
  ASSERT_TRUE(out.has_value());
  EXPECT_EQ(*out, user_data);
}

}  // namespace
}  // namespace pp::providers::libvirt
