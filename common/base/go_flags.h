// Go-style command lines, for binaries that keep CAA's flag syntax: "-name value", "-name=value"
// and Go durations ("5m", "1h30m").
#pragma once

#include <chrono>
#include <string>
#include <string_view>
#include <vector>

#include "common/base/error.h"

namespace pp {

// Go's flag package accepts "-name value" and "-name=value"; CLI11 wants "--name". Rewrites every
// single-dash argument of two or more characters (until "--") to its double-dash form.
std::vector<std::string> NormalizeGoFlags(int argc, const char* const* argv);

// Go duration syntax: "300ms", "1.5h", "2h45m", "10s"; a bare "0" is zero. Negative is refused.
Result<std::chrono::nanoseconds> ParseGoDuration(std::string_view text);

}  // namespace pp
