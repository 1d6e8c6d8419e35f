#include "adaptor/agent_connector.h"

#include <spdlog/spdlog.h>

#include "adaptor/sandbox_request.h"
#include "common/podvm/apf_config.h"
#include "common/podvm/initdata.h"
#include "common/podvm/pool_config.h"
#include "common/podvm/user_data.h"
#include "common/provision/client.h"
#include "common/tls/context.h"

namespace pp::adaptor {
namespace {

constexpr std::string_view kManualServerName = "podvm-server";

bool GpusRequested(const SandboxRecord& record) { return record.request.gpus > 0; }

}  // namespace

AgentConnector::AgentConnector(asio::any_io_executor executor, AgentConnectorOptions options)
    : strand_(asio::make_strand(executor)), options_(std::move(options)) {}

Result<std::unique_ptr<AgentConnector>> AgentConnector::Create(asio::any_io_executor executor,
                                                               AgentConnectorOptions options) {
  std::unique_ptr<AgentConnector> c(new AgentConnector(std::move(executor), std::move(options)));
  auto settings = tls::ParseTlsSettings(c->options_.tls_min_version, c->options_.tls_cipher_suites);
  if (!settings) return std::unexpected(settings.error());
  c->settings_ = *settings;
  if (c->options_.disable_tls) {
    spdlog::warn("TLS IS DISABLED (-disable-tls): agent traffic to pod VMs is plaintext and unauthenticated");
    return c;
  }
  const auto& o = c->options_;
  const bool manual = !o.ca_cert_file.empty() || !o.cert_file.empty() || !o.cert_key.empty();
  tls::Material material;
  if (manual) {
    auto files = tls::LoadMaterialFiles(o.ca_cert_file, o.cert_file, o.cert_key);
    if (!files) return std::unexpected(files.error());
    material = std::move(*files);
  } else {
    auto ca = tls::CertificateAuthority::LoadOrCreate(o.tls_dir);
    if (!ca) return std::unexpected(ca.error());
    auto client = ca->IssueClientCert("cloud-api-adaptor");
    if (!client) return std::unexpected(client.error());
    material = {ca->CertPem(), client->cert_pem, client->key_pem};
    c->ca_ = std::move(*ca);
  }
  auto context = tls::MakeClientContext(material, c->settings_);
  if (!context) return std::unexpected(context.error());
  c->client_tls_ = std::move(*context);
  return c;
}

Result<std::string> AgentConnector::UserData(const SandboxRecord& record) const {
  podvm::ApfConfig apf;
  apf.pod_name = record.request.pod_name;
  apf.pod_namespace = record.request.pod_namespace;  // the Kubernetes namespace, as CAA writes it
  apf.pod_network = record.network;
  apf.tls_min_version = options_.tls_min_version;
  if (ca_) {
    auto server = ca_->IssueServerCert(record.instance_name);
    if (!server) return std::unexpected(server.error());
    apf.tls_server_cert = std::move(server->cert_pem);
    apf.tls_server_key = std::move(server->key_pem);
    apf.tls_client_ca = ca_->CertPem();
  }
  std::vector<podvm::WriteFile> files;
  files.push_back({"/run/peerpod/apf.json", podvm::SerializeApfConfig(apf), podvm::ContentEncoding::kPlain, "",
                   "0600", false});
  if (!record.request.initdata.empty()) {
    // process-user-data expects base64(gzip(TOML)) there, as CAA writes it.
    files.push_back({"/run/peerpod/initdata", podvm::EncodeInitdata(record.request.initdata),
                     podvm::ContentEncoding::kPlain, "", "0600", false});
  }
  return podvm::RenderUserData(files);
}

Result<std::string> AgentConnector::PoolUserData(const std::string& vm_name, const std::string& initdata) const {
  if (!ca_) return Fail(Code::kFailedPrecondition, "warm pools need the automatic TLS mode");
  auto server = ca_->IssueServerCert(vm_name);
  if (!server) return std::unexpected(server.error());
  podvm::PoolConfig pool;
  pool.pool_vm = vm_name;
  pool.tls_server_cert = std::move(server->cert_pem);
  pool.tls_server_key = std::move(server->key_pem);
  pool.tls_client_ca = ca_->CertPem();
  pool.tls_min_version = options_.tls_min_version;
  std::vector<podvm::WriteFile> files;
  files.push_back({podvm::kPoolConfigPath, podvm::SerializePoolConfig(pool), podvm::ContentEncoding::kPlain, "",
                   "0600", false});
  if (!initdata.empty()) {
    // Launched with it (measured, on a confidential VM); a claim must bring the same bytes.
    files.push_back({"/run/peerpod/initdata", podvm::EncodeInitdata(initdata), podvm::ContentEncoding::kPlain, "",
                     "0600", false});
  }
  return podvm::RenderUserData(files);
}

Result<void> AgentConnector::Check(const std::string& vm_name, const std::string& ip,
                                   const std::string& initdata_digest,
                                   std::chrono::steady_clock::time_point deadline) const {
  if (!ca_) return Fail(Code::kFailedPrecondition, "warm pools need the automatic TLS mode");
  auto answer = provision::Check({ip, options_.forwarder_port, vm_name, client_tls_}, deadline);
  if (!answer) return std::unexpected(answer.error());
  if (answer->pool_vm() != vm_name) {
    return Fail(Code::kFailedPrecondition, "the VM at ", ip, " answers as pool VM \"", answer->pool_vm(), "\"");
  }
  if (answer->initdata_digest() != initdata_digest) {
    return Fail(Code::kFailedPrecondition, "pool VM ", vm_name, " was launched with initdata ",
                answer->initdata_digest().empty() ? "none" : answer->initdata_digest(), ", not ",
                initdata_digest.empty() ? "none" : initdata_digest);
  }
  return {};
}

Result<void> AgentConnector::Claim(const std::string& vm_name, const std::string& ip, const std::string& sandbox_id,
                                   const std::string& user_data,
                                   std::chrono::steady_clock::time_point deadline) const {
  if (!ca_) return Fail(Code::kFailedPrecondition, "warm pools need the automatic TLS mode");
  peerpods::provision::v1::ClaimRequest request;
  request.set_pool_vm(vm_name);
  request.set_sandbox_id(sandbox_id);
  request.set_user_data(user_data);
  return provision::Claim({ip, options_.forwarder_port, vm_name, client_tls_}, request, deadline);
}

Result<AgentProxyOptions> AgentConnector::ProxyOptions(const SandboxRecord& record, std::string socket_path) const {
  if (record.ips.empty()) return Fail(Code::kFailedPrecondition, "sandbox ", record.request.id, " has no pod VM address");
  AgentProxyOptions o;
  o.socket_path = std::move(socket_path);
  o.host = record.ips.front();
  o.port = options_.forwarder_port;
  o.tls = client_tls_;
  o.server_name = ca_ ? record.instance_name : std::string(kManualServerName);
  o.gpus_requested = GpusRequested(record);
  o.on_connection = options_.on_connection;
  o.on_bytes = options_.on_bytes;
  return o;
}

asio::awaitable<Result<void>> AgentConnector::Connect(SandboxRecord record, std::string socket_path,
                                                      std::chrono::steady_clock::time_point deadline) {
  co_return co_await asio::co_spawn(strand_, ConnectOnStrand(std::move(record), std::move(socket_path), deadline),
                                    asio::use_awaitable);
}

asio::awaitable<Result<void>> AgentConnector::ConnectOnStrand(SandboxRecord record, std::string socket_path,
                                                              std::chrono::steady_clock::time_point deadline) {
  const std::string id = record.request.id;
  auto connecting = TakeReservation(id);
  auto finish = [&connecting](Result<void> result) {  // tells a StartVM that joined this connect
    connecting->result = result;
    connecting->done.cancel();
    return result;
  };
  auto options = ProxyOptions(record, std::move(socket_path));
  if (!options) co_return finish(std::unexpected(options.error()));
  if (auto old = proxies_.find(id); old != proxies_.end()) {  // from an earlier StartVM attempt
    old->second->Shutdown();
    proxies_.erase(old);
  }
  auto started = AgentProxy::Start(strand_, std::move(*options));
  if (!started) co_return finish(std::unexpected(started.error()));
  std::shared_ptr<AgentProxy> proxy = std::move(*started);  // kept alive here while we wait
  proxies_[id] = proxy;
  const auto until = std::min(deadline, std::chrono::steady_clock::now() +
                                            std::chrono::duration_cast<std::chrono::steady_clock::duration>(
                                                options_.proxy_timeout));
  auto ready = co_await proxy->WaitReady(until);
  if (!ready) {
    proxy->Shutdown();
    auto it = proxies_.find(id);
    if (it != proxies_.end() && it->second == proxy) proxies_.erase(it);
    co_return finish(std::unexpected(ready.error()));
  }
  co_return finish(Result<void>{});
}

asio::awaitable<Result<void>> AgentConnector::Resume(SandboxRecord record, std::string socket_path) {
  co_return co_await asio::co_spawn(strand_, ResumeOnStrand(std::move(record), std::move(socket_path)),
                                    asio::use_awaitable);
}

asio::awaitable<Result<void>> AgentConnector::ResumeOnStrand(SandboxRecord record, std::string socket_path) {
  // A StartVM retried right after the restart may have connected it already; replacing that proxy
  // would unlink the socket it just made.
  if (proxies_.contains(record.request.id)) co_return Result<void>{};
  auto options = ProxyOptions(record, std::move(socket_path));
  if (!options) co_return std::unexpected(options.error());
  auto proxy = AgentProxy::Start(strand_, std::move(*options));
  if (!proxy) co_return std::unexpected(proxy.error());
  proxies_[record.request.id] = std::move(*proxy);
  co_return Result<void>{};
}

void AgentConnector::Reserve(const std::string& id) {
  std::lock_guard lock(connecting_mu_);
  connecting_[id] = std::make_shared<Connecting>(strand_);
}

std::shared_ptr<AgentConnector::Connecting> AgentConnector::TakeReservation(const std::string& id) {
  std::lock_guard lock(connecting_mu_);
  auto& slot = connecting_[id];
  if (!slot || slot->result) slot = std::make_shared<Connecting>(strand_);  // none, or a finished one
  return slot;
}

asio::awaitable<std::optional<Result<void>>> AgentConnector::Join(std::string id) {
  co_return co_await asio::co_spawn(strand_, JoinOnStrand(std::move(id)), asio::use_awaitable);
}

asio::awaitable<std::optional<Result<void>>> AgentConnector::JoinOnStrand(std::string id) {
  std::shared_ptr<Connecting> connecting;
  {
    std::lock_guard lock(connecting_mu_);
    if (auto it = connecting_.find(id); it != connecting_.end()) connecting = it->second;
  }
  if (connecting && !connecting->result) {
    (void)co_await connecting->done.async_wait(kAwaitTuple);  // a connect in progress: its outcome
    if (connecting->result) co_return *connecting->result;
  }
  if (connecting && connecting->result && *connecting->result && proxies_.contains(id)) co_return Result<void>{};
  if (!connecting && proxies_.contains(id)) co_return Result<void>{};  // resumed after a restart
  // No working agent path (none yet, or the last connect failed and its VM was not deleted): the
  // caller connects, and owns this reservation, so that a concurrent StartVM joins it.
  std::lock_guard lock(connecting_mu_);
  connecting_[id] = std::make_shared<Connecting>(strand_);
  co_return std::nullopt;
}

asio::awaitable<void> AgentConnector::Disconnect(std::string id) {
  co_await asio::co_spawn(strand_, DisconnectOnStrand(std::move(id), false), asio::use_awaitable);
}

asio::awaitable<void> AgentConnector::DisconnectAll() {
  co_await asio::co_spawn(strand_, DisconnectOnStrand({}, true), asio::use_awaitable);
}

asio::awaitable<void> AgentConnector::DisconnectOnStrand(std::string id, bool all) {
  {
    std::lock_guard lock(connecting_mu_);
    for (auto it = connecting_.begin(); it != connecting_.end();) {
      // A connect in progress keeps its reservation through its own reference and still tells
      // those who joined it.
      if (all || it->first == id) it = connecting_.erase(it);
      else ++it;
    }
  }
  // Shutdown ends a WaitReady in progress early; its coroutine holds its own reference.
  for (auto it = proxies_.begin(); it != proxies_.end();) {
    if (all || it->first == id) {
      it->second->Shutdown();
      it = proxies_.erase(it);
    } else {
      ++it;
    }
  }
  co_return;
}

}  // namespace pp::adaptor
