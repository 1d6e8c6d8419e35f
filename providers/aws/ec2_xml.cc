#include "providers/aws/ec2_xml.h"

#include <libxml/parser.h>
#include <libxml/tree.h>

#include <charconv>
#include <ctime>
#include <memory>
#include <mutex>

namespace pp::providers::aws {
namespace {

struct DocFree {
  void operator()(xmlDoc* d) const { xmlFreeDoc(d); }
};
using Doc = std::unique_ptr<xmlDoc, DocFree>;

// Parses without network access, DTD loading or entity substitution (XML_PARSE_NOENT is not
// set), refuses any document with a DTD, and is silent: errors are reported by our caller.
Doc Read(std::string_view xml) {
  static std::once_flag once;
  std::call_once(once, [] { xmlInitParser(); });
  if (xml.size() > static_cast<std::size_t>(INT32_MAX)) return nullptr;
  Doc doc(
      xmlReadMemory(xml.data(), static_cast<int>(xml.size()), "response.xml", nullptr,
                    XML_PARSE_NONET | XML_PARSE_NOERROR | XML_PARSE_NOWARNING | XML_PARSE_NOCDATA));
  // AWS never sends a document type declaration; one can only be an attack (entity expansion).
  if (doc && (doc->intSubset != nullptr || doc->extSubset != nullptr)) return nullptr;
  return doc;
}

bool Named(const xmlNode* n, std::string_view name) {
  return n != nullptr && n->type == XML_ELEMENT_NODE && n->name != nullptr &&
         std::string_view(reinterpret_cast<const char*>(n->name)) == name;
}

const xmlNode* Child(const xmlNode* n, std::string_view name) {
  if (n == nullptr) return nullptr;
  for (const xmlNode* c = n->children; c != nullptr; c = c->next) {
    if (Named(c, name)) return c;
  }
  return nullptr;
}

// Follows a path of child names.
const xmlNode* Path(const xmlNode* n, std::initializer_list<std::string_view> names) {
  for (std::string_view name : names) n = Child(n, name);
  return n;
}

std::vector<const xmlNode*> Items(const xmlNode* set) {
  std::vector<const xmlNode*> out;
  if (set == nullptr) return out;
  for (const xmlNode* c = set->children; c != nullptr; c = c->next) {
    if (Named(c, "item")) out.push_back(c);
  }
  return out;
}

// The text directly inside an element (trimmed of surrounding whitespace).
std::string Text(const xmlNode* n) {
  std::string out;
  if (n == nullptr) return out;
  for (const xmlNode* c = n->children; c != nullptr; c = c->next) {
    if ((c->type == XML_TEXT_NODE || c->type == XML_CDATA_SECTION_NODE) && c->content != nullptr) {
      out += reinterpret_cast<const char*>(c->content);
    }
  }
  const auto first = out.find_first_not_of(" \t\r\n");
  if (first == std::string::npos) return "";
  return out.substr(first, out.find_last_not_of(" \t\r\n") - first + 1);
}

std::string TextAt(const xmlNode* n, std::initializer_list<std::string_view> names) {
  return Text(Path(n, names));
}

template <typename T>
bool Number(const std::string& text, T& out) {
  if (text.empty()) return false;
  const auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), out);
  return ec == std::errc() && ptr == text.data() + text.size();
}

// The document's root when its local name is one of `roots`; else sets `error`.
const xmlNode* Root(const Doc& doc, std::initializer_list<std::string_view> roots,
                    std::string_view what, std::string& error) {
  if (!doc) {
    error = "malformed " + std::string(what) + " response: not XML";
    return nullptr;
  }
  const xmlNode* root = xmlDocGetRootElement(doc.get());
  for (std::string_view r : roots) {
    if (Named(root, r)) return root;
  }
  error = "malformed " + std::string(what) + " response: unexpected root element";
  return nullptr;
}

bool ReadInstance(const xmlNode* item, Ec2Instance& out, std::string& error) {
  out.id = TextAt(item, {"instanceId"});
  if (out.id.empty()) {
    error = "an instance without instanceId";
    return false;
  }
  out.state = TextAt(item, {"instanceState", "name"});
  out.instance_type = TextAt(item, {"instanceType"});
  out.private_ip = TextAt(item, {"privateIpAddress"});
  out.public_ip = TextAt(item, {"ipAddress"});
  out.state_reason = TextAt(item, {"stateReason", "message"});
  for (const xmlNode* tag : Items(Child(item, "tagSet"))) {
    const std::string key = TextAt(tag, {"key"});
    if (key.empty()) {
      error = "a tag without key";
      return false;
    }
    out.tags[key] = TextAt(tag, {"value"});
  }
  return true;
}

}  // namespace

std::optional<Ec2Error> ParseErrorXml(std::string_view xml) {
  const Doc doc = Read(xml);
  if (!doc) return std::nullopt;
  const xmlNode* root = xmlDocGetRootElement(doc.get());
  const xmlNode* error = nullptr;
  std::string request_id;
  if (Named(root, "Response")) {  // EC2
    error = Path(root, {"Errors", "Error"});
    request_id = TextAt(root, {"RequestID"});
  } else if (Named(root, "ErrorResponse")) {  // STS and the other Query services
    error = Child(root, "Error");
    request_id = TextAt(root, {"RequestId"});
  }
  if (error == nullptr) return std::nullopt;
  Ec2Error out{TextAt(error, {"Code"}), TextAt(error, {"Message"}), request_id};
  if (out.code.empty()) return std::nullopt;
  return out;
}

std::optional<Ec2InstancePage> ParseInstancesXml(std::string_view xml, std::string& error) {
  const Doc doc = Read(xml);
  const xmlNode* root =
      Root(doc, {"DescribeInstancesResponse", "RunInstancesResponse"}, "instances", error);
  if (root == nullptr) return std::nullopt;
  Ec2InstancePage page;
  std::vector<const xmlNode*> items;
  if (Named(root, "RunInstancesResponse")) {
    items = Items(Child(root, "instancesSet"));
    if (items.empty()) {
      error = "malformed RunInstances response: no instance";
      return std::nullopt;
    }
  } else {
    for (const xmlNode* reservation : Items(Child(root, "reservationSet"))) {
      for (const xmlNode* item : Items(Child(reservation, "instancesSet"))) items.push_back(item);
    }
    page.next_token = TextAt(root, {"nextToken"});
  }
  for (const xmlNode* item : items) {
    Ec2Instance instance;
    if (!ReadInstance(item, instance, error)) {
      error = "malformed instances response: " + error;
      return std::nullopt;
    }
    page.instances.push_back(std::move(instance));
  }
  return page;
}

std::optional<std::vector<std::string>> ParseTerminateXml(std::string_view xml,
                                                          std::string& error) {
  const Doc doc = Read(xml);
  const xmlNode* root = Root(doc, {"TerminateInstancesResponse"}, "TerminateInstances", error);
  if (root == nullptr) return std::nullopt;
  std::vector<std::string> ids;
  for (const xmlNode* item : Items(Child(root, "instancesSet"))) {
    std::string id = TextAt(item, {"instanceId"});
    if (id.empty()) {
      error = "malformed TerminateInstances response: an instance without instanceId";
      return std::nullopt;
    }
    ids.push_back(std::move(id));
  }
  return ids;
}

std::optional<Ec2InstanceTypePage> ParseInstanceTypesXml(std::string_view xml, std::string& error) {
  const Doc doc = Read(xml);
  const xmlNode* root =
      Root(doc, {"DescribeInstanceTypesResponse"}, "DescribeInstanceTypes", error);
  if (root == nullptr) return std::nullopt;
  Ec2InstanceTypePage page;
  page.next_token = TextAt(root, {"nextToken"});
  for (const xmlNode* item : Items(Child(root, "instanceTypeSet"))) {
    Ec2InstanceTypeInfo t;
    t.name = TextAt(item, {"instanceType"});
    if (t.name.empty() || !Number(TextAt(item, {"vCpuInfo", "defaultVCpus"}), t.vcpus) ||
        !Number(TextAt(item, {"memoryInfo", "sizeInMiB"}), t.memory_mib)) {
      error = "malformed DescribeInstanceTypes response: a type without name, vCPUs or memory";
      return std::nullopt;
    }
    for (const xmlNode* gpu : Items(Path(item, {"gpuInfo", "gpus"}))) {
      unsigned count = 0;
      if (!Number(TextAt(gpu, {"count"}), count) || count > 1024) {
        error = "malformed DescribeInstanceTypes response: a GPU count that is not a number";
        return std::nullopt;
      }
      t.gpus += count;
      if (t.gpu_model.empty()) t.gpu_model = TextAt(gpu, {"name"});
    }
    for (const xmlNode* f : Items(Path(item, {"processorInfo", "supportedFeatures"}))) {
      if (Text(f) == "amd-sev-snp") t.sev_snp = true;
    }
    page.types.push_back(std::move(t));
  }
  return page;
}

std::optional<std::vector<Ec2Image>> ParseImagesXml(std::string_view xml, std::string& error) {
  const Doc doc = Read(xml);
  const xmlNode* root = Root(doc, {"DescribeImagesResponse"}, "DescribeImages", error);
  if (root == nullptr) return std::nullopt;
  std::vector<Ec2Image> images;
  for (const xmlNode* item : Items(Child(root, "imagesSet"))) {
    Ec2Image image;
    image.id = TextAt(item, {"imageId"});
    image.root_device_name = TextAt(item, {"rootDeviceName"});
    for (const xmlNode* bdm : Items(Child(item, "blockDeviceMapping"))) {
      if (TextAt(bdm, {"deviceName"}) != image.root_device_name) continue;
      const std::string size = TextAt(bdm, {"ebs", "volumeSize"});
      if (!size.empty() && !Number(size, image.root_volume_gib)) {
        error = "malformed DescribeImages response: a volume size that is not a number";
        return std::nullopt;
      }
    }
    images.push_back(std::move(image));
  }
  return images;
}

std::optional<StsCredentials> ParseAssumeRoleWithWebIdentityXml(std::string_view xml,
                                                                std::string& error) {
  const Doc doc = Read(xml);
  const xmlNode* root =
      Root(doc, {"AssumeRoleWithWebIdentityResponse"}, "AssumeRoleWithWebIdentity", error);
  if (root == nullptr) return std::nullopt;
  const xmlNode* c = Path(root, {"AssumeRoleWithWebIdentityResult", "Credentials"});
  StsCredentials out;
  out.access_key_id = TextAt(c, {"AccessKeyId"});
  out.secret_access_key = TextAt(c, {"SecretAccessKey"});
  out.session_token = TextAt(c, {"SessionToken"});
  const auto expiration = ParseIso8601(TextAt(c, {"Expiration"}));
  if (out.access_key_id.empty() || out.secret_access_key.empty() || out.session_token.empty() ||
      !expiration) {
    error = "malformed AssumeRoleWithWebIdentity response: incomplete Credentials";
    return std::nullopt;
  }
  out.expiration = *expiration;
  return out;
}

std::optional<std::chrono::system_clock::time_point> ParseIso8601(std::string_view text) {
  // YYYY-MM-DDTHH:MM:SS[.fff](Z|+00:00)
  if (text.size() < 20 || text[4] != '-' || text[7] != '-' ||
      (text[10] != 'T' && text[10] != 't') || text[13] != ':' || text[16] != ':') {
    return std::nullopt;
  }
  const auto num = [&](std::size_t pos, std::size_t len, int& out) {
    const auto [ptr, ec] = std::from_chars(text.data() + pos, text.data() + pos + len, out);
    return ec == std::errc() && ptr == text.data() + pos + len;
  };
  std::tm tm{};
  int year = 0, month = 0;
  if (!num(0, 4, year) || !num(5, 2, month) || !num(8, 2, tm.tm_mday) || !num(11, 2, tm.tm_hour) ||
      !num(14, 2, tm.tm_min) || !num(17, 2, tm.tm_sec)) {
    return std::nullopt;
  }
  if (month < 1 || month > 12 || tm.tm_mday < 1 || tm.tm_mday > 31 || tm.tm_hour > 23 ||
      tm.tm_min > 59 || tm.tm_sec > 60 || year < 1970) {
    return std::nullopt;
  }
  std::string_view rest = text.substr(19);
  if (!rest.empty() && rest[0] == '.') {
    std::size_t i = 1;
    while (i < rest.size() && rest[i] >= '0' && rest[i] <= '9') ++i;
    rest = rest.substr(i);
  }
  if (rest != "Z" && rest != "z" && rest != "+00:00") return std::nullopt;
  tm.tm_year = year - 1900;
  tm.tm_mon = month - 1;
  return std::chrono::system_clock::from_time_t(timegm(&tm));
}

}  // namespace pp::providers::aws
