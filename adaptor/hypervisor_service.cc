#include "adaptor/hypervisor_service.h"

#include <spdlog/spdlog.h>

#include <chrono>
#include <optional>

#include "common/base/log.h"

#include "common/ttrpc/service.h"
#include "podvminfo.pb.h"

#ifndef PP_VERSION
#error "PP_VERSION must be defined by the build"
#endif

namespace pp::adaptor {
namespace {

// One line per call: at info its outcome and time, at warn a failure with its code and reason, so
// that the server's log tells what the shim saw.
class CallLog {
 public:
  // `sandbox` and `pod` (optional) go on the line as its log fields (common/base/log.h).
  CallLog(std::string_view method, std::string_view subject, std::string sandbox = {}, std::string pod = {})
      : method_(method), subject_(subject), sandbox_(std::move(sandbox)), pod_(std::move(pod)) {}
  template <typename T>
  void Done(const Result<T>& result) const {
    std::optional<ScopedLogFields> fields;
    if (!sandbox_.empty()) fields.emplace(LogFields{sandbox_, pod_});
    const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - start_);
    if (result) {
      spdlog::info("{} {}: ok in {} ms", method_, subject_, ms.count());
    } else {
      spdlog::warn("{} {}: failed in {} ms: {}", method_, subject_, ms.count(), result.error().ToString());
    }
  }

 private:
  std::string_view method_;
  std::string subject_;
  std::string sandbox_, pod_;
  std::chrono::steady_clock::time_point start_ = std::chrono::steady_clock::now();
};

}  // namespace

void RegisterHypervisorService(ttrpc::Server& server, SandboxManager& manager) {
  const std::string hv(kHypervisorService);
  server.Register(hv, "CreateVM",
                  ttrpc::Unary<hypervisor::CreateVMRequest, hypervisor::CreateVMResponse>(
                      [&manager](ttrpc::CallContext&, hypervisor::CreateVMRequest request)
                          -> asio::awaitable<Result<hypervisor::CreateVMResponse>> {
                        const auto& a = request.annotations();
                        const auto ns = a.find(std::string(kAnnotationPodNamespace));
                        const auto name = a.find(std::string(kAnnotationPodName));
                        const CallLog log("CreateVM", ShortId(request.id()), request.id(),
                                          ns != a.end() && name != a.end() ? ns->second + "/" + name->second : "");
                        auto path = co_await manager.CreateVM(std::move(request));
                        log.Done(path);
                        if (!path) co_return std::unexpected(path.error());
                        hypervisor::CreateVMResponse response;
                        response.set_agentsocketpath(std::move(*path));
                        co_return response;
                      }));
  server.Register(hv, "StartVM",
                  ttrpc::Unary<hypervisor::StartVMRequest, hypervisor::StartVMResponse>(
                      [&manager](ttrpc::CallContext& ctx, hypervisor::StartVMRequest request)
                          -> asio::awaitable<Result<hypervisor::StartVMResponse>> {
                        const CallLog log("StartVM", ShortId(request.id()), request.id(), manager.PodOf(request.id()));
                        auto started = co_await manager.StartVM(request.id(), ctx.deadline);
                        log.Done(started);
                        if (!started) co_return std::unexpected(started.error());
                        co_return hypervisor::StartVMResponse{};
                      }));
  server.Register(hv, "StopVM",
                  ttrpc::Unary<hypervisor::StopVMRequest, hypervisor::StopVMResponse>(
                      [&manager](ttrpc::CallContext& ctx, hypervisor::StopVMRequest request)
                          -> asio::awaitable<Result<hypervisor::StopVMResponse>> {
                        const CallLog log("StopVM", ShortId(request.id()), request.id(), manager.PodOf(request.id()));
                        auto stopped = co_await manager.StopVM(request.id(), ctx.deadline);
                        log.Done(stopped);
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
                        const CallLog log("GetInfo", request.podnamespace() + "/" + request.podname());
                        auto id = co_await manager.GetInfo(request.podname(), request.podnamespace(),
                                                           request.wait(), ctx.deadline);
                        log.Done(id);
                        if (!id) co_return std::unexpected(id.error());
                        podvminfo::GetInfoResponse response;
                        response.set_vmid(std::move(*id));
                        co_return response;
                      }));
}

}  // namespace pp::adaptor
