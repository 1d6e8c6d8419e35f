// Does a QEMU accelerator really run a guest? /dev/kvm existing is not enough: on a nested host
// (seen with kvm-pvm) KVM emulates every guest instruction, ~400x slower than TCG: a Linux kernel
// seems to hang after "Probing EDD" (it is in fact decompressing itself at ~50 KB/s). The libvirt
// provider asks for domain type `kvm` only when ProbeAccelerator("...", "kvm", ...) works, else
// `qemu`.
//
// The probe boots a 64 KiB -bios ROM whose code goes real mode -> protected mode -> 64-bit long
// mode (2 MiB identity-mapped page tables), counts 2^25 loop iterations and writes to QEMU's
// isa-debug-exit port: milliseconds with hardware virtualization or TCG, over a minute when the
// instructions are emulated. Blocking (up to `timeout` plus a kill); thread-safe; it waits only for
// the pid it started, so the process must not ignore SIGCHLD.
#pragma once

#include <chrono>
#include <string>
#include <string_view>

#include "common/base/error.h"

namespace pp::providers::libvirt {

struct KvmProbeResult {
  bool works = false;
  // Why, for logs: "long mode reached and 2^25 loop iterations done in 93 ms", "no answer within
  // 3000 ms (guest reached long mode ...)", "qemu exited with status 1 ...: <qemu's last words>".
  std::string detail;
};

// Runs `qemu_binary` (a path, or a name looked up in PATH) with `-accel <accel>` on the probe ROM.
// works = QEMU exited with the probe's isa-debug-exit status within `timeout` (3 s is generous:
// QEMU starts in ~50 ms, the loop takes ~200 ms under TCG and should take ~15 ms under hardware
// virtualization, about a cycle per iteration; over a minute when emulated). A guest that
// hangs, is too slow, or a QEMU that exits otherwise (e.g. KVM unavailable) is works=false, not an
// error. Fails only when the probe cannot run: NOT_FOUND / PERMISSION_DENIED when qemu cannot be
// executed, an errno-derived error when the temp dir or the ROM cannot be written, INVALID_ARGUMENT
// for an empty accel. Leaves nothing behind on any path: QEMU is killed (SIGKILL) and reaped, the
// private temp dir (ROM, QEMU's stderr, the guest's progress marks) is removed.
Result<KvmProbeResult> ProbeAccelerator(const std::string& qemu_binary, std::string_view accel,
                                        std::chrono::milliseconds timeout);

}  // namespace pp::providers::libvirt
