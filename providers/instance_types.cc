#include "providers/instance_types.h"

#include <algorithm>
#include <cctype>
#include <string_view>
#include <tuple>

namespace pp::providers {
namespace {

bool EqualsIgnoreCase(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return std::tolower(static_cast<unsigned char>(x)) ==
                  std::tolower(static_cast<unsigned char>(y));
         });
}

// The order "smallest first" means. The name breaks ties so that the same table always gives the
// same candidates, whatever order the cloud listed the types in.
bool Smaller(const InstanceType& a, const InstanceType& b) {
  return std::tie(a.gpus, a.memory_mib, a.vcpus, a.name) <
         std::tie(b.gpus, b.memory_mib, b.vcpus, b.name);
}

std::string Describe(const InstanceType& t) {
  std::string s =
      t.name + " (" + std::to_string(t.vcpus) + " vCPUs, " + std::to_string(t.memory_mib) + " MiB";
  if (t.gpus > 0) {
    s += ", " + std::to_string(t.gpus) + " GPUs";
    if (!t.gpu_model.empty()) s += " " + t.gpu_model;
  }
  return s + ")";
}

std::string DescribeAsk(const InstanceSpec& spec) {
  std::string s;
  auto add = [&s](const std::string& part) { s += (s.empty() ? "" : ", ") + part; };
  if (spec.gpus > 0)
    add(std::to_string(spec.gpus) + " GPUs" + (spec.gpu_model.empty() ? "" : " " + spec.gpu_model));
  if (spec.vcpus > 0) add(std::to_string(spec.vcpus) + " vCPUs");
  if (spec.memory_mib > 0) add(std::to_string(spec.memory_mib) + " MiB");
  return s;
}

std::string ListNames(const InstanceTypePolicy& policy) {
  std::string s = "[";
  for (const InstanceType& t : policy.allowed) s += (s.size() > 1 ? ", " : "") + t.name;
  return s + "]";
}

bool Fits(const InstanceType& t, const InstanceSpec& spec) {
  if (spec.gpus > 0) {
    if (t.gpus < spec.gpus) return false;
    if (!spec.gpu_model.empty() && !EqualsIgnoreCase(t.gpu_model, spec.gpu_model)) return false;
  } else if (t.gpus > 0) {
    return false;  // a GPU is never spent on a pod that did not ask for one
  }
  return t.vcpus >= spec.vcpus && t.memory_mib >= spec.memory_mib;
}

}  // namespace

Result<std::vector<std::string>> SelectInstanceTypes(const InstanceSpec& requested,
                                                     const InstanceTypePolicy& policy) {
  InstanceSpec spec = requested;
  if (spec.gpus == 0 && !spec.gpu_model.empty()) spec.gpus = 1;  // a model asked means at least one
  // 1. The annotation wins, but only within what the operator allowed (CAA's
  // VerifyCloudInstanceType).
  if (!spec.instance_type.empty()) {
    const bool allowed =
        spec.instance_type == policy.default_type ||
        std::any_of(policy.allowed.begin(), policy.allowed.end(),
                    [&](const InstanceType& t) { return t.name == spec.instance_type; });
    if (!allowed) {
      return Fail(
          Code::kInvalidArgument, "instance type ", spec.instance_type,
          " (machine_type annotation) is not allowed; allowed: ",
          policy.allowed.empty() ? "only the default " + policy.default_type : ListNames(policy));
    }
    return std::vector<std::string>{spec.instance_type};
  }

  const bool asked = spec.gpus > 0 || spec.vcpus > 0 || spec.memory_mib > 0;
  // 4. Nothing specific asked, or no table to fit against (an empty list says nothing of the
  // default type's size): the default type.
  if (!asked || policy.allowed.empty()) {
    if (policy.default_type.empty()) {
      return Fail(Code::kFailedPrecondition, "no default instance type configured");
    }
    return std::vector<std::string>{policy.default_type};
  }

  // 2. and 3. A linear scan over the whole table: every fitting type, sorted. CAA sorts the table
  // and binary-searches it with "fits", which is not monotone over (GPUs, memory, vCPUs) order
  // (a bigger-memory type may have fewer vCPUs), so it can miss the best fit.
  std::vector<InstanceType> sorted = policy.allowed;
  std::sort(sorted.begin(), sorted.end(), Smaller);
  std::vector<std::string> candidates;
  const InstanceType* largest = nullptr;  // of the kind asked (GPU or not), for the error message
  for (const InstanceType& t : sorted) {
    if ((spec.gpus > 0) == (t.gpus > 0)) largest = &t;
    if (!Fits(t, spec)) continue;
    if (std::find(candidates.begin(), candidates.end(), t.name) != candidates.end())
      continue;  // listed twice
    candidates.push_back(t.name);
  }
  if (candidates.empty()) {
    std::string kind = spec.gpus > 0 ? "GPU" : "non-GPU";
    if (largest == nullptr) {
      return Fail(Code::kResourceExhausted, "no allowed instance type fits ", DescribeAsk(spec),
                  ": no ", kind, " type among ", ListNames(policy));
    }
    return Fail(Code::kResourceExhausted, "no allowed instance type fits ", DescribeAsk(spec),
                "; the largest ", kind, " type allowed is ", Describe(*largest));
  }
  return candidates;
}

}  // namespace pp::providers
