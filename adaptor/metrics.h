// Metrics: the daemon's Prometheus metrics (all prefixed `peerpods_`), kept in a prometheus-cpp
// registry and rendered in the text exposition format 0.0.4 for GET /metrics
// (https://prometheus.io/docs/instrumenting/exposition_formats/).
//
// The set of metrics and labels is closed: these, and no others (deploy/monitoring's alerts and
// dashboard read exactly them):
//   peerpods_sandboxes{state="created|starting|running"}                         gauge
//   peerpods_startvm_duration_seconds{provider, outcome="ok|error"}               histogram
//   peerpods_provider_calls_total{provider, operation="create|delete|list|verify"} counter
//   peerpods_provider_errors_total{provider, class="unavailable|throttled|not_found|capacity|
//                                  misconfigured|deadline|cancelled|other"}       counter
//   peerpods_provider_up{provider}                                                gauge, 1 or 0
//   peerpods_agent_proxy_connections                                              gauge
//   peerpods_agent_proxy_bytes_total{direction="to_vm|from_vm"}                   counter
//   peerpods_reconcile_runs_total{result="ok|error"}                              counter
//   peerpods_reconcile_orphans_found_total, peerpods_reconcile_orphans_deleted_total counters
//   peerpods_limit_per_node                                                        gauge
//   peerpods_limit_rejections_total                                                counter
//   peerpods_build_info{version}                                                   gauge = 1
//   peerpods_warm_pool_vms{pool, state="booting|ready"}                            gauge
//   peerpods_warm_pool_target{pool}                                                gauge
//   peerpods_warm_pool_claims_total{pool, outcome="ok|error"}                      counter
//   peerpods_warm_pool_misses_total{reason="shape|initdata|empty"}                 counter
//   peerpods_warm_pool_refill_seconds{pool}                                        histogram
//   peerpods_warm_pool_vms_deleted_total{pool, reason="unhealthy|boot_failed|drained"} counter
// Label values other than `provider`, `pool` (configured pool names) and `version` come from the enums below, so no caller can
// grow the number of series. Series without a provider label exist at zero from construction;
// RegisterProvider() makes a provider's series exist at zero before its first call, so that
// rate() and increase() see the first event (https://prometheus.io/docs/practices/instrumentation/
// "Avoid missing metrics").
//
// MeteredProvider wraps the daemon's provider and counts its calls and errors.
//
// Threading: every method of Metrics is thread-safe (prometheus-cpp's metrics and families lock
// internally) and cheap enough for any thread, the I/O threads included.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "common/base/error.h"
#include "providers/provider.h"

namespace prometheus {
class Registry;
}

namespace pp::adaptor {

// The `operation` label of peerpods_provider_calls_total.
enum class ProviderOp { kCreate, kDelete, kList, kVerify };
std::string_view ProviderOpName(ProviderOp op);

// The `class` label of peerpods_provider_errors_total: what an operator does about the error.
enum class ProviderErrorClass {
  kUnavailable,    // UNAVAILABLE: transient, retried
  kThrottled,      // ABORTED: the API asked us to slow down
  kNotFound,       // NOT_FOUND
  kCapacity,       // RESOURCE_EXHAUSTED: out of capacity or quota
  kMisconfigured,  // FAILED_PRECONDITION, INVALID_ARGUMENT, PERMISSION_DENIED, UNAUTHENTICATED
  kDeadline,       // DEADLINE_EXCEEDED
  kCancelled,      // CANCELLED (a StopVM or shutdown ended the call)
  kOther,          // anything else
};
// The mapping of the provider error taxonomy (providers/provider.h) onto the classes above.
ProviderErrorClass ErrorClass(Code code);
std::string_view ErrorClassName(ProviderErrorClass error_class);

class Metrics {
 public:
  // `version` is the value of peerpods_build_info's label.
  explicit Metrics(std::string version);
  ~Metrics();
  Metrics(const Metrics&) = delete;
  Metrics& operator=(const Metrics&) = delete;

  // Creates every series labelled with `provider` at zero (calls and errors of each kind, the
  // StartVM histograms, provider_up = 0). Optional; idempotent.
  void RegisterProvider(std::string_view provider);

  // Sandboxes by state, as counted now.
  void SetSandboxes(std::uint64_t created, std::uint64_t starting, std::uint64_t running);
  // One StartVM that took `seconds` (buckets from 1 s to 10 min).
  void ObserveStartVM(std::string_view provider, bool ok, double seconds);
  void ProviderCall(std::string_view provider, ProviderOp op);
  void ProviderError(std::string_view provider, ProviderErrorClass error_class);
  // Whether the provider's configuration was verified and it was reachable at the last check.
  void SetProviderUp(std::string_view provider, bool up);

  void AgentConnectionOpened();
  void AgentConnectionClosed();
  // Bytes relayed since the last call, each direction.
  void AgentBytes(std::uint64_t to_vm, std::uint64_t from_vm);

  // One reconciliation run: its outcome, orphans it found and orphans it deleted.
  void ReconcileRun(bool ok, std::uint64_t found, std::uint64_t deleted);

  // The -peerpods-limit-per-node value, and one CreateVM refused for it.
  void SetLimit(std::uint64_t limit);
  void LimitRejection();

  // Warm pools: each configured pool's size (makes its series exist at zero), its VMs by state, a
  // claim and its outcome, a miss by reason ("shape", "initdata", "empty"), a refill's duration and a
  // VM deleted unclaimed ("unhealthy", "boot_failed", "drained").
  void SetPoolTarget(std::string_view pool, unsigned size);
  void SetPoolVms(std::string_view pool, unsigned booting, unsigned ready);
  void PoolClaim(std::string_view pool, bool ok);
  void PoolMiss(std::string_view reason);
  void ObservePoolRefill(std::string_view pool, double seconds);
  void PoolVmDeleted(std::string_view pool, std::string_view reason);

  // Text exposition format 0.0.4 of every metric above.
  std::string Exposition() const;

  // The registry, for a caller that serves or extends it (prometheus-cpp's headers needed).
  prometheus::Registry& registry() { return *registry_; }

 private:
  struct Families;
  std::shared_ptr<prometheus::Registry> registry_;
  std::unique_ptr<Families> families_;
};

// A Provider that forwards every call to `inner` and counts it in `metrics` under `provider_name`:
// one call per method (CreateInstance: create; DeleteInstance and DeleteLeftovers: delete;
// ListInstances: list; Verify: verify) and one error per failure, by class. NOT_FOUND from
// DeleteInstance or DeleteLeftovers is counted as a call only: the daemon takes a vanished instance
// as deleted.
// Verify also sets peerpods_provider_up: 1 when it succeeds, 0 when it fails (CANCELLED leaves it
// as it was: a shutdown says nothing about the provider). Results are passed through unchanged.
// Metrics is shared: the daemon may exit with provider calls still running on pool threads.
// Threading: as `inner` (thread-safe).
class MeteredProvider final : public providers::Provider {
 public:
  MeteredProvider(std::unique_ptr<providers::Provider> inner, std::string provider_name,
                  std::shared_ptr<Metrics> metrics);

  Result<providers::Instance> CreateInstance(const providers::InstanceSpec& spec,
                                             const providers::OpContext& ctx) override;
  Result<void> DeleteInstance(const std::string& instance_id,
                              const providers::OpContext& ctx) override;
  Result<void> DeleteLeftovers(const std::string& name, const providers::Owner& owner,
                               const providers::OpContext& ctx) override;
  Result<std::vector<providers::Instance>> ListInstances(const std::string& node,
                                                         const providers::OpContext& ctx) override;
  Result<void> Verify(const providers::OpContext& ctx) override;

  providers::Provider& inner() { return *inner_; }

 private:
  void Count(ProviderOp op, const Error* error);

  std::unique_ptr<providers::Provider> inner_;
  std::string name_;
  std::shared_ptr<Metrics> metrics_;
};

}  // namespace pp::adaptor
