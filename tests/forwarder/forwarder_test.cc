// The forwarder against a stand-in agent (our ttrpc server with the test echo service on a unix
// socket), over plain TCP on loopback: waiting for the agent, and the accept loop under pressure.
#include "forwarder/forwarder.h"

#include <gtest/gtest.h>
#include <sys/socket.h>

#include <chrono>
#include <thread>

#include "common/tls/ca.h"
#include "common/tls/context.h"
#include "common/tls/stream.h"
#include "common/ttrpc/client.h"
#include "common/ttrpc/codec.h"
#include "common/ttrpc/server.h"
#include "tests/support/echo_service.h"
#include "tests/support/fd_exhaustion.h"
#include "tests/support/log_capture.h"
#include "tests/support/test_util.h"
#include "ttrpctest.pb.h"

namespace pp::forwarder {
namespace {

using namespace std::chrono_literals;

std::string EchoFrame(std::uint32_t id, const std::string& payload) {
  ttrpctest::EchoRequest echo;
  echo.set_payload(payload);
  ::ttrpc::Request request;
  request.set_service("ttrpctest.Test");
  request.set_method("Echo");
  request.set_payload(echo.SerializeAsString());
  return ttrpc::EncodeRequestFrame(id, request);
}

// The echoed payload of the reply read from `raw`, or "" when none came.
std::string ReadEcho(pp::testing::RawConnection& raw) {
  auto [header, data] = raw.Receive();
  ::ttrpc::Response response;
  ttrpctest::EchoResponse echo;
  if (header.type != 2 || !ttrpc::ParseResponse(data, response) ||
      !echo.ParseFromString(response.payload())) {
    return "";
  }
  return echo.payload();
}

asio::awaitable<Result<std::unique_ptr<ttrpc::Stream>>> DialTls(
    asio::any_io_executor executor, asio::ip::tcp::endpoint endpoint,
    std::shared_ptr<asio::ssl::context> context, std::chrono::milliseconds timeout) {
  asio::ip::tcp::socket socket(executor);
  auto [ec] = co_await socket.async_connect(endpoint, kAwaitTuple);
  if (ec) co_return Fail(Code::kUnavailable, "connect: ", ec.message());
  co_return co_await tls::TlsConnect(std::move(socket), std::move(context), "podvm", timeout);
}

class ForwarderTest : public ::testing::Test {
 protected:
  void TearDown() override {
    if (forwarder_) {
      asio::post(io_.io(), asio::use_future([this] { forwarder_->Shutdown(); })).get();
    }
    if (agent_) io_.Run(agent_->Shutdown(2s));
  }

  void StartAgent() {
    agent_ = std::make_unique<ttrpc::Server>(io_.executor());
    pp::testing::RegisterEchoService(*agent_);
    ASSERT_TRUE(agent_->ListenUnix(agent_socket_));
  }

  ForwarderOptions Options() {
    ForwarderOptions options;
    options.listen = {asio::ip::make_address("127.0.0.1"), 0};
    options.agent_socket = agent_socket_;
    return options;
  }

  pp::testing::TempDir dir_;
  std::string agent_socket_ = dir_ / "agent.sock";
  pp::testing::IoThread io_;
  std::unique_ptr<ttrpc::Server> agent_;
  std::unique_ptr<Forwarder> forwarder_;
};

TEST_F(ForwarderTest, SaysWhileWaitingForTheAgentThatItIsStillWaiting) {
  pp::testing::LogCapture logs;
  auto options = Options();
  options.wait_log_interval = 100ms;
  forwarder_ = std::make_unique<Forwarder>(io_.executor(), options);
  const auto begin = std::chrono::steady_clock::now();
  auto started = asio::co_spawn(io_.io(), forwarder_->Start(), asio::use_future);

  const std::string still = "still waiting for the kata-agent at " + agent_socket_ + " (";
  ASSERT_TRUE(logs.WaitFor(still, 3, 10s)) << "lines so far: " << logs.Lines().size();
  const auto waited = std::chrono::steady_clock::now() - begin;
  EXPECT_EQ(logs.Count("waiting for the kata-agent at " + agent_socket_ + ": "), 1u)
      << "the first line, with the reason";
  // One line per interval at most (plus the first), however often the socket is probed.
  EXPECT_LE(logs.Count("waiting for the kata-agent"), static_cast<std::size_t>(waited / 100ms) + 2);

  StartAgent();
  ASSERT_EQ(started.wait_for(10s), std::future_status::ready);
  auto bound = started.get();
  ASSERT_TRUE(bound) << bound.error().message;
  EXPECT_EQ(logs.Count("the kata-agent at " + agent_socket_ + " answered after"), 1u);
}

TEST_F(ForwarderTest, KeepsAcceptingAfterRunningOutOfDescriptorsWithoutSpinning) {
  StartAgent();
  forwarder_ = std::make_unique<Forwarder>(io_.executor(), Options());
  auto bound = io_.Run(forwarder_->Start());
  ASSERT_TRUE(bound) << bound.error().message;

  pp::testing::LogCapture logs;
  pp::testing::RawConnection client(AF_INET);  // made now: connecting needs no new descriptor
  // The stand-in agent accepts too (the forwarder's probe): count the forwarder's lines only.
  const std::string emfile =
      "accept on 127.0.0.1:" + std::to_string(bound->port()) + ": Too many open files";
  {
    pp::testing::FdExhaustion exhausted;
    ASSERT_TRUE(exhausted.exhausted());
    ASSERT_TRUE(client.ConnectTcp(*bound));
    ASSERT_TRUE(logs.WaitFor(emfile, 1, 5s));
    // A window to count in: a loop that retried at once would fail thousands of times in it.
    std::this_thread::sleep_for(300ms);
    EXPECT_LE(logs.Count(emfile), 2u);
  }
  // Descriptors are back: the connection that waited in the listen queue is accepted and relayed.
  client.SetReceiveTimeout(10s);
  ASSERT_TRUE(client.Send(EchoFrame(1, "after EMFILE")));
  EXPECT_EQ(ReadEcho(client), "after EMFILE");
  EXPECT_EQ(
      logs.Count("accept on 127.0.0.1:" + std::to_string(bound->port()) + ": accepting again"), 1u);
}

// Peers that connect and never finish their TLS handshake hold at most max_handshakes slots, each
// for at most handshake_timeout: meanwhile the forwarder accepts no one else, afterwards it does.
TEST_F(ForwarderTest, CapsConcurrentHandshakesAndTimesThemOut) {
  StartAgent();
  auto ca = tls::CertificateAuthority::CreateInMemory();
  ASSERT_TRUE(ca);
  auto server = ca->IssueServerCert("podvm");
  auto client = ca->IssueClientCert("proxy");
  ASSERT_TRUE(server && client);
  auto server_tls = tls::MakeServerContext({ca->CertPem(), server->cert_pem, server->key_pem}, {});
  auto client_tls = tls::MakeClientContext({ca->CertPem(), client->cert_pem, client->key_pem}, {});
  ASSERT_TRUE(server_tls && client_tls);
  auto options = Options();
  options.tls = *server_tls;
  options.max_handshakes = 2;
  options.handshake_timeout = 1000ms;
  forwarder_ = std::make_unique<Forwarder>(io_.executor(), options);
  auto bound = io_.Run(forwarder_->Start());
  ASSERT_TRUE(bound) << bound.error().message;
  auto handshakes = [&] {
    return asio::post(io_.io(),
                      asio::use_future([&] { return forwarder_->HandshakesInProgress(); }))
        .get();
  };

  pp::testing::RawConnection stalled1(AF_INET), stalled2(AF_INET);
  const auto begin = std::chrono::steady_clock::now();
  ASSERT_TRUE(stalled1.ConnectTcp(*bound) && stalled2.ConnectTcp(*bound));
  ASSERT_TRUE(pp::testing::WaitUntil([&] { return handshakes() == 2; }, 5s));
  // Both slots held: a real client is not even accepted, so its handshake gets no answer.
  auto blocked = io_.Run(DialTls(io_.executor(), *bound, *client_tls, 300ms));
  EXPECT_FALSE(blocked);
  EXPECT_LT(std::chrono::steady_clock::now() - begin, 1000ms)
      << "checked while the slots were held";
  EXPECT_LE(handshakes(), 2u);

  // The stalled handshakes time out and their connections are closed...
  stalled1.SetReceiveTimeout(10s);
  stalled2.SetReceiveTimeout(10s);
  EXPECT_TRUE(stalled1.PeerClosed());
  EXPECT_TRUE(stalled2.PeerClosed());
  EXPECT_GE(std::chrono::steady_clock::now() - begin, 900ms);
  // ...which frees the slots: a client gets through now, and its calls reach the agent.
  auto through = io_.Run(DialTls(io_.executor(), *bound, *client_tls, 5s));
  ASSERT_TRUE(through) << through.error().message;
  auto ttrpc_client = ttrpc::Client::Create(std::move(*through));
  ttrpctest::EchoRequest request;
  request.set_payload("through");
  auto reply = asio::co_spawn(ttrpc_client->get_executor(),
                              ttrpc_client->Call<ttrpctest::EchoResponse>("ttrpctest.Test", "Echo",
                                                                          request, {}),
                              asio::use_future)
                   .get();
  ASSERT_TRUE(reply) << reply.error().message;
  EXPECT_EQ(reply->payload(), "through");
  ttrpc_client->Close();
}

}  // namespace
}  // namespace pp::forwarder
