// The one libvirt connection a provider shares between its calls, opened so that a hung libvirtd
// holds no caller past its own deadline.
//
// Get() hands each caller a reference of its own (valid even if the connection is replaced
// meanwhile). The open runs on a thread of this object's, one at a time: callers wait for it with
// their own deadline and stop token, so a libvirtd that accepts and never answers (virConnectOpen
// has no timeout) costs each caller at most its deadline, and a second caller does not queue
// behind the first's open. Each connection gets keepalive (interval kKeepAliveInterval, count
// kKeepAliveCount): libvirt closes a connection whose peer stops answering after
// interval * (count + 1) seconds
// (https://libvirt.org/html/libvirt-libvirt-host.html#virConnectSetKeepAlive), which also ends any
// call blocked on it, and a close callback marks it for replacement.
//
// Thread-safe. The destructor waits for an open in flight: one that a libvirtd never answers ends
// only when the peer closes the socket (libvirt gives no way to abort virConnectOpen).
#pragma once

#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>

#include "providers/libvirt/event_loop.h"
#include "providers/libvirt/handles.h"
#include "providers/provider.h"

namespace pp::providers::libvirt {

inline constexpr int kKeepAliveInterval = 5;    // seconds without traffic before a ping
inline constexpr unsigned kKeepAliveCount = 3;  // unanswered pings before libvirt closes

class SharedConnection {
 public:
  // INTERNAL when libvirt's event loop cannot be set up; connecting happens in Get().
  static Result<std::unique_ptr<SharedConnection>> Create(std::string uri);
  ~SharedConnection();

  // The live connection, opened if there is none or the last one died. UNAVAILABLE when the open
  // fails, DEADLINE_EXCEEDED / CANCELLED when `ctx` ends first (the open goes on for later
  // callers).
  Result<Connection> Get(const OpContext& ctx);

 private:
  SharedConnection(std::string uri, EventLoopHold hold)
      : uri_(std::move(uri)), hold_(std::move(hold)) {}
  void Open();  // on opener_
  static void OnClose(virConnectPtr conn, int reason, void* opaque);

  const std::string uri_;
  EventLoopHold hold_;  // first: the loop outlives the connection's keepalive timer

  std::mutex mu_;                   // guards everything below
  std::condition_variable_any cv_;  // signalled when an open ends
  Connection conn_;
  bool broken_ = false;  // the close callback saw conn_ close
  bool opening_ = false;
  std::uint64_t opens_done_ = 0;
  std::optional<Error> open_error_;  // of the last open
  std::jthread opener_;
};

}  // namespace pp::providers::libvirt
