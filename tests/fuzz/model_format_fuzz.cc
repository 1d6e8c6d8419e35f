// libFuzzer target: arbitrary bytes as an encrypted model (model/FORMAT.md) through the codec's
// ReadHeader and DecryptBody (what pp::model::Decrypt runs) with a fixed key; and, when the first
// byte is 'P' + 1, the rest of the input as a plaintext through Encrypt and Decrypt, unchanged
// (must round-trip) and with one bit flipped where the input says (must fail). The seeds
// (corpus_model) are files made with the fixed key, so mutations get past the header MAC into the
// chunk reader. Built by the "fuzz" preset (clang, ASan+UBSan).
#include <sys/mman.h>
#include <unistd.h>

#include <array>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>

#include "common/base/handle.h"
#include "model/codec.h"

namespace {

namespace model = pp::model;
namespace codec = pp::model::codec;

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
  model::Header header;
  if (!codec::ReadHeader(in.get(), header).ok()) return;
  if (header.chunk_size < model::kMinChunkSize || header.chunk_size > model::kMaxChunkSize)
    std::abort();
  if (header.key_id.size() > model::kMaxKeyIdBytes) std::abort();
  if (header.EncodedSize() > size) std::abort();
  auto out = File(nullptr, 0);
  model::Header result;
  auto status = codec::DecryptBody(header, in.get(), out.get(), kKey, nullptr, result);
  if (status.ok()) {
    if (Contents(out.get()).size() != result.plaintext_size) std::abort();
    if (header.plaintext_size != model::kUnknownSize &&
        header.plaintext_size != result.plaintext_size)
      std::abort();
  } else if (status.message.empty()) {
    std::abort();
  }
}

// Decrypts a whole file into *plain; false when it does not authenticate.
bool Decrypts(const std::string& file, std::string* plain) {
  auto in = File(file.data(), file.size());
  auto out = File(nullptr, 0);
  model::Header header, result;
  if (!codec::ReadHeader(in.get(), header).ok()) return false;
  if (!codec::DecryptBody(header, in.get(), out.get(), kKey, nullptr, result).ok()) return false;
  *plain = Contents(out.get());
  return true;
}

void RoundTrip(const std::uint8_t* data, std::size_t size) {
  if (size < 2) return;
  const std::size_t flip_at = data[0] | (data[1] << 8);
  data += 2;
  size -= 2;
  auto plain = File(data, size);
  auto sealed = File(nullptr, 0);
  model::Header header;
  if (!codec::Encrypt(plain.get(), sealed.get(), kKey,
                      {model::kMinChunkSize, "kbs:///fuzz", nullptr}, header)
           .ok() ||
      header.plaintext_size != size)
    std::abort();
  std::string file = Contents(sealed.get());
  std::string back;
  if (!Decrypts(file, &back) || back != std::string(reinterpret_cast<const char*>(data), size))
    std::abort();
  // One flipped bit anywhere must be caught.
  file[(flip_at / 8) % file.size()] ^= static_cast<char>(1 << (flip_at % 8));
  if (Decrypts(file, &back)) std::abort();
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
