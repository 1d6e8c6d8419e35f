#include "tests/providers/provider_contract.h"

#include <algorithm>
#include <stop_token>

namespace pp::providers::testing {
namespace {

using Clock = std::chrono::steady_clock;
using namespace std::chrono_literals;

// How long a call may take to notice a deadline already passed or a stop already requested.
constexpr auto kPrompt = 2s;

bool Has(const std::vector<Instance>& list, const std::string& id) {
  return std::any_of(list.begin(), list.end(), [&](const Instance& i) { return i.id == id; });
}

// Every call, given a context that already ended, fails at once with the matching code.
void ExpectEveryCallHonours(Provider& provider, const InstanceSpec& spec, const std::string& id,
                            const OpContext& ctx, Code want) {
  const auto check = [&](const char* what, const Error* error, Clock::time_point start) {
    EXPECT_LE(Clock::now() - start, kPrompt) << what << " took too long to notice";
    ASSERT_NE(error, nullptr) << what << " succeeded with a context that had ended";
    EXPECT_EQ(error->code, want) << what << ": " << error->message;
  };
  auto start = Clock::now();
  auto created = provider.CreateInstance(spec, ctx);
  check("CreateInstance", created ? nullptr : &created.error(), start);
  start = Clock::now();
  auto deleted = provider.DeleteInstance(id, ctx);
  check("DeleteInstance", deleted ? nullptr : &deleted.error(), start);
  start = Clock::now();
  auto listed = provider.ListInstances(spec.owner.node, ctx);
  check("ListInstances", listed ? nullptr : &listed.error(), start);
  start = Clock::now();
  auto verified = provider.Verify(ctx);
  check("Verify", verified ? nullptr : &verified.error(), start);
  start = Clock::now();
  auto removed = provider.DeleteLeftovers(spec.name, spec.owner, ctx);
  check("DeleteLeftovers", removed ? nullptr : &removed.error(), start);
}

}  // namespace

void ProviderContractTest::SetUp() {
  auto provider = GetParam().make_provider();
  ASSERT_TRUE(provider.has_value()) << provider.error().message;
  provider_ = std::move(*provider);
}

void ProviderContractTest::TearDown() {
  if (!provider_) return;
  for (const Owner& owner : {owner_a_, owner_b_}) {
    if (auto listed = provider_->ListInstances(owner.node, Budget(60s))) {
      for (const auto& instance : *listed) {
        if (std::find(names_.begin(), names_.end(), instance.name) != names_.end()) {
          (void)provider_->DeleteInstance(instance.id, Budget(120s));
        }
      }
    }
    for (const auto& name : names_) (void)provider_->DeleteLeftovers(name, owner, Budget(60s));
  }
  provider_.reset();
}

std::string ProviderContractTest::NewName() {
  std::string test = ::testing::UnitTest::GetInstance()->current_test_info()->name();
  test = test.substr(0, test.find('/'));
  std::transform(test.begin(), test.end(), test.begin(),
                 [](unsigned char c) { return std::tolower(c); });
  names_.push_back("podvm-contract-" + test.substr(0, 30) + "-" + std::to_string(names_.size()));
  return names_.back();
}

OpContext ProviderContractTest::Budget(std::chrono::seconds s) const {
  return OpContext{Clock::now() + s, {}};
}

TEST_P(ProviderContractTest, VerifySucceedsForAWorkingConfiguration) {
  auto ok = provider_->Verify(Budget(60s));
  EXPECT_TRUE(ok.has_value()) << ok.error().message;
}

// One instance through its whole life (instances are slow to make: one boot covers it all).
TEST_P(ProviderContractTest, AnInstanceIsCreatedListedByItsNodeAndDeletedTwice) {
  const InstanceSpec spec = GetParam().make_spec(NewName(), owner_a_);
  auto created = provider_->CreateInstance(spec, Budget(GetParam().create_timeout));
  ASSERT_TRUE(created.has_value()) << created.error().message;
  EXPECT_FALSE(created->id.empty());
  EXPECT_EQ(created->name, spec.name);
  EXPECT_FALSE(created->ips.empty()) << "created without an address";
  EXPECT_EQ(created->owner, spec.owner);

  auto mine = provider_->ListInstances(owner_a_.node, Budget(60s));
  ASSERT_TRUE(mine.has_value()) << mine.error().message;
  ASSERT_TRUE(Has(*mine, created->id)) << "ListInstances of its node does not show it";
  for (const auto& i : *mine) {
    if (i.id == created->id) {
      EXPECT_EQ(i.owner, spec.owner);
      EXPECT_EQ(i.name, spec.name);
    }
  }
  auto theirs = provider_->ListInstances(owner_b_.node, Budget(60s));
  ASSERT_TRUE(theirs.has_value()) << theirs.error().message;
  EXPECT_FALSE(Has(*theirs, created->id)) << "ListInstances of another node shows it";

  auto deleted = provider_->DeleteInstance(created->id, Budget(120s));
  ASSERT_TRUE(deleted.has_value()) << deleted.error().message;
  auto again = provider_->DeleteInstance(created->id, Budget(120s));
  EXPECT_TRUE(again.has_value()) << "a second delete: " << again.error().message;
  auto after = provider_->ListInstances(owner_a_.node, Budget(60s));
  ASSERT_TRUE(after.has_value()) << after.error().message;
  EXPECT_FALSE(Has(*after, created->id)) << "still listed after DeleteInstance";
  if (GetParam().leftovers) {
    EXPECT_EQ(GetParam().leftovers(spec.name), std::vector<std::string>{})
        << "left behind by DeleteInstance";
  }
}

TEST_P(ProviderContractTest, DeletingAnUnknownIdIsSuccess) {
  auto deleted = provider_->DeleteInstance(GetParam().unknown_id, Budget(60s));
  EXPECT_TRUE(deleted.has_value()) << deleted.error().message;
}

TEST_P(ProviderContractTest, AFailedCreateLeavesNothingBehind) {
  InstanceSpec spec = GetParam().make_spec(NewName(), owner_a_);
  GetParam().break_spec(spec);
  auto created = provider_->CreateInstance(spec, Budget(GetParam().create_timeout));
  ASSERT_FALSE(created.has_value()) << "break_spec did not make the create fail";
  auto listed = provider_->ListInstances(owner_a_.node, Budget(60s));
  ASSERT_TRUE(listed.has_value()) << listed.error().message;
  for (const auto& i : *listed)
    EXPECT_NE(i.name, spec.name) << "a failed create left instance " << i.id;
  if (GetParam().leftovers) {
    EXPECT_EQ(GetParam().leftovers(spec.name), std::vector<std::string>{})
        << "left behind by a failed create";
  }
  auto removed = provider_->DeleteLeftovers(spec.name, spec.owner, Budget(60s));
  EXPECT_TRUE(removed.has_value()) << removed.error().message;
}

TEST_P(ProviderContractTest, DeleteLeftoversOfANameWithNothingIsSuccess) {
  auto removed = provider_->DeleteLeftovers(NewName(), owner_a_, Budget(60s));
  EXPECT_TRUE(removed.has_value()) << removed.error().message;
}

TEST_P(ProviderContractTest, ADeadlineAlreadyPassedIsHonouredPromptly) {
  const InstanceSpec spec = GetParam().make_spec(NewName(), owner_a_);
  ExpectEveryCallHonours(*provider_, spec, GetParam().unknown_id, OpContext{Clock::now() - 1s, {}},
                         Code::kDeadlineExceeded);
}

TEST_P(ProviderContractTest, AStopAlreadyRequestedIsHonouredPromptly) {
  const InstanceSpec spec = GetParam().make_spec(NewName(), owner_a_);
  std::stop_source stop;
  stop.request_stop();
  ExpectEveryCallHonours(*provider_, spec, GetParam().unknown_id,
                         OpContext{Clock::now() + 600s, stop.get_token()}, Code::kCancelled);
}

}  // namespace pp::providers::testing
