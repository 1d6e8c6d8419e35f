// The Compute Engine and OAuth answers the gcp provider reads, parsed without I/O. Standard
// library and nlohmann-json only, no pp::Result: the fuzz build (clang-14, which cannot compile
// libstdc++ 12's <expected>) links this file alone. compute.h and token.h wrap these parsers into
// pp::Result for the provider.
//
// Each parser returns false with the reason in `error` when the answer is not what the API sends;
// reasons name the answer, never its content (which may hold a token).
#pragma once

#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace pp::providers::gcp {

struct GoogleError {
  long code = 0;       // the HTTP status the body states
  std::string status;  // e.g. "RESOURCE_EXHAUSTED"
  std::string message;
  std::vector<std::string> reasons;  // errors[].reason (rateLimitExceeded, notFound, ...)
};

// The error body of a failed call; nullopt when the body is not one.
std::optional<GoogleError> ParseErrorBody(std::string_view body);

// Error codes and reasons that mean "out of capacity or quota" (ZONE_RESOURCE_POOL_EXHAUSTED and
// its _WITH_DETAILS form, QUOTA_EXCEEDED, resourcePoolExhausted, quotaExceeded) and "slow down"
// (rateLimitExceeded, userRateLimitExceeded).
bool IsCapacityCode(std::string_view code);
bool IsRateLimitReason(std::string_view reason);

struct OperationIssue {
  std::string code;  // ZONE_RESOURCE_POOL_EXHAUSTED, QUOTA_EXCEEDED, RESOURCE_NOT_FOUND, ...
  std::string message;
};

struct Operation {
  std::string name;
  std::string zone;    // the short name (the API gives a URL)
  std::string status;  // PENDING, RUNNING, DONE
  std::string operation_type;
  std::string target_link;
  std::vector<OperationIssue> errors;
  long http_error_status = 0;
  std::string http_error_message;

  bool Done() const { return status == "DONE"; }
};

// A zonal operation. Its name and zone go into the next request's path, so only names of
// letters, digits, '-' and '_' are accepted.
bool ParseOperationJson(std::string_view body, Operation& op, std::string& error);

struct InstanceInfo {
  std::string name;
  std::string id;            // numeric, as a string
  std::string zone;          // short name
  std::string status;        // PROVISIONING, STAGING, RUNNING, STOPPING, TERMINATED, ...
  std::string machine_type;  // short name
  std::string network_ip;    // first interface's private address
  std::string nat_ip;        // first interface's first access config's public address
  std::map<std::string, std::string> labels;
  std::map<std::string, std::string> metadata;  // items, except user-data (never kept)
};

bool ParseInstanceJson(std::string_view body, InstanceInfo& instance, std::string& error);

struct InstanceList {
  std::vector<InstanceInfo> items;
  std::string next_page_token;
};

bool ParseInstanceListJson(std::string_view body, InstanceList& list, std::string& error);

struct MachineTypeInfo {
  std::string name;
  unsigned vcpus = 0;
  unsigned long long memory_mib = 0;
  unsigned gpus = 0;
  std::string gpu_model;
};

// machineTypes.get: guestCpus, memoryMb, accelerators[].guestAcceleratorCount/-Type.
bool ParseMachineTypeJson(std::string_view body, MachineTypeInfo& type, std::string& error);

// images.get: the image's diskSizeGb (an int64 the API sends as a string), positive.
bool ParseImageDiskSizeGbJson(std::string_view body, unsigned long long& gb, std::string& error);

// A token endpoint's (or the metadata server's) answer {access_token, expires_in, token_type:
// "Bearer"}; expires_in defaults to 3600 and is clamped to [0, 24 h].
bool ParseTokenJson(std::string_view body, std::string& token, long long& expires_in,
                    std::string& error);

// The last segment of a resource URL or path ("…/zones/us-central1-a" -> "us-central1-a").
std::string_view LastSegment(std::string_view link);

}  // namespace pp::providers::gcp
