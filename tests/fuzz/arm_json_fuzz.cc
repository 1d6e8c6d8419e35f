// libFuzzer target: arbitrary bytes as every Azure Resource Manager document the azure provider
// reads (ARM error, async-operation status, VM, VM list page, NIC, public IP, token reply), and as
// the strings of a VM body it writes. Parsers must refuse with a reason or yield what they promise;
// a built body must always be JSON. Built by the "fuzz" preset (clang, ASan+UBSan).
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

#include "providers/azure/arm_json.h"

namespace az = pp::providers::azure;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  std::string error;

  az::ArmError arm;
  if (!az::ParseArmError(input, arm, error) && error.empty()) std::abort();
  if (az::ParseArmError(input, arm, error) && arm.code.empty()) std::abort();

  error.clear();
  az::AsyncOperation op;
  if (az::ParseAsyncOperation(input, op, error)) {
    if (op.status.empty()) std::abort();
    if (op.Succeeded() && !op.Terminal()) std::abort();
  } else if (error.empty()) {
    std::abort();
  }

  error.clear();
  az::VmInfo vm;
  if (az::ParseVm(input, vm, error)) {
    if (vm.name.empty()) std::abort();
  } else if (error.empty()) {
    std::abort();
  }

  error.clear();
  az::VmPage page;
  if (az::ParseVmPage(input, page, error)) {
    for (const auto& v : page.vms) {
      if (v.name.empty()) std::abort();
    }
  } else if (error.empty()) {
    std::abort();
  }

  error.clear();
  az::NicInfo nic;
  if (!az::ParseNic(input, nic, error) && error.empty()) std::abort();

  std::string address;
  error.clear();
  if (!az::ParsePublicIp(input, address, error) && error.empty()) std::abort();

  error.clear();
  az::TokenReply token;
  if (az::ParseTokenReply(input, 1'700'000'000, token, error)) {
    if (token.access_token.empty() || token.expires_in_s <= 0) std::abort();
  } else if (error.empty()) {
    std::abort();
  }

  // The input's pieces as the strings of a body: whatever bytes, the body is JSON.
  az::VmBodyParams p;
  const std::size_t third = input.size() / 3;
  p.location = std::string(input.substr(0, third));
  p.vm_size = std::string(input.substr(third, third));
  p.image = std::string(input.substr(2 * third));
  p.tags[p.location] = p.vm_size;
  p.user_data_b64 = p.image;
  p.confidential = size % 2 == 0;
  p.public_ip = size % 3 == 0;
  const auto body = nlohmann::json::parse(az::BuildVmBody(p), nullptr, false);
  if (body.is_discarded() || !body.is_object() || !body.contains("properties")) std::abort();
  if (p.confidential != body["properties"].contains("securityProfile")) std::abort();
  return 0;
}
