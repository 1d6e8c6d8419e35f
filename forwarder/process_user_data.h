// process-user-data's core: from a cloud-config document to the files under /run/peerpod.
//
// Only an allow-list of names may be written, each with a fixed maximum mode:
//   from write_files (path /run/peerpod/<name>):
//     apf.json (0600, must parse as apf.json), auth.json (0600, a JSON object),
//     initdata (0600, base64(gzip(TOML)) that parses as initdata), aa.toml and cdh.toml (0600,
//     TOML), scratch-space.marker (0644), pool.json (0600, must parse as pool.json; a pool VM's
//     boot configuration, never together with apf.json)
//   from initdata's [data] table: aa.toml, cdh.toml, policy.rego (0600); other keys are skipped
//     with a note; these win over write_files entries of the same name (initdata is the measured
//     source)
//   derived: initdata.digest (0644), HASH(algorithm) of the initdata TOML as lower-case hex.
// The TLS material travels inside apf.json (tls-server-key, tls-server-cert, tls-client-ca), as in
// cloud-api-adaptor, so there are no separate certificate files.
//
// Policy: all or nothing. Every entry is validated first and every problem is reported in one
// error; if there is any, nothing is written. Refused: paths outside /run/peerpod, `..`,
// sub-directories, names off the allow-list, the same path twice, `append: true`, bad encodings,
// bad permission strings, a file over kMaxFileBytes, all files over kMaxTotalBytes, content that
// fails its format check. A requested mode can only tighten the allow-list's mode.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

#include "common/base/error.h"
#include "common/podvm/user_data.h"

namespace pp::forwarder {

inline constexpr std::string_view kPeerpodDir = "/run/peerpod";
inline constexpr std::size_t kMaxFileBytes = 256 * 1024;    // one file from write_files
inline constexpr std::size_t kMaxTotalBytes = 1024 * 1024;  // everything one run writes

struct PlannedFile {
  std::string name;   // a name on the allow-list, e.g. "apf.json"
  std::string bytes;  // exactly what the file will contain
  unsigned mode = 0600;
};

struct Plan {
  std::vector<PlannedFile> files;  // at most one per name
  std::vector<std::string> notes;  // things ignored or adjusted, for the log (never contents)
};

// Validates `user_data` and decides what to write. INVALID_ARGUMENT listing every problem.
Result<Plan> PlanFromUserData(const podvm::UserData& user_data);

// ParseUserData + PlanFromUserData.
Result<Plan> PlanFromText(std::string_view user_data_text);

// For a VM whose /run/peerpod/initdata was written by someone else (cloud-init): the files that
// initdata yields plus initdata.digest, not initdata itself.
Result<Plan> PlanFromInitdata(std::string_view encoded_initdata);

// Writes every planned file into `dir` (created if missing): each goes to a temporary file opened
// relative to the directory with O_NOFOLLOW|O_EXCL, is fsync'ed, and is renamed over its name only
// after all temporaries were written; so a symlink planted at a name is replaced, never followed,
// and a failure while staging leaves the directory as it was.
Result<void> WritePlan(const std::string& dir, const Plan& plan);

}  // namespace pp::forwarder
