// podvm-test-agent's TEST-ONLY process execution (ExecProcess, WaitProcess, ReadStdout,
// ReadStderr), driven over its unix socket with our ttrpc client, as the libvirt e2e drives it
// through the forwarder.
#include <gtest/gtest.h>

#include <string>

#include "agent/agent.pb.h"
#include "agent/health.pb.h"
#include "common/ttrpc/client.h"
#include "google/protobuf/empty.pb.h"
#include "tests/support/test_util.h"

namespace {

using namespace std::chrono_literals;
using pp::ttrpc::Client;

class TestAgentExec : public ::testing::Test {
 protected:
  void SetUp() override {
    agent_ = std::make_unique<pp::testing::ChildProcess>(
        std::vector<std::string>{PODVM_TEST_AGENT, "--socket", socket_});
    // The socket file appears just before the agent listens on it: retry the connect.
    pp::Result<std::unique_ptr<pp::ttrpc::Stream>> stream =
        pp::Fail(pp::Code::kUnavailable, "not tried");
    ASSERT_TRUE(pp::testing::WaitUntil(
        [&] {
          stream = io_.Run(pp::ttrpc::ConnectUnix(io_.executor(), socket_));
          return stream.has_value();
        },
        10s))
        << stream.error().ToString();
    client_ = Client::Create(std::move(*stream));
  }

  template <typename Resp, typename Req>
  pp::Result<Resp> Call(const std::string& method, const Req& req) {
    pp::ttrpc::CallOptions options;
    options.timeout = 20s;
    return asio::co_spawn(client_->get_executor(),
                          client_->Call<Resp>("grpc.AgentService", method, req, options),
                          asio::use_future)
        .get();
  }

  pp::Result<google::protobuf::Empty> Exec(const std::string& exec_id,
                                           std::vector<std::string> args,
                                           std::vector<std::string> env = {},
                                           std::string cwd = "") {
    grpc::ExecProcessRequest req;
    req.set_container_id("c1");
    req.set_exec_id(exec_id);
    for (auto& a : args) req.mutable_process()->add_args(a);
    for (auto& e : env) req.mutable_process()->add_env(e);
    req.mutable_process()->set_cwd(cwd);
    return Call<google::protobuf::Empty>("ExecProcess", req);
  }

  pp::Result<int> Wait(const std::string& exec_id) {
    grpc::WaitProcessRequest req;
    req.set_container_id("c1");
    req.set_exec_id(exec_id);
    auto resp = Call<grpc::WaitProcessResponse>("WaitProcess", req);
    if (!resp) return std::unexpected(resp.error());
    return resp->status();
  }

  pp::Result<std::string> Read(const std::string& method, const std::string& exec_id,
                               std::uint32_t len = 0) {
    grpc::ReadStreamRequest req;
    req.set_container_id("c1");
    req.set_exec_id(exec_id);
    req.set_len(len);
    auto resp = Call<grpc::ReadStreamResponse>(method, req);
    if (!resp) return std::unexpected(resp.error());
    return resp->data();
  }

  // Everything on one stream until the empty read that ends it.
  std::string ReadAll(const std::string& method, const std::string& exec_id) {
    std::string all;
    for (;;) {
      auto chunk = Read(method, exec_id);
      EXPECT_TRUE(chunk) << chunk.error().ToString();
      if (!chunk || chunk->empty()) return all;
      all += *chunk;
    }
  }

  pp::testing::TempDir dir_;
  std::string socket_ = dir_ / "agent/agent.sock";
  pp::testing::IoThread io_;
  std::unique_ptr<pp::testing::ChildProcess> agent_;
  std::shared_ptr<Client> client_;
};

TEST_F(TestAgentExec, RunsArgsWithEnvAndCwdAndReturnsStatusAndBothStreams) {
  ASSERT_TRUE(Exec("e1", {"sh", "-c", "echo out-$FOO; pwd; echo err >&2; exit 7"},
                   {"FOO=bar", "PATH=/usr/bin:/bin"}, dir_.path()));
  auto status = Wait("e1");
  ASSERT_TRUE(status) << status.error().ToString();
  EXPECT_EQ(*status, 7);
  EXPECT_EQ(ReadAll("ReadStdout", "e1"), "out-bar\n" + dir_.path() + "\n");
  EXPECT_EQ(ReadAll("ReadStderr", "e1"), "err\n");
  // After the end: empty again, not an error.
  auto again = Read("ReadStdout", "e1");
  ASSERT_TRUE(again);
  EXPECT_EQ(*again, "");
}

TEST_F(TestAgentExec, ReadWaitsForOutputAndHonoursLen) {
  ASSERT_TRUE(Exec("slow", {"sh", "-c", "sleep 0.3; printf abcdef"}));
  auto first = Read("ReadStdout", "slow", 4);  // blocks until the output comes
  ASSERT_TRUE(first);
  EXPECT_EQ(*first, "abcd");
  EXPECT_EQ(ReadAll("ReadStdout", "slow"), "ef");
  EXPECT_EQ(Wait("slow").value_or(-1), 0);
}

TEST_F(TestAgentExec, KeepsAtMost64KiBUnreadPerStream) {
  ASSERT_TRUE(Exec("big", {"sh", "-c", "head -c 200000 /dev/zero"}));
  EXPECT_EQ(Wait("big").value_or(-1), 0);  // the process never blocks on a full pipe
  EXPECT_EQ(ReadAll("ReadStdout", "big").size(), 64u * 1024);
}

TEST_F(TestAgentExec, SignalEndsAreReportedAsAShellDoes) {
  ASSERT_TRUE(Exec("killed", {"sh", "-c", "kill -9 $$"}));
  EXPECT_EQ(Wait("killed").value_or(-1), 128 + 9);
}

TEST_F(TestAgentExec, RefusesBadRequests) {
  auto missing = Exec("m", {"/nonexistent/program"});
  ASSERT_FALSE(missing);
  EXPECT_EQ(missing.error().code, pp::Code::kInvalidArgument);
  EXPECT_NE(missing.error().message.find("/nonexistent/program"), std::string::npos);

  auto empty = Exec("n", {});
  ASSERT_FALSE(empty);
  EXPECT_EQ(empty.error().code, pp::Code::kInvalidArgument);

  ASSERT_TRUE(Exec("dup", {"true"}));
  auto dup = Exec("dup", {"true"});
  ASSERT_FALSE(dup);
  EXPECT_EQ(dup.error().code, pp::Code::kAlreadyExists);

  auto unknown = Wait("never-started");
  ASSERT_FALSE(unknown);
  EXPECT_EQ(unknown.error().code, pp::Code::kNotFound);
  auto unknown_read = Read("ReadStderr", "never-started");
  ASSERT_FALSE(unknown_read);
  EXPECT_EQ(unknown_read.error().code, pp::Code::kNotFound);
}

TEST_F(TestAgentExec, HealthStillAnswers) {
  grpc::CheckRequest req;
  pp::ttrpc::CallOptions options;
  options.timeout = 5s;
  auto resp =
      asio::co_spawn(client_->get_executor(),
                     client_->Call<grpc::HealthCheckResponse>("grpc.Health", "Check", req, options),
                     asio::use_future)
          .get();
  ASSERT_TRUE(resp) << resp.error().ToString();
  EXPECT_EQ(resp->status(), grpc::HealthCheckResponse::SERVING);
}

}  // namespace
