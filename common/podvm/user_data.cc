#include "common/podvm/user_data.h"

#include <yaml-cpp/eventhandler.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cstdint>
#include <exception>
#include <set>
#include <sstream>

#include "common/podvm/encoding.h"

namespace pp::podvm {
namespace {

constexpr std::string_view kHeader = "#cloud-config";
constexpr std::string_view kBinaryTag = "tag:yaml.org,2002:binary";

bool Fail(std::string& error, const std::string& where, const std::string& what) {
  error = "user-data: " + (where.empty() ? "" : where + ": ") + what;
  return false;
}

bool HasHeader(std::string_view text) {
  std::string_view line = text.substr(0, text.find('\n'));
  while (!line.empty() && (line.back() == '\r' || line.back() == ' ' || line.back() == '\t'))
    line.remove_suffix(1);
  return line == kHeader;
}

// cloud-init lower-cases and trims the encoding name.
std::string Canonical(std::string_view name) {
  std::string out;
  for (const char c : name)
    out.push_back(static_cast<char>(std::tolower(static_cast<unsigned char>(c))));
  const auto first = out.find_first_not_of(" \t");
  if (first == std::string::npos) return {};
  return out.substr(first, out.find_last_not_of(" \t") - first + 1);
}

enum class EncodingName { kPlain, kBase64, kGzipBase64, kGzip, kUnknown };

EncodingName ClassifyEncoding(std::string_view raw) {
  const std::string name = Canonical(raw);
  if (name.empty() || name == "text/plain") return EncodingName::kPlain;
  if (name == "b64" || name == "base64") return EncodingName::kBase64;
  if (name == "gz+b64" || name == "gzip+base64" || name == "gz+base64" || name == "gzip+b64") {
    return EncodingName::kGzipBase64;
  }
  if (name == "gz" || name == "gzip") return EncodingName::kGzip;
  return EncodingName::kUnknown;
}

// A scalar value (or null, which reads as ""). False for sequences and mappings.
bool ScalarText(const YAML::Node& node, const std::string& where, std::string& out,
                std::string& error) {
  if (node.IsNull()) {
    out.clear();
    return true;
  }
  if (!node.IsScalar()) return Fail(error, where, "must be a single value, not a list or mapping");
  out = node.Scalar();
  return true;
}

bool ParseEntry(const YAML::Node& entry, const std::string& where, WriteFile& file,
                std::vector<std::string>& notes, std::string& error) {
  if (!entry.IsMap()) return Fail(error, where, "must be a mapping with path and content");
  std::set<std::string> seen;
  std::string encoding;
  bool binary = false;
  bool has_path = false;
  for (const auto& kv : entry) {
    if (!kv.first.IsScalar()) return Fail(error, where, "keys must be plain strings");
    const std::string key = kv.first.Scalar();
    const std::string at = where + "." + Printable(key);
    if (!seen.insert(key).second) return Fail(error, at, "appears twice");
    const YAML::Node& value = kv.second;
    if (key == "path") {
      if (!ScalarText(value, at, file.path, error)) return false;
      has_path = true;
    } else if (key == "content") {
      if (!ScalarText(value, at, file.content, error)) return false;
      binary = value.Tag() == kBinaryTag;
    } else if (key == "encoding") {
      if (!ScalarText(value, at, encoding, error)) return false;
    } else if (key == "owner") {
      if (!ScalarText(value, at, file.owner, error)) return false;
    } else if (key == "permissions") {
      if (!ScalarText(value, at, file.permissions, error)) return false;
      unsigned mode = 0;
      std::string why;
      if (!file.permissions.empty() && !ParsePermissions(file.permissions, mode, why))
        return Fail(error, at, why);
    } else if (key == "append" || key == "defer") {
      std::string text;
      bool flag = false;
      if (!ScalarText(value, at, text, error)) return false;
      if (!value.IsNull() && !YAML::convert<bool>::decode(value, flag))
        return Fail(error, at, "must be true or false");
      if (key == "append") {
        file.append = flag;
      } else if (flag) {
        notes.push_back("user-data: " + at + ": ignored (files are written at once)");
      }
    } else if (key == "source") {
      return Fail(error, at,
                  "downloading content from a URL is not supported; put the bytes in content");
    } else {
      notes.push_back("user-data: ignoring unknown key " + at);
    }
  }
  if (!has_path || file.path.empty()) return Fail(error, where, "has no path");
  switch (ClassifyEncoding(encoding)) {
    case EncodingName::kPlain:
      file.encoding = binary ? ContentEncoding::kBase64 : ContentEncoding::kPlain;
      break;
    case EncodingName::kBase64:
      if (binary)
        return Fail(error, where + ".encoding", "b64 on !!binary content would decode twice");
      file.encoding = ContentEncoding::kBase64;
      break;
    case EncodingName::kGzipBase64:
      if (binary)
        return Fail(error, where + ".encoding", "gz+b64 on !!binary content would decode twice");
      file.encoding = ContentEncoding::kGzipBase64;
      break;
    case EncodingName::kGzip:
      // Raw gzip bytes cannot be YAML text unless the content is !!binary (which is base64).
      if (!binary)
        return Fail(error, where + ".encoding", "gzip content must be base64 too: use gz+b64");
      file.encoding = ContentEncoding::kGzipBase64;
      break;
    case EncodingName::kUnknown:
      return Fail(
          error, where + ".encoding",
          "unknown encoding \"" + Printable(encoding) + "\" (use b64, gz+b64 or leave it out)");
  }
  return true;
}

bool ParseDocument(const YAML::Node& root, UserData& out, std::string& error) {
  if (!root.IsDefined() || root.IsNull()) return true;  // just the header: nothing to write
  if (!root.IsMap()) return Fail(error, "", "the document must be a mapping (key: value)");
  bool seen_write_files = false;
  std::size_t total_content = 0;
  for (const auto& kv : root) {
    if (!kv.first.IsScalar()) return Fail(error, "", "top-level keys must be plain strings");
    const std::string key = kv.first.Scalar();
    if (key != "write_files") {
      out.notes.push_back("user-data: ignoring top-level key " + Printable(key));
      continue;
    }
    if (seen_write_files) return Fail(error, "write_files", "appears twice");
    seen_write_files = true;
    const YAML::Node& list = kv.second;
    if (list.IsNull()) continue;
    if (!list.IsSequence()) return Fail(error, "write_files", "must be a list");
    if (list.size() > kMaxWriteFiles) {
      return Fail(error, "write_files",
                  std::to_string(list.size()) + " entries, more than the limit of " +
                      std::to_string(kMaxWriteFiles));
    }
    for (std::size_t i = 0; i < list.size(); ++i) {
      WriteFile file;
      if (!ParseEntry(list[i], "write_files[" + std::to_string(i) + "]", file, out.notes, error))
        return false;
      // Aliases can repeat one large scalar; bound what the entries add up to.
      total_content += file.content.size();
      if (total_content > kMaxUserDataBytes) {
        return Fail(error, "write_files",
                    "contents add up to more than " + std::to_string(kMaxUserDataBytes) + " bytes");
      }
      out.write_files.push_back(std::move(file));
    }
  }
  return true;
}

// Ignores every event: only used to count documents.
class NullHandler : public YAML::EventHandler {
 public:
  void OnDocumentStart(const YAML::Mark&) override {}
  void OnDocumentEnd() override {}
  void OnNull(const YAML::Mark&, YAML::anchor_t) override {}
  void OnAlias(const YAML::Mark&, YAML::anchor_t) override {}
  void OnScalar(const YAML::Mark&, const std::string&, YAML::anchor_t,
                const std::string&) override {}
  void OnSequenceStart(const YAML::Mark&, const std::string&, YAML::anchor_t,
                       YAML::EmitterStyle::value) override {}
  void OnSequenceEnd() override {}
  void OnMapStart(const YAML::Mark&, const std::string&, YAML::anchor_t,
                  YAML::EmitterStyle::value) override {}
  void OnMapEnd() override {}
};

// The number of documents in `text`, counting at most `limit`. Not YAML::LoadAll: yaml-cpp 0.7
// loops forever allocating on some malformed streams (a stray ',' at the top level, yaml-cpp
// issue #1040, fixed upstream in 2024 by a bounded loop like this one).
int CountDocuments(const std::string& text, int limit) {
  std::istringstream in(text);
  YAML::Parser parser(in);
  NullHandler handler;
  int documents = 0;
  while (documents < limit && parser.HandleNextDocument(handler)) ++documents;
  return documents;
}

// --- rendering ---

// A YAML double-quoted scalar on one line; everything outside printable ASCII is escaped, so the
// output is ASCII and means the same to every YAML 1.1/1.2 parser. Invalid UTF-8 becomes U+FFFD.
std::string Quote(std::string_view text) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out = "\"";
  std::uint32_t cp = 0;
  for (std::size_t i = 0; i < text.size();) {
    std::size_t n = NextUtf8(text, i, cp);
    if (n == 0) {
      cp = 0xFFFD;
      n = 1;
    }
    i += n;
    if (cp == '"' || cp == '\\') {
      out.push_back('\\');
      out.push_back(static_cast<char>(cp));
    } else if (cp >= 0x20 && cp < 0x7F) {
      out.push_back(static_cast<char>(cp));
    } else if (cp == '\n') {
      out += "\\n";
    } else if (cp == '\t') {
      out += "\\t";
    } else if (cp < 0x100) {
      out += "\\x";
      out.push_back(kHex[cp >> 4]);
      out.push_back(kHex[cp & 15]);
    } else {
      const int digits = cp > 0xFFFF ? 8 : 4;
      out += digits == 8 ? "\\U" : "\\u";
      for (int d = digits - 1; d >= 0; --d) out.push_back(kHex[cp >> (4 * d) & 15]);
    }
  }
  out.push_back('"');
  return out;
}

// Whether `text` can be a literal block ('|' or '|-') that reads back byte for byte: printable
// characters and newlines only (no tabs, CR or YAML 1.1 line breaks), a first line that does not
// start with a space, no trailing spaces, at most one final newline.
bool LiteralSafe(std::string_view text) {
  if (text.empty() || text.front() == ' ' || text.front() == '\n') return false;
  if (text.size() >= 2 && text.substr(text.size() - 2) == "\n\n") return false;
  std::uint32_t cp = 0;
  for (std::size_t i = 0; i < text.size();) {
    const std::size_t n = NextUtf8(text, i, cp);
    if (n == 0) return false;
    if (cp == '\n') {
      if (i > 0 && text[i - 1] == ' ') return false;
    } else if (cp < 0x20 || cp == 0x7F || (cp >= 0x80 && cp < 0xA0) || cp == 0x2028 ||
               cp == 0x2029 || cp == 0xFEFF || cp == 0xFFFE || cp == 0xFFFF) {
      return false;
    }
    i += n;
  }
  return text.back() != ' ';
}

void AppendContent(std::string& out, std::string_view content) {
  constexpr std::string_view kIndent = "      ";
  if (!LiteralSafe(content)) {
    out += "    content: " + Quote(content) + "\n";
    return;
  }
  const bool final_newline = content.back() == '\n';
  out += final_newline ? "    content: |\n" : "    content: |-\n";
  if (final_newline) content.remove_suffix(1);
  for (std::size_t start = 0;;) {
    const std::size_t end = std::min(content.find('\n', start), content.size());
    const std::string_view line = content.substr(start, end - start);
    if (!line.empty()) out += kIndent;
    out += line;
    out += '\n';
    if (end == content.size()) break;
    start = end + 1;
  }
}

std::string WrapBase64(std::string_view bytes) {
  const std::string b64 = Base64Encode(bytes);
  std::string out;
  for (std::size_t i = 0; i < b64.size(); i += 76) out += b64.substr(i, 76) + "\n";
  return out;
}

}  // namespace

bool ParseUserData(std::string_view text, UserData& out, std::string& error) {
  out = UserData{};
  if (text.size() > kMaxUserDataBytes) {
    return Fail(error, "",
                std::to_string(text.size()) + " bytes is more than the limit of " +
                    std::to_string(kMaxUserDataBytes));
  }
  if (!HasHeader(text)) return Fail(error, "", "the first line must be \"#cloud-config\"");
  try {
    const std::string document(text);
    if (CountDocuments(document, 2) > 1) {
      return Fail(
          error, "",
          "not a single YAML document (several documents, or a stray ',' at the top level)");
    }
    return ParseDocument(YAML::Load(document), out, error);
  } catch (const YAML::Exception& e) {
    // yaml-cpp's messages give line and column, never the document's text.
    return Fail(error, "", std::string("malformed YAML: ") + e.what());
  } catch (const std::exception& e) {
    return Fail(error, "", std::string("cannot parse: ") + e.what());
  }
}

bool DecodeContent(const WriteFile& file, std::size_t max_bytes, std::string& out,
                   std::string& error) {
  out.clear();
  switch (file.encoding) {
    case ContentEncoding::kPlain:
      if (file.content.size() > max_bytes) {
        error = std::to_string(file.content.size()) + " bytes, more than the limit of " +
                std::to_string(max_bytes);
        return false;
      }
      out = file.content;
      return true;
    case ContentEncoding::kBase64:
      return Base64Decode(file.content, max_bytes, out, error);
    case ContentEncoding::kGzipBase64: {
      std::string compressed;
      return Base64Decode(file.content, kMaxUserDataBytes, compressed, error) &&
             GzipDecompress(compressed, max_bytes, out, error);
    }
  }
  error = "unknown encoding";
  return false;
}

bool ParsePermissions(std::string_view text, unsigned& mode, std::string& error) {
  std::string_view digits = text;
  if (digits.size() > 2 && digits[0] == '0' && (digits[1] == 'o' || digits[1] == 'O'))
    digits.remove_prefix(2);
  const bool octal =
      std::all_of(digits.begin(), digits.end(), [](char c) { return c >= '0' && c <= '7'; });
  if (!octal || digits.size() < 3 || digits.size() > 4) {
    // Appended piece by piece: GCC 12 at -O3 misreads `"\"" + std::string` as overlapping copies
    // (-Wrestrict, GCC bug 105329).
    error.assign(1, '"');
    error.append(Printable(text));
    error.append("\" is not an octal mode like \"0600\"");
    return false;
  }
  mode = 0;
  for (const char c : digits) mode = mode * 8 + static_cast<unsigned>(c - '0');
  return true;
}

std::string RenderUserData(const std::vector<WriteFile>& files) {
  std::string out = "#cloud-config\nwrite_files:";
  if (files.empty()) return out + " []\n";
  out += "\n";
  for (const WriteFile& file : files) {
    ContentEncoding encoding = file.encoding;
    std::string content = file.content;
    if (encoding == ContentEncoding::kPlain && !IsValidUtf8(content)) {
      encoding = ContentEncoding::kBase64;
      content = WrapBase64(content);
    }
    out += "  - path: " + Quote(file.path) + "\n";
    if (encoding == ContentEncoding::kBase64) out += "    encoding: b64\n";
    if (encoding == ContentEncoding::kGzipBase64) out += "    encoding: gz+b64\n";
    if (!file.owner.empty()) out += "    owner: " + Quote(file.owner) + "\n";
    if (!file.permissions.empty()) out += "    permissions: " + Quote(file.permissions) + "\n";
    if (file.append) out += "    append: true\n";
    AppendContent(out, content);
  }
  return out;
}

}  // namespace pp::podvm
