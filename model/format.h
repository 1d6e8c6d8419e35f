// The encrypted-model format: a model file encrypted by its owner with a 32-byte key that a Key
// Broker Service releases only to an attested pod VM, decrypted there in constant memory.
//
// A file is a header followed by AES-256-GCM chunks (byte layout: model/FORMAT.md). The data key is
// derived per file from the KBS key and a random salt (HKDF-SHA256, RFC 5869); chunk i uses the
// nonce prefix || i; every chunk's additional data binds a digest of the header, i and whether it
// is the final chunk, so that a chunk changed, dropped, duplicated, reordered or taken from another
// file, a file cut short (even at a chunk boundary) and a header changed or taken from another file
// all fail authentication. An empty plaintext still has one (final, empty) chunk.
//
// All I/O is on file descriptors read and written sequentially, so pipes, files and tmpfs work
// alike; memory is one chunk buffer (chunk_size is at most kMaxChunkSize) whatever the file size.
// Functions are thread-safe (no shared state); one fd must not be used by two calls at once.
// Key bytes never appear in an error message; derived keys are wiped (OPENSSL_cleanse) after use.
#pragma once

#include <sys/types.h>

#include <array>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <span>
#include <string>

#include "common/base/error.h"

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

// Reads plaintext from `in_fd` to its end and writes the encrypted file to `out_fd`. A regular
// file's size (fstat) goes into the header and the file must not change size while it is read;
// from a pipe the header says kUnknownSize. Returns the header written (with the size counted).
// On failure `out_fd` has received a prefix that does not decrypt; the caller discards it.
Result<Header> Encrypt(int in_fd, int out_fd, std::span<const std::uint8_t, kKeyBytes> key,
                       const EncryptOptions& options);

// Reads and checks the header's structure (magic, version, cipher, chunk size, key id) without a
// key, consuming exactly its bytes from `in_fd` (so a pipe can go on to DecryptBody). Its MAC is
// checked only by Decrypt/DecryptBody, with the key.
Result<Header> ReadHeader(int in_fd);

// Decrypts to `out_fd` chunk by chunk, each chunk authenticated before its bytes are written. Only
// a successful return means the whole file (header, every chunk in order, the final chunk, nothing
// after it) checked out: on error the caller must discard what was written. Errors: INVALID_ARGUMENT
// or UNIMPLEMENTED (not this format / version), UNAUTHENTICATED ("wrong key or tampered header"),
// DATA_LOSS (a chunk failed authentication, the file is truncated or has trailing bytes), or the
// errno of a failed read/write. Returns the header with plaintext_size = bytes written.
Result<Header> Decrypt(int in_fd, int out_fd, std::span<const std::uint8_t, kKeyBytes> key,
                       Progress progress);

// Decrypt for an `in_fd` whose header ReadHeader has already consumed (a pipe: read the header to
// learn the key id, fetch the key, then decrypt the rest).
Result<Header> DecryptBody(const Header& header, int in_fd, int out_fd,
                           std::span<const std::uint8_t, kKeyBytes> key, Progress progress);

// Releases plaintext only after the whole file authenticated: writes `path`.partial-XXXXXX
// (O_EXCL, mode 0600) in the same directory, fsyncs it and renames it to `path` with `mode` on
// success. On any failure the partial file is truncated (tmpfs frees its pages) and unlinked, and
// whatever was at `path` is left as it was. (A process killed meanwhile leaves its 0600 partial
// file, never a file at `path`: a loader may remove `path`.partial-* when it starts.)
Result<Header> DecryptToFile(int in_fd, const std::string& path, mode_t mode,
                             std::span<const std::uint8_t, kKeyBytes> key, Progress progress);

// DecryptToFile after ReadHeader (see DecryptBody).
Result<Header> DecryptBodyToFile(const Header& header, int in_fd, const std::string& path, mode_t mode,
                                 std::span<const std::uint8_t, kKeyBytes> key, Progress progress);

}  // namespace pp::model
