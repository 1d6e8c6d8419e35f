#include "providers/gcp/machine_types.h"

#include <charconv>
#include <string>

namespace pp::providers::gcp {
namespace {

struct Series {
  std::string_view prefix;  // "<series>-<kind>-"
  unsigned long long mib_per_vcpu;
};

// Memory per vCPU of the predefined kinds (standard 4 GiB, highmem 8 GiB, highcpu 1 or 2 GiB).
constexpr Series kSeries[] = {
    {"e2-standard-", 4096},  {"e2-highmem-", 8192},  {"e2-highcpu-", 1024},
    {"n2d-standard-", 4096}, {"n2d-highmem-", 8192}, {"n2d-highcpu-", 1024},
    {"n2-standard-", 4096},  {"n2-highmem-", 8192},  {"n2-highcpu-", 1024},
    {"c2d-standard-", 4096}, {"c2d-highmem-", 8192}, {"c2d-highcpu-", 2048},
    {"c3-standard-", 4096},  {"c3-highmem-", 8192},  {"c3-highcpu-", 2048},
    {"c3d-standard-", 4096}, {"c3d-highmem-", 8192}, {"c3d-highcpu-", 2048},
    {"n1-standard-", 3840},  {"n1-highmem-", 6656},  {"n1-highcpu-", 921},
};

struct Fixed {
  std::string_view name;
  unsigned vcpus;
  unsigned long long memory_mib;
  unsigned gpus;
};

constexpr Fixed kFixed[] = {
    {"e2-micro", 2, 1024, 0},
    {"e2-small", 2, 2048, 0},
    {"e2-medium", 2, 4096, 0},
    // A3 High: 1, 2, 4 or 8 H100 80GB, 26 vCPUs and 234 GiB per GPU; A3 Mega 8 GPUs.
    {"a3-highgpu-1g", 26, 234 * 1024, 1},
    {"a3-highgpu-2g", 52, 468 * 1024, 2},
    {"a3-highgpu-4g", 104, 936 * 1024, 4},
    {"a3-highgpu-8g", 208, 1872 * 1024, 8},
    {"a3-megagpu-8g", 208, 1872 * 1024, 8},
};

}  // namespace

std::optional<InstanceType> KnownMachineType(std::string_view name) {
  for (const Fixed& f : kFixed) {
    if (f.name == name)
      return InstanceType{std::string(name), f.vcpus, f.memory_mib, f.gpus, f.gpus ? "H100" : ""};
  }
  for (const Series& s : kSeries) {
    if (!name.starts_with(s.prefix)) continue;
    const std::string_view digits = name.substr(s.prefix.size());
    unsigned n = 0;
    const auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), n);
    if (ec != std::errc() || end != digits.data() + digits.size() || n == 0 || n > 1024)
      return std::nullopt;
    return InstanceType{std::string(name), n, s.mib_per_vcpu * n, 0, ""};
  }
  return std::nullopt;
}

}  // namespace pp::providers::gcp
