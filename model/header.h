// The encrypted-model format's types and limits (model/FORMAT.md), apart from pp::Result so that
// the codec (model/codec.h) builds without pp::base: the fuzz targets' clang has no std::expected.
// The API is model/format.h.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>

namespace pp::model {

inline constexpr std::size_t kKeyBytes = 32;
inline constexpr std::size_t kSaltBytes = 32;
inline constexpr std::size_t kNoncePrefixBytes = 8;
inline constexpr std::size_t kHeaderMacBytes = 32;
inline constexpr std::size_t kTagBytes = 16;
inline constexpr std::size_t kMaxKeyIdBytes = 256;
inline constexpr std::uint32_t kMinChunkSize = 4096;
inline constexpr std::uint32_t kMaxChunkSize = 64u << 20;
inline constexpr std::uint32_t kDefaultChunkSize = 4u << 20;
inline constexpr std::uint32_t kFormatVersion = 1;
// The only cipher of version 1: AES-256-GCM chunks under an HKDF-SHA256 data key.
inline constexpr std::uint16_t kCipherAes256GcmHkdfSha256 = 1;
// Header::plaintext_size when the plaintext came from a pipe (its end is then known only from the
// authenticated final chunk).
inline constexpr std::uint64_t kUnknownSize = UINT64_MAX;

struct Header {
  std::uint32_t version = kFormatVersion;
  std::uint32_t chunk_size = kDefaultChunkSize;
  // Where the key lives, e.g. the KBS resource "kbs:///default/model-key/llama". Not secret, at
  // most kMaxKeyIdBytes printable ASCII bytes (0x20..0x7e), may be empty.
  std::string key_id;
  // kUnknownSize in a file encrypted from a pipe. Encrypt and Decrypt return the size they counted.
  std::uint64_t plaintext_size = kUnknownSize;
  std::uint16_t cipher = kCipherAes256GcmHkdfSha256;
  std::array<std::uint8_t, kSaltBytes> salt{};
  std::array<std::uint8_t, kNoncePrefixBytes> nonce_prefix{};
  // HMAC-SHA256 of the header bytes before it, under a key derived like the data key: checked
  // first, so a wrong key is told apart from a damaged chunk before anything is written.
  std::array<std::uint8_t, kHeaderMacBytes> mac{};

  // Bytes of the header in the file (it ends with the MAC).
  std::size_t EncodedSize() const { return 66 + key_id.size() + kHeaderMacBytes; }
};

// (bytes done, bytes in all); `total` is 0 when unknown (a pipe). Counts plaintext bytes; called
// after each chunk, on the calling thread.
using Progress = std::function<void(std::uint64_t done, std::uint64_t total)>;

struct EncryptOptions {
  std::uint32_t chunk_size = kDefaultChunkSize;
  std::string key_id;
  Progress progress;
};

}  // namespace pp::model
