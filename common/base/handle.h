// RAII for C handles and file descriptors: one idiom for the whole tree.
//
//   using Domain = pp::CHandle<virDomain, virDomainFree>;   // any "T* -> int/void" free function
//   pp::ScopedFd fd(::open(path, O_RDONLY | O_CLOEXEC));     // closed on scope exit
//
// A CHandle is a std::unique_ptr whose deleter calls the library's free function on a non-null
// pointer and ignores what it returns (the handle is gone either way). ScopedFd owns one fd (-1:
// none); it is move-only, and Release() hands the fd to the caller.
#pragma once

#include <unistd.h>

#include <cstdlib>
#include <memory>
#include <utility>

namespace pp {

template <auto Free>
struct CDeleter {
  template <typename T>
  void operator()(T* p) const {
    if (p != nullptr) (void)Free(p);
  }
};

template <typename T, auto Free>
using CHandle = std::unique_ptr<T, CDeleter<Free>>;

// Memory a C library returns for the caller to free() (libvirt's XML strings, say).
using CString = CHandle<char, std::free>;

class ScopedFd {
 public:
  ScopedFd() = default;
  explicit ScopedFd(int fd) : fd_(fd) {}
  ScopedFd(ScopedFd&& other) noexcept : fd_(other.Release()) {}
  ScopedFd& operator=(ScopedFd&& other) noexcept {
    if (this != &other) Reset(other.Release());
    return *this;
  }
  ScopedFd(const ScopedFd&) = delete;
  ScopedFd& operator=(const ScopedFd&) = delete;
  ~ScopedFd() { Reset(); }

  int get() const { return fd_; }
  bool valid() const { return fd_ >= 0; }
  explicit operator bool() const { return valid(); }
  int Release() { return std::exchange(fd_, -1); }
  void Reset(int fd = -1) {
    if (fd_ >= 0) ::close(fd_);
    fd_ = fd;
  }

 private:
  int fd_ = -1;
};

}  // namespace pp
