#include "adaptor/flags.h"

#include <gtest/gtest.h>

#include <CLI/CLI.hpp>
#include <cstdlib>

namespace pp::adaptor {
namespace {

// The command line as the daemon parses it: Go syntax, then FinishCommonFlags.
std::pair<Config, Result<void>> ParseAndFinish(std::vector<const char*> argv) {
  CLI::App app;
  GoFlagDefaults(app);
  Config config;
  AddCommonFlags(app, config);
  std::vector<std::string> args;
  EXPECT_EQ(ParseGoCommandLine(app, static_cast<int>(argv.size()), argv.data(), &args), -1);
  auto finished = FinishCommonFlags(config, args);
  return {std::move(config), std::move(finished)};
}

Config Parse(std::vector<const char*> argv) {
  auto [config, finished] = ParseAndFinish(std::move(argv));
  EXPECT_TRUE(finished);
  return config;
}

Result<void> Finish(std::vector<const char*> argv) { return ParseAndFinish(std::move(argv)).second; }

TEST(FlagsTest, AcceptsGoStyleSingleDashFlags) {
  auto config = Parse({"caa", "-socket", "/tmp/h.sock", "-pods-dir=/tmp/pods", "--forwarder-port", "15151"});
  EXPECT_EQ(config.socket, "/tmp/h.sock");
  EXPECT_EQ(config.pods_dir, "/tmp/pods");
  EXPECT_EQ(config.forwarder_port, 15151u);
}

TEST(FlagsTest, FallsBackToCaaEnvironmentNames) {
  ::setenv("REMOTE_HYPERVISOR_ENDPOINT", "/env/h.sock", 1);
  ::setenv("PODS_DIR", "/env/pods", 1);
  ::setenv("VXLAN_PORT", "8472", 1);
  ::setenv("PAUSE_IMAGE", "registry.k8s.io/pause:3.9", 1);
  auto config = Parse({"caa"});
  ::unsetenv("REMOTE_HYPERVISOR_ENDPOINT");
  ::unsetenv("PODS_DIR");
  ::unsetenv("VXLAN_PORT");
  ::unsetenv("PAUSE_IMAGE");
  EXPECT_EQ(config.socket, "/env/h.sock");
  EXPECT_EQ(config.pods_dir, "/env/pods");
  EXPECT_EQ(config.network.vxlan_port, 8472);
  ASSERT_EQ(config.pending.size(), 1u);  // accepted, reported as not yet in effect
  EXPECT_EQ(config.pending[0].first, "pause-image");
}

TEST(FlagsTest, PodNetworkFlagsTakeEffectAndBadOnesAreRefused) {
  auto config = Parse({"caa", "-vxlan-min-id", "7000", "-vxlan-max-id=7009", "-host-interface", "ens5"});
  EXPECT_EQ(config.network.tunnel_type, "vxlan");
  EXPECT_EQ(config.network.vxlan_port, 4789);
  EXPECT_EQ(config.network.vni_min, 7000u);
  EXPECT_EQ(config.network.vni_max, 7009u);
  EXPECT_EQ(config.network.host_interface, "ens5");
  EXPECT_TRUE(config.pending.empty());
  ::setenv("TUNNEL_TYPE", "routing", 1);
  auto routing = Finish({"caa"});
  ::unsetenv("TUNNEL_TYPE");
  ASSERT_FALSE(routing);
  EXPECT_EQ(routing.error().message, "TUNNEL_TYPE: \"routing\" is not supported; the only tunnel type is vxlan");
  EXPECT_FALSE(Finish({"caa", "-vxlan-port", "0"}));
  EXPECT_FALSE(Finish({"caa", "-vxlan-min-id", "16777216"}));
  auto inverted = Finish({"caa", "-vxlan-min-id", "10", "-vxlan-max-id", "9"});
  ASSERT_FALSE(inverted);
  EXPECT_NE(inverted.error().message.find("-vxlan-min-id 10 and -vxlan-max-id 9"), std::string::npos);
}

TEST(FlagsTest, DefaultsMatchCaa) {
  auto config = Parse({"caa"});
  EXPECT_EQ(config.socket, "/run/peerpod/hypervisor.sock");
  EXPECT_EQ(config.pods_dir, "/run/peerpod/pods");
  EXPECT_EQ(config.forwarder_port, 15150u);
  EXPECT_EQ(config.proxy_timeout, "5m");
  EXPECT_EQ(config.network.vxlan_port, 4789);
  EXPECT_EQ(config.network.vni_min, 555000u);
  EXPECT_EQ(config.limit_per_node, 10u);  // CAA's
  EXPECT_EQ(config.probe_port, 8000);      // CAA's PROBE_PORT
  EXPECT_EQ(config.health_port, 8001);
  EXPECT_EQ(config.reconcile_interval_value, std::chrono::minutes(5));
  EXPECT_EQ(config.reconcile_grace_value, std::chrono::minutes(2));
}

TEST(FlagsTest, LimitAndReconciliationFlags) {
  ::setenv("PEERPODS_LIMIT_PER_NODE", "3", 1);
  auto config = Parse({"caa", "-reconcile-interval", "30s", "-reconcile-grace=0"});
  ::unsetenv("PEERPODS_LIMIT_PER_NODE");
  EXPECT_EQ(config.limit_per_node, 3u);
  EXPECT_TRUE(config.pending.empty()) << "the limit takes effect now";
  EXPECT_EQ(config.reconcile_interval_value, std::chrono::seconds(30));
  EXPECT_EQ(config.reconcile_grace_value, std::chrono::nanoseconds(0));
  ::setenv("RECONCILE_INTERVAL", "soon", 1);
  auto bad = Finish({"caa"});
  ::unsetenv("RECONCILE_INTERVAL");
  ASSERT_FALSE(bad);
  EXPECT_EQ(bad.error().message.rfind("RECONCILE_INTERVAL: ", 0), 0u) << bad.error().message;
  EXPECT_FALSE(Finish({"caa", "-peerpods-limit-per-node", "-1"}));
  ::setenv("PROBE_PORT", "70000", 1);
  auto probe = Finish({"caa"});
  ::unsetenv("PROBE_PORT");
  ASSERT_FALSE(probe);
  EXPECT_EQ(probe.error().message, "PROBE_PORT: 70000 is out of range (0 to 65535)");
  EXPECT_EQ(Parse({"caa", "-health-port", "0", "-probe-port=0"}).health_port, 0) << "0: off";
}

TEST(FlagsTest, WarmPoolFlags) {
  auto none = Parse({"caa", "-pods-dir", "/x/pods"});
  EXPECT_TRUE(none.pools.empty());
  EXPECT_EQ(none.warm_pool_dir, "/x/pool") << "beside the pods dir";
  EXPECT_EQ(none.warm_pool_check_interval_value, std::chrono::seconds(30));
  ::setenv("WARM_POOL_SIZE", "2", 1);
  ::setenv("WARM_POOLS", R"([{"name":"big","size":1,"vcpus":4}])", 1);
  auto config = Parse({"caa", "-warm-pool-check-interval", "1m", "-warm-pool-dir", "/p"});
  ::unsetenv("WARM_POOL_SIZE");
  ::unsetenv("WARM_POOLS");
  ASSERT_EQ(config.pools.size(), 2u);
  EXPECT_EQ(config.pools[0].name, "default");
  EXPECT_EQ(config.pools[0].size, 2u);
  EXPECT_EQ(config.pools[1].shape.vcpus, 4u);
  EXPECT_EQ(config.warm_pool_dir, "/p");
  EXPECT_EQ(config.warm_pool_check_interval_value, std::chrono::minutes(1));
  auto too_big = Finish({"caa", "-warm-pool-size", "65"});
  ASSERT_FALSE(too_big);
  EXPECT_EQ(too_big.error().message.rfind("-warm-pool-size: ", 0), 0u) << too_big.error().message;
  auto bad_json = Finish({"caa", "-warm-pools", "[{\"name\":\"x\"}]"});
  ASSERT_FALSE(bad_json);
  EXPECT_NE(bad_json.error().message.find("WARM_POOLS[0].size: required"), std::string::npos);
  EXPECT_FALSE(Finish({"caa", "-warm-pool-check-interval", "0s"}));
  // Pool VMs get their certificates from the adaptor's CA: not with TLS off or manual.
  auto no_tls = Finish({"caa", "-warm-pool-size", "1", "-disable-tls"});
  ASSERT_FALSE(no_tls);
  EXPECT_NE(no_tls.error().message.find("automatic TLS mode"), std::string::npos);
  EXPECT_TRUE(Finish({"caa", "-warm-pool-size", "0", "-disable-tls"}));
}

TEST(FlagsTest, BadValuesNameWhatSuppliedThem) {
  ::setenv("FORWARDER_PORT", "0", 1);
  auto from_env = Finish({"caa"});
  auto from_flag = Finish({"caa", "-forwarder-port", "abc"});  // the flag wins over the variable
  ::unsetenv("FORWARDER_PORT");
  ASSERT_FALSE(from_env);
  EXPECT_EQ(from_env.error().message, "FORWARDER_PORT: 0 is out of range (1 to 65535)");
  ASSERT_FALSE(from_flag);
  EXPECT_EQ(from_flag.error().message, "-forwarder-port: \"abc\" is not a number");
  EXPECT_TRUE(Finish({"caa", "-log-level", "warning"}));
  auto level = Finish({"caa", "-log-level", "loud"});
  ASSERT_FALSE(level);
  EXPECT_NE(level.error().message.find("-log-level: unknown log level"), std::string::npos);
  auto format = Finish({"caa", "-log-format", "xml"});
  ASSERT_FALSE(format);
}

TEST(FlagsTest, ARepeatedFlagKeepsItsLastValueAsGoDoes) {
  EXPECT_EQ(Parse({"caa", "-tls-dir", "/a", "-tls-dir", "/b"}).tls_dir, "/b");
}

TEST(FlagsTest, ParsesGoDurations) {
  using std::chrono::nanoseconds;
  EXPECT_EQ(*ParseGoDuration("5m"), nanoseconds(300'000'000'000));
  EXPECT_EQ(*ParseGoDuration("1h30m"), nanoseconds(5'400'000'000'000));
  EXPECT_EQ(*ParseGoDuration("1.5s"), nanoseconds(1'500'000'000));
  EXPECT_EQ(*ParseGoDuration("250ms"), nanoseconds(250'000'000));
  EXPECT_EQ(*ParseGoDuration("0"), nanoseconds(0));
  for (auto bad : {"", "5", "-1s", "1d", "m", "1..5s", "99999999999h"}) {
    auto parsed = ParseGoDuration(bad);
    EXPECT_FALSE(parsed) << bad;
  }
}

}  // namespace
}  // namespace pp::adaptor
