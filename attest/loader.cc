#include "attest/loader.h"

#include <fcntl.h>
#include <linux/magic.h>
#include <sys/statfs.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <openssl/evp.h>
#include <spdlog/spdlog.h>

#include "attest/kbs_client.h"
#include "attest/loader_config.h"
#include "attest/model_source.h"
#include "common/base/file.h"
#include "common/base/handle.h"
#include "model/format.h"

namespace pp::attest {
namespace {

struct Failure {
  int exit_code;
  std::string reason;
};

// A model location for messages: a URL without its query (it may hold a pre-signed credential).
std::string Shown(const std::string& where) { return where.substr(0, where.find('?')); }

int Report(const Failure& f) {
  std::fprintf(stderr, "peerpods-model-loader: %s\n", f.reason.c_str());
  return f.exit_code;
}

// Exit class of a key-fetch error (kbs_client.h codes).
int KeyErrorClass(const Error& e) {
  switch (e.code) {
    case Code::kUnauthenticated:
    case Code::kPermissionDenied:
    case Code::kNotFound:
    case Code::kFailedPrecondition:
      return kExitAttestationRefused;
    case Code::kUnavailable:
    case Code::kDeadlineExceeded:
    case Code::kDataLoss:
      return kExitKbsUnreachable;
    case Code::kInvalidArgument:
      return kExitUsage;
    default:
      return kExitInternal;
  }
}

Result<Secret> GetKey(const LoaderOptions& options, const LoaderConfig& config, const std::string& initdata_toml) {
  const providers::OpContext ctx{std::chrono::steady_clock::now() + options.timeout, {}};
  if (config.key_source != KeySource::kKbs) {
    auto key = GetCdhResource(options.cdh_url, config.resource_path, ctx);
    if (key || config.key_source == KeySource::kCdh || key.error().code != Code::kUnavailable) {
      if (key) spdlog::info("model key from the confidential data hub at {}", options.cdh_url);
      return key;
    }
    spdlog::info("no confidential data hub at {}; attesting to the KBS", options.cdh_url);
    if (config.kbs_url.empty()) return Fail(Code::kUnavailable, "no confidential data hub answers and initdata names no KBS");
  }
  auto evidence = DetectEvidence(options.evidence);
  if (!evidence) return std::unexpected(evidence.error());
  KbsOptions kbs;
  kbs.url = config.kbs_url;
  kbs.ca_cert_pem = config.kbs_cert_pem;
  kbs.initdata_toml = initdata_toml;
  kbs.key_alg = config.key_alg;
  auto client = KbsClient::Create(std::move(kbs), std::move(*evidence));
  if (!client) return std::unexpected(client.error());
  return (*client)->GetResource(config.resource_path, ctx);
}

Result<std::string> Sha256OfFile(const std::string& path) {
  ScopedFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd) return std::unexpected(ErrnoError("open " + path, errno));
  CHandle<EVP_MD_CTX, EVP_MD_CTX_free> md(EVP_MD_CTX_new());
  EVP_DigestInit_ex(md.get(), EVP_sha256(), nullptr);
  std::vector<char> buffer(1 << 20);
  for (;;) {
    const ssize_t n = ::read(fd.get(), buffer.data(), buffer.size());
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return std::unexpected(ErrnoError("read " + path, errno));
    if (n == 0) break;
    EVP_DigestUpdate(md.get(), buffer.data(), static_cast<std::size_t>(n));
  }
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  EVP_DigestFinal_ex(md.get(), digest, &len);
  static const char* hex = "0123456789abcdef";
  std::string out;
  for (unsigned int i = 0; i < len; ++i) {
    out.push_back(hex[digest[i] >> 4]);
    out.push_back(hex[digest[i] & 15]);
  }
  return out;
}

}  // namespace

Result<bool> IsMemoryBacked(const std::string& dir) {
  struct statfs st{};
  if (::statfs(dir.c_str(), &st) != 0) return std::unexpected(ErrnoError("statfs " + dir, errno));
  const auto type = static_cast<unsigned long>(st.f_type);
  return type == TMPFS_MAGIC || type == RAMFS_MAGIC;
}

int RunLoader(const LoaderOptions& options) {
  // 1. initdata.
  auto encoded = ReadFile(options.initdata_path, 2 * podvm::kMaxInitdataBytes);
  if (!encoded) return Report({kExitUsage, "initdata: " + encoded.error().message});
  podvm::Initdata initdata;
  std::string why;
  if (!podvm::ParseInitdataFile(*encoded, initdata, why)) return Report({kExitUsage, "initdata: " + why});
  auto config = LoaderConfigFromInitdata(initdata);
  if (!config) return Report({kExitUsage, config.error().message});

  // 2. the output stays in memory.
  const std::filesystem::path parent = std::filesystem::path(options.output_path).parent_path();
  const std::string dir = parent.empty() ? std::string(".") : parent.string();
  if (!options.allow_disk_output) {
    auto memory = IsMemoryBacked(dir);
    if (!memory) return Report({kExitOutputNotInMemory, "output directory: " + memory.error().message});
    if (!*memory)
      return Report({kExitOutputNotInMemory, "output directory " + dir +
                                                 " is not tmpfs or ramfs: plaintext would reach a disk "
                                                 "(mount an emptyDir with medium: Memory there)"});
  }

  // 3. the model is for the key the initdata names (a URL starts downloading here).
  auto source = ModelSource::Open(options.model_path, options.model_ca_bundle);
  if (!source) return Report({kExitUsage, source.error().message});
  const auto download_failed = [&]() -> std::optional<int> {
    auto finished = (*source)->Finish();
    if (finished) return std::nullopt;
    return Report({kExitKbsUnreachable, finished.error().message});
  };
  auto header = model::ReadHeader((*source)->fd());
  if (!header) {
    if (auto failed = download_failed()) return *failed;
    return Report({kExitModelRejected, "model " + Shown(options.model_path) + ": " + header.error().message});
  }
  if (header->key_id != config->key_resource)
    return Report({kExitModelRejected, "model " + Shown(options.model_path) + " is encrypted for key '" +
                                           header->key_id + "', but initdata names '" + config->key_resource + "'"});

  // 4. the key.
  auto key = GetKey(options, *config, initdata.toml);
  if (!key) return Report({KeyErrorClass(key.error()), "model key " + config->key_resource + ": " + key.error().message});
  if (key->size() != model::kKeyBytes)
    return Report({kExitModelRejected, "model key " + config->key_resource + " is not 32 bytes"});

  // 5. decrypt into memory; the key is wiped as soon as the decryption ends.
  auto done = model::DecryptBodyToFile(*header, (*source)->fd(), options.output_path, options.mode,
                                       std::span<const std::uint8_t, model::kKeyBytes>(key->data(), model::kKeyBytes),
                                       nullptr);
  key->Clear();
  // A broken download shows as a truncated model: say what really happened.
  if (auto failed = download_failed()) {
    if (done) ::unlink(options.output_path.c_str());
    return *failed;
  }
  if (!done) {
    const int code = done.error().code == Code::kDataLoss || done.error().code == Code::kUnauthenticated ||
                             done.error().code == Code::kInvalidArgument || done.error().code == Code::kUnimplemented
                         ? kExitModelRejected
                         : kExitInternal;
    return Report({code, "model " + Shown(options.model_path) + ": " + done.error().message});
  }
  auto digest = Sha256OfFile(options.output_path);
  if (!digest) return Report({kExitInternal, digest.error().message});
  std::printf("sha256=%s size=%llu path=%s\n", digest->c_str(), static_cast<unsigned long long>(done->plaintext_size),
              options.output_path.c_str());
  std::fflush(stdout);
  return kExitOk;
}

}  // namespace pp::attest
