#include "forwarder/forwarder_cli.h"

#include <gtest/gtest.h>

#include <fstream>
#include <functional>
#include <sstream>
#include <string>
#include <vector>

#include "common/base/file.h"
#include "common/podvm/apf_config.h"
#include "common/tls/ca.h"
#include "forwarder/pool_mode.h"
#include "tests/support/test_util.h"

namespace pp::forwarder {
namespace {

struct MainResult {
  int code;
  std::string out;
  std::string err;
};

MainResult RunMain(std::vector<const char*> argv) {
  std::ostringstream out, err;
  const int code = ForwarderMain(static_cast<int>(argv.size()), argv.data(), out, err);
  return {code, out.str(), err.str()};
}

TEST(ForwarderCliTest, ListenAcceptsIpv4AndBracketedIpv6) {
  auto v4 = ParseListenAddress("127.0.0.1:15150");
  ASSERT_TRUE(v4) << v4.error().message;
  EXPECT_EQ(v4->address().to_string(), "127.0.0.1");
  EXPECT_EQ(v4->port(), 15150);
  auto v6 = ParseListenAddress("[::1]:15150");
  ASSERT_TRUE(v6) << v6.error().message;
  EXPECT_TRUE(v6->address().is_v6());
  EXPECT_EQ(v6->address().to_string(), "::1");
  EXPECT_EQ(v6->port(), 15150);
  auto edges = ParseListenAddress("0.0.0.0:65535");
  ASSERT_TRUE(edges);
  EXPECT_EQ(edges->port(), 65535);
  EXPECT_EQ(ParseListenAddress("0.0.0.0:1")->port(), 1);
}

TEST(ForwarderCliTest, ListenRefusesWhatIsNotIpAndPortNamingTheBadPart) {
  const struct {
    const char* listen;
    const char* names;  // the part the message must quote
  } cases[] = {
      {"127.0.0.1:notaport", "\"notaport\""},
      {"127.0.0.1:99999", "\"99999\""},  // used to listen on 99999 mod 65536 = 34463
      {"127.0.0.1:-5", "\"-5\""},        // used to listen on 65531
      {"127.0.0.1:0", "port \"0\""},
      {"127.0.0.1:", "port \"\""},
      {"127.0.0.1:+80", "\"+80\""},
      {"127.0.0.1: 80", "\" 80\""},
      {"127.0.0.1:000080000", "\"000080000\""},
      {"127.0.0.1", "no ':'"},
      {"localhost:15150", "\"localhost\" is not an IPv4 address"},
      {"300.1.1.1:15150", "\"300.1.1.1\""},
      {":15150", "IP address is missing"},
      {"::1:15150", "needs brackets"},
      {"[::1]15150", "[<ipv6>]:<port>"},
      {"[127.0.0.1]:15150", "\"127.0.0.1\" is not an IPv6 address"},
      {"[::1]:70000", "\"70000\""},
  };
  for (const auto& c : cases) {
    auto parsed = ParseListenAddress(c.listen);
    ASSERT_FALSE(parsed) << c.listen << " parsed as " << parsed->address().to_string() << ":"
                         << parsed->port();
    EXPECT_EQ(parsed.error().code, Code::kInvalidArgument);
    EXPECT_NE(parsed.error().message.find("-listen \"" + std::string(c.listen) + "\""),
              std::string::npos)
        << parsed.error().message;
    EXPECT_NE(parsed.error().message.find(c.names), std::string::npos) << parsed.error().message;
  }
}

// The binary's whole path: a bad -listen is a usage error (exit 2, a message), never an abort.
TEST(ForwarderCliTest, MainReportsBadListenWithExitCodeTwo) {
  for (const char* listen : {"127.0.0.1:notaport", "127.0.0.1:99999", "127.0.0.1:-5", "127.0.0.1:0",
                             "127.0.0.1", "nohost:1"}) {
    const auto result = RunMain({"agent-protocol-forwarder", "-disable-tls", "-config",
                                 "/nonexistent/apf.json", "-listen", listen});
    EXPECT_EQ(result.code, 2) << listen;
    EXPECT_NE(result.err.find("-listen"), std::string::npos) << result.err;
  }
}

TEST(ForwarderCliTest, PoolModeOnlyWithoutApfJsonAndItsConfigErrorsExitTwo) {
  pp::testing::TempDir dir;
  ForwarderFlags flags;
  flags.config_path = dir / "apf.json";
  flags.pool_config_path = dir / "pool.json";
  flags.output_dir = dir.path();
  EXPECT_FALSE(IsPoolMode(flags)) << "neither file";
  std::ofstream(dir / "pool.json") << "{\"pool-vm\": 5}";
  EXPECT_TRUE(IsPoolMode(flags));
  const auto result =
      RunMain({"agent-protocol-forwarder", "-listen", "127.0.0.1:15150", "-config",
               flags.config_path.c_str(), "-pool-config", flags.pool_config_path.c_str(),
               "-output-dir", flags.output_dir.c_str()});
  EXPECT_EQ(result.code, 2);
  EXPECT_NE(result.err.find(flags.pool_config_path + ": pool-vm: must be a string"),
            std::string::npos)
      << result.err;
  std::ofstream(dir / "apf.json") << "{}";
  EXPECT_FALSE(IsPoolMode(flags)) << "apf.json wins: a claimed VM's forwarder restarts as a pod's";
}

TEST(ForwarderCliTest, MainReportsUnknownFlagsAndVersion) {
  const auto unknown = RunMain({"agent-protocol-forwarder", "-no-such-flag"});
  EXPECT_NE(unknown.code, 0);
  EXPECT_NE(unknown.err.find("no-such-flag"), std::string::npos) << unknown.err;
  const auto version = RunMain({"agent-protocol-forwarder", "-version"});
  EXPECT_EQ(version.code, 0);
  EXPECT_EQ(version.out.rfind("agent-protocol-forwarder ", 0), 0u) << version.out;
}

TEST(ForwarderCliTest, OptionsComeFromFlagsAndApfJson) {
  testing::TempDir dir;
  ForwarderFlags flags;
  flags.listen = "[::1]:15150";
  flags.disable_tls = true;
  flags.config_path = dir / "apf.json";
  auto options = BuildForwarderOptions(flags);
  ASSERT_TRUE(options) << options.error().message;
  EXPECT_EQ(options->listen.port(), 15150);
  EXPECT_EQ(options->pod_netns, "/run/netns/podns") << "no apf.json: the flag's value";
  EXPECT_EQ(options->tls, nullptr);

  // apf.json's pod-namespace is the Kubernetes namespace, as CAA writes it: not a netns path.
  ASSERT_TRUE(WriteFileAtomic(flags.config_path, R"({"pod-namespace": "default"})", 0600));
  options = BuildForwarderOptions(flags);
  ASSERT_TRUE(options) << options.error().message;
  EXPECT_EQ(options->pod_netns, "/run/netns/podns");

  ASSERT_TRUE(WriteFileAtomic(flags.config_path, R"({"pod-name": 5})", 0600));
  options = BuildForwarderOptions(flags);
  ASSERT_FALSE(options);
  EXPECT_EQ(options.error().message,
            flags.config_path + ": pod-name: must be a string, not number");
}

// Every apf.json problem names the file and the key, so the operator knows what to fix.
TEST(ForwarderCliTest, ApfJsonTlsErrorsNameTheFileAndTheKey) {
  auto ca = tls::CertificateAuthority::CreateInMemory();
  ASSERT_TRUE(ca);
  auto server = ca->IssueServerCert("podvm");
  auto other = ca->IssueServerCert("other");
  ASSERT_TRUE(server && other);
  podvm::ApfConfig good;
  good.tls_client_ca = ca->CertPem();
  good.tls_server_cert = server->cert_pem;
  good.tls_server_key = server->key_pem;

  testing::TempDir dir;
  ForwarderFlags flags;
  flags.listen = "127.0.0.1:15150";
  flags.config_path = dir / "apf.json";
  ASSERT_TRUE(WriteFileAtomic(flags.config_path, podvm::SerializeApfConfig(good), 0600));
  auto options = BuildForwarderOptions(flags);
  ASSERT_TRUE(options) << options.error().message;
  EXPECT_NE(options->tls, nullptr);

  const std::string broken_pem = "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n";
  const struct {
    std::function<void(podvm::ApfConfig&)> spoil;
    std::string key;
  } cases[] = {
      {[](auto& c) { c.tls_client_ca = "not pem"; }, "tls-client-ca"},
      {[&](auto& c) { c.tls_client_ca = broken_pem; }, "tls-client-ca"},
      {[](auto& c) { c.tls_server_cert = "not pem"; }, "tls-server-cert"},
      {[](auto& c) { c.tls_server_key = "not pem"; }, "tls-server-key"},
      {[](auto& c) { c.tls_server_key.clear(); }, "tls-server-key"},
      {[](auto& c) { c.tls_client_ca.clear(); }, "tls-client-ca"},
      {[&](auto& c) { c.tls_server_key = other->key_pem; }, "tls-server-cert, tls-server-key"},
      {[](auto& c) {
         c.tls_cipher_suites = {"TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256", "TLS_RSA_NOPE"};
       },
       "tls-cipher-suites[1]"},
  };
  for (const auto& c : cases) {
    podvm::ApfConfig config = good;
    c.spoil(config);
    ASSERT_TRUE(WriteFileAtomic(flags.config_path, podvm::SerializeApfConfig(config), 0600));
    options = BuildForwarderOptions(flags);
    ASSERT_FALSE(options) << c.key;
    EXPECT_EQ(options.error().message.rfind(flags.config_path + ": " + c.key, 0), 0u)
        << "expected \"" << flags.config_path << ": " << c.key << "...\", got \""
        << options.error().message << "\"";
    EXPECT_EQ(options.error().message.find("PRIVATE KEY-----"), std::string::npos)
        << "no key material in messages";
  }
}

}  // namespace
}  // namespace pp::forwarder
