// Initdata (CoCo spec kbs/docs/initdata.md 0.1.0, reference/cc.md section 3.7) as it reaches the
// pod VM: the file /run/peerpod/initdata holds base64(gzip(TOML)) where the TOML document is
//   version = "0.1.0"
//   algorithm = "sha256" | "sha384" | "sha512"
//   [data]
//   "aa.toml" = '''...'''   # any string -> string map
//
// Its digest is HASH(algorithm) over the exact bytes of the decoded TOML document, written as
// lower-case hex to /run/peerpod/initdata.digest (what cloud-api-adaptor does; the attester pads or
// truncates it per TEE).
//
// Standard library + toml++ + zlib + OpenSSL only (no pp::base), so the fuzz target can build it.
#pragma once

#include <cstddef>
#include <map>
#include <string>
#include <string_view>

namespace pp::podvm {

// Upper bound on the decoded TOML document.
inline constexpr std::size_t kMaxInitdataBytes = 512 * 1024;

struct Initdata {
  std::string toml;       // the decoded document, byte for byte
  std::string version;    // "0.1.0"
  std::string algorithm;  // "sha256" | "sha384" | "sha512"
  std::map<std::string, std::string> data;
  std::string digest_hex;  // HASH(algorithm)(toml), lower-case hex
};

// Decodes the content of /run/peerpod/initdata (base64 text, whitespace allowed, of a gzip stream
// of the TOML document) and parses it. False with a reason in `error` on bad base64 or gzip, a
// document larger than kMaxInitdataBytes, TOML syntax errors, a version other than "0.1.0", an
// algorithm other than sha256/sha384/sha512, or a `data` value that is not a string.
bool ParseInitdataFile(std::string_view encoded, Initdata& out, std::string& error);

// Parses a decoded TOML document (same checks as above, minus the decoding).
bool ParseInitdataToml(std::string_view toml, Initdata& out, std::string& error);

// Whether `text` is a syntactically valid TOML document (for aa.toml and cdh.toml). False with the
// position and reason (never the text) in `error`.
bool CheckToml(std::string_view text, std::string& error);

// base64(gzip(toml)): what the adaptor writes into user-data for /run/peerpod/initdata.
std::string EncodeInitdata(std::string_view toml);

}  // namespace pp::podvm
