// CreateVM validation: from the shim's CreateVMRequest to a checked, provider-neutral plan.
//
// The sandbox id becomes a directory name, so it is held to [A-Za-z0-9_-]{1,128}. Sizes from
// annotations are bounded so that a typo cannot ask a cloud for a thousand vCPUs. Every refusal is
// INVALID_ARGUMENT with a message that names the annotation and the accepted range.
#pragma once

#include <map>
#include <string>
#include <string_view>

#include "common/base/error.h"
#include "hypervisor.pb.h"

namespace pp::adaptor {

inline constexpr std::string_view kAnnotationPodName = "io.kubernetes.cri.sandbox-name";
inline constexpr std::string_view kAnnotationPodNamespace = "io.kubernetes.cri.sandbox-namespace";
inline constexpr std::string_view kAnnotationMachineType = "io.katacontainers.config.hypervisor.machine_type";
inline constexpr std::string_view kAnnotationImage = "io.katacontainers.config.hypervisor.image";
inline constexpr std::string_view kAnnotationVcpus = "io.katacontainers.config.hypervisor.default_vcpus";
inline constexpr std::string_view kAnnotationMemory = "io.katacontainers.config.hypervisor.default_memory";
inline constexpr std::string_view kAnnotationInitdata = "io.katacontainers.config.hypervisor.cc_init_data";
inline constexpr std::string_view kAnnotationGpus = "io.katacontainers.config.hypervisor.default_gpus";
inline constexpr std::string_view kAnnotationGpuModel = "io.katacontainers.config.hypervisor.default_gpu_model";

struct Limits {
  std::size_t max_sandbox_id = 128;
  unsigned max_vcpus = 512;
  unsigned long long min_memory_mib = 64;  // what runtime-rs itself insists on
  unsigned long long max_memory_mib = 4ull << 20;  // 4 TiB
  unsigned max_gpus = 16;
  std::size_t max_initdata = 64 * 1024;  // base64(gzip(toml)); clouds cap user-data near this
  std::size_t max_name = 253;            // pod names and namespaces are DNS subdomains
  std::size_t max_value = 1024;          // image, machine type, GPU model, netns path
  std::size_t max_annotations = 256;
  // All annotation keys and values together. The record holds them as JSON, which escapes a
  // control byte as six, so this keeps every record far below the store's 1 MiB read limit.
  std::size_t max_annotation_bytes = 128 * 1024;
};

struct SandboxRequest {
  std::string id;
  std::string pod_name;
  std::string pod_namespace;
  std::string netns_path;
  std::string instance_type;  // empty: provider default
  std::string image;
  unsigned vcpus = 0;  // 0: provider default
  unsigned long long memory_mib = 0;
  unsigned gpus = 0;
  std::string gpu_model;
  std::string initdata;  // as the shim sent it; never logged
  std::map<std::string, std::string> annotations;  // all of them, to recognise a repeated request

  friend bool operator==(const SandboxRequest&, const SandboxRequest&) = default;
};

// The first 12 characters of a sandbox id, as log lines about a sandbox show it (as `crictl` and
// `docker` abbreviate container ids); characters an id may not hold show as '?', so that a bad id
// cannot forge log lines.
std::string ShortId(std::string_view id);

Result<void> ValidateSandboxId(std::string_view id, const Limits& limits = {});

Result<SandboxRequest> ParseCreateVM(const hypervisor::CreateVMRequest& request,
                                     const Limits& limits = {});

// "podvm-<pod name, lowercased, [^a-z0-9-] -> '-', truncated>-<first 8 of sandbox id>", at most 63
// characters: a valid host name and instance name on every provider.
std::string InstanceName(std::string_view pod_name, std::string_view sandbox_id);

}  // namespace pp::adaptor
