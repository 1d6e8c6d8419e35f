#include "forwarder/pool_mode.h"

#include <openssl/evp.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <csignal>
#include <filesystem>

#include "common/base/file.h"
#include "common/podvm/initdata.h"
#include "common/podvm/pool_config.h"
#include "common/tls/context.h"
#include "common/tls/settings.h"
#include "forwarder/pod_network.h"
#include "forwarder/process_user_data.h"

namespace pp::forwarder {
namespace {

namespace v1 = peerpods::provision::v1;

bool Exists(const std::string& path) {
  std::error_code ec;
  return std::filesystem::exists(std::filesystem::symlink_status(path, ec));
}

// Files of the allow-list that the VM's services read once, at boot.
constexpr std::string_view kReadAtBoot[] = {"aa.toml", "cdh.toml", "policy.rego",
                                            "scratch-space.marker"};

std::string InitdataPath(const ForwarderFlags& flags) { return flags.output_dir + "/initdata"; }

// The TOML document inside the content of an initdata file (base64(gzip(TOML))).
Result<std::string> DecodeInitdata(std::string_view encoded, const std::string& where) {
  podvm::Initdata initdata;
  std::string error;
  if (!podvm::ParseInitdataFile(encoded, initdata, error)) {
    return Fail(Code::kInvalidArgument, where, ": ", error);
  }
  return std::move(initdata.toml);
}

Error InFile(const std::string& file, std::string_view key, const Error& error) {
  return Error{error.code, file + ": " + std::string(key) + ": " + error.message};
}

// The provisioning server's context from pool.json, each part checked on its own so that an error
// names the key.
Result<std::shared_ptr<asio::ssl::context>> PoolServerTls(const podvm::PoolConfig& pool,
                                                          const std::string& file) {
  if (auto ok = tls::CheckCertificatesPem(pool.tls_client_ca, "the CA certificate"); !ok) {
    return std::unexpected(InFile(file, "tls-client-ca", ok.error()));
  }
  if (auto ok = tls::CheckCertificatesPem(pool.tls_server_cert, "the certificate"); !ok) {
    return std::unexpected(InFile(file, "tls-server-cert", ok.error()));
  }
  if (auto ok = tls::CheckPrivateKeyPem(pool.tls_server_key, "the private key"); !ok) {
    return std::unexpected(InFile(file, "tls-server-key", ok.error()));
  }
  auto settings = tls::ParseTlsSettingsList(pool.tls_min_version, {});
  if (!settings) return std::unexpected(InFile(file, "tls-min-version", settings.error()));
  // OpenSSL's default verification applies the client purpose to the peer's chain (RFC 5280
  // extendedKeyUsage): a certificate the CA issued for a server cannot be used to claim.
  auto context = tls::MakeServerContext(
      {pool.tls_client_ca, pool.tls_server_cert, pool.tls_server_key}, *settings);
  if (!context) {
    return std::unexpected(InFile(file, "tls-server-cert, tls-server-key", context.error()));
  }
  return context;
}

}  // namespace

bool IsPoolMode(const ForwarderFlags& flags) {
  return !Exists(flags.config_path) && Exists(flags.pool_config_path);
}

std::string InitdataDigest(const std::string& toml) {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int size = 0;
  if (EVP_Digest(toml.data(), toml.size(), digest, &size, EVP_sha256(), nullptr) != 1) return "";
  static constexpr char kHex[] = "0123456789abcdef";
  std::string text = "sha256:";
  for (unsigned int i = 0; i < size; ++i) {
    text += kHex[digest[i] >> 4];
    text += kHex[digest[i] & 0xf];
  }
  return text;
}

provision::ClaimHandler MakeClaimHandler(ForwarderFlags flags,
                                         std::optional<std::string> booted_initdata) {
  return [flags = std::move(flags),
          booted = std::move(booted_initdata)](const v1::ClaimRequest& request) -> Result<void> {
    auto plan = PlanFromText(request.user_data());
    if (!plan) return Fail(Code::kInvalidArgument, "claim: ", plan.error().message);
    auto find = [&](std::string_view name) -> const PlannedFile* {
      const auto it = std::find_if(plan->files.begin(), plan->files.end(),
                                   [&](const PlannedFile& f) { return f.name == name; });
      return it == plan->files.end() ? nullptr : &*it;
    };
    const PlannedFile* apf = find("apf.json");
    if (apf == nullptr) {
      return Fail(Code::kInvalidArgument,
                  "claim: the user-data has no /run/peerpod/apf.json; nothing written");
    }
    if (find("pool.json") != nullptr) {
      return Fail(Code::kInvalidArgument,
                  "claim: the user-data carries a pool.json; a claim delivers a pod's apf.json; "
                  "nothing written");
    }
    std::optional<std::string> delivered;
    if (const PlannedFile* initdata = find("initdata")) {
      auto toml = DecodeInitdata(initdata->bytes, "claim: initdata");
      if (!toml) return std::unexpected(toml.error());
      delivered = std::move(*toml);
    }
    if (delivered != booted) {
      return Fail(Code::kFailedPrecondition,
                  "initdata differs from what this VM was launched with: it is measured at launch");
    }
    // Files that services read once at boot (the attestation agent, the CDH, the agent's policy,
    // the scratch disk setup) already ran with what the pool VM booted with; a claim must not
    // make this VM differ from a fresh one that would have booted with the claim's.
    for (const std::string_view name : kReadAtBoot) {
      const PlannedFile* planned = find(name);
      auto on_disk = ReadFile(flags.output_dir + "/" + std::string(name), kMaxFileBytes);
      if (!on_disk && on_disk.error().code != Code::kNotFound) {
        return std::unexpected(on_disk.error());
      }
      const bool same = planned == nullptr ? !on_disk : on_disk && *on_disk == planned->bytes;
      if (!same) {
        return Fail(Code::kFailedPrecondition, name,
                    " differs from what this VM was launched with: it was read at boot; nothing "
                    "written");
      }
    }
    // The apf.json must serve once written: a claim that would leave a forwarder unable to start
    // is refused while the VM can still be claimed by a correct one.
    if (auto usable = ForwarderOptionsFromApf(flags, &apf->bytes); !usable) {
      return Fail(Code::kInvalidArgument, "claim: ", usable.error().message, "; nothing written");
    }
    if (auto written = WritePlan(flags.output_dir, *plan); !written) {
      return std::unexpected(written.error());
    }
    for (const PlannedFile& file : plan->files) {
      spdlog::info("claim: wrote {}/{} ({} bytes)", flags.output_dir, file.name, file.bytes.size());
    }
    // The pool credential has done its job; the pod's own replaces it.
    if (::unlink(flags.pool_config_path.c_str()) != 0 && errno != ENOENT) {
      spdlog::error("claim: cannot remove {}: {}", flags.pool_config_path,
                    std::generic_category().message(errno));
    }
    return {};
  };
}

Result<std::unique_ptr<PoolMode>> PoolMode::Create(asio::any_io_executor executor,
                                                   const ForwarderFlags& flags) {
  namespace fs = std::filesystem;
  if (fs::path(flags.config_path).lexically_normal() !=
      (fs::path(flags.output_dir) / "apf.json").lexically_normal()) {
    return Fail(Code::kInvalidArgument, "pool mode: -config (", flags.config_path,
                ") must be <-output-dir>/apf.json (", flags.output_dir,
                "/apf.json), where a claim writes it");
  }
  auto listen = ParseListenAddress(flags.listen);
  if (!listen) return std::unexpected(listen.error());
  auto text = ReadFile(flags.pool_config_path, podvm::kMaxPoolConfigBytes);
  if (!text) return std::unexpected(text.error());
  podvm::PoolConfig pool;
  std::string error;
  if (!podvm::ParsePoolConfig(*text, pool, error)) {
    constexpr std::string_view kPrefix = "pool.json: ";
    if (error.starts_with(kPrefix)) error.erase(0, kPrefix.size());
    return Fail(Code::kInvalidArgument, flags.pool_config_path, ": ", error);
  }
  provision::ProvisionServerOptions options;
  options.listen = *listen;
  options.pool_vm = pool.pool_vm;
  if (!flags.disable_tls) {
    auto tls = PoolServerTls(pool, flags.pool_config_path);
    if (!tls) return std::unexpected(tls.error());
    options.tls = std::move(*tls);
  }
  std::optional<std::string> booted;
  auto encoded = ReadFile(InitdataPath(flags), podvm::kMaxInitdataBytes * 2);
  if (encoded) {
    auto toml = DecodeInitdata(*encoded, InitdataPath(flags));
    if (!toml) return std::unexpected(toml.error());
    options.initdata_digest = InitdataDigest(*toml);
    booted = std::move(*toml);
  } else if (encoded.error().code != Code::kNotFound) {
    return std::unexpected(encoded.error());
  }
  return std::unique_ptr<PoolMode>(
      new PoolMode(std::move(executor), flags, std::move(options), std::move(booted)));
}

PoolMode::PoolMode(asio::any_io_executor executor, ForwarderFlags flags,
                   provision::ProvisionServerOptions options,
                   std::optional<std::string> booted_initdata)
    : executor_(executor),
      flags_(flags),
      provisioning_(executor, std::move(options),
                    MakeClaimHandler(std::move(flags), std::move(booted_initdata))) {}

PoolMode::~PoolMode() = default;

Result<asio::ip::tcp::endpoint> PoolMode::Listen() { return provisioning_.Listen(); }

asio::awaitable<Result<asio::ip::tcp::endpoint>> PoolMode::Run() {
  auto claimed = co_await provisioning_.WaitForClaim();
  if (!claimed) co_return std::unexpected(claimed.error());
  if (shut_down_) co_return Fail(Code::kCancelled, "shut down after the claim");
  // From here on exactly what a forwarder started with this apf.json does.
  podvm::ApfConfig apf;
  auto options = BuildForwarderOptions(flags_, &apf);
  if (!options) co_return std::unexpected(options.error());
  PodNetworkOptions network;
  network.pod_netns = options->pod_netns;
  network.host_interface = flags_.host_interface;
  // Blocks this thread briefly: nothing else is served until the forwarder starts.
  auto built = SetUpPodNetwork(apf, network);
  if (!built) co_return std::unexpected(built.error());
  if (*built) spdlog::info("{}", DescribePodNetwork(**built));
  if (!options->tls) {
    spdlog::warn("TLS IS DISABLED: anyone who reaches {} can drive the kata-agent", flags_.listen);
  }
  forwarder_ = std::make_unique<Forwarder>(executor_, std::move(*options));
  co_return co_await forwarder_->Start();
}

void PoolMode::Shutdown() {
  if (shut_down_) return;
  shut_down_ = true;
  provisioning_.Shutdown();
  if (forwarder_) forwarder_->Shutdown();
}

asio::awaitable<void> PoolMode::Stop() {
  Shutdown();
  co_await provisioning_.Stop();
}

int RunPoolMode(const ForwarderFlags& flags, std::ostream& err) {
  asio::io_context io(1);
  auto pool = PoolMode::Create(io.get_executor(), flags);
  if (!pool) {
    err << "agent-protocol-forwarder: " << pool.error().message << "\n";
    return 2;
  }
  if (flags.disable_tls) {
    spdlog::warn("TLS IS DISABLED: anyone who reaches {} can claim this pool VM", flags.listen);
  }
  if (auto listening = (*pool)->Listen(); !listening) {
    err << "agent-protocol-forwarder: " << listening.error().message << "\n";
    return 1;
  }
  int status = 0;
  asio::co_spawn(
      io,
      [&]() -> asio::awaitable<void> {
        auto bound = co_await (*pool)->Run();
        if (!bound && bound.error().code != Code::kCancelled) {
          err << "agent-protocol-forwarder: " << bound.error().message << "\n";
          status = 1;
          io.stop();
        }
      },
      asio::detached);
  asio::signal_set signals(io, SIGINT, SIGTERM);
  signals.async_wait([&](std::error_code ec, int) {
    if (ec) return;
    spdlog::info("shutting down");
    (*pool)->Shutdown();
    io.stop();
  });
  io.run();
  return status;
}

}  // namespace pp::forwarder
