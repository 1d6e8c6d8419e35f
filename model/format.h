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

#include <span>
#include <string>

#include "common/base/error.h"
#include "model/header.h"

namespace pp::model {

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
// after it) checked out: on error the caller must discard what was written. Errors:
// INVALID_ARGUMENT or UNIMPLEMENTED (not this format / version), UNAUTHENTICATED ("wrong key or
// tampered header"), DATA_LOSS (a chunk failed authentication, the file is truncated or has
// trailing bytes), or the errno of a failed read/write. Returns the header with plaintext_size =
// bytes written.
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
Result<Header> DecryptBodyToFile(const Header& header, int in_fd, const std::string& path,
                                 mode_t mode, std::span<const std::uint8_t, kKeyBytes> key,
                                 Progress progress);

}  // namespace pp::model
