#include "providers/libvirt/kvm_probe.h"

#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <filesystem>
#include <optional>
#include <sstream>
#include <string>

#include "tests/support/test_util.h"

namespace pp::providers::libvirt {
namespace {

using std::chrono::milliseconds;

constexpr char kQemu[] = "qemu-system-x86_64";

bool InPath(const std::string& name) {
  const char* path = std::getenv("PATH");
  std::istringstream dirs(path != nullptr ? path : "/usr/bin:/bin");
  for (std::string dir; std::getline(dirs, dir, ':');) {
    if (!dir.empty() && ::access((dir + "/" + name).c_str(), X_OK) == 0) return true;
  }
  return false;
}

// Points TMPDIR at a fresh directory, so that anything a probe leaves behind shows.
class KvmProbe : public ::testing::Test {
 protected:
  void SetUp() override {
    if (const char* old = std::getenv("TMPDIR")) old_tmpdir_ = old;
    ::setenv("TMPDIR", tmp_.path().c_str(), 1);
  }
  void TearDown() override {
    if (old_tmpdir_) {
      ::setenv("TMPDIR", old_tmpdir_->c_str(), 1);
    } else {
      ::unsetenv("TMPDIR");
    }
  }

  bool TempDirIsEmpty() const { return std::filesystem::is_empty(tmp_.path()); }

  // This test process has no child left, neither running nor a zombie.
  static bool NoChildLeft() {
    errno = 0;
    return ::waitpid(-1, nullptr, WNOHANG) == -1 && errno == ECHILD;
  }

  testing::TempDir tmp_;
  std::optional<std::string> old_tmpdir_;
};

TEST_F(KvmProbe, TcgReachesLongMode) {
  if (!InPath(kQemu)) GTEST_SKIP() << kQemu << " is not installed";
  // Generous: TCG needs well under a second, but the test machine may be busy.
  auto result = ProbeAccelerator(kQemu, "tcg", milliseconds(30000));
  ASSERT_TRUE(result) << result.error().ToString();
  EXPECT_TRUE(result->works) << result->detail;
  EXPECT_NE(result->detail.find("long mode reached"), std::string::npos) << result->detail;
  EXPECT_TRUE(NoChildLeft());
  EXPECT_TRUE(TempDirIsEmpty());
}

TEST_F(KvmProbe, MissingQemuIsAnError) {
  auto result = ProbeAccelerator("/nonexistent/qemu-system-x86_64", "tcg", milliseconds(3000));
  ASSERT_FALSE(result);
  EXPECT_EQ(result.error().code, Code::kNotFound);
  EXPECT_NE(result.error().message.find("/nonexistent/qemu-system-x86_64"), std::string::npos)
      << result.error().message;
  EXPECT_TRUE(NoChildLeft());
  EXPECT_TRUE(TempDirIsEmpty());
}

TEST_F(KvmProbe, TimeoutKillsTheGuest) {
  if (!InPath(kQemu)) GTEST_SKIP() << kQemu << " is not installed";
  auto result = ProbeAccelerator(kQemu, "tcg", milliseconds(1));
  ASSERT_TRUE(result) << result.error().ToString();
  EXPECT_FALSE(result->works);
  EXPECT_NE(result->detail.find("no answer within 1 ms"), std::string::npos) << result->detail;
  EXPECT_TRUE(NoChildLeft());
  EXPECT_TRUE(TempDirIsEmpty());
}

TEST_F(KvmProbe, QemuFailingToStartIsNotAnError) {
  if (!InPath(kQemu)) GTEST_SKIP() << kQemu << " is not installed";
  auto result = ProbeAccelerator(kQemu, "no-such-accel", milliseconds(30000));
  ASSERT_TRUE(result) << result.error().ToString();
  EXPECT_FALSE(result->works);
  // The exit status and QEMU's own complaint, for the provider's log.
  EXPECT_NE(result->detail.find("qemu exited with status"), std::string::npos) << result->detail;
  EXPECT_NE(result->detail.find("no-such-accel"), std::string::npos) << result->detail;
  EXPECT_TRUE(NoChildLeft());
  EXPECT_TRUE(TempDirIsEmpty());
}

TEST_F(KvmProbe, EmptyAccelIsInvalid) {
  auto result = ProbeAccelerator(kQemu, "", milliseconds(3000));
  ASSERT_FALSE(result);
  EXPECT_EQ(result.error().code, Code::kInvalidArgument);
}

}  // namespace
}  // namespace pp::providers::libvirt
