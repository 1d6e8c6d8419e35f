// FakeKbs: runs tests/attest/fake_kbs.py (the TEST STAND-IN KBS) with Debian's /usr/bin/python3 on
// 127.0.0.1 and stops it by pid (SIGKILL, reaped) when the object goes. Test-only.
#pragma once

#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

namespace pp::testing {

class FakeKbs {
 public:
  // With `https`, the fake serves TLS with a CA it makes in a temp dir (ca_pem()).
  explicit FakeKbs(std::vector<std::string> args, bool https = false) : https_(https) {
    if (https_) {
      char tmpl[] = "/tmp/pp-kbs-tls-XXXXXX";
      tls_dir_ = ::mkdtemp(tmpl);
      args.push_back("--tls-dir");
      args.push_back(tls_dir_);
    }
    int out[2];
    if (::pipe2(out, O_CLOEXEC) != 0) return;
    std::vector<std::string> argv = {"/usr/bin/python3", std::string(PP_SOURCE_DIR) + "/tests/attest/fake_kbs.py"};
    argv.insert(argv.end(), args.begin(), args.end());
    pid_ = ::fork();
    if (pid_ == 0) {
      ::dup2(out[1], 1);
      std::vector<char*> raw;
      for (auto& a : argv) raw.push_back(a.data());
      raw.push_back(nullptr);
      ::execv(raw[0], raw.data());
      ::_exit(127);
    }
    ::close(out[1]);
    std::string line;
    char c;
    while (::read(out[0], &c, 1) == 1 && c != '\n') line.push_back(c);
    ::close(out[0]);
    port_ = line.empty() ? 0 : std::stoi(line);
  }
  ~FakeKbs() {
    if (pid_ > 0) {
      ::kill(pid_, SIGKILL);
      ::waitpid(pid_, nullptr, 0);
    }
    if (!tls_dir_.empty()) {
      std::error_code ec;
      std::filesystem::remove_all(tls_dir_, ec);
    }
  }
  FakeKbs(const FakeKbs&) = delete;
  FakeKbs& operator=(const FakeKbs&) = delete;

  bool running() const { return port_ > 0; }
  std::string url() const { return (https_ ? "https://127.0.0.1:" : "http://127.0.0.1:") + std::to_string(port_); }
  std::string ca_pem() const {
    std::ifstream in(tls_dir_ + "/ca.pem");
    return {std::istreambuf_iterator<char>(in), {}};
  }

 private:
  bool https_ = false;
  std::string tls_dir_;
  pid_t pid_ = -1;
  int port_ = 0;
};

}  // namespace pp::testing
