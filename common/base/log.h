// Logging for every binary: one line per event on standard error, as text or as JSON.
//
// Levels: trace, debug, info, warn (or warning), error; also critical and off. Text lines are
// "[time] [level] message"; JSON lines are {"time":"...","level":"...","msg":"..."} with the
// message escaped per RFC 8259, one object per line, for log collectors. Standard output stays free
// for what a command prints as its result.
#pragma once

#include <string_view>

#include "common/base/error.h"

namespace pp {

// Checks a level and a format; `level_name` and `format_name` say what supplied each (a flag or
// an environment variable) in the INVALID_ARGUMENT message.
Result<void> CheckLogOptions(std::string_view level, std::string_view format, std::string_view level_name,
                             std::string_view format_name);

// Sends the default logger to standard error with `level` and `format` (checked values).
void ConfigureLogging(std::string_view level, std::string_view format);

}  // namespace pp
