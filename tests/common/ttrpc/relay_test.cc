// The frame relay between our client and our server, with a rewrite and upstream failures.
#include "common/ttrpc/relay.h"

#include <gtest/gtest.h>

#include "common/ttrpc/client.h"
#include "common/ttrpc/codec.h"
#include "tests/support/echo_service.h"
#include "tests/support/test_util.h"
#include "ttrpctest.pb.h"

namespace pp::ttrpc {
namespace {

using namespace std::chrono_literals;

class RelayTest : public ::testing::Test {
 protected:
  void SetUp() override {
    StartAgent();
    acceptor_ = std::make_unique<asio::local::stream_protocol::acceptor>(
        io_.io(), asio::local::stream_protocol::endpoint(relay_socket_));
    asio::co_spawn(io_.io(), AcceptLoop(), asio::detached);
  }
  void TearDown() override {
    io_.Run([this]() -> asio::awaitable<void> {
      std::error_code ignored;
      acceptor_->close(ignored);
      for (auto& relay : relays_) relay->Close();
      co_return;
    }());
    if (agent_) io_.Run(agent_->Shutdown(1s));
  }

  void StartAgent() {
    agent_ = std::make_unique<Server>(io_.executor());
    pp::testing::RegisterEchoService(*agent_);
    ASSERT_TRUE(agent_->ListenUnix(agent_socket_));
  }

  asio::awaitable<void> AcceptLoop() {
    for (;;) {
      auto [ec, socket] = co_await acceptor_->async_accept(asio::make_strand(io_.executor()), kAwaitTuple);
      if (ec) co_return;
      auto downstream = std::make_unique<UnixStream>(std::move(socket), "test-downstream");
      auto executor = downstream->get_executor();
      Relay::Dialer dial = [this, executor]() -> asio::awaitable<Result<std::unique_ptr<Stream>>> {
        asio::local::stream_protocol::socket s(executor);
        auto [err] = co_await s.async_connect(asio::local::stream_protocol::endpoint(agent_socket_), kAwaitTuple);
        if (err) co_return Fail(Code::kUnavailable, "connect: ", err.message());
        co_return std::make_unique<UnixStream>(std::move(s), "test-agent");
      };
      relays_.push_back(Relay::Start(std::move(downstream), std::move(dial), options_));
    }
  }

  std::shared_ptr<Client> Connect() {
    auto stream = io_.Run(ConnectUnix(io_.executor(), relay_socket_));
    EXPECT_TRUE(stream);
    return Client::Create(std::move(*stream));
  }

  Result<ttrpctest::EchoResponse> Echo(const std::shared_ptr<Client>& client, std::string payload,
                                       std::int64_t sleep_ms = 0, CallOptions options = {}) {
    ttrpctest::EchoRequest request;
    request.set_payload(std::move(payload));
    request.set_sleep_ms(sleep_ms);
    return asio::co_spawn(client->get_executor(),
                          client->Call<ttrpctest::EchoResponse>("ttrpctest.Test", "Echo", request, std::move(options)),
                          asio::use_future)
        .get();
  }

  pp::testing::TempDir dir_;
  std::string agent_socket_ = dir_ / "agent.sock";
  std::string relay_socket_ = dir_ / "relay.sock";
  pp::testing::IoThread io_;
  std::unique_ptr<Server> agent_;
  std::unique_ptr<asio::local::stream_protocol::acceptor> acceptor_;
  std::vector<std::shared_ptr<Relay>> relays_;
  Relay::Options options_;
};

TEST_F(RelayTest, PassesCallsWithMetadataAndLargePayloads) {
  auto client = Connect();
  CallOptions options;
  options.metadata = {{"traceparent", "00-1"}};
  options.timeout = 5s;
  auto reply = Echo(client, "hi", 0, options);
  ASSERT_TRUE(reply) << reply.error().ToString();
  EXPECT_EQ(reply->payload(), "hi");
  ASSERT_EQ(reply->metadata_size(), 1);
  EXPECT_EQ(reply->metadata(0).value(), "00-1");
  EXPECT_GT(reply->deadline_remaining_ms(), 0);  // timeout_nano crossed the relay
  const std::string big(kMaxDataLength - 4096, 'b');
  auto large = Echo(client, big);
  ASSERT_TRUE(large);
  EXPECT_EQ(large->payload(), big);
}

TEST_F(RelayTest, RewritesOnlyInterceptedCalls) {
  options_.intercept = [](std::string_view service, std::string_view method) {
    return service == "ttrpctest.Test" && method == "Echo";
  };
  options_.rewrite = [](std::string_view, std::string_view, std::string& payload) -> Result<void> {
    ttrpctest::EchoRequest request;
    if (!request.ParseFromString(payload)) return Fail(Code::kInvalidArgument, "bad payload");
    if (request.payload() == "refuse") return Fail(Code::kPermissionDenied, "refused by policy");
    request.set_payload(request.payload() + "+rewritten");
    payload = request.SerializeAsString();
    return {};
  };
  auto client = Connect();
  auto reply = Echo(client, "x");
  ASSERT_TRUE(reply);
  EXPECT_EQ(reply->payload(), "x+rewritten");
  auto refused = Echo(client, "refuse");
  ASSERT_FALSE(refused);
  EXPECT_EQ(refused.error(), (Error{Code::kPermissionDenied, "refused by policy"}));
}

TEST_F(RelayTest, InflightCallsFailAtOnceWhenTheUpstreamBreaksAndLaterCallsReconnect) {
  auto client = Connect();
  ASSERT_TRUE(Echo(client, "warm"));
  auto stuck = asio::co_spawn(client->get_executor(),
                              client->Call<ttrpctest::EchoResponse>("ttrpctest.Test", "Echo",
                                                                    [] {
                                                                      ttrpctest::EchoRequest r;
                                                                      r.set_sleep_ms(600000);
                                                                      return r;
                                                                    }()),
                              asio::use_future);
  while (agent_->InflightCalls() == 0) std::this_thread::sleep_for(1ms);
  io_.Run(agent_->Shutdown(0ms));  // the agent goes away with the call in flight
  auto failed = stuck.get();
  ASSERT_FALSE(failed);
  EXPECT_EQ(failed.error().code, Code::kUnavailable);

  StartAgent();  // the agent comes back on the same socket
  auto again = Echo(client, "again");
  ASSERT_TRUE(again) << again.error().ToString();
  EXPECT_EQ(again->payload(), "again");
}

TEST_F(RelayTest, UnreachableUpstreamAnswersUnavailable) {
  io_.Run(agent_->Shutdown(0ms));
  agent_.reset();
  options_.dial_wait = 200ms;
  auto client = Connect();
  auto reply = Echo(client, "x");
  ASSERT_FALSE(reply);
  EXPECT_EQ(reply.error().code, Code::kUnavailable);
  EXPECT_NE(reply.error().message.find("agent unreachable"), std::string::npos);
}

TEST_F(RelayTest, OversizedFrameIsRefusedAtTheRelay) {
  pp::testing::RawConnection raw(relay_socket_);
  ASSERT_TRUE(raw.connected());
  std::string big;
  std::uint8_t header[kHeaderLength];
  EncodeHeader({kMaxDataLength + 1, 1, 1, 0}, header);
  big.append(reinterpret_cast<char*>(header), kHeaderLength);
  big.append(kMaxDataLength + 1, 'z');
  ASSERT_TRUE(raw.Send(big));
  auto [h, data] = raw.Receive();
  EXPECT_EQ(h.stream_id, 1u);
  ::ttrpc::Response response;
  ASSERT_TRUE(response.ParseFromString(data));
  EXPECT_EQ(response.status().code(), static_cast<int>(Code::kResourceExhausted));
}

}  // namespace
}  // namespace pp::ttrpc
