// Runs tests/providers/aws/botocore_oracle.py (Debian's python3-botocore) over JSON lines.
// Test-only.
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace pp::providers::aws::testing {

// One output object per input object, in order; empty (and a test failure) when the oracle fails.
std::vector<nlohmann::json> RunBotocoreOracle(const std::string& mode,
                                              const std::vector<nlohmann::json>& cases);

}  // namespace pp::providers::aws::testing
