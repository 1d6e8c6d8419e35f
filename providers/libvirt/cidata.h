// The NoCloud seed a pod VM reads its user-data from: an ISO 9660 image with volume label
// `cidata` holding `user-data`, `meta-data` and an empty `vendor-data`, under their own names both in
// Rock Ridge and in the plain ISO 9660 directory. Built in memory with libisofs: the user-data carries the VM's TLS key
// and initdata, and never touches the node's disk outside the storage pool.
#pragma once

#include <string>

#include "common/base/error.h"

namespace pp::providers::libvirt {

// The whole ISO image. meta-data is `instance-id` and `local-hostname` = `hostname`.
Result<std::string> MakeCidataIso(const std::string& user_data, const std::string& hostname);

}  // namespace pp::providers::libvirt
