#include "providers/libvirt/domain_xml.h"

#include <libxml/parser.h>
#include <libxml/tree.h>
#include <libxml/xmlsave.h>
#include <libxml/xpath.h>
#include <libxml/xpathInternals.h>

#include <charconv>
#include <fmt/format.h>
#include <memory>
#include <utility>

#include "common/base/file.h"
#include "common/podvm/encoding.h"
#include "common/podvm/initdata.h"

namespace pp::providers::libvirt {
namespace {

struct DocFree {
  void operator()(xmlDoc* doc) const { xmlFreeDoc(doc); }
};
struct XPathContextFree {
  void operator()(xmlXPathContext* ctx) const { xmlXPathFreeContext(ctx); }
};
struct XPathObjectFree {
  void operator()(xmlXPathObject* obj) const { xmlXPathFreeObject(obj); }
};
using Doc = std::unique_ptr<xmlDoc, DocFree>;
using XPathContext = std::unique_ptr<xmlXPathContext, XPathContextFree>;
using XPathObject = std::unique_ptr<xmlXPathObject, XPathObjectFree>;

const xmlChar* X(const char* s) { return reinterpret_cast<const xmlChar*>(s); }

// A thin builder over libxml2's tree API: text and attribute values are escaped by libxml2.
class Element {
 public:
  explicit Element(xmlNode* node) : node_(node) {}

  Element Child(const char* name, const std::string& text = {}, xmlNs* ns = nullptr) {
    return Element(xmlNewTextChild(node_, ns, X(name), text.empty() ? nullptr : X(text.c_str())));
  }
  Element& Attr(const char* name, const std::string& value) {
    xmlNewProp(node_, X(name), X(value.c_str()));
    return *this;
  }
  xmlNode* get() const { return node_; }

 private:
  xmlNode* node_;
};

// A new document whose root element is `root`.
std::pair<Doc, Element> NewDocument(const char* root) {
  Doc doc(xmlNewDoc(X("1.0")));
  xmlNode* node = xmlNewNode(nullptr, X(root));
  xmlDocSetRootElement(doc.get(), node);
  return {std::move(doc), Element(node)};
}

std::string Serialize(xmlDoc* doc) {
  xmlBuffer* buffer = xmlBufferCreate();
  xmlSaveCtxt* save = xmlSaveToBuffer(buffer, "UTF-8", XML_SAVE_FORMAT | XML_SAVE_NO_DECL);
  xmlSaveDoc(save, doc);
  xmlSaveClose(save);
  std::string out(reinterpret_cast<const char*>(xmlBufferContent(buffer)), xmlBufferLength(buffer));
  xmlBufferFree(buffer);
  return out;
}

std::string Hex(std::uint64_t value, int width) { return fmt::format("0x{:0{}x}", value, width); }

// Parses untrusted-ish XML from libvirtd: no network, no entity expansion, bounded by libxml2's
// default limits.
Result<Doc> Parse(std::string_view xml, std::string_view what) {
  Doc doc(xmlReadMemory(xml.data(), static_cast<int>(xml.size()), nullptr, nullptr,
                        XML_PARSE_NONET | XML_PARSE_NOERROR | XML_PARSE_NOWARNING));
  if (!doc) return Fail(Code::kInvalidArgument, "cannot parse ", what, " XML");
  return doc;
}

class Query {
 public:
  explicit Query(xmlDoc* doc) : ctx_(xmlXPathNewContext(doc)) {
    xmlXPathRegisterNs(ctx_.get(), X("pp"), X(std::string(kMetadataUri).c_str()));
  }
  // string(expr): "" when nothing matches.
  std::string String(const std::string& expr) const {
    XPathObject obj(xmlXPathEvalExpression(X(("string(" + expr + ")").c_str()), ctx_.get()));
    if (!obj || obj->type != XPATH_STRING || obj->stringval == nullptr) return {};
    return reinterpret_cast<const char*>(obj->stringval);
  }
  bool Exists(const std::string& expr) const {
    XPathObject obj(xmlXPathEvalExpression(X(("boolean(" + expr + ")").c_str()), ctx_.get()));
    return obj && obj->type == XPATH_BOOLEAN && obj->boolval != 0;
  }
  std::vector<std::string> Strings(const std::string& expr) const {
    std::vector<std::string> out;
    XPathObject obj(xmlXPathEvalExpression(X(expr.c_str()), ctx_.get()));
    if (!obj || obj->type != XPATH_NODESET || obj->nodesetval == nullptr) return out;
    for (int i = 0; i < obj->nodesetval->nodeNr; ++i) {
      xmlChar* content = xmlNodeGetContent(obj->nodesetval->nodeTab[i]);
      if (content != nullptr) out.emplace_back(reinterpret_cast<const char*>(content));
      xmlFree(content);
    }
    return out;
  }

 private:
  XPathContext ctx_;
};

Result<unsigned> ParseUnsigned(const std::string& text, std::string_view what) {
  unsigned value = 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc() || end != text.data() + text.size() || text.empty()) {
    return Fail(Code::kInvalidArgument, "domain capabilities: ", what, " is not a number");
  }
  return value;
}

// /sys/module/<module>/parameters/<param> reads Y or 1.
bool KvmParameterOn(const std::string& dir, std::string_view module, std::string_view param) {
  auto value = ReadFile(fmt::format("{}/{}/parameters/{}", dir, module, param), 16);
  return value && (value->starts_with("Y") || value->starts_with("1"));
}

bool IsConfidential(const DomainSpec& spec) { return spec.security != LaunchSecurity::kNone; }

void AddMetadata(Element domain, const DomainSpec& spec) {
  Element metadata = domain.Child("metadata");
  xmlNode* instance = xmlNewChild(metadata.get(), nullptr, X("instance"), nullptr);
  xmlNs* ns = xmlNewNs(instance, X(std::string(kMetadataUri).c_str()), X("peerpod"));
  xmlSetNs(instance, ns);
  Element owner(instance);
  owner.Child("node", spec.owner.node, ns);
  owner.Child("sandbox", spec.owner.sandbox_id, ns);
  owner.Child("pod", {}, ns).Attr("namespace", spec.pod_namespace).Attr("name", spec.pod_name);
}

void AddOs(Element domain, const DomainSpec& spec) {
  Element os = domain.Child("os");
  os.Child("type", "hvm").Attr("arch", "x86_64").Attr("machine", "q35");
  switch (spec.security) {
    case LaunchSecurity::kNone:
      if (!spec.firmware.empty()) {
        os.Attr("firmware", "efi");
        os.Child("loader", spec.firmware).Attr("readonly", "yes").Attr("type", "pflash");
      }
      break;
    case LaunchSecurity::kSevSnp: {
      // Stateless: no varstore, the whole firmware is measured. Without a path libvirt picks the
      // SNP-capable image from its firmware descriptors.
      os.Attr("firmware", "efi");
      Element loader = os.Child("loader", spec.cvm_firmware);
      loader.Attr("stateless", "yes");
      if (!spec.cvm_firmware.empty()) loader.Attr("readonly", "yes").Attr("type", "pflash");
      break;
    }
    case LaunchSecurity::kTdx:
      // TDVF is loaded with -bios (type rom, libvirt's default): pflash does not work for TDs.
      os.Child("loader", spec.cvm_firmware);
      break;
  }
}

void AddFeatures(Element domain, const DomainSpec& spec) {
  Element features = domain.Child("features");
  features.Child("acpi");
  features.Child("apic");
  if (spec.security == LaunchSecurity::kTdx) {
    features.Child("ioapic").Attr("driver", "qemu");  // split irqchip
    features.Child("smm").Attr("state", "off");
  }
  if (spec.domain_type == "kvm" && !IsConfidential(spec)) features.Child("vmport").Attr("state", "off");
}

// Virtio devices of confidential guests go through the (emulated) IOMMU: shared memory only.
void Iommu(Element driver, const DomainSpec& spec) {
  if (IsConfidential(spec)) driver.Attr("iommu", "on");
}

void AddDevices(Element domain, const DomainSpec& spec) {
  Element devices = domain.Child("devices");

  Element root = devices.Child("disk");
  root.Attr("type", "file").Attr("device", "disk");
  Iommu(root.Child("driver").Attr("name", "qemu").Attr("type", "qcow2").Attr("discard", "unmap"), spec);
  root.Child("source").Attr("file", spec.root_disk);
  root.Child("target").Attr("dev", "vda").Attr("bus", "virtio");
  root.Child("boot").Attr("order", "1");

  Element cidata = devices.Child("disk");
  cidata.Attr("type", "file").Attr("device", "disk");
  Iommu(cidata.Child("driver").Attr("name", "qemu").Attr("type", "raw"), spec);
  cidata.Child("source").Attr("file", spec.cidata);
  cidata.Child("target").Attr("dev", "vdb").Attr("bus", "virtio");
  cidata.Child("readonly");

  Element nic = devices.Child("interface");
  nic.Attr("type", "network");
  nic.Child("source").Attr("network", spec.network);
  nic.Child("model").Attr("type", "virtio");
  if (IsConfidential(spec)) {
    Iommu(nic.Child("driver"), spec);
    nic.Child("rom").Attr("enabled", "no");
  }

  devices.Child("serial").Attr("type", "pty").Child("target").Attr("port", "0");
  devices.Child("console").Attr("type", "pty").Child("target").Attr("type", "serial").Attr("port", "0");

  Element rng = devices.Child("rng");
  rng.Attr("model", "virtio");
  rng.Child("backend", "/dev/urandom").Attr("model", "random");
  if (IsConfidential(spec)) Iommu(rng.Child("driver"), spec);

  // No ballooning: confidential memory cannot be handed back, and plain pod VMs do not need it.
  devices.Child("memballoon").Attr("model", "none");
}

void AddLaunchSecurity(Element domain, const DomainSpec& spec) {
  if (spec.security == LaunchSecurity::kSevSnp) {
    Element ls = domain.Child("launchSecurity");
    ls.Attr("type", "sev-snp");
    ls.Child("cbitpos", std::to_string(spec.cbitpos));
    ls.Child("reducedPhysBits", std::to_string(spec.reduced_phys_bits));
    ls.Child("policy", Hex(spec.snp_policy, 8));
    if (!spec.host_data.empty()) ls.Child("hostData", podvm::Base64Encode(spec.host_data));
  } else if (spec.security == LaunchSecurity::kTdx) {
    Element ls = domain.Child("launchSecurity");
    ls.Attr("type", "tdx");
    ls.Child("policy", Hex(spec.tdx_policy, 8));
    if (!spec.mr_config_id.empty()) ls.Child("mrConfigId", podvm::Base64Encode(spec.mr_config_id));
    if (!spec.qgs_socket.empty()) ls.Child("quoteGenerationService").Attr("path", spec.qgs_socket);
  }
}

Result<void> CheckSpec(const DomainSpec& spec) {
  if (spec.name.empty() || spec.root_disk.empty() || spec.cidata.empty() || spec.network.empty()) {
    return Fail(Code::kInvalidArgument, "domain spec: name, disks and network are required");
  }
  if (spec.domain_type != "kvm" && spec.domain_type != "qemu") {
    return Fail(Code::kInvalidArgument, "domain type must be kvm or qemu, not ", spec.domain_type);
  }
  if (spec.vcpus == 0 || spec.memory_mib == 0) return Fail(Code::kInvalidArgument, "vCPUs and memory must be positive");
  if (IsConfidential(spec) && spec.domain_type != "kvm") {
    return Fail(Code::kInvalidArgument, ToString(spec.security), " guests need KVM; TCG cannot run them");
  }
  if (spec.security == LaunchSecurity::kSevSnp) {
    if (spec.cbitpos == 0) return Fail(Code::kInvalidArgument, "SEV-SNP needs cbitpos from the domain capabilities");
    if (!spec.host_data.empty() && spec.host_data.size() != 32) {
      return Fail(Code::kInvalidArgument, "SEV-SNP hostData must be 32 bytes, got ", std::to_string(spec.host_data.size()));
    }
    if ((spec.snp_policy & (1ULL << 17)) == 0) {
      return Fail(Code::kInvalidArgument, "SEV-SNP policy bit 17 is reserved and must be 1");
    }
  }
  if (spec.security == LaunchSecurity::kTdx) {
    if (spec.cvm_firmware.empty()) return Fail(Code::kInvalidArgument, "TDX needs a TDVF firmware path");
    if (!spec.mr_config_id.empty() && spec.mr_config_id.size() != 48) {
      return Fail(Code::kInvalidArgument, "TDX mrConfigId must be 48 bytes, got ", std::to_string(spec.mr_config_id.size()));
    }
  }
  return {};
}

}  // namespace

std::string_view ToString(LaunchSecurity security) {
  switch (security) {
    case LaunchSecurity::kNone: return "none";
    case LaunchSecurity::kSevSnp: return "sev-snp";
    case LaunchSecurity::kTdx: return "tdx";
  }
  return "?";
}

Result<HostSecurity> ParseDomainCapabilities(std::string_view xml, const std::string& kvm_module_dir) {
  auto doc = Parse(xml, "domain capabilities");
  if (!doc) return std::unexpected(doc.error());
  const Query q(doc->get());
  if (!q.Exists("/domainCapabilities")) return Fail(Code::kInvalidArgument, "not a <domainCapabilities> document");

  HostSecurity host;
  host.emulator = q.String("/domainCapabilities/path");
  const std::string domain = q.String("/domainCapabilities/domain");
  const std::string sectypes =
      "/domainCapabilities/features/launchSecurity[@supported='yes']/enum[@name='sectype']/value";
  auto listed = [&](const char* type) {
    for (const auto& value : q.Strings(sectypes)) {
      if (value == type) return true;
    }
    return false;
  };

  if (domain != "kvm") {
    host.snp_missing = host.tdx_missing = "the capabilities are not for KVM (domain type '" + domain + "')";
  } else {
    if (q.String("/domainCapabilities/features/sev/@supported") != "yes") {
      host.snp_missing = "libvirt reports no SEV support (<sev supported='no'>)";
    } else if (!listed("sev-snp")) {
      host.snp_missing = "libvirt does not list sev-snp as a launch security type (needs libvirt >= 10.5, QEMU >= 9.1)";
    } else if (!KvmParameterOn(kvm_module_dir, "kvm_amd", "sev_snp")) {
      host.snp_missing = "KVM has SEV-SNP off (" + kvm_module_dir + "/kvm_amd/parameters/sev_snp)";
    } else {
      auto cbitpos = ParseUnsigned(q.String("/domainCapabilities/features/sev/cbitpos"), "sev/cbitpos");
      auto reduced = ParseUnsigned(q.String("/domainCapabilities/features/sev/reducedPhysBits"), "sev/reducedPhysBits");
      if (!cbitpos) return std::unexpected(cbitpos.error());
      if (!reduced) return std::unexpected(reduced.error());
      host.sev_snp = true;
      host.cbitpos = *cbitpos;
      host.reduced_phys_bits = *reduced;
    }
    if (q.String("/domainCapabilities/features/tdx/@supported") != "yes" && !listed("tdx")) {
      host.tdx_missing = "libvirt reports no TDX support (needs libvirt >= 11.6, QEMU >= 10.1)";
    } else if (!KvmParameterOn(kvm_module_dir, "kvm_intel", "tdx")) {
      host.tdx_missing = "KVM has TDX off (" + kvm_module_dir + "/kvm_intel/parameters/tdx)";
    } else {
      host.tdx = true;
    }
  }
  return host;
}

Result<std::string> BuildDomainXml(const DomainSpec& spec) {
  if (auto ok = CheckSpec(spec); !ok) return std::unexpected(ok.error());
  auto [doc, domain] = NewDocument("domain");
  domain.Attr("type", spec.domain_type);
  domain.Child("name", spec.name);
  domain.Child("description", fmt::format("peer-pod VM of pod {}/{}, sandbox {}", spec.pod_namespace, spec.pod_name,
                                          spec.owner.sandbox_id));
  AddMetadata(domain, spec);
  domain.Child("memory", std::to_string(spec.memory_mib)).Attr("unit", "MiB");
  Element vcpu = domain.Child("vcpu", std::to_string(spec.vcpus));
  vcpu.Attr("placement", "static");
  if (!spec.cpuset.empty()) vcpu.Attr("cpuset", spec.cpuset);
  if (spec.security == LaunchSecurity::kTdx) {
    Element backing = domain.Child("memoryBacking");
    backing.Child("source").Attr("type", "anonymous");
    backing.Child("access").Attr("mode", "private");
  }
  AddOs(domain, spec);
  AddFeatures(domain, spec);
  if (IsConfidential(spec)) {
    domain.Child("cpu").Attr("mode", "host-passthrough");  // QEMU refuses named models for TDs
  } else if (spec.domain_type == "kvm") {
    domain.Child("cpu").Attr("mode", "host-model");
  }
  Element clock = domain.Child("clock");
  clock.Attr("offset", "utc");
  if (spec.security == LaunchSecurity::kTdx) clock.Child("timer").Attr("name", "hpet").Attr("present", "no");
  domain.Child("on_poweroff", "destroy");
  // A TD cannot be reset in place: a guest reboot ends it, and the pod with it.
  domain.Child("on_reboot", spec.security == LaunchSecurity::kTdx ? "destroy" : "restart");
  domain.Child("on_crash", "destroy");
  if (spec.security == LaunchSecurity::kTdx) {
    Element pm = domain.Child("pm");
    pm.Child("suspend-to-mem").Attr("enabled", "no");
    pm.Child("suspend-to-disk").Attr("enabled", "no");
  }
  AddDevices(domain, spec);
  AddLaunchSecurity(domain, spec);
  return Serialize(doc.get());
}

std::string BuildOverlayVolumeXml(const std::string& name, unsigned long long capacity_bytes,
                                  const std::string& backing_path, const std::string& backing_format) {
  auto [doc, volume] = NewDocument("volume");
  volume.Child("name", name);
  volume.Child("capacity", std::to_string(capacity_bytes)).Attr("unit", "bytes");
  volume.Child("target").Child("format").Attr("type", "qcow2");
  Element backing = volume.Child("backingStore");
  backing.Child("path", backing_path);
  backing.Child("format").Attr("type", backing_format);
  return Serialize(doc.get());
}

std::string BuildRawVolumeXml(const std::string& name, unsigned long long bytes) {
  auto [doc, volume] = NewDocument("volume");
  volume.Child("name", name);
  volume.Child("capacity", std::to_string(bytes)).Attr("unit", "bytes");
  volume.Child("allocation", "0").Attr("unit", "bytes");
  volume.Child("target").Child("format").Attr("type", "raw");
  return Serialize(doc.get());
}

Result<std::string> ParseVolumeFormat(std::string_view xml) {
  auto doc = Parse(xml, "volume");
  if (!doc) return std::unexpected(doc.error());
  std::string format = Query(doc->get()).String("/volume/target/format/@type");
  return format.empty() ? std::string("raw") : format;
}

Result<DomainFacts> ParseDomainXml(std::string_view xml) {
  auto doc = Parse(xml, "domain");
  if (!doc) return std::unexpected(doc.error());
  const Query q(doc->get());
  if (!q.Exists("/domain")) return Fail(Code::kInvalidArgument, "not a <domain> document");
  DomainFacts facts;
  facts.name = q.String("/domain/name");
  facts.uuid = q.String("/domain/uuid");
  if (q.Exists("/domain/metadata/pp:instance")) {
    facts.owner = Owner{q.String("/domain/metadata/pp:instance/pp:node"),
                        q.String("/domain/metadata/pp:instance/pp:sandbox")};
  }
  facts.disk_files = q.Strings("/domain/devices/disk[@type='file']/source/@file");
  return facts;
}

Result<std::string> InitdataBinding(std::string_view toml, std::size_t size) {
  podvm::Initdata initdata;
  std::string error;
  if (!podvm::ParseInitdataToml(toml, initdata, error)) {
    return Fail(Code::kInvalidArgument, "initdata: ", error);
  }
  std::string digest;
  for (std::size_t i = 0; i + 1 < initdata.digest_hex.size(); i += 2) {
    digest.push_back(static_cast<char>(std::stoi(initdata.digest_hex.substr(i, 2), nullptr, 16)));
  }
  digest.resize(size, '\0');
  return digest;
}

}  // namespace pp::providers::libvirt
