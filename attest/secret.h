// Bytes that are a secret (a model key, a CEK, a KEK): wiped with OPENSSL_cleanse when destroyed or
// cleared, never printed. Move-only so that no stray copy outlives its owner.
#pragma once

#include <openssl/crypto.h>

#include <string>
#include <string_view>
#include <utility>

namespace pp::attest {

class Secret {
 public:
  Secret() = default;
  explicit Secret(std::string bytes) : bytes_(std::move(bytes)) {}
  Secret(Secret&& other) noexcept : bytes_(std::move(other.bytes_)) { other.Clear(); }
  Secret& operator=(Secret&& other) noexcept {
    if (this != &other) {
      Clear();
      bytes_ = std::move(other.bytes_);
      other.Clear();
    }
    return *this;
  }
  Secret(const Secret&) = delete;
  Secret& operator=(const Secret&) = delete;
  ~Secret() { Clear(); }

  std::string_view view() const { return bytes_; }
  const unsigned char* data() const { return reinterpret_cast<const unsigned char*>(bytes_.data()); }
  // For filling a Secret made with its final size (OpenSSL output buffers).
  unsigned char* mutable_data() { return reinterpret_cast<unsigned char*>(bytes_.data()); }
  std::size_t size() const { return bytes_.size(); }
  bool empty() const { return bytes_.empty(); }
  // Wipes the whole buffer, capacity included: a short string's bytes live inside the object
  // (small-string optimization) and stay there after a move unless wiped.
  void Clear() {
    OPENSSL_cleanse(bytes_.data(), bytes_.capacity());
    bytes_.clear();
  }

 private:
  std::string bytes_;
};

}  // namespace pp::attest
