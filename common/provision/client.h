// The adaptor's side of proto/provision.proto: blocking calls to a pool VM's ProvisionServer.
//
// Each call connects, handshakes (mutual TLS, the server's certificate verified against the pool
// VM's name), makes one ttrpc call and closes, all on a private io_context run on the calling
// thread (the adaptor calls from its BlockingPool), bounded by `deadline`. Errors:
//   UNAVAILABLE        cannot connect, or the TLS handshake failed (the message says which; a
//                      server that refuses our certificate under TLS 1.3 shows as a connection
//                      closed before the reply)
//   DEADLINE_EXCEEDED  the deadline passed first
//   otherwise          the server's status code and message (INVALID_ARGUMENT for another VM's
//                      name, FAILED_PRECONDITION for "already claimed" or a different initdata)
//
// Threading: any thread; calls are independent. Secrets: errors never contain user-data.
#pragma once

#include <chrono>
#include <memory>
#include <string>

#include "common/base/error.h"
#include "provision.pb.h"

namespace asio::ssl {
class context;
}

namespace pp::provision {

struct Target {
  std::string address;  // the pool VM's IP address
  unsigned short port = 15150;
  std::string server_name;  // must match the VM certificate's DNS SAN: the pool VM's name
  // Client context (the adaptor's certificate + the CA it trusts); null = plaintext, only for
  // -disable-tls.
  std::shared_ptr<asio::ssl::context> tls;
};

Result<peerpods::provision::v1::CheckResponse> Check(
    const Target& target, std::chrono::steady_clock::time_point deadline);

Result<void> Claim(const Target& target, const peerpods::provision::v1::ClaimRequest& request,
                   std::chrono::steady_clock::time_point deadline);

}  // namespace pp::provision
