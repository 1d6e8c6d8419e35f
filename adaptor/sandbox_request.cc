#include "adaptor/sandbox_request.h"

#include "common/podvm/initdata.h"

#include <algorithm>
#include <charconv>

namespace pp::adaptor {
namespace {

bool IsIdChar(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
         c == '-';
}

bool HasControl(std::string_view s) {
  return std::any_of(s.begin(), s.end(), [](char c) {
    return static_cast<unsigned char>(c) < 0x20 || c == 0x7f;
  });
}

std::string Get(const std::map<std::string, std::string>& m, std::string_view key) {
  const auto it = m.find(std::string(key));
  return it == m.end() ? std::string() : it->second;
}

// Empty or 0 means "the provider's default". Otherwise a decimal within [min, max].
Result<unsigned long long> ParseBounded(const std::map<std::string, std::string>& m, std::string_view key,
                                        unsigned long long min, unsigned long long max,
                                        std::string_view unit) {
  const std::string value = Get(m, key);
  if (value.empty()) return 0ull;
  unsigned long long n = 0;
  const auto [end, ec] = std::from_chars(value.data(), value.data() + value.size(), n);
  if (ec != std::errc() || end != value.data() + value.size()) {
    return Fail(Code::kInvalidArgument, "annotation ", key, ": \"", value.size() > 32 ? value.substr(0, 32) + "..." : value,
                "\" is not a whole number");
  }
  if (n != 0 && (n < min || n > max)) {
    return Fail(Code::kInvalidArgument, "annotation ", key, ": ", value, " is out of range; accepted ",
                std::to_string(min), " to ", std::to_string(max), unit);
  }
  return n;
}

Result<std::string> GetText(const std::map<std::string, std::string>& m, std::string_view key,
                            std::size_t max) {
  std::string value = Get(m, key);
  if (value.size() > max) {
    return Fail(Code::kInvalidArgument, "annotation ", key, " is ", std::to_string(value.size()),
                " bytes; at most ", std::to_string(max), " accepted");
  }
  if (HasControl(value)) return Fail(Code::kInvalidArgument, "annotation ", key, " contains control characters");
  return value;
}

}  // namespace

Result<void> ValidateSandboxId(std::string_view id, const Limits& limits) {
  if (id.empty()) return Fail(Code::kInvalidArgument, "sandbox id is empty");
  if (id.size() > limits.max_sandbox_id) {
    return Fail(Code::kInvalidArgument, "sandbox id is ", std::to_string(id.size()), " characters; at most ",
                std::to_string(limits.max_sandbox_id), " accepted");
  }
  if (!std::all_of(id.begin(), id.end(), IsIdChar)) {
    return Fail(Code::kInvalidArgument, "sandbox id may contain only A-Z, a-z, 0-9, '_' and '-'");
  }
  return {};
}

Result<SandboxRequest> ParseCreateVM(const hypervisor::CreateVMRequest& request, const Limits& limits) {
  if (auto ok = ValidateSandboxId(request.id(), limits); !ok) return std::unexpected(ok.error());
  if (static_cast<std::size_t>(request.annotations_size()) > limits.max_annotations) {
    return Fail(Code::kInvalidArgument, "too many annotations (", std::to_string(request.annotations_size()),
                "); at most ", std::to_string(limits.max_annotations), " accepted");
  }
  std::size_t annotation_bytes = 0;
  for (const auto& [key, value] : request.annotations()) annotation_bytes += key.size() + value.size();
  if (annotation_bytes > limits.max_annotation_bytes) {
    return Fail(Code::kInvalidArgument, "annotations hold ", std::to_string(annotation_bytes), " bytes; at most ",
                std::to_string(limits.max_annotation_bytes), " accepted");
  }
  SandboxRequest out;
  out.id = request.id();
  out.annotations.insert(request.annotations().begin(), request.annotations().end());

  auto name = GetText(out.annotations, kAnnotationPodName, limits.max_name);
  if (!name) return std::unexpected(name.error());
  if (name->empty()) return Fail(Code::kInvalidArgument, "annotation ", kAnnotationPodName, " (the pod name) is missing");
  auto ns = GetText(out.annotations, kAnnotationPodNamespace, limits.max_name);
  if (!ns) return std::unexpected(ns.error());
  if (ns->empty()) {
    return Fail(Code::kInvalidArgument, "annotation ", kAnnotationPodNamespace, " (the pod namespace) is missing");
  }
  out.pod_name = std::move(*name);
  out.pod_namespace = std::move(*ns);

  const std::string& netns = request.networknamespacepath();
  if (netns.size() > limits.max_value || HasControl(netns) || (!netns.empty() && netns.front() != '/')) {
    return Fail(Code::kInvalidArgument, "networkNamespacePath must be empty or an absolute path of at most ",
                std::to_string(limits.max_value), " characters");
  }
  out.netns_path = netns;

  auto machine = GetText(out.annotations, kAnnotationMachineType, limits.max_value);
  if (!machine) return std::unexpected(machine.error());
  out.instance_type = std::move(*machine);
  auto image = GetText(out.annotations, kAnnotationImage, limits.max_value);
  if (!image) return std::unexpected(image.error());
  out.image = std::move(*image);
  auto gpu_model = GetText(out.annotations, kAnnotationGpuModel, limits.max_value);
  if (!gpu_model) return std::unexpected(gpu_model.error());
  out.gpu_model = std::move(*gpu_model);

  auto vcpus = ParseBounded(out.annotations, kAnnotationVcpus, 1, limits.max_vcpus, " vCPUs");
  if (!vcpus) return std::unexpected(vcpus.error());
  out.vcpus = static_cast<unsigned>(*vcpus);
  auto memory = ParseBounded(out.annotations, kAnnotationMemory, limits.min_memory_mib, limits.max_memory_mib, " MiB");
  if (!memory) return std::unexpected(memory.error());
  out.memory_mib = *memory;
  auto gpus = ParseBounded(out.annotations, kAnnotationGpus, 0, limits.max_gpus, " GPUs");
  if (!gpus) return std::unexpected(gpus.error());
  out.gpus = static_cast<unsigned>(*gpus);

  // Initdata arrives as the TOML document itself (the kata runtime decoded the pod annotation's
  // base64(gzip(...))). It is checked here, so that a bad document fails CreateVM with a reason
  // instead of a pod VM that never gets its configuration.
  out.initdata = Get(out.annotations, kAnnotationInitdata);
  if (out.initdata.size() > limits.max_initdata) {
    return Fail(Code::kInvalidArgument, "annotation ", kAnnotationInitdata, " is ", std::to_string(out.initdata.size()),
                " bytes; at most ", std::to_string(limits.max_initdata), " accepted");
  }
  if (!out.initdata.empty()) {
    podvm::Initdata parsed;
    std::string error;
    if (!podvm::ParseInitdataToml(out.initdata, parsed, error)) {
      return Fail(Code::kInvalidArgument, "annotation ", kAnnotationInitdata, ": ", error);
    }
  }
  return out;
}

std::string ShortId(std::string_view id) {
  std::string out(id.substr(0, 12));
  for (char& c : out) {
    if (!IsIdChar(c)) c = '?';
  }
  return out;
}

std::string InstanceName(std::string_view pod_name, std::string_view sandbox_id) {
  constexpr std::size_t kMax = 63;
  const std::string_view prefix = "podvm-";
  const std::string_view suffix = sandbox_id.substr(0, 8);
  std::string pod;
  for (char c : pod_name) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
    pod.push_back((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ? c : '-');
  }
  pod.resize(std::min(pod.size(), kMax - prefix.size() - 1 - suffix.size()));
  std::string name(prefix);
  name += pod;
  name += '-';
  for (char c : suffix) name.push_back(c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : (c == '_' ? '-' : c));
  return name;
}

}  // namespace pp::adaptor
