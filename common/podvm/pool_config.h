// pool.json: the boot configuration of a pool VM, a pod VM started ahead of demand with no pod
// identity. It holds only what the VM needs to accept one claim from the adaptor over mutual TLS
// (proto/provision.proto): its name, the pool server credential and the CA the adaptor's client
// certificate chains to. The adaptor renders it (SerializePoolConfig) into the pool VM's user-data
// instead of apf.json; process-user-data validates it before writing /run/peerpod/pool.json; the
// forwarder parses it at start when there is no apf.json, and deletes it once a claim succeeded.
//
// Standard library + nlohmann-json only (no pp::base), so the fuzz target can build it with clang.
// Parse errors name the offending key and never quote values (the TLS key lives in this file).
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace pp::podvm {

inline constexpr char kPoolConfigPath[] = "/run/peerpod/pool.json";
// Upper bound on a pool.json document; larger input is refused before parsing.
inline constexpr std::size_t kMaxPoolConfigBytes = 256 * 1024;

struct PoolConfig {
  std::string pool_vm;          // "pool-vm": the VM's name, which its server certificate names
  std::string tls_server_cert;  // "tls-server-cert": PEM
  std::string tls_server_key;   // "tls-server-key": PEM (secret)
  std::string tls_client_ca;    // "tls-client-ca": PEM, the CA of the adaptor's client certificate
  std::string tls_min_version;  // "tls-min-version": "" | "VersionTLS12" | "VersionTLS13"
  friend bool operator==(const PoolConfig&, const PoolConfig&) = default;
};

// Renders `config` as a JSON object (keys in declaration order, "tls-min-version" only when set),
// pretty-printed. ParsePoolConfig(SerializePoolConfig(c)) yields c for every c it can produce.
std::string SerializePoolConfig(const PoolConfig& config);

// Parses a pool.json document. On success fills `out` and returns true. On failure returns false,
// `error` says what is wrong and where ("pool.json: tls-server-key: must be a string, not number"),
// and `out` is unspecified. Required and non-empty: "pool-vm" (letters, digits, '.', '-', '_', at
// most 253 bytes: a DNS name the certificate can carry), "tls-server-cert", "tls-server-key",
// "tls-client-ca". Unknown keys are an error (this file has one writer, the adaptor). null counts
// as absent.
bool ParsePoolConfig(std::string_view text, PoolConfig& out, std::string& error);

}  // namespace pp::podvm
