// The libFuzzer target tests/fuzz/gcp_response_fuzz.cc run in the ordinary build over its seed
// corpus and deterministic mutations of it (bit flips, truncations, splices, JSON-ish tokens), so
// that its invariants are checked on every CI run even where the clang fuzz build cannot compile
// std::expected. The invariants abort on violation, which fails this test.
#include <gtest/gtest.h>

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>
#include <string>
#include <vector>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size);

namespace {

int Feed(const std::string& input) {
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
