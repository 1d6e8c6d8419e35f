#include "providers/libvirt/connection.h"

#include <spdlog/spdlog.h>

#include <chrono>

namespace pp::providers::libvirt {

Result<std::unique_ptr<SharedConnection>> SharedConnection::Create(std::string uri) {
  auto hold = EventLoopHold::Acquire();
  if (!hold) return std::unexpected(hold.error());
  return std::unique_ptr<SharedConnection>(new SharedConnection(std::move(uri), std::move(*hold)));
}

SharedConnection::~SharedConnection() {
  if (opener_.joinable()) opener_.join();
  Connection conn;
  {
    std::lock_guard lock(mu_);
    conn = std::move(conn_);
  }
  // Outside mu_: libvirt holds its callback lock while OnClose waits for mu_.
  if (conn) virConnectUnregisterCloseCallback(conn.get(), &SharedConnection::OnClose);
}

void SharedConnection::OnClose(virConnectPtr conn, int reason, void* opaque) {
  auto* self = static_cast<SharedConnection*>(opaque);
  std::lock_guard lock(self->mu_);
  if (self->conn_.get() != conn) return;
  self->broken_ = true;
  static constexpr const char* kReasons[] = {"error", "end of file", "keepalive timeout",
                                             "client closed"};
  spdlog::warn("libvirt: connection to {} closed ({}); the next call reconnects", self->uri_,
               reason >= 0 && reason < 4 ? kReasons[reason] : "unknown reason");
}

void SharedConnection::Open() {
  Connection conn(virConnectOpen(uri_.c_str()));
  std::optional<Error> error;
  if (!conn) {
    error = LastError("cannot connect to " + uri_ + " (LIBVIRT_URI)");
    error->code = Code::kUnavailable;
  } else {
    // 1: the peer does not support keepalive (then only a TCP error ends a hung call).
    if (virConnectSetKeepAlive(conn.get(), kKeepAliveInterval, kKeepAliveCount) < 0) {
      spdlog::warn("{}", LastError("enabling keepalive on " + uri_).message);
    }
    if (virConnectRegisterCloseCallback(conn.get(), &SharedConnection::OnClose, this, nullptr) <
        0) {
      spdlog::warn("{}", LastError("registering the close callback on " + uri_).message);
    }
  }
  Connection old;  // the dead one this replaces
  {
    std::lock_guard lock(mu_);
    old = std::move(conn_);
    conn_ = std::move(conn);
    broken_ = false;
    open_error_ = std::move(error);
    opening_ = false;
    ++opens_done_;
    cv_.notify_all();
  }
  // Outside mu_ (see the destructor); callers still holding it keep it until they are done.
  if (old) virConnectUnregisterCloseCallback(old.get(), &SharedConnection::OnClose);
}

Result<Connection> SharedConnection::Get(const OpContext& ctx) {
  std::jthread
      finished;  // a previous opener, joined after mu_ is released (declared before the lock)
  std::unique_lock lock(mu_);
  const auto live = [&] { return conn_ && !broken_ && virConnectIsAlive(conn_.get()) == 1; };
  if (!live()) {
    if (!opening_) {
      opening_ = true;
      finished = std::move(opener_);
      opener_ = std::jthread([this] { Open(); });
    }
    const std::uint64_t before = opens_done_;
    if (!cv_.wait_until(lock, ctx.stop, ctx.deadline, [&] { return opens_done_ != before; })) {
      if (ctx.stop.stop_requested())
        return Fail(Code::kCancelled, "libvirt: cancelled while connecting to ", uri_);
      return Fail(Code::kDeadlineExceeded, "libvirt: connecting to ", uri_,
                  " (LIBVIRT_URI) did not finish before the deadline: libvirtd accepted and does "
                  "not answer");
    }
    if (open_error_) return std::unexpected(*open_error_);
    if (!live())
      return Fail(Code::kUnavailable, "libvirt: the connection to ", uri_, " closed as it opened");
  }
  virConnectRef(conn_.get());
  return Connection(conn_.get());
}

}  // namespace pp::providers::libvirt
