// Go-style command lines, for binaries that keep CAA's flag syntax: "-name value", "-name=value"
// and Go durations ("5m", "1h30m").
#pragma once

#include <chrono>
#include <iosfwd>
#include <string>
#include <string_view>
#include <vector>

#include "common/base/error.h"

namespace CLI {
class App;
}

namespace pp {

// Go's flag package accepts "-name value" and "-name=value"; CLI11 wants "--name". Rewrites every
// single-dash argument of two or more characters (until "--") to its double-dash form.
std::vector<std::string> NormalizeGoFlags(int argc, const char* const* argv);

// Makes `app` behave like Go's flag package where CAA's users would notice: a flag given twice
// keeps its last value. Call before adding options (subcommands made later inherit it).
void GoFlagDefaults(CLI::App& app);

// Parses a Go-style command line into `app` (NormalizeGoFlags, then CLI11). Returns -1 when the
// program should go on, or the exit code: 0 after --help (printed to stdout), 2 for a bad command
// line (the message and a hint go to stderr), as Go's flag package exits. Never throws.
// `out` and `err` default to std::cout and std::cerr.
int ParseGoCommandLine(CLI::App& app, int argc, const char* const* argv, std::vector<std::string>* args = nullptr,
                       std::ostream* out = nullptr, std::ostream* err = nullptr);

// "-name" when the command line gave it, else "NAME" when that environment variable is set, else
// "-name": what supplied a value, for error messages.
std::string FlagOrEnvName(const std::vector<std::string>& args, std::string_view flag, std::string_view env);

// A whole decimal number in [min, max]; messages say "<name>: \"abc\" is not a number" or
// "<name>: 0 is out of range (1 to 65535)".
Result<unsigned long long> ParseUnsignedFlag(std::string_view text, unsigned long long min, unsigned long long max,
                                             std::string_view name);

// Go duration syntax: "300ms", "1.5h", "2h45m", "10s"; a bare "0" is zero. Negative is refused.
Result<std::chrono::nanoseconds> ParseGoDuration(std::string_view text);

}  // namespace pp
