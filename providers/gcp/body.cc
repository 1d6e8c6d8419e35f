#include "providers/gcp/body.h"

#include <cstdint>
#include <cstdio>
#include <nlohmann/json.hpp>

#include "common/podvm/encoding.h"

namespace pp::providers::gcp {
namespace {

using Json = nlohmann::json;

bool LowerDigitOr(char c, std::string_view extra) {
  return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
         extra.find(c) != std::string_view::npos;
}

bool HasPathForm(std::string_view s) {
  return s.starts_with("projects/") || s.starts_with("/projects") || s.starts_with("https://") ||
         s.starts_with("http://");
}

}  // namespace

bool IsValidLabelKey(std::string_view key) {
  if (key.empty() || key.size() > 63 || key[0] < 'a' || key[0] > 'z') return false;
  for (char c : key) {
    if (!LowerDigitOr(c, "_-")) return false;
  }
  return true;
}

bool IsValidLabelValue(std::string_view value) {
  if (value.size() > 63) return false;
  for (char c : value) {
    if (!LowerDigitOr(c, "_-")) return false;
  }
  return true;
}

std::string LabelValue(std::string_view text) {
  std::string v;
  v.reserve(text.size());
  for (char c : text) {
    const char lower = (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c;
    v.push_back(LowerDigitOr(lower, "_-") ? lower : '-');
  }
  if (v.size() <= 63) return v;
  std::uint32_t h = 2166136261u;  // FNV-1a: stable across builds, enough to keep long names apart
  for (unsigned char c : text) h = (h ^ c) * 16777619u;
  char hex[9];
  std::snprintf(hex, sizeof hex, "%08x", h);
  return v.substr(0, 54) + "-" + hex;
}

bool IsValidInstanceName(std::string_view name) {
  if (name.empty() || name.size() > 63 || name[0] < 'a' || name[0] > 'z' || name.back() == '-')
    return false;
  for (char c : name) {
    if (!LowerDigitOr(c, "-")) return false;
  }
  return true;
}

bool IsValidZoneName(std::string_view zone) {
  const auto dash = zone.rfind('-');
  if (zone.size() > 63 || dash == std::string_view::npos || dash == 0 || dash + 1 >= zone.size())
    return false;
  for (char c : zone) {
    if (!LowerDigitOr(c, "-")) return false;
  }
  return zone[0] >= 'a' && zone[0] <= 'z';
}

std::string RegionOfZone(std::string_view zone) {
  const auto dash = zone.rfind('-');
  return std::string(dash == std::string_view::npos ? zone : zone.substr(0, dash));
}

std::string ResolveImage(std::string_view project, std::string_view image) {
  if (HasPathForm(image) || image.starts_with("global/")) return std::string(image);
  return "projects/" + std::string(project) + "/global/images/" + std::string(image);
}

std::pair<std::string, std::string> ImageProjectAndName(std::string_view project,
                                                        std::string_view image) {
  const std::string resolved = ResolveImage(project, image);
  std::string_view s = resolved;
  const auto images = s.rfind("/images/");
  const auto projects = s.find("projects/");
  std::string name(s.substr(s.rfind('/') + 1));
  if (images != std::string_view::npos && projects != std::string_view::npos && projects < images) {
    std::string_view rest = s.substr(projects + 9);
    return {std::string(rest.substr(0, rest.find('/'))), name};
  }
  return {std::string(project), name};
}

std::string ResolveNetwork(std::string_view network) {
  if (network.find('/') != std::string_view::npos) return std::string(network);
  return "global/networks/" + std::string(network);
}

std::string ResolveSubnetwork(std::string_view project, std::string_view zone,
                              std::string_view subnetwork) {
  if (subnetwork.empty() || HasPathForm(subnetwork) || subnetwork.starts_with("regions/"))
    return std::string(subnetwork);
  return "projects/" + std::string(project) + "/regions/" + RegionOfZone(zone) + "/subnetworks/" +
         std::string(subnetwork);
}

std::string BuildInstanceBody(const InstanceBodyParams& p) {
  Json init = {{"sourceImage", p.source_image},
               {"diskType", "zones/" + p.zone + "/diskTypes/" + p.disk_type}};
  if (p.disk_size_gb > 0)
    init["diskSizeGb"] = std::to_string(p.disk_size_gb);  // int64 travels as a string
  Json nic = {{"network", p.network}, {"stackType", "IPV4_ONLY"}};
  if (!p.subnetwork.empty()) nic["subnetwork"] = p.subnetwork;
  if (p.public_ip) {
    nic["accessConfigs"] = Json::array(
        {{{"type", "ONE_TO_ONE_NAT"}, {"name", "External NAT"}, {"networkTier", "STANDARD"}}});
  }
  Json labels = Json::object();
  for (const auto& [k, v] : p.extra_labels) labels[k] = v;
  labels[std::string(kNodeLabel)] = LabelValue(p.owner.node);
  labels[std::string(kSandboxLabel)] = LabelValue(p.owner.sandbox_id);
  Json body = {
      {"name", p.name},
      {"machineType", "zones/" + p.zone + "/machineTypes/" + p.machine_type},
      {"disks", Json::array({{{"boot", true},
                              {"autoDelete", true},
                              {"type", "PERSISTENT"},
                              {"initializeParams", init}}})},
      {"networkInterfaces", Json::array({nic})},
      {"metadata",
       {{"items", Json::array({{{"key", "user-data"}, {"value", podvm::Base64Encode(p.user_data)}},
                               {{"key", "user-data-encoding"}, {"value", "base64"}},
                               {{"key", kNodeLabel}, {"value", p.owner.node}},
                               {{"key", kSandboxLabel}, {"value", p.owner.sandbox_id}}})}}},
      {"labels", labels},
  };
  if (!p.confidential_type.empty()) {
    body["confidentialInstanceConfig"] = {{"enableConfidentialCompute", true},
                                          {"confidentialInstanceType", p.confidential_type}};
    // SEV-SNP runs on AMD Milan or later only (https://cloud.google.com/confidential-computing/
    // confidential-vm/docs/supported-configurations); CAA leaves this to chance.
    if (p.confidential_type == "SEV_SNP") body["minCpuPlatform"] = "AMD Milan";
  }
  // Confidential VMs and VMs with GPUs cannot live-migrate (same page; GPU docs).
  if (!p.confidential_type.empty() || p.terminate_on_maintenance) {
    body["scheduling"] = {{"onHostMaintenance", "TERMINATE"}};
  }
  return body.dump();
}

}  // namespace pp::providers::gcp
