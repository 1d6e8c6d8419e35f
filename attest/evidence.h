// Evidence: what proves to a KBS that our key pair lives in a TEE. One interface, three sources:
//   tdx    - a TD quote from configfs-tsm (provider "tdx_guest")
//   snp    - an SEV-SNP attestation report from configfs-tsm (provider "sev_guest")
//   sample - Trustee's hardware-less test TEE (trustee deps/verifier/src/sample): no signature at
//            all, so a KBS with its default resource policy refuses it; only when explicitly allowed.
//
// configfs-tsm (Linux >= 6.7, Documentation/ABI/testing/configfs-tsm): mkdir <root>/report/<name>,
// write up to 64 bytes to inblob, read outblob (and provider), rmdir. The root is a parameter
// (default /sys/kernel/config/tsm) so tests can use a directory of their own.
//
// Collect() is safe to call from one thread at a time per object.
#pragma once

#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

#include "common/base/error.h"

namespace pp::attest {

inline constexpr std::size_t kReportDataBytes = 64;

class Evidence {
 public:
  virtual ~Evidence() = default;

  // The kbs-types `tee` name sent in /auth: "tdx", "snp" or "sample".
  virtual std::string_view Tee() const = 0;

  // The `primary_evidence` object for /attest, binding `report_data` (exactly 64 bytes):
  //   tdx    {"quote":"<base64 quote>","cc_eventlog":null}
  //   snp    {"attestation_report":"<base64 report>","cert_chain":null}  (raw report, see README)
  //   sample {"svn":"1","report_data":"<base64 report_data>"}
  // UNAVAILABLE when the TEE interface fails; nothing is left behind in configfs.
  virtual Result<nlohmann::json> Collect(std::string_view report_data) = 0;
};

struct EvidenceOptions {
  std::string tsm_root = "/sys/kernel/config/tsm";
  // Permit the sample TEE when no TEE is found. Off by default: a production loader must never
  // fall back to unsigned evidence without being told to.
  bool allow_sample = false;
  // Use the sample TEE even if a real one is present (tests only).
  bool force_sample = false;
  // Tests only: called right after an entry is made under <tsm_root>/report, so that a plain
  // directory can be given the attributes configfs would create (provider, inblob, outblob, ...).
  std::function<void(const std::string& entry)> on_entry_created;
};

// The evidence source of this machine: configfs-tsm when <tsm_root>/report exists and a probe entry
// names a known provider; else the sample TEE when allowed (logging a warning); else
// FAILED_PRECONDITION naming what was looked for and the flag that allows the sample TEE.
Result<std::unique_ptr<Evidence>> DetectEvidence(const EvidenceOptions& options);

std::unique_ptr<Evidence> MakeSampleEvidence();

}  // namespace pp::attest
