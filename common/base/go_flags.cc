#include "common/base/go_flags.h"

#include <charconv>
#include <cmath>
#include <cctype>

namespace pp {

std::vector<std::string> NormalizeGoFlags(int argc, const char* const* argv) {
  std::vector<std::string> out;
  bool rest = false;
  for (int i = 0; i < argc; ++i) {
    std::string arg = argv[i];
    if (i > 0 && !rest) {
      if (arg == "--") {
        rest = true;
      } else if (arg.size() > 2 && arg[0] == '-' && arg[1] != '-' && !std::isdigit(static_cast<unsigned char>(arg[1]))) {
        arg = "-" + arg;
      }
    }
    out.push_back(std::move(arg));
  }
  return out;
}

Result<std::chrono::nanoseconds> ParseGoDuration(std::string_view text) {
  const std::string original(text);
  if (text == "0") return std::chrono::nanoseconds(0);
  if (text.empty()) return Fail(Code::kInvalidArgument, "empty duration");
  if (text.front() == '-') return Fail(Code::kInvalidArgument, "duration \"", original, "\" is negative");
  if (text.front() == '+') text.remove_prefix(1);
  long double total = 0;
  while (!text.empty()) {
    std::size_t i = 0;
    while (i < text.size() && (std::isdigit(static_cast<unsigned char>(text[i])) || text[i] == '.')) ++i;
    if (i == 0) return Fail(Code::kInvalidArgument, "duration \"", original, "\": expected a number");
    long double number = 0;
    const auto [end, ec] = std::from_chars(text.data(), text.data() + i, number);
    if (ec != std::errc() || end != text.data() + i) {
      return Fail(Code::kInvalidArgument, "duration \"", original, "\": bad number");
    }
    text.remove_prefix(i);
    std::size_t j = 0;
    while (j < text.size() && !std::isdigit(static_cast<unsigned char>(text[j])) && text[j] != '.') ++j;
    const std::string_view unit = text.substr(0, j);
    text.remove_prefix(j);
    long double scale = 0;
    if (unit == "ns") scale = 1;
    else if (unit == "us" || unit == "\u00b5s") scale = 1e3;
    else if (unit == "ms") scale = 1e6;
    else if (unit == "s") scale = 1e9;
    else if (unit == "m") scale = 60e9;
    else if (unit == "h") scale = 3600e9;
    else return Fail(Code::kInvalidArgument, "duration \"", original, "\": unknown unit \"", std::string(unit), "\" (use ns, us, ms, s, m, h)");
    total += number * scale;
  }
  if (total > 9.2e18L) return Fail(Code::kInvalidArgument, "duration \"", original, "\" is too long");
  return std::chrono::nanoseconds(static_cast<long long>(std::llround(total)));
}

}  // namespace pp
