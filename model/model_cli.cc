#include "model/model_cli.h"

#include <fcntl.h>
#include <openssl/crypto.h>
#include <openssl/rand.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <array>
#include <cctype>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "common/base/handle.h"
#include "model/format.h"

namespace pp::model {
namespace {

using Clock = std::chrono::steady_clock;

struct Options {
  std::string key_file;
  std::string key_id;
  std::uint32_t chunk_size = kDefaultChunkSize;
  std::string in;
  std::string out;
  bool json = false;
  bool progress = false;
  std::string mode = "0600";
};

void Say(const std::string& line) { std::fprintf(stderr, "peerpods-model: %s\n", line.c_str()); }

int Failed(const Error& error) {
  Say(error.message);
  return 1;
}

// The key, wiped when it goes.
struct Key {
  std::array<std::uint8_t, kKeyBytes> bytes{};
  Key() = default;
  Key(const Key&) = delete;
  Key& operator=(const Key&) = delete;
  ~Key() { OPENSSL_cleanse(bytes.data(), bytes.size()); }
};

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// 32 raw bytes, or 64 hex digits with surrounding white space. Never echoes the contents.
Result<void> ReadKey(const std::string& path, Key& key) {
  ScopedFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd) return std::unexpected(ErrnoError("key file " + path, errno));
  struct stat st {};
  if (::fstat(fd.get(), &st) == 0 && S_ISREG(st.st_mode) && (st.st_mode & 077) != 0) {
    char mode[8];
    std::snprintf(mode, sizeof mode, "%04o", static_cast<unsigned>(st.st_mode & 07777));
    Say(std::string("warning: key file ") + path + " has mode " + mode +
        ": others on this machine can read it (chmod 600)");
  }
  std::array<char, 160> raw{};
  std::size_t have = 0;
  while (have < raw.size()) {
    const ssize_t n = ::read(fd.get(), raw.data() + have, raw.size() - have);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return std::unexpected(ErrnoError("read key file " + path, errno));
    if (n == 0) break;
    have += static_cast<std::size_t>(n);
  }
  Result<void> result =
      Fail(Code::kInvalidArgument, "key file ", path,
           " must hold 32 raw bytes or 64 hex digits (peerpods-model keygen makes one)");
  if (have == kKeyBytes) {
    std::copy_n(raw.begin(), kKeyBytes, key.bytes.begin());
    result = {};
  } else {
    std::size_t begin = 0, end = have;
    while (begin < end && std::isspace(static_cast<unsigned char>(raw[begin]))) ++begin;
    while (end > begin && std::isspace(static_cast<unsigned char>(raw[end - 1]))) --end;
    bool ok = end - begin == 2 * kKeyBytes;
    for (std::size_t i = 0; ok && i < kKeyBytes; ++i) {
      const int hi = HexValue(raw[begin + 2 * i]), lo = HexValue(raw[begin + 2 * i + 1]);
      ok = hi >= 0 && lo >= 0;
      if (ok) key.bytes[i] = static_cast<std::uint8_t>(hi << 4 | lo);
    }
    if (ok) result = {};
  }
  OPENSSL_cleanse(raw.data(), raw.size());
  return result;
}

std::string Mib(std::uint64_t bytes) {
  char text[32];
  std::snprintf(text, sizeof text, "%.1f MiB", static_cast<double>(bytes) / (1 << 20));
  return text;
}

// Progress lines on stderr: one every ~5% (every 2 s when the total is unknown), and a last one
// when the operation succeeded.
class ProgressLines {
 public:
  ProgressLines(std::string verb, bool enabled) : verb_(std::move(verb)), enabled_(enabled) {}

  Progress Callback() {
    if (!enabled_) return nullptr;
    return [this](std::uint64_t done, std::uint64_t total) {
      const auto now = Clock::now();
      const bool step = total != 0 && (done - last_done_) * 20 >= total;
      if (!step && now - last_ < std::chrono::seconds(2)) return;
      last_ = now;
      last_done_ = done;
      Print(done, total);
    };
  }
  void Finish(std::uint64_t done) {
    if (enabled_ && done != last_done_) Print(done, done);
  }

 private:
  void Print(std::uint64_t done, std::uint64_t total) const {
    const double seconds = std::chrono::duration<double>(Clock::now() - start_).count();
    const double rate = seconds > 0 ? static_cast<double>(done) / (1 << 20) / seconds : 0;
    char line[160];
    if (total != 0)
      std::snprintf(line, sizeof line, "%s: %s of %s (%.0f%%), %.0f MiB/s", verb_.c_str(),
                    Mib(done).c_str(), Mib(total).c_str(),
                    100.0 * static_cast<double>(done) / static_cast<double>(total), rate);
    else
      std::snprintf(line, sizeof line, "%s: %s, %.0f MiB/s", verb_.c_str(), Mib(done).c_str(),
                    rate);
    Say(line);
  }

  std::string verb_;
  bool enabled_;
  Clock::time_point start_ = Clock::now(), last_ = Clock::now();
  std::uint64_t last_done_ = 0;
};

Result<ScopedFd> OpenInput(const std::string& path) {
  if (path == "-") return ScopedFd(::dup(STDIN_FILENO));
  ScopedFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd) return std::unexpected(ErrnoError("open " + path, errno));
  return fd;
}

std::string Hex(std::span<const std::uint8_t> bytes) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out;
  for (auto b : bytes) {
    out.push_back(kDigits[b >> 4]);
    out.push_back(kDigits[b & 15]);
  }
  return out;
}

int Keygen(const Options& o) {
  Key key;
  if (RAND_bytes(key.bytes.data(), kKeyBytes) != 1)
    return Failed(Error{Code::kInternal, "no random bytes"});
  // O_EXCL: a key is never overwritten (the models encrypted with it would be lost).
  ScopedFd fd(o.out == "-" ? ::dup(STDOUT_FILENO)
                           : ::open(o.out.c_str(),
                                    O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600));
  if (!fd)
    return Failed(
        ErrnoError("create key file " + o.out + " (an existing key is never replaced)", errno));
  std::size_t done = 0;
  while (done < kKeyBytes) {
    const ssize_t n = ::write(fd.get(), key.bytes.data() + done, kKeyBytes - done);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      const int err = errno;
      if (o.out != "-") ::unlink(o.out.c_str());
      return Failed(ErrnoError("write key file " + o.out, err));
    }
    done += static_cast<std::size_t>(n);
  }
  if (o.out != "-" && ::fsync(fd.get()) != 0) return Failed(ErrnoError("fsync " + o.out, errno));
  return 0;
}

int EncryptCommand(const Options& o, bool progress) {
  Key key;
  if (auto r = ReadKey(o.key_file, key); !r) return Failed(r.error());
  auto in = OpenInput(o.in);
  if (!in) return Failed(in.error());
  ProgressLines lines("encrypt", progress);
  EncryptOptions options{o.chunk_size, o.key_id, lines.Callback()};
  if (o.out == "-") {
    auto header = Encrypt(in->get(), STDOUT_FILENO, key.bytes, options);
    if (!header) return Failed(header.error());
    lines.Finish(header->plaintext_size);
    return 0;
  }
  // Into a temporary file renamed over OUT at the end: OUT may be IN, and a failure leaves no
  // half-written file that looks like a model.
  std::string tmp = o.out + ".partial-XXXXXX";
  std::vector<char> tmpl(tmp.begin(), tmp.end());
  tmpl.push_back('\0');
  ScopedFd out(::mkostemp(tmpl.data(), O_CLOEXEC));
  if (!out) return Failed(ErrnoError("create " + tmp, errno));
  tmp.assign(tmpl.data());
  auto header = Encrypt(in->get(), out.get(), key.bytes, options);
  Result<void> done;
  if (!header) done = std::unexpected(header.error());
  if (done && ::fchmod(out.get(), 0644) != 0)
    done = std::unexpected(ErrnoError("chmod " + tmp, errno));
  if (done && ::fsync(out.get()) != 0) done = std::unexpected(ErrnoError("fsync " + tmp, errno));
  if (done && ::rename(tmp.c_str(), o.out.c_str()) != 0)
    done = std::unexpected(ErrnoError("rename " + tmp + " to " + o.out, errno));
  if (!done) {
    ::unlink(tmp.c_str());
    return Failed(done.error());
  }
  lines.Finish(header->plaintext_size);
  return 0;
}

int Inspect(const Options& o) {
  auto in = OpenInput(o.in);
  if (!in) return Failed(in.error());
  auto h = ReadHeader(in->get());
  if (!h) return Failed(h.error());
  const bool known = h->plaintext_size != kUnknownSize;
  const std::uint64_t chunks =
      known ? (h->plaintext_size == 0 ? 1 : (h->plaintext_size - 1) / h->chunk_size + 1) : 0;
  if (o.json) {
    nlohmann::json j = {
        {"version", h->version},
        {"cipher", "AES-256-GCM+HKDF-SHA256"},
        {"chunk_size", h->chunk_size},
        {"key_id", h->key_id},
        {"plaintext_size", known ? nlohmann::json(h->plaintext_size) : nlohmann::json(nullptr)},
        {"chunks", known ? nlohmann::json(chunks) : nlohmann::json(nullptr)},
        {"header_bytes", h->EncodedSize()},
        {"salt", Hex(h->salt)},
        {"nonce_prefix", Hex(h->nonce_prefix)}};
    std::printf("%s\n", j.dump(2).c_str());
    return 0;
  }
  std::printf("format version: %u\n", h->version);
  std::printf("cipher:         AES-256-GCM chunks, HKDF-SHA256 data key\n");
  std::printf("chunk size:     %u\n", h->chunk_size);
  std::printf("key id:         %s\n", h->key_id.c_str());
  if (known)
    std::printf("plaintext size: %llu (%llu chunks)\n",
                static_cast<unsigned long long>(h->plaintext_size),
                static_cast<unsigned long long>(chunks));
  else
    std::printf("plaintext size: unknown (encrypted from a pipe)\n");
  std::printf("header bytes:   %zu\n", h->EncodedSize());
  std::printf("salt:           %s\n", Hex(h->salt).c_str());
  std::printf("nonce prefix:   %s\n", Hex(h->nonce_prefix).c_str());
  std::printf("(the header is authenticated only by decrypt, with the key)\n");
  return 0;
}

int DecryptCommand(const Options& o, bool progress) {
  Key key;
  if (auto r = ReadKey(o.key_file, key); !r) return Failed(r.error());
  char* end = nullptr;
  const unsigned long mode = std::strtoul(o.mode.c_str(), &end, 8);
  if (o.mode.empty() || *end != '\0' || mode > 07777) {
    Say("--mode " + o.mode + " is not an octal file mode");
    return 2;
  }
  auto in = OpenInput(o.in);
  if (!in) return Failed(in.error());
  ProgressLines lines("decrypt", progress);
  if (o.out == "-") {
    Say("decrypting to stdout: what is streamed is unverified until peerpods-model exits with "
        "status 0");
    auto header = Decrypt(in->get(), STDOUT_FILENO, key.bytes, lines.Callback());
    if (!header) {
      Say("the output so far is NOT authentic: discard it");
      return Failed(header.error());
    }
    lines.Finish(header->plaintext_size);
    return 0;
  }
  auto header =
      DecryptToFile(in->get(), o.out, static_cast<mode_t>(mode), key.bytes, lines.Callback());
  if (!header) return Failed(header.error());
  lines.Finish(header->plaintext_size);
  return 0;
}

}  // namespace

int ModelCliMain(int argc, const char* const* argv) {
  Options o;
  CLI::App app{
      "peerpods-model: encrypts models for confidential pods (key released by a KBS after "
      "attestation)",
      "peerpods-model"};
  app.require_subcommand(1);
  app.add_flag("--progress", o.progress, "progress on stderr (default: when stderr is a terminal)");
  auto* keygen =
      app.add_subcommand("keygen", "write a new random 32-byte key (mode 0600; never overwrites)");
  keygen->add_option("out", o.out, "key file, or - for stdout")->required();
  auto* encrypt = app.add_subcommand("encrypt", "encrypt a model");
  encrypt->add_option("--key-file", o.key_file, "32 raw bytes or 64 hex digits")->required();
  encrypt
      ->add_option("--key-id", o.key_id, "where the key lives, e.g. kbs:///default/model-key/llama")
      ->required();
  encrypt->add_option("--chunk-size", o.chunk_size, "bytes per chunk")
      ->capture_default_str()
      ->check(CLI::Range(kMinChunkSize, kMaxChunkSize));
  encrypt->add_option("in", o.in, "plaintext model, or - for stdin")->required();
  encrypt->add_option("out", o.out, "encrypted model, or - for stdout")->required();
  auto* inspect = app.add_subcommand("inspect", "print the header (no key needed)");
  inspect->add_flag("--json", o.json, "as JSON");
  inspect->add_option("file", o.in, "encrypted model, or - for stdin")->required();
  auto* decrypt = app.add_subcommand("decrypt", "decrypt and authenticate a model");
  decrypt->add_option("--key-file", o.key_file, "32 raw bytes or 64 hex digits")->required();
  decrypt->add_option("--mode", o.mode, "mode of OUT (octal)")->capture_default_str();
  decrypt->add_option("in", o.in, "encrypted model, or - for stdin")->required();
  decrypt
      ->add_option("out", o.out,
                   "plaintext: released only once all of IN authenticated; - streams to stdout")
      ->required();
  for (auto* sub : {encrypt, decrypt})
    sub->add_flag("--progress", o.progress, "progress on stderr");
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e) == 0 ? 0 : 2;
  }
  const bool progress = o.progress || ::isatty(STDERR_FILENO) == 1;
  if (keygen->parsed()) return Keygen(o);
  if (encrypt->parsed()) return EncryptCommand(o, progress);
  if (inspect->parsed()) return Inspect(o);
  return DecryptCommand(o, progress);
}

}  // namespace pp::model
