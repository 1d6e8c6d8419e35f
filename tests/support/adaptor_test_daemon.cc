// adaptor_test_daemon: cloud-api-adaptor with the test-only provider "test" instead of the built-in
// ones, so that interop tests can drive the real daemon without a cloud or libvirtd.
#include <CLI/CLI.hpp>

#include "adaptor/daemon.h"
#include "tests/support/test_provider.h"

namespace {

class TestProviderFactory final : public pp::providers::ProviderFactory {
 public:
  std::string_view Name() const override { return "test"; }
  std::string_view Description() const override { return "test-only in-memory provider (no VMs)"; }
  void AddFlags(CLI::App& app) override {
    app.add_option("--test-slow-ms", slow_ms_, "how long slow-* pods take to create");
  }
  pp::Result<std::unique_ptr<pp::providers::Provider>> Create() override {
    auto provider = std::make_unique<pp::testing::TestProvider>();
    provider->slow_delay = std::chrono::milliseconds(slow_ms_);
    return provider;
  }

 private:
  long slow_ms_ = 3000;
};

}  // namespace

int main(int argc, char** argv) {
  pp::providers::Registry registry;
  (void)registry.Add(std::make_unique<TestProviderFactory>());
  return pp::adaptor::AdaptorMain(argc, argv, registry);
}
