#include "common/base/go_flags.h"

#include <CLI/CLI.hpp>
#include <charconv>
#include <cstdlib>
#include <iostream>
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

void GoFlagDefaults(CLI::App& app) {
  app.option_defaults()->multi_option_policy(CLI::MultiOptionPolicy::TakeLast);
}

int ParseGoCommandLine(CLI::App& app, int argc, const char* const* argv, std::vector<std::string>* args_out,
                       std::ostream* out_stream, std::ostream* err_stream) {
  std::ostream& out = out_stream ? *out_stream : std::cout;
  std::ostream& err = err_stream ? *err_stream : std::cerr;
  const auto args = NormalizeGoFlags(argc, argv);
  if (args_out) *args_out = args;
  std::vector<const char*> cargs;
  for (const auto& a : args) cargs.push_back(a.c_str());
  try {
    app.parse(static_cast<int>(cargs.size()), cargs.data());
  } catch (const CLI::CallForHelp&) {
    out << app.help();
    return 0;
  } catch (const CLI::CallForAllHelp&) {
    out << app.help("", CLI::AppFormatMode::All);
    return 0;
  } catch (const CLI::CallForVersion&) {
    out << app.version() << "\n";
    return 0;
  } catch (const CLI::ParseError& e) {
    err << app.get_name() << ": " << e.what() << "\nRun with --help for usage.\n";
    return 2;
  } catch (const std::exception& e) {
    err << app.get_name() << ": " << e.what() << "\n";
    return 2;
  }
  return -1;
}

std::string FlagOrEnvName(const std::vector<std::string>& args, std::string_view flag, std::string_view env) {
  const std::string dashed = "--" + std::string(flag);
  for (const auto& a : args) {
    if (a == "--") break;
    if (a == dashed || a.starts_with(dashed + "=")) return "-" + std::string(flag);
  }
  if (!env.empty() && std::getenv(std::string(env).c_str()) != nullptr) return std::string(env);
  return "-" + std::string(flag);
}

Result<unsigned long long> ParseUnsignedFlag(std::string_view text, unsigned long long min, unsigned long long max,
                                             std::string_view name) {
  unsigned long long n = 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), n);
  if (text.empty() || ec == std::errc::invalid_argument || end != text.data() + text.size()) {
    const std::string shown(text.substr(0, 32));
    return Fail(Code::kInvalidArgument, std::string(name), ": \"", shown, "\" is not a number");
  }
  if (ec == std::errc::result_out_of_range || n < min || n > max) {
    return Fail(Code::kInvalidArgument, std::string(name), ": ", std::string(text), " is out of range (",
                std::to_string(min), " to ", std::to_string(max), ")");
  }
  return n;
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
