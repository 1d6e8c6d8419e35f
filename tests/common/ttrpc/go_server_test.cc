// Our client against the Go containerd/ttrpc server (Debian's 1.1.1): an independent peer.
#include <gtest/gtest.h>

#include "common/ttrpc/client.h"
#include "tests/support/test_util.h"
#include "ttrpctest.pb.h"

namespace pp::ttrpc {
namespace {

using namespace std::chrono_literals;

class GoServerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(std::filesystem::exists(GO_ECHO_SERVER)) << "build the goechoserver target first";
    ASSERT_TRUE(go_.WaitForLine("ready"));
    auto stream = io_.Run(ConnectUnix(io_.executor(), socket_));
    ASSERT_TRUE(stream) << stream.error().ToString();
    client_ = Client::Create(std::move(*stream));
  }
  void TearDown() override {
    if (client_) asio::post(client_->get_executor(), [c = client_] { c->Close(); });
  }

  Result<ttrpctest::EchoResponse> Echo(ttrpctest::EchoRequest request, CallOptions options = {},
                                       std::string method = "Echo") {
    return asio::co_spawn(client_->get_executor(),
                          client_->Call<ttrpctest::EchoResponse>("ttrpctest.Test", method, request, std::move(options)),
                          asio::use_future)
        .get();
  }

  pp::testing::TempDir dir_;
  std::string socket_ = dir_ / "go.sock";
  pp::testing::ChildProcess go_{{GO_ECHO_SERVER, "-unix", socket_}};
  pp::testing::IoThread io_;
  std::shared_ptr<Client> client_;
};

TEST_F(GoServerTest, EchoWithMetadataAndDeadline) {
  ttrpctest::EchoRequest request;
  request.set_payload("from c++");
  CallOptions options;
  options.timeout = 3s;
  options.metadata = {{"k", "v"}};
  auto reply = Echo(request, options);
  ASSERT_TRUE(reply) << reply.error().ToString();
  EXPECT_EQ(reply->payload(), "from c++");
  ASSERT_EQ(reply->metadata_size(), 1);
  EXPECT_EQ(reply->metadata(0).key(), "k");
  EXPECT_EQ(reply->metadata(0).value(), "v");
  EXPECT_GT(reply->deadline_remaining_ms(), 0);
  EXPECT_LE(reply->deadline_remaining_ms(), 3000);
}

TEST_F(GoServerTest, ErrorsKeepCodeAndMessage) {
  ttrpctest::EchoRequest request;
  request.set_fail_code(static_cast<int>(Code::kAlreadyExists));
  request.set_fail_message("exists");
  auto reply = Echo(request);
  ASSERT_FALSE(reply);
  EXPECT_EQ(reply.error(), (Error{Code::kAlreadyExists, "exists"}));
  auto unknown = Echo(ttrpctest::EchoRequest{}, {}, "Nope");
  ASSERT_FALSE(unknown);
  EXPECT_EQ(unknown.error().code, Code::kUnimplemented);
}

TEST_F(GoServerTest, DeadlinePropagatesToTheGoHandler) {
  ttrpctest::EchoRequest request;
  request.set_sleep_ms(10000);
  CallOptions options;
  options.timeout = 200ms;
  auto reply = Echo(request, options);
  ASSERT_FALSE(reply);
  EXPECT_EQ(reply.error().code, Code::kDeadlineExceeded);
}

TEST_F(GoServerTest, ConcurrentCallsAndLargePayloads) {
  std::vector<std::future<bool>> calls;
  for (int i = 0; i < 64; ++i) {
    calls.push_back(asio::co_spawn(
        client_->get_executor(),
        [this, i]() -> asio::awaitable<bool> {
          ttrpctest::EchoRequest request;
          request.set_payload(std::string(static_cast<std::size_t>(i) * 16384, static_cast<char>('a' + i % 26)));
          request.set_sleep_ms((64 - i) % 7);
          auto reply = co_await client_->Call<ttrpctest::EchoResponse>("ttrpctest.Test", "Echo", request);
          co_return reply && reply->payload() == request.payload();
        },
        asio::use_future));
  }
  for (auto& call : calls) EXPECT_TRUE(call.get());
}

}  // namespace
}  // namespace pp::ttrpc
