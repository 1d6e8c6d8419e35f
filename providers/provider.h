// Provider: the one interface between the adaptor and whatever creates pod VMs (libvirt, a cloud).
//
// A provider is made by its ProviderFactory from flags (with environment fallbacks, CAA's names),
// validated before anything runs. Provider calls block (they talk to libvirtd or HTTPS endpoints);
// the adaptor makes them only from its BlockingPool, never on an I/O thread, possibly from several
// threads at once for different sandboxes: implementations must be thread-safe.
//
// Errors use pp::Error codes with this taxonomy (Classify() reads it back):
//   retryable     UNAVAILABLE          transient failure; the same call may succeed soon
//   throttled     ABORTED              the API asked us to slow down; retry after a backoff
//   not found     NOT_FOUND            the instance (or image, network, ...) does not exist
//   quota         RESOURCE_EXHAUSTED   out of capacity or quota; retrying will not help soon
//   misconfigured FAILED_PRECONDITION  the provider's configuration is wrong; an operator must act
//   permanent     anything else        the request itself cannot succeed
// This header includes no libvirt, curl or cloud SDK header.
#pragma once

#include <chrono>
#include <map>
#include <memory>
#include <stop_token>
#include <string>
#include <string_view>
#include <vector>

#include "common/base/error.h"

namespace CLI {
class App;
}

namespace pp::providers {

enum class ErrorKind { kRetryable, kThrottled, kNotFound, kQuota, kMisconfigured, kPermanent };

ErrorKind Classify(const Error& error);
// True for the kinds a caller should retry with backoff: retryable and throttled.
bool ShouldRetry(const Error& error);

// The budget of one provider call: a deadline and a stop request (StopVM while StartVM runs).
struct OpContext {
  std::chrono::steady_clock::time_point deadline;
  std::stop_token stop;

  bool Expired() const {
    return stop.stop_requested() || std::chrono::steady_clock::now() >= deadline;
  }
};

// Who an instance belongs to. Providers store it as tags/metadata on the instance so that
// ListInstances can find every VM this node made, even after the adaptor lost its state.
struct Owner {
  std::string node;
  std::string sandbox_id;
  friend bool operator==(const Owner&, const Owner&) = default;
};

// What to create, provider-neutral. Zero/empty fields mean "the provider's default".
// user_data and initdata may carry secrets: never log them.
struct InstanceSpec {
  std::string name;  // podvm-<pod>-<first 8 of sandbox id>, at most 63 characters
  Owner owner;
  std::string pod_name;
  std::string pod_namespace;
  std::string instance_type;
  unsigned vcpus = 0;
  unsigned long long memory_mib = 0;
  unsigned gpus = 0;
  std::string gpu_model;
  std::string image;
  std::string user_data;
  std::string initdata;
};

struct Instance {
  std::string id;    // the provider's stable id (libvirt domain UUID, EC2 instance id, ...)
  std::string name;
  std::vector<std::string> ips;
  Owner owner;
};

class Provider {
 public:
  virtual ~Provider() = default;

  // Creates and boots an instance and waits until it has an IP address. On failure nothing the
  // call created is left behind.
  virtual Result<Instance> CreateInstance(const InstanceSpec& spec, const OpContext& ctx) = 0;

  // Deletes an instance and everything made for it. An instance that does not exist is success.
  virtual Result<void> DeleteInstance(const std::string& instance_id, const OpContext& ctx) = 0;

  // Removes what a CreateInstance of instance `name` for `owner` may have left behind when the
  // process died inside it: resources made before the instance existed (a libvirt provider's
  // volumes, which hold the VM's TLS key) and an instance of that name not yet recorded. Anything
  // of that name that belongs to another owner is never touched. Nothing left is success.
  virtual Result<void> DeleteLeftovers(const std::string& name, const Owner& owner,
                                       const OpContext& ctx) = 0;

  // Every instance whose owner node is `node`.
  virtual Result<std::vector<Instance>> ListInstances(const std::string& node,
                                                      const OpContext& ctx) = 0;

  // Checks that the configuration works (credentials accepted, image and network exist).
  virtual Result<void> Verify(const OpContext& ctx) = 0;
};

class ProviderFactory {
 public:
  virtual ~ProviderFactory() = default;

  virtual std::string_view Name() const = 0;
  virtual std::string_view Description() const = 0;

  // Declares the provider's flags, each with its environment fallback, on its subcommand.
  virtual void AddFlags(CLI::App& app) = 0;

  // Checks the parsed flags; messages name the flag or variable to fix.
  virtual Result<std::unique_ptr<Provider>> Create() = 0;
};

class Registry {
 public:
  // Fails with ALREADY_EXISTS when a factory of that name is registered.
  Result<void> Add(std::unique_ptr<ProviderFactory> factory);
  ProviderFactory* Find(std::string_view name) const;
  std::vector<ProviderFactory*> All() const;

 private:
  std::map<std::string, std::unique_ptr<ProviderFactory>, std::less<>> factories_;
};

// Registers the providers this build was configured with (CMake options PP_PROVIDER_*).
void RegisterBuiltinProviders(Registry& registry);

}  // namespace pp::providers
