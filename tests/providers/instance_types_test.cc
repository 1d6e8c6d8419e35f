#include "providers/instance_types.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <random>
#include <tuple>

namespace pp::providers {
namespace {

using ::testing::HasSubstr;

constexpr unsigned long long kGiB = 1024;

InstanceType T(std::string name, unsigned vcpus, unsigned long long memory_mib, unsigned gpus = 0,
               std::string gpu_model = "") {
  return InstanceType{std::move(name), vcpus, memory_mib, gpus, std::move(gpu_model)};
}

InstanceTypePolicy Policy(std::vector<InstanceType> allowed,
                          std::string default_type = "default.small") {
  return InstanceTypePolicy{std::move(default_type), std::move(allowed)};
}

InstanceSpec Ask(unsigned vcpus, unsigned long long memory_mib, unsigned gpus = 0,
                 std::string gpu_model = "") {
  InstanceSpec spec;
  spec.vcpus = vcpus;
  spec.memory_mib = memory_mib;
  spec.gpus = gpus;
  spec.gpu_model = std::move(gpu_model);
  return spec;
}

std::vector<std::string> Names(std::initializer_list<const char*> names) {
  return {names.begin(), names.end()};
}

// cloud.md's counterexample to CAA's sort.Search: sorted by (GPUs, memory, vCPUs) the table is
// [(8, 8G), (2, 16G), (16, 32G)]; "fits 4 vCPU / 4 GiB" is true, false, true, so the binary search
// lands on the 16-vCPU type. The 8-vCPU type is the best fit.
TEST(SelectInstanceTypes, FindsTheFitBinarySearchMisses) {
  auto policy = Policy({T("big", 16, 32 * kGiB), T("mem", 2, 16 * kGiB), T("cpu", 8, 8 * kGiB)});
  auto got = SelectInstanceTypes(Ask(4, 4 * kGiB), policy);
  ASSERT_TRUE(got.has_value()) << got.error().ToString();
  EXPECT_EQ(*got, Names({"cpu", "big"}));
}

TEST(SelectInstanceTypes, CandidatesBestFirst) {
  auto policy = Policy({T("xl", 16, 64 * kGiB), T("m", 4, 16 * kGiB), T("s", 2, 8 * kGiB),
                        T("l", 8, 32 * kGiB), T("xs", 1, 2 * kGiB)});
  auto got = SelectInstanceTypes(Ask(2, 6 * kGiB), policy);
  ASSERT_TRUE(got.has_value()) << got.error().ToString();
  EXPECT_EQ(*got, Names({"s", "m", "l", "xl"}));
}

TEST(SelectInstanceTypes, TiesOrderedByNameWhateverTheListOrder) {
  std::vector<InstanceType> types = {T("b", 4, 8 * kGiB), T("c", 4, 8 * kGiB), T("a", 4, 8 * kGiB),
                                     T("a2", 2, 8 * kGiB)};
  std::vector<std::string> want = Names({"a2", "a", "b", "c"});
  std::sort(types.begin(), types.end(),
            [](const auto& x, const auto& y) { return x.name < y.name; });
  do {
    auto got = SelectInstanceTypes(Ask(1, kGiB), Policy(types));
    ASSERT_TRUE(got.has_value());
    EXPECT_EQ(*got, want);
  } while (std::next_permutation(types.begin(), types.end(),
                                 [](const auto& x, const auto& y) { return x.name < y.name; }));
}

TEST(SelectInstanceTypes, TypeListedTwiceAppearsOnce) {
  auto got = SelectInstanceTypes(Ask(1, kGiB), Policy({T("a", 2, 4 * kGiB), T("a", 2, 4 * kGiB)}));
  ASSERT_TRUE(got.has_value());
  EXPECT_EQ(*got, Names({"a"}));
}

// Azure's confidential H100 sizes
// (learn.microsoft.com/azure/virtual-machines/sizes/gpu-accelerated/ nccadsh100v5-series):
// Standard_NCC40ads_H100_v5 has 40 vCPUs, 320 GiB and one H100.
InstanceTypePolicy AzureGpuPolicy() {
  return Policy({T("Standard_DC4as_v5", 4, 16 * kGiB), T("Standard_DC16as_v5", 16, 64 * kGiB),
                 T("Standard_NC24ads_A100_v4", 24, 220 * kGiB, 1, "A100"),
                 T("Standard_NCC40ads_H100_v5", 40, 320 * kGiB, 1, "H100"),
                 T("Standard_NC48ads_A100_v4", 48, 440 * kGiB, 2, "A100")},
                "Standard_DC2as_v5");
}

TEST(SelectInstanceTypes, GpuPodGetsGpuTypesOnly) {
  auto got = SelectInstanceTypes(Ask(0, 0, 1), AzureGpuPolicy());
  ASSERT_TRUE(got.has_value()) << got.error().ToString();
  EXPECT_EQ(*got, Names({"Standard_NC24ads_A100_v4", "Standard_NCC40ads_H100_v5",
                         "Standard_NC48ads_A100_v4"}));
}

TEST(SelectInstanceTypes, GpuPodByModel) {
  auto got = SelectInstanceTypes(Ask(8, 64 * kGiB, 1, "h100"), AzureGpuPolicy());
  ASSERT_TRUE(got.has_value()) << got.error().ToString();
  EXPECT_EQ(*got, Names({"Standard_NCC40ads_H100_v5"}));
}

TEST(SelectInstanceTypes, GpuModelAloneMeansOneGpu) {
  auto got = SelectInstanceTypes(Ask(0, 0, 0, "A100"), AzureGpuPolicy());
  ASSERT_TRUE(got.has_value()) << got.error().ToString();
  EXPECT_EQ(*got, Names({"Standard_NC24ads_A100_v4", "Standard_NC48ads_A100_v4"}));
}

TEST(SelectInstanceTypes, GpuPodByCount) {
  auto got = SelectInstanceTypes(Ask(0, 0, 2), AzureGpuPolicy());
  ASSERT_TRUE(got.has_value()) << got.error().ToString();
  EXPECT_EQ(*got, Names({"Standard_NC48ads_A100_v4"}));
}

TEST(SelectInstanceTypes, GpuPodThatFitsNothingNamesTheLargestGpuType) {
  auto got = SelectInstanceTypes(Ask(0, 0, 2, "H100"), AzureGpuPolicy());
  ASSERT_FALSE(got.has_value());
  EXPECT_EQ(got.error().code, Code::kResourceExhausted);
  EXPECT_THAT(got.error().message, HasSubstr("2 GPUs H100"));
  EXPECT_THAT(got.error().message, HasSubstr("Standard_NC48ads_A100_v4"));
}

TEST(SelectInstanceTypes, NonGpuPodNeverGetsAGpuType) {
  auto got = SelectInstanceTypes(Ask(32, 0), AzureGpuPolicy());
  ASSERT_FALSE(got.has_value());
  EXPECT_EQ(got.error().code, Code::kResourceExhausted);
  EXPECT_THAT(got.error().message, HasSubstr("Standard_DC16as_v5 (16 vCPUs"));
}

TEST(SelectInstanceTypes, NothingFitsNamesTheLargest) {
  auto got =
      SelectInstanceTypes(Ask(4, 128 * kGiB), Policy({T("s", 2, 8 * kGiB), T("l", 8, 32 * kGiB)}));
  ASSERT_FALSE(got.has_value());
  EXPECT_EQ(got.error().code, Code::kResourceExhausted);
  EXPECT_THAT(got.error().message, HasSubstr("4 vCPUs, 131072 MiB"));
  EXPECT_THAT(got.error().message,
              HasSubstr("largest non-GPU type allowed is l (8 vCPUs, 32768 MiB)"));
}

TEST(SelectInstanceTypes, GpuPodWithNoGpuTypeAllowed) {
  auto got = SelectInstanceTypes(Ask(0, 0, 1), Policy({T("s", 2, 8 * kGiB)}));
  ASSERT_FALSE(got.has_value());
  EXPECT_EQ(got.error().code, Code::kResourceExhausted);
  EXPECT_THAT(got.error().message, HasSubstr("no GPU type among [s]"));
}

// CAA fitted only pods asking both; we fit on what was asked, the other dimension unconstrained.
TEST(SelectInstanceTypes, OnlyVcpusAsked) {
  auto policy = Policy({T("mem", 2, 64 * kGiB), T("cpu", 8, 8 * kGiB), T("tiny", 1, kGiB)});
  auto got = SelectInstanceTypes(Ask(4, 0), policy);
  ASSERT_TRUE(got.has_value()) << got.error().ToString();
  EXPECT_EQ(*got, Names({"cpu"}));
}

TEST(SelectInstanceTypes, OnlyMemoryAsked) {
  auto policy = Policy({T("mem", 2, 64 * kGiB), T("cpu", 8, 8 * kGiB), T("tiny", 1, kGiB)});
  auto got = SelectInstanceTypes(Ask(0, 4 * kGiB), policy);
  ASSERT_TRUE(got.has_value()) << got.error().ToString();
  EXPECT_EQ(*got, Names({"cpu", "mem"}));
}

TEST(SelectInstanceTypes, NothingAskedGetsTheDefault) {
  auto got = SelectInstanceTypes(Ask(0, 0), Policy({T("s", 2, 8 * kGiB)}, "m6a.large"));
  ASSERT_TRUE(got.has_value());
  EXPECT_EQ(*got, Names({"m6a.large"}));
}

TEST(SelectInstanceTypes, EmptyAllowedListOnlyTheDefault) {
  auto policy = Policy({}, "m6a.large");
  for (const InstanceSpec& spec : {Ask(0, 0), Ask(4, 4 * kGiB), Ask(64, 0), Ask(0, 0, 1)}) {
    auto got = SelectInstanceTypes(spec, policy);
    ASSERT_TRUE(got.has_value());
    EXPECT_EQ(*got, Names({"m6a.large"}));
  }
  InstanceSpec named;
  named.instance_type = "m6a.large";
  auto ok = SelectInstanceTypes(named, policy);
  ASSERT_TRUE(ok.has_value());
  EXPECT_EQ(*ok, Names({"m6a.large"}));

  named.instance_type = "m6a.48xlarge";
  auto refused = SelectInstanceTypes(named, policy);
  ASSERT_FALSE(refused.has_value());
  EXPECT_EQ(refused.error().code, Code::kInvalidArgument);
  EXPECT_THAT(refused.error().message, HasSubstr("only the default m6a.large"));
}

TEST(SelectInstanceTypes, NoDefaultConfigured) {
  auto got = SelectInstanceTypes(Ask(0, 0), Policy({}, ""));
  ASSERT_FALSE(got.has_value());
  EXPECT_EQ(got.error().code, Code::kFailedPrecondition);
}

TEST(SelectInstanceTypes, ExplicitTypeAllowedWinsAlone) {
  InstanceSpec spec = Ask(64, 512 * kGiB, 4);  // the annotation wins over what else was asked
  spec.instance_type = "Standard_DC4as_v5";
  auto got = SelectInstanceTypes(spec, AzureGpuPolicy());
  ASSERT_TRUE(got.has_value()) << got.error().ToString();
  EXPECT_EQ(*got, Names({"Standard_DC4as_v5"}));

  spec.instance_type = "Standard_DC2as_v5";  // the default is always allowed
  got = SelectInstanceTypes(spec, AzureGpuPolicy());
  ASSERT_TRUE(got.has_value()) << got.error().ToString();
  EXPECT_EQ(*got, Names({"Standard_DC2as_v5"}));
}

TEST(SelectInstanceTypes, ExplicitTypeNotAllowedRefused) {
  InstanceSpec spec;
  spec.instance_type = "Standard_DC96as_v5";
  auto got = SelectInstanceTypes(spec, AzureGpuPolicy());
  ASSERT_FALSE(got.has_value());
  EXPECT_EQ(got.error().code, Code::kInvalidArgument);
  EXPECT_THAT(got.error().message, HasSubstr("Standard_DC96as_v5"));
  EXPECT_THAT(got.error().message,
              HasSubstr("[Standard_DC4as_v5, Standard_DC16as_v5, Standard_NC24ads_A100_v4"));
}

// Random tables and requests against the definition: the candidates are exactly the fitting
// types, each fits, and they come in (GPUs, memory, vCPUs, name) order, so the first is the true
// minimum among the fitting ones.
TEST(SelectInstanceTypes, PropertyFirstCandidateIsTheTrueMinimum) {
  std::mt19937 rng(20261201);
  auto pick = [&rng](unsigned lo, unsigned hi) {
    return std::uniform_int_distribution<unsigned>(lo, hi)(rng);
  };
  const char* models[] = {"", "A100", "H100"};
  int fitted = 0;
  for (int round = 0; round < 3000; ++round) {
    std::vector<InstanceType> table;
    const unsigned n = pick(1, 12);
    for (unsigned i = 0; i < n; ++i) {
      InstanceType t{"t" + std::to_string(pick(0, 40)), pick(1, 16), pick(1, 16) * 1024ULL, 0, ""};
      if (pick(0, 3) == 0) {
        t.gpus = pick(1, 4);
        t.gpu_model = models[pick(1, 2)];
      }
      // Same name, same shape: a name stands for one type.
      auto same =
          std::find_if(table.begin(), table.end(), [&](const auto& o) { return o.name == t.name; });
      table.push_back(same == table.end() ? t : *same);
    }
    InstanceSpec spec = Ask(pick(0, 1) ? pick(1, 16) : 0, pick(0, 1) ? pick(1, 16) * 1024ULL : 0);
    if (pick(0, 2) == 0) {
      spec.gpus = pick(1, 4);
      spec.gpu_model = models[pick(0, 2)];
    }
    if (spec.vcpus == 0 && spec.memory_mib == 0 && spec.gpus == 0) spec.vcpus = 1;

    auto fits = [&](const InstanceType& t) {
      if ((spec.gpus > 0) != (t.gpus > 0) || t.gpus < spec.gpus) return false;
      if (!spec.gpu_model.empty() && t.gpu_model != spec.gpu_model) return false;
      return t.vcpus >= spec.vcpus && t.memory_mib >= spec.memory_mib;
    };
    auto key = [](const InstanceType& t) {
      return std::tie(t.gpus, t.memory_mib, t.vcpus, t.name);
    };
    const InstanceType* best = nullptr;
    std::vector<std::string> fitting;
    for (const InstanceType& t : table) {
      if (!fits(t)) continue;
      if (std::find(fitting.begin(), fitting.end(), t.name) == fitting.end())
        fitting.push_back(t.name);
      if (best == nullptr || key(t) < key(*best)) best = &t;
    }

    auto got = SelectInstanceTypes(spec, Policy(table));
    if (best == nullptr) {
      ASSERT_FALSE(got.has_value());
      EXPECT_EQ(got.error().code, Code::kResourceExhausted);
      continue;
    }
    ++fitted;
    ASSERT_TRUE(got.has_value()) << got.error().ToString();
    ASSERT_FALSE(got->empty());
    EXPECT_EQ(got->front(), best->name);
    ASSERT_EQ(got->size(), fitting.size());
    const InstanceType* previous = nullptr;
    for (const std::string& name : *got) {
      auto it =
          std::find_if(table.begin(), table.end(), [&](const auto& t) { return t.name == name; });
      ASSERT_NE(it, table.end());
      EXPECT_TRUE(fits(*it)) << name;
      if (previous != nullptr) {
        EXPECT_LT(key(*previous), key(*it));
      }
      previous = &*it;
    }
  }
  EXPECT_GT(fitted, 500);  // the generator exercises the fitting path, not only the refusals
}

}  // namespace
}  // namespace pp::providers
