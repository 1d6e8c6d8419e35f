// The hypervisor service through a real ttrpc server and client, as the shim reaches it.
#include "adaptor/hypervisor_service.h"

#include <gtest/gtest.h>

#include "common/ttrpc/client.h"
#include "podvminfo.pb.h"
#include "tests/support/test_provider.h"
#include "tests/support/test_util.h"

namespace pp::adaptor {
namespace {

using namespace std::chrono_literals;

class HypervisorServiceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    SandboxManager::Options options;
    options.node_name = "node";
    manager_ = std::make_unique<SandboxManager>(options, SandboxStore(dir_ / "pods"), provider_, pool_);
    server_ = std::make_unique<ttrpc::Server>(io_.executor());
    RegisterHypervisorService(*server_, *manager_);
    ASSERT_TRUE(server_->ListenUnix(dir_ / "hypervisor.sock"));
  }
  void TearDown() override { io_.Run(server_->Shutdown(1s)); }

  // A new connection per call, as the kata Go shim does.
  template <typename Resp, typename Req>
  Result<Resp> Call(std::string service, std::string method, const Req& request) {
    return io_.Run([&]() -> asio::awaitable<Result<Resp>> {
      auto stream = co_await ttrpc::ConnectUnix(io_.executor(), dir_ / "hypervisor.sock");
      if (!stream) co_return std::unexpected(stream.error());
      auto client = ttrpc::Client::Create(std::move(*stream));
      auto reply = co_await asio::co_spawn(client->get_executor(),
                                           client->template Call<Resp>(service, method, request), asio::use_awaitable);
      asio::post(client->get_executor(), [client] { client->Close(); });
      co_return reply;
    }());
  }

  pp::testing::TempDir dir_;
  pp::testing::TestProvider provider_;
  BlockingPool pool_{4, 16};
  pp::testing::IoThread io_;
  std::unique_ptr<SandboxManager> manager_;
  std::unique_ptr<ttrpc::Server> server_;
};

TEST_F(HypervisorServiceTest, LifecycleAsTheShimDrivesIt) {
  auto version = Call<hypervisor::VersionResponse>("hypervisor.Hypervisor", "Version", hypervisor::VersionRequest{});
  ASSERT_TRUE(version);
  EXPECT_FALSE(version->version().empty());

  hypervisor::CreateVMRequest create;
  create.set_id("sb1");
  (*create.mutable_annotations())["io.kubernetes.cri.sandbox-name"] = "web";
  (*create.mutable_annotations())["io.kubernetes.cri.sandbox-namespace"] = "prod";
  auto created = Call<hypervisor::CreateVMResponse>("hypervisor.Hypervisor", "CreateVM", create);
  ASSERT_TRUE(created) << created.error().ToString();
  EXPECT_EQ(created->agentsocketpath(), dir_ / "pods/sb1/agent.ttrpc");

  hypervisor::StartVMRequest start;
  start.set_id("sb1");
  ASSERT_TRUE((Call<hypervisor::StartVMResponse>("hypervisor.Hypervisor", "StartVM", start)));

  podvminfo::GetInfoRequest info;
  info.set_podname("web");
  info.set_podnamespace("prod");
  auto vm = Call<podvminfo::GetInfoResponse>("podvminfo.PodVMInfo", "GetInfo", info);
  ASSERT_TRUE(vm);
  EXPECT_EQ(vm->vmid(), manager_->Snapshot().at(0).instance_id);

  hypervisor::StopVMRequest stop;
  stop.set_id("sb1");
  ASSERT_TRUE((Call<hypervisor::StopVMResponse>("hypervisor.Hypervisor", "StopVM", stop)));
  EXPECT_EQ(provider_.Live(), 0u);
}

TEST_F(HypervisorServiceTest, BadRequestsGetClearErrors) {
  hypervisor::CreateVMRequest create;
  create.set_id("../etc");
  auto created = Call<hypervisor::CreateVMResponse>("hypervisor.Hypervisor", "CreateVM", create);
  ASSERT_FALSE(created);
  EXPECT_EQ(created.error().code, Code::kInvalidArgument);

  hypervisor::StartVMRequest start;
  start.set_id("never-created");
  auto started = Call<hypervisor::StartVMResponse>("hypervisor.Hypervisor", "StartVM", start);
  ASSERT_FALSE(started);
  EXPECT_EQ(started.error().code, Code::kNotFound);

  auto unknown = Call<hypervisor::StartVMResponse>("hypervisor.Hypervisor", "PauseVM", start);
  ASSERT_FALSE(unknown);
  EXPECT_EQ(unknown.error().code, Code::kUnimplemented);
}

}  // namespace
}  // namespace pp::adaptor
