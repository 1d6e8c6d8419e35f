// Instance-type selection, shared by the cloud providers.
//
// Order of decisions (CAA's SelectInstanceTypeToUse, with its binary-search bug fixed):
//  1. the pod's machine_type annotation wins; it must be in the allowed list (or be the default
//     when the list is empty), else INVALID_ARGUMENT naming the list;
//  2. GPU pods (gpus > 0): every allowed type with at least the GPUs (of the model, when one is
//     asked), vCPUs and memory asked, smallest first;
//  3. pods asking vCPUs and/or memory: every allowed non-GPU type that fits, smallest first (a
//     true best fit by linear scan: CAA's sort.Search over a non-monotone predicate misses fits);
//  4. otherwise, or when nothing fits a pod that asked nothing specific: the default type.
// "Smallest" orders by (GPUs, memory, vCPUs, name). A pod that asks more than any allowed type
// offers gets RESOURCE_EXHAUSTED naming the largest type.
//
// The result is a list of candidates, best first: when the cloud is out of capacity for one
// (InsufficientInstanceCapacity, SkuNotAvailable, ZONE_RESOURCE_POOL_EXHAUSTED) the provider tries
// the next, and says in its error which it tried.
#pragma once

#include <string>
#include <vector>

#include "common/base/error.h"
#include "providers/provider.h"

namespace pp::providers {

struct InstanceType {
  std::string name;
  unsigned vcpus = 0;
  unsigned long long memory_mib = 0;
  unsigned gpus = 0;
  std::string gpu_model;  // e.g. "H100"; empty when unknown or none
};

struct InstanceTypePolicy {
  std::string default_type;
  std::vector<InstanceType> allowed;  // empty: only default_type is allowed
};

Result<std::vector<std::string>> SelectInstanceTypes(const InstanceSpec& spec, const InstanceTypePolicy& policy);

}  // namespace pp::providers
