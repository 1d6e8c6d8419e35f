// A pool VM's forwarder end to end over loopback with real mutual TLS: it serves provisioning with
// the pool credential, one claim delivers the pod's apf.json, and then the agent path (to a
// stand-in agent: our ttrpc server with the test echo service) answers with the POD's certificate
// on the same address.
#include "forwarder/pool_mode.h"

#include <gtest/gtest.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <optional>
#include <set>

#include "common/podvm/apf_config.h"
#include "common/podvm/initdata.h"
#include "common/podvm/pool_config.h"
#include "common/podvm/user_data.h"
#include "common/provision/client.h"
#include "common/tls/ca.h"
#include "common/tls/context.h"
#include "common/tls/stream.h"
#include "common/ttrpc/client.h"
#include "forwarder/process_user_data.h"
#include "tests/support/echo_service.h"
#include "tests/support/log_capture.h"
#include "tests/support/test_util.h"
#include "ttrpctest.pb.h"

namespace pp::forwarder {
namespace {

using namespace std::chrono_literals;
namespace v1 = peerpods::provision::v1;
using Clock = std::chrono::steady_clock;

constexpr const char* kPoolVm = "podvm-pool-small-0001";
constexpr const char* kPodVm = "podvm-nginx-5c0ffee1";

std::string Initdata(const std::string& url) {
  return "version = \"0.1.0\"\nalgorithm = \"sha256\"\n\n[data]\n\"aa.toml\" = '''\n"
         "[token_configs.kbs]\nurl = \"" +
         url + "\"\n'''\n";
}

tls::TlsSettings Settings() {
  auto settings = tls::ParseTlsSettingsList("", {});
  EXPECT_TRUE(settings);
  return settings.value_or(tls::TlsSettings{});
}

podvm::WriteFile Entry(std::string path, std::string content) {
  podvm::WriteFile file;
  file.path = std::move(path);
  file.content = std::move(content);
  return file;
}

void WriteText(const std::string& path, const std::string& text) {
  std::ofstream(path, std::ios::binary) << text;
}

std::set<std::string> Files(const std::string& dir) {
  std::set<std::string> names;
  for (const auto& entry : std::filesystem::directory_iterator(dir)) {
    names.insert(entry.path().filename().string());
  }
  return names;
}

asio::awaitable<Result<std::string>> EchoOverTls(asio::ip::tcp::endpoint endpoint,
                                                 std::shared_ptr<asio::ssl::context> context,
                                                 std::string server_name) {
  asio::ip::tcp::socket socket(co_await asio::this_coro::executor);
  auto [ec] = co_await socket.async_connect(endpoint, kAwaitTuple);
  if (ec) co_return Fail(Code::kUnavailable, "connect: ", ec.message());
  auto stream = co_await tls::TlsConnect(std::move(socket), context, server_name, 5s);
  if (!stream) co_return std::unexpected(stream.error());
  auto client = ttrpc::Client::Create(std::move(*stream));
  ttrpctest::EchoRequest request;
  request.set_payload("through the pod's forwarder");
  ttrpc::CallOptions options;
  options.timeout = 5s;
  auto reply =
      co_await client->Call<ttrpctest::EchoResponse>("ttrpctest.Test", "Echo", request, options);
  client->Close();
  if (!reply) co_return std::unexpected(reply.error());
  co_return reply->payload();
}

class PoolModeTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto ca = tls::CertificateAuthority::CreateInMemory();
    ASSERT_TRUE(ca);
    ca_.emplace(std::move(*ca));
    auto pool_cert = ca_->IssueServerCert(kPoolVm);
    auto pod_cert = ca_->IssueServerCert(kPodVm);
    auto adaptor = ca_->IssueClientCert("cloud-api-adaptor");
    ASSERT_TRUE(pool_cert && pod_cert && adaptor);
    pod_cert_ = *pod_cert;
    auto client =
        tls::MakeClientContext({ca_->CertPem(), adaptor->cert_pem, adaptor->key_pem}, Settings());
    ASSERT_TRUE(client);
    adaptor_tls_ = *client;

    std::filesystem::create_directories(out_);
    podvm::PoolConfig pool;
    pool.pool_vm = kPoolVm;
    pool.tls_server_cert = pool_cert->cert_pem;
    pool.tls_server_key = pool_cert->key_pem;
    pool.tls_client_ca = ca_->CertPem();
    pool_json_ = podvm::SerializePoolConfig(pool);
    WriteText(out_ + "/pool.json", pool_json_);

    agent_ = std::make_unique<ttrpc::Server>(io_.executor());
    pp::testing::RegisterEchoService(*agent_);
    ASSERT_TRUE(agent_->ListenUnix(dir_ / "agent.sock"));

    // A port that was free a moment ago: -listen takes no port 0.
    asio::io_context io;
    asio::ip::tcp::acceptor probe(io, {asio::ip::make_address("127.0.0.1"), 0});
    port_ = probe.local_endpoint().port();
    flags_.listen = "127.0.0.1:" + std::to_string(port_);
    flags_.agent_socket = dir_ / "agent.sock";
    flags_.pod_netns = "";
    flags_.config_path = out_ + "/apf.json";
    flags_.pool_config_path = out_ + "/pool.json";
    flags_.output_dir = out_;
  }

  void TearDown() override {
    if (pool_) io_.Run(pool_->Stop());
    if (running_.valid()) {
      EXPECT_EQ(running_.wait_for(10s), std::future_status::ready);
    }
    if (agent_) io_.Run(agent_->Shutdown(2s));
    if (pool_) asio::post(io_.io(), asio::use_future([this] { pool_.reset(); })).get();
  }

  // Boots the pool VM: process-user-data on its boot user-data (pool.json and, if given, the
  // initdata it is launched with), then the forwarder.
  void Boot(std::optional<std::string> initdata = std::nullopt) {
    std::vector<podvm::WriteFile> files = {Entry("/run/peerpod/pool.json", pool_json_)};
    if (initdata) files.push_back(Entry("/run/peerpod/initdata", podvm::EncodeInitdata(*initdata)));
    auto plan = PlanFromText(podvm::RenderUserData(files));
    ASSERT_TRUE(plan) << plan.error().ToString();
    ASSERT_TRUE(WritePlan(out_, *plan));
    ASSERT_TRUE(IsPoolMode(flags_));
    auto pool =
        asio::post(io_.io(),
                   asio::use_future([this] { return PoolMode::Create(io_.executor(), flags_); }))
            .get();
    ASSERT_TRUE(pool) << pool.error().ToString();
    pool_ = std::move(*pool);
    auto listening =
        asio::post(io_.io(), asio::use_future([this] { return pool_->Listen(); })).get();
    ASSERT_TRUE(listening) << listening.error().ToString();
    running_ = asio::co_spawn(io_.io(), pool_->Run(), asio::use_future);
  }

  std::string PodUserData(std::optional<std::string> initdata, bool with_apf = true,
                          std::vector<podvm::WriteFile> extra = {}) {
    podvm::ApfConfig apf;
    apf.pod_name = "nginx";
    apf.pod_namespace = "default";
    apf.tls_server_cert = pod_cert_.cert_pem;
    apf.tls_server_key = pod_cert_.key_pem;
    apf.tls_client_ca = ca_->CertPem();
    std::vector<podvm::WriteFile> files;
    if (with_apf) files.push_back(Entry("/run/peerpod/apf.json", podvm::SerializeApfConfig(apf)));
    if (initdata) files.push_back(Entry("/run/peerpod/initdata", podvm::EncodeInitdata(*initdata)));
    for (auto& file : extra) files.push_back(std::move(file));
    return podvm::RenderUserData(files);
  }

  provision::Target PoolTarget() { return {"127.0.0.1", port_, kPoolVm, adaptor_tls_}; }

  Result<void> ClaimWith(std::string user_data) {
    v1::ClaimRequest request;
    request.set_pool_vm(kPoolVm);
    request.set_sandbox_id("sandbox-1");
    request.set_user_data(std::move(user_data));
    return provision::Claim(PoolTarget(), request, Clock::now() + 10s);
  }

  pp::testing::TempDir dir_;
  std::string out_ = dir_ / "peerpod";
  std::optional<tls::CertificateAuthority> ca_;
  std::string pool_json_;
  tls::KeyPair pod_cert_;
  std::shared_ptr<asio::ssl::context> adaptor_tls_;
  ForwarderFlags flags_;
  unsigned short port_ = 0;
  pp::testing::IoThread io_;
  std::unique_ptr<ttrpc::Server> agent_;
  std::unique_ptr<PoolMode> pool_;
  std::future<Result<asio::ip::tcp::endpoint>> running_;
};

TEST_F(PoolModeTest, AClaimTurnsThePoolVmIntoThePodsVm) {
  pp::testing::LogCapture logs;
  const std::string initdata = Initdata("http://kbs:8080");
  Boot(initdata);
  EXPECT_EQ(logs.Count(std::string("pool VM ") + kPoolVm + " waiting for a claim"), 1u);

  auto check = provision::Check(PoolTarget(), Clock::now() + 10s);
  ASSERT_TRUE(check) << check.error().ToString();
  EXPECT_EQ(check->pool_vm(), kPoolVm);
  EXPECT_EQ(check->initdata_digest(), InitdataDigest(initdata));
  EXPECT_EQ(check->initdata_digest().size(), 7u + 64u);

  const auto begin = Clock::now();
  auto claimed = ClaimWith(PodUserData(initdata));
  ASSERT_TRUE(claimed) << claimed.error().ToString();
  ASSERT_EQ(running_.wait_for(10s), std::future_status::ready);
  auto bound = running_.get();
  ASSERT_TRUE(bound) << bound.error().ToString();
  const auto ready = Clock::now() - begin;
  EXPECT_EQ(bound->port(), port_) << "the agent path serves on the same address";
  EXPECT_EQ(logs.Count("claimed for sandbox sandbox-1"), 1u);
  std::cout << "claim to forwarder listening: "
            << std::chrono::duration_cast<std::chrono::milliseconds>(ready).count() << " ms\n";

  // The pool credential is gone, the pod's files are in place.
  const auto files = Files(out_);
  EXPECT_EQ(files.count("pool.json"), 0u);
  EXPECT_EQ(files.count("apf.json"), 1u);
  EXPECT_EQ(files.count("aa.toml"), 1u);
  EXPECT_EQ(files.count("initdata.digest"), 1u);
  EXPECT_FALSE(IsPoolMode(flags_)) << "a restarted forwarder is an ordinary one";

  // The agent path answers with the pod's certificate ...
  auto echoed = io_.Run(EchoOverTls(*bound, adaptor_tls_, kPodVm));
  ASSERT_TRUE(echoed) << echoed.error().ToString();
  EXPECT_EQ(*echoed, "through the pod's forwarder");
  // ... and nothing answers as the pool VM any more.
  auto as_pool = io_.Run(EchoOverTls(*bound, adaptor_tls_, kPoolVm));
  EXPECT_FALSE(as_pool);
  auto check_again = provision::Check(PoolTarget(), Clock::now() + 5s);
  EXPECT_FALSE(check_again);
}

TEST_F(PoolModeTest, AClaimWithoutInitdataOnAVmBootedWithoutIsFine) {
  Boot();
  auto check = provision::Check(PoolTarget(), Clock::now() + 10s);
  ASSERT_TRUE(check) << check.error().ToString();
  EXPECT_EQ(check->initdata_digest(), "");
  ASSERT_TRUE(ClaimWith(PodUserData(std::nullopt)));
  ASSERT_EQ(running_.wait_for(10s), std::future_status::ready);
  auto bound = running_.get();
  ASSERT_TRUE(bound) << bound.error().ToString();
}

TEST_F(PoolModeTest, DifferentInitdataIsRefusedAndNothingIsWritten) {
  Boot(Initdata("http://kbs:8080"));
  const auto before = Files(out_);
  for (const auto& initdata :
       {std::optional<std::string>(Initdata("http://evil:8080")), std::optional<std::string>()}) {
    auto claimed = ClaimWith(PodUserData(initdata));
    ASSERT_FALSE(claimed);
    EXPECT_EQ(claimed.error().code, Code::kFailedPrecondition);
    EXPECT_EQ(claimed.error().message,
              "initdata differs from what this VM was launched with: it is measured at launch");
    EXPECT_EQ(Files(out_), before);
  }
  // A VM booted without initdata refuses a claim that brings one.
  EXPECT_EQ(running_.wait_for(0s), std::future_status::timeout);
  // And a correct claim still succeeds afterwards.
  ASSERT_TRUE(ClaimWith(PodUserData(Initdata("http://kbs:8080"))));
  ASSERT_EQ(running_.wait_for(10s), std::future_status::ready);
  EXPECT_TRUE(running_.get());
}

TEST_F(PoolModeTest, InitdataOnAVmBootedWithoutIsRefused) {
  Boot();
  const auto before = Files(out_);
  auto claimed = ClaimWith(PodUserData(Initdata("http://kbs:8080")));
  ASSERT_FALSE(claimed);
  EXPECT_EQ(claimed.error().code, Code::kFailedPrecondition);
  EXPECT_EQ(Files(out_), before);
}

TEST_F(PoolModeTest, UserDataWithoutApfJsonIsRefusedAndNothingIsWritten) {
  const std::string initdata = Initdata("http://kbs:8080");
  Boot(initdata);
  const auto before = Files(out_);
  auto claimed = ClaimWith(PodUserData(initdata, /*with_apf=*/false));
  ASSERT_FALSE(claimed);
  EXPECT_EQ(claimed.error().code, Code::kInvalidArgument);
  EXPECT_NE(claimed.error().message.find("no /run/peerpod/apf.json"), std::string::npos)
      << claimed.error().message;
  EXPECT_EQ(Files(out_), before);
  // Broken user-data, and an apf.json without TLS material, likewise.
  claimed = ClaimWith("#cloud-config\nwrite_files: 7\n");
  ASSERT_FALSE(claimed);
  EXPECT_EQ(claimed.error().code, Code::kInvalidArgument);
  claimed = ClaimWith(
      podvm::RenderUserData({Entry("/run/peerpod/apf.json", "{\"pod-name\": \"nginx\"}"),
                             Entry("/run/peerpod/initdata", podvm::EncodeInitdata(initdata))}));
  ASSERT_FALSE(claimed);
  EXPECT_EQ(claimed.error().code, Code::kInvalidArgument);
  EXPECT_NE(claimed.error().message.find("tls-client-ca is missing"), std::string::npos)
      << claimed.error().message;
  EXPECT_EQ(Files(out_), before);
}

TEST_F(PoolModeTest, FilesReadAtBootMustBeWhatTheVmBootedWith) {
  Boot();  // no initdata: no aa.toml at boot
  const auto before = Files(out_);
  auto claimed = ClaimWith(
      PodUserData(std::nullopt, true, {Entry("/run/peerpod/aa.toml", "[token_configs]\n")}));
  ASSERT_FALSE(claimed);
  EXPECT_EQ(claimed.error().code, Code::kFailedPrecondition);
  EXPECT_NE(claimed.error().message.find("aa.toml differs"), std::string::npos)
      << claimed.error().message;
  EXPECT_EQ(Files(out_), before);
}

TEST_F(PoolModeTest, ConfigMustBeWhereTheClaimWritesIt) {
  flags_.config_path = dir_ / "elsewhere.json";
  auto pool = PoolMode::Create(io_.executor(), flags_);
  ASSERT_FALSE(pool);
  EXPECT_NE(pool.error().message.find("must be <-output-dir>/apf.json"), std::string::npos);
}

TEST_F(PoolModeTest, ABrokenPoolJsonNamesTheFileAndKey) {
  WriteText(out_ + "/pool.json",
            "{\"pool-vm\": \"vm\", \"tls-server-cert\": \"x\", "
            "\"tls-server-key\": \"y\", \"tls-client-ca\": \"z\"}");
  auto pool = PoolMode::Create(io_.executor(), flags_);
  ASSERT_FALSE(pool);
  EXPECT_NE(pool.error().message.find(out_ + "/pool.json: tls-client-ca: "), std::string::npos)
      << pool.error().message;
}

}  // namespace
}  // namespace pp::forwarder
