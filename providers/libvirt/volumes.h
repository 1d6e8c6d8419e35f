// The volumes the libvirt provider makes per VM, and which pool volumes a pod may boot from.
//
// Per VM: `<instance>-root.qcow2` (an overlay on the base volume) and `<instance>-cidata.iso` (the
// NoCloud seed, which holds the VM's TLS key). A pod's image annotation may name another base
// volume in the pool, but never a per-VM volume: that would boot from another pod's disk or hand
// it another VM's key. Pure functions, no I/O.
#pragma once

#include <string>
#include <string_view>

#include "common/base/error.h"

namespace pp::providers::libvirt {

inline constexpr std::string_view kRootVolumeSuffix = "-root.qcow2";
inline constexpr std::string_view kCidataVolumeSuffix = "-cidata.iso";

std::string RootVolumeName(std::string_view instance);
std::string CidataVolumeName(std::string_view instance);

// True for a name this provider gives per-VM volumes (whatever the instance).
bool IsPerVmVolumeName(std::string_view volume);

// Checks the pod's image annotation (io.katacontainers.config.hypervisor.image) as a base volume
// name: a plain name ([A-Za-z0-9._+-], starting with a letter or digit, at most 255 bytes, so no
// '/' and no '..'), not a per-VM volume name. INVALID_ARGUMENT naming the annotation otherwise.
// Empty is not checked here: it means the configured base volume.
Result<void> CheckImageName(std::string_view image);

}  // namespace pp::providers::libvirt
