#include "providers/libvirt/event_loop.h"

#include <libvirt/libvirt.h>
#include <libvirt/virterror.h>

#include <atomic>
#include <mutex>
#include <thread>

#include "providers/libvirt/handles.h"

namespace pp::providers::libvirt {
namespace {

// The one loop thread of the process. g_mu serializes starting and stopping it, so that a new
// hold never starts a second thread while the last one is being joined.
std::mutex g_mu;
int g_holds = 0;
std::thread g_thread;
std::atomic<bool> g_stop{false};
int g_wake_timer = -1;

}  // namespace

Result<EventLoopHold> EventLoopHold::Acquire() {
  static std::once_flag once;
  static int registered = 0;
  std::call_once(once, [] {
    SilenceLibvirtOnce();
    registered = virEventRegisterDefaultImpl();
  });
  if (registered < 0) return std::unexpected(LastError("registering the default event loop"));

  std::lock_guard lock(g_mu);
  if (g_holds == 0) {
    // A timer that stays disabled (-1) until the last hold arms it (period 0): that ends the
    // blocking virEventRunDefaultImpl so the thread sees g_stop.
    g_wake_timer = virEventAddTimeout(
        -1, [](int, void*) {}, nullptr, nullptr);
    if (g_wake_timer < 0)
      return std::unexpected(LastError("adding the event loop's wake-up timer"));
    g_stop.store(false);
    g_thread = std::thread([] {
      while (!g_stop.load()) {
        if (virEventRunDefaultImpl() < 0) virResetLastError();
      }
    });
  }
  ++g_holds;
  EventLoopHold hold;
  hold.held_ = true;
  return hold;
}

EventLoopHold::~EventLoopHold() {
  if (!held_) return;
  std::lock_guard lock(g_mu);
  if (--g_holds > 0) return;
  g_stop.store(true);
  virEventUpdateTimeout(g_wake_timer, 0);
  g_thread.join();
  virEventRemoveTimeout(g_wake_timer);
  g_wake_timer = -1;
}

}  // namespace pp::providers::libvirt
