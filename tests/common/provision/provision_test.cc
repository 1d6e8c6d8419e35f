// ProvisionServer and the blocking client over loopback with real mutual TLS: certificates from
// the adaptor's CertificateAuthority, the VM's a server certificate naming the pool VM, the
// adaptor's a client certificate.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <optional>
#include <thread>
#include <vector>

#include "common/provision/client.h"
#include "common/provision/server.h"
#include "common/tls/ca.h"
#include "common/tls/context.h"
#include "tests/support/log_capture.h"
#include "tests/support/test_util.h"

namespace pp::provision {
namespace {

using namespace std::chrono_literals;
namespace v1 = peerpods::provision::v1;
using Clock = std::chrono::steady_clock;

constexpr const char* kPoolVm = "podvm-pool-small-0001";
constexpr const char* kDigest = "sha256:0123456789abcdef";

tls::TlsSettings Settings() {
  auto settings = tls::ParseTlsSettingsList("", {});
  EXPECT_TRUE(settings);
  return settings.value_or(tls::TlsSettings{});
}

std::shared_ptr<asio::ssl::context> ClientContext(const tls::CertificateAuthority& trusted,
                                                  const tls::KeyPair& ours) {
  auto context =
      tls::MakeClientContext({trusted.CertPem(), ours.cert_pem, ours.key_pem}, Settings());
  EXPECT_TRUE(context) << context.error().ToString();
  return context.value_or(nullptr);
}

class ProvisionTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto ca = tls::CertificateAuthority::CreateInMemory();
    ASSERT_TRUE(ca);
    ca_.emplace(std::move(*ca));
    auto vm = ca_->IssueServerCert(kPoolVm);
    ASSERT_TRUE(vm);
    auto server_tls =
        tls::MakeServerContext({ca_->CertPem(), vm->cert_pem, vm->key_pem}, Settings());
    ASSERT_TRUE(server_tls);
    server_tls_ = *server_tls;
    auto adaptor = ca_->IssueClientCert("cloud-api-adaptor");
    ASSERT_TRUE(adaptor);
    adaptor_ = *adaptor;
  }

  void TearDown() override {
    if (server_) {
      io_.Run(server_->Stop());
      asio::post(io_.io(), asio::use_future([this] { server_.reset(); })).get();
    }
  }

  // Starts the server with a handler that counts its calls and answers `answer`.
  void StartServer(Result<void> answer = {}) {
    ProvisionServerOptions options;
    options.listen = {asio::ip::make_address("127.0.0.1"), 0};
    options.pool_vm = kPoolVm;
    options.initdata_digest = kDigest;
    options.tls = server_tls_;
    server_ = std::make_unique<ProvisionServer>(
        io_.executor(), options, [this, answer](const v1::ClaimRequest&) -> Result<void> {
          ++handler_calls_;
          return answer;
        });
    auto bound = asio::post(io_.io(), asio::use_future([this] { return server_->Listen(); })).get();
    ASSERT_TRUE(bound) << bound.error().ToString();
    endpoint_ = *bound;
  }

  Target VmTarget(std::shared_ptr<asio::ssl::context> tls) {
    return Target{"127.0.0.1", endpoint_.port(), kPoolVm, std::move(tls)};
  }
  Target AdaptorTarget() { return VmTarget(ClientContext(*ca_, adaptor_)); }

  static v1::ClaimRequest Request(std::string pool_vm = kPoolVm) {
    v1::ClaimRequest request;
    request.set_pool_vm(std::move(pool_vm));
    request.set_sandbox_id("sandbox-1");
    request.set_user_data("#cloud-config\n");
    return request;
  }

  static Clock::time_point In(std::chrono::milliseconds d) { return Clock::now() + d; }

  std::optional<tls::CertificateAuthority> ca_;
  std::shared_ptr<asio::ssl::context> server_tls_;
  tls::KeyPair adaptor_;
  pp::testing::IoThread io_;
  std::unique_ptr<ProvisionServer> server_;
  asio::ip::tcp::endpoint endpoint_;
  std::atomic<int> handler_calls_{0};
};

TEST_F(ProvisionTest, CheckAnswersTheVmNameAndInitdataDigest) {
  StartServer();
  auto check = Check(AdaptorTarget(), In(5s));
  ASSERT_TRUE(check) << check.error().ToString();
  EXPECT_EQ(check->pool_vm(), kPoolVm);
  EXPECT_EQ(check->initdata_digest(), kDigest);
}

TEST_F(ProvisionTest, OneClaimSucceedsThenTheListenerCloses) {
  pp::testing::LogCapture logs;
  StartServer();
  auto waited = asio::co_spawn(io_.io(), server_->WaitForClaim(), asio::use_future);
  auto claimed = Claim(AdaptorTarget(), Request(), In(5s));
  ASSERT_TRUE(claimed) << claimed.error().ToString();
  ASSERT_EQ(waited.wait_for(5s), std::future_status::ready);
  auto id = waited.get();
  ASSERT_TRUE(id) << id.error().ToString();
  EXPECT_EQ(*id, "sandbox-1");
  EXPECT_EQ(handler_calls_, 1);
  EXPECT_EQ(logs.Count("claimed for sandbox sandbox-1"), 1u);
  // Nothing answers provisioning any more.
  auto again = Check(AdaptorTarget(), In(5s));
  ASSERT_FALSE(again);
  EXPECT_EQ(again.error().code, Code::kUnavailable) << again.error().ToString();
}

TEST_F(ProvisionTest, ASecondClaimIsRefused) {
  StartServer();
  ASSERT_TRUE(Claim(AdaptorTarget(), Request(), In(5s)));
  // The listener closed with the claim, before its reply (a connection made after the reply, as
  // the adaptor's agent proxy makes at once, must not reach the provisioning server): even with
  // WaitForClaim never called, a second claim finds nobody.
  auto second = Claim(AdaptorTarget(), Request(), In(5s));
  ASSERT_FALSE(second);
  EXPECT_EQ(second.error().code, Code::kUnavailable) << second.error().ToString();
  EXPECT_EQ(handler_calls_, 1);
}

TEST_F(ProvisionTest, OfEightConcurrentClaimsExactlyOneWins) {
  StartServer();
  std::atomic<int> won{0}, already{0}, refused{0}, other{0};
  std::vector<std::jthread> threads;
  for (int i = 0; i < 8; ++i) {
    threads.emplace_back([&] {
      auto claimed = Claim(AdaptorTarget(), Request(), In(10s));
      if (claimed) {
        ++won;
      } else if (claimed.error().code == Code::kFailedPrecondition &&
                 claimed.error().message.find("already claimed") != std::string::npos) {
        ++already;  // connected before the claim: "already claimed"
      } else if (claimed.error().code == Code::kUnavailable) {
        ++refused;  // connected after it: the listener was closed
      } else {
        ++other;
      }
    });
  }
  threads.clear();
  EXPECT_EQ(won, 1);
  EXPECT_EQ(already + refused, 7);
  EXPECT_EQ(other, 0);
  EXPECT_EQ(handler_calls_, 1);
}

TEST_F(ProvisionTest, ARefusedClaimLeavesTheVmClaimable) {
  StartServer(Fail(Code::kFailedPrecondition, "initdata differs"));
  auto refused = Claim(AdaptorTarget(), Request(), In(5s));
  ASSERT_FALSE(refused);
  EXPECT_EQ(refused.error().code, Code::kFailedPrecondition);
  EXPECT_EQ(refused.error().message, "initdata differs");
  auto again = Claim(AdaptorTarget(), Request(), In(5s));
  ASSERT_FALSE(again);
  EXPECT_EQ(again.error().message, "initdata differs") << "not 'already claimed'";
  EXPECT_EQ(handler_calls_, 2);
}

TEST_F(ProvisionTest, AClaimForAnotherVmIsInvalidAndCallsNoHandler) {
  StartServer();
  auto claimed = Claim(AdaptorTarget(), Request("podvm-pool-small-0002"), In(5s));
  ASSERT_FALSE(claimed);
  EXPECT_EQ(claimed.error().code, Code::kInvalidArgument) << claimed.error().ToString();
  EXPECT_EQ(handler_calls_, 0);
}

TEST_F(ProvisionTest, AClientCertificateFromAnotherCaIsRefused) {
  StartServer();
  auto other = tls::CertificateAuthority::CreateInMemory();
  ASSERT_TRUE(other);
  auto stranger = other->IssueClientCert("cloud-api-adaptor");
  ASSERT_TRUE(stranger);
  // It trusts our CA (so it would accept the VM) but presents a certificate the VM does not trust.
  auto context =
      tls::MakeClientContext({ca_->CertPem(), stranger->cert_pem, stranger->key_pem}, Settings());
  ASSERT_TRUE(context);
  auto claimed = Claim(VmTarget(*context), Request(), In(5s));
  ASSERT_FALSE(claimed);
  EXPECT_EQ(claimed.error().code, Code::kUnavailable) << claimed.error().ToString();
  EXPECT_EQ(handler_calls_, 0);
}

TEST_F(ProvisionTest, AServerCertificateOfTheSameCaCannotActAsAClient) {
  pp::testing::LogCapture logs;
  StartServer();
  // Another pool VM's (or a pod VM's) credential: issued by the right CA, but for serverAuth.
  auto vm = ca_->IssueServerCert("podvm-pool-small-0002");
  ASSERT_TRUE(vm);
  auto claimed = Claim(VmTarget(ClientContext(*ca_, *vm)), Request(), In(5s));
  ASSERT_FALSE(claimed);
  EXPECT_EQ(claimed.error().code, Code::kUnavailable) << claimed.error().ToString();
  EXPECT_EQ(handler_calls_, 0);
  auto check = Check(VmTarget(ClientContext(*ca_, *vm)), In(5s));
  EXPECT_FALSE(check);
  // Refused by OpenSSL's purpose check (its extendedKeyUsage says serverAuth only).
  EXPECT_TRUE(logs.WaitFor("unsuitable certificate purpose", 2, 5s));
}

TEST_F(ProvisionTest, TheClientVerifiesThePoolVmName) {
  StartServer();
  auto target = AdaptorTarget();
  target.server_name = "podvm-pool-small-0002";
  auto check = Check(target, In(5s));
  ASSERT_FALSE(check);
  EXPECT_EQ(check.error().code, Code::kUnavailable);
  EXPECT_NE(check.error().message.find("tls handshake"), std::string::npos)
      << check.error().message;
}

TEST_F(ProvisionTest, ConnectionRefusedIsUnavailable) {
  // A port that was just free: nobody listens on it.
  asio::io_context io;
  asio::ip::tcp::acceptor probe(io, {asio::ip::make_address("127.0.0.1"), 0});
  const auto port = probe.local_endpoint().port();
  probe.close();
  auto check = Check({"127.0.0.1", port, kPoolVm, ClientContext(*ca_, adaptor_)}, In(5s));
  ASSERT_FALSE(check);
  EXPECT_EQ(check.error().code, Code::kUnavailable);
  EXPECT_NE(check.error().message.find("connect to 127.0.0.1:"), std::string::npos)
      << check.error().message;
}

TEST_F(ProvisionTest, APeerThatNeverAnswersEndsAtTheDeadline) {
  // The kernel completes the connection (listen backlog); nobody ever handshakes.
  asio::io_context io;
  asio::ip::tcp::acceptor silent(io, {asio::ip::make_address("127.0.0.1"), 0});
  const auto port = silent.local_endpoint().port();
  const auto begin = Clock::now();
  auto check = Check({"127.0.0.1", port, kPoolVm, ClientContext(*ca_, adaptor_)}, In(300ms));
  const auto took = Clock::now() - begin;
  ASSERT_FALSE(check);
  EXPECT_EQ(check.error().code, Code::kDeadlineExceeded) << check.error().ToString();
  EXPECT_GE(took, 290ms);
  EXPECT_LT(took, 3s);
  // Plaintext: connected, the call is sent, no reply comes.
  const auto plain_begin = Clock::now();
  auto claimed = Claim({"127.0.0.1", port, kPoolVm, nullptr}, Request(), In(300ms));
  ASSERT_FALSE(claimed);
  EXPECT_EQ(claimed.error().code, Code::kDeadlineExceeded) << claimed.error().ToString();
  EXPECT_LT(Clock::now() - plain_begin, 3s);
}

TEST_F(ProvisionTest, ShutdownEndsTheWaitWithCancelled) {
  StartServer();
  auto waited = asio::co_spawn(io_.io(), server_->WaitForClaim(), asio::use_future);
  asio::post(io_.io(), asio::use_future([this] { server_->Shutdown(); })).get();
  ASSERT_EQ(waited.wait_for(5s), std::future_status::ready);
  auto result = waited.get();
  ASSERT_FALSE(result);
  EXPECT_EQ(result.error().code, Code::kCancelled);
}

}  // namespace
}  // namespace pp::provision
