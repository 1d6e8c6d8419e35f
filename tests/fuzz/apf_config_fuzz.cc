// libFuzzer target: arbitrary bytes as apf.json. Whatever parses must serialize and parse back to
// the same configuration. Built by the "fuzz" preset (clang, ASan+UBSan).
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#include "forwarder/apf_config.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  pp::forwarder::ApfConfig config;
  std::string error;
  std::vector<std::string> notes;
  if (!pp::forwarder::ParseApfConfig(input, config, error, &notes)) {
    if (error.empty()) std::abort();  // every refusal says why
    return 0;
  }
  const std::string json = pp::forwarder::SerializeApfConfig(config);
  pp::forwarder::ApfConfig again;
  if (!pp::forwarder::ParseApfConfig(json, again, error)) std::abort();
  if (!(again == config)) std::abort();
  return 0;
}
