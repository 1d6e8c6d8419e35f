#include "providers/libvirt/handles.h"

#include <libvirt/virterror.h>

#include <mutex>
#include <string>

namespace pp::providers::libvirt {

// The last libvirt error of this thread as a pp::Error, with the provider's taxonomy.
Error LastError(std::string_view what) {
  const virError* err = virGetLastError();
  std::string message = std::string("libvirt: ") + std::string(what);
  Code code = Code::kInternal;
  if (err != nullptr) {
    if (err->message != nullptr) message += std::string(": ") + err->message;
    switch (err->code) {
      case VIR_ERR_NO_DOMAIN:
      case VIR_ERR_NO_STORAGE_VOL:
        code = Code::kNotFound;
        break;
      case VIR_ERR_NO_STORAGE_POOL:
      case VIR_ERR_NO_NETWORK:
      case VIR_ERR_CONFIG_UNSUPPORTED:
      case VIR_ERR_AUTH_FAILED:
      case VIR_ERR_ACCESS_DENIED:
        code = Code::kFailedPrecondition;
        break;
      case VIR_ERR_NO_CONNECT:
      case VIR_ERR_RPC:
      case VIR_ERR_SYSTEM_ERROR:
      case VIR_ERR_OPERATION_TIMEOUT:
      case VIR_ERR_AGENT_UNRESPONSIVE:
        code = Code::kUnavailable;
        break;
      case VIR_ERR_OPERATION_DENIED:
        code = Code::kPermissionDenied;
        break;
      default:
        // A transport failure (a connection closed by keepalive, say) is reported as an internal
        // error from the RPC layer: retryable like the rest of UNAVAILABLE.
        if (err->domain == VIR_FROM_RPC) code = Code::kUnavailable;
        break;
    }
  }
  virResetLastError();
  return Error{code, std::move(message)};
}

// libvirt prints every error to stderr unless told otherwise; ours carry them in pp::Error.
void SilenceLibvirtOnce() {
  static std::once_flag once;
  std::call_once(once, [] { virSetErrorFunc(nullptr, [](void*, virErrorPtr) {}); });
}

}  // namespace pp::providers::libvirt
