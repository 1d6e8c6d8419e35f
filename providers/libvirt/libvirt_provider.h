// The libvirt provider: one pod VM per sandbox on a libvirt host (local or remote URI), plain or
// confidential (AMD SEV-SNP, Intel TDX).
//
// Per VM it makes, in the configured storage pool, a qcow2 overlay `<name>-root.qcow2` on the base
// volume and a NoCloud ISO `<name>-cidata.iso` (uploaded from memory), defines and starts the
// domain, and waits for the VM's address in the network's DHCP leases. The instance id is the
// domain UUID; the owner (node, sandbox) is kept in the domain's <metadata> so ListInstances finds
// every VM of a node after the adaptor lost its state. Any failure undoes what the call made.
//
// Flags and environment keep cloud-api-adaptor's names (reference/caa.md section 6); additions:
// LIBVIRT_DOMAIN_TYPE (auto: kvm only when a probe guest really runs under KVM), LIBVIRT_CVM_FIRMWARE,
// LIBVIRT_TDX_QGS_SOCKET, LIBVIRT_IP_TIMEOUT. The launch security comes from the pod's
// machine_type annotation when it names one (none, sev-snp, tdx, auto), else from
// LIBVIRT_LAUNCH_SECURITY, else from DISABLECVM (true: none; false: auto). A confidential VM that
// the host cannot run is an error, never a plain VM.
#pragma once

#include <memory>

#include "providers/libvirt/factory.h"
#include "providers/libvirt/plan.h"
#include "providers/provider.h"

namespace pp::providers::libvirt {

// Fails with INVALID_ARGUMENT when ValidateConfig does. The provider connects lazily: a libvirtd
// that is down makes calls fail (UNAVAILABLE), not the creation.
Result<std::unique_ptr<Provider>> MakeLibvirtProvider(LibvirtConfig config);

}  // namespace pp::providers::libvirt
