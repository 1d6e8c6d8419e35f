#include "model/codec.h"

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/kdf.h>
#include <openssl/params.h>
#include <openssl/rand.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <string_view>
#include <utility>
#include <vector>

#include "common/base/handle.h"

namespace pp::model::codec {
namespace {

// Status from message parts: Fail(kDataLoss, "chunk ", n, " failed").
template <typename... Parts>
Status Fail(int code, const Parts&... parts) {
  Status status{code, {}, 0};
  (status.message.append(std::string_view(parts)), ...);
  return status;
}

Status Errno(std::string what, int err) { return Status{kInternal, std::move(what), err}; }

constexpr std::array<std::uint8_t, 8> kMagic = {'P', 'P', 'M', 'O', 'D', 'E', 'L', 0};
constexpr std::size_t kFixedHeaderBytes = 66;  // up to and including the key id's length
constexpr std::size_t kNonceBytes = 12;        // GCM's 96-bit IV (NIST SP 800-38D, 8.2.1)
constexpr std::size_t kDigestBytes = 32;
constexpr std::size_t kAadBytes = kDigestBytes + 8 + 1;
constexpr std::uint64_t kMaxChunks = std::uint64_t{1} << 32;  // the nonce's 32-bit counter
// HKDF "info" strings (RFC 5869, 3.2): one key per purpose, each naming the format and version.
constexpr std::string_view kDataKeyInfo = "peerpods-model v1 chunk key";
constexpr std::string_view kHeaderKeyInfo = "peerpods-model v1 header key";

using CipherCtx = CHandle<EVP_CIPHER_CTX, EVP_CIPHER_CTX_free>;
using Kdf = CHandle<EVP_KDF, EVP_KDF_free>;
using KdfCtx = CHandle<EVP_KDF_CTX, EVP_KDF_CTX_free>;

void PutBe(std::uint8_t* out, std::uint64_t value, int bytes) {
  for (int i = bytes - 1; i >= 0; --i, value >>= 8)
    out[i] = static_cast<std::uint8_t>(value & 0xff);
}

std::uint64_t GetBe(const std::uint8_t* in, int bytes) {
  std::uint64_t value = 0;
  for (int i = 0; i < bytes; ++i) value = (value << 8) | in[i];
  return value;
}

std::string OpenSslError(std::string_view what) {
  // OpenSSL's error queue holds library reasons, never key bytes.
  return std::string(what) + " failed (OpenSSL)";
}

// The keys of one file, wiped when they go.
struct Keys {
  std::array<std::uint8_t, kKeyBytes> data{};
  std::array<std::uint8_t, kKeyBytes> header{};
  Keys() = default;
  Keys(const Keys&) = delete;
  Keys& operator=(const Keys&) = delete;
  ~Keys() {
    OPENSSL_cleanse(data.data(), data.size());
    OPENSSL_cleanse(header.data(), header.size());
  }
};

Status Hkdf(std::span<const std::uint8_t, kKeyBytes> ikm, std::span<const std::uint8_t> salt,
            std::string_view info, std::span<std::uint8_t, kKeyBytes> out) {
  Kdf kdf(EVP_KDF_fetch(nullptr, "HKDF", nullptr));
  if (!kdf) return Fail(kInternal, OpenSslError("HKDF fetch"));
  KdfCtx ctx(EVP_KDF_CTX_new(kdf.get()));
  if (!ctx) return Fail(kInternal, OpenSslError("HKDF context"));
  char digest[] = "SHA256";
  OSSL_PARAM params[] = {
      OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST, digest, 0),
      OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_KEY, const_cast<std::uint8_t*>(ikm.data()),
                                        ikm.size()),
      OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_SALT, const_cast<std::uint8_t*>(salt.data()),
                                        salt.size()),
      OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_INFO, const_cast<char*>(info.data()),
                                        info.size()),
      OSSL_PARAM_construct_end()};
  if (EVP_KDF_derive(ctx.get(), out.data(), out.size(), params) != 1)
    return Fail(kInternal, OpenSslError("HKDF derive"));
  return {};
}

Status DeriveKeys(std::span<const std::uint8_t, kKeyBytes> key, const Header& header, Keys& keys) {
  if (auto r = Hkdf(key, header.salt, kDataKeyInfo, keys.data); !r.ok()) return r;
  return Hkdf(key, header.salt, kHeaderKeyInfo, keys.header);
}

// The header's bytes up to (not including) the MAC.
std::vector<std::uint8_t> EncodeUnauthenticated(const Header& h) {
  std::vector<std::uint8_t> out(kFixedHeaderBytes + h.key_id.size());
  std::uint8_t* p = out.data();
  std::memcpy(p, kMagic.data(), kMagic.size());
  PutBe(p + 8, h.version, 2);
  PutBe(p + 10, h.cipher, 2);
  PutBe(p + 12, h.chunk_size, 4);
  PutBe(p + 16, h.plaintext_size, 8);
  std::memcpy(p + 24, h.salt.data(), kSaltBytes);
  std::memcpy(p + 56, h.nonce_prefix.data(), kNoncePrefixBytes);
  PutBe(p + 64, h.key_id.size(), 2);
  std::memcpy(p + kFixedHeaderBytes, h.key_id.data(), h.key_id.size());
  return out;
}

Status HeaderMac(const Keys& keys, std::span<const std::uint8_t> bytes,
                 std::array<std::uint8_t, kHeaderMacBytes>& mac) {
  std::size_t len = 0;
  char digest[] = "SHA256";
  if (EVP_Q_mac(nullptr, "HMAC", nullptr, digest, nullptr, keys.header.data(), keys.header.size(),
                bytes.data(), bytes.size(), mac.data(), mac.size(), &len) == nullptr ||
      len != mac.size())
    return Fail(kInternal, OpenSslError("HMAC-SHA256"));
  return {};
}

// SHA-256 of the whole header (MAC included): the part of every chunk's AAD that ties it to its
// file.
Status HeaderDigest(const Header& h, std::array<std::uint8_t, kDigestBytes>& digest) {
  auto bytes = EncodeUnauthenticated(h);
  bytes.insert(bytes.end(), h.mac.begin(), h.mac.end());
  unsigned int len = 0;
  if (EVP_Digest(bytes.data(), bytes.size(), digest.data(), &len, EVP_sha256(), nullptr) != 1)
    return Fail(kInternal, OpenSslError("SHA-256"));
  return {};
}

Status ValidateKeyId(std::string_view key_id) {
  if (key_id.size() > kMaxKeyIdBytes)
    return Fail(kInvalidArgument, "key id is ", std::to_string(key_id.size()), " bytes, at most ",
                std::to_string(kMaxKeyIdBytes), " allowed");
  for (char c : key_id)
    if (c < 0x20 || c > 0x7e)
      return Fail(kInvalidArgument, "key id holds a byte that is not printable ASCII");
  return {};
}

Status ValidateChunkSize(std::uint32_t chunk_size) {
  if (chunk_size < kMinChunkSize || chunk_size > kMaxChunkSize)
    return Fail(kInvalidArgument, "chunk size ", std::to_string(chunk_size), " is outside ",
                std::to_string(kMinChunkSize), "..", std::to_string(kMaxChunkSize));
  return {};
}

std::uint64_t ChunkCount(std::uint64_t size, std::uint32_t chunk_size) {
  return size == 0 ? 1 : (size - 1) / chunk_size + 1;
}

// Reads until `out` is full or the input ends; returns the bytes read.
Status ReadFull(int fd, std::span<std::uint8_t> out, std::size_t& have) {
  have = 0;
  while (have < out.size()) {
    const ssize_t n = ::read(fd, out.data() + have, out.size() - have);
    if (n == 0) break;
    if (n < 0) {
      if (errno == EINTR) continue;
      return Errno("read encrypted model input", errno);
    }
    have += static_cast<std::size_t>(n);
  }
  return {};
}

Status WriteFull(int fd, std::span<const std::uint8_t> data, std::string_view what) {
  while (!data.empty()) {
    const ssize_t n = ::write(fd, data.data(), data.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      return Errno(std::string("write ") + std::string(what), errno);
    }
    data = data.subspan(static_cast<std::size_t>(n));
  }
  return {};
}

// The per-chunk parameters (FORMAT.md, "Chunks").
struct ChunkParams {
  std::array<std::uint8_t, kNonceBytes> nonce{};
  std::array<std::uint8_t, kAadBytes> aad{};
};

ChunkParams MakeChunkParams(const Header& h, const std::array<std::uint8_t, kDigestBytes>& digest,
                            std::uint64_t index, bool final) {
  ChunkParams p;
  std::memcpy(p.nonce.data(), h.nonce_prefix.data(), kNoncePrefixBytes);
  PutBe(p.nonce.data() + kNoncePrefixBytes, index, 4);
  std::memcpy(p.aad.data(), digest.data(), kDigestBytes);
  PutBe(p.aad.data() + kDigestBytes, index, 8);
  p.aad[kAadBytes - 1] = final ? 1 : 0;
  return p;
}

// A GCM context keyed once per file; each chunk sets only its nonce.
Status NewGcm(const Keys& keys, bool encrypt, CipherCtx& ctx) {
  ctx.reset(EVP_CIPHER_CTX_new());
  if (!ctx || EVP_CipherInit_ex(ctx.get(), EVP_aes_256_gcm(), nullptr, keys.data.data(), nullptr,
                                encrypt ? 1 : 0) != 1)
    return Fail(kInternal, OpenSslError("AES-256-GCM setup"));
  return {};
}

// Encrypts buf[0, len) in place and puts the tag after it.
bool SealChunk(EVP_CIPHER_CTX* ctx, const ChunkParams& p, std::uint8_t* buf, std::size_t len) {
  int out = 0;
  if (EVP_EncryptInit_ex(ctx, nullptr, nullptr, nullptr, p.nonce.data()) != 1) return false;
  if (EVP_EncryptUpdate(ctx, nullptr, &out, p.aad.data(), static_cast<int>(p.aad.size())) != 1)
    return false;
  if (len > 0 && EVP_EncryptUpdate(ctx, buf, &out, buf, static_cast<int>(len)) != 1) return false;
  if (EVP_EncryptFinal_ex(ctx, buf + len, &out) != 1) return false;
  return EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_GET_TAG, kTagBytes, buf + len) == 1;
}

// Decrypts buf[0, len) in place, checking the tag at buf + len; false when authentication fails.
bool OpenChunk(EVP_CIPHER_CTX* ctx, const ChunkParams& p, std::uint8_t* buf, std::size_t len) {
  int out = 0;
  if (EVP_DecryptInit_ex(ctx, nullptr, nullptr, nullptr, p.nonce.data()) != 1) return false;
  if (EVP_DecryptUpdate(ctx, nullptr, &out, p.aad.data(), static_cast<int>(p.aad.size())) != 1)
    return false;
  if (len > 0 && EVP_DecryptUpdate(ctx, buf, &out, buf, static_cast<int>(len)) != 1) return false;
  if (EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_TAG, kTagBytes, buf + len) != 1) return false;
  return EVP_DecryptFinal_ex(ctx, buf + len, &out) == 1;
}

std::string Num(std::uint64_t n) { return std::to_string(n); }

// A chunk buffer wiped when it goes: it holds plaintext, or on a failed chunk unauthenticated
// plaintext (GCM decrypts before the tag is checked).
class ChunkBuffer {
 public:
  explicit ChunkBuffer(std::size_t size) : bytes_(size) {}
  ~ChunkBuffer() { OPENSSL_cleanse(bytes_.data(), bytes_.size()); }
  ChunkBuffer(const ChunkBuffer&) = delete;
  ChunkBuffer& operator=(const ChunkBuffer&) = delete;
  std::span<std::uint8_t> span() { return bytes_; }
  std::uint8_t* data() { return bytes_.data(); }
  std::uint8_t& operator[](std::size_t i) { return bytes_[i]; }
  std::size_t size() const { return bytes_.size(); }

 private:
  std::vector<std::uint8_t> bytes_;
};

}  // namespace

Status Encrypt(int in_fd, int out_fd, std::span<const std::uint8_t, kKeyBytes> key,
               const EncryptOptions& options, Header& header) {
  if (auto r = ValidateChunkSize(options.chunk_size); !r.ok()) return r;
  if (auto r = ValidateKeyId(options.key_id); !r.ok()) return r;
  Header h;
  h.chunk_size = options.chunk_size;
  h.key_id = options.key_id;
  struct stat st {};
  if (::fstat(in_fd, &st) != 0) return Errno("stat model input", errno);
  if (S_ISREG(st.st_mode)) {
    const off_t at = ::lseek(in_fd, 0, SEEK_CUR);
    h.plaintext_size = static_cast<std::uint64_t>(
        st.st_size - std::min<off_t>(std::max<off_t>(at, 0), st.st_size));
    if (ChunkCount(h.plaintext_size, h.chunk_size) > kMaxChunks)
      return Fail(kInvalidArgument, "input of ", Num(h.plaintext_size),
                  " bytes needs more than 2^32 chunks of ", Num(h.chunk_size),
                  " bytes: use larger chunks");
  }
  if (RAND_bytes(h.salt.data(), kSaltBytes) != 1 ||
      RAND_bytes(h.nonce_prefix.data(), kNoncePrefixBytes) != 1)
    return Fail(kInternal, OpenSslError("random salt"));
  Keys keys;
  if (auto r = DeriveKeys(key, h, keys); !r.ok()) return r;
  auto bytes = EncodeUnauthenticated(h);
  if (auto r = HeaderMac(keys, bytes, h.mac); !r.ok()) return r;
  bytes.insert(bytes.end(), h.mac.begin(), h.mac.end());
  std::array<std::uint8_t, kDigestBytes> digest{};
  if (auto r = HeaderDigest(h, digest); !r.ok()) return r;
  if (auto r = WriteFull(out_fd, bytes, "encrypted model header"); !r.ok()) return r;

  CipherCtx ctx;
  if (auto r = NewGcm(keys, true, ctx); !r.ok()) return r;
  const bool known = h.plaintext_size != kUnknownSize;
  // One buffer: a chunk plus one byte read ahead (is there more?), sealed in place with its tag.
  ChunkBuffer buf(std::size_t{h.chunk_size} + kTagBytes);
  std::size_t have = 0;
  std::uint64_t done = 0;
  for (std::uint64_t index = 0;; ++index) {
    std::size_t n = 0;
    if (auto r = ReadFull(in_fd, buf.span().subspan(have, std::size_t{h.chunk_size} + 1 - have), n);
        !r.ok())
      return r;
    have += n;
    const bool final = have <= h.chunk_size;
    const std::size_t len = final ? have : h.chunk_size;
    if (index >= kMaxChunks)
      return Fail(kResourceExhausted, "input needs more than 2^32 chunks of ", Num(h.chunk_size),
                  " bytes: use larger chunks");
    const std::uint8_t ahead = buf[h.chunk_size];
    if (!SealChunk(ctx.get(), MakeChunkParams(h, digest, index, final), buf.data(), len))
      return Fail(kInternal, OpenSslError("AES-256-GCM encrypt"));
    if (auto r = WriteFull(out_fd, buf.span().first(len + kTagBytes), "encrypted model"); !r.ok())
      return r;
    done += len;
    if (known && done > h.plaintext_size) break;  // reported below
    if (options.progress) options.progress(done, known ? h.plaintext_size : 0);
    if (final) break;
    buf[0] = ahead;
    have = 1;
  }
  if (known && done != h.plaintext_size)
    return Fail(kAborted, "model input changed size while it was encrypted (",
                Num(h.plaintext_size), " bytes at the start, ", Num(done),
                " read): the output is unusable");
  h.plaintext_size = done;
  header = std::move(h);
  return {};
}

Status ReadHeader(int in_fd, Header& header) {
  std::array<std::uint8_t, kFixedHeaderBytes> fixed{};
  std::size_t n = 0;
  if (auto r = ReadFull(in_fd, fixed, n); !r.ok()) return r;
  if (n < kMagic.size() || !std::equal(kMagic.begin(), kMagic.end(), fixed.begin()))
    return Fail(kInvalidArgument, "not an encrypted model (no PPMODEL magic at the start)");
  if (n < fixed.size())
    return Fail(kDataLoss, "encrypted model truncated inside its header (", Num(n), " bytes)");
  Header h;
  h.version = static_cast<std::uint32_t>(GetBe(&fixed[8], 2));
  if (h.version != kFormatVersion)
    return Fail(kUnimplemented, "encrypted model format version ", Num(h.version),
                " is not supported (only ", Num(kFormatVersion), ")");
  h.cipher = static_cast<std::uint16_t>(GetBe(&fixed[10], 2));
  if (h.cipher != kCipherAes256GcmHkdfSha256)
    return Fail(kUnimplemented, "encrypted model cipher ", Num(h.cipher), " is not supported");
  h.chunk_size = static_cast<std::uint32_t>(GetBe(&fixed[12], 4));
  if (auto r = ValidateChunkSize(h.chunk_size); !r.ok())
    return Fail(kInvalidArgument, "encrypted model header: ", r.message);
  h.plaintext_size = GetBe(&fixed[16], 8);
  if (h.plaintext_size != kUnknownSize && ChunkCount(h.plaintext_size, h.chunk_size) > kMaxChunks)
    return Fail(kInvalidArgument, "encrypted model header: plaintext size ", Num(h.plaintext_size),
                " needs more than 2^32 chunks");
  std::copy_n(&fixed[24], kSaltBytes, h.salt.begin());
  std::copy_n(&fixed[56], kNoncePrefixBytes, h.nonce_prefix.begin());
  const std::size_t key_id_len = GetBe(&fixed[64], 2);
  if (key_id_len > kMaxKeyIdBytes)
    return Fail(kInvalidArgument, "encrypted model header: key id of ", Num(key_id_len),
                " bytes (at most ", Num(kMaxKeyIdBytes), ")");
  std::vector<std::uint8_t> rest(key_id_len + kHeaderMacBytes);
  if (auto r = ReadFull(in_fd, rest, n); !r.ok()) return r;
  if (n < rest.size())
    return Fail(kDataLoss, "encrypted model truncated inside its header (",
                Num(kFixedHeaderBytes + n), " bytes)");
  h.key_id.assign(rest.begin(), rest.begin() + static_cast<std::ptrdiff_t>(key_id_len));
  if (auto r = ValidateKeyId(h.key_id); !r.ok())
    return Fail(kInvalidArgument, "encrypted model header: ", r.message);
  std::copy_n(rest.begin() + static_cast<std::ptrdiff_t>(key_id_len), kHeaderMacBytes,
              h.mac.begin());
  header = std::move(h);
  return {};
}

Status DecryptBody(const Header& header, int in_fd, int out_fd,
                   std::span<const std::uint8_t, kKeyBytes> key, const Progress& progress,
                   Header& result) {
  Header h = header;
  // A header from ReadHeader passes these; one put together by a caller might not.
  if (h.version != kFormatVersion || h.cipher != kCipherAes256GcmHkdfSha256)
    return Fail(kUnimplemented, "encrypted model version ", Num(h.version), " cipher ",
                Num(h.cipher), " is not supported");
  if (auto r = ValidateChunkSize(h.chunk_size); !r.ok()) return r;
  if (auto r = ValidateKeyId(h.key_id); !r.ok()) return r;
  Keys keys;
  if (auto r = DeriveKeys(key, h, keys); !r.ok()) return r;
  std::array<std::uint8_t, kHeaderMacBytes> mac{};
  if (auto r = HeaderMac(keys, EncodeUnauthenticated(h), mac); !r.ok()) return r;
  if (CRYPTO_memcmp(mac.data(), h.mac.data(), kHeaderMacBytes) != 0)
    return Fail(kUnauthenticated,
                "encrypted model: wrong key or tampered header (header MAC mismatch)");
  std::array<std::uint8_t, kDigestBytes> digest{};
  if (auto r = HeaderDigest(h, digest); !r.ok()) return r;
  CipherCtx ctx;
  if (auto r = NewGcm(keys, false, ctx); !r.ok()) return r;

  const bool known = h.plaintext_size != kUnknownSize;
  const std::uint64_t chunks = known ? ChunkCount(h.plaintext_size, h.chunk_size) : 0;
  const std::string of_chunks = known ? " (the header says " + Num(chunks) + " chunks)" : "";
  const std::size_t record = std::size_t{h.chunk_size} + kTagBytes;
  // One chunk record plus one byte read ahead: a record is the final one exactly when nothing
  // follows.
  ChunkBuffer buf(record + 1);
  std::size_t have = 0;
  std::uint64_t done = 0;
  for (std::uint64_t index = 0;; ++index) {
    std::size_t n = 0;
    if (auto r = ReadFull(in_fd, buf.span().subspan(have), n); !r.ok()) return r;
    have += n;
    const bool final = have < buf.size();
    const std::size_t len = final ? have : record;
    if (index >= kMaxChunks) return Fail(kDataLoss, "encrypted model has more than 2^32 chunks");
    if (known) {
      const bool should_be_final = index + 1 == chunks;
      if (!final && should_be_final)
        return Fail(kDataLoss, "encrypted model has bytes after its final chunk ", Num(index),
                    of_chunks);
      if (final && !should_be_final) {
        if (len == 0 && index == 0)
          return Fail(kDataLoss, "encrypted model truncated: no chunk after the header", of_chunks);
        if (len == 0)
          return Fail(kDataLoss, "encrypted model truncated after chunk ", Num(index - 1),
                      of_chunks);
        if (len == record)
          return Fail(kDataLoss, "encrypted model truncated after chunk ", Num(index), of_chunks);
        return Fail(kDataLoss, "encrypted model truncated inside chunk ", Num(index), of_chunks);
      }
      if (final && len != h.plaintext_size - index * h.chunk_size + kTagBytes)
        return Fail(kDataLoss, "encrypted model's final chunk ", Num(index), " has ", Num(len),
                    " bytes, the header says ",
                    Num(h.plaintext_size - index * h.chunk_size + kTagBytes),
                    ": truncated or extended");
    } else if (final && len < kTagBytes + (index == 0 ? 0 : 1)) {
      if (index == 0 && len == 0)
        return Fail(kDataLoss, "encrypted model truncated: no chunk after the header");
      return Fail(kDataLoss, "encrypted model truncated inside chunk ", Num(index));
    }
    const std::size_t text = len - kTagBytes;
    if (!OpenChunk(ctx.get(), MakeChunkParams(h, digest, index, final), buf.data(), text)) {
      if (final && !known)
        return Fail(
            kDataLoss, "encrypted model chunk ", Num(index),
            " (the last in the file) failed authentication: the file is truncated or tampered");
      return Fail(kDataLoss, "encrypted model chunk ", Num(index), " failed authentication");
    }
    const std::uint8_t ahead = buf[record];
    if (auto r = WriteFull(out_fd, buf.span().first(text), "decrypted model"); !r.ok()) return r;
    done += text;
    if (progress) progress(done, known ? h.plaintext_size : 0);
    if (final) break;
    buf[0] = ahead;
    have = 1;
  }
  h.plaintext_size = done;
  result = std::move(h);
  return {};
}

}  // namespace pp::model::codec
