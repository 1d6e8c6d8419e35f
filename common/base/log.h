// Logging for every binary: one line per event on standard error, as text or as JSON.
//
// Levels: trace, debug, info, warn (or warning), error; also critical and off. Text lines are
// "[time] [level] message"; JSON lines are {"time":"...","level":"...","msg":"..."} with the
// message escaped per RFC 8259, one object per line, for log collectors. Standard output stays free
// for what a command prints as its result.
#pragma once

#include <spdlog/spdlog.h>

#include <string_view>

#include "common/base/error.h"

namespace pp {

// What a line about one sandbox carries besides its message: the sandbox id and its pod
// ("namespace/name"). In JSON they are the keys "sandbox" and "pod" (present only on such lines); in
// text the pod shows as a "[pod namespace/name] " prefix (the message names the sandbox already).
struct LogFields {
  std::string_view sandbox;
  std::string_view pod;
};

// While alive, every line this thread logs carries `fields`. The default logger formats in the
// calling thread, so the scope may be one statement or one synchronous function; never keep one
// across a coroutine suspension (the coroutine may resume on another thread). Nests: the previous
// fields come back at the end of the scope.
class ScopedLogFields {
 public:
  explicit ScopedLogFields(LogFields fields);
  ~ScopedLogFields();
  ScopedLogFields(const ScopedLogFields&) = delete;
  ScopedLogFields& operator=(const ScopedLogFields&) = delete;

 private:
  const LogFields* previous_;
  LogFields fields_;
};

// One line about a sandbox, from anywhere (a coroutine included).
template <typename... Args>
void LogSandbox(spdlog::level::level_enum level, std::string_view sandbox, std::string_view pod,
                spdlog::format_string_t<Args...> format, Args&&... args) {
  const ScopedLogFields fields({sandbox, pod});
  spdlog::log(level, format, std::forward<Args>(args)...);
}

// Checks a level and a format; `level_name` and `format_name` say what supplied each (a flag or
// an environment variable) in the INVALID_ARGUMENT message.
Result<void> CheckLogOptions(std::string_view level, std::string_view format, std::string_view level_name,
                             std::string_view format_name);

// Sends the default logger to standard error with `level` and `format` (checked values).
void ConfigureLogging(std::string_view level, std::string_view format);

}  // namespace pp
