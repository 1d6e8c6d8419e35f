#include "common/provision/server.h"

#include <spdlog/spdlog.h>

#include "common/tls/stream.h"
#include "common/ttrpc/service.h"

namespace pp::provision {

namespace v1 = peerpods::provision::v1;

namespace {

// The sandbox id for the log: the node only makes ids of [A-Za-z0-9_-]; anything else is masked.
std::string LoggableId(const std::string& id) {
  std::string shown = id.substr(0, 128);
  for (char& c : shown) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                    c == '_' || c == '-';
    if (!ok) c = '?';
  }
  return shown;
}

}  // namespace

ProvisionServer::ProvisionServer(asio::any_io_executor executor, ProvisionServerOptions options,
                                 ClaimHandler on_claim)
    : executor_(executor),
      options_(std::move(options)),
      on_claim_(std::move(on_claim)),
      rpc_(executor, ttrpc::Server::Options{.single_threaded = true}),
      acceptor_(executor),
      claimed_signal_(executor, std::chrono::steady_clock::time_point::max()),
      handshake_ended_(executor, std::chrono::steady_clock::time_point::max()) {
  rpc_.Register(kServiceName, "Check",
                ttrpc::Unary<v1::CheckRequest, v1::CheckResponse>(
                    [this](ttrpc::CallContext&,
                           v1::CheckRequest) -> asio::awaitable<Result<v1::CheckResponse>> {
                      v1::CheckResponse response;
                      response.set_pool_vm(options_.pool_vm);
                      response.set_initdata_digest(options_.initdata_digest);
                      co_return response;
                    }));
  rpc_.Register(kServiceName, "Claim",
                ttrpc::Unary<v1::ClaimRequest, v1::ClaimResponse>(
                    [this](ttrpc::CallContext& ctx, v1::ClaimRequest request) {
                      return OnClaim(ctx, std::move(request));
                    }));
}

ProvisionServer::~ProvisionServer() = default;

Result<asio::ip::tcp::endpoint> ProvisionServer::Listen() {
  std::error_code ec;
  acceptor_.open(options_.listen.protocol(), ec);
  if (!ec) acceptor_.set_option(asio::socket_base::reuse_address(true), ec);
  if (!ec) acceptor_.bind(options_.listen, ec);
  if (!ec) acceptor_.listen(asio::socket_base::max_listen_connections, ec);
  if (ec) {
    return Fail(Code::kUnavailable, "listen on ", options_.listen.address().to_string(), ":",
                std::to_string(options_.listen.port()), ": ", ec.message());
  }
  auto bound = acceptor_.local_endpoint(ec);
  spdlog::info("pool VM {} waiting for a claim on {}:{} ({})", options_.pool_vm,
               bound.address().to_string(), bound.port(),
               options_.tls ? "mutual TLS" : "PLAINTEXT, TLS DISABLED");
  asio::co_spawn(executor_, AcceptLoop(), asio::detached);
  return bound;
}

asio::awaitable<void> ProvisionServer::AcceptLoop() {
  while (acceptor_.is_open()) {
    auto [ec, socket] = co_await acceptor_.async_accept(kAwaitTuple);
    if (ec) {
      if (ec == asio::error::operation_aborted || !acceptor_.is_open()) break;
      // Out of descriptors or memory: nothing this pool VM does needs many; retry shortly.
      spdlog::warn("provisioning: accept failed: {}", ec.message());
      asio::steady_timer pause(executor_, std::chrono::milliseconds(100));
      co_await pause.async_wait(kAwaitTuple);
      continue;
    }
    asio::co_spawn(executor_, Serve(std::move(socket)), asio::detached);
  }
}

asio::awaitable<void> ProvisionServer::Serve(asio::ip::tcp::socket socket) {
  std::error_code ec;
  const auto peer = socket.remote_endpoint(ec);
  const std::string where = "tcp:" + peer.address().to_string() + ":" + std::to_string(peer.port());
  socket.set_option(asio::ip::tcp::no_delay(true), ec);
  if (!options_.tls) {
    if (!shut_down_) rpc_.Serve(std::make_unique<ttrpc::TcpStream>(std::move(socket), where));
    co_return;
  }
  // Handshakes are bounded in number and time: a peer that never finishes one holds no slot for
  // long, and many of them cannot exhaust the VM.
  if (handshakes_ >= options_.max_handshakes) {
    spdlog::warn("provisioning: refused {}: {} TLS handshakes in progress", where, handshakes_);
    co_return;
  }
  ++handshakes_;
  auto accepted =
      co_await tls::TlsAccept(std::move(socket), options_.tls, options_.handshake_timeout);
  --handshakes_;
  handshake_ended_.cancel();
  if (!accepted) {
    spdlog::warn("provisioning: refused {}: {}", where, accepted.error().message);
    co_return;
  }
  // Served even once claimed: until the listener closes, a late claim hears "already claimed".
  if (shut_down_) {
    (*accepted)->Close();
    co_return;
  }
  rpc_.Serve(std::move(*accepted));
}

asio::awaitable<Result<v1::ClaimResponse>> ProvisionServer::OnClaim(ttrpc::CallContext& ctx,
                                                                    v1::ClaimRequest request) {
  if (request.pool_vm() != options_.pool_vm) {
    // The adaptor's record and this VM disagree: say which VM answered, not what was asked for.
    co_return Fail(Code::kInvalidArgument, "claim is for another pool VM; this is ",
                   options_.pool_vm);
  }
  if (state_ != State::kWaiting) {
    co_return Fail(Code::kFailedPrecondition, "pool VM ", options_.pool_vm, " is already claimed");
  }
  state_ = State::kClaiming;
  Result<void> claimed = on_claim_(request);
  if (!claimed) {
    state_ = State::kWaiting;
    spdlog::warn("refused a claim from {}: {}", ctx.peer, claimed.error().message);
    co_return std::unexpected(std::move(claimed.error()));
  }
  state_ = State::kClaimed;
  claimed_by_ = request.sandbox_id();
  spdlog::info("claimed for sandbox {}", LoggableId(claimed_by_));
  // No new connection reaches the provisioning server once the reply can be on its way: the
  // adaptor connects its agent proxy as soon as it has it, and the pool certificate names this
  // same VM, so such a connection would pass its handshake and then fail its agent calls here.
  // Until the forwarder listens it is refused, which the proxy retries.
  std::error_code ignored;
  acceptor_.close(ignored);
  claimed_signal_.cancel();
  co_return v1::ClaimResponse{};
}

asio::awaitable<Result<std::string>> ProvisionServer::WaitForClaim() {
  while (state_ != State::kClaimed && !shut_down_) {
    co_await claimed_signal_.async_wait(kAwaitTuple);
  }
  std::error_code ignored;
  acceptor_.close(ignored);
  if (state_ != State::kClaimed) co_return Fail(Code::kCancelled, "shut down before a claim");
  // The claim's reply is in flight: the ttrpc server lets it flush, then closes every connection.
  co_await rpc_.Shutdown(options_.close_grace);
  co_return claimed_by_;
}

void ProvisionServer::Shutdown() {
  if (shut_down_) return;
  shut_down_ = true;
  std::error_code ignored;
  acceptor_.close(ignored);
  claimed_signal_.cancel();
  asio::co_spawn(executor_, rpc_.Shutdown(std::chrono::milliseconds(0)), asio::detached);
}

asio::awaitable<void> ProvisionServer::Stop() {
  Shutdown();
  while (handshakes_ > 0) co_await handshake_ended_.async_wait(kAwaitTuple);
  co_await rpc_.Shutdown(std::chrono::milliseconds(0));
}

}  // namespace pp::provision
