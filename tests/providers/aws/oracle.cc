#include "tests/providers/aws/oracle.h"

#include <gtest/gtest.h>
#include <stdlib.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>

namespace pp::providers::aws::testing {

std::vector<nlohmann::json> RunBotocoreOracle(const std::string& mode,
                                              const std::vector<nlohmann::json>& cases) {
  std::string dir = (std::filesystem::temp_directory_path() / "pp-oracle-XXXXXX").string();
  if (::mkdtemp(dir.data()) == nullptr) {
    ADD_FAILURE() << "mkdtemp failed";
    return {};
  }
  {
    std::ofstream in(dir + "/in.jsonl");
    for (const auto& c : cases) in << c.dump() << "\n";
  }
  const std::string cmd = "/usr/bin/python3 " + std::string(PP_SOURCE_DIR) +
                          "/tests/providers/aws/botocore_oracle.py " + mode + " < " + dir +
                          "/in.jsonl > " + dir + "/out.jsonl 2> " + dir + "/err.txt";
  const int rc = std::system(cmd.c_str());
  std::vector<nlohmann::json> out;
  std::ifstream result(dir + "/out.jsonl");
  for (std::string line; std::getline(result, line);) out.push_back(nlohmann::json::parse(line));
  if (rc != 0 || out.size() != cases.size()) {
    std::ifstream err(dir + "/err.txt");
    std::string text((std::istreambuf_iterator<char>(err)), std::istreambuf_iterator<char>());
    ADD_FAILURE() << "botocore oracle failed (" << rc << "): " << text;
    out.clear();
  }
  std::error_code ec;
  std::filesystem::remove_all(dir, ec);
  return out;
}

}  // namespace pp::providers::aws::testing
