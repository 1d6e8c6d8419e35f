// libvirt's C objects as RAII handles, and libvirt's errors as pp::Error with the provider taxonomy
// (providers/provider.h). Every libvirt call of the provider goes through these.
#pragma once

#include <libvirt/libvirt.h>

#include <string_view>

#include "common/base/error.h"
#include "common/base/handle.h"

namespace pp::providers::libvirt {

// virConnectClose drops one reference: a Connection made with virConnectRef is the caller's own.
using Connection = CHandle<virConnect, virConnectClose>;
using Domain = CHandle<virDomain, virDomainFree>;
using Pool = CHandle<virStoragePool, virStoragePoolFree>;
using Volume = CHandle<virStorageVol, virStorageVolFree>;
using Network = CHandle<virNetwork, virNetworkFree>;
using Stream = CHandle<virStream, virStreamFree>;

// The last libvirt error of this thread as a pp::Error, with the provider's taxonomy (not found,
// misconfigured, retryable, ...), and the thread's error reset. `what` names the failed step.
Error LastError(std::string_view what);

// libvirt prints every error to stderr unless told otherwise; ours travel in pp::Error. Idempotent.
void SilenceLibvirtOnce();

}  // namespace pp::providers::libvirt
