#include "providers/libvirt/volumes.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace pp::providers::libvirt {
namespace {

TEST(VolumesTest, PerVmNamesDeriveFromTheInstance) {
  EXPECT_EQ(RootVolumeName("podvm-a-12345678"), "podvm-a-12345678-root.qcow2");
  EXPECT_EQ(CidataVolumeName("podvm-a-12345678"), "podvm-a-12345678-cidata.iso");
  EXPECT_TRUE(IsPerVmVolumeName(RootVolumeName("x")));
  EXPECT_TRUE(IsPerVmVolumeName(CidataVolumeName("x")));
  EXPECT_FALSE(IsPerVmVolumeName("podvm-base.qcow2"));
}

TEST(VolumesTest, BaseImageNamesAreAccepted) {
  for (const char* ok : {"podvm-base.qcow2", "fedora_39+cc.raw", "ubuntu-22.04.qcow2", "a"}) {
    EXPECT_TRUE(CheckImageName(ok).has_value()) << ok;
  }
}

TEST(VolumesTest, AnotherPodsVolumeIsRefusedNamingTheAnnotation) {
  for (const char* bad : {"podvm-web-1a2b3c4d-cidata.iso", "podvm-web-1a2b3c4d-root.qcow2"}) {
    auto r = CheckImageName(bad);
    ASSERT_FALSE(r.has_value()) << bad;
    EXPECT_EQ(r.error().code, Code::kInvalidArgument);
    EXPECT_NE(r.error().message.find("io.katacontainers.config.hypervisor.image"),
              std::string::npos);
    EXPECT_NE(r.error().message.find("pod VM's own volume"), std::string::npos)
        << r.error().message;
  }
}

TEST(VolumesTest, PathsAndOddNamesAreRefused) {
  for (const std::string& bad :
       std::vector<std::string>{"../podvm-base.qcow2", "/var/lib/libvirt/images/x.qcow2", "a/b",
                                "..", "x..y", ".hidden", "-flag", "sp ace", "new\nline",
                                std::string("nul\0x", 5), std::string(256, 'a'), std::string()}) {
    auto r = CheckImageName(bad);
    ASSERT_FALSE(r.has_value()) << bad;
    EXPECT_EQ(r.error().code, Code::kInvalidArgument) << bad;
    EXPECT_NE(r.error().message.find("image annotation"), std::string::npos) << r.error().message;
  }
}

}  // namespace
}  // namespace pp::providers::libvirt
