// libFuzzer target: arbitrary bytes as apf.json, and as pool.json (the same JSON world: a pool
// VM's boot config). Whatever parses must serialize and parse back to the same configuration.
// Built by the "fuzz" preset (clang, ASan+UBSan).
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#include "common/podvm/apf_config.h"
#include "common/podvm/pool_config.h"

namespace {

void PoolConfigRoundTrip(std::string_view input) {
  pp::podvm::PoolConfig config;
  std::string error;
  if (!pp::podvm::ParsePoolConfig(input, config, error)) {
    if (error.empty()) std::abort();
    return;
  }
  pp::podvm::PoolConfig again;
  if (!pp::podvm::ParsePoolConfig(pp::podvm::SerializePoolConfig(config), again, error)) std::abort();
  if (!(again == config)) std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  PoolConfigRoundTrip(input);
  pp::podvm::ApfConfig config;
  std::string error;
  std::vector<std::string> notes;
  if (!pp::podvm::ParseApfConfig(input, config, error, &notes)) {
    if (error.empty()) std::abort();  // every refusal says why
    return 0;
  }
  const std::string json = pp::podvm::SerializeApfConfig(config);
  pp::podvm::ApfConfig again;
  if (!pp::podvm::ParseApfConfig(json, again, error)) std::abort();
  if (!(again == config)) std::abort();
  return 0;
}
