#include "tests/providers/fakes/fake_process.h"

#include <gtest/gtest.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <thread>

namespace pp::testing {
namespace {

std::string MakeTempDir() {
  std::string tmpl = (std::filesystem::temp_directory_path() / "pp-fake-XXXXXX").string();
  if (::mkdtemp(tmpl.data()) == nullptr) return {};
  return tmpl;
}

providers::OpContext Budget(std::chrono::seconds s) {
  return providers::OpContext{std::chrono::steady_clock::now() + s, {}};
}

}  // namespace

std::string FakesDir() { return std::string(PP_SOURCE_DIR) + "/tests/providers/fakes"; }

FakeCloudProcess::FakeCloudProcess(const std::string& script, std::vector<std::string> args, bool tls)
    : dir_(MakeTempDir()), tls_(tls) {
  const std::string port_file = dir_ + "/port";
  std::vector<std::string> argv = {"/usr/bin/python3", FakesDir() + "/" + script, "--port-file", port_file};
  if (tls_) {
    argv.push_back("--tls-dir");
    argv.push_back(dir_ + "/tls");
  }
  argv.insert(argv.end(), args.begin(), args.end());
  std::vector<char*> cargv;
  for (auto& a : argv) cargv.push_back(a.data());
  cargv.push_back(nullptr);
  pid_ = ::fork();
  if (pid_ == 0) {
    ::setpgid(0, 0);
    // A test that dies (a crash, a sanitizer's exit) takes its fake with it. (The signal follows
    // the forking thread: fakes are started from a test's main thread.)
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    ::execv(cargv[0], cargv.data());
    ::_exit(127);
  }
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  while (std::chrono::steady_clock::now() < deadline) {
    std::ifstream in(port_file);
    if (in >> port_) break;
    int status = 0;
    if (::waitpid(pid_, &status, WNOHANG) == pid_) {
      pid_ = -1;
      ADD_FAILURE() << script << " exited before listening (status " << status << ")";
      return;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  if (port_ == 0) {
    ADD_FAILURE() << script << " did not listen within 30 s";
    Stop();
    return;
  }
  providers::http::ClientOptions options;
  if (tls_) options.ca_bundle = ca_bundle();
  control_ = std::make_unique<providers::http::Client>(options);
}

FakeCloudProcess::~FakeCloudProcess() {
  Stop();
  std::error_code ec;
  if (!dir_.empty()) std::filesystem::remove_all(dir_, ec);
}

std::string FakeCloudProcess::url() const {
  return std::string(tls_ ? "https" : "http") + "://127.0.0.1:" + std::to_string(port_);
}

void FakeCloudProcess::Stop() {
  if (pid_ <= 0) return;
  ::kill(pid_, SIGTERM);
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  int status = 0;
  while (::waitpid(pid_, &status, WNOHANG) == 0) {
    if (std::chrono::steady_clock::now() >= deadline) {
      ::kill(-pid_, SIGKILL);
      ::kill(pid_, SIGKILL);
      ::waitpid(pid_, &status, 0);
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  pid_ = -1;
}

Result<providers::http::Response> FakeCloudProcess::Control(const std::string& method, const std::string& path,
                                                            const std::string& body) {
  if (!control_) return Fail(Code::kFailedPrecondition, "the fake is not running");
  providers::http::Request request;
  request.method = method;
  request.url = url() + path;
  request.body = body;
  if (!body.empty()) request.headers.emplace_back("Content-Type", "application/json");
  return control_->Do(request, Budget(std::chrono::seconds(10)));
}

Result<std::string> FakeCloudProcess::Stats() {
  auto response = Control("GET", "/_fake/stats", "");
  if (!response) return std::unexpected(response.error());
  if (response->status != 200) return Fail(Code::kInternal, "stats: HTTP ", std::to_string(response->status));
  return std::move(response->body);
}

Result<void> FakeCloudProcess::SetFaults(const std::string& rules_json) {
  auto response = Control("POST", "/_fake/faults", rules_json);
  if (!response) return std::unexpected(response.error());
  if (response->status != 204) return Fail(Code::kInternal, "faults: HTTP ", std::to_string(response->status));
  return {};
}

}  // namespace pp::testing
