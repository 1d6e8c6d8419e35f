#include "providers/libvirt/volumes.h"

#include <algorithm>
#include <cctype>

namespace pp::providers::libvirt {

std::string RootVolumeName(std::string_view instance) {
  return std::string(instance) + std::string(kRootVolumeSuffix);
}
std::string CidataVolumeName(std::string_view instance) {
  return std::string(instance) + std::string(kCidataVolumeSuffix);
}

bool IsPerVmVolumeName(std::string_view volume) {
  return volume.ends_with(kRootVolumeSuffix) || volume.ends_with(kCidataVolumeSuffix);
}

Result<void> CheckImageName(std::string_view image) {
  static constexpr std::string_view kWhat =
      "libvirt: the pod's image annotation (io.katacontainers.config.hypervisor.image) '";
  const std::string shown(image.substr(0, 80));
  if (image.size() > 255)
    return Fail(Code::kInvalidArgument, kWhat, shown, "...' is longer than 255 bytes");
  const bool plain = std::all_of(image.begin(), image.end(), [](unsigned char c) {
    return std::isalnum(c) || c == '.' || c == '_' || c == '-' || c == '+';
  });
  if (image.empty() || !plain || !std::isalnum(static_cast<unsigned char>(image.front())) ||
      image.find("..") != std::string_view::npos) {
    return Fail(Code::kInvalidArgument, kWhat, shown,
                "' is not a plain volume name (letters, digits, . _ + -, no '/' or '..')");
  }
  if (IsPerVmVolumeName(image)) {
    return Fail(Code::kInvalidArgument, kWhat, shown,
                "' names a pod VM's own volume (*-root.qcow2, *-cidata.iso), not a base image");
  }
  return {};
}

}  // namespace pp::providers::libvirt
