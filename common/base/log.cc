#include "common/base/log.h"

#include <spdlog/pattern_formatter.h>
#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>

#include <array>
#include <memory>

namespace pp {
namespace {

thread_local const LogFields* current_fields = nullptr;

void AppendJsonEscaped(std::string_view text, spdlog::memory_buf_t& dest);

// JSON: `,"sandbox":"...","pod":"..."` on a line logged inside a ScopedLogFields, else nothing.
class JsonFieldsFlag final : public spdlog::custom_flag_formatter {
 public:
  void format(const spdlog::details::log_msg&, const std::tm&, spdlog::memory_buf_t& dest) override {
    if (current_fields == nullptr) return;
    dest.append(std::string_view(R"(,"sandbox":")"));
    AppendJsonEscaped(current_fields->sandbox, dest);
    dest.append(std::string_view(R"(","pod":")"));
    AppendJsonEscaped(current_fields->pod, dest);
    dest.push_back('"');
  }
  std::unique_ptr<custom_flag_formatter> clone() const override { return std::make_unique<JsonFieldsFlag>(); }
};

// Text: "[pod namespace/name] " on a line logged inside a ScopedLogFields with a pod.
class TextFieldsFlag final : public spdlog::custom_flag_formatter {
 public:
  void format(const spdlog::details::log_msg&, const std::tm&, spdlog::memory_buf_t& dest) override {
    if (current_fields == nullptr || current_fields->pod.empty()) return;
    dest.append(std::string_view("[pod "));
    for (const char c : current_fields->pod) dest.push_back(static_cast<unsigned char>(c) < 0x20 ? '?' : c);
    dest.append(std::string_view("] "));
  }
  std::unique_ptr<custom_flag_formatter> clone() const override { return std::make_unique<TextFieldsFlag>(); }
};

constexpr std::array<std::string_view, 8> kLevels = {"trace", "debug", "info",     "warn",
                                                     "warning", "error", "critical", "off"};

spdlog::level::level_enum LevelOf(std::string_view level) {
  if (level == "warning") return spdlog::level::warn;
  return spdlog::level::from_str(std::string(level));
}

// The message as a JSON string body (RFC 8259 section 7): quote, backslash and control characters
// escaped; other bytes as they are (log messages are UTF-8).
// `text` as a JSON string body (RFC 8259 section 7): quote, backslash and control characters
// escaped; other bytes as they are (log messages are UTF-8).
void AppendJsonEscaped(std::string_view text, spdlog::memory_buf_t& dest) {
  static constexpr char kHex[] = "0123456789abcdef";
  for (const char c : text) {
    const auto u = static_cast<unsigned char>(c);
    if (c == '"' || c == '\\') {
      dest.push_back('\\');
      dest.push_back(c);
    } else if (c == '\n') {
      dest.append(std::string_view("\\n"));
    } else if (c == '\t') {
      dest.append(std::string_view("\\t"));
    } else if (u < 0x20 || u == 0x7f) {
      const char esc[] = {'\\', 'u', '0', '0', kHex[u >> 4], kHex[u & 15]};
      dest.append(esc, esc + sizeof esc);
    } else {
      dest.push_back(c);
    }
  }
}

// The message as a JSON string body.
class JsonMessageFlag final : public spdlog::custom_flag_formatter {
 public:
  void format(const spdlog::details::log_msg& msg, const std::tm&, spdlog::memory_buf_t& dest) override {
    AppendJsonEscaped(std::string_view(msg.payload.data(), msg.payload.size()), dest);
  }
  std::unique_ptr<custom_flag_formatter> clone() const override { return std::make_unique<JsonMessageFlag>(); }
};

}  // namespace

ScopedLogFields::ScopedLogFields(LogFields fields) : previous_(current_fields), fields_(fields) {
  current_fields = &fields_;
}

ScopedLogFields::~ScopedLogFields() { current_fields = previous_; }

Result<void> CheckLogOptions(std::string_view level, std::string_view format, std::string_view level_name,
                             std::string_view format_name) {
  bool known = false;
  for (auto l : kLevels) known = known || l == level;
  if (!known) {
    return Fail(Code::kInvalidArgument, std::string(level_name), ": unknown log level \"", std::string(level),
                "\"; use trace, debug, info, warn (or warning), error");
  }
  if (format != "text" && format != "json") {
    return Fail(Code::kInvalidArgument, std::string(format_name), ": unknown log format \"", std::string(format),
                "\"; use text or json");
  }
  return {};
}

void ConfigureLogging(std::string_view level, std::string_view format) {
  auto logger = std::make_shared<spdlog::logger>("", std::make_shared<spdlog::sinks::stderr_sink_mt>());
  if (format == "json") {
    auto formatter = std::make_unique<spdlog::pattern_formatter>(spdlog::pattern_time_type::utc);
    formatter->add_flag<JsonMessageFlag>('*').add_flag<JsonFieldsFlag>('&').set_pattern(
        R"({"time":"%Y-%m-%dT%H:%M:%S.%fZ","level":"%l","msg":"%*"%&})");
    logger->set_formatter(std::move(formatter));
  } else {
    // spdlog's default pattern, with the pod of a line about a sandbox before the message.
    auto formatter = std::make_unique<spdlog::pattern_formatter>();
    formatter->add_flag<TextFieldsFlag>('&').set_pattern("[%Y-%m-%d %H:%M:%S.%e] [%l] %&%v");
    logger->set_formatter(std::move(formatter));
  }
  logger->set_level(LevelOf(level));
  spdlog::set_default_logger(std::move(logger));
}

}  // namespace pp
