// Undo: what a multi-step operation has made so far, to take down in reverse order unless the whole
// operation succeeds (Commit). The one way "a failed create leaves nothing behind" is written, for
// cloud instances (providers/provider.h) and pod-network devices (common/netlink/tunnel.h) alike.
// Not thread-safe: one per call.
#pragma once

#include <spdlog/spdlog.h>

#include <functional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace pp {

class Undo {
 public:
  // `owner` prefixes the debug line logged for each step taken down ("aws: rollback: ...").
  explicit Undo(std::string_view owner) : owner_(owner) {}
  ~Undo() { Run(); }
  Undo(const Undo&) = delete;
  Undo& operator=(const Undo&) = delete;

  // `what` names the step for the log ("delete volume podvm-x-root.qcow2").
  void Add(std::string what, std::function<void()> step) { steps_.emplace_back(std::move(what), std::move(step)); }
  // Takes everything down now (last first), then holds nothing.
  void Run() {
    for (auto it = steps_.rbegin(); it != steps_.rend(); ++it) {
      spdlog::debug("{}: rollback: {}", owner_, it->first);
      it->second();
    }
    steps_.clear();
  }
  // The operation succeeded: keep everything.
  void Commit() { steps_.clear(); }

 private:
  std::string owner_;
  std::vector<std::pair<std::string, std::function<void()>>> steps_;
};

}  // namespace pp
