#include "attest/loader_config.h"

#include <toml++/toml.h>

#include "attest/kbs_client.h"

namespace pp::attest {
namespace {

Result<toml::table> ParseDocument(const podvm::Initdata& initdata, const std::string& name, bool& present) {
  const auto it = initdata.data.find(name);
  present = it != initdata.data.end();
  if (!present) return toml::table{};
  try {
    return toml::parse(it->second);
  } catch (const toml::parse_error& e) {
    return Fail(Code::kInvalidArgument, "initdata ", name, ": not TOML (line ",
                std::to_string(e.source().begin.line), ")");
  }
}

// A string value at `path` (dotted) or nullopt; INVALID_ARGUMENT when present but not a string.
Result<std::optional<std::string>> String(const toml::table& doc, const std::string& doc_name, std::string_view path) {
  const auto node = doc.at_path(path);
  if (!node) return std::optional<std::string>();
  if (!node.is_string()) return Fail(Code::kInvalidArgument, "initdata ", doc_name, ": ", path, " is not a string");
  return std::optional<std::string>(node.value<std::string>());
}

}  // namespace

Result<std::string> ResourcePathOf(std::string_view key_resource) {
  constexpr std::string_view kPrefix = "kbs:///";
  if (!key_resource.starts_with(kPrefix))
    return Fail(Code::kInvalidArgument, "key-resource must be kbs:///<repository>/<type>/<tag>");
  std::string path(key_resource.substr(kPrefix.size()));
  if (auto r = CheckResourcePath(path); !r) return std::unexpected(r.error());
  return path;
}

Result<LoaderConfig> LoaderConfigFromInitdata(const podvm::Initdata& initdata) {
  LoaderConfig config;
  bool present = false;
  auto ours = ParseDocument(initdata, "model-loader.toml", present);
  if (!ours) return std::unexpected(ours.error());
  if (!present) return Fail(Code::kInvalidArgument, "initdata has no \"model-loader.toml\" entry naming the model key");
  const std::string doc = "model-loader.toml";
  auto resource = String(*ours, doc, "key-resource");
  if (!resource) return std::unexpected(resource.error());
  if (!*resource) return Fail(Code::kInvalidArgument, "initdata model-loader.toml: key-resource is missing");
  config.key_resource = **resource;
  auto path = ResourcePathOf(config.key_resource);
  if (!path) return Fail(Code::kInvalidArgument, "initdata model-loader.toml: ", path.error().message);
  config.resource_path = *path;

  auto source = String(*ours, doc, "key-source");
  if (!source) return std::unexpected(source.error());
  if (*source) {
    if (**source == "auto") config.key_source = KeySource::kAuto;
    else if (**source == "cdh") config.key_source = KeySource::kCdh;
    else if (**source == "kbs") config.key_source = KeySource::kKbs;
    else return Fail(Code::kInvalidArgument, "initdata model-loader.toml: key-source must be auto, cdh or kbs");
  }
  auto alg = String(*ours, doc, "tee-key-algorithm");
  if (!alg) return std::unexpected(alg.error());
  if (*alg) {
    auto parsed = ParseKeyAlg(**alg);
    if (!parsed) return Fail(Code::kInvalidArgument, "initdata model-loader.toml: tee-key-algorithm: ", parsed.error().message);
    config.key_alg = *parsed;
  }

  // The KBS: ours, then the attestation agent's, then the data hub's configuration.
  struct Source {
    const char* doc;
    const char* url;
    const char* cert;
  };
  for (const Source& s : {Source{"model-loader.toml", "kbs-url", "kbs-cert"},
                          Source{"aa.toml", "token_configs.kbs.url", "token_configs.kbs.cert"},
                          Source{"cdh.toml", "kbc.url", "kbc.kbs_cert"}}) {
    auto table = ParseDocument(initdata, s.doc, present);
    if (!table) return std::unexpected(table.error());
    auto url = String(*table, s.doc, s.url);
    if (!url) return std::unexpected(url.error());
    if (!*url || (*url)->empty()) continue;
    auto cert = String(*table, s.doc, s.cert);
    if (!cert) return std::unexpected(cert.error());
    config.kbs_url = **url;
    config.kbs_cert_pem = cert->value_or("");
    break;
  }
  if (config.kbs_url.empty() && config.key_source != KeySource::kCdh)
    return Fail(Code::kInvalidArgument,
                "initdata names no KBS (model-loader.toml kbs-url, aa.toml [token_configs.kbs] url or cdh.toml "
                "[kbc] url) and key-source is not \"cdh\"");
  return config;
}

}  // namespace pp::attest
