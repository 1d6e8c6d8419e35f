// Our ttrpc server and client against each other and against raw frames.
#include "common/ttrpc/server.h"

#include <gtest/gtest.h>

#include <sys/socket.h>

#include <atomic>
#include <optional>
#include <set>
#include <thread>

#include "common/ttrpc/client.h"
#include "common/ttrpc/codec.h"
#include "common/ttrpc/service.h"
#include "tests/support/echo_service.h"
#include "tests/support/fd_exhaustion.h"
#include "tests/support/log_capture.h"
#include "tests/support/test_util.h"
#include "ttrpctest.pb.h"

namespace pp::ttrpc {
namespace {

using pp::testing::RawConnection;
using pp::testing::WaitUntil;
using namespace std::chrono_literals;

ttrpctest::EchoRequest Echo(std::string payload, std::int64_t sleep_ms = 0) {
  ttrpctest::EchoRequest request;
  request.set_payload(std::move(payload));
  request.set_sleep_ms(sleep_ms);
  return request;
}

std::string RequestFrame(std::uint32_t id, const std::string& service, const std::string& method,
                         const google::protobuf::MessageLite& payload) {
  ::ttrpc::Request request;
  request.set_service(service);
  request.set_method(method);
  request.set_payload(payload.SerializeAsString());
  return EncodeRequestFrame(id, request);
}

class ServerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    server_ = std::make_unique<Server>(io_.executor());
    pp::testing::RegisterEchoService(*server_);
    ASSERT_TRUE(server_->ListenUnix(socket_));
  }
  void TearDown() override { io_.Run(server_->Shutdown(2s)); }

  std::shared_ptr<Client> Connect() {
    auto stream = io_.Run(ConnectUnix(io_.executor(), socket_));
    EXPECT_TRUE(stream) << stream.error().ToString();
    return Client::Create(std::move(*stream));
  }

  // Runs an Echo call on the client's executor and waits for it.
  Result<ttrpctest::EchoResponse> CallEcho(const std::shared_ptr<Client>& client,
                                           const ttrpctest::EchoRequest& request, CallOptions options = {},
                                           std::string method = "Echo", std::string service = "ttrpctest.Test") {
    return asio::co_spawn(client->get_executor(),
                          client->Call<ttrpctest::EchoResponse>(service, method, request, std::move(options)),
                          asio::use_future)
        .get();
  }

  pp::testing::TempDir dir_;
  std::string socket_ = dir_ / "s/ttrpc.sock";
  pp::testing::IoThread io_;
  std::unique_ptr<Server> server_;
};

TEST_F(ServerTest, EchoesPayloadMetadataAndDeadline) {
  auto client = Connect();
  CallOptions options;
  options.timeout = 5s;
  options.metadata = {{"traceparent", "00-abc"}, {"k", "1"}, {"k", "2"}};
  auto reply = CallEcho(client, Echo("hello"), options);
  ASSERT_TRUE(reply) << reply.error().ToString();
  EXPECT_EQ(reply->payload(), "hello");
  ASSERT_EQ(reply->metadata_size(), 3);
  EXPECT_EQ(reply->metadata(0).key(), "traceparent");
  EXPECT_EQ(reply->metadata(1).value(), "1");
  EXPECT_EQ(reply->metadata(2).value(), "2");
  EXPECT_GT(reply->deadline_remaining_ms(), 0);
  EXPECT_LE(reply->deadline_remaining_ms(), 5000);

  auto no_deadline = CallEcho(client, Echo(""));
  ASSERT_TRUE(no_deadline);
  EXPECT_EQ(no_deadline->deadline_remaining_ms(), -1);
}

TEST_F(ServerTest, ManyConcurrentCallsOnOneConnectionAnswerOutOfOrder) {
  auto client = Connect();
  constexpr int kCalls = 64;
  std::mutex mu;
  std::vector<int> completion_order;
  std::vector<std::future<void>> calls;
  for (int i = 0; i < kCalls; ++i) {
    // Earlier calls sleep longer, so the server must answer later calls first.
    calls.push_back(asio::co_spawn(
        client->get_executor(),
        [&, i]() -> asio::awaitable<void> {
          auto reply = co_await client->Call<ttrpctest::EchoResponse>("ttrpctest.Test", "Echo",
                                                                      Echo(std::to_string(i), (kCalls - i) * 3));
          if (reply && reply->payload() == std::to_string(i)) {
            std::lock_guard lock(mu);
            completion_order.push_back(i);
          }
        },
        asio::use_future));
  }
  for (auto& call : calls) call.get();
  ASSERT_EQ(completion_order.size(), static_cast<std::size_t>(kCalls));
  EXPECT_FALSE(std::is_sorted(completion_order.begin(), completion_order.end()));
}

TEST_F(ServerTest, ClientUsesOddIncreasingStreamIds) {
  // A raw listener records what our client sends.
  const std::string path = dir_ / "raw.sock";
  asio::local::stream_protocol::acceptor acceptor(io_.io(), asio::local::stream_protocol::endpoint(path));
  std::promise<std::vector<std::uint32_t>> ids;
  std::jthread peer([&] {
    auto socket = acceptor.accept();
    FrameReader reader;
    std::vector<std::uint32_t> seen;
    while (seen.size() < 3) {
      auto region = reader.Prepare();
      std::error_code ec;
      const std::size_t n = socket.read_some(asio::buffer(region.data(), region.size()), ec);
      if (ec) break;
      reader.Commit(n);
      while (auto frame = reader.Next()) {
        seen.push_back(frame->header.stream_id);
        const std::string reply = EncodeResponseFrame(frame->header.stream_id, 0, {}, {});
        asio::write(socket, asio::buffer(reply), ec);
      }
    }
    ids.set_value(seen);
  });
  auto stream = io_.Run(ConnectUnix(io_.executor(), path));
  ASSERT_TRUE(stream);
  auto client = Client::Create(std::move(*stream));
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(CallEcho(client, Echo("x")));
  EXPECT_EQ(ids.get_future().get(), (std::vector<std::uint32_t>{1, 3, 5}));
  asio::post(client->get_executor(), [client] { client->Close(); });
}

TEST_F(ServerTest, OversizedFrameGetsResourceExhaustedAndConnectionStaysUsable) {
  RawConnection raw(socket_);
  ASSERT_TRUE(raw.connected());
  std::string big;
  std::uint8_t header[kHeaderLength];
  EncodeHeader({kMaxDataLength + 1, 1, 1, 0}, header);
  big.append(reinterpret_cast<char*>(header), kHeaderLength);
  big.append(kMaxDataLength + 1, '\x01');
  ASSERT_TRUE(raw.Send(big));
  ASSERT_TRUE(raw.Send(RequestFrame(3, "ttrpctest.Test", "Echo", Echo("after"))));

  auto [h1, d1] = raw.Receive();
  EXPECT_EQ(h1.stream_id, 1u);
  EXPECT_EQ(h1.type, 2);
  EXPECT_EQ(h1.flags, 0);
  ::ttrpc::Response r1;
  ASSERT_TRUE(ParseResponse(d1, r1));
  EXPECT_EQ(r1.status().code(), static_cast<int>(Code::kResourceExhausted));
  EXPECT_NE(r1.status().message().find("exceed maximum message size"), std::string::npos);

  auto [h2, d2] = raw.Receive();
  EXPECT_EQ(h2.stream_id, 3u);
  ::ttrpc::Response r2;
  ASSERT_TRUE(ParseResponse(d2, r2));
  EXPECT_FALSE(r2.has_status());
  ttrpctest::EchoResponse echo;
  ASSERT_TRUE(echo.ParseFromString(r2.payload()));
  EXPECT_EQ(echo.payload(), "after");
}

TEST_F(ServerTest, EvenStreamIdAndUnparsableRequestGetInvalidArgument) {
  RawConnection raw(socket_);
  ASSERT_TRUE(raw.connected());
  ASSERT_TRUE(raw.Send(RequestFrame(2, "ttrpctest.Test", "Echo", Echo("x"))));
  std::string garbage;
  AppendFrame(garbage, 5, MessageType::kRequest, 0, "\xff\xff\xff");
  ASSERT_TRUE(raw.Send(garbage));
  for (std::uint32_t expected_id : {2u, 5u}) {
    auto [header, data] = raw.Receive();
    EXPECT_EQ(header.stream_id, expected_id);
    ::ttrpc::Response response;
    ASSERT_TRUE(ParseResponse(data, response));
    EXPECT_EQ(response.status().code(), static_cast<int>(Code::kInvalidArgument)) << expected_id;
  }
  // Still usable.
  ASSERT_TRUE(raw.Send(RequestFrame(7, "ttrpctest.Test", "Echo", Echo("ok"))));
  auto [header, data] = raw.Receive();
  EXPECT_EQ(header.stream_id, 7u);
}

TEST_F(ServerTest, UnknownServiceOrMethodIsUnimplemented) {
  auto client = Connect();
  auto no_method = CallEcho(client, Echo("x"), {}, "Nope");
  ASSERT_FALSE(no_method);
  EXPECT_EQ(no_method.error().code, Code::kUnimplemented);
  EXPECT_EQ(no_method.error().message, "method Nope");
  auto no_service = CallEcho(client, Echo("x"), {}, "Echo", "nope.Service");
  ASSERT_FALSE(no_service);
  EXPECT_EQ(no_service.error().code, Code::kUnimplemented);
  EXPECT_EQ(no_service.error().message, "service nope.Service");
}

TEST_F(ServerTest, HandlerErrorKeepsCodeAndMessage) {
  auto client = Connect();
  auto request = Echo("x");
  request.set_fail_code(static_cast<int>(Code::kNotFound));
  request.set_fail_message("no such sandbox");
  auto reply = CallEcho(client, request);
  ASSERT_FALSE(reply);
  EXPECT_EQ(reply.error(), (Error{Code::kNotFound, "no such sandbox"}));
}

TEST_F(ServerTest, ExpiredDeadlineAnswersDeadlineExceededWhileHandlerStillRuns) {
  RawConnection raw(socket_);
  ::ttrpc::Request request;
  request.set_service("ttrpctest.Test");
  request.set_method("Echo");
  request.set_payload(Echo("x", 60000).SerializeAsString());
  request.set_timeout_nano(std::chrono::nanoseconds(100ms).count());
  ASSERT_TRUE(raw.Send(EncodeRequestFrame(1, request)));
  auto [header, data] = raw.Receive();
  ::ttrpc::Response response;
  ASSERT_TRUE(ParseResponse(data, response));
  EXPECT_EQ(response.status().code(), static_cast<int>(Code::kDeadlineExceeded));
  // The handler was cancelled: no second reply arrives for stream 1; the next call is answered.
  ASSERT_TRUE(raw.Send(RequestFrame(3, "ttrpctest.Test", "Echo", Echo("next"))));
  auto [header2, data2] = raw.Receive();
  EXPECT_EQ(header2.stream_id, 3u);
}

TEST_F(ServerTest, ClientEnforcesItsTimeoutToo) {
  auto client = Connect();
  CallOptions options;
  options.timeout = 100ms;
  auto reply = CallEcho(client, Echo("x", 60000), options);
  ASSERT_FALSE(reply);
  EXPECT_EQ(reply.error().code, Code::kDeadlineExceeded);
}

TEST_F(ServerTest, ClientRefusesOversizedRequestLocally) {
  auto client = Connect();
  auto reply = CallEcho(client, Echo(std::string(kMaxDataLength + 1, 'a')));
  ASSERT_FALSE(reply);
  EXPECT_EQ(reply.error().code, Code::kResourceExhausted);
  EXPECT_TRUE(CallEcho(client, Echo("still fine")));
}

TEST_F(ServerTest, LargestMessageRoundTrips) {
  auto client = Connect();
  const std::string payload(kMaxDataLength - 1024, 'm');
  auto reply = CallEcho(client, Echo(payload));
  ASSERT_TRUE(reply) << reply.error().ToString();
  EXPECT_EQ(reply->payload(), payload);
}

TEST_F(ServerTest, GracefulShutdownFinishesInflightCallsThenRefusesConnections) {
  auto client = Connect();
  auto inflight = asio::co_spawn(client->get_executor(),
                                 client->Call<ttrpctest::EchoResponse>("ttrpctest.Test", "Echo", Echo("slow", 300)),
                                 asio::use_future);
  while (server_->InflightCalls() == 0) std::this_thread::sleep_for(1ms);
  io_.Run(server_->Shutdown(5s));
  auto reply = inflight.get();
  ASSERT_TRUE(reply) << reply.error().ToString();
  EXPECT_EQ(reply->payload(), "slow");
  EXPECT_FALSE(std::filesystem::exists(socket_));
  RawConnection late(socket_);
  EXPECT_FALSE(late.connected());
}

TEST_F(ServerTest, ShutdownClosesCallsThatOutliveTheGrace) {
  auto client = Connect();
  auto inflight = asio::co_spawn(client->get_executor(),
                                 client->Call<ttrpctest::EchoResponse>("ttrpctest.Test", "Echo", Echo("stuck", 600000)),
                                 asio::use_future);
  while (server_->InflightCalls() == 0) std::this_thread::sleep_for(1ms);
  io_.Run(server_->Shutdown(100ms));
  auto reply = inflight.get();
  ASSERT_FALSE(reply);
  EXPECT_EQ(reply.error().code, Code::kUnavailable);
  EXPECT_EQ(server_->InflightCalls(), 0u);
}

TEST_F(ServerTest, StatusWithCodeZeroAndMissingStatusAreBothOk) {
  const std::string path = dir_ / "rust-style.sock";
  asio::local::stream_protocol::acceptor acceptor(io_.io(), asio::local::stream_protocol::endpoint(path));
  std::jthread peer([&] {
    auto socket = acceptor.accept();
    FrameReader reader;
    int answered = 0;
    while (answered < 2) {
      auto region = reader.Prepare();
      std::error_code ec;
      const std::size_t n = socket.read_some(asio::buffer(region.data(), region.size()), ec);
      if (ec) return;
      reader.Commit(n);
      while (auto frame = reader.Next()) {
        ::ttrpc::Response response;
        if (answered == 0) response.mutable_status()->set_code(0);  // ttrpc-rust style: 0a 00
        response.set_payload(Echo("pong").SerializeAsString());
        std::string out;
        AppendFrame(out, frame->header.stream_id, MessageType::kResponse, 0, response.SerializeAsString());
        asio::write(socket, asio::buffer(out), ec);
        ++answered;
      }
    }
  });
  auto stream = io_.Run(ConnectUnix(io_.executor(), path));
  ASSERT_TRUE(stream);
  auto client = Client::Create(std::move(*stream));
  for (int i = 0; i < 2; ++i) {
    auto reply = CallEcho(client, Echo("ping"));
    ASSERT_TRUE(reply) << reply.error().ToString();
    EXPECT_EQ(reply->payload(), "pong");
  }
  asio::post(client->get_executor(), [client] { client->Close(); });
}

TEST_F(ServerTest, ServesTcpToo) {
  auto endpoint = server_->ListenTcp({asio::ip::make_address("127.0.0.1"), 0});
  ASSERT_TRUE(endpoint);
  asio::ip::tcp::socket socket(asio::make_strand(io_.executor()));
  socket.connect(*endpoint);
  auto client = Client::Create(std::make_unique<TcpStream>(std::move(socket), "tcp"));
  auto reply = CallEcho(client, Echo("over tcp"));
  ASSERT_TRUE(reply) << reply.error().ToString();
  EXPECT_EQ(reply->payload(), "over tcp");
}

TEST_F(ServerTest, RefusesToStealALiveSocketAndReplacesAStaleOne) {
  Server other(io_.executor());
  auto live = other.ListenUnix(socket_);
  ASSERT_FALSE(live);
  EXPECT_EQ(live.error().code, Code::kFailedPrecondition);

  const std::string stale = dir_ / "stale.sock";
  {
    asio::local::stream_protocol::acceptor gone(io_.io(), asio::local::stream_protocol::endpoint(stale));
  }  // closed, the file stays: a crashed server's leftover
  ASSERT_TRUE(std::filesystem::exists(stale));
  EXPECT_TRUE(other.ListenUnix(stale, 0660));
  EXPECT_EQ(std::filesystem::status(stale).permissions() & std::filesystem::perms::all,
            std::filesystem::perms::owner_read | std::filesystem::perms::owner_write |
                std::filesystem::perms::group_read | std::filesystem::perms::group_write);
  io_.Run(other.Shutdown(1s));
}


// Out of descriptors, accept(2) fails with EMFILE while the connection stays queued: the server
// pauses instead of spinning (a few bounded log lines, not thousands) and serves the connection
// once descriptors are free again.
TEST_F(ServerTest, KeepsServingAfterRunningOutOfDescriptorsWithoutSpinning) {
  pp::testing::LogCapture logs;
  RawConnection raw(AF_UNIX);  // made now: connecting needs no new descriptor
  {
    pp::testing::FdExhaustion exhausted;
    ASSERT_TRUE(exhausted.exhausted());
    ASSERT_TRUE(raw.ConnectUnix(socket_));
    ASSERT_TRUE(logs.WaitFor("Too many open files", 1, 5s));
    // A window to count in: a loop that retried at once would fail thousands of times in it.
    std::this_thread::sleep_for(300ms);
    EXPECT_LE(logs.Count("Too many open files"), 2u);
  }
  raw.SetReceiveTimeout(10s);
  ASSERT_TRUE(raw.Send(RequestFrame(1, "ttrpctest.Test", "Echo", Echo("after EMFILE"))));
  auto [header, data] = raw.Receive();
  EXPECT_EQ(header.stream_id, 1u);
  ::ttrpc::Response response;
  ASSERT_TRUE(ParseResponse(data, response));
  ttrpctest::EchoResponse echo;
  ASSERT_TRUE(echo.ParseFromString(response.payload()));
  EXPECT_EQ(echo.payload(), "after EMFILE");
  EXPECT_EQ(logs.Count("accepting again"), 1u);
}


// A server with its own options, for the limits a peer must not get past.
class ServerLimitsTest : public ::testing::Test {
 protected:
  void Start(Server::Options options) {
    server_ = std::make_unique<Server>(io_.executor(), options);
    pp::testing::RegisterEchoService(*server_);
    ASSERT_TRUE(server_->ListenUnix(socket_));
  }
  void TearDown() override {
    if (server_) io_.Run(server_->Shutdown(2s));
  }

  pp::testing::TempDir dir_;
  std::string socket_ = dir_ / "ttrpc.sock";
  pp::testing::IoThread io_;
  std::unique_ptr<Server> server_;
};

std::string EchoOf(RawConnection& raw) {
  auto [header, data] = raw.Receive();
  ::ttrpc::Response response;
  ttrpctest::EchoResponse echo;
  if (header.type != 2 || !ParseResponse(data, response) ||
      !echo.ParseFromString(response.payload())) {
    return "<no reply>";
  }
  return echo.payload();
}

// Ten calls in one write land in one read: only max_inflight_per_connection of them may start.
TEST_F(ServerLimitsTest, InflightLimitHoldsPerFrameNotPerRead) {
  Server::Options options;
  options.max_inflight_per_connection = 4;
  Start(options);
  RawConnection raw(socket_);
  ASSERT_TRUE(raw.connected());
  std::string frames;
  for (std::uint32_t i = 0; i < 10; ++i) {
    frames += RequestFrame(2 * i + 1, "ttrpctest.Test", "Echo", Echo(std::to_string(i), 500));
  }
  ASSERT_TRUE(raw.Send(frames));
  ASSERT_TRUE(WaitUntil([&] { return server_->InflightCalls() >= 4; }, 5s));
  EXPECT_EQ(server_->InflightCalls(), 4u);
  raw.SetReceiveTimeout(10s);
  std::set<std::string> answered;
  for (int i = 0; i < 10; ++i) answered.insert(EchoOf(raw));
  EXPECT_EQ(answered.size(), 10u) << "every call is answered in the end";
  EXPECT_FALSE(answered.contains("<no reply>"));
}

// A peer that stops in the middle of a frame is disconnected after frame_read_timeout; a peer
// idle between frames is not.
TEST_F(ServerLimitsTest, PartialFrameTimesOutIdleConnectionDoesNot) {
  Server::Options options;
  options.frame_read_timeout = 300ms;
  Start(options);
  RawConnection idle(socket_);
  RawConnection half_header(socket_);
  RawConnection half_data(socket_);
  ASSERT_TRUE(idle.connected() && half_header.connected() && half_data.connected());
  const std::string frame = RequestFrame(1, "ttrpctest.Test", "Echo", Echo("whole"));
  const auto begin = std::chrono::steady_clock::now();
  ASSERT_TRUE(half_header.Send(frame.substr(0, 5)));
  ASSERT_TRUE(half_data.Send(frame.substr(0, frame.size() - 3)));
  half_header.SetReceiveTimeout(10s);
  half_data.SetReceiveTimeout(10s);
  EXPECT_TRUE(half_header.PeerClosed());
  EXPECT_TRUE(half_data.PeerClosed());
  EXPECT_GE(std::chrono::steady_clock::now() - begin, 250ms);
  // The idle connection sat longer than the timeout and still works.
  idle.SetReceiveTimeout(10s);
  ASSERT_TRUE(idle.Send(frame));
  EXPECT_EQ(EchoOf(idle), "whole");
}

// Connection max_connections + 1 is closed at once; once one closes, a new one is served.
TEST_F(ServerLimitsTest, ConnectionOverTheCapIsClosedAtOnce) {
  pp::testing::LogCapture logs;
  Server::Options options;
  options.max_connections = 2;
  Start(options);
  auto first = std::make_unique<RawConnection>(socket_);
  RawConnection second(socket_);
  for (auto* raw : {first.get(), &second}) {
    raw->SetReceiveTimeout(10s);
    ASSERT_TRUE(raw->Send(RequestFrame(1, "ttrpctest.Test", "Echo", Echo("in"))));
    ASSERT_EQ(EchoOf(*raw), "in");
  }
  RawConnection third(socket_);
  ASSERT_TRUE(third.connected()) << "the kernel queues it; the server closes it";
  third.SetReceiveTimeout(10s);
  EXPECT_TRUE(third.PeerClosed());
  EXPECT_EQ(logs.Count("2 connections open"), 1u);

  first.reset();
  // The server notices the close asynchronously: a new connection is served once it has.
  EXPECT_TRUE(WaitUntil(
      [&] {
        RawConnection next(socket_);
        next.SetReceiveTimeout(1s);
        return next.Send(RequestFrame(1, "ttrpctest.Test", "Echo", Echo("next"))) &&
               EchoOf(next) == "next";
      },
      10s));
}

}  // namespace
}  // namespace pp::ttrpc
