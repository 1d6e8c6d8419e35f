#include "adaptor/metrics.h"

#include <prometheus/counter.h>
#include <prometheus/family.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>
#include <prometheus/text_serializer.h>

#include <utility>

namespace pp::adaptor {

namespace {

constexpr ProviderOp kOps[] = {ProviderOp::kCreate, ProviderOp::kDelete, ProviderOp::kList,
                               ProviderOp::kVerify};
constexpr ProviderErrorClass kClasses[] = {
    ProviderErrorClass::kUnavailable,   ProviderErrorClass::kThrottled,
    ProviderErrorClass::kNotFound,      ProviderErrorClass::kCapacity,
    ProviderErrorClass::kMisconfigured, ProviderErrorClass::kDeadline,
    ProviderErrorClass::kCancelled,     ProviderErrorClass::kOther};

// A pod VM boots in seconds (libvirt, small cloud instances) to minutes (confidential instances,
// GPU instances, image pulls); StartVM gives up after -create-timeout (minutes).
const prometheus::Histogram::BucketBoundaries& StartVmBuckets() {
  // Below a second: a claim from a warm pool.
  static const prometheus::Histogram::BucketBoundaries buckets{0.25, 0.5, 1,  2,   5,   10,  20, 30,
                                                               45,   60,  90, 120, 180, 300, 600};
  return buckets;
}

}  // namespace

std::string_view ProviderOpName(ProviderOp op) {
  switch (op) {
    case ProviderOp::kCreate:
      return "create";
    case ProviderOp::kDelete:
      return "delete";
    case ProviderOp::kList:
      return "list";
    case ProviderOp::kVerify:
      return "verify";
  }
  return "other";
}

ProviderErrorClass ErrorClass(Code code) {
  switch (code) {
    case Code::kUnavailable:
      return ProviderErrorClass::kUnavailable;
    case Code::kAborted:
      return ProviderErrorClass::kThrottled;
    case Code::kNotFound:
      return ProviderErrorClass::kNotFound;
    case Code::kResourceExhausted:
      return ProviderErrorClass::kCapacity;
    case Code::kFailedPrecondition:
    case Code::kInvalidArgument:
    case Code::kPermissionDenied:
    case Code::kUnauthenticated:
      return ProviderErrorClass::kMisconfigured;
    case Code::kDeadlineExceeded:
      return ProviderErrorClass::kDeadline;
    case Code::kCancelled:
      return ProviderErrorClass::kCancelled;
    default:
      return ProviderErrorClass::kOther;
  }
}

std::string_view ErrorClassName(ProviderErrorClass error_class) {
  switch (error_class) {
    case ProviderErrorClass::kUnavailable:
      return "unavailable";
    case ProviderErrorClass::kThrottled:
      return "throttled";
    case ProviderErrorClass::kNotFound:
      return "not_found";
    case ProviderErrorClass::kCapacity:
      return "capacity";
    case ProviderErrorClass::kMisconfigured:
      return "misconfigured";
    case ProviderErrorClass::kDeadline:
      return "deadline";
    case ProviderErrorClass::kCancelled:
      return "cancelled";
    case ProviderErrorClass::kOther:
      return "other";
  }
  return "other";
}

// The families live in registry_, which owns them; these are references into it. Family::Add
// returns the existing series for labels already added, under the family's lock.
struct Metrics::Families {
  explicit Families(prometheus::Registry& r)
      : sandboxes(prometheus::BuildGauge()
                      .Name("peerpods_sandboxes")
                      .Help("Sandboxes this adaptor holds, by state.")
                      .Register(r)),
        startvm(prometheus::BuildHistogram()
                    .Name("peerpods_startvm_duration_seconds")
                    .Help("Time from StartVM to its answer, by outcome.")
                    .Register(r)),
        calls(prometheus::BuildCounter()
                  .Name("peerpods_provider_calls_total")
                  .Help("Calls made to the provider, by operation.")
                  .Register(r)),
        errors(prometheus::BuildCounter()
                   .Name("peerpods_provider_errors_total")
                   .Help("Failed provider calls, by error class.")
                   .Register(r)),
        up(prometheus::BuildGauge()
               .Name("peerpods_provider_up")
               .Help("1 if the provider's configuration was verified and it was reachable at the "
                     "last check.")
               .Register(r)),
        connections(prometheus::BuildGauge()
                        .Name("peerpods_agent_proxy_connections")
                        .Help("Open shim connections relayed to pod VM agents.")
                        .Register(r)
                        .Add({})),
        bytes(prometheus::BuildCounter()
                  .Name("peerpods_agent_proxy_bytes_total")
                  .Help("Bytes relayed between shims and pod VM agents, by direction.")
                  .Register(r)),
        to_vm(bytes.Add({{"direction", "to_vm"}})),
        from_vm(bytes.Add({{"direction", "from_vm"}})),
        runs(prometheus::BuildCounter()
                 .Name("peerpods_reconcile_runs_total")
                 .Help("Reconciliation runs, by result.")
                 .Register(r)),
        runs_ok(runs.Add({{"result", "ok"}})),
        runs_error(runs.Add({{"result", "error"}})),
        orphans_found(prometheus::BuildCounter()
                          .Name("peerpods_reconcile_orphans_found_total")
                          .Help("Instances of this node that no sandbox record accounts for, as "
                                "found by reconciliation.")
                          .Register(r)
                          .Add({})),
        orphans_deleted(prometheus::BuildCounter()
                            .Name("peerpods_reconcile_orphans_deleted_total")
                            .Help("Orphaned instances reconciliation deleted.")
                            .Register(r)
                            .Add({})),
        limit(prometheus::BuildGauge()
                  .Name("peerpods_limit_per_node")
                  .Help("The most peer pods this node may run (-peerpods-limit-per-node).")
                  .Register(r)
                  .Add({})),
        rejections(prometheus::BuildCounter()
                       .Name("peerpods_limit_rejections_total")
                       .Help("CreateVM calls refused because the node was at its peer pod limit.")
                       .Register(r)
                       .Add({})),
        build_info(prometheus::BuildGauge()
                       .Name("peerpods_build_info")
                       .Help("Always 1; the version label is the adaptor's version.")
                       .Register(r)),
        pool_vms(prometheus::BuildGauge()
                     .Name("peerpods_warm_pool_vms")
                     .Help("Warm pool VMs, by pool and state (booting: not claimable yet).")
                     .Register(r)),
        pool_target(prometheus::BuildGauge()
                        .Name("peerpods_warm_pool_target")
                        .Help("Configured size of each warm pool.")
                        .Register(r)),
        pool_claims(prometheus::BuildCounter()
                        .Name("peerpods_warm_pool_claims_total")
                        .Help("StartVMs that claimed a warm pool VM, by pool and outcome (an error falls "
                              "back to a cold boot).")
                        .Register(r)),
        pool_misses(prometheus::BuildCounter()
                        .Name("peerpods_warm_pool_misses_total")
                        .Help("StartVMs that found no ready pool VM: no pool of their shape, a pool of "
                              "their shape launched with other initdata, or an empty pool.")
                        .Register(r)),
        pool_refill(prometheus::BuildHistogram()
                        .Name("peerpods_warm_pool_refill_seconds")
                        .Help("Time from the start of a pool VM's boot to its being ready for a claim.")
                        .Register(r)),
        pool_deleted(prometheus::BuildCounter()
                         .Name("peerpods_warm_pool_vms_deleted_total")
                         .Help("Pool VMs deleted unclaimed, by reason.")
                         .Register(r)) {
    for (const char* reason : {"shape", "initdata", "empty"}) pool_misses.Add({{"reason", reason}});
  }

  prometheus::Family<prometheus::Gauge>& sandboxes;
  prometheus::Family<prometheus::Histogram>& startvm;
  prometheus::Family<prometheus::Counter>& calls;
  prometheus::Family<prometheus::Counter>& errors;
  prometheus::Family<prometheus::Gauge>& up;
  prometheus::Gauge& connections;
  prometheus::Family<prometheus::Counter>& bytes;
  prometheus::Counter& to_vm;
  prometheus::Counter& from_vm;
  prometheus::Family<prometheus::Counter>& runs;
  prometheus::Counter& runs_ok;
  prometheus::Counter& runs_error;
  prometheus::Counter& orphans_found;
  prometheus::Counter& orphans_deleted;
  prometheus::Gauge& limit;
  prometheus::Counter& rejections;
  prometheus::Family<prometheus::Gauge>& build_info;
  prometheus::Family<prometheus::Gauge>& pool_vms;
  prometheus::Family<prometheus::Gauge>& pool_target;
  prometheus::Family<prometheus::Counter>& pool_claims;
  prometheus::Family<prometheus::Counter>& pool_misses;
  prometheus::Family<prometheus::Histogram>& pool_refill;
  prometheus::Family<prometheus::Counter>& pool_deleted;
};

namespace {
const prometheus::Histogram::BucketBoundaries& RefillBuckets() {
  static const prometheus::Histogram::BucketBoundaries buckets{5, 10, 20, 30, 45, 60, 90, 120, 180, 300};
  return buckets;
}
}  // namespace

Metrics::Metrics(std::string version)
    : registry_(std::make_shared<prometheus::Registry>()),
      families_(std::make_unique<Families>(*registry_)) {
  families_->build_info.Add({{"version", std::move(version)}}).Set(1);
  SetSandboxes(0, 0, 0);
}

Metrics::~Metrics() = default;

void Metrics::RegisterProvider(std::string_view provider) {
  const std::string p(provider);
  for (ProviderOp op : kOps)
    families_->calls.Add({{"provider", p}, {"operation", std::string(ProviderOpName(op))}});
  for (ProviderErrorClass c : kClasses) {
    families_->errors.Add({{"provider", p}, {"class", std::string(ErrorClassName(c))}});
  }
  families_->startvm.Add({{"provider", p}, {"outcome", "ok"}}, StartVmBuckets());
  families_->startvm.Add({{"provider", p}, {"outcome", "error"}}, StartVmBuckets());
  families_->up.Add({{"provider", p}});
}

void Metrics::SetSandboxes(std::uint64_t created, std::uint64_t starting, std::uint64_t running) {
  families_->sandboxes.Add({{"state", "created"}}).Set(static_cast<double>(created));
  families_->sandboxes.Add({{"state", "starting"}}).Set(static_cast<double>(starting));
  families_->sandboxes.Add({{"state", "running"}}).Set(static_cast<double>(running));
}

void Metrics::ObserveStartVM(std::string_view provider, bool ok, double seconds) {
  families_->startvm
      .Add({{"provider", std::string(provider)}, {"outcome", ok ? "ok" : "error"}},
           StartVmBuckets())
      .Observe(seconds);
}

void Metrics::ProviderCall(std::string_view provider, ProviderOp op) {
  families_->calls
      .Add({{"provider", std::string(provider)}, {"operation", std::string(ProviderOpName(op))}})
      .Increment();
}

void Metrics::ProviderError(std::string_view provider, ProviderErrorClass error_class) {
  families_->errors
      .Add({{"provider", std::string(provider)},
            {"class", std::string(ErrorClassName(error_class))}})
      .Increment();
}

void Metrics::SetProviderUp(std::string_view provider, bool up) {
  families_->up.Add({{"provider", std::string(provider)}}).Set(up ? 1 : 0);
}

void Metrics::AgentConnectionOpened() { families_->connections.Increment(); }
void Metrics::AgentConnectionClosed() { families_->connections.Decrement(); }

void Metrics::AgentBytes(std::uint64_t to_vm, std::uint64_t from_vm) {
  if (to_vm > 0) families_->to_vm.Increment(static_cast<double>(to_vm));
  if (from_vm > 0) families_->from_vm.Increment(static_cast<double>(from_vm));
}

void Metrics::ReconcileRun(bool ok, std::uint64_t found, std::uint64_t deleted) {
  (ok ? families_->runs_ok : families_->runs_error).Increment();
  if (found > 0) families_->orphans_found.Increment(static_cast<double>(found));
  if (deleted > 0) families_->orphans_deleted.Increment(static_cast<double>(deleted));
}

void Metrics::SetLimit(std::uint64_t limit) { families_->limit.Set(static_cast<double>(limit)); }
void Metrics::LimitRejection() { families_->rejections.Increment(); }

void Metrics::SetPoolTarget(std::string_view pool, unsigned size) {
  const std::string p(pool);
  families_->pool_target.Add({{"pool", p}}).Set(size);
  for (const char* outcome : {"ok", "error"}) families_->pool_claims.Add({{"pool", p}, {"outcome", outcome}});
  for (const char* reason : {"unhealthy", "boot_failed", "drained"}) {
    families_->pool_deleted.Add({{"pool", p}, {"reason", reason}});
  }
  families_->pool_refill.Add({{"pool", p}}, RefillBuckets());
  SetPoolVms(pool, 0, 0);
}

void Metrics::SetPoolVms(std::string_view pool, unsigned booting, unsigned ready) {
  families_->pool_vms.Add({{"pool", std::string(pool)}, {"state", "booting"}}).Set(booting);
  families_->pool_vms.Add({{"pool", std::string(pool)}, {"state", "ready"}}).Set(ready);
}

void Metrics::PoolClaim(std::string_view pool, bool ok) {
  families_->pool_claims.Add({{"pool", std::string(pool)}, {"outcome", ok ? "ok" : "error"}}).Increment();
}

void Metrics::PoolMiss(std::string_view reason) {
  families_->pool_misses.Add({{"reason", std::string(reason)}}).Increment();
}

void Metrics::ObservePoolRefill(std::string_view pool, double seconds) {
  families_->pool_refill.Add({{"pool", std::string(pool)}}, RefillBuckets()).Observe(seconds);
}

void Metrics::PoolVmDeleted(std::string_view pool, std::string_view reason) {
  families_->pool_deleted.Add({{"pool", std::string(pool)}, {"reason", std::string(reason)}}).Increment();
}

std::string Metrics::Exposition() const {
  return prometheus::TextSerializer().Serialize(registry_->Collect());
}

MeteredProvider::MeteredProvider(std::unique_ptr<providers::Provider> inner,
                                 std::string provider_name, std::shared_ptr<Metrics> metrics)
    : inner_(std::move(inner)), name_(std::move(provider_name)), metrics_(std::move(metrics)) {
  metrics_->RegisterProvider(name_);
}

void MeteredProvider::Count(ProviderOp op, const Error* error) {
  metrics_->ProviderCall(name_, op);
  if (error != nullptr) metrics_->ProviderError(name_, ErrorClass(error->code));
  // Every call says whether the provider can be reached and used, not only the checks at start: an
  // answer (even NOT_FOUND, capacity or throttling) is up; unreachable, timed out or refused as
  // misconfigured is down; a call given up by its caller says nothing.
  if (error == nullptr) {
    metrics_->SetProviderUp(name_, true);
  } else {
    switch (ErrorClass(error->code)) {
      case ProviderErrorClass::kUnavailable:
      case ProviderErrorClass::kDeadline:
      case ProviderErrorClass::kMisconfigured:
        metrics_->SetProviderUp(name_, false);
        break;
      case ProviderErrorClass::kCancelled:
        break;
      default:
        metrics_->SetProviderUp(name_, true);
    }
  }
}

Result<providers::Instance> MeteredProvider::CreateInstance(const providers::InstanceSpec& spec,
                                                            const providers::OpContext& ctx) {
  auto result = inner_->CreateInstance(spec, ctx);
  Count(ProviderOp::kCreate, result ? nullptr : &result.error());
  return result;
}

Result<void> MeteredProvider::DeleteInstance(const std::string& instance_id,
                                             const providers::OpContext& ctx) {
  auto result = inner_->DeleteInstance(instance_id, ctx);
  const bool failed = !result && result.error().code != Code::kNotFound;
  Count(ProviderOp::kDelete, failed ? &result.error() : nullptr);
  return result;
}

Result<void> MeteredProvider::DeleteLeftovers(const std::string& name,
                                              const providers::Owner& owner,
                                              const providers::OpContext& ctx) {
  auto result = inner_->DeleteLeftovers(name, owner, ctx);
  const bool failed = !result && result.error().code != Code::kNotFound;
  Count(ProviderOp::kDelete, failed ? &result.error() : nullptr);
  return result;
}

Result<std::vector<providers::Instance>> MeteredProvider::ListInstances(
    const std::string& node, const providers::OpContext& ctx) {
  auto result = inner_->ListInstances(node, ctx);
  Count(ProviderOp::kList, result ? nullptr : &result.error());
  return result;
}

Result<void> MeteredProvider::Verify(const providers::OpContext& ctx) {
  auto result = inner_->Verify(ctx);
  Count(ProviderOp::kVerify, result ? nullptr : &result.error());
  return result;
}

}  // namespace pp::adaptor
