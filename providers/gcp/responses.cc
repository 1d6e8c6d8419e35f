#include "providers/gcp/responses.h"

#include <algorithm>
#include <cctype>
#include <cstdlib>
#include <nlohmann/json.hpp>

namespace pp::providers::gcp {
namespace {

using Json = nlohmann::json;

std::string Str(const Json& j, const char* name) {
  if (!j.is_object()) return {};
  const auto it = j.find(name);
  if (it == j.end()) return {};
  if (it->is_string()) return it->get<std::string>();
  if (it->is_number_integer()) return std::to_string(it->get<long long>());
  return {};
}

long Long(const Json& j, const char* name) {
  if (!j.is_object()) return 0;
  const auto it = j.find(name);
  if (it == j.end()) return 0;
  if (it->is_number_integer())
    return static_cast<long>(std::clamp<long long>(it->get<long long>(), -1, 1 << 30));
  if (it->is_string()) return std::atol(it->get<std::string>().substr(0, 12).c_str());
  return 0;
}

const Json* Array(const Json& j, const char* name) {
  if (!j.is_object()) return nullptr;
  const auto it = j.find(name);
  return it != j.end() && it->is_array() ? &*it : nullptr;
}

bool Capacity(std::string_view code) {
  return code == "ZONE_RESOURCE_POOL_EXHAUSTED" ||
         code == "ZONE_RESOURCE_POOL_EXHAUSTED_WITH_DETAILS" || code == "QUOTA_EXCEEDED" ||
         code == "resourcePoolExhausted" || code == "quotaExceeded" ||
         code == "RESOURCE_POOL_EXHAUSTED";
}
bool RateLimit(std::string_view reason) {
  return reason == "rateLimitExceeded" || reason == "userRateLimitExceeded" ||
         reason == "RATE_LIMIT_EXCEEDED";
}

bool InstanceFrom(const Json& j, InstanceInfo& i, std::string& error) {
  if (!j.is_object()) {
    error = "gcp: an instance in the answer is not an object";
    return false;
  }
  i = InstanceInfo{};
  i.name = Str(j, "name");
  if (i.name.empty()) {
    error = "gcp: an instance in the answer has no name";
    return false;
  }
  i.id = Str(j, "id");
  i.zone = std::string(LastSegment(Str(j, "zone")));
  i.status = Str(j, "status");
  i.machine_type = std::string(LastSegment(Str(j, "machineType")));
  if (const Json* nics = Array(j, "networkInterfaces"); nics && !nics->empty()) {
    const Json& nic = nics->front();
    i.network_ip = Str(nic, "networkIP");
    if (const Json* acs = Array(nic, "accessConfigs"); acs && !acs->empty())
      i.nat_ip = Str(acs->front(), "natIP");
  }
  if (const auto it = j.find("labels"); it != j.end() && it->is_object()) {
    for (const auto& [k, v] : it->items()) {
      if (v.is_string()) i.labels[k] = v.get<std::string>();
    }
  }
  if (const auto it = j.find("metadata"); it != j.end() && it->is_object()) {
    if (const Json* items = Array(*it, "items")) {
      for (const Json& item : *items) {
        const std::string key = Str(item, "key");
        if (key.empty() || key == "user-data") continue;
        i.metadata[key] = Str(item, "value");
      }
    }
  }
  return true;
}

bool Refuse(std::string& error, const char* why) {
  error = why;
  return false;
}

}  // namespace

bool IsCapacityCode(std::string_view code) { return Capacity(code); }
bool IsRateLimitReason(std::string_view reason) { return RateLimit(reason); }

std::string_view LastSegment(std::string_view link) {
  const auto slash = link.rfind('/');
  return slash == std::string_view::npos ? link : link.substr(slash + 1);
}

std::optional<GoogleError> ParseErrorBody(std::string_view body) {
  const Json j = Json::parse(body, nullptr, false);
  if (!j.is_object()) return std::nullopt;
  const auto it = j.find("error");
  if (it == j.end() || !it->is_object()) return std::nullopt;
  GoogleError e;
  e.code = Long(*it, "code");
  e.status = Str(*it, "status");
  e.message = Str(*it, "message");
  if (const Json* errors = Array(*it, "errors")) {
    for (const Json& item : *errors) {
      if (std::string reason = Str(item, "reason"); !reason.empty())
        e.reasons.push_back(std::move(reason));
      if (e.message.empty()) e.message = Str(item, "message");
    }
  }
  return e;
}

bool ParseOperationJson(std::string_view body, Operation& op, std::string& error) {
  const Json j = Json::parse(body, nullptr, false);
  if (!j.is_object()) return Refuse(error, "gcp: an operation answer is not JSON");
  op = Operation{};
  op.name = Str(j, "name");
  op.status = Str(j, "status");
  if (op.name.empty() || op.status.empty())
    return Refuse(error, "gcp: an operation answer has no name or status");
  if (op.status != "PENDING" && op.status != "RUNNING" && op.status != "DONE")
    return Refuse(error, "gcp: an operation answer has an unknown status");
  // The name and zone go into the next request's path: only what the API itself issues.
  const auto plain = [](std::string_view v) {
    return v.size() <= 128 && std::all_of(v.begin(), v.end(), [](unsigned char c) {
             return std::isalnum(c) || c == '-' || c == '_';
           });
  };
  op.zone = std::string(LastSegment(Str(j, "zone")));
  if (!plain(op.name) || !plain(op.zone))
    return Refuse(error, "gcp: an operation answer has a malformed name or zone");
  op.operation_type = Str(j, "operationType");
  op.target_link = Str(j, "targetLink");
  op.http_error_status = Long(j, "httpErrorStatusCode");
  op.http_error_message = Str(j, "httpErrorMessage");
  if (const auto it = j.find("error"); it != j.end() && it->is_object()) {
    if (const Json* errors = Array(*it, "errors")) {
      for (const Json& item : *errors)
        op.errors.push_back({Str(item, "code"), Str(item, "message")});
    }
    if (op.errors.empty()) op.errors.push_back({"UNKNOWN", "operation failed without details"});
  }
  return true;
}

bool ParseInstanceJson(std::string_view body, InstanceInfo& instance, std::string& error) {
  const Json j = Json::parse(body, nullptr, false);
  if (!j.is_object()) return Refuse(error, "gcp: an instance answer is not JSON");
  return InstanceFrom(j, instance, error);
}

bool ParseInstanceListJson(std::string_view body, InstanceList& list, std::string& error) {
  const Json j = Json::parse(body, nullptr, false);
  if (!j.is_object()) return Refuse(error, "gcp: an instance list answer is not JSON");
  list = InstanceList{};
  list.next_page_token = Str(j, "nextPageToken");
  if (const auto it = j.find("items"); it != j.end()) {
    if (!it->is_array()) return Refuse(error, "gcp: an instance list's items is not an array");
    for (const Json& item : *it) {
      InstanceInfo i;
      if (!InstanceFrom(item, i, error)) return false;
      list.items.push_back(std::move(i));
    }
  }
  return true;
}

bool ParseMachineTypeJson(std::string_view body, MachineTypeInfo& m, std::string& error) {
  const Json j = Json::parse(body, nullptr, false);
  if (!j.is_object()) return Refuse(error, "gcp: a machine type answer is not JSON");
  m = MachineTypeInfo{};
  m.name = Str(j, "name");
  const long cpus = Long(j, "guestCpus");
  const long mem = Long(j, "memoryMb");
  if (m.name.empty() || cpus <= 0 || mem <= 0)
    return Refuse(error, "gcp: a machine type answer lacks name, guestCpus or memoryMb");
  m.vcpus = static_cast<unsigned>(cpus);
  m.memory_mib = static_cast<unsigned long long>(mem);
  if (const Json* accs = Array(j, "accelerators")) {
    for (const Json& a : *accs) {
      const long n = Long(a, "guestAcceleratorCount");
      if (n > 0) m.gpus += static_cast<unsigned>(std::min(n, 64L));
      if (m.gpu_model.empty()) {
        const std::string type = Str(a, "guestAcceleratorType");  // e.g. nvidia-h100-80gb
        if (type.find("h100") != std::string::npos)
          m.gpu_model = "H100";
        else if (type.find("a100") != std::string::npos)
          m.gpu_model = "A100";
        else if (type.find("l4") != std::string::npos)
          m.gpu_model = "L4";
        else
          m.gpu_model = type.substr(0, 40);
      }
    }
  }
  return true;
}

bool ParseImageDiskSizeGbJson(std::string_view body, unsigned long long& gb, std::string& error) {
  const Json j = Json::parse(body, nullptr, false);
  if (!j.is_object()) return Refuse(error, "gcp: an image answer is not JSON");
  const long n = Long(j, "diskSizeGb");
  if (n <= 0) return Refuse(error, "gcp: an image answer has no diskSizeGb");
  gb = static_cast<unsigned long long>(n);
  return true;
}

bool ParseTokenJson(std::string_view body, std::string& token, long long& expires_in,
                    std::string& error) {
  const Json j = Json::parse(body, nullptr, false);
  if (!j.is_object()) return Refuse(error, "gcp: the token endpoint's answer is not JSON");
  token = Str(j, "access_token");
  if (token.empty()) return Refuse(error, "gcp: the token endpoint's answer has no access_token");
  const std::string type = Str(j, "token_type");
  if (!type.empty() && type != "Bearer" && type != "bearer")
    return Refuse(error, "gcp: the token endpoint issued a token that is not a Bearer token");
  expires_in = 3600;
  if (const auto it = j.find("expires_in"); it != j.end()) {
    if (it->is_number_integer())
      expires_in = it->get<long long>();
    else if (it->is_string())
      expires_in = std::atoll(it->get<std::string>().substr(0, 12).c_str());
    else
      return Refuse(error, "gcp: the token endpoint's expires_in is not a number");
  }
  // Bounded so that a hostile value cannot overflow the clock arithmetic.
  expires_in = std::clamp<long long>(expires_in, 0, 24 * 3600);
  return true;
}

}  // namespace pp::providers::gcp
