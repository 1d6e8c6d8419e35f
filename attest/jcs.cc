#include "attest/jcs.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <string_view>
#include <vector>

#include "common/podvm/encoding.h"

namespace pp::attest {
namespace {

// UTF-16 code units of a UTF-8 string, for RFC 8785 section 3.2.3 member ordering.
std::u16string Utf16(std::string_view s) {
  std::u16string out;
  std::size_t i = 0;
  while (i < s.size()) {
    std::uint32_t cp = 0;
    const std::size_t n = podvm::NextUtf8(s, i, cp);
    if (n == 0) break;  // checked before sorting
    i += n;
    if (cp >= 0x10000) {
      cp -= 0x10000;
      out.push_back(static_cast<char16_t>(0xD800 + (cp >> 10)));
      out.push_back(static_cast<char16_t>(0xDC00 + (cp & 0x3FF)));
    } else {
      out.push_back(static_cast<char16_t>(cp));
    }
  }
  return out;
}

const char* AppendString(std::string_view s, std::string& out) {
  if (!podvm::IsValidUtf8(s)) return "jcs: string is not UTF-8";
  out.push_back('"');
  for (const char c : s) {
    const auto u = static_cast<unsigned char>(c);
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\b': out += "\\b"; break;
      case '\f': out += "\\f"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      default:
        if (u < 0x20) {
          char buf[8];
          std::snprintf(buf, sizeof buf, "\\u%04x", u);
          out += buf;
        } else {
          out.push_back(c);
        }
    }
  }
  out.push_back('"');
  return nullptr;
}

// ECMAScript Number::toString (ECMA-262 section 7.1.12.1) from the shortest round-trip digits.
const char* AppendDouble(double v, std::string& out) {
  if (!std::isfinite(v)) return "jcs: number is not finite";
  if (v == 0) {
    out.push_back('0');
    return nullptr;
  }
  if (v < 0) {
    out.push_back('-');
    v = -v;
  }
  char buf[64];
  const auto res = std::to_chars(buf, buf + sizeof buf, v, std::chars_format::scientific);
  const std::string_view sci(buf, static_cast<std::size_t>(res.ptr - buf));
  const std::size_t e_pos = sci.find('e');
  std::string digits;
  for (const char c : sci.substr(0, e_pos))
    if (c != '.') digits.push_back(c);
  const int exp10 = std::stoi(std::string(sci.substr(e_pos + 1)));
  const int k = static_cast<int>(digits.size());
  const int n = exp10 + 1;  // the decimal point sits after n digits
  if (k <= n && n <= 21) {
    out += digits;
    out.append(static_cast<std::size_t>(n - k), '0');
  } else if (0 < n && n <= 21) {
    out += digits.substr(0, static_cast<std::size_t>(n));
    out.push_back('.');
    out += digits.substr(static_cast<std::size_t>(n));
  } else if (-6 < n && n <= 0) {
    out += "0.";
    out.append(static_cast<std::size_t>(-n), '0');
    out += digits;
  } else {
    out.push_back(digits[0]);
    if (k > 1) {
      out.push_back('.');
      out += digits.substr(1);
    }
    out.push_back('e');
    out.push_back(n - 1 >= 0 ? '+' : '-');
    out += std::to_string(std::abs(n - 1));
  }
  return nullptr;
}

const char* Append(const nlohmann::json& v, std::string& out) {
  constexpr std::int64_t kMaxExact = std::int64_t{1} << 53;
  switch (v.type()) {
    case nlohmann::json::value_t::null: out += "null"; return nullptr;
    case nlohmann::json::value_t::boolean: out += v.get<bool>() ? "true" : "false"; return nullptr;
    case nlohmann::json::value_t::string: return AppendString(v.get_ref<const std::string&>(), out);
    case nlohmann::json::value_t::number_integer: {
      const auto i = v.get<std::int64_t>();
      if (i >= kMaxExact || i <= -kMaxExact)
        return "jcs: integer out of the exact double range";
      out += std::to_string(i);
      return nullptr;
    }
    case nlohmann::json::value_t::number_unsigned: {
      const auto u = v.get<std::uint64_t>();
      if (u >= static_cast<std::uint64_t>(kMaxExact))
        return "jcs: integer out of the exact double range";
      out += std::to_string(u);
      return nullptr;
    }
    case nlohmann::json::value_t::number_float: return AppendDouble(v.get<double>(), out);
    case nlohmann::json::value_t::array: {
      out.push_back('[');
      bool first = true;
      for (const auto& e : v) {
        if (!first) out.push_back(',');
        first = false;
        if (const char* e2 = Append(e, out)) return e2;
      }
      out.push_back(']');
      return nullptr;
    }
    case nlohmann::json::value_t::object: {
      std::vector<std::pair<std::u16string, const std::string*>> keys;
      for (const auto& [key, _] : v.items()) {
        if (!podvm::IsValidUtf8(key)) return "jcs: key is not UTF-8";
      }
      for (auto it = v.begin(); it != v.end(); ++it) keys.emplace_back(Utf16(it.key()), &it.key());
      std::sort(keys.begin(), keys.end());
      out.push_back('{');
      bool first = true;
      for (const auto& [_, key] : keys) {
        if (!first) out.push_back(',');
        first = false;
        if (const char* e2 = AppendString(*key, out)) return e2;
        out.push_back(':');
        if (const char* e2 = Append(v.at(*key), out)) return e2;
      }
      out.push_back('}');
      return nullptr;
    }
    default: return "jcs: unsupported JSON value (binary or discarded)";
  }
}

}  // namespace

bool Canonicalize(const nlohmann::json& value, std::string& out, std::string& error) {
  out.clear();
  if (const char* e = Append(value, out)) {
    out.clear();
    error = e;
    return false;
  }
  return true;
}

}  // namespace pp::attest
