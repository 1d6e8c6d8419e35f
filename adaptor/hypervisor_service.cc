#include "adaptor/hypervisor_service.h"

#include "common/ttrpc/service.h"
#include "podvminfo.pb.h"

#ifndef PP_VERSION
#error "PP_VERSION must be defined by the build"
#endif

namespace pp::adaptor {

void RegisterHypervisorService(ttrpc::Server& server, SandboxManager& manager) {
  const std::string hv(kHypervisorService);
  server.Register(hv, "CreateVM",
                  ttrpc::Unary<hypervisor::CreateVMRequest, hypervisor::CreateVMResponse>(
                      [&manager](ttrpc::CallContext&, hypervisor::CreateVMRequest request)
                          -> asio::awaitable<Result<hypervisor::CreateVMResponse>> {
                        auto path = co_await manager.CreateVM(std::move(request));
                        if (!path) co_return std::unexpected(path.error());
                        hypervisor::CreateVMResponse response;
                        response.set_agentsocketpath(std::move(*path));
                        co_return response;
                      }));
  server.Register(hv, "StartVM",
                  ttrpc::Unary<hypervisor::StartVMRequest, hypervisor::StartVMResponse>(
                      [&manager](ttrpc::CallContext& ctx, hypervisor::StartVMRequest request)
                          -> asio::awaitable<Result<hypervisor::StartVMResponse>> {
                        auto started = co_await manager.StartVM(request.id(), ctx.deadline);
                        if (!started) co_return std::unexpected(started.error());
                        co_return hypervisor::StartVMResponse{};
                      }));
  server.Register(hv, "StopVM",
                  ttrpc::Unary<hypervisor::StopVMRequest, hypervisor::StopVMResponse>(
                      [&manager](ttrpc::CallContext& ctx, hypervisor::StopVMRequest request)
                          -> asio::awaitable<Result<hypervisor::StopVMResponse>> {
                        auto stopped = co_await manager.StopVM(request.id(), ctx.deadline);
                        if (!stopped) co_return std::unexpected(stopped.error());
                        co_return hypervisor::StopVMResponse{};
                      }));
  server.Register(hv, "Version",
                  ttrpc::Unary<hypervisor::VersionRequest, hypervisor::VersionResponse>(
                      [](ttrpc::CallContext&, hypervisor::VersionRequest)
                          -> asio::awaitable<Result<hypervisor::VersionResponse>> {
                        hypervisor::VersionResponse response;
                        response.set_version(PP_VERSION);
                        co_return response;
                      }));
  server.Register(std::string(kPodVMInfoService), "GetInfo",
                  ttrpc::Unary<podvminfo::GetInfoRequest, podvminfo::GetInfoResponse>(
                      [&manager](ttrpc::CallContext& ctx, podvminfo::GetInfoRequest request)
                          -> asio::awaitable<Result<podvminfo::GetInfoResponse>> {
                        auto id = co_await manager.GetInfo(request.podname(), request.podnamespace(),
                                                           request.wait(), ctx.deadline);
                        if (!id) co_return std::unexpected(id.error());
                        podvminfo::GetInfoResponse response;
                        response.set_vmid(std::move(*id));
                        co_return response;
                      }));
}

}  // namespace pp::adaptor
