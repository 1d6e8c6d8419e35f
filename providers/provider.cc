#include "providers/provider.h"

namespace pp::providers {

ErrorKind Classify(const Error& error) {
  switch (error.code) {
    case Code::kUnavailable: return ErrorKind::kRetryable;
    case Code::kAborted: return ErrorKind::kThrottled;
    case Code::kNotFound: return ErrorKind::kNotFound;
    case Code::kResourceExhausted: return ErrorKind::kQuota;
    case Code::kFailedPrecondition: return ErrorKind::kMisconfigured;
    default: return ErrorKind::kPermanent;
  }
}

bool ShouldRetry(const Error& error) {
  const ErrorKind kind = Classify(error);
  return kind == ErrorKind::kRetryable || kind == ErrorKind::kThrottled;
}

Result<void> Registry::Add(std::unique_ptr<ProviderFactory> factory) {
  std::string name(factory->Name());
  if (factories_.contains(name)) return Fail(Code::kAlreadyExists, "provider ", name, " registered twice");
  factories_.emplace(std::move(name), std::move(factory));
  return {};
}

ProviderFactory* Registry::Find(std::string_view name) const {
  const auto it = factories_.find(name);
  return it == factories_.end() ? nullptr : it->second.get();
}

std::vector<ProviderFactory*> Registry::All() const {
  std::vector<ProviderFactory*> all;
  for (const auto& [name, factory] : factories_) all.push_back(factory.get());
  return all;
}

}  // namespace pp::providers
