// The SSH public key a pod VM's osProfile carries. Azure refuses a Linux VM with neither a
// password nor a key, and the pod VM needs no login: like cloud-api-adaptor, the provider makes a
// throwaway RSA key pair when none is configured and keeps only the public half.
#pragma once

#include <string>

#include "common/base/error.h"

namespace pp::providers::azure {

// "ssh-rsa <base64 of the RFC 4253 section 6.6 blob> peerpods" for a new 3072-bit RSA key whose
// private half is discarded at once.
Result<std::string> MakeThrowawaySshPublicKey();

// The first line of an OpenSSH public key file, checked to look like one ("ssh-rsa AAAA...",
// "ssh-ed25519 ...", "ecdsa-sha2-..."); FAILED_PRECONDITION naming the file otherwise.
Result<std::string> ReadSshPublicKey(const std::string& path);

}  // namespace pp::providers::azure
