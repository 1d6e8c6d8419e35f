// Pool mode: the forwarder of a pool VM, a pod VM booted ahead of demand with no pod identity
// (issue 12, proto/provision.proto).
//
// A pool VM boots with /run/peerpod/pool.json (common/podvm/pool_config.h) instead of apf.json.
// Its forwarder then serves provisioning (common/provision/server.h) on its -listen address with
// the pool credential, until one claim from the adaptor succeeds:
//   - the claim's user-data is what a cold pod VM boots with, and must carry apf.json;
//   - the initdata it carries (decoded) must be byte-identical to the initdata the VM booted with,
//     or both absent: initdata is measured at launch (SNP HOST_DATA, TDX MRCONFIGID) and cannot be
//     delivered later;
//   - the files services read once at boot (aa.toml, cdh.toml, policy.rego,
//     scratch-space.marker) must be what the VM booted with, present or absent alike;
//   - the apf.json must give the forwarder what it needs to serve (its TLS material);
//   - its files are written with process-user-data's all-or-nothing, allow-listed writer into
//     -output-dir; a refused claim writes nothing;
//   - pool.json (the pool credential) is deleted, the reply sent, the provisioning listener closed.
// Then the program goes on exactly as a forwarder started with that apf.json: pod network, wait
// for the agent, listen with the pod's certificate on the same address. A restarted forwarder that
// finds apf.json is an ordinary one.
//
// Threading: as Forwarder (one io_context; Create, Listen, Run and Shutdown on its thread). Run
// sets up the pod network on that thread after the claim, when nothing else is being served.
#pragma once

#include <memory>
#include <optional>
#include <ostream>
#include <string>

#include "common/base/asio.h"
#include "common/base/error.h"
#include "common/provision/server.h"
#include "forwarder/forwarder.h"
#include "forwarder/forwarder_cli.h"

namespace pp::forwarder {

// Whether to start in pool mode: -config does not exist and -pool-config does.
bool IsPoolMode(const ForwarderFlags& flags);

// "sha256:<lower-case hex>" of `toml` (CheckResponse.initdata_digest).
std::string InitdataDigest(const std::string& toml);

// What a Claim does once ProvisionServer accepted it (see the top of this file). `booted_initdata`
// is the decoded TOML the VM booted with, nullopt without one. Errors: INVALID_ARGUMENT for
// user-data that is refused or lacks apf.json or whose apf.json would not serve,
// FAILED_PRECONDITION "initdata differs from what this VM was launched with: it is measured at
// launch" (or "<file> differs ...: it was read at boot"); nothing is written then.
provision::ClaimHandler MakeClaimHandler(ForwarderFlags flags,
                                         std::optional<std::string> booted_initdata);

class PoolMode {
 public:
  // Reads -pool-config and <output-dir>/initdata (the initdata the VM booted with) and makes the
  // provisioning TLS context. Errors name the file and key (exit code 2 material). -config must be
  // <output-dir>/apf.json, where the claim writes it.
  static Result<std::unique_ptr<PoolMode>> Create(asio::any_io_executor executor,
                                                  const ForwarderFlags& flags);
  ~PoolMode();

  // Starts the provisioning listener: "pool VM <name> waiting for a claim".
  Result<asio::ip::tcp::endpoint> Listen();

  // Waits for the claim, then runs the forwarder with the delivered apf.json. Returns the
  // forwarder's bound endpoint once it listens; CANCELLED after Shutdown; the forwarder's options
  // or pod network error otherwise (the supervisor restarts the program, which finds apf.json).
  asio::awaitable<Result<asio::ip::tcp::endpoint>> Run();

  void Shutdown();

  // Shutdown(), then waits until provisioning has no connection left (see ProvisionServer::Stop):
  // the object may be destroyed afterwards while the io_context runs on.
  asio::awaitable<void> Stop();

 private:
  PoolMode(asio::any_io_executor executor, ForwarderFlags flags,
           provision::ProvisionServerOptions options, std::optional<std::string> booted_initdata);

  asio::any_io_executor executor_;
  ForwarderFlags flags_;
  provision::ProvisionServer provisioning_;
  std::unique_ptr<Forwarder> forwarder_;  // after the claim
  bool shut_down_ = false;
};

// ForwarderMain's pool mode: serves until SIGINT or SIGTERM. Exit codes as ForwarderMain's.
int RunPoolMode(const ForwarderFlags& flags, std::ostream& err);

}  // namespace pp::forwarder
