// FakeCloudProcess: starts one of the loopback cloud fakes (tests/providers/fakes/*_fake.py) for a
// test, with Debian's /usr/bin/python3 (the oracles are Debian packages), HTTPS with a CA of its
// own, and stops it by pid on every path. Test-only.
#pragma once

#include <chrono>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "common/base/error.h"
#include "providers/http/client.h"

namespace pp::testing {

class FakeCloudProcess {
 public:
  // `script` is a file name in tests/providers/fakes; `args` are extra arguments for it. With
  // `tls` false the fake serves plain HTTP (for proxy tests). Fails the test (and returns a
  // stopped fake) when it does not come up within 30 s.
  explicit FakeCloudProcess(const std::string& script, std::vector<std::string> args = {}, bool tls = true);
  ~FakeCloudProcess();
  FakeCloudProcess(const FakeCloudProcess&) = delete;
  FakeCloudProcess& operator=(const FakeCloudProcess&) = delete;

  bool running() const { return pid_ > 0; }
  int port() const { return port_; }
  // "https://127.0.0.1:<port>" (or http://)
  std::string url() const;
  // The CA bundle that verifies the fake's certificate.
  std::string ca_bundle() const { return dir_ + "/tls/ca.pem"; }
  const std::string& dir() const { return dir_; }

  // GET /_fake/stats as JSON text; POST /_fake/faults with a JSON list of rules (fakecloud.py).
  Result<std::string> Stats();
  Result<void> SetFaults(const std::string& rules_json);

  // Polls `done` every 20 ms until it holds or `timeout` passes; false on timeout.
  template <typename Pred>
  static bool WaitFor(Pred done, std::chrono::milliseconds timeout) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    while (!done()) {
      if (std::chrono::steady_clock::now() >= deadline) return false;
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    return true;
  }

  // Stops the fake (SIGTERM, then SIGKILL after 5 s); idempotent.
  void Stop();

 private:
  Result<providers::http::Response> Control(const std::string& method, const std::string& path,
                                            const std::string& body);

  std::string dir_;
  int pid_ = -1;
  int port_ = 0;
  bool tls_ = true;
  std::unique_ptr<providers::http::Client> control_;
};

// The directory of the fakes in the source tree (PP_SOURCE_DIR/tests/providers/fakes).
std::string FakesDir();

}  // namespace pp::testing
