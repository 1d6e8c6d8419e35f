#include "providers/azure/arm_json.h"

#include <charconv>
#include <nlohmann/json.hpp>

namespace pp::providers::azure {
namespace {

using nlohmann::json;

// The member `key` of `j` when `j` is an object holding one, else nullptr.
const json* Member(const json& j, std::string_view key) {
  if (!j.is_object()) return nullptr;
  const auto it = j.find(key);
  return it == j.end() ? nullptr : &*it;
}

std::string String(const json& j, std::string_view key) {
  const json* m = Member(j, key);
  return m && m->is_string() ? m->get<std::string>() : std::string();
}

const json* Path(const json& j, std::initializer_list<std::string_view> keys) {
  const json* at = &j;
  for (std::string_view key : keys) {
    at = Member(*at, key);
    if (!at) return nullptr;
  }
  return at;
}

bool Parse(std::string_view body, json& out, std::string& error, const char* what) {
  out = json::parse(body.begin(), body.end(), nullptr, /*allow_exceptions=*/false);
  if (out.is_discarded()) {
    error = std::string(what) + ": not JSON";
    return false;
  }
  if (!out.is_object()) {
    error = std::string(what) + ": not a JSON object";
    return false;
  }
  return true;
}

bool ErrorFrom(const json& j, ArmError& out) {
  const json* e = Member(j, "error");
  if (e && e->is_object() && Member(*e, "error")) e = Member(*e, "error");  // nested form
  const json& doc = e && e->is_object() ? *e : j;
  out.code = String(doc, "code");
  out.message = String(doc, "message");
  out.detail_codes.clear();
  if (const json* details = Member(doc, "details"); details && details->is_array()) {
    for (const json& d : *details) {
      if (std::string code = String(d, "code"); !code.empty())
        out.detail_codes.push_back(std::move(code));
    }
  }
  return !out.code.empty();
}

bool VmFrom(const json& j, VmInfo& out, std::string& error) {
  out = VmInfo{};
  out.id = String(j, "id");
  out.name = String(j, "name");
  if (out.name.empty()) {
    error = "virtual machine: no name";
    return false;
  }
  if (const json* tags = Member(j, "tags"); tags && tags->is_object()) {
    for (const auto& [k, v] : tags->items()) {
      if (v.is_string()) out.tags.emplace(k, v.get<std::string>());
    }
  }
  const json* props = Member(j, "properties");
  if (!props) return true;
  out.provisioning_state = String(*props, "provisioningState");
  if (const json* size = Path(*props, {"hardwareProfile", "vmSize"}); size && size->is_string()) {
    out.vm_size = size->get<std::string>();
  }
  if (const json* nics = Path(*props, {"networkProfile", "networkInterfaces"});
      nics && nics->is_array()) {
    for (const json& nic : *nics) {
      if (std::string id = String(nic, "id"); !id.empty()) out.nic_ids.push_back(std::move(id));
    }
  }
  if (const json* disk = Path(*props, {"storageProfile", "osDisk"}))
    out.os_disk_name = String(*disk, "name");
  return true;
}

bool ParseInt64(std::string_view text, std::int64_t& out) {
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), out);
  return ec == std::errc() && end == text.data() + text.size();
}

// A lifetime in seconds from a number or a decimal string.
bool Seconds(const json* j, std::int64_t& out) {
  if (!j) return false;
  if (j->is_number_integer()) {
    out = j->get<std::int64_t>();
    return true;
  }
  if (j->is_string()) return ParseInt64(j->get_ref<const std::string&>(), out);
  return false;
}

}  // namespace

bool EqualsIgnoreCase(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    const auto lower = [](char c) { return c >= 'A' && c <= 'Z' ? char(c - 'A' + 'a') : c; };
    if (lower(a[i]) != lower(b[i])) return false;
  }
  return true;
}

bool ParseArmError(std::string_view body, ArmError& out, std::string& error) {
  json j;
  if (!Parse(body, j, error, "ARM error")) return false;
  if (!ErrorFrom(j, out)) {
    error = "ARM error: no error code";
    return false;
  }
  return true;
}

bool AsyncOperation::Terminal() const {
  return EqualsIgnoreCase(status, "Succeeded") || EqualsIgnoreCase(status, "Failed") ||
         EqualsIgnoreCase(status, "Canceled") || EqualsIgnoreCase(status, "Cancelled");
}

bool AsyncOperation::Succeeded() const { return EqualsIgnoreCase(status, "Succeeded"); }

bool ParseAsyncOperation(std::string_view body, AsyncOperation& out, std::string& error) {
  json j;
  if (!Parse(body, j, error, "async operation")) return false;
  out = AsyncOperation{};
  out.status = String(j, "status");
  if (out.status.empty()) {
    error = "async operation: no status";
    return false;
  }
  if (const json* e = Member(j, "error"); e && e->is_object()) {
    ArmError arm;
    if (ErrorFrom(j, arm)) out.error = std::move(arm);
  }
  return true;
}

bool ParseVm(std::string_view body, VmInfo& out, std::string& error) {
  json j;
  if (!Parse(body, j, error, "virtual machine")) return false;
  return VmFrom(j, out, error);
}

bool ParseVmPage(std::string_view body, VmPage& out, std::string& error) {
  json j;
  if (!Parse(body, j, error, "virtual machine list")) return false;
  out = VmPage{};
  const json* value = Member(j, "value");
  if (!value || !value->is_array()) {
    error = "virtual machine list: no value array";
    return false;
  }
  for (const json& v : *value) {
    VmInfo vm;
    if (!VmFrom(v, vm, error)) return false;
    out.vms.push_back(std::move(vm));
  }
  out.next_link = String(j, "nextLink");
  return true;
}

bool ParseNic(std::string_view body, NicInfo& out, std::string& error) {
  json j;
  if (!Parse(body, j, error, "network interface")) return false;
  out = NicInfo{};
  const json* configs = Path(j, {"properties", "ipConfigurations"});
  if (!configs || !configs->is_array()) {
    error = "network interface: no ipConfigurations";
    return false;
  }
  for (const json& c : *configs) {
    const json* props = Member(c, "properties");
    if (!props) continue;
    if (std::string ip = String(*props, "privateIPAddress"); !ip.empty())
      out.private_ips.push_back(std::move(ip));
    if (const json* pub = Member(*props, "publicIPAddress")) {
      if (std::string id = String(*pub, "id"); !id.empty())
        out.public_ip_ids.push_back(std::move(id));
    }
  }
  return true;
}

bool ParsePublicIp(std::string_view body, std::string& address, std::string& error) {
  json j;
  if (!Parse(body, j, error, "public IP address")) return false;
  const json* ip = Path(j, {"properties", "ipAddress"});
  address = ip && ip->is_string() ? ip->get<std::string>() : std::string();
  return true;
}

bool ParseTokenReply(std::string_view body, std::int64_t now_epoch, TokenReply& out,
                     std::string& error) {
  json j;
  if (!Parse(body, j, error, "token reply")) return false;
  out = TokenReply{};
  out.access_token = String(j, "access_token");
  if (out.access_token.empty()) {
    error = "token reply: no access_token";
    return false;
  }
  std::int64_t seconds = 0;
  if (Seconds(Member(j, "expires_in"), seconds)) {
    out.expires_in_s = seconds;
  } else if (Seconds(Member(j, "expires_on"), seconds)) {
    out.expires_in_s = seconds - now_epoch;
  } else {
    error = "token reply: no expires_in or expires_on";
    return false;
  }
  if (out.expires_in_s <= 0 || out.expires_in_s > 366LL * 24 * 3600) {
    error = "token reply: lifetime out of range";
    return false;
  }
  return true;
}

std::string BuildVmBody(const VmBodyParams& p) {
  json ip_props = {{"subnet", {{"id", p.subnet_id}}}};
  if (p.public_ip) {
    ip_props["publicIPAddressConfiguration"] = {{"name", p.nic_name + "-ip"},
                                                {"properties", {{"deleteOption", "Delete"}}}};
  }
  json nic_props = {
      {"primary", true},
      {"deleteOption", "Delete"},
      {"ipConfigurations", json::array({{{"name", "ip-config"}, {"properties", ip_props}}})}};
  if (!p.nsg_id.empty()) nic_props["networkSecurityGroup"] = {{"id", p.nsg_id}};

  json managed_disk = {{"storageAccountType", "Premium_LRS"}};
  if (p.confidential)
    managed_disk["securityProfile"] = {{"securityEncryptionType", "VMGuestStateOnly"}};
  json os_disk = {{"name", p.os_disk_name},
                  {"createOption", "FromImage"},
                  {"caching", "ReadWrite"},
                  {"deleteOption", "Delete"},
                  {"managedDisk", managed_disk}};
  if (p.root_volume_gib > 0) os_disk["diskSizeGB"] = p.root_volume_gib;

  json image = p.image.starts_with("/CommunityGalleries/")
                   ? json{{"communityGalleryImageId", p.image}}
                   : json{{"id", p.image}};
  json linux_config = {{"disablePasswordAuthentication", true}};
  if (!p.ssh_public_key.empty()) {
    linux_config["ssh"] = {
        {"publicKeys",
         json::array({{{"path", "/home/" + p.admin_username + "/.ssh/authorized_keys"},
                       {"keyData", p.ssh_public_key}}})}};
  }
  json props = {
      {"hardwareProfile", {{"vmSize", p.vm_size}}},
      {"storageProfile", {{"imageReference", image}, {"osDisk", os_disk}}},
      {"osProfile",
       {{"computerName", p.computer_name},
        {"adminUsername", p.admin_username},
        {"linuxConfiguration", linux_config}}},
      {"networkProfile",
       {{"networkApiVersion", "2020-11-01"},
        {"networkInterfaceConfigurations",
         json::array({{{"name", p.nic_name}, {"properties", nic_props}}})}}},
      {"diagnosticsProfile", {{"bootDiagnostics", {{"enabled", true}}}}},
      {"userData", p.user_data_b64},
  };
  if (p.confidential) {
    props["securityProfile"] = {
        {"securityType", "ConfidentialVM"},
        {"uefiSettings", {{"secureBootEnabled", p.secure_boot}, {"vTpmEnabled", true}}}};
  }
  json body = {{"location", p.location}, {"tags", p.tags}, {"properties", props}};
  if (!p.zone.empty()) body["zones"] = json::array({p.zone});
  // Invalid UTF-8 (a tag from TAGS, a key file) becomes U+FFFD instead of throwing.
  return body.dump(-1, ' ', false, json::error_handler_t::replace);
}

}  // namespace pp::providers::azure
