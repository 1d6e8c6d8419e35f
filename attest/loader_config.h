// What the model loader learns from initdata: which KBS, trusting which CA, and which resource is
// the model key. Initdata is measured into the TEE (TDX MRCONFIGID, SNP HOST_DATA) and sent to the
// KBS in /attest, so none of this can be changed by the host without the KBS seeing it.
//
// Sources, in the initdata TOML's [data] map (CoCo kbs/docs/initdata.md):
//   "model-loader.toml" (ours):
//       key-resource = "kbs:///default/model-key/llama"   # required; must equal the model's key id
//       key-source   = "auto" | "cdh" | "kbs"              # optional, default "auto"
//       kbs-url      = "https://kbs.example:8080"          # optional, overrides the two below
//       tee-key-algorithm = "ECDH-ES+A256KW" | "RSA-OAEP-256"   # optional
//   "aa.toml" (attestation agent): [token_configs.kbs] url = "...", cert = "<PEM>"
//   "cdh.toml" (confidential data hub): [kbc] url = "...", kbs_cert = "<PEM>"
// The KBS URL comes from model-loader.toml, else aa.toml, else cdh.toml (the first that has one);
// its CA from the same document.
#pragma once

#include <string>

#include "attest/jwe.h"
#include "common/base/error.h"
#include "common/podvm/initdata.h"

namespace pp::attest {

enum class KeySource { kAuto, kCdh, kKbs };

struct LoaderConfig {
  std::string key_resource;  // "kbs:///default/model-key/llama", as in the model header
  std::string resource_path; // "default/model-key/llama"
  KeySource key_source = KeySource::kAuto;
  std::string kbs_url;       // may be empty when key_source is cdh
  std::string kbs_cert_pem;
  KeyAlg key_alg = KeyAlg::kEcdhEsA256kw;
};

// The resource path of a "kbs:///<repository>/<type>/<tag>" URI; INVALID_ARGUMENT otherwise.
Result<std::string> ResourcePathOf(std::string_view key_resource);

// INVALID_ARGUMENT naming the document and key at fault (never a value: a CA or URL may be
// confidential) when model-loader.toml is missing or wrong, or no KBS URL is given while
// key-source is not "cdh".
Result<LoaderConfig> LoaderConfigFromInitdata(const podvm::Initdata& initdata);

}  // namespace pp::attest
