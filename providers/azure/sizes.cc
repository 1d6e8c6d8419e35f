#include "providers/azure/sizes.h"

#include <nlohmann/json.hpp>

#include "providers/azure/arm_json.h"

namespace pp::providers::azure {
namespace {

// One family: Standard_<prefix><n><suffix> with n vCPUs and n * gib_per_vcpu GiB.
void AddFamily(std::vector<InstanceType>& out, std::string_view prefix, std::string_view suffix,
               std::initializer_list<unsigned> vcpus, unsigned gib_per_vcpu) {
  for (unsigned n : vcpus) {
    InstanceType t;
    t.name = "Standard_" + std::string(prefix) + std::to_string(n) + std::string(suffix);
    t.vcpus = n;
    t.memory_mib = 1024ull * gib_per_vcpu * n;
    out.push_back(std::move(t));
  }
}

std::vector<InstanceType> MakeTable() {
  std::vector<InstanceType> t;
  // General purpose: 4 GiB per vCPU.
  for (std::string_view suffix : {"as_v5", "ads_v5", "es_v5", "eds_v5"}) {
    AddFamily(t, "DC", suffix, {2, 4, 8, 16, 32, 48, 64, 96}, 4);
  }
  // Memory optimised: 8 GiB per vCPU (the 96-vCPU sizes stop at 672 GiB).
  for (std::string_view suffix : {"as_v5", "ads_v5", "es_v5", "eds_v5"}) {
    AddFamily(t, "EC", suffix, {2, 4, 8, 16, 20, 32, 48, 64}, 8);
    InstanceType big;
    big.name = "Standard_EC96" + std::string(suffix);
    big.vcpus = 96;
    big.memory_mib = 672ull * 1024;
    t.push_back(std::move(big));
  }
  // Confidential GPU: one NVIDIA H100 NVL (94 GiB) on an SEV-SNP VM.
  InstanceType gpu;
  gpu.name = "Standard_NCC40ads_H100_v5";
  gpu.vcpus = 40;
  gpu.memory_mib = 320ull * 1024;
  gpu.gpus = 1;
  gpu.gpu_model = "H100";
  t.push_back(std::move(gpu));
  return t;
}

}  // namespace

const std::vector<InstanceType>& KnownSizes() {
  static const std::vector<InstanceType> table = MakeTable();
  return table;
}

std::optional<InstanceType> FindKnownSize(std::string_view name) {
  for (const InstanceType& t : KnownSizes()) {
    if (EqualsIgnoreCase(t.name, name)) return t;
  }
  return std::nullopt;
}

bool ParseVmSizes(std::string_view body, std::vector<InstanceType>& out) {
  auto j = nlohmann::json::parse(body.begin(), body.end(), nullptr, false);
  out.clear();
  if (!j.is_object() || !j.contains("value") || !j["value"].is_array()) return false;
  for (const auto& v : j["value"]) {
    if (!v.is_object()) continue;
    const auto name = v.find("name");
    const auto cores = v.find("numberOfCores");
    const auto memory = v.find("memoryInMB");
    if (name == v.end() || !name->is_string() || cores == v.end() || !cores->is_number_unsigned() ||
        memory == v.end() || !memory->is_number_unsigned()) {
      continue;
    }
    InstanceType t;
    t.name = name->get<std::string>();
    t.vcpus = cores->get<unsigned>();
    t.memory_mib = memory->get<unsigned long long>();
    if (auto known = FindKnownSize(t.name)) {
      t.gpus = known->gpus;
      t.gpu_model = known->gpu_model;
    }
    out.push_back(std::move(t));
  }
  return true;
}

}  // namespace pp::providers::azure
