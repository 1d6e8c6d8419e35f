// adaptor_test_daemon: cloud-api-adaptor with the test-only provider "test" instead of the built-in
// ones, so that interop tests can drive the real daemon without a cloud or libvirtd.
// Its instances are not VMs, so the agent path is off unless `-test-agent` is given: then every
// instance is at 127.0.0.1 and the test runs one agent-protocol-forwarder there for all of them.
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
  std::vector<const char*> args;
  bool connect_agents = false;
  for (int i = 0; i < argc; ++i) {
    const std::string_view arg = argv[i];
    if (arg == "-test-agent" || arg == "--test-agent") {
      connect_agents = true;
    } else {
      args.push_back(argv[i]);
    }
  }
  // Test daemons run several at once: no fixed-port listeners unless a test asks for them.
  const bool serving = args.size() > 1 && std::string_view(args[1]) == "test";
  bool health_port_given = false;
  for (const char* arg : args) health_port_given = health_port_given || std::string_view(arg).find("health-port") != std::string_view::npos;
  if (serving && !health_port_given && std::getenv("HEALTH_PORT") == nullptr) {
    args.push_back("-health-port");
    args.push_back("0");
  }
  pp::providers::Registry registry;
  (void)registry.Add(std::make_unique<TestProviderFactory>());
  return pp::adaptor::AdaptorMain(static_cast<int>(args.size()), args.data(), registry, connect_agents);
}
