#include "common/podvm/encoding.h"

#include <zlib.h>

#include <array>
#include <climits>
#include <cstdint>

namespace pp::podvm {
namespace {

constexpr char kAlphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

constexpr std::array<std::int8_t, 256> MakeDecodeTable() {
  std::array<std::int8_t, 256> table{};
  for (auto& v : table) v = -1;
  for (int i = 0; i < 64; ++i)
    table[static_cast<unsigned char>(kAlphabet[i])] = static_cast<std::int8_t>(i);
  return table;
}
constexpr auto kDecode = MakeDecodeTable();

bool IsSpace(char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; }

// zlib's z_stream owns heap state until inflateEnd/deflateEnd.
struct InflateStream {
  z_stream zs{};
  bool ok = false;
  InflateStream() { ok = inflateInit2(&zs, 15 + 16) == Z_OK; }  // 16: gzip wrapper only
  ~InflateStream() {
    if (ok) inflateEnd(&zs);
  }
  InflateStream(const InflateStream&) = delete;
  InflateStream& operator=(const InflateStream&) = delete;
};

}  // namespace

std::string Base64Encode(std::string_view bytes) {
  std::string out;
  out.reserve((bytes.size() + 2) / 3 * 4);
  std::size_t i = 0;
  auto at = [&](std::size_t k) {
    return static_cast<std::uint32_t>(static_cast<unsigned char>(bytes[k]));
  };
  for (; i + 3 <= bytes.size(); i += 3) {
    const std::uint32_t v = at(i) << 16 | at(i + 1) << 8 | at(i + 2);
    out.push_back(kAlphabet[v >> 18 & 63]);
    out.push_back(kAlphabet[v >> 12 & 63]);
    out.push_back(kAlphabet[v >> 6 & 63]);
    out.push_back(kAlphabet[v & 63]);
  }
  if (const std::size_t rest = bytes.size() - i; rest > 0) {
    const std::uint32_t v = at(i) << 16 | (rest == 2 ? at(i + 1) << 8 : 0);
    out.push_back(kAlphabet[v >> 18 & 63]);
    out.push_back(kAlphabet[v >> 12 & 63]);
    out.push_back(rest == 2 ? kAlphabet[v >> 6 & 63] : '=');
    out.push_back('=');
  }
  return out;
}

namespace {

bool Base64DecodeInto(std::string_view text, std::size_t max_bytes, std::string& out,
                      std::string& error) {
  out.clear();
  std::string s;
  s.reserve(text.size());
  for (const char c : text) {
    if (!IsSpace(c)) s.push_back(c);
  }
  if (s.size() % 4 != 0) {
    error = "base64: length is not a multiple of 4 (truncated, or padding missing)";
    return false;
  }
  const std::size_t groups = s.size() / 4;
  if (groups > 0) {
    const std::size_t pad = (s[s.size() - 1] == '=') + (s[s.size() - 2] == '=');
    if (groups * 3 - pad > max_bytes) {
      error = "base64: decodes to " + std::to_string(groups * 3 - pad) +
              " bytes, more than the limit of " + std::to_string(max_bytes);
      return false;
    }
  }
  out.reserve(groups * 3);
  for (std::size_t g = 0; g < groups; ++g) {
    const bool last = g + 1 == groups;
    std::uint32_t v = 0;
    int real = 0;
    for (int k = 0; k < 4; ++k) {
      const char c = s[g * 4 + static_cast<std::size_t>(k)];
      if (c == '=') {
        // Only the last one or two characters of the last group may be padding.
        if (!last || k < 2 || (k == 2 && s[g * 4 + 3] != '=')) {
          error = "base64: misplaced '=' at character " +
                  std::to_string(g * 4 + static_cast<std::size_t>(k));
          return false;
        }
        v <<= 6;
        continue;
      }
      const int d = kDecode[static_cast<unsigned char>(c)];
      if (d < 0) {
        error = "base64: invalid character at position " +
                std::to_string(g * 4 + static_cast<std::size_t>(k));
        return false;
      }
      v = v << 6 | static_cast<std::uint32_t>(d);
      ++real;
    }
    // real == 2 -> 1 byte, 3 -> 2 bytes, 4 -> 3 bytes; the bits below them must be zero.
    if ((real == 2 && (v & 0xFFFF) != 0) || (real == 3 && (v & 0xFF) != 0)) {
      error = "base64: non-zero bits in the final character (not canonical base64)";
      return false;
    }
    out.push_back(static_cast<char>(v >> 16 & 0xFF));
    if (real >= 3) out.push_back(static_cast<char>(v >> 8 & 0xFF));
    if (real == 4) out.push_back(static_cast<char>(v & 0xFF));
  }
  return true;
}

}  // namespace

bool Base64Decode(std::string_view text, std::size_t max_bytes, std::string& out,
                  std::string& error) {
  if (Base64DecodeInto(text, max_bytes, out, error)) return true;
  out.clear();
  return false;
}

std::string GzipCompress(std::string_view bytes) {
  z_stream zs{};
  if (deflateInit2(&zs, Z_DEFAULT_COMPRESSION, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK)
    return {};
  std::string out;
  out.resize(deflateBound(&zs, static_cast<uLong>(bytes.size())));
  // zlib's API is not const-correct; deflate only reads next_in.
  zs.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(bytes.data()));
  zs.avail_in = static_cast<uInt>(bytes.size());
  zs.next_out = reinterpret_cast<Bytef*>(out.data());
  zs.avail_out = static_cast<uInt>(out.size());
  const int rc = deflate(&zs, Z_FINISH);
  out.resize(rc == Z_STREAM_END ? zs.total_out : 0);
  deflateEnd(&zs);
  return out;
}

bool GzipDecompress(std::string_view data, std::size_t max_bytes, std::string& out,
                    std::string& error) {
  out.clear();
  if (data.size() > UINT_MAX) {
    error = "gzip: input too large";
    return false;
  }
  InflateStream stream;
  if (!stream.ok) {
    error = "gzip: cannot initialise zlib";
    return false;
  }
  z_stream& zs = stream.zs;
  zs.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(data.data()));
  zs.avail_in = static_cast<uInt>(data.size());
  char buffer[16 * 1024];
  for (;;) {
    zs.next_out = reinterpret_cast<Bytef*>(buffer);
    zs.avail_out = sizeof buffer;
    const int rc = inflate(&zs, Z_NO_FLUSH);
    const std::size_t produced = sizeof buffer - zs.avail_out;
    if (out.size() + produced > max_bytes) {
      error =
          "gzip: decompresses to more than the limit of " + std::to_string(max_bytes) + " bytes";
      out.clear();
      return false;
    }
    out.append(buffer, produced);
    if (rc == Z_STREAM_END) break;
    if (rc == Z_OK) continue;
    if (rc == Z_BUF_ERROR && zs.avail_in == 0) {
      error = "gzip: data is truncated";
    } else {
      error = "gzip: corrupt data (" + std::string(zs.msg != nullptr ? zs.msg : "not gzip") + ")";
    }
    out.clear();
    return false;
  }
  if (zs.avail_in != 0) {
    error = "gzip: " + std::to_string(zs.avail_in) + " unexpected bytes after the gzip stream";
    out.clear();
    return false;
  }
  return true;
}

std::size_t NextUtf8(std::string_view text, std::size_t i, std::uint32_t& cp) {
  const auto b0 = static_cast<unsigned char>(text[i]);
  if (b0 < 0x80) {
    cp = b0;
    return 1;
  }
  std::size_t len = 0;
  std::uint32_t min = 0;
  if ((b0 & 0xE0) == 0xC0) {
    len = 2, cp = b0 & 0x1F, min = 0x80;
  } else if ((b0 & 0xF0) == 0xE0) {
    len = 3, cp = b0 & 0x0F, min = 0x800;
  } else if ((b0 & 0xF8) == 0xF0) {
    len = 4, cp = b0 & 0x07, min = 0x10000;
  } else {
    return 0;
  }
  if (i + len > text.size()) return 0;
  for (std::size_t k = 1; k < len; ++k) {
    const auto b = static_cast<unsigned char>(text[i + k]);
    if ((b & 0xC0) != 0x80) return 0;
    cp = cp << 6 | (b & 0x3F);
  }
  if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return 0;
  return len;
}

bool IsValidUtf8(std::string_view text) {
  std::uint32_t cp = 0;
  for (std::size_t i = 0; i < text.size();) {
    const std::size_t n = NextUtf8(text, i, cp);
    if (n == 0) return false;
    i += n;
  }
  return true;
}

std::string Printable(std::string_view text, std::size_t max, bool mask_quotes) {
  std::string out;
  for (const char c : text.substr(0, max)) {
    const auto u = static_cast<unsigned char>(c);
    out.push_back(u >= 0x20 && u < 0x7F && !(mask_quotes && c == '"') ? c : '?');
  }
  if (text.size() > max) out += "...";
  return out;
}

}  // namespace pp::podvm
