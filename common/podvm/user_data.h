// Cloud-config user-data: the `#cloud-config` YAML document whose `write_files` list carries the
// pod VM's configuration (apf.json, initdata, auth.json, ...) from the adaptor into the VM.
//
// The adaptor renders it (RenderUserData), the VM parses it (ParseUserData, then DecodeContent for
// each entry). Only `write_files` is understood; other top-level keys (for cloud-init itself) are
// ignored with a note. Standard library + yaml-cpp + zlib only (no pp::base) so the fuzz target can
// build it with clang; yaml-cpp's exceptions never leave this file.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

namespace pp::podvm {

// Upper bound on a user-data document; larger input is refused before parsing.
inline constexpr std::size_t kMaxUserDataBytes = 1024 * 1024;
// Upper bound on the number of write_files entries.
inline constexpr std::size_t kMaxWriteFiles = 64;

// How `content` is encoded in the document (cloud-init's `encoding:` key).
enum class ContentEncoding {
  kPlain,       // absent, "text/plain"
  kBase64,      // "b64", "base64" (also a `!!binary` tagged content)
  kGzipBase64,  // "gz+b64", "gzip+base64", "gz+base64", "gzip+b64"
};

// One `write_files` entry as written in the document.
struct WriteFile {
  std::string path;
  std::string content;  // as in the document, i.e. still encoded per `encoding`
  ContentEncoding encoding = ContentEncoding::kPlain;
  std::string owner;  // "" when absent
  std::string
      permissions;  // "" when absent; otherwise as written, e.g. "0600" (see ParsePermissions)
  bool append = false;
  friend bool operator==(const WriteFile&, const WriteFile&) = default;
};

struct UserData {
  std::vector<WriteFile> write_files;
  std::vector<std::string> notes;  // keys that were ignored, one line each
};

// Parses a `#cloud-config` document (first line "#cloud-config"). On success fills `out`; on
// failure returns false with a reason in `error` that names the entry ("write_files[2].permissions:
// ..."). Refused: more than kMaxUserDataBytes, a missing header, malformed YAML, several YAML
// documents, a non-mapping top level, `write_files` that is not a list of mappings, an entry
// without `path`, non-scalar values, unknown encodings, `source:` (URL downloads), more than
// kMaxWriteFiles entries. Content is not decoded here (see DecodeContent).
bool ParseUserData(std::string_view text, UserData& out, std::string& error);

// The bytes `file` describes: its content decoded per its encoding, at most `max_bytes` (for gzip,
// after decompression). False with a reason in `error` and `out` empty on bad base64, bad gzip or
// too many bytes.
bool DecodeContent(const WriteFile& file, std::size_t max_bytes, std::string& out,
                   std::string& error);

// Parses an octal permission string as cloud-init writes it: "600", "0600", "0o600" (3 or 4 octal
// digits after the optional prefix, at most 07777). False with a reason in `error` otherwise.
bool ParsePermissions(std::string_view text, unsigned& mode, std::string& error);

// Renders a `#cloud-config` document with one `write_files` entry per element, in order.
// Content is written as a YAML literal block when it is plain readable text, as a double-quoted
// scalar otherwise; plain content that is not UTF-8 (which YAML cannot carry) is base64-encoded
// and marked `encoding: b64`. ParseUserData + DecodeContent give back every entry's path, owner,
// permissions, append flag and decoded bytes.
std::string RenderUserData(const std::vector<WriteFile>& files);

}  // namespace pp::podvm
