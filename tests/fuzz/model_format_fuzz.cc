// libFuzzer target: arbitrary bytes as an encrypted model (model/FORMAT.md) through ReadHeader and
// Decrypt with a fixed key; and, when the first byte is 'P' + 1, the rest of the input as a
// plaintext through Encrypt and Decrypt, unchanged (must round-trip) and with one bit flipped where
// the input says (must fail). The seeds (corpus_model) are files made with the fixed key, so
// mutations get past the header MAC into the chunk reader. Built by the "fuzz" preset (clang,
// ASan+UBSan).
#include <sys/mman.h>
#include <unistd.h>

#include <array>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>

#include "common/base/handle.h"
#include "model/format.h"

namespace {

namespace model = pp::model;

// The seeds' key: 32 bytes of 0x42.
constexpr std::array<std::uint8_t, model::kKeyBytes> kKey = {
    0x42, 0x42, 0x42, 0x42, 0x42, 0x42, 0x42, 0x42, 0x42, 0x42, 0x42, 0x42, 0x42, 0x42, 0x42, 0x42,
    0x42, 0x42, 0x42, 0x42, 0x42, 0x42, 0x42, 0x42, 0x42, 0x42, 0x42, 0x42, 0x42, 0x42, 0x42, 0x42};

pp::ScopedFd File(const void* data, std::size_t size) {
  pp::ScopedFd fd(::memfd_create("fuzz", MFD_CLOEXEC));
  if (!fd) std::abort();
  if (size > 0 && ::write(fd.get(), data, size) != static_cast<ssize_t>(size)) std::abort();
  ::lseek(fd.get(), 0, SEEK_SET);
  return fd;
}

std::string Contents(int fd) {
  std::string out(static_cast<std::size_t>(::lseek(fd, 0, SEEK_END)), '\0');
  if (::pread(fd, out.data(), out.size(), 0) != static_cast<ssize_t>(out.size())) std::abort();
  return out;
}

// Whatever the bytes, ReadHeader's answer is within bounds, and Decrypt succeeds only with an
// output of the size it reports (and the header's, when that is known).
void AsEncrypted(const std::uint8_t* data, std::size_t size) {
  auto in = File(data, size);
  auto header = model::ReadHeader(in.get());
  if (header) {
    if (header->chunk_size < model::kMinChunkSize || header->chunk_size > model::kMaxChunkSize) std::abort();
    if (header->key_id.size() > model::kMaxKeyIdBytes) std::abort();
    if (header->EncodedSize() > size) std::abort();
  }
  ::lseek(in.get(), 0, SEEK_SET);
  auto out = File(nullptr, 0);
  auto decrypted = model::Decrypt(in.get(), out.get(), kKey, nullptr);
  if (decrypted) {
    if (!header) std::abort();
    if (Contents(out.get()).size() != decrypted->plaintext_size) std::abort();
    if (header->plaintext_size != model::kUnknownSize && header->plaintext_size != decrypted->plaintext_size)
      std::abort();
  } else if (decrypted.error().message.empty()) {
    std::abort();
  }
}

void RoundTrip(const std::uint8_t* data, std::size_t size) {
  if (size < 2) return;
  const std::size_t flip_at = data[0] | (data[1] << 8);
  data += 2;
  size -= 2;
  auto plain = File(data, size);
  auto sealed = File(nullptr, 0);
  auto header = model::Encrypt(plain.get(), sealed.get(), kKey, {model::kMinChunkSize, "kbs:///fuzz", nullptr});
  if (!header || header->plaintext_size != size) std::abort();
  std::string file = Contents(sealed.get());
  auto in = File(file.data(), file.size());
  auto out = File(nullptr, 0);
  if (!model::Decrypt(in.get(), out.get(), kKey, nullptr)) std::abort();
  if (Contents(out.get()) != std::string(reinterpret_cast<const char*>(data), size)) std::abort();
  // One flipped bit anywhere must be caught.
  file[(flip_at / 8) % file.size()] ^= static_cast<char>(1 << (flip_at % 8));
  auto bad_in = File(file.data(), file.size());
  auto bad_out = File(nullptr, 0);
  if (model::Decrypt(bad_in.get(), bad_out.get(), kKey, nullptr)) std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size > 0 && data[0] == 'P' + 1) {
    RoundTrip(data + 1, size - 1);
    return 0;
  }
  AsEncrypted(data, size);
  return 0;
}
