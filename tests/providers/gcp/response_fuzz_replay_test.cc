// The libFuzzer target tests/fuzz/gcp_response_fuzz.cc run in the ordinary build over its seed
// corpus and deterministic mutations of it (bit flips, truncations, splices, JSON-ish tokens),
// together with the parts of the provider the fuzz build cannot link (its clang cannot compile
// pp::Result's std::expected). The harness's invariants abort on violation, failing this test.
#include <gtest/gtest.h>

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "providers/gcp/compute.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size);

namespace {

// The libFuzzer harness, plus what the fuzz build cannot link (pp::Result): the classifier of error
// answers and of failed operations, whose messages stay bounded, and the key-file parser.
int Feed(const std::string& input) {
  using namespace pp::providers::gcp;
  for (long status : {200L, 400L, 401L, 403L, 404L, 429L, 503L}) {
    pp::providers::http::Response r;
    r.status = status;
    r.body = input;
    auto verdict = ClassifyResponse(r, "fuzz");
    if (verdict.has_value() != (status == 200)) return 1;
    if (!verdict && verdict.error().message.size() > 1000) return 1;
  }
  if (auto op = ParseOperation(input)) {
    auto failed = OperationError(*op, "fuzz");
    if (failed.has_value() != op->errors.empty()) return 1;
    if (!failed && failed.error().message.size() > 2000) return 1;
  }
  (void)ParseServiceAccountKey(input);
  return LLVMFuzzerTestOneInput(reinterpret_cast<const std::uint8_t*>(input.data()), input.size());
}

TEST(GcpResponseFuzzReplayTest, SeedsAndTheirMutationsKeepTheParsersInvariants) {
  std::vector<std::string> seeds;
  for (const auto& entry :
       std::filesystem::directory_iterator(std::string(PP_SOURCE_DIR) + "/tests/fuzz/corpus_gcp")) {
    std::ifstream in(entry.path(), std::ios::binary);
    std::stringstream text;
    text << in.rdbuf();
    seeds.push_back(text.str());
  }
  ASSERT_GE(seeds.size(), 5u);
  const std::vector<std::string> tokens = {
      "{",  "}",     "[",        "]",         "\"",        ":",       ",",    "null", "true",
      "-1", "1e999", "\"DONE\"", "\"error\"", "\"items\"", "\\u0000", "/../", "?"};
  std::mt19937 rng(20261201);  // deterministic: a failure reproduces
  for (const auto& seed : seeds) ASSERT_EQ(Feed(seed), 0);
  for (int n = 0; n < 20000; ++n) {
    std::string s = seeds[rng() % seeds.size()];
    const int edits = 1 + static_cast<int>(rng() % 4);
    for (int e = 0; e < edits && !s.empty(); ++e) {
      const std::size_t at = rng() % s.size();
      switch (rng() % 5) {
        case 0:
          s[at] = static_cast<char>(s[at] ^ (1 << (rng() % 8)));
          break;
        case 1:
          s.resize(at);
          break;
        case 2:
          s.insert(at, tokens[rng() % tokens.size()]);
          break;
        case 3:
          s.erase(at, 1 + rng() % 16);
          break;
        default: {
          const std::string& other = seeds[rng() % seeds.size()];
          s = s.substr(0, at) + other.substr(rng() % other.size());
        }
      }
    }
    ASSERT_EQ(Feed(s), 0);
  }
}

}  // namespace
