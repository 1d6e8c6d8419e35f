// A multi-GiB model through Encrypt and Decrypt over pipes, never held in memory: a writer thread
// generates the plaintext (hashing it as it goes), Encrypt and Decrypt each run on a thread of
// their own between pipes, and the test hashes what comes out. The digests must match, and the
// process's peak RSS must stay far below the data's size (constant memory whatever the model's
// size). Its own executable, so that the peak RSS is this test's alone.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <openssl/evp.h>
#include <signal.h>
#include <sys/resource.h>
#include <unistd.h>

#include <array>
#include <cstdlib>
#include <thread>
#include <vector>

#include "common/base/handle.h"
#include "model/format.h"

namespace pp::model {
namespace {

constexpr std::array<std::uint8_t, kKeyBytes> kKey = {7, 7, 7};

struct Pipe {
  ScopedFd read, write;
  Pipe() {
    int fds[2];
    if (::pipe2(fds, O_CLOEXEC) != 0) std::abort();
    read.Reset(fds[0]);
    write.Reset(fds[1]);
    ::fcntl(fds[1], F_SETPIPE_SZ, 1 << 20);  // fewer wake-ups; the default 64 KiB works too
  }
};

class Sha256 {
 public:
  Sha256() : ctx_(EVP_MD_CTX_new()) { EVP_DigestInit_ex(ctx_.get(), EVP_sha256(), nullptr); }
  void Update(const void* data, std::size_t n) { EVP_DigestUpdate(ctx_.get(), data, n); }
  std::array<std::uint8_t, 32> Final() {
    std::array<std::uint8_t, 32> out{};
    EVP_DigestFinal_ex(ctx_.get(), out.data(), nullptr);
    return out;
  }

 private:
  CHandle<EVP_MD_CTX, EVP_MD_CTX_free> ctx_;
};

bool WriteAllBytes(int fd, const std::uint8_t* p, std::size_t n) {
  while (n > 0) {
    const ssize_t w = ::write(fd, p, n);
    if (w <= 0) return false;
    p += w;
    n -= static_cast<std::size_t>(w);
  }
  return true;
}

long MaxRssKib() {
  struct rusage usage {};
  ::getrusage(RUSAGE_SELF, &usage);
  return usage.ru_maxrss;
}

TEST(StreamTest, ThreeGibThroughPipesInConstantMemory) {
  ::signal(SIGPIPE, SIG_IGN);
  constexpr std::uint64_t kSize =
      (std::uint64_t{3} << 30) + 12345;  // not a multiple of the chunk size
  Pipe plain, encrypted, decrypted;
  std::array<std::uint8_t, 32> sent{};
  std::jthread writer([&, fd = std::move(plain.write)] {
    Sha256 sha;
    std::vector<std::uint64_t> block((1 << 20) / 8);
    std::uint64_t state = 0x9e3779b97f4a7c15;
    for (std::uint64_t done = 0; done < kSize;) {
      for (auto& word : block) {  // splitmix64: incompressible, cheap
        std::uint64_t z = (state += 0x9e3779b97f4a7c15);
        z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9;
        z = (z ^ (z >> 27)) * 0x94d049bb133111eb;
        word = z ^ (z >> 31);
      }
      const std::size_t n =
          static_cast<std::size_t>(std::min<std::uint64_t>(kSize - done, block.size() * 8));
      sha.Update(block.data(), n);
      if (!WriteAllBytes(fd.get(), reinterpret_cast<const std::uint8_t*>(block.data()), n)) return;
      done += n;
    }
    sent = sha.Final();
  });
  Result<Header> encrypted_header, decrypted_header;
  std::jthread encryptor([&, in = std::move(plain.read), out = std::move(encrypted.write)] {
    encrypted_header = Encrypt(in.get(), out.get(), kKey,
                               {kDefaultChunkSize, "kbs:///default/model-key/big", nullptr});
  });
  std::jthread decryptor([&, in = std::move(encrypted.read), out = std::move(decrypted.write)] {
    decrypted_header = Decrypt(in.get(), out.get(), kKey, nullptr);
  });
  Sha256 sha;
  std::uint64_t received = 0;
  std::vector<std::uint8_t> buf(1 << 20);
  for (ssize_t n; (n = ::read(decrypted.read.get(), buf.data(), buf.size())) > 0;) {
    sha.Update(buf.data(), static_cast<std::size_t>(n));
    received += static_cast<std::uint64_t>(n);
  }
  writer.join();
  encryptor.join();
  decryptor.join();
  ASSERT_TRUE(encrypted_header) << encrypted_header.error().message;
  ASSERT_TRUE(decrypted_header) << decrypted_header.error().message;
  EXPECT_EQ(encrypted_header->plaintext_size, kSize);
  EXPECT_EQ(decrypted_header->plaintext_size, kSize);
  EXPECT_EQ(received, kSize);
  EXPECT_EQ(sha.Final(), sent);
  // Two 4 MiB chunk buffers, three 1 MiB pipe buffers and the program itself.
  EXPECT_LT(MaxRssKib(), 64 * 1024) << "peak RSS grew with the data";
  std::printf("peak RSS %ld KiB for %llu bytes\n", MaxRssKib(),
              static_cast<unsigned long long>(kSize));
}

}  // namespace
}  // namespace pp::model
