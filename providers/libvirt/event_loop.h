// libvirt's default event loop, run on a thread of its own while any provider needs it.
//
// Connection keepalive (virConnectSetKeepAlive) and close callbacks
// (virConnectRegisterCloseCallback) work only when an event loop implementation is registered
// before the connection is opened and something runs it ("virConnectSetKeepAlive ... requires an
// event loop implementation to be registered and running",
// https://libvirt.org/html/libvirt-libvirt-host.html#virConnectSetKeepAlive). The implementation is
// registered once per process (virEventRegisterDefaultImpl must precede the first virConnectOpen);
// the loop itself runs while at least one EventLoopHold is alive: each provider holds one, and the
// last hold to go stops the thread and joins it. One thread, because libvirt's default loop is one
// loop per process: two threads iterating it would only take turns.
//
// Thread-safe. Acquire() fails with INTERNAL only when libvirt refuses to register its loop.
#pragma once

#include <utility>

#include "common/base/error.h"

namespace pp::providers::libvirt {

// A hold on the running loop (move-only): the thread runs while any hold exists.
class EventLoopHold {
 public:
  static Result<EventLoopHold> Acquire();

  EventLoopHold(EventLoopHold&& other) noexcept : held_(std::exchange(other.held_, false)) {}
  EventLoopHold& operator=(EventLoopHold&&) = delete;
  EventLoopHold(const EventLoopHold&) = delete;
  EventLoopHold& operator=(const EventLoopHold&) = delete;
  ~EventLoopHold();

 private:
  EventLoopHold() = default;
  bool held_ = false;
};

}  // namespace pp::providers::libvirt
