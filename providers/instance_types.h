// Instance-type selection, shared by the cloud providers.
//
// Order of decisions (CAA's SelectInstanceTypeToUse and VerifyCloudInstanceType, with its
// binary-search bug fixed):
//  1. the pod's machine_type annotation (spec.instance_type) wins, alone: it must be the default
//     type or in the allowed list, else INVALID_ARGUMENT naming the list;
//  2. GPU pods (gpus > 0, or a gpu_model asked, which means at least one): every allowed GPU type
//     with at least the GPUs (of the model, compared case-insensitively, when one is asked), vCPUs
//     and memory asked, smallest first;
//  3. pods asking vCPUs and/or memory: every allowed non-GPU type that fits, smallest first (a
//     true best fit by linear scan: CAA's sort.Search over a non-monotone predicate misses fits).
//     A pod asking only vCPUs (or only memory) is fitted on what it asked, the other dimension
//     unconstrained; CAA ignored such a pod and gave it the default type;
//  4. a pod that asks nothing, or any pod when the allowed list is empty (nothing is known of the
//     default type's size then): the default type alone. No default configured:
//     FAILED_PRECONDITION.
// "Smallest" orders by (GPUs, memory, vCPUs, name); the name makes ties deterministic. A type
// listed twice appears once. A pod that asks more than any allowed type of its kind (GPU or not)
// offers gets RESOURCE_EXHAUSTED naming the largest such type; the default type is never a silent
// substitute for a pod that does not fit. A provider that knows the default type's size and wants
// it fitted like the others lists it in `allowed`.
//
// The result is a list of candidates, best first: when the cloud is out of capacity for one
// (InsufficientInstanceCapacity, SkuNotAvailable, ZONE_RESOURCE_POOL_EXHAUSTED) the provider tries
// the next, and says in its error which it tried. Pure function; thread-safe.
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

Result<std::vector<std::string>> SelectInstanceTypes(const InstanceSpec& spec,
                                                     const InstanceTypePolicy& policy);

}  // namespace pp::providers
