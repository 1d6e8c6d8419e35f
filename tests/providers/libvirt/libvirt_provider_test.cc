// The libvirt provider against a real libvirtd (deploy/local/libvirt-netns.sh runs this binary in
// a network namespace of its own, beside a private libvirtd and a directory storage pool). No VM
// boots here: domains are defined and never started, volumes are small raw files.
#include "providers/libvirt/libvirt_provider.h"

#include <gtest/gtest.h>
#include <signal.h>

#include <chrono>
#include <future>
#include <iostream>

#include "providers/libvirt/connection.h"
#include "providers/libvirt/volumes.h"
#include "tests/providers/libvirt/libvirtd_fixture.h"

namespace pp::providers::libvirt {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;
using testing::LibvirtdEnv;
using testing::LibvirtdProbe;

OpContext Budget(std::chrono::seconds s) { return OpContext{Clock::now() + s, {}}; }

class LibvirtProviderTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto env = testing::LibvirtdEnvFromEnvironment();
    ASSERT_TRUE(env)
        << "run under deploy/local/libvirt-netns.sh (LIBVIRT_URI, LIBVIRT_POOL, ... unset)";
    env_ = *env;
    auto probe = LibvirtdProbe::Open(env_);
    ASSERT_TRUE(probe.has_value()) << probe.error().message;
    probe_.emplace(std::move(*probe));
    auto provider = MakeLibvirtProvider(testing::TestConfig(env_));
    ASSERT_TRUE(provider.has_value()) << provider.error().message;
    provider_ = std::move(*provider);
  }
  void TearDown() override {
    provider_.reset();
    if (probe_) {
      for (const auto& name : names_)
        probe_->Remove(name, {RootVolumeName(name), CidataVolumeName(name), name + "-disk.qcow2",
                              name + "-seed.iso"});
    }
  }
  // A fresh instance name, removed (domain and volumes) after the test whatever happens.
  std::string Name(const std::string& tag) {
    names_.push_back("podvm-" + tag + "-" + std::to_string(names_.size()) + "abcdef");
    return names_.back();
  }

  LibvirtdEnv env_;
  std::optional<LibvirtdProbe> probe_;
  std::unique_ptr<Provider> provider_;
  std::vector<std::string> names_;
  const Owner me_{"node-a", "sandbox-a"};
  const Owner other_{"node-b", "sandbox-b"};
};

// A StartVM of the same sandbox re-creates volumes of the same names while a reconcile deletes
// the old domain: the delete must take only what the old domain's definition references.
TEST_F(LibvirtProviderTest, DeleteInstanceDeletesOnlyTheVolumesItsDomainReferences) {
  const std::string name = Name("refs");
  auto disk = probe_->CreateVolume(name + "-disk.qcow2");
  auto seed = probe_->CreateVolume(name + "-seed.iso");
  ASSERT_TRUE(disk.has_value() && seed.has_value());
  auto uuid = probe_->DefineDomain(name, me_, *disk, *seed);
  ASSERT_TRUE(uuid.has_value()) << uuid.error().message;
  // The new attempt's volumes, which the old domain does not reference.
  ASSERT_TRUE(probe_->CreateVolume(RootVolumeName(name)).has_value());
  ASSERT_TRUE(probe_->CreateVolume(CidataVolumeName(name)).has_value());

  auto deleted = provider_->DeleteInstance(*uuid, Budget(60s));
  ASSERT_TRUE(deleted.has_value()) << deleted.error().message;
  EXPECT_FALSE(probe_->DomainExists(name));
  EXPECT_TRUE(probe_->VolumeExists(RootVolumeName(name)))
      << "the new attempt's root disk was deleted";
  EXPECT_TRUE(probe_->VolumeExists(CidataVolumeName(name)))
      << "the new attempt's cidata ISO was deleted";
  EXPECT_TRUE(probe_->VolumeExists(name + "-disk.qcow2")) << "a disk not named as ours was deleted";
  EXPECT_TRUE(probe_->VolumeExists(name + "-seed.iso")) << "a disk not named as ours was deleted";
}

TEST_F(LibvirtProviderTest, DeleteInstanceDeletesTheVolumesItMadeForTheDomain) {
  const std::string name = Name("own");
  auto root = probe_->CreateVolume(RootVolumeName(name));
  auto cidata = probe_->CreateVolume(CidataVolumeName(name));
  ASSERT_TRUE(root.has_value() && cidata.has_value());
  auto uuid = probe_->DefineDomain(name, me_, *root, *cidata);
  ASSERT_TRUE(uuid.has_value()) << uuid.error().message;
  auto deleted = provider_->DeleteInstance(*uuid, Budget(60s));
  ASSERT_TRUE(deleted.has_value()) << deleted.error().message;
  EXPECT_FALSE(probe_->DomainExists(name));
  EXPECT_FALSE(probe_->VolumeExists(RootVolumeName(name)));
  EXPECT_FALSE(probe_->VolumeExists(CidataVolumeName(name)));
}

// A crash between creating the volumes and defining the domain leaves the root overlay and the
// cidata ISO (the VM's TLS key): DeleteLeftovers removes them.
TEST_F(LibvirtProviderTest, DeleteLeftoversRemovesVolumesThatHaveNoDomain) {
  const std::string name = Name("crash");
  ASSERT_TRUE(probe_->CreateVolume(RootVolumeName(name)).has_value());
  ASSERT_TRUE(probe_->CreateVolume(CidataVolumeName(name)).has_value());
  auto removed = provider_->DeleteLeftovers(name, me_, Budget(60s));
  ASSERT_TRUE(removed.has_value()) << removed.error().message;
  EXPECT_FALSE(probe_->VolumeExists(RootVolumeName(name)));
  EXPECT_FALSE(probe_->VolumeExists(CidataVolumeName(name)));
  // Nothing left: still success.
  EXPECT_TRUE(provider_->DeleteLeftovers(name, me_, Budget(60s)).has_value());
}

TEST_F(LibvirtProviderTest, DeleteLeftoversNeverTouchesAnotherOwnersDomainOrItsVolumes) {
  const std::string name = Name("theirs");
  auto root = probe_->CreateVolume(RootVolumeName(name));
  auto cidata = probe_->CreateVolume(CidataVolumeName(name));
  ASSERT_TRUE(root.has_value() && cidata.has_value());
  ASSERT_TRUE(probe_->DefineDomain(name, other_, *root, *cidata).has_value());
  // Same node, another sandbox: still not ours.
  for (const Owner& not_owner : {me_, Owner{other_.node, "sandbox-c"}}) {
    auto removed = provider_->DeleteLeftovers(name, not_owner, Budget(60s));
    ASSERT_TRUE(removed.has_value()) << removed.error().message;
    EXPECT_TRUE(probe_->DomainExists(name));
    EXPECT_TRUE(probe_->VolumeExists(RootVolumeName(name)));
    EXPECT_TRUE(probe_->VolumeExists(CidataVolumeName(name)));
  }
  // Its owner's call removes the domain and its volumes.
  auto removed = provider_->DeleteLeftovers(name, other_, Budget(60s));
  ASSERT_TRUE(removed.has_value()) << removed.error().message;
  EXPECT_FALSE(probe_->DomainExists(name));
  EXPECT_FALSE(probe_->VolumeExists(RootVolumeName(name)));
  EXPECT_FALSE(probe_->VolumeExists(CidataVolumeName(name)));
}

// The pod's image annotation may not name another pod's volume (its cidata ISO holds its TLS key).
TEST_F(LibvirtProviderTest, CreateInstanceRefusesAnImageThatIsAPodVmsOwnVolume) {
  const std::string victim = Name("victim");
  ASSERT_TRUE(probe_->CreateVolume(CidataVolumeName(victim)).has_value());
  ASSERT_TRUE(probe_->CreateVolume(RootVolumeName(victim)).has_value());
  for (const std::string& image :
       {CidataVolumeName(victim), RootVolumeName(victim), "../" + env_.base_volume}) {
    InstanceSpec spec;
    spec.name = Name("thief");
    spec.owner = me_;
    spec.image = image;
    spec.user_data = "#cloud-config\n";
    auto created = provider_->CreateInstance(spec, Budget(60s));
    ASSERT_FALSE(created.has_value()) << image;
    EXPECT_EQ(created.error().code, Code::kInvalidArgument) << created.error().message;
    EXPECT_NE(created.error().message.find("image annotation"), std::string::npos)
        << created.error().message;
    EXPECT_FALSE(probe_->DomainExists(spec.name));
    EXPECT_FALSE(probe_->VolumeExists(RootVolumeName(spec.name)));
    EXPECT_FALSE(probe_->VolumeExists(CidataVolumeName(spec.name)));
  }
}

// The KVM probe (up to 3 s: on this machine KVM guests hang, so it takes all of it) runs while
// nothing holds the host lock, and is cut short by the deadline of the caller that runs it: a call
// that needs the host facts meanwhile keeps its own deadline.
TEST_F(LibvirtProviderTest, ACallerNeedingTheKvmProbeKeepsItsDeadline) {
  auto config = testing::TestConfig(env_);
  config.domain_type = "auto";
  auto provider = MakeLibvirtProvider(config);  // its warm-up starts probing at once
  ASSERT_TRUE(provider.has_value()) << provider.error().message;
  constexpr auto kBudget = 500ms;
  const auto start = Clock::now();
  auto verified = (*provider)->Verify(OpContext{start + kBudget, {}});
  const auto took = Clock::now() - start;
  EXPECT_LE(took, kBudget + 500ms)
      << "Verify waited " << std::chrono::duration_cast<std::chrono::milliseconds>(took).count()
      << " ms for the host facts with a deadline of 500 ms";
  // Success only where KVM answers the probe at once.
  if (!verified) {
    EXPECT_EQ(verified.error().code, Code::kDeadlineExceeded) << verified.error().message;
  }
}

// A libvirtd that stops answering an established connection: keepalive closes the connection
// after kKeepAliveInterval * (kKeepAliveCount + 1) seconds without an answer, which ends the call
// blocked on it; the next call opens a new connection.
TEST_F(LibvirtProviderTest, KeepaliveEndsACallToALibvirtdThatStoppedAnswering) {
  // Connected, and the host facts learnt: no call of the provider's own is in flight.
  ASSERT_TRUE(provider_->Verify(Budget(60s)).has_value());
  const int pid = LibvirtdProbe::LibvirtdPid();
  ASSERT_GT(pid, 0);
  ASSERT_EQ(::kill(pid, SIGSTOP), 0);
  struct Resume {
    int pid;
    ~Resume() { ::kill(pid, SIGCONT); }
  } resume{pid};
  constexpr auto kBound = std::chrono::seconds(kKeepAliveInterval * (kKeepAliveCount + 1));
  constexpr auto kMargin = 25s;
  const auto start = Clock::now();
  auto call = std::async(std::launch::async,
                         [&] { return provider_->ListInstances(me_.node, Budget(600s)); });
  if (call.wait_for(kBound + kMargin) != std::future_status::ready) {
    ADD_FAILURE() << "ListInstances still blocked on a stopped libvirtd after "
                  << (kBound + kMargin).count() << " s";
    ::kill(pid, SIGCONT);
  }
  auto listed = call.get();
  const auto took = Clock::now() - start;
  ASSERT_FALSE(listed.has_value());
  EXPECT_EQ(listed.error().code, Code::kUnavailable) << listed.error().message;
  EXPECT_LE(took, kBound + kMargin);
  std::cout << "ListInstances on a stopped libvirtd returned after "
            << std::chrono::duration_cast<std::chrono::milliseconds>(took).count() << " ms\n";
  ::kill(pid, SIGCONT);
  auto again = provider_->ListInstances(me_.node, Budget(60s));
  EXPECT_TRUE(again.has_value()) << again.error().message;
}

}  // namespace
}  // namespace pp::providers::libvirt
