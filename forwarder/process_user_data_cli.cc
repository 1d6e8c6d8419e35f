#include "forwarder/process_user_data_cli.h"

#include <spdlog/spdlog.h>

#include <CLI/CLI.hpp>
#include <chrono>
#include <cmath>
#include <cstdio>

#include "common/base/file.h"
#include "common/base/go_flags.h"
#include "common/podvm/encoding.h"
#include "common/podvm/user_data.h"
#include "forwarder/process_user_data.h"
#include "forwarder/user_data_source.h"

#ifndef PP_VERSION
#define PP_VERSION "0.0.0"
#endif

namespace pp::forwarder {
namespace {

using std::chrono::milliseconds;

constexpr milliseconds kMaxAttemptTime{30'000};

// A device or a metadata service may come up after us: those are retried for -t seconds.
Result<std::string> ReadRemoteSource(const ProcessUserDataOptions& options,
                                     const std::string& what) {
  std::function<Result<std::string>(milliseconds)> read;
  if (!options.cidata.empty()) {
    read = [&](milliseconds) { return ReadCidataUserData(options.cidata); };
  } else {
    read = [&](milliseconds remaining) {
      return FetchUserDataUrl(options.url, options.headers, std::min(remaining, kMaxAttemptTime));
    };
  }
  const auto delay = milliseconds(std::llround(options.retry_delay_seconds * 1000));
  return ReadWithRetry(
      read, std::chrono::seconds(options.timeout_seconds), delay, [&](const Error& error) {
        spdlog::warn("user-data from {} not available yet, retrying in {} s: {}", what,
                     options.retry_delay_seconds, error.message);
      });
}

Result<std::string> ReadSource(const ProcessUserDataOptions& options) {
  Result<std::string> text;
  std::string what;
  if (!options.user_data_file.empty()) {
    // A local file is there or it is not: nothing comes of waiting for it.
    what = options.user_data_file;
    text = ReadUserDataFile(options.user_data_file);
    if (!text && text.error().code == Code::kNotFound) {
      return Fail(Code::kNotFound, "-user-data-file ", what,
                  " does not exist (a local file is read once; -t retries only -cidata and -url)");
    }
  } else {
    what = options.cidata.empty() ? options.url : options.cidata;
    text = ReadRemoteSource(options, what);
  }
  if (!text || !options.base64) return text;
  std::string decoded;
  std::string error;
  if (!podvm::Base64Decode(*text, podvm::kMaxUserDataBytes, decoded, error)) {
    return Fail(Code::kInvalidArgument, "user-data from ", what,
                " is not base64 (-base64 was given): ", error);
  }
  return decoded;
}

// No source: the files initdata yields from an initdata someone else (cloud-init) wrote.
Result<Plan> PlanFromExistingInitdata(const std::string& dir, bool& nothing_to_do) {
  auto encoded = ReadFile(dir + "/initdata", podvm::kMaxUserDataBytes);
  if (!encoded && encoded.error().code == Code::kNotFound) {
    nothing_to_do = true;
    return Plan{};
  }
  if (!encoded) return std::unexpected(encoded.error());
  return PlanFromInitdata(*encoded);
}

}  // namespace

void AddProcessUserDataFlags(CLI::App& app, ProcessUserDataOptions& options) {
  app.add_option("--user-data-file", options.user_data_file, "read user-data from this file");
  app.add_option("--cidata", options.cidata,
                 "read user-data from this NoCloud cidata ISO image or block device");
  app.add_option("--url", options.url,
                 "fetch user-data from this http(s) URL (instance metadata service)");
  app.add_option("--header", options.headers,
                 "extra HTTP header for -url, \"Name: value\" (repeatable)");
  app.add_flag("--base64", options.base64,
               "the source holds the user-data base64-encoded (Azure IMDS)");
  app.add_option("--output-dir", options.output_dir, "where the allow-listed files are written")
      ->capture_default_str();
  app.add_option("-t,--user-data-fetch-timeout", options.timeout_seconds,
                 "seconds to keep retrying the source")
      ->check(CLI::Range(0, 86400))
      ->capture_default_str();
  app.add_option("--retry-delay", options.retry_delay_seconds, "seconds between attempts")
      ->check(CLI::Range(0.0, 3600.0))
      ->capture_default_str();
  app.add_flag("-v,--version", options.version, "print the version and exit");
  // CAA's units run "process-user-data provision-files"; the flags belong to the top level.
  app.add_subcommand("provision-files", "provision the files (the default action)")->fallthrough();
  app.require_subcommand(0, 1);
}

Result<void> ValidateOptions(const ProcessUserDataOptions& options) {
  const int sources =
      !options.user_data_file.empty() + !options.cidata.empty() + !options.url.empty();
  if (sources > 1)
    return Fail(Code::kInvalidArgument,
                "give one of -user-data-file, -cidata and -url, not several");
  if (!options.headers.empty() && options.url.empty())
    return Fail(Code::kInvalidArgument, "-header needs -url");
  for (const std::string& header : options.headers) {
    const auto colon = header.find(':');
    if (colon == std::string::npos || colon == 0 ||
        header.find_first_of("\r\n") != std::string::npos) {
      return Fail(Code::kInvalidArgument, "-header \"", header, "\" is not \"Name: value\"");
    }
  }
  if (options.base64 && sources == 0)
    return Fail(Code::kInvalidArgument, "-base64 needs a user-data source");
  if (options.output_dir.empty()) return Fail(Code::kInvalidArgument, "-output-dir is empty");
  return {};
}

int RunProcessUserData(const ProcessUserDataOptions& options) {
  if (auto valid = ValidateOptions(options); !valid) {
    spdlog::error("{}", valid.error().message);
    return 1;
  }
  Result<Plan> plan;
  if (options.user_data_file.empty() && options.cidata.empty() && options.url.empty()) {
    bool nothing_to_do = false;
    plan = PlanFromExistingInitdata(options.output_dir, nothing_to_do);
    if (nothing_to_do) {
      spdlog::info("no user-data source given and no {}/initdata: nothing to do",
                   options.output_dir);
      return 0;
    }
  } else {
    auto text = ReadSource(options);
    if (!text) {
      spdlog::error("cannot read user-data: {}", text.error().message);
      return 1;
    }
    plan = PlanFromText(*text);
  }
  if (!plan) {
    spdlog::error("{}", plan.error().message);
    return 1;
  }
  for (const std::string& note : plan->notes) spdlog::warn("{}", note);
  if (auto written = WritePlan(options.output_dir, *plan); !written) {
    spdlog::error("{}", written.error().message);
    return 1;
  }
  for (const PlannedFile& file : plan->files) {
    char mode[8];
    std::snprintf(mode, sizeof mode, "%04o", file.mode);
    spdlog::info("wrote {}/{} (mode {}, {} bytes)", options.output_dir, file.name, mode,
                 file.bytes.size());
  }
  return 0;
}

int ProcessUserDataMain(int argc, const char* const* argv) {
  CLI::App app{"process-user-data: writes the pod VM's configuration files from its user-data",
               "process-user-data"};
  GoFlagDefaults(app);
  ProcessUserDataOptions options;
  AddProcessUserDataFlags(app, options);
  if (const int exit = ParseGoCommandLine(app, argc, argv); exit >= 0) return exit;
  if (options.version) {
    std::printf("process-user-data %s\n", PP_VERSION);
    return 0;
  }
  if (auto valid = ValidateOptions(options); !valid) {
    std::fprintf(stderr, "process-user-data: %s\n", valid.error().message.c_str());
    return 2;
  }
  return RunProcessUserData(options);
}

}  // namespace pp::forwarder
