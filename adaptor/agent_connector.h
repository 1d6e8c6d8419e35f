// AgentConnector: the adaptor's side of each pod VM's agent path. It renders the user-data a pod VM
// boots with (apf.json with the forwarder's TLS material, initdata), and runs one AgentProxy per
// started sandbox.
//
// TLS modes (reference/caa.md section 3):
// - auto (default): a CA (ECDSA P-256) persisted in `tls_dir` issues each VM a server certificate
//   whose SAN is the instance name and the adaptor a client certificate; the VM gets its key pair
//   and the CA through user-data, and checks the adaptor's certificate against that CA.
// - manual: CACERT_FILE, CERT_FILE, CERT_KEY give the CA and the adaptor's client key pair; the pod
//   VM image carries its own server certificate for the name "podvm-server".
// - disabled (-disable-tls): plaintext, logged loudly.
// Threading: UserData() is called from the blocking pool and is thread-safe; the proxy methods run
// on the connector's strand.
#pragma once

#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>

#include "adaptor/agent_proxy.h"
#include "adaptor/sandbox_store.h"
#include "adaptor/warm_pool.h"
#include "common/tls/ca.h"
#include "common/tls/settings.h"

namespace pp::adaptor {

struct AgentConnectorOptions {
  unsigned short forwarder_port = 15150;
  std::chrono::nanoseconds proxy_timeout = std::chrono::minutes(5);
  bool disable_tls = false;
  std::string tls_dir = "/run/peerpod/tls";  // auto mode: where the CA lives
  std::string ca_cert_file, cert_file, cert_key;  // manual mode when all three are set
  std::string tls_min_version;
  std::string tls_cipher_suites;  // comma-separated IANA names
  // Metrics hooks for every proxy (see AgentProxyOptions); optional.
  std::function<void(int delta)> on_connection;
  std::function<void(std::size_t to_vm, std::size_t from_vm)> on_bytes;
};

// Also the warm pools' channel to their VMs (PoolChannel): a pool VM's boot user-data, its checks
// and claims over mutual TLS with the adaptor's client certificate (auto mode only).
class AgentConnector final : public PoolChannel {
 public:
  static Result<std::unique_ptr<AgentConnector>> Create(asio::any_io_executor executor, AgentConnectorOptions options);

  // The #cloud-config user-data for the record's VM. Holds a private key: never log it.
  Result<std::string> UserData(const SandboxRecord& record) const;

  // PoolChannel. Pool VMs exist only in auto mode (FAILED_PRECONDITION otherwise): their server
  // certificates come from the adaptor's CA.
  Result<std::string> PoolUserData(const std::string& vm_name, const std::string& initdata) const override;
  Result<void> Check(const std::string& vm_name, const std::string& ip, const std::string& initdata_digest,
                     std::chrono::steady_clock::time_point deadline) const override;
  Result<void> Claim(const std::string& vm_name, const std::string& ip, const std::string& sandbox_id,
                     const std::string& user_data, std::chrono::steady_clock::time_point deadline) const override;

  // Starts the proxy on agent.ttrpc and waits until a Health/Check passes through the chain, at
  // most until min(deadline, now + proxy_timeout). On failure the proxy is gone again.
  asio::awaitable<Result<void>> Connect(SandboxRecord record, std::string socket_path,
                                        std::chrono::steady_clock::time_point deadline);

  // Restarts the proxy of a sandbox found running after an adaptor restart; does not wait.
  asio::awaitable<Result<void>> Resume(SandboxRecord record, std::string socket_path);

  // Called by the StartVM that will Connect() this sandbox, while it still holds the sandbox's
  // lock: a concurrent StartVM of the same sandbox then joins that connect instead of racing it.
  // Thread-safe.
  void Reserve(const std::string& id);

  // The outcome of the sandbox's agent path: the result of the connect in progress or last made
  // (waiting for it), OK for a proxy resumed after a restart, nullopt when there is none.
  asio::awaitable<std::optional<Result<void>>> Join(std::string id);

  // Stops the sandbox's proxy (and a Connect() waiting for it). Unknown ids are fine.
  asio::awaitable<void> Disconnect(std::string id);

  asio::awaitable<void> DisconnectAll();

 private:
  AgentConnector(asio::any_io_executor executor, AgentConnectorOptions options);
  Result<AgentProxyOptions> ProxyOptions(const SandboxRecord& record, std::string socket_path) const;
  asio::awaitable<Result<void>> ConnectOnStrand(SandboxRecord record, std::string socket_path,
                                                std::chrono::steady_clock::time_point deadline);
  asio::awaitable<Result<void>> ResumeOnStrand(SandboxRecord record, std::string socket_path);
  asio::awaitable<void> DisconnectOnStrand(std::string id, bool all);
  asio::awaitable<std::optional<Result<void>>> JoinOnStrand(std::string id);
  struct Connecting {
    explicit Connecting(asio::strand<asio::any_io_executor> strand)
        : done(strand, std::chrono::steady_clock::time_point::max()) {}
    asio::steady_timer done;         // on strand_: cancelled when `result` is set
    std::optional<Result<void>> result;  // on strand_
  };
  std::shared_ptr<Connecting> TakeReservation(const std::string& id);

  asio::strand<asio::any_io_executor> strand_;
  AgentConnectorOptions options_;
  std::optional<tls::CertificateAuthority> ca_;   // auto mode
  std::shared_ptr<asio::ssl::context> client_tls_;  // null when TLS is disabled
  tls::TlsSettings settings_;
  std::map<std::string, std::shared_ptr<AgentProxy>> proxies_;  // on strand_
  std::mutex connecting_mu_;
  std::map<std::string, std::shared_ptr<Connecting>> connecting_;  // guarded by connecting_mu_
};

}  // namespace pp::adaptor
