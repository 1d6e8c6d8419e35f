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
  for (const char* flag : {"health-port", "probe-port"}) {
    bool given = false;
    for (const char* arg : args) given = given || std::string_view(arg).find(flag) != std::string_view::npos;
    const std::string env = std::string_view(flag) == "health-port" ? "HEALTH_PORT" : "PROBE_PORT";
    if (serving && !given && std::getenv(env.c_str()) == nullptr) {
      args.push_back(std::string_view(flag) == "health-port" ? "-health-port" : "-probe-port");
      args.push_back("0");
    }
  }
  pp::providers::Registry registry;
  (void)registry.Add(std::make_unique<TestProviderFactory>());
  return pp::adaptor::AdaptorMain(static_cast<int>(args.size()), args.data(), registry, connect_agents);
}
