// Helpers for the encrypted-model tests: in-memory files (memfd: regular files, so Encrypt records
// the size), pipes fed by a thread (unknown size), and a temp dir. Only pp::model_format needed.
#pragma once

#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cstdint>
#include <filesystem>
#include <random>
#include <span>
#include <string>
#include <thread>

#include "common/base/handle.h"
#include "model/format.h"
#include "tests/support/test_util.h"

namespace pp::model::testing {

inline ScopedFd MemFile(std::string_view content = {}) {
  ScopedFd fd(::memfd_create("model-test", MFD_CLOEXEC));
  std::size_t done = 0;
  while (done < content.size()) {
    const ssize_t n = ::write(fd.get(), content.data() + done, content.size() - done);
    if (n <= 0) break;
    done += static_cast<std::size_t>(n);
  }
  ::lseek(fd.get(), 0, SEEK_SET);
  return fd;
}

inline std::string ReadAllFd(int fd) {
  ::lseek(fd, 0, SEEK_SET);
  std::string out;
  char buf[65536];
  for (ssize_t n; (n = ::read(fd, buf, sizeof buf)) > 0;)
    out.append(buf, static_cast<std::size_t>(n));
  return out;
}

// A pipe whose write end a thread fills with `content` and closes; the read end is returned.
class FedPipe {
 public:
  explicit FedPipe(std::string content) {
    ::signal(SIGPIPE, SIG_IGN);  // a test that stops reading early must not die of its writer
    int fds[2];
    if (::pipe2(fds, O_CLOEXEC) != 0) std::abort();
    read_.Reset(fds[0]);
    writer_ = std::jthread([fd = fds[1], content = std::move(content)] {
      std::size_t done = 0;
      while (done < content.size()) {
        const ssize_t n = ::write(fd, content.data() + done, content.size() - done);
        if (n <= 0) break;
        done += static_cast<std::size_t>(n);
      }
      ::close(fd);
    });
  }
  ~FedPipe() {
    read_.Reset();  // a writer blocked on a full pipe gets EPIPE (tests ignore SIGPIPE)
  }
  int fd() const { return read_.get(); }

 private:
  ScopedFd read_;
  std::jthread writer_;
};

// The project's test TempDir, plus the number of entries (a failed DecryptToFile must leave none).
class TempDir : public ::pp::testing::TempDir {
 public:
  std::size_t Entries() const {
    return static_cast<std::size_t>(std::distance(std::filesystem::directory_iterator(path()), {}));
  }
};

inline constexpr std::uint32_t kChunk = kMinChunkSize;
inline constexpr std::array<std::uint8_t, kKeyBytes> kKey = {
    1,  2,  3,  4,  5,  6,  7,  8,  9,  10, 11, 12, 13, 14, 15, 16,
    17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31, 32};

inline std::string RandomBytes(std::size_t n, unsigned seed) {
  std::mt19937 rng(seed);
  std::string s(n, '\0');
  for (auto& c : s) c = static_cast<char>(rng() & 0xff);
  return s;
}

// Encrypts from a regular file (the header records the size) or from a pipe (it does not).
inline std::string EncryptString(const std::string& plain, bool from_pipe,
                                 std::uint32_t chunk = kChunk,
                                 const std::array<std::uint8_t, kKeyBytes>& key = kKey) {
  auto out = MemFile();
  EncryptOptions options{chunk, "kbs:///default/model-key/test", nullptr};
  Result<Header> h;
  if (from_pipe) {
    FedPipe in(plain);
    h = Encrypt(in.fd(), out.get(), key, options);
  } else {
    auto in = MemFile(plain);
    h = Encrypt(in.get(), out.get(), key, options);
  }
  EXPECT_TRUE(h) << h.error().message;
  if (h) {
    EXPECT_EQ(h->plaintext_size, plain.size());
  }
  return ReadAllFd(out.get());
}

inline Result<std::string> DecryptString(const std::string& file,
                                         const std::array<std::uint8_t, kKeyBytes>& key = kKey) {
  auto in = MemFile(file);
  auto out = MemFile();
  auto h = Decrypt(in.get(), out.get(), key, nullptr);
  if (!h) return std::unexpected(h.error());
  return ReadAllFd(out.get());
}

// DecryptToFile into a fresh directory; on failure also checks that nothing was left behind.
inline Result<std::string> DecryptViaFile(const std::string& file,
                                          const std::array<std::uint8_t, kKeyBytes>& key = kKey) {
  TempDir dir;
  auto in = MemFile(file);
  auto h = DecryptToFile(in.get(), dir / "model", 0640, key, nullptr);
  if (!h) {
    EXPECT_EQ(dir.Entries(), 0u) << "a failed DecryptToFile left a file behind";
    return std::unexpected(h.error());
  }
  auto fd = ScopedFd(::open((dir / "model").c_str(), O_RDONLY | O_CLOEXEC));
  return ReadAllFd(fd.get());
}

}  // namespace pp::model::testing
