// The confidential model loader (peerpods-model-loader): runs in the pod VM (an init container or a
// boot unit), gets the model key released by a KBS to this attested TEE and decrypts the model into
// memory-backed storage the inference container mounts.
//
// Steps, each failing closed with one line on stderr and an exit status per reason class:
//   1. read and parse the initdata (/run/peerpod/initdata: base64(gzip(TOML))) -> which KBS, which key;
//   2. check that the output directory is tmpfs or ramfs (statfs f_type), so no plaintext reaches a disk;
//   3. read the model header (no key needed) and check its key id equals the initdata's key-resource:
//      the host, which supplies the model, cannot make us open it with another released key;
//   4. get the key: through the confidential data hub's local endpoint when it answers (key-source
//      auto/cdh), else by attesting to the KBS ourselves (RCAR, kbs_client.h);
//   5. decrypt with model::DecryptBodyToFile (plaintext released only once the whole file
//      authenticated, mode 0440 by default), wipe the key, print "sha256=<hex> size=<bytes> path=<out>".
#pragma once

#include <sys/types.h>

#include <chrono>
#include <string>

#include "attest/evidence.h"

namespace pp::attest {

// Exit statuses (also documented in --help).
enum ExitCode : int {
  kExitOk = 0,
  kExitInternal = 1,           // I/O or an unexpected failure
  kExitUsage = 2,              // flags, initdata or model-loader.toml wrong
  kExitAttestationRefused = 3, // no TEE, evidence refused, policy denied, key not found
  kExitKbsUnreachable = 4,     // KBS/CDH or model URL down, 5xx after retries, deadline, garbled KBS answer
  kExitModelRejected = 5,      // model tampered, not our format, key id mismatch, wrong key
  kExitOutputNotInMemory = 6,  // output directory is not tmpfs/ramfs
};

struct LoaderOptions {
  std::string initdata_path = "/run/peerpod/initdata";
  std::string model_path;   // the encrypted model: a file, "-" (standard input) or an http(s) URL
  std::string model_ca_bundle;  // CA bundle for an https model URL; empty: the system store
  std::string output_path;  // the plaintext, in a memory-backed directory
  mode_t mode = 0440;
  bool allow_disk_output = false;  // skip the tmpfs/ramfs check (never in production)
  std::string cdh_url = "http://127.0.0.1:8006";
  std::chrono::seconds timeout{300};  // for getting the key
  EvidenceOptions evidence;
};

// Runs the loader; returns the exit status. Writes the result line to stdout and one reason line to
// stderr on failure. Never logs key bytes.
int RunLoader(const LoaderOptions& options);

// Whether `dir` is on tmpfs or ramfs; errors from statfs.
Result<bool> IsMemoryBacked(const std::string& dir);

}  // namespace pp::attest
